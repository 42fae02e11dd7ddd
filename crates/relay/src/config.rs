//! What `manifold serve` is told to do: addresses, cores, limits, synthetic streams.

use std::net::SocketAddr;
use std::time::Duration;

/// The relay's configuration (every flag of `manifold serve`, and its TOML config file).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Where every shard accepts RTSP connections (port 0: pick one, and log it).
    pub listen: SocketAddr,
    /// Shards (one per core); 0 means every online CPU.
    pub cores: usize,
    /// Paths served by the built-in synthetic H.264 source, e.g. `/demo`.
    pub synthetic: Vec<String>,
    /// Bitrate of the synthetic streams in bit/s (filler NAL units pad the clip up to it);
    /// `None` sends the clip as is (~150 kbit/s).
    pub synthetic_bitrate: Option<u64>,
    /// Session timeout announced in the `Session` header, in seconds.
    pub session_timeout_secs: u64,
    /// Keep each stream's latest GOP so a new reader starts at once with a keyframe; when off,
    /// a new reader waits for the next keyframe.
    pub gop_cache: bool,
    /// Packets a reader may have queued before it skips to the next keyframe.
    pub reader_queue_packets: usize,
    /// Bytes a reader may have queued before it skips to the next keyframe.
    pub reader_queue_bytes: usize,
    /// Seconds a TCP reader's socket may refuse writes before the reader is disconnected.
    pub reader_stall_secs: u64,
    /// Capacity of each cross-shard queue, in messages (packets).
    pub shard_queue: usize,
    /// Bytes of io_uring memory per shard (locked memory is scarce: 8 MiB per process here).
    pub io_memory: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            cores: 0,
            synthetic: Vec::new(),
            synthetic_bitrate: None,
            session_timeout_secs: 60,
            gop_cache: true,
            reader_queue_packets: 2048,
            reader_queue_bytes: 4 << 20,
            reader_stall_secs: 10,
            shard_queue: 1024,
            io_memory: 1 << 20,
        }
    }
}

impl ServeConfig {
    /// The session timeout as a duration.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.session_timeout_secs)
    }

    /// How long a TCP reader may stall before it is disconnected.
    pub fn reader_stall(&self) -> Duration {
        Duration::from_secs(self.reader_stall_secs)
    }
}
