//! What `manifold serve` is told to do: addresses, cores (and the CPUs they are pinned to),
//! limits, synthetic streams, upstreams to pull and raw RTP inputs.
//!
//! Settings, their parsing and their checks only: this module imports nothing of the runtime,
//! so reading a configuration cannot depend on how the relay runs it (`pull.rs` and
//! `rtp_ingest.rs` take their settings from here).

use std::net::{AddrParseError, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Why a setting of `manifold serve` (a flag, or an entry of its config file) is unusable.
/// Each names the setting and the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `--pull` value without `=` between path and URL.
    #[error("--pull {arg:?}: expected PATH=URL")]
    PullSyntax {
        /// The whole value.
        arg: String,
    },
    /// A `--pull` option (after `#`) that is not `tcp`, `udp`, `on-demand`, `basic`, `http`,
    /// `insecure` or `ca=FILE`.
    #[error("--pull {arg:?}: unknown option {option:?}")]
    PullOption {
        /// The whole value.
        arg: String,
        /// The option.
        option: String,
    },
    /// A pull's path does not start with `/`.
    #[error("pull path {path:?} must start with '/'")]
    PullPath {
        /// The path.
        path: String,
    },
    /// A pull's URL is not `rtsp://` or `rtsps://`.
    #[error("pull URL {url:?} must be rtsp:// or rtsps://")]
    PullUrl {
        /// The URL, its password replaced by `***`.
        url: String,
    },
    /// Pull options that do not go together: TLS options on an `rtsp://` URL, or a tunnel
    /// with UDP media.
    #[error("pull {url:?}: {why}")]
    PullOptions {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What does not go together.
        why: &'static str,
    },
    /// A `--rtp` value without `=` between path and address.
    #[error("--rtp {arg:?}: expected PATH=ADDR:PORT")]
    RtpSyntax {
        /// The whole value.
        arg: String,
    },
    /// A `--rtp` address that is not `ADDR:PORT`.
    #[error("--rtp {arg:?}: {addr:?} is not ADDR:PORT")]
    RtpAddress {
        /// The whole value.
        arg: String,
        /// The part after `=`.
        addr: String,
        /// Why it does not parse.
        #[source]
        source: AddrParseError,
    },
    /// A raw RTP input's path does not start with `/`.
    #[error("rtp path {path:?} must start with '/'")]
    RtpPath {
        /// The path.
        path: String,
    },
    /// A raw RTP input's port is 0 or 65535 (RTCP takes the next port).
    #[error("rtp input {listen}: needs a port with a free next port")]
    RtpPort {
        /// The address.
        listen: SocketAddr,
    },
    /// A synthetic stream's path does not start with `/`.
    #[error("synthetic path {path:?} must start with '/'")]
    SyntheticPath {
        /// The path.
        path: String,
    },
    /// A CPU list that does not parse.
    #[error("CPU list {text:?}: {problem}")]
    CpuList {
        /// The list as given.
        text: String,
        /// What is wrong with it.
        problem: CpuListProblem,
    },
    /// CPUs named in `cpus` that are not online.
    #[error("cpus: CPU {} not online (online: {})", join(offline), format_cpu_list(online))]
    CpusOffline {
        /// The CPUs not online, in the order given.
        offline: Vec<usize>,
        /// The CPUs online, sorted.
        online: Vec<usize>,
    },
    /// `cpus` is set but which CPUs are online cannot be read.
    #[error("cpus: cannot read which CPUs are online")]
    OnlineUnknown,
    /// `cores` is set and is not the number of CPUs in `cpus`.
    #[error(
        "cores = {cores} but cpus = {} lists {} CPU(s): one shard per CPU (leave cores out)",
        format_cpu_list(cpus),
        cpus.len()
    )]
    CoresDisagree {
        /// The `cores` setting.
        cores: usize,
        /// The `cpus` setting.
        cpus: Vec<usize>,
    },
    /// `--rtsps-listen` without a certificate or key to serve, or those without it.
    #[error("{0}")]
    Tls(#[from] TlsFilesMissing),
    /// The listen address does not resolve to a socket address.
    #[error("cannot resolve the listen address {listen}")]
    Listen {
        /// The address.
        listen: SocketAddr,
    },
    /// `--origin` is not an RTSP URL with a host.
    #[error("--origin {url}: not an rtsp:// URL with a host")]
    OriginUrl {
        /// The URL, its password replaced.
        url: String,
    },
    /// A `--redirect-to` value is unusable.
    #[error(transparent)]
    RedirectTo(#[from] RedirectError),
    /// The metrics endpoint's bearer token is unusable.
    #[error("metrics_token: {source}")]
    MetricsToken {
        /// What is wrong with it.
        source: manifold_access::BearerError,
    },
    /// A `[[user]]` table, `realm` or `--auth-hook` is unusable.
    #[error("access control: {0}")]
    Access(#[from] manifold_access::ConfigError),
}

/// One edge, as configured: `rtsp://host:port` and, after `#metrics=PORT`, where its metrics
/// endpoint listens (on the same host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdgeTarget {
    /// Where readers are sent (no path: the reader's path is appended).
    pub(crate) rtsp: String,
    /// The edge's host: one edge, or a name resolving to several (one edge per address).
    pub(crate) host: String,
    /// Its RTSP port.
    pub(crate) port: u16,
    /// Its metrics port.
    pub(crate) metrics_port: u16,
}

/// Why a `--redirect-to` value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Not `rtsp://host:port#metrics=PORT`.
    #[error("--redirect-to {0:?}: expected rtsp://HOST:PORT#metrics=PORT")]
    Syntax(String),
}

