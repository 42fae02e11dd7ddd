//! TLS for `rtsps://` on rustls (ring): the client side's configuration (`client`): which
//! servers to trust, and a connector for async streams over glommio's sockets.

pub mod client;

// One rustls for every user, so that configurations and streams are of the same types.
pub use futures_rustls;
pub use rustls;
