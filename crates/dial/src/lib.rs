//! How an RTSP client reaches its server, for the generator (`manifold load`, `manifold
//! source`) and the relay's pull client alike: one TCP connection (`rtsp://`), TLS over it
//! (`rtsps://`, trust from `manifold_tls::client`), or a QuickTime HTTP tunnel of two
//! connections (the protocol's pieces are `manifold_rtsp::tunnel::client`'s), each over TLS
//! for `rtsps://`.
//!
//! [`conn`] opens connections on a glommio executor and times the phases; [`blocking`] opens
//! them on std threads as a reader half and a writer half. Neither knows RTSP beyond the
//! tunnel's heads: the callers run their own session machines over the bytes.

pub mod blocking;
pub mod conn;

pub use blocking::BlockingConn;
pub use conn::{Conn, Dialer, OpenError, Phases, TlsTarget, TunnelAt};