impl EdgeTarget {
    /// Parses `rtsp://host:port#metrics=PORT`.
    pub(crate) fn parse(arg: &str) -> Result<EdgeTarget, RedirectError> {
        let bad = || RedirectError::Syntax(arg.to_owned());
        let (url, fragment) = arg.split_once('#').ok_or_else(bad)?;
        let metrics_port = fragment
            .strip_prefix("metrics=")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(bad)?;
        let authority = manifold_rtsp::url::authority(url).map_err(|_| bad())?;
        if !url.to_ascii_lowercase().starts_with("rtsp://") {
            return Err(bad());
        }
        Ok(EdgeTarget {
            rtsp: url.trim_end_matches('/').to_owned(),
            host: authority.host.to_owned(),
            port: authority.port,
            metrics_port,
        })
    }

    /// Where readers are sent on the edge at `ip`, one of several the host resolves to.
    pub(crate) fn at(&self, ip: std::net::IpAddr) -> String {
        format!("rtsp://{}", std::net::SocketAddr::new(ip, self.port))
    }
}

/// What of the TLS settings is missing (in [`ConfigError::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFilesMissing {
    /// A TLS port without a certificate chain.
    #[error(
        "--rtsps-listen and --rtmps-listen need --tls-cert (a PEM certificate chain) and --tls-key"
    )]
    Cert,
    /// A TLS port without a private key.
    #[error(
        "--rtsps-listen and --rtmps-listen need --tls-key (the PEM private key of --tls-cert)"
    )]
    Key,
    /// A certificate or key but no TLS port to serve them on.
    #[error("--tls-cert and --tls-key are only used with --rtsps-listen or --rtmps-listen")]
    Port,
}

/// What is wrong with a CPU list (in [`ConfigError::CpuList`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpuListProblem {
    /// An item (or an end of a range) that is not a number.
    #[error("{0:?} is not a CPU number")]
    NotANumber(String),
    /// A CPU above the largest Linux supports.
    #[error("CPU {cpu} is above {max}")]
    TooHigh {
        /// The CPU.
        cpu: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A range whose end is below its start.
    #[error("range {0:?} runs backwards")]
    Backwards(String),
    /// A CPU named twice.
    #[error("CPU {0} is named twice")]
    Twice(usize),
}

