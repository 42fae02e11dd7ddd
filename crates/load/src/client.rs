//! One simulated client on a glommio shard: a real RTSP client through
//! [`ClientSession`]: connect, DESCRIBE, SETUP every track, PLAY, receive for its hold time,
//! TEARDOWN; media over its own UDP port pairs or interleaved on the connection. With
//! `--no-play` it holds after the last SETUP instead of sending PLAY, then tears down.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::random::SplitMix;
use manifold_rtp::report::{receiver_report, ReportClock, MIN_INTERVAL};
use manifold_rtp::Ssrc;
use manifold_rtsp::codec::{write_interleaved, write_request, write_response, Decoder, Item};
use manifold_rtsp::header::RtpInfo;
use manifold_rtsp::header::{LowerTransport, PortRange};
use manifold_rtsp::session::client::{
    ClientConfig, ClientError, ClientEvent, ClientSession, ClientTrack, MediaTransport, RtcpRoute,
};
use manifold_rtsp::Method;

use crate::alarm::Alarms;
use crate::guard::{is_audio_or_video, MediaFault, MediaWatch, RequestLedger, SourceFilter};
use crate::metrics::{ErrorKind, Metric, Metrics};
use crate::progress::Live;
use crate::receiver::TrackReceiver;
use crate::redirect;
use crate::schedule::Arrival;
use crate::target::{Target, TrackInfo};
use crate::udp_media::{self, Receivers, UdpRead, UdpReading, UdpSink};
use manifold_dial::{Conn, Dialer, OpenError};

/// Largest RTSP message or interleaved frame the connection buffer holds.
const READ_BUF: usize = 128 * 1024;
/// The connection buffer's first size. It doubles (up to [`READ_BUF`]) when a read fills it,
/// so a connection with a backlog gets large reads, while thousands of idle or slow ones do
/// not each pin (and zero) the largest size: 128 KiB per session was most of the generator's
/// memory, and zeroing its fresh pages 8% of the generator's CPU over a run.
const READ_BUF_START: usize = 8 * 1024;

/// What every session on a shard shares.
pub(crate) struct SessionEnv {
    pub(crate) target: Target,
    /// How to reach the server: plain, TLS, tunnelled.
    pub(crate) dialer: Rc<Dialer>,
    pub(crate) config: ClientConfig,
    pub(crate) tracks: Vec<TrackInfo>,
    pub(crate) connect_timeout: Duration,
    pub(crate) udp_rcvbuf: usize,
    /// How the shard reads its sessions' UDP sockets.
    pub(crate) udp: Rc<UdpReading>,
    pub(crate) seed: u64,
    /// The run's start: the origin of the shard's grid, on which session deadlines fall.
    pub(crate) run_start: Instant,
    /// The shard's session deadlines, rounded up to the grid and fired on it (one
    /// registration per deadline, not per wait).
    pub(crate) alarms: Rc<Alarms>,
    pub(crate) run_end: Instant,
    /// Past this no session is waited for: it is reported as stuck.
    pub(crate) run_deadline: Instant,
    /// `--media-timeout`.
    pub(crate) media_timeout: Duration,
    /// `--no-play`: hold after the last SETUP without sending PLAY.
    pub(crate) no_play: bool,
    /// `--no-rtcp`: send no receiver reports.
    pub(crate) no_rtcp: bool,
    pub(crate) metrics: Rc<RefCell<Metrics>>,
    pub(crate) live: Arc<Live>,
    /// Sessions in progress on this shard.
    pub(crate) active: std::cell::Cell<u64>,
}

/// Why a session failed.
struct Failure {
    kind: ErrorKind,
    status: Option<u16>,
    message: String,
    /// Where a redirect pointed (the session is started again there).
    redirect: Option<String>,
}

/// Who a session is, for messages.
struct Who<'a> {
    index: u64,
    udp: bool,
    target: &'a Target,
}

