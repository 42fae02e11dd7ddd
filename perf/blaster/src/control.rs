//! The control plane: minimal but real RTSP on one thread with epoll (thousands of
//! connections, one fd each, no thread per connection).
//!
//! Every path serves the one stream: OPTIONS, DESCRIBE (the source's SDP with `a=control:*`
//! and `a=control:trackID=N` per media, everything else kept, `a=extmap` included), SETUP
//! (UDP `client_port` pairs answered with the server-port pair, or TCP `interleaved`), PLAY
//! (`Range: npt=0.000-`), PAUSE, TEARDOWN (of the session or of one track),
//! GET_PARAMETER/SET_PARAMETER. Protocol checks (CSeq, Session, 454, 455, 460, 461 for a
//! non-RTP transport, 400) are manifold-rtsp's `ServerSessions`, one per connection; the
//! media answers (404 for an unknown track, 461 for a transport we cannot serve, 405 for
//! publishing) are here. Sessions live as long as their connection (no timeout: clients of
//! a benchmark keep their connection open).
//!
//! Readers start and stop through [`Command`]s to the packet thread. A connection with an
//! interleaved reader is handed over to the packet thread, which writes everything on it from
//! then on (responses go as [`Command::Write`]); this thread keeps reading it.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use manifold_rtsp::codec::{write_response, Decoder, Item, Limits};
use manifold_rtsp::header::{
    ChannelRange, Delivery, Destination, LowerTransport, PortRange, Profile, Session, Transport,
    TransportMode, TransportSpec, TypedHeader,
};
use manifold_rtsp::session::server::{Action, Decision, Pending, ServerConfig, ServerSessions};
use manifold_rtsp::{ChannelId, Method, Request, Response, SessionId, StatusCode};
use manifold_sdp::Sdp;
use manifold_sys::epoll::{self, Epoll};
use manifold_udp::RawAddr;

use crate::packet::{Command, Dest};

/// The methods answered, for `Public` and `Allow`.
const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// The `Server` header.
const SERVER: &str = "manifold-perf-blaster";
/// Token of the listening socket.
const LISTENER: u64 = u64::MAX;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes buffered for an incomplete request (or interleaved frame).
const MAX_BUFFERED: usize = 1 << 20;
/// How long accepting pauses when the process is out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// What DESCRIBE serves and SETUP resolves against.
#[derive(Debug, Clone)]
pub(crate) struct StreamInfo {
    /// The SDP body, controls rewritten.
    pub(crate) sdp: String,
    /// Number of media (tracks).
    pub(crate) tracks: usize,
    /// Per track: its payload types.
    pub(crate) payload_types: Vec<Vec<u8>>,
}