/// `[1, 7]` as `1, 7`.
fn join(cpus: &[usize]) -> String {
    cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

/// The relay's configuration (every flag of `manifold serve`, and its TOML config file).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Where every shard accepts RTSP connections (port 0: pick one, and log it).
    pub listen: SocketAddr,
    /// Another port for RTSP over HTTP (e.g. 80 or 8080, where proxies let HTTP through);
    /// the RTSP port takes tunnels too. `None`: no other port.
    pub http_tunnel_listen: Option<SocketAddr>,
    /// Where RTSPS (RTSP over TLS, conventionally port 322) is served: interleaved or UDP
    /// media, and RTSP over HTTPS tunnels; needs `tls_cert` and `tls_key`. `None`: no TLS.
    pub rtsps_listen: Option<SocketAddr>,
    /// The PEM certificate chain (leaf first) of the RTSPS and RTMPS ports; re-read on SIGHUP.
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`; re-read on SIGHUP.
    pub tls_key: Option<std::path::PathBuf>,
    /// Where RTMP publishers connect over TLS (RTMPS, conventionally port 443 or 1936), with
    /// the certificate of `tls_cert`; `None`: no RTMPS.
    pub rtmps_listen: Option<SocketAddr>,
    /// Where RTMP publishers connect (conventionally port 1935); `None`: no RTMP. A publish
    /// of `rtmp://host/APP/STREAM` publishes the RTSP path `/APP/STREAM`.
    pub rtmp_listen: Option<SocketAddr>,
    /// Where RTMPT (RTMP tunnelled over HTTP POSTs) publishers connect; `None`: no RTMPT.
    /// The same paths, permissions and publishing rules as `rtmp_listen`.
    pub rtmpt_listen: Option<SocketAddr>,
    /// Shards (one per core); 0 means every online CPU, or one per CPU of `cpus`.
    pub cores: usize,
    /// The CPUs the shards are pinned to, shard `i` to `cpus[i]` (in TOML a list, `[1]`, or
    /// a string, `"2-3"`); empty: spread over every online CPU. Each must be online, and
    /// `cores`, when set, must equal their count.
    #[serde(deserialize_with = "cpu_list")]
    pub cpus: Vec<usize>,
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
    /// Bytes of glommio's io_memory per shard: the slab of its file-I/O buffers, which the relay
    /// does not use; not registered with io_uring, so it takes no locked memory.
    pub io_memory: usize,
    /// Where to serve Prometheus metrics (`/metrics`) and JSON (`/api/v1/streams`) over HTTP;
    /// `None`: no metrics endpoint.
    pub metrics: Option<SocketAddr>,
    /// The bearer token scrapers must present (`Authorization: Bearer TOKEN`); without one the
    /// endpoint is open but shows no session ids.
    pub metrics_token: Option<String>,
    /// Most RTSP connections open at once from one IP address; more are closed on accept.
    pub max_connections_per_ip: usize,
    /// Whether `max_connections_per_ip` applies to loopback peers too. Off by default: the
    /// load generator, the demo and tests run thousands of clients from 127.0.0.1.
    pub limit_loopback: bool,
    /// Most RTSP sessions (publishing and playing) open at once; a SETUP beyond gets 503.
    pub max_sessions: usize,
    /// Most RTSP sessions one connection may hold; a SETUP beyond gets 503 with
    /// `Retry-After`, and the connection keeps the sessions it has.
    pub max_sessions_per_connection: usize,
    /// Most RTSP sessions open at once from one IP address (loopback peers only with
    /// `limit_loopback`); a SETUP beyond gets 503 with `Retry-After`.
    pub max_sessions_per_ip: usize,
    /// Most RTSP connections open at once over all shards; 0 derives it from the open-file
    /// limit (raised to its hard limit at start), leaving room for the relay's own files.
    pub max_connections: usize,
    /// Seconds a request head (or any item the peer started sending) may take to arrive in
    /// full before the connection is closed.
    pub request_timeout_secs: u64,
    /// Seconds a connection that holds no session may stay silent before it is closed.
    pub idle_timeout_secs: u64,
    /// Seconds a publisher may take from ANNOUNCE to RECORD before the path is released.
    pub record_timeout_secs: u64,
    /// Bytes of responses a connection may have waiting for its peer to read them; while
    /// more wait, its further requests are not read (and after the stall limit it is closed).
    pub max_response_queue: usize,
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
    /// Makes this relay an edge of the relay at this URL (`rtsp://[user:pass@]host:port`): a
    /// DESCRIBE of a path nobody publishes here pulls it from the origin, on demand (it stops
    /// `pull_grace_secs` after the last reader left), with continuity across origin restarts.
    pub origin: Option<String>,
    /// Makes this relay an origin that sends readers to these edges, each
    /// `rtsp://HOST:PORT#metrics=PORT` (its metrics endpoint on the same host gives its load):
    /// a reader's DESCRIBE gets `302` to the least-loaded healthy edge. Publishers, and the
    /// edges themselves, are served here.
    pub redirect_to: Vec<String>,
    /// Upstream RTSP servers to pull from (`--pull`, `[[pull]]` tables).
    pub pull: Vec<PullConfig>,
    /// Seconds an on-demand pull keeps its upstream after the last reader left.
    pub pull_grace_secs: u64,
    /// Raw RTP inputs described by SDP files (`--rtp` with `--rtp-sdp`, `[[rtp]]` tables).
    pub rtp: Vec<RtpInput>,
    /// Seconds a stream whose RTSP publisher left keeps its readers, waiting for a republish
    /// with a compatible SDP that continues it; 0 ends the stream (readers get BYE) at once.
    pub publish_grace_secs: u64,
    /// Who may read and publish what: one `[[user]]` table each (name, password, paths,
    /// actions, ips; see `manifold_access::UserConfig`). None (and no hook): anyone may read,
    /// only loopback may publish.
    #[serde(rename = "user")]
    pub users: Vec<manifold_access::UserConfig>,
    /// Accept Basic credentials without TLS (by default Basic is refused in clear).
    pub allow_basic: bool,
    /// The realm of the relay's challenges (default "manifold").
    pub realm: Option<String>,
    /// Ask this HTTP endpoint (POST of a JSON question, 2xx allows) instead of the users.
    pub auth_hook: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            rtmp_listen: None,
            rtmpt_listen: None,
            http_tunnel_listen: None,
            rtsps_listen: None,
            rtmps_listen: None,
            tls_cert: None,
            tls_key: None,
            cores: 0,
            cpus: Vec::new(),
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
            metrics_token: None,
            max_connections_per_ip: 100,
            limit_loopback: false,
            max_sessions: 10_000,
            max_sessions_per_connection: 16,
            max_sessions_per_ip: 1_000,
            max_connections: 0,
            request_timeout_secs: 10,
            idle_timeout_secs: 60,
            record_timeout_secs: 10,
            max_response_queue: 64 * 1024,
            max_request_head: 8 * 1024,
            max_request_body: 64 * 1024,
            publish_replace: false,
            multicast_range: None,
            multicast_ttl: 1,
            multicast_port: 40_000,
            origin: None,
            redirect_to: Vec::new(),
            pull: Vec::new(),
            pull_grace_secs: 10,
            rtp: Vec::new(),
            publish_grace_secs: 10,
            users: Vec::new(),
            allow_basic: false,
            realm: None,
            auth_hook: None,
        }
    }
}

