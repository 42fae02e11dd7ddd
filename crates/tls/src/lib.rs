//! TLS for RTSPS on rustls (ring). The server side: the relay's [`server::server_config`] with a
//! certificate reloaded from its PEM files ([`server::ReloadableCert`]), the gathered write
//! that puts a batch of packets into few records ([`write::write_gathered`]), and kernel TLS
//! detection ([`ktls`]). Nothing here opens a socket or reads a clock; the runtimes drive
//! rustls through futures-rustls on their own sockets.

#![forbid(unsafe_code)]

pub mod ktls;
pub mod server;
pub mod write;

pub use futures_rustls;
pub use rustls;