impl StreamInfo {
    /// Reads the source's SDP: the session gets `a=control:*`, media `i` gets
    /// `a=control:trackID=i`; every other line is kept as it was.
    pub(crate) fn from_sdp(text: &[u8]) -> anyhow::Result<StreamInfo> {
        let mut sdp = Sdp::parse(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        if sdp.media().is_empty() {
            anyhow::bail!("no media (m=) section");
        }
        sdp.set_control("*");
        for (i, m) in sdp.media_mut().iter_mut().enumerate() {
            m.set_control(&format!("trackID={i}"));
        }
        let payload_types =
            sdp.media().iter().map(|m| m.media_line().payload_types().collect()).collect();
        Ok(StreamInfo { tracks: sdp.media().len(), sdp: sdp.to_string(), payload_types })
    }
}

/// The control plane's fixed inputs.
#[derive(Debug)]
pub(crate) struct ControlPlane {
    /// The RTSP listener (non-blocking).
    pub(crate) listener: TcpListener,
    /// The stream.
    pub(crate) stream: StreamInfo,
    /// The RTP server port (even; RTCP is the next one) UDP readers are sent from.
    pub(crate) server_port: u16,
    /// Commands to the packet thread.
    pub(crate) commands: Sender<Command>,
    /// Wakes the packet thread after a command.
    pub(crate) wake: UnixDatagram,
    /// Log connections and sessions to stderr.
    pub(crate) verbose: bool,
}

/// A connection's playing session.
#[derive(Debug)]
struct Player {
    session: Option<SessionId>,
    /// Per stream track: where it goes, if set up.
    tracks: Vec<Option<Dest>>,
    /// The reader id while playing.
    reader: Option<u64>,
}

/// One RTSP connection.
#[derive(Debug)]
struct Conn {
    id: u64,
    /// Its slot in the connection table, which is its epoll token.
    slot: usize,
    stream: TcpStream,
    peer: SocketAddr,
    inbuf: Vec<u8>,
    decoder: Decoder,
    /// Bytes not yet written (only while this thread writes the connection).
    out: Vec<u8>,
    /// Whether EPOLLOUT is armed.
    want_write: bool,
    /// The packet thread writes this connection (it has, or had, an interleaved reader).
    handed_over: bool,
    sessions: ServerSessions<fn(&mut [u8])>,
    player: Option<Player>,
    /// The peer sent something that cannot be resynchronised: close once `out` is written.
    closing: bool,
}

/// What to do once a response is on its way.
enum Post {
    /// Start reader `reader` with these tracks.
    Join { reader: u64, tracks: Vec<Option<Dest>> },
}

/// The control plane's state.
struct Control {
    plane: ControlPlane,
    epoll: Epoll,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_id: u64,
}

/// Serves RTSP until the process exits; returns only on an epoll failure.
pub(crate) fn run(plane: ControlPlane) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.add(&plane.listener, LISTENER, false)?;
    let mut c = Control { plane, epoll, conns: Vec::new(), free: Vec::new(), next_id: 1 };
    let mut events = epoll::events(1024);
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        let timeout = accept_paused_until.map_or(-1, |at| {
            at.saturating_duration_since(Instant::now()).as_millis().min(1000) as i32
        });
        let n = c.epoll.wait(&mut events, timeout)?;
        if let Some(at) = accept_paused_until {
            if Instant::now() >= at {
                accept_paused_until = None;
                c.epoll.add(&c.plane.listener, LISTENER, false)?;
            }
        }
        for ev in &events[..n] {
            let (token, flags) = (ev.u64, ev.events);
            if token == LISTENER {
                if c.accept_all()? {
                    c.epoll.delete(&c.plane.listener)?;
                    accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                }
                continue;
            }
            let Ok(slot) = usize::try_from(token) else { continue };
            let Some(mut conn) = c.conns.get_mut(slot).and_then(Option::take) else { continue };
            let mut alive = true;
            if flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
                != 0
            {
                alive = c.readable(&mut conn, &mut scratch);
            }
            if alive && flags & libc::EPOLLOUT as u32 != 0 {
                alive = c.flush(&mut conn);
            }
            if alive {
                c.conns[slot] = Some(conn);
            } else {
                c.close(slot, conn);
            }
        }
    }
}