impl Who<'_> {
    fn fail(&self, kind: ErrorKind, status: Option<u16>, side: &str, what: String) -> Failure {
        let message = format!(
            "session {} ({}) to {} [{}]: {side} side: {what}",
            self.index,
            if self.udp { "udp" } else { "tcp" },
            self.target.display_url,
            self.target.addr
        );
        Failure { kind, status, message, redirect: None }
    }

    fn io(&self, what: &str, e: &io::Error) -> Failure {
        let kind = match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        self.fail(kind, None, "server", format!("{what}: {e}"))
    }

    fn open(&self, e: &OpenError) -> Failure {
        match e {
            OpenError::Connect(io) => self.io("connect", io),
            OpenError::Tls(io) if io.kind() == io::ErrorKind::TimedOut => {
                self.io("TLS handshake", io)
            }
            OpenError::Tls(_) => self.fail(ErrorKind::Tls, None, "server", e.to_string()),
            OpenError::TunnelIo(io) => self.io("opening the HTTP tunnel", io),
            OpenError::Tunnel(_) => self.fail(ErrorKind::Tunnel, None, "server", e.to_string()),
        }
    }
}

/// One UDP port pair: the RTP socket (handed to glommio) and the RTCP socket (receiver reports
/// go out from it; what the server sends to it is not read).
struct UdpPair {
    rtp: socket2::Socket,
    rtcp: socket2::Socket,
    port: u16,
}

/// Says once per run that the kernel capped the receive buffers: a burst (a server's GOP
/// cache replayed at PLAY, a keyframe) larger than the buffer between two reads is dropped,
/// and the report then counts it as loss the generator caused (`rxq_drops`).
fn warn_short_buffer(size: manifold_udp::BufferSize) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            "UDP receive buffers are {} KiB, not the {} KiB of --udp-rcvbuf: net.core.rmem_max \
             caps them (run as root, or raise it: sysctl -w net.core.rmem_max={}); \
             bursts beyond that are dropped and show as rxq drops",
            size.granted / 1024,
            size.asked / 1024,
            size.asked
        );
    });
}

/// Binds an even RTP port and the odd RTCP port above it on `ip`, with the receive options on
/// the RTP socket.
fn bind_pair(ip: IpAddr, rcvbuf: usize, gro: bool) -> io::Result<UdpPair> {
    let manifold_udp::PortPair { rtp, rtcp, port } = manifold_udp::bind_pair(ip)?;
    match manifold_udp::set_recv_buffer(&rtp, rcvbuf) {
        Ok(size) if size.capped() => warn_short_buffer(size),
        Ok(_) => {}
        Err(e) => tracing::warn!("UDP receive buffer of {rcvbuf} bytes not set: {e}"),
    }
    let _ = manifold_udp::set_gro(&rtp, gro);
    let _ = manifold_udp::set_rxq_ovfl(&rtp, true);
    // Arrival times from the kernel: reading late does not move them.
    let _ = manifold_udp::set_timestamps(&rtp, true);
    // Reports are sent from a shard's thread: never wait on a full send buffer.
    rtcp.set_nonblocking(true)?;
    // The server's sender reports are read on the report clock: the kernel's time of each
    // gives an exact DLSR however late it is read.
    let _ = manifold_udp::set_timestamps(&rtcp, true);
    Ok(UdpPair { rtp, rtcp, port })
}

/// Runs one session from its intended start to its end, and accounts for it.
pub(crate) async fn run_session(env: Rc<SessionEnv>, arrival: Arrival, intended: Instant) {
    env.active.set(env.active.get() + 1);
    env.live.active.fetch_add(1, Ordering::Relaxed);
    let who = Who { index: arrival.index, udp: arrival.udp, target: &env.target };
    // The session watches the run's deadline itself; this only catches an await that would
    // not end (it drops the session, and with it its receivers). An alarm, not a glommio
    // timer: this wait is polled at every wake-up of the session, and a timer re-registers
    // itself at every poll.
    let backstop = env.run_deadline + BACKSTOP;
    let mut backstop_alarm = env.alarms.alarm();
    let result = futures_lite::future::or(session_hops(&env, &arrival, intended), async {
        backstop_alarm.wait(backstop).await;
        Err(who.fail(
            ErrorKind::Stuck,
            None,
            "server",
            "still running past the run's deadline; abandoned".to_owned(),
        ))
    })
    .await;
    {
        let mut m = env.metrics.borrow_mut();
        match result {
            Ok(Ended::Held) => m.counts.ok += 1,
            Ok(Ended::CutByHold) => m.counts.cut_by_hold += 1,
            Err(f) => {
                tracing::debug!("{}", f.message);
                env.live.errors.fetch_add(1, Ordering::Relaxed);
                m.error(f.kind, f.status, || f.message);
            }
        }
    }
    env.live.active.fetch_sub(1, Ordering::Relaxed);
    env.active.set(env.active.get().saturating_sub(1));
}

