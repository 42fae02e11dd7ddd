//! `--pull /cam=rtsp://host/stream`: the relay as an RTSP client of an upstream server
//! (manifold-rtsp's sans-IO `ClientSession` driven over a glommio socket), on the shard that
//! owns the stream.
//!
//! * Transport: RTP interleaved on the RTSP connection (default), or UDP on port pairs bound
//!   by the relay (`#udp` after the URL, or `transport = "udp"` in `[[pull]]`). The
//!   connection is `manifold_dial`'s: TLS for `rtsps://` (`#ca=FILE`, `#insecure`, else the
//!   system's roots), an HTTP tunnel with `#http` (`http_tunnel = true`).
//! * Like a player, it sends the upstream RTCP receiver reports ([`crate::pull_reports`]),
//!   besides the client session's RTSP keep-alives.
//! * Reconnects with exponential backoff (0.5 s doubling to 30 s, back to 0.5 s once a
//!   session has delivered media), each attempt logged with the upstream URL. A session that
//!   stops delivering media for [`MEDIA_SILENCE`] is dropped and reconnected.
//! * Continuity: the stream's hub runs with continuity on, so across reconnects the readers
//!   keep their sessions and see one continuous stream (`Hub::upstream_restarted` on each
//!   reconnect). An upstream that comes back with an incompatible SDP (another media count or
//!   encodings) ends the stream: its readers get BYE, and the new SDP is published.
//! * Always-on (default), or on demand (`#on-demand`, `on_demand = true`): a DESCRIBE of the
//!   path starts it (the DESCRIBE waits up to [`DESCRIBE_WAIT`] for the upstream's SDP), and it
//!   stops `pull_grace_secs` after its last reader left.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;
use glommio::{spawn_local, timer, Task};
use manifold_dial::{Conn, Dialer, OpenError, TunnelAt};
use manifold_rtsp::codec::{write_request, write_response, Decoder, Item};
use manifold_rtsp::header::PortRange;
use manifold_rtsp::session::client::{
    ClientConfig, ClientError, ClientEvent, ClientSession, ClientTrack, MediaTransport,
};
use manifold_rtsp::Method;
use manifold_sdp::Sdp;
use manifold_tls::client::{TlsClientError, Trust};

use crate::config::{redact, PullConfig, PullTransport};
use crate::error::chain;
use crate::plane::hub::Hub;
use crate::pull_reports::PullReports;
use crate::registry::{PathBusy, StreamInfo, TrackInfo};
use crate::shard::{Media, Shard};

/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long to wait for the upstream's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write to the upstream may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A playing session without media for this long is dropped and reconnected.
pub(crate) const MEDIA_SILENCE: Duration = Duration::from_secs(10);
/// How long a DESCRIBE of an on-demand path waits for the upstream's SDP.
pub(crate) const DESCRIBE_WAIT: Duration = Duration::from_secs(10);
/// How often the session loop looks at shutdown and on-demand idleness.
const TICK: Duration = Duration::from_millis(250);
/// UDP port pairs bound per UDP pull: the client session needs them before DESCRIBE tells
/// how many tracks there are.
const UDP_PAIRS: usize = 4;
/// Most paths an edge pulls from its origin at once (each a DESCRIBE away for any reader).
const MAX_ORIGIN_PULLS: usize = 1024;
/// Bytes read from the upstream's connection per call.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes buffered for one incomplete item (an interleaved frame is at most 64 KiB).
const MAX_BUFFERED: usize = 1 << 20;