impl ServeConfig {
    /// The certificate and key files of the TLS ports (RTSPS, RTMPS): `None` when neither is
    /// asked for; an error when one half of the TLS settings comes without the other.
    pub fn tls_files(
        &self,
    ) -> Result<Option<(&std::path::Path, &std::path::Path)>, TlsFilesMissing> {
        let port = self.rtsps_listen.or(self.rtmps_listen);
        match (port, &self.tls_cert, &self.tls_key) {
            (None, None, None) => Ok(None),
            (None, _, _) => Err(TlsFilesMissing::Port),
            (Some(_), None, _) => Err(TlsFilesMissing::Cert),
            (Some(_), Some(_), None) => Err(TlsFilesMissing::Key),
            (Some(_), Some(cert), Some(key)) => Ok(Some((cert, key))),
        }
    }

    /// The session timeout as a duration.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.session_timeout_secs)
    }

    /// The access settings as the access crate takes them.
    pub fn access(&self) -> manifold_access::AccessConfig {
        manifold_access::AccessConfig {
            users: self.users.clone(),
            allow_basic: self.allow_basic,
            realm: self.realm.clone(),
            auth_hook: self.auth_hook.clone(),
        }
    }

    /// How long a TCP reader may stall before it is disconnected.
    pub fn reader_stall(&self) -> Duration {
        Duration::from_secs(self.reader_stall_secs)
    }

    /// How long a started request may take to arrive in full.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// How long a connection without a session may stay silent.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// How long a publisher may take from ANNOUNCE to RECORD.
    pub fn record_timeout(&self) -> Duration {
        Duration::from_secs(self.record_timeout_secs)
    }

    /// The connection cap for an open-file soft limit of `nofile`: `max_connections` when
    /// set, else the limit less a reserve for the relay's own descriptors (listeners, server
    /// ports, io_uring rings, pulls, the metrics endpoint), at least 16.
    pub fn connection_cap(&self, nofile: u64) -> usize {
        const RESERVE: u64 = 256;
        if self.max_connections > 0 {
            return self.max_connections;
        }
        usize::try_from(nofile.saturating_sub(RESERVE).max(16)).unwrap_or(usize::MAX)
    }

    /// The number of shards, given the CPUs that are online and how many the process may
    /// use: `cores`, else one per CPU of `cpus`, else `available`. Refuses a `cpus` entry
    /// that is not online, and a `cores` that disagrees with `cpus`.
    pub fn shard_count(&self, online: &[usize], available: usize) -> Result<usize, ConfigError> {
        if self.cpus.is_empty() {
            return Ok(if self.cores == 0 { available.max(1) } else { self.cores });
        }
        let offline: Vec<usize> =
            self.cpus.iter().filter(|c| !online.contains(c)).copied().collect();
        if !offline.is_empty() {
            let mut online = online.to_vec();
            online.sort_unstable();
            return Err(ConfigError::CpusOffline { offline, online });
        }
        if self.cores != 0 && self.cores != self.cpus.len() {
            return Err(ConfigError::CoresDisagree { cores: self.cores, cpus: self.cpus.clone() });
        }
        Ok(self.cpus.len())
    }
}