/// How long past the run's deadline a session that did not stop by itself is abandoned.
const BACKSTOP: Duration = Duration::from_secs(1);

/// Writes all of `bytes`, or fails with `TimedOut` after `limit`: a server that stops reading
/// cannot hold a session forever.
async fn write_within(stream: &mut Conn, bytes: &[u8], limit: Duration) -> io::Result<()> {
    let write = async { stream.write_all(bytes).await };
    futures_lite::future::or(write, async {
        glommio::timer::sleep(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("write not done in {limit:?}")))
    })
    .await
}

/// How a session that did not fail ended.
enum Ended {
    /// It reached PLAY (with `--no-play`, set up every track) and was torn down at the end of
    /// its hold or of the run.
    Held,
    /// Its own hold time ended first, while the server was still answering within the
    /// response timeout: the generator's doing, not the server's.
    CutByHold,
}

/// Runs the session at the run's URL and, when the server redirects it, again where it
/// points ([`redirect`]: a new connection, up to [`redirect::MAX_HOPS`] times).
async fn session_hops(
    env: &Rc<SessionEnv>,
    arrival: &Arrival,
    intended: Instant,
) -> Result<Ended, Failure> {
    let (mut target, mut config, mut hops) = (env.target.clone(), env.config.clone(), 0);
    let mut dialer = env.dialer.clone();
    loop {
        let who = Who { index: arrival.index, udp: arrival.udp, target: &target };
        let (location, status) =
            match session(env, &who, &dialer, &config, hops == 0, arrival, intended).await {
                Err(Failure { redirect: Some(location), status, .. }) => (location, status),
                done => return done,
            };
        let fail = |kind, status, e: redirect::RedirectError| {
            who.fail(kind, status, "server", e.to_string())
        };
        redirect::count_hop(&mut hops, &location)
            .map_err(|e| fail(ErrorKind::Status, status, e))?;
        let next =
            redirect::resolve(&location).await.map_err(|e| fail(ErrorKind::Protocol, None, e))?;
        dialer = redirect::redial(&env.dialer, &next, &location)
            .map(Rc::new)
            .map_err(|e| fail(ErrorKind::Protocol, None, e))?;
        config = redirect::follow(&env.config, &location);
        target = next;
    }
}

