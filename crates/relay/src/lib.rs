//! The relay behind `manifold serve`: thread-per-core shards on glommio, each with its own
//! RTSP listener (same port, `SO_REUSEPORT`) and RTP/RTCP server ports, driving a sans-IO data
//! plane that takes one upstream per path (an RTSP publisher over TCP-interleaved or UDP, an
//! RTSP server pulled, raw RTP, or the synthetic source) and fans it out to readers on every
//! shard over UDP and TCP-interleaved, one shared buffer per packet.
//!
//! The packet path: ingest (`conn` and `control` for interleaved frames, the shard's
//! server-port loop for UDP, `pull`, `rtp_ingest`, `synthetic`) → `shard` (`Shard::ingest`)
//! → `plane::hub` (RTP header parsed once, keyframes, GOP cache, continuity; which other
//! shards get the handle, never waiting: a full queue drops and that shard resumes at the next
//! keyframe) → `plane::fanout` (a frame at a time for live UDP readers; a bounded per-reader
//! queue that skips to the next keyframe for the others) → `egress` (GSO per reader batched
//! across readers with `sendmmsg`); TCP readers' writers in `conn` drain their queues with
//! gathering `sendmsg` straight from the shared buffers. The shard carries out what the plane
//! returns and is never re-entered.
//!
//! Module map: `config` (what to serve; imports nothing of the runtime), `plane` (the sans-IO
//! data plane: hub, forward, fanout, reader, queue, gop, packet, multicast plan, RTCP
//! feedback), `shard` (the I/O owner and its tasks), `egress` (UDP and multicast sends), `conn`
//! (bytes of one RTSP connection, plain or TLS), `control` (what requests mean, on
//! manifold-rtsp's server session machine), `outbox` (what a connection's writer sends),
//! `registry` (streams by path, pull demand, orphaned streams), `udp` (server ports), `notify`
//! (wake-ups), `signal` (SIGINT/SIGTERM, and SIGHUP reloading the TLS certificate, through
//! manifold-sys) and `sys` (the only unsafe code: the gathering send; the syscalls shared with
//! the generator are manifold-sys's); observability and admission: `metrics` (per-shard
//! snapshots published once a second, rendered as Prometheus text and JSON), `http` (the
//! metrics endpoint), `limits` (connections per IP, sessions); other ingests: `pull` (the relay
//! as an RTSP client of an upstream, reconnecting, always-on or on demand), `rtp_ingest` (raw
//! RTP described by an SDP file), `republish` (a publisher's grace), `synthetic`; their hubs
//! rewrite packets onto one continuous outgoing stream per track (continuity).

mod config;
mod conn;
mod control;
mod egress;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gate;
mod http;
mod inbox;
mod limits;
mod metrics;
mod notify;
mod outbox;
mod plane;
mod publish;
mod pull;
mod pull_reports;
mod ratelog;
mod redirect;
mod registry;
mod republish;
mod resolve;
mod rtmp_ingest;
mod rtmpt;
mod rtp_ingest;
mod shard;
mod signal;
mod synthetic;
mod sys;
mod tunnel;
mod udp;

pub use config::{
    parse_cpu_list, ConfigError, CpuListProblem, PullConfig, PullTransport, RedirectError,
    RtpInput, ServeConfig, TlsFilesMissing,
};
pub use error::{RelayError, ShardError};
pub use plane::multicast::MulticastConfigError;
pub use plane::packet::{Packet, SharedPacket};
pub use registry::PathBusy;
pub use rtp_ingest::RtpInputError;
pub use synthetic::SyntheticError;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};

/// The admission bounds: the open-file soft limit is raised to the hard limit first, and the
/// connection cap derived from it unless configured (a relay that runs out of descriptors
/// refuses accepts; one that stays under its cap refuses cleanly and keeps serving).
fn admission_bounds(config: &ServeConfig) -> limits::Bounds {
    let nofile = match manifold_sys::limits::raise_nofile() {
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit; assuming 1024");
            1024
        }
    };
    let bounds = limits::Bounds {
        connections: config.connection_cap(nofile),
        connections_per_ip: config.max_connections_per_ip,
        sessions: config.max_sessions,
        sessions_per_ip: config.max_sessions_per_ip,
        limit_loopback: config.limit_loopback,
    };
    tracing::info!(
        open_files = nofile,
        max_connections = bounds.connections,
        max_connections_per_ip = bounds.connections_per_ip,
        max_sessions = bounds.sessions,
        max_sessions_per_ip = bounds.sessions_per_ip,
        max_sessions_per_connection = config.max_sessions_per_connection,
        "admission limits"
    );
    bounds
}