/// Highest CPU number a list may name (Linux's largest `NR_CPUS`), so a typo like
/// `0-100000000` is refused instead of allocating.
const MAX_CPU: usize = 8191;

/// Parses a CPU list as `taskset -c` and `/sys/devices/system/cpu/online` write it:
/// comma-separated CPUs and inclusive ranges, e.g. `1`, `0,1`, `2-3`, `0-1,6`. The order is
/// kept (shard `i` goes to the `i`th CPU); a CPU named twice is refused.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, ConfigError> {
    let bad = |problem| ConfigError::CpuList { text: text.to_owned(), problem };
    let number = |s: &str| -> Result<usize, ConfigError> {
        let n = s
            .trim()
            .parse::<usize>()
            .map_err(|_| bad(CpuListProblem::NotANumber(s.trim().to_owned())))?;
        if n > MAX_CPU {
            return Err(bad(CpuListProblem::TooHigh { cpu: n, max: MAX_CPU }));
        }
        Ok(n)
    };
    let mut cpus = Vec::new();
    for item in text.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(item)?;
                (n, n)
            }
        };
        if last < first {
            return Err(bad(CpuListProblem::Backwards(item.trim().to_owned())));
        }
        for cpu in first..=last {
            if cpus.contains(&cpu) {
                return Err(bad(CpuListProblem::Twice(cpu)));
            }
            cpus.push(cpu);
        }
    }
    Ok(cpus)
}

/// Writes CPUs back as a list, with runs as ranges: `[0, 1, 2, 5]` is `0-2,5`.
fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// `cpus` in TOML: a list of numbers, or a string in [`parse_cpu_list`]'s syntax.
fn cpu_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum List {
        Numbers(Vec<usize>),
        Text(String),
    }
    let text = match <List as serde::Deserialize>::deserialize(d)? {
        List::Numbers(cpus) => cpus.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
        List::Text(text) => text,
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    parse_cpu_list(&text).map_err(serde::de::Error::custom)
}

/// How a pull receives media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullTransport {
    /// RTP/RTCP interleaved on the RTSP connection.
    #[default]
    Tcp,
    /// RTP/RTCP over UDP, on port pairs the relay binds.
    Udp,
}

/// One upstream to pull (`--pull PATH=URL[#udp][,on-demand]`, or a `[[pull]]` table).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The relay path readers play, e.g. `/cam`.
    pub path: String,
    /// The upstream's RTSP URL; `user:password@` in it authenticates (Digest, or Basic).
    pub url: String,
    /// Interleaved (`tcp`, default) or `udp`.
    #[serde(default)]
    pub transport: PullTransport,
    /// Start when a reader asks for the path, stop after the last reader left.
    #[serde(default)]
    pub on_demand: bool,
    /// Answer the upstream's Basic challenge (the password in clear) when it offers no Digest;
    /// off by default, so a plain-RTSP upstream never sees the password unless asked.
    #[serde(default)]
    pub allow_basic: bool,
    /// Reach the upstream through an RTSP-over-HTTP tunnel (`#http`; media interleaved).
    #[serde(default)]
    pub http_tunnel: bool,
    /// `rtsps://`: trust the certificates that chain to this PEM file (`#ca=FILE`) instead
    /// of the system's roots.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// `rtsps://`: accept any certificate, unchecked (`#insecure`; labs and tests only).
    #[serde(default)]
    pub tls_insecure: bool,
}

impl PullConfig {
    /// A pull of `url` to `path` with every option at its default.
    pub fn new(path: impl Into<String>, url: impl Into<String>) -> PullConfig {
        PullConfig {
            path: path.into(),
            url: url.into(),
            transport: PullTransport::Tcp,
            on_demand: false,
            allow_basic: false,
            http_tunnel: false,
            tls_ca: None,
            tls_insecure: false,
        }
    }