/// One session on one connection opened by `dialer` (to `who.target`), with `config` (the
/// run's, or a redirect's); `first`: the run's own server (its connect is timed).
#[allow(clippy::too_many_arguments)]
async fn session(
    env: &Rc<SessionEnv>,
    who: &Who<'_>,
    dialer: &Rc<Dialer>,
    config: &ClientConfig,
    first: bool,
    arrival: &Arrival,
    intended: Instant,
) -> Result<Ended, Failure> {
    let peer = who.target.addr;
    let connect_limit =
        env.connect_timeout.min(env.run_deadline.saturating_duration_since(Instant::now()));
    let (mut stream, phases) =
        dialer.open(connect_limit, env.config.response_timeout).await.map_err(|e| who.open(&e))?;
    if first {
        let mut m = env.metrics.borrow_mut();
        m.record(Metric::Connect, phases.connected.saturating_duration_since(intended));
        if let Some(tls) = phases.tls {
            m.record(Metric::Tls, tls);
        }
        if let Some(tunnel) = phases.tunnel {
            m.record(Metric::Tunnel, tunnel);
        }
    }

    let mut pairs = Vec::new();
    if arrival.udp {
        let ip = stream.local_addr().map(|a| a.ip()).map_err(|e| {
            who.fail(ErrorKind::Io, None, "generator", format!("local address: {e}"))
        })?;
        for _ in &env.tracks {
            // Ring buffers hold one datagram each: no coalescing there.
            let pair = bind_pair(ip, env.udp_rcvbuf, !env.udp.uses_ring()).map_err(|e| {
                who.fail(ErrorKind::Generator, None, "generator", format!("UDP port pair: {e}"))
            })?;
            pairs.push(pair);
        }
    }
    let mut config = config.clone();
    config.transport = if arrival.udp {
        MediaTransport::Udp {
            client_ports: pairs
                .iter()
                .map(|p| PortRange { first: p.port, last: p.port.saturating_add(1) })
                .collect(),
        }
    } else {
        MediaTransport::Interleaved
    };
    let mut rng = SplitMix::new(env.seed ^ arrival.index.wrapping_mul(0x9E37_79B9));
    config.cnonce = format!("{:016x}", rng.next_u64());
    let mut session = ClientSession::new(config);

    let receivers: Receivers = Rc::new(RefCell::new(
        env.tracks
            .iter()
            .map(|t| {
                TrackReceiver::new(t.clock_rate, t.codec, t.stamp_ids)
                    .with_payload_types(t.payload_types)
            })
            .collect(),
    ));
    // RTCP sockets stay bound (the ports are ours) until the session ends.
    let mut rtcp_sockets = Vec::with_capacity(pairs.len());
    let mut udp_sockets: Vec<Option<socket2::Socket>> = Vec::with_capacity(pairs.len());
    for p in pairs {
        udp_sockets.push(Some(p.rtp));
        rtcp_sockets.push(p.rtcp);
    }
    let mut udp_reads: Vec<UdpRead> = Vec::new();
    let mut routes = MediaRoutes::default();
    // Receiver reports: when (started once PLAY is answered), where, and as whom.
    let mut reports: Option<ReportClock> = None;
    let mut report_routes: Vec<(usize, RtcpRoute)> = Vec::new();
    let reporter = Reporter {
        ssrc: Ssrc(rng.next_u64() as u32),
        cname: format!(
            "manifold-load-{}@{}",
            arrival.index,
            stream.local_addr().map_or_else(|_| "unknown".to_owned(), |a| a.ip().to_string())
        ),
    };
    let report_seed = rng.next_u64();
    let mut report_buf = [0u8; 256];

    let end_at = (intended + arrival.hold).min(env.run_end);
    let mut buf = vec![0u8; READ_BUF_START];
    let (mut start, mut end) = (0usize, 0usize);
    let mut decoder = Decoder::default();
    let mut out = Vec::with_capacity(1024);
    let mut ledger = RequestLedger::new();
    let mut watch = MediaWatch::new(env.media_timeout, env.tracks.iter().map(|t| t.kind.as_str()));
    let mut alarm = env.alarms.alarm();
    let write_limit = env.config.response_timeout;
    let mut play_sent: Option<Instant> = None;
    // PLAY answered; with `--no-play`, every track set up.
    let mut reached = false;
    let mut closing = false;
    // The hold ended before PLAY: the in-flight request is still waited for (up to the
    // response timeout, past which the server has failed), then the session is torn down.
    let mut cut_by_hold = false;

    let result: Result<(), Failure> = 'run: loop {
        let now = Instant::now();
        // With `--no-play` the session machine holds after the SETUPs (sending keep-alives)
        // until `teardown()` at the end of the hold.
        while let Some(req) = session.poll_transmit(now) {
            out.clear();
            write_request(&req, &mut out);
            if let Some(cseq) = req.cseq() {
                ledger.sent(cseq, req.method, now);
            }
            if req.method == Method::Play {
                play_sent = Some(now);
                let wall = NtpTime::from_system_time(SystemTime::now());
                for rx in receivers.borrow_mut().iter_mut() {
                    rx.play_sent(wall);
                }
            }
            let sent = write_within(&mut stream, &out, write_limit).await;
            out.clear();
            if let Err(e) = sent {
                break 'run Err(who.io(&format!("sending {}", req.method), &e));
            }
        }
        if let Some(clock) = reports.as_mut().filter(|_| !closing) {
            let due = clock.handle_timeout(now);
            if due {
                routes.read_sender_reports(&env.udp, &rtcp_sockets, &receivers);
            }
            if due && !env.no_rtcp {
                let sent = send_reports(
                    &mut stream,
                    &reporter,
                    peer.ip(),
                    &report_routes,
                    &rtcp_sockets,
                    &receivers,
                    now,
                    &mut report_buf,
                    write_limit,
                )
                .await;
                if let Err(e) = sent {
                    break 'run Err(who.io("sending an RTCP receiver report", &e));
                }
            }
        }
        // Events.
        let mut finished = None;
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::Ready { tracks, .. } => {
                    if env.no_play {
                        reached = true;
                        let setup = intended.elapsed();
                        env.metrics.borrow_mut().record(Metric::Setup, setup);
                        env.live.setup_done(setup);
                    }
                    // Set up even without PLAY: a server that sends media anyway shows in
                    // the counts.
                    for (i, track) in tracks.iter().enumerate() {
                        if let Some(route) = track.rtcp_route() {
                            report_routes.push((i, route));
                        }
                        start_track(
                            env,
                            peer.ip(),
                            i,
                            track,
                            &mut udp_sockets,
                            &receivers,
                            &mut udp_reads,
                            &mut routes,
                        );
                    }
                }
                ClientEvent::Playing { rtp_info } => {
                    reached = true;
                    watch.play_answered(now);
                    // On this clock the server's sender reports are read, and with RTCP on
                    // the receiver reports sent.
                    reports = Some(ReportClock::start(now, MIN_INTERVAL, report_seed));
                    if let Some(info) = rtp_info {
                        announce_first_sequences(&info, session.tracks(), &receivers);
                    }
                    let setup = intended.elapsed();
                    let mut m = env.metrics.borrow_mut();
                    m.record(Metric::Setup, setup);
                    m.counts.played += 1;
                    env.live.setup_done(setup);
                }
                ClientEvent::Closed => finished = Some(Ok(())),
                ClientEvent::Failed(e) => {
                    let sid = session.session().map_or_else(|| "-".to_owned(), |s| s.0.clone());
                    finished = Some(Err(client_failure(who, &sid, &e)));
                }
                _ => {}
            }
        }
        if let Some(r) = finished {
            break 'run r;
        }
        // Wait for bytes or the next deadline. An unanswered TEARDOWN is waited for up to the
        // run's deadline (then the session is stuck), not failed as a slow answer.
        let tearing_down = closing && ledger.waiting_for() == Some(Method::Teardown);
        let mut deadline = if tearing_down { None } else { session.poll_timeout() };
        let mut soonest = |at: Option<Instant>| {
            if let Some(at) = at {
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
        };
        if !closing {
            soonest(Some(end_at));
            soonest(watch.poll_timeout());
            soonest(reports.as_ref().map(ReportClock::poll_timeout));
        }
        soonest(Some(env.run_deadline));
        if end == buf.len() {
            if start == 0 && buf.len() >= READ_BUF {
                break 'run Err(who.fail(
                    ErrorKind::Protocol,
                    None,
                    "server",
                    format!("message larger than {READ_BUF} bytes"),
                ));
            }
            if start == 0 {
                buf.resize((buf.len() * 2).min(READ_BUF), 0);
            } else {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
                decoder.reset();
            }
        }
        // A read that finds bytes waiting does not yield: let the shard's other sessions run
        // once this one has had its share.
        glommio::yield_if_needed().await;
        let wake =
            futures_lite::future::or(async { Some(stream.read(&mut buf[end..]).await) }, async {
                // On the shard's grid, so that one wake-up serves every session due in that
                // step.
                match deadline {
                    Some(at) => alarm.wait(at).await,
                    None => futures_lite::future::pending::<()>().await,
                };
                None
            })
            .await;
        let now = Instant::now();
        // Deadlines are checked after bytes too: over TCP the media may keep the read ready,
        // and keep-alives, reports and the end of the hold must not wait for a quiet moment.
        if wake.is_none() || deadline.is_some_and(|d| now >= d) {
            {
                if now >= env.run_deadline {
                    let waiting = ledger.waiting_for().map_or("-".to_owned(), |m| m.to_string());
                    break 'run Err(who.fail(
                        ErrorKind::Stuck,
                        None,
                        "server",
                        format!("not finished at the run's deadline (waiting for {waiting})"),
                    ));
                }
                if !closing {
                    for (track, rx) in receivers.borrow().iter().enumerate() {
                        if let Some(at) = rx.last_packet() {
                            watch.media(track, at);
                        }
                    }
                    if let Some(fault) = watch.handle_timeout(now) {
                        for rx in receivers.borrow_mut().iter_mut() {
                            rx.deadline_missed();
                        }
                        break 'run Err(media_failure(who, fault, &env.tracks, env.media_timeout));
                    }
                }
                if !closing && now >= end_at {
                    cut_by_hold = !reached;
                    closing = true;
                    watch.stop();
                    session.teardown();
                }
                session.handle_timeout(now);
            }
        }
        match wake {
            None => {}
            Some(Ok(0)) => {
                if closing {
                    break 'run Ok(());
                }
                break 'run Err(who.fail(
                    ErrorKind::Reset,
                    None,
                    "server",
                    "closed the connection".to_owned(),
                ));
            }
            Some(Err(e)) => break 'run Err(who.io("reading", &e)),
            Some(Ok(n)) => {
                end += n;
                if end == buf.len() && buf.len() < READ_BUF {
                    // The socket may hold more: read more at once from now on.
                    buf.resize((buf.len() * 2).min(READ_BUF), 0);
                }
                let arrival_ntp = NtpTime::from_system_time(SystemTime::now());
                let mut packets = 0u64;
                loop {
                    let item = match decoder.feed(&buf[start..end]) {
                        Ok(Some(x)) => x,
                        Ok(None) => break,
                        Err(e) => {
                            break 'run Err(who.fail(
                                ErrorKind::Protocol,
                                None,
                                "server",
                                format!("unparseable bytes: {e}"),
                            ))
                        }
                    };
                    let (item, used) = item;
                    match item {
                        Item::Response(r) => match ledger.answered(r.cseq(), now) {
                            Ok((method, rtt)) => {
                                env.metrics.borrow_mut().record(Metric::rtt_of(method), rtt);
                                session.handle_response(now, &r);
                            }
                            Err(e) => {
                                break 'run Err(who.fail(
                                    ErrorKind::Protocol,
                                    None,
                                    "server",
                                    e.to_string(),
                                ))
                            }
                        },
                        Item::Request(r) => {
                            let answer = session.handle_request(now, &r);
                            write_response(&answer, &mut out);
                            // Answered after this batch of bytes (no await while parsing).
                        }
                        Item::Interleaved { channel, payload } => {
                            if let Some(&(_, track, carries)) =
                                routes.channels.iter().find(|(c, ..)| *c == channel.0)
                            {
                                let mut m = env.metrics.borrow_mut();
                                if let Some(rx) = receivers.borrow_mut().get_mut(track) {
                                    match carries {
                                        Carries::Rtp => {
                                            if rx.handle_packet(now, arrival_ntp, payload, &mut m) {
                                                packets += 1;
                                            }
                                        }
                                        Carries::Rtcp => {
                                            rx.handle_rtcp(now, payload, &mut m);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    start += used;
                }
                if start == end {
                    start = 0;
                    end = 0;
                    decoder.reset();
                }
                env.live.packets.fetch_add(packets, Ordering::Relaxed);
                if !out.is_empty() {
                    if let Err(e) = write_within(&mut stream, &out, write_limit).await {
                        break 'run Err(who.io("answering a server request", &e));
                    }
                    out.clear();
                }
            }
        }
    };

    for r in udp_reads {
        r.stop().await;
    }
    routes.read_sender_reports(&env.udp, &rtcp_sockets, &receivers);
    drop(rtcp_sockets);
    let mut m = env.metrics.borrow_mut();
    let mut rxs = receivers.borrow_mut();
    if let Some(play) = play_sent {
        if let Some(first) = rxs.iter().filter_map(TrackReceiver::first_packet).min() {
            m.record(Metric::FirstRtp, first.saturating_duration_since(play));
        }
        match rxs.iter().filter_map(TrackReceiver::first_keyframe).min() {
            Some(first) => m.record(Metric::FirstKeyframe, first.saturating_duration_since(play)),
            // Video came and no keyframe: `first_keyframe` cannot say so, the count does.
            None if rxs.iter().any(|r| r.sees_keyframes() && r.first_packet().is_some()) => {
                m.counts.no_keyframe += 1;
            }
            None => {}
        }
    }
    // Audio or video that played long enough for several reports and had none.
    let held = env.tracks.iter().map(|t| is_audio_or_video(&t.kind));
    if rxs.iter().zip(held).any(|(rx, av)| av && rx.lacks_sender_reports()) {
        m.counts.no_sender_report += 1;
    }
    for rx in rxs.iter_mut() {
        rx.finish(&mut m);
    }
    result.map(|()| if cut_by_hold { Ended::CutByHold } else { Ended::Held })
}

