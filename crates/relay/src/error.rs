//! The relay's runtime errors. Each names the peer, session or path at fault where known.

use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the relay could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The configuration is unusable.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The multicast range is unusable (why, as text: the multicast module's own message).
    #[error("invalid configuration: {0}")]
    Multicast(String),
    /// Binding a listening or server-port socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The executor pool (or a shard) failed.
    #[error("shard runtime: {0}")]
    Runtime(String),
    /// Installing the signal handling thread failed.
    #[error("signal handling: {0}")]
    Signal(io::Error),
}
