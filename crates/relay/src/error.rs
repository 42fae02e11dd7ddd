//! The relay's runtime errors. Each names the peer, session or path at fault where known.
//!
//! An error's message says what failed; the error it wraps is its `source()`, not repeated in
//! the message (the binary prints the whole chain; logs use [`chain`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::config::ConfigError;
use crate::rtp_ingest::RtpInputError;
use crate::synthetic::SyntheticError;

/// Why the relay could not start or keep running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The configuration is unusable.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The multicast range or port is unusable.
    #[error("invalid multicast configuration")]
    Multicast(#[from] crate::plane::multicast::MulticastConfigError),
    /// Binding a listening or server-port socket failed.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A shard could not start.
    #[error("shard {shard} could not start")]
    Shard {
        /// The shard (its index in the pool).
        shard: usize,
        /// Why.
        source: ShardError,
    },
    /// A shard could not join the mesh of channels between shards.
    #[error("a shard could not join the shard mesh")]
    Mesh(#[source] io::Error),
    /// A shard exited before it said whether it started.
    #[error("a shard exited before it was ready")]
    ShardLost,
    /// The executor pool failed to start, or a shard's thread failed.
    #[error("shard runtime")]
    Runtime(#[source] io::Error),
    /// The RTSPS certificate or key cannot be used (`--tls-cert`, `--tls-key`).
    #[error("cannot serve RTSPS")]
    Tls(#[from] manifold_tls::server::CertError),
    /// Installing the signal handling thread failed.
    #[error("signal handling")]
    Signal(#[source] io::Error),
}

/// Why a shard could not start (in [`RelayError::Shard`], which names the shard).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// Listening for RTSP failed.
    #[error("cannot listen for RTSP on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Binding the shard's RTP/RTCP server ports failed.
    #[error("cannot bind RTP/RTCP server ports on {ip}")]
    ServerPorts {
        /// The address they were bound on.
        ip: IpAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Listening for metrics requests failed.
    #[error("cannot listen for metrics on {addr}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A synthetic source could not start.
    #[error("synthetic source {path}")]
    Synthetic {
        /// Its path.
        path: String,
        /// Why.
        source: SyntheticError,
    },
    /// A raw RTP input could not start.
    #[error("rtp input {path} at {listen}")]
    RtpInput {
        /// Its path.
        path: String,
        /// Where it receives RTP.
        listen: SocketAddr,
        /// Why (boxed: it is large, and rare).
        source: Box<RtpInputError>,
    },
}

/// An error with its sources, `outer: inner: innermost`, for log lines.
pub(crate) fn chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Chain<'a> {
    Chain(error)
}

/// See [`chain`].
pub(crate) struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_join_the_sources() {
        let e = ShardError::Metrics {
            addr: "127.0.0.1:9".parse().unwrap(),
            source: io::Error::new(io::ErrorKind::AddrInUse, "in use"),
        };
        assert_eq!(e.to_string(), "cannot listen for metrics on 127.0.0.1:9");
        assert_eq!(chain(&e).to_string(), "cannot listen for metrics on 127.0.0.1:9: in use");
        let e = RelayError::Shard { shard: 1, source: e };
        assert_eq!(
            chain(&e).to_string(),
            "shard 1 could not start: cannot listen for metrics on 127.0.0.1:9: in use"
        );
    }
}