/// What an interleaved channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    Rtp,
    Rtcp,
}

/// Where a session's tracks come from, once set up: interleaved channels (RTP and RTCP, by
/// track), and for UDP tracks which source their RTCP sockets take.
#[derive(Default)]
struct MediaRoutes {
    channels: Vec<(u8, usize, Carries)>,
    rtcp: Vec<(usize, SourceFilter)>,
}

impl MediaRoutes {
    /// Reads the server's RTCP (its sender reports) waiting on the UDP tracks' sockets.
    fn read_sender_reports(
        &self,
        reading: &UdpReading,
        rtcp_sockets: &[socket2::Socket],
        receivers: &Receivers,
    ) {
        let mut rxs = receivers.borrow_mut();
        for &(track, filter) in &self.rtcp {
            if let (Some(socket), Some(rx)) = (rtcp_sockets.get(track), rxs.get_mut(track)) {
                udp_media::read_rtcp(reading, socket, filter, rx);
            }
        }
    }
}

/// Who a session's receiver reports come from.
struct Reporter {
    ssrc: Ssrc,
    cname: String,
}

/// Sends one receiver report per routed track, each with that track's report block (RFC 3550:
/// every track is an RTP session of its own, reported on its own RTCP port or channel).
#[allow(clippy::too_many_arguments)] // The session's parts it reads; no state of its own.
async fn send_reports(
    stream: &mut Conn,
    reporter: &Reporter,
    server: IpAddr,
    routes: &[(usize, RtcpRoute)],
    rtcp_sockets: &[socket2::Socket],
    receivers: &Receivers,
    now: Instant,
    buf: &mut [u8],
    write_limit: Duration,
) -> io::Result<()> {
    let mut frames = Vec::new();
    for (track, route) in routes {
        let block = receivers.borrow_mut().get_mut(*track).and_then(|rx| rx.report_block(now));
        let len = receiver_report(buf, reporter.ssrc, &reporter.cname, block)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let compound = &buf[..len];
        match route {
            RtcpRoute::Udp { port } => {
                if let Some(socket) = rtcp_sockets.get(*track) {
                    // Best effort, as for any datagram: a full send buffer loses one report.
                    let _ = socket.send_to(compound, &SocketAddr::new(server, *port).into());
                }
            }
            RtcpRoute::Interleaved { channel } => {
                write_interleaved(*channel, compound, &mut frames)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            }
        }
    }
    if !frames.is_empty() {
        write_within(stream, &frames, write_limit).await?;
    }
    Ok(())
}