/// For a DESCRIBE of an unpublished `path`: if it is an on-demand pull, or this relay is an
/// edge (`--origin`), start pulling it and wait (bounded) until the upstream's SDP is
/// published. An edge's pull of a path the origin does not have ends at once (and so does
/// the wait: the reader gets 404).
pub(crate) async fn describe_on_demand(shard: &Rc<Shard>, path: &str) -> Option<Arc<StreamInfo>> {
    let configured = shard.config().pull.iter().any(|p| p.on_demand && p.path == path);
    if !configured {
        let origin = shard.config().origin.as_ref()?;
        if shard.shared.pulls.claim_origin(path, MAX_ORIGIN_PULLS) {
            let pull = PullConfig {
                on_demand: true,
                ..PullConfig::new(path, format!("{}{path}", origin.trim_end_matches('/')))
            };
            let shard = shard.clone();
            spawn_local(async move {
                run(shard.clone(), pull.clone(), true).await;
                shard.shared.pulls.release_origin(&pull.path);
            })
            .detach();
        } else if !shard.shared.pulls.pulled_from_origin(path) {
            tracing::warn!(%path, max = MAX_ORIGIN_PULLS, "edge: too many paths pulled from the origin");
            return None;
        }
    }
    shard.shared.pulls.want(path, Instant::now());
    let give_up = Instant::now() + DESCRIBE_WAIT;
    while Instant::now() < give_up {
        if let Some(info) = shard.registry().lookup(path) {
            return Some(info);
        }
        if !configured && !shard.shared.pulls.pulled_from_origin(path) {
            // The origin refused it (or is unreachable): no point in waiting.
            return None;
        }
        timer::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(%path, side = "upstream", "on-demand pull gave no SDP in time");
    None
}

/// What must stay the same for a returning upstream to continue the readers' stream: per
/// media, its kind and encodings.
pub(crate) fn signature(sdp: &Sdp) -> Vec<(String, Vec<String>)> {
    sdp.media()
        .iter()
        .map(|m| {
            let encodings = m
                .media_line()
                .payload_types()
                .map(|pt| match m.rtpmap(pt) {
                    Some(r) => format!("{}/{}", r.encoding.to_ascii_uppercase(), r.clock_rate),
                    None => pt.to_string(),
                })
                .collect();
            (m.media_line().media.to_string(), encodings)
        })
        .collect()
}

/// Starts the pulls this shard owns (pull `i` belongs to shard `i % shards`).
pub(crate) fn start_all(shard: &Rc<Shard>) {
    for (i, pull) in shard.config().pull.iter().enumerate() {
        if i % shard.shards() == shard.id() {
            spawn_local(run(shard.clone(), pull.clone(), false)).detach();
        }
    }
}

/// The stream a pull keeps across upstream sessions.
struct Kept {
    stream: Arc<StreamInfo>,
    signature: Vec<(String, Vec<String>)>,
}

/// Why an upstream session ended (logged with the path, the upstream's URL and
/// `side = "upstream"`, then the pull reconnects).
#[derive(Debug, thiserror::Error)]
enum PullError {
    /// The URL names no RTSP server.
    #[error("upstream URL {url} is unusable")]
    Url {
        /// The URL, its password replaced by `***`.
        url: String,
        source: manifold_rtsp::url::UrlError,
    },
    /// Resolving the upstream's host failed.
    #[error("cannot resolve {host} port {port}")]
    Resolve { host: String, port: u16, source: io::Error },
    /// The upstream's host resolves to no address.
    #[error("{host} port {port} resolves to nothing")]
    Unresolved { host: String, port: u16 },
    /// The TCP connection to the upstream failed (or timed out).
    #[error("cannot connect to {addr}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// The TLS configuration for an `rtsps://` upstream cannot be built (CA file, system
    /// roots, host name).
    #[error("TLS for the upstream")]
    TlsConfig(#[source] TlsClientError),
    /// The TLS handshake with the upstream, or opening the HTTP tunnel to it, failed.
    #[error("opening the connection to {addr}")]
    Open { addr: SocketAddr, source: OpenError },
    /// The connection's local address (where the UDP ports are bound) is unknown.
    #[error("cannot read the connection's local address")]
    LocalAddress(#[source] io::Error),
    /// Binding the UDP port pairs for the upstream's media failed.
    #[error("cannot bind UDP port pairs on {ip}")]
    UdpPorts { ip: IpAddr, source: io::Error },
    /// Sending a request to the upstream failed.
    #[error("sending {method}")]
    Send { method: Method, source: io::Error },
    /// Answering the upstream's request failed.
    #[error("answering the upstream")]
    Answer(#[source] io::Error),
    /// Sending a receiver report on the connection failed.
    #[error("sending a receiver report")]
    Report(#[source] io::Error),
    /// Reading from the upstream failed.
    #[error("reading")]
    Read(#[source] io::Error),
    /// The upstream closed the TCP connection.
    #[error("the upstream closed the connection")]
    Closed,
    /// The upstream sent bytes that are not RTSP.
    #[error("unparseable bytes from the upstream")]
    Unparseable(#[source] manifold_rtsp::ParseError),
    /// The upstream answered with an error, did not answer, or answered wrongly.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// The client session machine ended the session (TEARDOWN answered).
    #[error("session closed")]
    SessionClosed,
    /// A playing session stopped delivering media.
    #[error("no media for {} s", .0.as_secs())]
    Silent(Duration),
    /// An item grew beyond what is buffered for one.
    #[error("more than {0} bytes without a complete message")]
    Oversized(usize),
    /// The relay ended the stream (a publisher took the path over).
    #[error("the stream was ended by the relay (path taken over)")]
    Ended,
    /// The path is published by someone else.
    #[error(transparent)]
    Publish(#[from] PathBusy),
}

/// How a session ended without an error.
enum Outcome {
    /// On demand, and nobody reads: stopped (at this instant: a DESCRIBE after it restarts).
    Idle(Instant),
    /// The relay is shutting down.
    Shutdown,
}

/// On demand: whether the pull may stop (no readers, and no DESCRIBE within the grace).
fn idle(shard: &Shard, pull: &PullConfig, kept: Option<&Kept>, last_read: Instant) -> bool {
    if !pull.on_demand {
        return false;
    }
    if kept.is_some_and(|k| shard.has_readers(k.stream.id)) {
        return false;
    }
    let grace = Duration::from_secs(shard.config().pull_grace_secs);
    let since = shard.shared.pulls.wanted_at(&pull.path).map_or(last_read, |w| w.max(last_read));
    since.elapsed() >= grace
}

/// Runs a pull until the relay stops; one `from_origin` (an edge's) ends instead when it goes
/// idle, or when its first session fails before the stream was published.
async fn run(shard: Rc<Shard>, pull: PullConfig, from_origin: bool) {
    let url = redact(&pull.url);
    let path = pull.path.clone();
    let mut kept: Option<Kept> = None;
    let mut backoff = BACKOFF_MIN;
    // When the on-demand pull last went idle: a DESCRIBE after that starts it again.
    let mut idle_at = Instant::now();
    tracing::info!(%path, upstream = %url, transport = ?pull.transport, on_demand = pull.on_demand,
        http_tunnel = pull.http_tunnel,
        "pull configured");
    loop {
        if shard.shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        if pull.on_demand && kept.is_none() {
            // Wait for a reader to ask.
            while shard.shared.pulls.wanted_at(&path).is_none_or(|w| w <= idle_at) {
                if shard.shared.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                timer::sleep(Duration::from_millis(50)).await;
            }
            tracing::info!(%path, upstream = %url, "on-demand pull starting: a reader asked");
        }
        let media = Rc::new(Cell::new(0u64));
        let result = session(&shard, &pull, &mut kept, &media).await;
        match result {
            Ok(Outcome::Shutdown) => return,
            Ok(Outcome::Idle(at)) => {
                idle_at = at;
                tracing::info!(%path, upstream = %url, "on-demand pull stopped: no readers");
                if let Some(k) = kept.take() {
                    shard.end_stream(k.stream.id);
                }
                if from_origin {
                    return;
                }
                backoff = BACKOFF_MIN;
                continue;
            }
            Err(e) if from_origin && kept.is_none() => {
                tracing::info!(%path, upstream = %url, side = "upstream", error = %chain(&e),
                    "edge: the origin does not serve this path");
                return;
            }
            Err(e) => {
                if media.get() > 0 {
                    backoff = BACKOFF_MIN;
                }
                tracing::warn!(%path, upstream = %url, side = "upstream", error = %chain(&e),
                    packets = media.get(), retry_in_ms = backoff.as_millis() as u64,
                    "pull session ended; reconnecting");
            }
        }
        let wake = Instant::now() + backoff;
        let idle_since = Instant::now();
        while Instant::now() < wake {
            if shard.shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            timer::sleep(TICK.min(wake.saturating_duration_since(Instant::now()))).await;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if idle(&shard, &pull, kept.as_ref(), idle_since) {
            tracing::info!(%path, upstream = %url, "on-demand pull stopped while the upstream is away: no readers");
            idle_at = Instant::now();
            if let Some(k) = kept.take() {
                shard.end_stream(k.stream.id);
            }
            if from_origin {
                return;
            }
        }
    }
}

/// Binds `UDP_PAIRS` RTP/RTCP socket pairs (even RTP port, RTCP on the next) on `ip`.
fn bind_pairs(ip: std::net::IpAddr) -> std::io::Result<Vec<(UdpSocket, UdpSocket, u16)>> {
    (0..UDP_PAIRS)
        .map(|_| {
            let manifold_udp::PortPair { rtp, rtcp, port } = manifold_udp::bind_pair(ip)?;
            let rtp = crate::sys::glommio_udp(rtp);
            crate::sys::set_recv_buffer(crate::sys::fd_of(&rtp), crate::sys::INGEST_RCVBUF);
            Ok((rtp, crate::sys::glommio_udp(rtcp), port))
        })
        .collect()
}

/// Receives one UDP track into the hub until cancelled: only datagrams from the upstream's
/// address count (anything else on the port is dropped, and counted in the log once).
async fn udp_track(
    shard: Rc<Shard>,
    stream: Arc<StreamInfo>,
    (socket, upstream): (Rc<UdpSocket>, IpAddr),
    track: usize,
    rtcp: bool,
    media: Rc<Cell<u64>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut foreign = 0u64;
    loop {
        // A receive that finds a datagram waiting does not yield (ARCHITECTURE.md, Connections).
        glommio::yield_if_needed().await;
        match socket.recv_from(&mut buf).await {
            Ok((_, from)) if from.ip() != upstream => {
                foreign += 1;
                if foreign == 1 {
                    tracing::warn!(path = %stream.path, track, %from, %upstream, side = "upstream",
                        "pull: datagram from another address than the upstream's dropped");
                }
            }
            Ok((n, _)) => {
                let Some(bytes) = buf.get(..n) else { continue };
                let kind = if rtcp { Media::Rtcp } else { Media::Rtp };
                if !rtcp {
                    media.set(media.get() + 1);
                }
                shard.ingest(Instant::now(), stream.id, track, bytes, kind);
            }
            Err(e) => {
                tracing::debug!(path = %stream.path, track, error = %e, side = "upstream",
                    "pull UDP receive failed");
                timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Publishes the upstream's SDP, or continues the kept stream when it is compatible.
fn adopt(
    shard: &Rc<Shard>,
    pull: &PullConfig,
    kept: &mut Option<Kept>,
    sdp: &Sdp,
) -> Result<Arc<StreamInfo>, PathBusy> {
    let sig = signature(sdp);
    // A stream ended by someone else (a publisher took the path over) is not continued.
    if kept.as_ref().is_some_and(|k| !shard.has_hub(k.stream.id)) {
        *kept = None;
    }
    if let Some(k) = kept.as_ref() {
        if k.signature == sig {
            shard.upstream_restarted(k.stream.id);
            tracing::info!(path = %pull.path, stream = k.stream.id, side = "upstream",
                "upstream back: readers continue the same stream");
            return Ok(k.stream.clone());
        }
        tracing::warn!(path = %pull.path, side = "upstream",
            "upstream came back with another SDP: closing its readers");
        if let Some(k) = kept.take() {
            shard.end_stream(k.stream.id);
        }
    }
    let tracks = TrackInfo::all_of(sdp);
    let relay_sdp = crate::registry::relay_sdp(sdp.clone());
    let info = shard.registry().publish(&pull.path, shard.id(), relay_sdp, tracks)?;
    let hub = Hub::new(info.clone(), shard.shards(), shard.config().gop_cache)
        .with_continuity(crate::sys::random_u32);
    shard.add_hub(hub);
    tracing::info!(path = %pull.path, stream = info.id, tracks = info.tracks.len(),
        "pulled stream published");
    *kept = Some(Kept { stream: info.clone(), signature: sig });
    Ok(info)
}

/// Which track an interleaved channel carries, and whether it is RTCP.
fn route(tracks: &[ClientTrack], channel: u8) -> Option<(usize, bool)> {
    tracks.iter().enumerate().find_map(|(i, t)| {
        let first = t
            .transport
            .as_ref()
            .and_then(|s| s.interleaved)
            .map_or(u8::try_from(2 * i).unwrap_or(254), |c| c.first.0);
        if channel == first {
            Some((i, false))
        } else if channel == first.wrapping_add(1) {
            Some((i, true))
        } else {
            None
        }
    })
}

/// Writes all of `bytes` to the upstream within [`WRITE_TIMEOUT`].
async fn write_bounded(stream: &mut Conn, bytes: &[u8]) -> io::Result<()> {
    match timer::timeout(WRITE_TIMEOUT, async { Ok(stream.write_all(bytes).await) }).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "upstream took no bytes for 10 s")),
    }
}

/// One upstream session: connect, DESCRIBE, SETUP, PLAY, receive until it fails.
async fn session(
    shard: &Rc<Shard>,
    pull: &PullConfig,
    kept: &mut Option<Kept>,
    media: &Rc<Cell<u64>>,
) -> Result<Outcome, PullError> {
    let upstream = manifold_rtsp::url::authority(&pull.url)
        .map_err(|source| PullError::Url { url: redact(&pull.url), source })?;
    let (host, port) = (upstream.host, upstream.port);
    // Resolved off the shard thread: a slow DNS server must not stall the shard's streams.
    let addr = crate::resolve::resolve(host, port)
        .await
        .map_err(|source| PullError::Resolve { host: host.to_owned(), port, source })?
        .ok_or_else(|| PullError::Unresolved { host: host.to_owned(), port })?;
    let dialer = Rc::new(dialer(pull, addr, host).map_err(PullError::TlsConfig)?);
    let (mut stream, _) =
        dialer.open(CONNECT_TIMEOUT, CONNECT_TIMEOUT).await.map_err(|e| match e {
            OpenError::Connect(source) => PullError::Connect { addr, source },
            source => PullError::Open { addr, source },
        })?;
    let mut pairs = Vec::new();
    let transport = match pull.transport {
        PullTransport::Tcp => MediaTransport::Interleaved,
        PullTransport::Udp => {
            let ip = stream.local_addr().map_err(PullError::LocalAddress)?.ip();
            pairs = bind_pairs(ip).map_err(|source| PullError::UdpPorts { ip, source })?;
            MediaTransport::Udp {
                client_ports: pairs
                    .iter()
                    .map(|(_, _, p)| PortRange { first: *p, last: p.saturating_add(1) })
                    .collect(),
            }
        }
    };
    let mut cnonce = [0u8; 8];
    crate::sys::fill_random(&mut cnonce);
    let config = ClientConfig {
        transport,
        // Basic sends the password in clear: only when the pull says so, or over TLS.
        allow_basic: pull.allow_basic || upstream.secure,
        cnonce: cnonce.iter().map(|b| format!("{b:02x}")).collect(),
        user_agent: Some(crate::redirect::PULL_USER_AGENT.to_owned()),
        ..ClientConfig::play(pull.url.clone())
    };
    let mut client = ClientSession::new(config);
    let mut decoder = Decoder::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out = Vec::with_capacity(1024);
    let mut stream_info: Option<Arc<StreamInfo>> = None;
    let mut tracks: Vec<ClientTrack> = Vec::new();
    let mut tasks: Vec<Task<()>> = Vec::new();
    let mut playing_since: Option<Instant> = None;
    let mut last_media = Instant::now();
    let mut last_count = 0u64;
    let mut last_read = Instant::now();
    // Per track, its RTCP socket (UDP pulls), which also sends the receiver reports.
    let mut rtcp_sockets: Vec<Rc<UdpSocket>> = Vec::new();
    let mut reports: Option<PullReports> = None;
    let result: Result<Outcome, PullError> = 'run: loop {
        let now = Instant::now();
        while let Some(req) = client.poll_transmit(now) {
            out.clear();
            write_request(&req, &mut out);
            tracing::debug!(path = %pull.path, method = %req.method, side = "upstream", "pull request");
            if let Err(e) = write_bounded(&mut stream, &out).await {
                break 'run Err(PullError::Send { method: req.method, source: e });
            }
        }
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::Described { sdp, .. } => match adopt(shard, pull, kept, &sdp) {
                    Ok(info) => stream_info = Some(info),
                    Err(e) => break 'run Err(e.into()),
                },
                ClientEvent::Ready { tracks: ready, session } => {
                    tracing::debug!(path = %pull.path, session = %session, side = "upstream",
                        "pull set up");
                    if let (Some(info), PullTransport::Udp) = (&stream_info, pull.transport) {
                        for (i, (rtp, rtcp, _)) in
                            std::mem::take(&mut pairs).into_iter().enumerate()
                        {
                            if i >= ready.len() {
                                break;
                            }
                            let from = addr.ip();
                            let rtcp = Rc::new(rtcp);
                            rtcp_sockets.push(rtcp.clone());
                            let t = spawn_local(udp_track(
                                shard.clone(),
                                info.clone(),
                                (Rc::new(rtp), from),
                                i,
                                false,
                                media.clone(),
                            ));
                            tasks.push(t);
                            let t = spawn_local(udp_track(
                                shard.clone(),
                                info.clone(),
                                (rtcp, from),
                                i,
                                true,
                                media.clone(),
                            ));
                            tasks.push(t);
                        }
                    }
                    tracks = ready;
                }
                ClientEvent::Playing { .. } => {
                    tracing::info!(path = %pull.path, upstream = %redact(&pull.url),
                        session = ?client.session().map(|s| s.0.clone()), transport = ?pull.transport,
                        "pulling");
                    playing_since = Some(Instant::now());
                    last_media = Instant::now();
                    reports = Some(PullReports::start(
                        now,
                        &tracks,
                        rtcp_sockets.clone(),
                        addr.ip(),
                        stream.local_addr().ok().map(|a| a.ip()),
                        crate::sys::random_u32(),
                    ));
                }
                ClientEvent::Failed(e) => break 'run Err(e.into()),
                ClientEvent::Closed => break 'run Err(PullError::SessionClosed),
                _ => {}
            }
        }
        if let (Some(r), Some(info)) = (reports.as_mut(), &stream_info) {
            let frames = match r.send_if_due(now, shard, info.id).await {
                Ok(frames) => frames,
                Err(e) => break 'run Err(PullError::Report(e)),
            };
            if !frames.is_empty() {
                if let Err(e) = write_bounded(&mut stream, frames).await {
                    break 'run Err(PullError::Report(e));
                }
            }
        }
        // Liveness, shutdown and on-demand idleness.
        if shard.shared.shutdown.load(Ordering::Relaxed) {
            break 'run Ok(Outcome::Shutdown);
        }
        if media.get() != last_count {
            last_count = media.get();
            last_media = Instant::now();
        }
        if let Some(info) = &stream_info {
            if !shard.has_hub(info.id) {
                break 'run Err(PullError::Ended);
            }
            if shard.has_readers(info.id) {
                last_read = Instant::now();
            }
        }
        if playing_since.is_some() && last_media.elapsed() >= MEDIA_SILENCE {
            break 'run Err(PullError::Silent(MEDIA_SILENCE));
        }
        if idle(shard, pull, kept.as_ref(), last_read) {
            let at = Instant::now();
            client.teardown();
            if let Some(req) = client.poll_transmit(Instant::now()) {
                out.clear();
                write_request(&req, &mut out);
                let _ = write_bounded(&mut stream, &out).await;
            }
            break 'run Ok(Outcome::Idle(at));
        }
        if buf.len() >= MAX_BUFFERED {
            break 'run Err(PullError::Oversized(MAX_BUFFERED));
        }
        // A read that finds bytes waiting does not yield (ARCHITECTURE.md, Connections).
        glommio::yield_if_needed().await;
        let deadline = client.poll_timeout().map_or(now + TICK, |d| d.min(now + TICK));
        let deadline = reports.as_ref().map_or(deadline, |r| deadline.min(r.poll_timeout()));
        let len = buf.len();
        buf.resize(len + READ_CHUNK, 0);
        let read =
            futures_lite::future::or(async { Some(stream.read(&mut buf[len..]).await) }, async {
                timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                None
            })
            .await;
        let now = Instant::now();
        match read {
            None => {
                buf.truncate(len);
                client.handle_timeout(now);
            }
            Some(Ok(0)) => {
                buf.truncate(len);
                break 'run Err(PullError::Closed);
            }
            Some(Err(e)) => break 'run Err(PullError::Read(e)),
            Some(Ok(n)) => {
                buf.truncate(len + n);
                let mut start = 0;
                let mut answers = Vec::new();
                loop {
                    let (item, used) = match decoder.feed(&buf[start..]) {
                        Ok(Some(x)) => x,
                        Ok(None) => break,
                        Err(e) => break 'run Err(PullError::Unparseable(e)),
                    };
                    match item {
                        Item::Response(r) => client.handle_response(now, &r),
                        Item::Request(r) => {
                            write_response(&client.handle_request(now, &r), &mut answers)
                        }
                        Item::Interleaved { channel, payload } => {
                            if let (Some(info), Some((track, rtcp))) =
                                (&stream_info, route(&tracks, channel.0))
                            {
                                let kind = if rtcp { Media::Rtcp } else { Media::Rtp };
                                if !rtcp {
                                    media.set(media.get() + 1);
                                }
                                shard.ingest(now, info.id, track, payload, kind);
                            }
                        }
                    }
                    start += used;
                }
                if start > 0 {
                    buf.drain(..start);
                    decoder.reset();
                }
                if !answers.is_empty() {
                    if let Err(e) = write_bounded(&mut stream, &answers).await {
                        break 'run Err(PullError::Answer(e));
                    }
                }
            }
        }
    };
    for t in tasks {
        t.cancel().await;
    }
    drop(stream);
    result
}

/// How to reach the upstream: TLS for `rtsps://` (trusting `#ca=FILE`, anything with
/// `#insecure`, else the system's roots), through an HTTP tunnel with `#http`. Built per
/// attempt, so a CA file replaced on disk is read again at the next reconnect.
fn dialer(pull: &PullConfig, addr: SocketAddr, host: &str) -> Result<Dialer, TlsClientError> {
    let secure = pull.url.starts_with("rtsps://");
    let tls = if secure {
        let trust = match (&pull.tls_ca, pull.tls_insecure) {
            (Some(file), _) => Trust::CaFile(file.clone()),
            (None, true) => Trust::InsecureAnyCertificate,
            (None, false) => Trust::System,
        };
        Some(manifold_tls::client::client_config(&trust)?)
    } else {
        None
    };
    let tunnel = pull.http_tunnel.then(|| TunnelAt {
        path: manifold_rtsp::tunnel::client::request_target(&pull.url).to_owned(),
        host: if host.contains(':') {
            format!("[{host}]:{}", addr.port())
        } else {
            format!("{host}:{}", addr.port())
        },
        user_agent: crate::redirect::PULL_USER_AGENT.to_owned(),
    });
    Dialer::new(addr, host, tls, tunnel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_errors_name_the_upstream_side_and_keep_the_cause() {
        let e = PullError::Connect {
            addr: "192.0.2.1:554".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(e.to_string(), "cannot connect to 192.0.2.1:554");
        assert!(
            chain(&e).to_string().starts_with("cannot connect to 192.0.2.1:554: "),
            "{}",
            chain(&e)
        );
        let e = PullError::Url {
            url: redact("rtsp://u:secret@h:x/s"),
            source: manifold_rtsp::url::authority("rtsp://u:secret@h:x/s").unwrap_err(),
        };
        assert!(!chain(&e).to_string().contains("secret"), "{}", chain(&e));
        assert_eq!(PullError::Silent(MEDIA_SILENCE).to_string(), "no media for 10 s");
        let e = PullError::from(ClientError::Timeout { method: Method::Describe });
        assert_eq!(e.to_string(), "no response to DESCRIBE");
    }

    #[test]
    fn compatible_sdps_have_the_same_signature() {
        let a = Sdp::parse(
            b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\n\
              m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:a\r\n",
        )
        .unwrap();
        let b = Sdp::parse(
            b"v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=y\r\nt=0 0\r\n\
              m=video 0 RTP/AVP 96\r\na=rtpmap:96 h264/90000\r\na=control:b\r\n",
        )
        .unwrap();
        let c = Sdp::parse(
            b"v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\ns=y\r\nt=0 0\r\n\
              m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n",
        )
        .unwrap();
        assert_eq!(signature(&a), signature(&b));
        assert_ne!(signature(&a), signature(&c));
        assert_eq!(TrackInfo::all_of(&a)[0].codec, Some(manifold_rtp::codec::Codec::H264));
    }
}
