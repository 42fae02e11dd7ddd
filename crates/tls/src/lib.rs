//! TLS for RTSPS on rustls (ring).
//!
//! The server side: the relay's [`server::server_config`] with a certificate reloaded from its
//! PEM files ([`server::ReloadableCert`]), the gathered write that puts a batch of packets
//! into few records ([`write::write_gathered`]), and kernel TLS detection ([`ktls`]). The
//! client side ([`client`]): which servers to trust (a CA file, the system store, or an
//! explicit insecure mode) and a connector for async streams over glommio's sockets. Nothing
//! here opens a socket or reads a clock; the runtimes drive rustls through futures-rustls on
//! their own sockets.

#![forbid(unsafe_code)]

pub mod client;
pub mod ktls;
pub mod server;
pub mod write;

// One rustls for every user, so that configurations and streams are of the same types.
pub use futures_rustls;
pub use rustls;