fn media_failure(
    who: &Who<'_>,
    fault: MediaFault,
    tracks: &[TrackInfo],
    timeout: Duration,
) -> Failure {
    // Which track, when there is more than one to tell apart.
    let on = |track: usize| match tracks.get(track) {
        Some(t) if tracks.len() > 1 => format!(" on track {track} ({})", t.kind),
        _ => String::new(),
    };
    match fault {
        MediaFault::NoMedia { track } => who.fail(
            ErrorKind::NoMedia,
            None,
            "server",
            format!("no media{} within {:.1}s of PLAY's answer", on(track), timeout.as_secs_f64()),
        ),
        MediaFault::Stalled { track, silent_for } => who.fail(
            ErrorKind::Stalled,
            None,
            "server",
            format!("media{} stopped for {:.1}s", on(track), silent_for.as_secs_f64()),
        ),
    }
}

/// Tells each track's receiver the first sequence number RTP-Info announced for it: entries
/// are matched to tracks by URL (equal, or one ending in the other, as servers send relative
/// or absolute ones), else by position when there is one entry per track.
fn announce_first_sequences(info: &RtpInfo, tracks: &[ClientTrack], receivers: &Receivers) {
    let mut rxs = receivers.borrow_mut();
    for (index, entry) in info.entries.iter().enumerate() {
        let Some(seq) = entry.seq else { continue };
        let by_url = tracks.iter().position(|t| {
            t.url == entry.url || t.url.ends_with(&entry.url) || entry.url.ends_with(&t.url)
        });
        let track = by_url.or((info.entries.len() == tracks.len()).then_some(index));
        if let Some(rx) = track.and_then(|i| rxs.get_mut(i)) {
            rx.rtp_info(seq);
        }
    }
}