impl Control {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Accepts every pending connection; returns true when out of file descriptors.
    fn accept_all(&mut self) -> io::Result<bool> {
        loop {
            match self.plane.listener.accept() {
                Ok((stream, peer)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let slot = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    if let Err(e) = self.epoll.add(&stream, slot as u64, false) {
                        eprintln!("blaster: {peer}: cannot watch the connection: {e}");
                        self.free.push(slot);
                        continue;
                    }
                    let id = self.next_id();
                    if self.plane.verbose {
                        eprintln!("blaster: {peer}: connected (conn {id})");
                    }
                    self.conns[slot] = Some(Conn {
                        id,
                        slot,
                        stream,
                        peer,
                        inbuf: Vec::new(),
                        decoder: Decoder::new(Limits::default()),
                        out: Vec::new(),
                        want_write: false,
                        handed_over: false,
                        sessions: ServerSessions::new(
                            ServerConfig::default(),
                            manifold_sys::fill_random as fn(&mut [u8]),
                        ),
                        player: None,
                        closing: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    eprintln!("blaster: accept: {e} (pausing accepts)");
                    return Ok(true);
                }
                // ECONNABORTED and the like: that one connection is gone.
                Err(_) => {}
            }
        }
    }

    /// Reads what the peer sent and answers every complete request; false when the
    /// connection is done.
    fn readable(&mut self, conn: &mut Conn, scratch: &mut [u8]) -> bool {
        match conn.stream.read(scratch) {
            Ok(0) => return false,
            Ok(n) => conn.inbuf.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
            Err(e) => {
                if self.plane.verbose {
                    eprintln!("blaster: {}: read: {e}", conn.peer);
                }
                return false;
            }
        }
        let mut start = 0;
        while !conn.closing {
            match conn.decoder.feed(&conn.inbuf[start..]) {
                Ok(None) => break,
                Ok(Some((Item::Request(req), used))) => {
                    start += used;
                    let (resp, post) = self.handle(conn, &req);
                    self.respond(conn, &resp, post);
                }
                // RTCP receiver reports of interleaved readers, stray responses: ignored.
                Ok(Some((_, used))) => start += used,
                Err(e) => {
                    let mut resp = Response::new(e.status());
                    if let Some(cseq) = e.cseq() {
                        resp.headers.set("CSeq", cseq.to_string());
                    }
                    resp.headers.set("Server", SERVER);
                    self.respond(conn, &resp, None);
                    match e.resume_at() {
                        Some(n) => start += n,
                        None => {
                            eprintln!("blaster: {}: unrecoverable request: {e}", conn.peer);
                            conn.closing = true;
                        }
                    }
                }
            }
        }
        if start > 0 {
            conn.inbuf.drain(..start.min(conn.inbuf.len()));
            conn.decoder.reset();
        }
        if conn.inbuf.len() > MAX_BUFFERED {
            eprintln!("blaster: {}: more than {MAX_BUFFERED} bytes without a message", conn.peer);
            return false;
        }
        !(conn.closing && (conn.handed_over || conn.out.is_empty()))
    }

    /// Sends a response (through the packet thread once it writes the connection), then
    /// does what it asked for.
    fn respond(&mut self, conn: &mut Conn, resp: &Response, post: Option<Post>) {
        let mut bytes = Vec::new();
        write_response(resp, &mut bytes);
        let interleaved = matches!(&post, Some(Post::Join { tracks, .. })
            if tracks.iter().flatten().any(|d| matches!(d, Dest::Tcp(_))));
        if conn.handed_over {
            self.command(Command::Write { conn: conn.id, bytes });
        } else if interleaved {
            // From here on the packet thread writes this connection: what is still unwritten
            // goes first, then this response, then media.
            let mut pending = std::mem::take(&mut conn.out);
            pending.extend_from_slice(&bytes);
            conn.handed_over = true;
            if conn.want_write {
                conn.want_write = false;
                let _ = self.epoll.modify(&conn.stream, conn.slot as u64, false);
            }
            self.command(Command::Handover {
                conn: conn.id,
                fd: conn.stream.as_raw_fd(),
                bytes: pending,
            });
        } else {
            conn.out.extend_from_slice(&bytes);
            if !self.flush(conn) {
                // The socket failed (or a closing connection is done): close it.
                conn.out.clear();
                conn.closing = true;
            }
        }
        if let Some(Post::Join { reader, tracks }) = post {
            if self.plane.verbose {
                eprintln!("blaster: {}: reader {reader} playing", conn.peer);
            }
            self.command(Command::Join { reader, conn: conn.id, tracks });
        }
    }

    /// Writes what the connection has buffered; false when the socket failed.
    fn flush(&mut self, conn: &mut Conn) -> bool {
        if conn.handed_over {
            return true;
        }
        let mut written = 0;
        while written < conn.out.len() {
            match conn.stream.write(&conn.out[written..]) {
                Ok(0) => return false,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        conn.out.drain(..written);
        let want = !conn.out.is_empty();
        if want != conn.want_write {
            conn.want_write = want;
            if self.epoll.modify(&conn.stream, conn.slot as u64, want).is_err() {
                return false;
            }
        }
        !(conn.closing && conn.out.is_empty())
    }

    fn command(&mut self, cmd: Command) {
        if self.plane.commands.send(cmd).is_ok() {
            // A full wake socket means a wake-up is already pending.
            let _ = self.plane.wake.send(&[1]);
        }
    }

    /// Ends a connection: stops its reader, and closes its socket (in the packet thread
    /// if that one writes it, so the fd is not reused under it).
    fn close(&mut self, slot: usize, mut conn: Conn) {
        let _ = self.epoll.delete(&conn.stream);
        if let Some(reader) = conn.player.as_mut().and_then(|p| p.reader.take()) {
            self.command(Command::Leave { reader });
        }
        if self.plane.verbose {
            eprintln!("blaster: {}: closed (conn {})", conn.peer, conn.id);
        }
        if conn.handed_over {
            self.command(Command::Close { conn: conn.id, stream: conn.stream });
        }
        self.free.push(slot);
    }

    /// Answers one request.
    fn handle(&mut self, conn: &mut Conn, req: &Request) -> (Response, Option<Post>) {
        let now = Instant::now();
        let pending = match conn.sessions.handle_request(now, req) {
            Decision::Reply(mut r) => {
                r.headers.set("Server", SERVER);
                return (r, None);
            }
            Decision::Needs(p) => p,
        };
        let mut post = None;
        let resp = match pending.method {
            Method::Options => {
                let mut r = Response::new(StatusCode::OK);
                r.headers.set("Public", PUBLIC);
                r
            }
            Method::Describe => {
                let mut r = Response::new(StatusCode::OK);
                r.headers.set("Content-Type", "application/sdp");
                r.headers.set("Content-Base", format!("{}/", req.uri.trim_end_matches('/')));
                r.body = self.plane.stream.sdp.clone().into_bytes();
                r
            }
            Method::Setup => self.setup(conn, req, &pending, &mut post),
            Method::Play => self.play(conn, &pending, &mut post),
            Method::Pause => {
                if let Some(reader) = conn.player.as_mut().and_then(|p| p.reader.take()) {
                    self.command(Command::Leave { reader });
                }
                Response::new(StatusCode::OK)
            }
            Method::Teardown => {
                if let Action::Teardown { track: Some(_) } = pending.action {
                    self.teardown_track(conn, &req.uri, &mut post);
                }
                Response::new(StatusCode::OK)
            }
            Method::GetParameter | Method::SetParameter => Response::new(StatusCode::OK),
            Method::Announce | Method::Record | Method::Redirect => {
                let mut r = Response::new(StatusCode::METHOD_NOT_ALLOWED);
                r.headers.set("Allow", PUBLIC);
                r
            }
        };
        let created = matches!(pending.action, Action::Setup { .. }) && pending.session.is_none();
        let mut resp = conn.sessions.respond(now, pending, resp);
        resp.headers.set("Server", SERVER);
        if !resp.status.is_success() {
            // Nothing the answer refused may start.
            if let Some(Post::Join { reader, .. }) = post.take() {
                if let Some(p) = conn.player.as_mut().filter(|p| p.reader == Some(reader)) {
                    p.reader = None;
                }
            }
        } else if created {
            let id = Session::from_headers(&resp.headers).ok().flatten().map(|s| s.id);
            if let Some(p) = conn.player.as_mut() {
                p.session = id;
            }
        }
        while let Some(event) = conn.sessions.poll_event() {
            let manifold_rtsp::session::server::ServerEvent::Closed { session, .. } = event;
            if conn.player.as_ref().is_some_and(|p| p.session.as_ref() == Some(session.id())) {
                if let Some(reader) = conn.player.take().and_then(|p| p.reader) {
                    self.command(Command::Leave { reader });
                }
            }
        }
        (resp, post)
    }

    fn setup(
        &mut self,
        conn: &mut Conn,
        req: &Request,
        pending: &Pending,
        post: &mut Option<Post>,
    ) -> Response {
        let Action::Setup { offer, .. } = &pending.action else {
            return Response::new(StatusCode::INTERNAL_SERVER_ERROR);
        };
        if let Some(p) = &conn.player {
            if pending.session.is_some() && pending.session != p.session {
                return Response::new(StatusCode::SESSION_NOT_FOUND);
            }
        }
        let Some(track) = track_of(&req.uri, self.plane.stream.tracks) else {
            return Response::new(StatusCode::NOT_FOUND);
        };
        let Some((dest, answer)) =
            choose_transport(offer, track, conn.peer, self.plane.server_port)
        else {
            return Response::new(StatusCode::UNSUPPORTED_TRANSPORT);
        };
        let tracks = self.plane.stream.tracks;
        let player = conn.player.get_or_insert_with(|| Player {
            session: None,
            tracks: vec![None; tracks],
            reader: None,
        });
        if let Some(slot) = player.tracks.get_mut(track) {
            *slot = Some(dest);
        }
        if player.reader.is_some() {
            // A SETUP while playing changes a transport: restart the reader with it.
            let reader = self.next_id();
            if let Some(old) = player.reader.replace(reader) {
                self.command(Command::Leave { reader: old });
            }
            *post = Some(Post::Join { reader, tracks: player.tracks.clone() });
        }
        let mut r = Response::new(StatusCode::OK);
        Transport::single(answer).set_in(&mut r.headers);
        r
    }

    fn play(&mut self, conn: &mut Conn, pending: &Pending, post: &mut Option<Post>) -> Response {
        let Some(player) = conn.player.as_mut() else {
            return Response::new(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
        };
        if player.session.is_some() && pending.session != player.session {
            return Response::new(StatusCode::SESSION_NOT_FOUND);
        }
        if player.reader.is_none() {
            let reader = self.next_id();
            player.reader = Some(reader);
            *post = Some(Post::Join { reader, tracks: player.tracks.clone() });
        }
        let mut r = Response::new(StatusCode::OK);
        r.headers.set("Range", "npt=0.000-");
        r
    }

    /// A TEARDOWN of one track of a multi-track session: that track stops, the others go on.
    fn teardown_track(&mut self, conn: &mut Conn, uri: &str, post: &mut Option<Post>) {
        let Some(track) = track_of(uri, self.plane.stream.tracks) else { return };
        let Some(player) = conn.player.as_mut() else { return };
        if let Some(slot) = player.tracks.get_mut(track) {
            *slot = None;
        }
        if let Some(old) = player.reader.take() {
            self.command(Command::Leave { reader: old });
            let reader = self.next_id();
            player.reader = Some(reader);
            *post = Some(Post::Join { reader, tracks: player.tracks.clone() });
        }
    }
}

/// The track a SETUP (or TEARDOWN) URL names: `<any URL>/trackID=N`, or any URL of a
/// one-track stream.
fn track_of(uri: &str, tracks: usize) -> Option<usize> {
    let uri = uri.trim_end_matches('/');
    match uri.rsplit_once("/trackID=") {
        Some((_, n)) => n.parse().ok().filter(|&n| n < tracks),
        None => (tracks == 1).then_some(0),
    }
}

/// Picks the first acceptable spec of a reader's offer for `track`: RTP/AVP unicast, UDP to
/// the peer's own address or interleaved.
fn choose_transport(
    offer: &Transport,
    track: usize,
    peer: SocketAddr,
    server_port: u16,
) -> Option<(Dest, TransportSpec)> {
    for spec in &offer.specs {
        if spec.profile != Profile::Avp
            || spec.is_multicast()
            || matches!(spec.mode, Some(TransportMode::Record | TransportMode::Other(_)))
        {
            continue;
        }
        match spec.lower_transport() {
            LowerTransport::Tcp => {
                let first = spec.interleaved.map_or((track * 2).min(254) as u8, |c| c.first.0);
                let channels = ChannelRange::pair(ChannelId(first))
                    .unwrap_or(ChannelRange { first: ChannelId(first), last: ChannelId(first) });
                return Some((Dest::Tcp(first), TransportSpec::tcp_interleaved(channels)));
            }
            LowerTransport::Udp => {
                let Some(client) = spec.client_port else { continue };
                // No traffic amplification: media only goes to the RTSP peer itself.
                if let Some(Destination::Address(a)) = &spec.destination {
                    if a.parse::<std::net::IpAddr>().ok() != Some(peer.ip()) {
                        continue;
                    }
                }
                let rtp = RawAddr::from(SocketAddr::new(peer.ip(), client.first));
                let answer = TransportSpec {
                    lower: spec.lower,
                    delivery: Some(Delivery::Unicast),
                    client_port: Some(client),
                    server_port: PortRange::pair(server_port),
                    ..TransportSpec::default()
                };
                return Some((Dest::Udp(rtp), answer));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &[u8] = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n\
        a=extmap:2 urn:manifold:rtp-hdrext:packet-counter\r\n";

    #[test]
    fn sdp_gets_controls_and_keeps_extmaps() {
        let info = StreamInfo::from_sdp(SDP).unwrap();
        assert_eq!(info.tracks, 1);
        assert_eq!(info.payload_types, vec![vec![96]]);
        assert!(info.sdp.contains("a=control:*\r\n"));
        assert!(info.sdp.contains("a=control:trackID=0\r\n"));
        assert!(info.sdp.contains("a=extmap:2 urn:manifold:rtp-hdrext:packet-counter\r\n"));
        assert!(StreamInfo::from_sdp(b"v=0\r\ns=x\r\n").is_err());
    }

    #[test]
    fn setup_urls_name_tracks() {
        assert_eq!(track_of("rtsp://h:1/perf/trackID=0", 1), Some(0));
        assert_eq!(track_of("rtsp://h:1/perf/trackID=1/", 2), Some(1));
        assert_eq!(track_of("rtsp://h:1/perf/trackID=2", 2), None);
        assert_eq!(track_of("rtsp://h:1/anything", 1), Some(0));
        assert_eq!(track_of("rtsp://h:1/anything", 2), None);
    }

    #[test]
    fn transports_are_chosen_from_the_offer() {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let offer = Transport::parse("RTP/AVP;unicast;client_port=5000-5001").unwrap();
        let (dest, answer) = choose_transport(&offer, 0, peer, 6000).unwrap();
        assert_eq!(dest, Dest::Udp(RawAddr::from("127.0.0.1:5000".parse::<SocketAddr>().unwrap())));
        assert_eq!(
            answer.to_string(),
            "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001"
        );
        let offer = Transport::parse("RTP/AVP/TCP;unicast;interleaved=2-3").unwrap();
        let (dest, answer) = choose_transport(&offer, 0, peer, 6000).unwrap();
        assert_eq!(dest, Dest::Tcp(2));
        assert_eq!(answer.to_string(), "RTP/AVP/TCP;unicast;interleaved=2-3");
        let offer =
            Transport::parse("RTP/AVP;unicast;client_port=5000-5001;destination=10.0.0.1").unwrap();
        assert!(choose_transport(&offer, 0, peer, 6000).is_none());
        let offer = Transport::parse("RTP/AVP;unicast;client_port=5000-5001;mode=record").unwrap();
        assert!(choose_transport(&offer, 0, peer, 6000).is_none());
    }
}