/// Runs the relay until SIGINT or SIGTERM. `on_listening` is called once every shard
/// listens, with the bound address (the port is resolved when the config asked for port 0).
pub fn serve(config: ServeConfig, on_listening: impl FnOnce(SocketAddr)) -> Result<(), RelayError> {
    let shutdown = Arc::new(AtomicBool::new(false));
    // The certificate first: SIGHUP reloads it, and a relay asked for TLS without a usable
    // one does not start.
    let cert = match config.tls_files().map_err(ConfigError::from)? {
        Some((cert, key)) => Some(Arc::new(manifold_tls::server::ReloadableCert::load(cert, key)?)),
        None => None,
    };
    signal::install(shutdown.clone(), cert.clone())?;
    let online = CpuSet::online().ok();
    let online_ids: Vec<usize> = online.iter().flatten().map(|l| l.cpu).collect();
    if !config.cpus.is_empty() && online.is_none() {
        return Err(ConfigError::OnlineUnknown.into());
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = config.shard_count(&online_ids, available)?;
    let placement = placement(&config.cpus, cores, online);
    // Resolve port 0 once, so every shard listens on the same port: a bound (not listening)
    // SO_REUSEPORT socket holds the port until the shards have bound it too.
    let placeholder = reserve_port(config.listen)?;
    let listen = placeholder
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or(ConfigError::Listen { listen: config.listen })?;
    // The RTMP and HTTP-tunnel ports too, when asked for: one port each for every shard.
    let (rtmp_placeholder, rtmp_listen) = extra_port(config.rtmp_listen)?;
    let (tunnel_placeholder, http_tunnel_listen) = extra_port(config.http_tunnel_listen)?;
    let (rtmpt_placeholder, rtmpt_listen) = extra_port(config.rtmpt_listen)?;
    let (rtsps_placeholder, rtsps_listen) = extra_port(config.rtsps_listen)?;
    let (rtmps_placeholder, rtmps_listen) = extra_port(config.rtmps_listen)?;
    // One server config (one certificate, reloaded on SIGHUP) for both TLS ports.
    let tls = cert.map(manifold_tls::server::server_config).transpose()?;
    let rtsps = rtsps_listen.zip(tls.clone());
    let rtmps = rtmps_listen.zip(tls);
    for path in &config.synthetic {
        if !path.starts_with('/') {
            return Err(ConfigError::SyntheticPath { path: path.clone() }.into());
        }
    }
    for pull in &config.pull {
        pull.validate()?;
    }
    let edges = config
        .redirect_to
        .iter()
        .map(|e| config::EdgeTarget::parse(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ConfigError::from)?;
    let edges = (!edges.is_empty()).then(|| Arc::new(redirect::Edges::new(&edges)));
    if let Some(origin) = &config.origin {
        if manifold_rtsp::url::authority(origin).is_err() {
            return Err(ConfigError::OriginUrl { url: config::redact(origin) }.into());
        }
    }
    for input in &config.rtp {
        input.validate()?;
    }
    let multicast = match &config.multicast_range {
        Some(range) => Some(
            plane::multicast::MulticastPlan::new(
                range,
                config.multicast_port,
                config.multicast_ttl,
            )
            .map_err(RelayError::Multicast)?,
        ),
        None => None,
    };
    let policy = Arc::new(config.access().compile().map_err(ConfigError::from)?);
    if policy.is_default() {
        tracing::info!("no [[user]] configured: anyone may read, only loopback may publish");
    }
    let mut secret = [0u8; 32];
    manifold_sys::fill_random(&mut secret);
    let nonce_key = manifold_access::NonceKey::new(secret, std::time::Instant::now());
    let metrics_token = match &config.metrics_token {
        Some(t) => Some(
            manifold_access::BearerToken::new(t.clone())
                .map_err(|source| ConfigError::MetricsToken { source })?,
        ),
        None => None,
    };
    let bounds = admission_bounds(&config);
    let shared = shard::Shared {
        config: Arc::new(config.clone()),
        registry: Arc::default(),
        shutdown: shutdown.clone(),
        listen,
        rtmp_listen,
        rtmpt_listen,
        http_tunnel_listen,
        rtsps: rtsps.clone(),
        rtmps: rtmps.clone(),
        board: Arc::new(metrics::Board::new(cores)),
        limits: Arc::new(limits::Limits::new(bounds)),
        multicast,
        access: (policy, nonce_key),
        metrics_token,
        pulls: Arc::default(),
        orphans: Arc::default(),
        tunnels: Arc::default(),
        edges,
    };
    let mesh = MeshBuilder::full(cores, config.shard_queue.max(16));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("manifold-shard")
        .io_memory(config.io_memory)
        // Only glommio's file I/O uses registered buffers, and the relay does none: registering
        // would pin the memory (per user, past an 8 MiB RLIMIT_MEMLOCK without root) for nothing.
        .register_io_memory(false)
        // How long one task queue runs before the others get their turn: RTSP request
        // handling yields to media within this.
        .preempt_timer(std::time::Duration::from_millis(10))
        .on_all_shards(move || {
            let shared = shared.clone();
            let mesh = mesh.clone();
            let ready = ready_tx.clone();
            async move { shard::run(shared, mesh, ready).await }
        })
        .map_err(|e| RelayError::Runtime(e.into()))?;
    let mut failure = None;
    for _ in 0..cores {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(_) => {
                failure.get_or_insert(RelayError::ShardLost);
                break;
            }
        }
    }
    drop((
        placeholder,
        rtmp_placeholder,
        tunnel_placeholder,
        rtsps_placeholder,
        rtmpt_placeholder,
        rtmps_placeholder,
    ));
    if let Some(e) = failure {
        shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handles.join_all();
        return Err(e);
    }
    tracing::info!(%listen, shards = cores, cpus = ?config.cpus, "relay listening");
    if let Some(addr) = rtmp_listen {
        tracing::info!(%addr, "rtmp listening");
    }
    if let Some(addr) = http_tunnel_listen {
        tracing::info!(%addr, "rtsp-over-http listening");
    }
    if let Some(addr) = rtmpt_listen {
        tracing::info!(%addr, "rtmpt listening");
    }
    if let Some((addr, _)) = &rtsps {
        // Kernel TLS would take the record encryption off the writers; the user-space path
        // (rustls) is the one used either way for now (see ARCHITECTURE.md, "RTSPS").
        match manifold_tls::ktls::available() {
            Ok(ktls) => tracing::info!(%addr, kernel_tls_available = ktls,
                "rtsps listening (TLS in user space)"),
            Err(e) => tracing::info!(%addr, error = %e,
                "rtsps listening (TLS in user space; kernel TLS unknown: cannot read {})",
                manifold_tls::ktls::AVAILABLE_ULP),
        }
    }
    if let Some((addr, _)) = &rtmps {
        tracing::info!(%addr, "rtmps listening");
    }
    on_listening(listen);
    for r in handles.join_all() {
        r.map_err(|e| RelayError::Runtime(e.into()))?;
    }
    tracing::info!("relay stopped");
    Ok(())
}

/// Where the shards run: shard `i` pinned to `cpus[i]` when CPUs are listed (already checked
/// online), else spread over the online CPUs.
fn placement(cpus: &[usize], cores: usize, online: Option<CpuSet>) -> PoolPlacement {
    match online {
        Some(online) if !cpus.is_empty() => PoolPlacement::Custom(
            cpus.iter().map(|&cpu| online.clone().filter(|l| l.cpu == cpu)).collect(),
        ),
        online => PoolPlacement::MaxSpread(cores, online),
    }
}

/// Reserves an extra listening port (`None`: not asked for), resolving port 0 once so that
/// every shard binds the same one: the placeholder (held until the shards listen) and the
/// address.
fn extra_port(
    addr: Option<SocketAddr>,
) -> Result<(Option<socket2::Socket>, Option<SocketAddr>), RelayError> {
    let Some(addr) = addr else { return Ok((None, None)) };
    let placeholder = reserve_port(addr)?;
    let bound = placeholder
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or(ConfigError::Listen { listen: addr })?;
    Ok((Some(placeholder), Some(bound)))
}

fn reserve_port(addr: SocketAddr) -> Result<socket2::Socket, RelayError> {
    let socket = || {
        socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
    };
    let fail = |source| RelayError::Bind { addr, source };
    // SO_REUSEPORT lets every shard bind the port, and would as well let another process of
    // this user bind it, silently splitting the clients between the two relays. So a port
    // another socket listens on already is refused first.
    if addr.port() != 0 {
        match manifold_sys::listeners::tcp_listeners_for(addr) {
            Ok(held) if !held.is_empty() => {
                let by = held.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                return Err(fail(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "a socket listens on {by} already (another relay would get part of \
                         this one's clients)"
                    ),
                )));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot tell who listens on {addr}: {e}"),
        }
    }
    let s = socket().map_err(fail)?;
    s.set_reuse_port(true).map_err(fail)?;
    s.bind(&addr.into()).map_err(fail)?;
    Ok(s)
}