fn client_failure(who: &Who<'_>, sid: &str, e: &ClientError) -> Failure {
    let (kind, status) = match e {
        ClientError::Redirected { status, location, .. } => {
            let mut f = who.fail(ErrorKind::Status, Some(status.0), "server", e.to_string());
            f.redirect = Some(location.clone());
            return f;
        }
        ClientError::Status { status, .. } => (ErrorKind::Status, Some(status.0)),
        ClientError::Timeout { .. } => (ErrorKind::Timeout, None),
        ClientError::Unauthorized { .. } => (ErrorKind::Auth, None),
        _ => (ErrorKind::Protocol, None),
    };
    who.fail(kind, status, "server", format!("RTSP session {sid}: {e}"))
}

/// Starts receiving track `i` from `server`: a receiver task on its UDP socket, or its
/// interleaved channel.
#[allow(clippy::too_many_arguments)] // The session's parts it sets up; no state of its own.
fn start_track(
    env: &Rc<SessionEnv>,
    server: IpAddr,
    i: usize,
    track: &ClientTrack,
    udp_sockets: &mut [Option<socket2::Socket>],
    receivers: &Receivers,
    udp_reads: &mut Vec<UdpRead>,
    routes: &mut MediaRoutes,
) {
    let spec = track.transport.as_ref().unwrap_or(&track.offer);
    match spec.lower_transport() {
        LowerTransport::Tcp => {
            let range = spec.interleaved.or(track.offer.interleaved);
            if let Some(r) = range {
                routes.channels.push((r.first.0, i, Carries::Rtp));
                if r.last.0 != r.first.0 {
                    routes.channels.push((r.last.0, i, Carries::Rtcp));
                }
            }
        }
        LowerTransport::Udp => {
            if let Some(sock) = udp_sockets.get_mut(i).and_then(Option::take) {
                // The server sends from its address (or the `source` its answer names) and
                // the `server_port`s it announced.
                let ip =
                    spec.source.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or(server);
                let ports = track.transport.as_ref().and_then(|t| t.server_port);
                let filter = SourceFilter::new(ip, ports);
                routes.rtcp.push((i, filter));
                let sink = UdpSink::new(i, filter, receivers.clone());
                udp_reads.extend(udp_media::start(&env.udp, sock, sink));
            }
        }
    }
}