    /// Parses `--pull` values: `/cam=rtsp://host/stream`, with options in the URL fragment,
    /// comma-separated: `#udp`, `#tcp`, `#on-demand`, `#basic`, `#http` (tunnelled),
    /// and for `rtsps://` `#ca=FILE` or `#insecure`, e.g. `rtsp://host/s#udp,on-demand`
    /// (a fragment is never sent to the upstream).
    pub fn parse_arg(arg: &str) -> Result<PullConfig, ConfigError> {
        let (path, url) =
            arg.split_once('=').ok_or_else(|| ConfigError::PullSyntax { arg: arg.to_owned() })?;
        let (url, options) = url.split_once('#').unwrap_or((url, ""));
        let mut pull = PullConfig::new(path, url);
        for option in options.split(',').filter(|o| !o.is_empty()) {
            match option {
                "tcp" => pull.transport = PullTransport::Tcp,
                "udp" => pull.transport = PullTransport::Udp,
                "on-demand" => pull.on_demand = true,
                "basic" => pull.allow_basic = true,
                "http" => pull.http_tunnel = true,
                "insecure" => pull.tls_insecure = true,
                o if o.starts_with("ca=") && o.len() > 3 => {
                    pull.tls_ca = Some(PathBuf::from(&o[3..]));
                }
                other => {
                    return Err(ConfigError::PullOption {
                        arg: arg.to_owned(),
                        option: other.to_owned(),
                    })
                }
            }
        }
        pull.validate()?;
        Ok(pull)
    }

    /// Checks the path and URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::PullPath { path: self.path.clone() });
        }
        let secure = self.url.starts_with("rtsps://");
        if !secure && !self.url.starts_with("rtsp://") {
            return Err(ConfigError::PullUrl { url: redact(&self.url) });
        }
        let refuse = |why| Err(ConfigError::PullOptions { url: redact(&self.url), why });
        if !secure && (self.tls_ca.is_some() || self.tls_insecure) {
            return refuse("ca=FILE and insecure are for rtsps:// upstreams");
        }
        if self.tls_ca.is_some() && self.tls_insecure {
            return refuse("ca=FILE and insecure exclude each other");
        }
        if self.http_tunnel && self.transport == PullTransport::Udp {
            return refuse("a tunnelled (http) pull carries its media interleaved, not udp");
        }
        Ok(())
    }
}

/// A URL without its password, for logs.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[host_end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// One raw RTP input (`--rtp PATH=ADDR` with `--rtp-sdp FILE`, or an `[[rtp]]` table).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpInput {
    /// The relay path readers play, e.g. `/cam`.
    pub path: String,
    /// Where RTP arrives; RTCP arrives on the next port.
    pub listen: SocketAddr,
    /// The SDP file describing the RTP (e.g. what `ffmpeg -sdp_file` wrote).
    pub sdp: PathBuf,
}

impl RtpInput {
    /// Parses a `--rtp` value, `/cam=0.0.0.0:5004`, with its `--rtp-sdp` file.
    pub fn parse_arg(arg: &str, sdp: PathBuf) -> Result<RtpInput, ConfigError> {
        let (path, listen) =
            arg.split_once('=').ok_or_else(|| ConfigError::RtpSyntax { arg: arg.to_owned() })?;
        let listen = listen.parse().map_err(|source| ConfigError::RtpAddress {
            arg: arg.to_owned(),
            addr: listen.to_owned(),
            source,
        })?;
        let input = RtpInput { path: path.to_owned(), listen, sdp };
        input.validate()?;
        Ok(input)
    }

