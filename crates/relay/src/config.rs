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
    /// Where to serve Prometheus metrics (`/metrics`) and JSON (`/api/v1/streams`) over HTTP;
    /// `None`: no metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// Most RTSP connections open at once from one IP address; more are closed on accept.
    pub max_connections_per_ip: usize,
    /// Whether `max_connections_per_ip` applies to loopback peers too. Off by default: the
    /// load generator, the demo and tests run thousands of clients from 127.0.0.1.
    pub limit_loopback: bool,
    /// Most RTSP sessions (publishing and playing) open at once; a SETUP beyond gets 503.
    pub max_sessions: usize,
    /// Largest RTSP request head (start line and headers) in bytes.
    pub max_request_head: usize,
    /// Largest RTSP request body (e.g. ANNOUNCE's SDP) in bytes.
    pub max_request_body: usize,
    /// Publishing to a path that has a live publisher closes the old publisher and takes the
    /// path over (its readers are closed); when false such an ANNOUNCE gets 403.
    pub publish_replace: bool,
    /// IPv4 multicast range readers' `multicast` SETUPs get groups from, e.g.
    /// `239.255.42.0/24`; `None`: multicast is not offered (461).
    pub multicast_range: Option<String>,
    /// TTL of multicast packets.
    pub multicast_ttl: u8,
    /// RTP port of the multicast groups (even; RTCP is the next one).
    pub multicast_port: u16,
    /// Upstream RTSP servers to pull from (`--pull`, `[[pull]]` tables).
    pub pull: Vec<crate::pull::PullConfig>,
    /// Seconds an on-demand pull keeps its upstream after the last reader left.
    pub pull_grace_secs: u64,
    /// Raw RTP inputs described by SDP files (`--rtp` with `--rtp-sdp`, `[[rtp]]` tables).
    pub rtp: Vec<crate::rtp_ingest::RtpInput>,
    /// Seconds a stream whose RTSP publisher left keeps its readers, waiting for a republish
    /// with a compatible SDP that continues it; 0 ends the stream (readers get BYE) at once.
    pub publish_grace_secs: u64,
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
            metrics: None,
            max_connections_per_ip: 100,
            limit_loopback: false,
            max_sessions: 10_000,
            max_request_head: 8 * 1024,
            max_request_body: 64 * 1024,
            publish_replace: false,
            multicast_range: None,
            multicast_ttl: 1,
            multicast_port: 40_000,
            pull: Vec::new(),
            pull_grace_secs: 10,
            rtp: Vec::new(),
            publish_grace_secs: 10,
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