    /// Checks the path and port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(ConfigError::RtpPath { path: self.path.clone() });
        }
        if self.listen.port() == 0 || self.listen.port() == u16::MAX {
            return Err(ConfigError::RtpPort { listen: self.listen });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_port_cert_and_key_together() {
        assert_eq!(ServeConfig::default().tls_files(), Ok(None));
        let all = ServeConfig {
            rtsps_listen: Some(SocketAddr::from(([0, 0, 0, 0], 322))),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..ServeConfig::default()
        };
        let files = all.tls_files().unwrap().unwrap();
        assert_eq!(files, (std::path::Path::new("c.pem"), std::path::Path::new("k.pem")));
        let no_key = ServeConfig { tls_key: None, ..all.clone() };
        assert_eq!(no_key.tls_files(), Err(TlsFilesMissing::Key));
        let no_cert = ServeConfig { tls_cert: None, ..all.clone() };
        assert_eq!(no_cert.tls_files(), Err(TlsFilesMissing::Cert));
        let rtmps_only = ServeConfig {
            rtsps_listen: None,
            rtmps_listen: Some(SocketAddr::from(([0, 0, 0, 0], 1936))),
            ..all.clone()
        };
        assert_eq!(rtmps_only.tls_files().unwrap(), Some(files));
        let no_port = ServeConfig { rtsps_listen: None, ..all };
        assert_eq!(no_port.tls_files(), Err(TlsFilesMissing::Port));
    }

    #[test]
    fn parses_edges() {
        let e = EdgeTarget::parse("rtsp://10.0.0.2:8554/#metrics=9090").unwrap();
        assert_eq!(
            (e.rtsp.as_str(), e.host.as_str(), e.metrics_port),
            ("rtsp://10.0.0.2:8554", "10.0.0.2", 9090)
        );
        for bad in
            ["rtsp://h:8554", "http://h:80#metrics=9", "rtsp://h:8554#metrics=0", "#metrics=1"]
        {
            assert!(EdgeTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists_parse_in_order() {
        assert_eq!(parse_cpu_list("1").unwrap(), [1]);
        assert_eq!(parse_cpu_list("0,1").unwrap(), [0, 1]);
        assert_eq!(parse_cpu_list("2-3").unwrap(), [2, 3]);
        assert_eq!(parse_cpu_list("0-1,6").unwrap(), [0, 1, 6]);
        assert_eq!(parse_cpu_list("3,1").unwrap(), [3, 1]);
        assert_eq!(parse_cpu_list(" 4 - 5 , 7 ").unwrap(), [4, 5, 7]);
        assert_eq!(parse_cpu_list("2-2").unwrap(), [2]);
    }

    #[test]
    fn bad_cpu_lists_say_why() {
        for (text, why) in [
            ("", "not a CPU number"),
            ("1,", "not a CPU number"),
            ("a", "not a CPU number"),
            ("-1", "not a CPU number"),
            ("1-", "not a CPU number"),
            ("3-2", "backwards"),
            ("1,1", "twice"),
            ("0-2,1", "twice"),
            ("0-100000000", "above"),
        ] {
            let e = parse_cpu_list(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn bad_cpu_lists_name_the_bad_part() {
        let problem = |text: &str| match parse_cpu_list(text) {
            Err(ConfigError::CpuList { text: t, problem }) if t == text => problem,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(problem("0,x"), CpuListProblem::NotANumber("x".into()));
        assert_eq!(problem("1- "), CpuListProblem::NotANumber(String::new()));
        assert_eq!(problem("0, 3-2"), CpuListProblem::Backwards("3-2".into()));
        assert_eq!(problem("0-2,1"), CpuListProblem::Twice(1));
        assert_eq!(problem("9000"), CpuListProblem::TooHigh { cpu: 9000, max: MAX_CPU });
    }

    #[test]
    fn cpu_lists_format_as_ranges() {
        assert_eq!(format_cpu_list(&[0, 1, 2, 5]), "0-2,5");
        assert_eq!(format_cpu_list(&[1]), "1");
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[3, 1]), "3,1");
    }

    #[test]
    fn shard_count_follows_cpus_and_refuses_disagreement() {
        let online = [0, 1, 2, 3];
        let with = |cores, cpus: &[usize]| ServeConfig {
            cores,
            cpus: cpus.to_vec(),
            ..ServeConfig::default()
        };
        assert_eq!(with(0, &[]).shard_count(&online, 4), Ok(4));
        assert_eq!(with(0, &[]).shard_count(&online, 0), Ok(1));
        assert_eq!(with(3, &[]).shard_count(&online, 4), Ok(3));
        assert_eq!(with(0, &[1]).shard_count(&online, 4), Ok(1));
        assert_eq!(with(2, &[2, 3]).shard_count(&online, 4), Ok(2));
        let e = with(2, &[1]).shard_count(&online, 4).unwrap_err();
        assert_eq!(e, ConfigError::CoresDisagree { cores: 2, cpus: vec![1] });
        let e = e.to_string();
        assert!(e.contains("cores = 2") && e.contains("1 CPU(s)"), "{e}");
        let e = with(0, &[1, 7, 9]).shard_count(&[3, 0, 2, 1], 4).unwrap_err();
        assert_eq!(e, ConfigError::CpusOffline { offline: vec![7, 9], online: vec![0, 1, 2, 3] });
        let e = e.to_string();
        assert!(e.contains("CPU 7, 9 not online (online: 0-3)"), "{e}");
    }

    #[test]
    fn cpus_deserialize_as_list_or_text() {
        // The binary reads TOML (tested there); serde_json drives the same deserializer.
        let parse = |text: &str| serde_json::from_str::<ServeConfig>(text);
        assert_eq!(parse(r#"{"cpus": [1]}"#).unwrap().cpus, [1]);
        assert_eq!(parse(r#"{"cpus": "2-3", "cores": 2}"#).unwrap().cpus, [2, 3]);
        assert!(parse("{}").unwrap().cpus.is_empty());
        assert!(parse(r#"{"cpus": [1, 1]}"#).is_err());
        assert!(parse(r#"{"cpus": "x"}"#).is_err());
    }

    #[test]
    fn pull_args() {
        let p = PullConfig::parse_arg("/cam=rtsp://u:p@h:8554/s").unwrap();
        assert_eq!(p.path, "/cam");
        assert_eq!(p.url, "rtsp://u:p@h:8554/s");
        assert_eq!(p.transport, PullTransport::Tcp);
        assert!(!p.on_demand);
        let p = PullConfig::parse_arg("/cam=rtsp://h/s?x=1#udp,on-demand").unwrap();
        assert_eq!(p.url, "rtsp://h/s?x=1");
        assert_eq!(p.transport, PullTransport::Udp);
        assert!(p.on_demand);
        assert!(PullConfig::parse_arg("cam=rtsp://h/s").is_err());
        assert!(PullConfig::parse_arg("/cam=http://h/s").is_err());
        assert!(PullConfig::parse_arg("/cam=rtsp://h/s#bogus").is_err());
        assert!(PullConfig::parse_arg("/cam").is_err());
        let p = PullConfig::parse_arg("/cam=rtsps://h/s#http,ca=/etc/ca.pem").unwrap();
        assert_eq!(p.url, "rtsps://h/s");
        assert!(p.http_tunnel);
        assert_eq!(p.tls_ca.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(PullConfig::parse_arg("/cam=rtsps://h/s#insecure").unwrap().tls_insecure);
        assert!(PullConfig::parse_arg("/cam=rtsp://h/s#http").unwrap().http_tunnel);
        for refused in [
            "/cam=rtsp://h/s#insecure",
            "/cam=rtsp://h/s#ca=/x.pem",
            "/cam=rtsps://h/s#insecure,ca=/x.pem",
            "/cam=rtsp://h/s#http,udp",
        ] {
            let e = PullConfig::parse_arg(refused).unwrap_err();
            assert!(matches!(e, ConfigError::PullOptions { .. }), "{refused}: {e}");
        }
    }

    #[test]
    fn bad_pull_args_name_the_bad_part() {
        assert_eq!(
            PullConfig::parse_arg("/cam"),
            Err(ConfigError::PullSyntax { arg: "/cam".into() })
        );
        assert_eq!(
            PullConfig::parse_arg("cam=rtsp://h/s"),
            Err(ConfigError::PullPath { path: "cam".into() })
        );
        // The password never reaches the error.
        assert_eq!(
            PullConfig::parse_arg("/cam=http://u:secret@h/s"),
            Err(ConfigError::PullUrl { url: "http://***@h/s".into() })
        );
        let e = PullConfig::parse_arg("/cam=rtsp://h/s#udp,bogus").unwrap_err();
        assert_eq!(
            e,
            ConfigError::PullOption {
                arg: "/cam=rtsp://h/s#udp,bogus".into(),
                option: "bogus".into()
            }
        );
        assert_eq!(e.to_string(), r#"--pull "/cam=rtsp://h/s#udp,bogus": unknown option "bogus""#);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("rtsp://u:p@h:1/s"), "rtsp://***@h:1/s");
        assert_eq!(redact("rtsp://h/s"), "rtsp://h/s");
    }

    #[test]
    fn rtp_args() {
        let i = RtpInput::parse_arg("/cam=127.0.0.1:5004", "a.sdp".into()).unwrap();
        assert_eq!(i.path, "/cam");
        assert_eq!(i.listen, "127.0.0.1:5004".parse().unwrap());
        assert!(RtpInput::parse_arg("/cam=127.0.0.1:0", "a.sdp".into()).is_err());
        assert!(RtpInput::parse_arg("cam=127.0.0.1:5004", "a.sdp".into()).is_err());
        assert!(RtpInput::parse_arg("/cam", "a.sdp".into()).is_err());
    }

    #[test]
    fn bad_rtp_args_name_the_bad_part() {
        let parse = |arg: &str| RtpInput::parse_arg(arg, "a.sdp".into()).unwrap_err();
        assert_eq!(parse("/cam"), ConfigError::RtpSyntax { arg: "/cam".into() });
        assert_eq!(parse("cam=127.0.0.1:5004"), ConfigError::RtpPath { path: "cam".into() });
        assert_eq!(
            parse("/cam=127.0.0.1:65535"),
            ConfigError::RtpPort { listen: "127.0.0.1:65535".parse().unwrap() }
        );
        let e = parse("/cam=host");
        assert!(
            matches!(&e, ConfigError::RtpAddress { arg, addr, .. } if arg == "/cam=host" && addr == "host"),
            "{e:?}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.to_string(), r#"--rtp "/cam=host": "host" is not ADDR:PORT"#);
    }
}
