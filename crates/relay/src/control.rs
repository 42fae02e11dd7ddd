//! What each RTSP request means for the relay: the one place where the server session machine
//! (manifold-rtsp's `ServerSessions`) meets the relay's media decisions. The machine checks
//! protocol (454, 455, 460, CSeq, Session); this module picks streams, tracks and transports
//! (404, 461), publishes (ANNOUNCE/SETUP record/RECORD) and plays (SETUP/PLAY/PAUSE).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use manifold_rtsp::codec::write_response;
use manifold_rtsp::header::{
    ChannelRange, Destination, LowerTransport, PortRange, Profile, RtpInfo, RtpInfoEntry, Session,
    Transport, TransportMode, TransportSpec, TypedHeader,
};
use manifold_rtsp::session::server::{
    Action, Decision, Pending, ServerConfig, ServerEvent, ServerSessions,
};
use manifold_rtsp::{ChannelId, Method, Request, Response, SessionId, StatusCode};
use manifold_sdp::Sdp;
use manifold_udp::RawAddr;

use crate::outbox::ConnOut;
use crate::plane::reader::{Reader, ReaderSpec, ReaderTrack};
use crate::registry::StreamInfo;
use crate::shard::{Media, Shard};

/// The methods the relay answers, for `Public`.
const PUBLIC: &str = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, \
                      GET_PARAMETER, SET_PARAMETER";

/// Seconds a client refused for a session limit is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: u32 = 5;

/// What to do once a response is queued.
#[derive(Debug)]
pub(crate) enum After {
    /// Start sending to the reader that PLAY joined.
    GoLive,
}

/// Where an interleaved frame from the client goes: the answer of [`Control::route`], for the
/// connection to hand to the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Media of the publisher's stream: `track`, RTP or RTCP.
    Ingest {
        /// The stream.
        stream: u64,
        /// The track.
        track: usize,
        /// RTP or RTCP.
        media: Media,
    },
    /// A receiver report of the player's reader.
    ReaderRtcp {
        /// The stream and the reader.
        reader: (u64, u64),
    },
    /// Nothing takes it (an unknown channel, media before RECORD).
    Drop,
}

/// The reader a player's PLAY joined.
#[derive(Debug, Clone, Copy)]
struct Playing {
    /// The reader's id in its fan-out.
    id: u64,
    /// Whether its tracks go over UDP (else TCP or multicast).
    udp: bool,
}

/// A connection's publishing session (ANNOUNCE, then SETUP mode=record per track, RECORD).
#[derive(Debug)]
pub(crate) struct Publisher {
    /// The RTSP session, once SETUP created it.
    pub(crate) session: Option<SessionId>,
    /// Where its media goes: the stream's hub on this shard, or its owner on another.
    pub(crate) hub: crate::republish::Upstream,
    /// Each track's URL as the publisher's SETUP names it (the SDP's controls resolved).
    media_urls: Vec<String>,
    /// Interleaved RTP channel → track.
    channels: Vec<(u8, usize)>,
    /// RECORD was answered: media is accepted.
    pub(crate) recording: bool,
    /// When ANNOUNCE was answered: without RECORD by the record timeout, the path is
    /// released.
    announced: Instant,
}

impl Publisher {
    /// The track an interleaved RTP channel carries (`None` for RTCP and unknown channels).
    pub(crate) fn track_of_channel(&self, channel: u8) -> Option<usize> {
        self.channels.iter().find(|(c, _)| *c == channel).map(|(_, t)| *t)
    }

    /// The track whose RTCP an interleaved channel carries (the RTP channel + 1).
    pub(crate) fn track_of_rtcp_channel(&self, channel: u8) -> Option<usize> {
        let rtp = channel.checked_sub(1)?;
        self.channels.iter().find(|(c, _)| *c == rtp).map(|(_, t)| *t)
    }

    fn track_of_url(&self, uri: &str) -> Option<usize> {
        let uri = uri.trim_end_matches('/');
        self.media_urls.iter().position(|u| u.trim_end_matches('/') == uri).or_else(|| {
            let last = uri.rsplit('/').next()?;
            self.media_urls
                .iter()
                .position(|u| u.trim_end_matches('/').rsplit('/').next() == Some(last))
        })
    }
}

/// A connection's playing session.
#[derive(Debug)]
pub(crate) struct Player {
    /// The RTSP session, once SETUP created it.
    pub(crate) session: Option<SessionId>,
    stream: Arc<StreamInfo>,
    /// Per stream track: how it is sent and the SETUP URL (for RTP-Info).
    tracks: Vec<Option<(ReaderTrack, String)>>,
    /// The reader while playing.
    reader: Option<Playing>,
    /// PAUSE stopped a PLAY: the next PLAY resumes.
    paused: bool,
}

/// The interleaved channel pair for a track: the one the client asked for, which must be
/// `n-(n+1)` with `n` even (so no two tracks' RTP and RTCP can share a channel) and not
/// `taken` by another track of the session; or, when it asked for none, the lowest free even
/// pair. `None`: refuse the spec (461 when no other fits).
pub(crate) fn interleaved_pair(asked: Option<ChannelRange>, taken: &[u8]) -> Option<ChannelRange> {
    let free = |n: u8| n % 2 == 0 && n <= 254 && !taken.contains(&n);
    let first = match asked {
        Some(c) if c.last.0 == c.first.0.wrapping_add(1) && free(c.first.0) => c.first.0,
        Some(_) => return None,
        None => (0..=254u8).step_by(2).find(|&n| free(n))?,
    };
    ChannelRange::pair(ChannelId(first))
}

/// The path of an RTSP URL: `rtsp://host:port/cam/x?q` → `/cam/x` (no trailing slash).
pub(crate) fn url_path(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Splits `<stream URL>/trackID=N` into the stream URL and N.
pub(crate) fn split_track(uri: &str) -> Option<(&str, usize)> {
    let (stream_url, n) = uri.trim_end_matches('/').rsplit_once("/trackID=")?;
    Some((stream_url, n.parse().ok()?))
}

/// Random bytes for session ids.
fn random(buf: &mut [u8]) {
    crate::sys::fill_random(buf);
}

/// What one RTSP connection's requests mean: its sessions (manifold-rtsp's server session
/// machine), the stream it publishes or plays, and the session-limit slots it holds. The
/// connection hands it each request and interleaved frame; it answers and acts on the shard.
#[derive(Debug)]
pub(crate) struct Control {
    shard: Rc<Shard>,
    peer: SocketAddr,
    /// The connection is TLS.
    over_tls: bool,
    out: Rc<ConnOut>,
    sessions: ServerSessions<fn(&mut [u8])>,
    publisher: Option<Publisher>,
    player: Option<Player>,
    /// The slots of the session limit this connection's sessions hold.
    permits: Vec<(SessionId, crate::limits::SessionPermit)>,
    /// Refused SETUPs are logged at most once a second per connection.
    refusal_log: crate::ratelog::RateLimitedLog,
}

impl Control {
    /// The control of a new connection from `peer`, whose output is `out` (`over_tls`: the
    /// connection is TLS, which access control takes into account).
    pub(crate) fn new(
        shard: Rc<Shard>,
        peer: SocketAddr,
        out: Rc<ConnOut>,
        over_tls: bool,
    ) -> Control {
        let timeout = shard.config().session_timeout();
        // Grace after the announced timeout: 5 s, or less for very short timeouts.
        let grace = timeout.min(std::time::Duration::from_secs(5));
        let config = ServerConfig { timeout, grace, ..ServerConfig::default() };
        Control {
            shard,
            peer,
            over_tls,
            out,
            sessions: ServerSessions::new(config, random as fn(&mut [u8])),
            publisher: None,
            player: None,
            permits: Vec::new(),
            refusal_log: crate::ratelog::RateLimitedLog::default(),
        }
    }

    /// The peer, for logs.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is closing.
    pub(crate) fn closed(&self) -> bool {
        self.out.closed.get()
    }

    /// When [`Control::expire_sessions`] should run next: a session's expiry, or the record
    /// timeout of an announced path.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let record = self
            .publisher
            .as_ref()
            .filter(|p| !p.recording)
            .map(|p| p.announced + self.shard.config().record_timeout());
        match (self.sessions.poll_timeout(), record) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the connection holds a session, or is publishing or playing (else it is idle
    /// between requests, and the idle timeout applies).
    pub(crate) fn holds_session(&self) -> bool {
        !self.permits.is_empty() || self.publisher.is_some() || self.player.is_some()
    }

    /// Queues a response for the writer.
    pub(crate) fn send(&self, resp: &Response) {
        let mut bytes = Vec::with_capacity(256 + resp.body.len());
        write_response(resp, &mut bytes);
        self.out.send_control(&bytes);
    }

    /// Where an interleaved frame on `channel` goes: media (or sender reports) of a publisher,
    /// or a reader's receiver reports (which show it is alive and say what it lost). The
    /// connection hands it to the shard; the session machine sees no per-packet work.
    pub(crate) fn route(&self, channel: ChannelId) -> Route {
        if let Some(p) = &self.publisher {
            let stream = p.hub.info().id;
            if let Some(track) = p.track_of_channel(channel.0) {
                return match p.recording {
                    true => Route::Ingest { stream, track, media: Media::Rtp },
                    false => Route::Drop,
                };
            }
            if let Some(track) = p.track_of_rtcp_channel(channel.0) {
                return Route::Ingest { stream, track, media: Media::Rtcp };
            }
        }
        match &self.player {
            Some(Player { reader: Some(r), stream, .. }) => {
                Route::ReaderRtcp { reader: (stream.id, r.id) }
            }
            _ => Route::Drop,
        }
    }

    /// Answers one request; `After` is done once the response is queued.
    pub(crate) async fn handle(&mut self, req: Request) -> (Response, Option<After>) {
        let now = Instant::now();
        let pending = match self.sessions.handle_request(now, &req) {
            Decision::Reply(r) => return (r, None),
            Decision::Needs(p) => p,
        };
        // Access control, before anything is set up: what the request does to which stream.
        if let Some((path, action)) = self.permission(&req, &pending) {
            if let Err(refused) =
                self.shard.gate.authorize(self.peer, self.over_tls, &req, &path, action).await
            {
                let mut r = self.sessions.respond(now, pending, refused);
                r.headers.set("Server", "manifold");
                return (r, None);
            }
        }
        // A SETUP that would create a session takes a slot of the session limits first: the
        // connection's own, then its address's and the total. Refused, it gets 503 and keeps
        // the sessions it has.
        let mut permit = None;
        if matches!(pending.action, Action::Setup { .. }) && pending.session.is_none() {
            let per_connection = self.shard.config().max_sessions_per_connection;
            let admitted = if self.permits.len() >= per_connection {
                Err("sessions per connection")
            } else {
                self.shard.shared.limits.admit_session(self.peer.ip()).map_err(|why| match why {
                    crate::limits::Refusal::Total => "sessions in total",
                    crate::limits::Refusal::PerIp => "sessions per address",
                })
            };
            match admitted {
                Ok(p) => permit = Some(p),
                Err(limit) => {
                    if let Some(suppressed) = self.refusal_log.allow(now) {
                        let bounds = self.shard.shared.limits.bounds();
                        tracing::warn!(peer = %self.peer, uri = %req.uri, limit, per_connection,
                            per_address = bounds.sessions_per_ip, total = bounds.sessions,
                            suppressed, "SETUP refused: session limit");
                    }
                    let r = Response::new(StatusCode::SERVICE_UNAVAILABLE);
                    let mut r = self.sessions.respond(now, pending, r);
                    r.headers.set("Server", "manifold");
                    r.headers.set("Retry-After", RETRY_AFTER_SECS.to_string());
                    return (r, None);
                }
            }
        }
        let (resp, after) = match pending.method {
            Method::Options => {
                let mut r = Response::new(StatusCode::OK);
                r.headers.set("Public", PUBLIC);
                (r, None)
            }
            Method::Describe => (self.describe(&req).await, None),
            Method::Announce => (self.announce(&req), None),
            Method::Setup => (self.setup(&req, &pending), None),
            Method::Play => self.play(&pending).await,
            Method::Record => (self.record(&pending), None),
            Method::Pause => (self.pause(&pending), None),
            Method::Teardown => {
                if let Action::Teardown { track: Some(_) } = pending.action {
                    self.teardown_track(&req.uri, &pending);
                }
                (Response::new(StatusCode::OK), None)
            }
            Method::GetParameter | Method::SetParameter => (Response::new(StatusCode::OK), None),
            Method::Redirect => (Response::new(StatusCode::METHOD_NOT_ALLOWED), None),
        };
        let created = matches!(pending.action, Action::Setup { .. }) && pending.session.is_none();
        let record = matches!(&pending.action, Action::Setup { offer, .. }
            if offer.specs.iter().any(|s| s.mode == Some(TransportMode::Record)));
        let mut resp = self.sessions.respond(now, pending, resp);
        resp.headers.set("Server", "manifold");
        if created && resp.status.is_success() {
            let id = Session::from_headers(&resp.headers).ok().flatten().map(|s| s.id);
            if let (Some(id), Some(permit)) = (&id, permit) {
                self.permits.push((id.clone(), permit));
            }
            self.bind_new_session(id, record);
        }
        while let Some(ServerEvent::Closed { session, reason }) = self.sessions.poll_event() {
            tracing::info!(peer = %self.peer, session = %session.id(), ?reason, "session closed");
            self.release_session(session.id());
        }
        (resp, after)
    }

    /// The permission a request needs, if any: reading (DESCRIBE, a reader's SETUP, PLAY) or
    /// publishing (ANNOUNCE, a publisher's SETUP, RECORD) the stream at a path. OPTIONS,
    /// GET_PARAMETER, PAUSE and TEARDOWN act only on what was allowed already.
    fn permission(
        &self,
        req: &Request,
        pending: &Pending,
    ) -> Option<(String, manifold_access::Action)> {
        use manifold_access::Action::{Publish, Read};
        let publishing = self.publisher.as_ref().map(|p| p.hub.info().path.clone());
        let playing = self.player.as_ref().map(|p| p.stream.path.clone());
        match pending.method {
            Method::Describe => Some((url_path(&req.uri), Read)),
            Method::Announce => Some((url_path(&req.uri), Publish)),
            Method::Record => Some((publishing.unwrap_or_else(|| url_path(&req.uri)), Publish)),
            Method::Play => Some((playing.unwrap_or_else(|| url_path(&req.uri)), Read)),
            Method::Setup => {
                let record = matches!(&pending.action, Action::Setup { offer, .. }
                    if offer.specs.iter().any(|s| s.mode == Some(TransportMode::Record)));
                let stream = split_track(&req.uri)
                    .map_or_else(|| url_path(&req.uri), |(base, _)| url_path(base));
                match record {
                    true => Some((publishing.unwrap_or(stream), Publish)),
                    false => Some((playing.unwrap_or(stream), Read)),
                }
            }
            _ => None,
        }
    }

    /// Runs what a response asked for, once it is queued.
    pub(crate) fn after_response(&mut self, after: After) {
        match after {
            After::GoLive => {
                let Some(p) = &self.player else { return };
                let Some(reader) = p.reader else { return };
                let gop_packets =
                    self.shard.with_reader(p.stream.id, reader.id, |r| r.queue.len()).unwrap_or(0);
                tracing::info!(peer = %self.peer, session = ?p.session.as_ref().map(|s| s.0.as_str()),
                    path = %p.stream.path, udp = reader.udp, gop_packets,
                    shard = self.shard.id(), owner = p.stream.owner, "playing");
                self.shard.go_live(p.stream.id, reader.id);
            }
        }
    }

    async fn describe(&self, req: &Request) -> Response {
        let path = url_path(&req.uri);
        // An origin sends readers to an edge; the edges (pulling) are served here.
        if let Some(edges) = &self.shard.shared.edges {
            if !crate::redirect::Edges::is_edge(req.headers.get("User-Agent")) {
                if let Some(location) = edges.pick(&path) {
                    tracing::debug!(peer = %self.peer, %path, %location, "reader sent to an edge");
                    let mut r = Response::new(StatusCode(302));
                    r.headers.set("Location", location);
                    return r;
                }
            }
        }
        let info = match self.shard.registry().lookup(&path) {
            Some(info) => Some(info),
            // An on-demand pull starts now; wait (bounded) for its SDP.
            None => crate::pull::describe_on_demand(&self.shard, &path).await,
        };
        let Some(info) = info else {
            tracing::info!(peer = %self.peer, %path, "DESCRIBE of an unknown path");
            return Response::new(StatusCode::NOT_FOUND);
        };
        let mut r = Response::new(StatusCode::OK);
        r.headers.set("Content-Type", "application/sdp");
        let base = req.uri.trim_end_matches('/');
        r.headers.set("Content-Base", format!("{base}/"));
        r.body = info.sdp.clone().into_bytes();
        r
    }

    fn announce(&mut self, req: &Request) -> Response {
        let path = url_path(&req.uri);
        let sdp = match Sdp::parse(&req.body) {
            Ok(s) if !s.media().is_empty() => s,
            Ok(_) => return Response::new(StatusCode::BAD_REQUEST),
            Err(e) => {
                tracing::info!(peer = %self.peer, %path, error = %e, side = "upstream", "ANNOUNCE with a bad SDP");
                return Response::new(StatusCode::BAD_REQUEST);
            }
        };
        if let Some(old) = self.publisher.take() {
            old.hub.end(&self.shard);
        }
        let media_urls = sdp.media_urls(&req.uri);
        let from =
            crate::publish::From { peer: self.peer, conn: Some(self.out.id), kind: "publisher" };
        let Some(hub) = crate::publish::take_path(&self.shard, &path, sdp, from) else {
            return Response::new(StatusCode::FORBIDDEN);
        };
        self.publisher = Some(Publisher {
            session: None,
            hub,
            media_urls,
            channels: Vec::new(),
            recording: false,
            announced: Instant::now(),
        });
        Response::new(StatusCode::OK)
    }

    fn setup(&mut self, req: &Request, pending: &Pending) -> Response {
        let Action::Setup { offer, .. } = &pending.action else {
            return Response::new(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let record = offer.specs.iter().any(|s| s.mode == Some(TransportMode::Record));
        if record {
            self.setup_record(&req.uri, offer, pending.session.as_ref())
        } else {
            self.setup_play(&req.uri, offer, pending.session.as_ref())
        }
    }

    fn setup_record(
        &mut self,
        uri: &str,
        offer: &Transport,
        session: Option<&SessionId>,
    ) -> Response {
        let peer = self.peer;
        let udp_port = self.shard.udp.port;
        let Some(publisher) = self.publisher.as_mut() else {
            return Response::new(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
        };
        if session.is_some() && session != publisher.session.as_ref() {
            return Response::new(StatusCode::SESSION_NOT_FOUND);
        }
        let Some(track) = publisher.track_of_url(uri) else {
            tracing::info!(%peer, uri, side = "upstream", "SETUP of an unknown track");
            return Response::new(StatusCode::NOT_FOUND);
        };
        for spec in &offer.specs {
            if spec.profile != Profile::Avp || spec.is_multicast() {
                continue;
            }
            let answer = match spec.lower_transport() {
                LowerTransport::Tcp => {
                    let taken: Vec<u8> = publisher
                        .channels
                        .iter()
                        .filter(|(_, t)| *t != track)
                        .map(|(c, _)| *c)
                        .collect();
                    let Some(channels) = interleaved_pair(spec.interleaved, &taken) else {
                        tracing::info!(%peer, uri, interleaved = ?spec.interleaved, side = "upstream",
                            "SETUP refused: interleaved channels not an even pair, or taken");
                        continue;
                    };
                    publisher.channels.retain(|(_, t)| *t != track);
                    publisher.channels.push((channels.first.0, track));
                    TransportSpec {
                        mode: Some(TransportMode::Record),
                        ..TransportSpec::tcp_interleaved(channels)
                    }
                }
                LowerTransport::Udp => {
                    let Some(client) = spec.client_port else { continue };
                    let source = SocketAddr::new(peer.ip(), client.first);
                    self.shard.add_udp_source(source, publisher.hub.info().id, track);
                    if let Some(rtcp) = client.rtcp() {
                        let source = SocketAddr::new(peer.ip(), rtcp);
                        self.shard.add_rtcp_source(source, publisher.hub.info().id, track);
                    }
                    TransportSpec {
                        lower: spec.lower,
                        delivery: Some(manifold_rtsp::header::Delivery::Unicast),
                        client_port: Some(client),
                        server_port: PortRange::pair(udp_port),
                        mode: Some(TransportMode::Record),
                        ..TransportSpec::default()
                    }
                }
            };
            let mut r = Response::new(StatusCode::OK);
            Transport::single(answer).set_in(&mut r.headers);
            tracing::info!(%peer, path = %publisher.hub.info().path, track, "publisher track set up");
            return r;
        }
        Response::new(StatusCode::UNSUPPORTED_TRANSPORT)
    }

    fn setup_play(
        &mut self,
        uri: &str,
        offer: &Transport,
        session: Option<&SessionId>,
    ) -> Response {
        let Some((info, track)) = self.resolve_track(uri) else {
            tracing::info!(peer = %self.peer, uri, "SETUP of an unknown path or track");
            return Response::new(StatusCode::NOT_FOUND);
        };
        if let Some(p) = &self.player {
            if session.is_some() && session != p.session.as_ref() {
                return Response::new(StatusCode::SESSION_NOT_FOUND);
            }
            if p.stream.id != info.id {
                return Response::new(StatusCode::AGGREGATE_OPERATION_NOT_ALLOWED);
            }
        }
        let Some((reader_track, answer)) = self.choose_transport(offer, track, info.id) else {
            return Response::new(StatusCode::UNSUPPORTED_TRANSPORT);
        };
        let player = self.player.get_or_insert_with(|| Player {
            session: None,
            tracks: vec![None; info.tracks.len()],
            stream: info.clone(),
            reader: None,
            paused: false,
        });
        if let Some(slot) = player.tracks.get_mut(track) {
            *slot = Some((reader_track, uri.to_owned()));
        }
        let mut r = Response::new(StatusCode::OK);
        Transport::single(answer).set_in(&mut r.headers);
        r
    }

    /// The stream and track a SETUP URL names: `<stream URL>/trackID=N` (the stream URL may
    /// carry a query, as Content-Base does when DESCRIBE had one), or the stream URL of a
    /// one-track stream.
    fn resolve_track(&self, uri: &str) -> Option<(Arc<StreamInfo>, usize)> {
        let registry = self.shard.registry();
        match split_track(uri) {
            Some((stream_url, n)) => {
                let info = registry.lookup(&url_path(stream_url))?;
                (n < info.tracks.len()).then_some((info, n))
            }
            None => {
                let info = registry.lookup(&url_path(uri))?;
                (info.tracks.len() == 1).then_some((info, 0))
            }
        }
    }

    /// Picks the first acceptable spec of a reader's offer for `track`.
    fn choose_transport(
        &self,
        offer: &Transport,
        track: usize,
        stream: u64,
    ) -> Option<(ReaderTrack, TransportSpec)> {
        for spec in &offer.specs {
            if spec.profile != Profile::Avp {
                continue;
            }
            if spec.is_multicast() {
                match crate::plane::multicast::answer(
                    self.shard.shared.multicast.as_ref(),
                    stream,
                    spec,
                ) {
                    Some(chosen) => return Some(chosen),
                    None => continue,
                }
            }
            match spec.lower_transport() {
                LowerTransport::Tcp => {
                    let taken: Vec<u8> = self
                        .player
                        .iter()
                        .flat_map(|p| p.tracks.iter().enumerate())
                        .filter_map(|(t, slot)| match slot {
                            Some((ReaderTrack::Tcp { channel }, _)) if t != track => Some(*channel),
                            _ => None,
                        })
                        .collect();
                    let Some(channels) = interleaved_pair(spec.interleaved, &taken) else {
                        tracing::info!(peer = %self.peer, interleaved = ?spec.interleaved,
                            "SETUP refused: interleaved channels not an even pair, or taken");
                        continue;
                    };
                    return Some((
                        ReaderTrack::Tcp { channel: channels.first.0 },
                        TransportSpec::tcp_interleaved(channels),
                    ));
                }
                LowerTransport::Udp => {
                    let Some(client) = spec.client_port else { continue };
                    // No traffic amplification: media only goes to the RTSP peer itself.
                    if let Some(Destination::Address(a)) = &spec.destination {
                        if a.parse::<std::net::IpAddr>().ok() != Some(self.peer.ip()) {
                            tracing::info!(peer = %self.peer, destination = %a, "UDP destination refused");
                            continue;
                        }
                    }
                    let rtp = RawAddr::from(SocketAddr::new(self.peer.ip(), client.first));
                    let rtcp = client.rtcp().map(|port| SocketAddr::new(self.peer.ip(), port));
                    let answer = TransportSpec {
                        lower: spec.lower,
                        delivery: Some(manifold_rtsp::header::Delivery::Unicast),
                        client_port: Some(client),
                        server_port: PortRange::pair(self.shard.udp.port),
                        ..TransportSpec::default()
                    };
                    return Some((ReaderTrack::Udp { rtp, rtcp }, answer));
                }
            }
        }
        None
    }

    async fn play(&mut self, pending: &Pending) -> (Response, Option<After>) {
        let Some(player) = &self.player else {
            return (Response::new(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE), None);
        };
        if player.session.is_some() && pending.session.as_ref() != player.session.as_ref() {
            return (Response::new(StatusCode::SESSION_NOT_FOUND), None);
        }
        if player.reader.is_some() {
            // Already playing: nothing changes.
            return (Response::new(StatusCode::OK), None);
        }
        let stream = player.stream.clone();
        let resumed = player.paused;
        let live = self.shard.registry().lookup(&stream.path);
        if live.as_ref().map(|s| s.id) != Some(stream.id) {
            return (Response::new(StatusCode::NOT_FOUND), None);
        }
        let config = self.shard.config();
        let spec = ReaderSpec {
            id: self.shard.next_id(),
            conn: self.out.id,
            peer: self.peer,
            session: pending.session.clone().unwrap_or(SessionId(String::new())),
            path: stream.path.clone(),
            tracks: player.tracks.iter().map(|t| t.as_ref().map(|(rt, _)| *rt)).collect(),
            queue_packets: config.reader_queue_packets,
            queue_bytes: config.reader_queue_bytes,
        };
        let reader = Reader::new(spec, self.out.wake.clone(), Instant::now());
        let playing = Playing { id: reader.id, udp: reader.is_udp() };
        // A first PLAY starts at the cached GOP; a PLAY after PAUSE resumes at the next
        // keyframe (the cached GOP may hold packets the reader already got).
        let gop = !resumed;
        if !self.shard.join(stream.id, stream.owner, reader, gop).await {
            tracing::info!(peer = %self.peer, path = %stream.path, "PLAY: stream gone while joining");
            return (Response::new(StatusCode::NOT_FOUND), None);
        }
        let Some(player) = self.player.as_mut() else {
            return (Response::new(StatusCode::INTERNAL_SERVER_ERROR), None);
        };
        let first_queued: Vec<Option<(u16, u32)>> = self
            .shard
            .with_reader(stream.id, playing.id, |r| {
                (0..player.tracks.len()).map(|i| r.first_queued(i)).collect()
            })
            .unwrap_or_default();
        let entries: Vec<RtpInfoEntry> = player
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let (_, url) = t.as_ref()?;
                let mut e = RtpInfoEntry::new(url.clone());
                if let Some((seq, rtptime)) = first_queued.get(i).copied().flatten() {
                    e.seq = Some(seq);
                    e.rtptime = Some(rtptime);
                }
                Some(e)
            })
            .collect();
        if !playing.udp {
            self.out.readers.borrow_mut().push((stream.id, playing.id));
        }
        player.reader = Some(playing);
        let mut r = Response::new(StatusCode::OK);
        r.headers.set("Range", "npt=0.000-");
        if !entries.is_empty() {
            RtpInfo { entries }.set_in(&mut r.headers);
        }
        (r, Some(After::GoLive))
    }

    fn record(&mut self, pending: &Pending) -> Response {
        let Some(p) = self.publisher.as_mut() else {
            return Response::new(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
        };
        if pending.session.as_ref() != p.session.as_ref() {
            return Response::new(StatusCode::SESSION_NOT_FOUND);
        }
        p.recording = true;
        tracing::info!(peer = %self.peer, session = ?p.session.as_ref().map(|s| s.0.as_str()),
            path = %p.hub.info().path, "recording");
        Response::new(StatusCode::OK)
    }

    fn pause(&mut self, pending: &Pending) -> Response {
        if let Some(p) = &self.publisher {
            if pending.session.as_ref() == p.session.as_ref() {
                if let Some(p) = self.publisher.as_mut() {
                    p.recording = false;
                }
                return Response::new(StatusCode::OK);
            }
        }
        self.stop_playing(false);
        if let Some(p) = self.player.as_mut() {
            p.paused = true;
        }
        Response::new(StatusCode::OK)
    }

    /// A TEARDOWN of one track of the player's session: that track stops (while playing,
    /// its delivery to the reader ends at once), the others go on. A TEARDOWN that leaves no
    /// track ends the session in the session machine, which releases everything.
    fn teardown_track(&mut self, uri: &str, pending: &Pending) {
        let Some(p) = self.player.as_mut() else { return };
        if pending.session.as_ref() != p.session.as_ref() {
            return;
        }
        let wanted = uri.trim_end_matches('/');
        let track = p
            .tracks
            .iter()
            .position(|t| t.as_ref().is_some_and(|(_, u)| u.trim_end_matches('/') == wanted))
            .or_else(|| split_track(uri).map(|(_, n)| n).filter(|n| p.tracks.get(*n).is_some()));
        let Some(track) = track else { return };
        if let Some(slot) = p.tracks.get_mut(track) {
            *slot = None;
        }
        let session = p.session.as_ref().map(|s| s.0.as_str());
        let Some(reader) = p.reader else {
            tracing::info!(peer = %self.peer, session = ?session, path = %p.stream.path, track,
                "track torn down");
            return;
        };
        self.shard.send_bye(p.stream.id, reader.id, Some(track), "teardown");
        self.shard.tear_down_track(p.stream.id, reader.id, track);
        tracing::info!(peer = %self.peer, session = ?session, path = %p.stream.path, track,
            "track torn down while playing");
    }

    /// Stops delivery to the player's reader; `bye` sends it an RTCP BYE (not on PAUSE).
    fn stop_playing(&mut self, bye: bool) {
        let Some(p) = self.player.as_mut() else { return };
        if let Some(reader) = p.reader.take() {
            let stream = p.stream.id;
            let queue =
                self.shard.with_reader(stream, reader.id, |r| (r.queue.stats(), r.queue.bytes()));
            if let Some((stats, queued_bytes)) = queue {
                tracing::info!(peer = %self.peer, session = ?p.session.as_ref().map(|s| s.0.as_str()),
                    path = %p.stream.path, dropped = stats.dropped, keyframe_skips = stats.skips,
                    queued_bytes, "reader stopped");
            }
            if bye {
                self.shard.send_bye(stream, reader.id, None, "teardown");
            }
            self.shard.leave(stream, p.stream.owner, reader.id);
            self.out.readers.borrow_mut().retain(|r| *r != (stream, reader.id));
        }
    }

    /// Ties the session a first SETUP just created to the publisher (`record`) or player it
    /// set up.
    fn bind_new_session(&mut self, id: Option<SessionId>, record: bool) {
        if record {
            if let Some(p) = self.publisher.as_mut() {
                p.session = id;
            }
        } else if let Some(p) = self.player.as_mut() {
            p.session = id;
        }
    }

    /// Expires sessions silent for longer than the timeout (media counts as life: a
    /// publisher's packets, a reader's RTCP reports, UDP or interleaved), and releases a path
    /// announced but not recorded within the record timeout. Returns true when the
    /// connection had sessions and all of them expired: it is closed.
    pub(crate) fn expire_sessions(&mut self) -> bool {
        let now = Instant::now();
        let record_timeout = self.shard.config().record_timeout();
        if self
            .publisher
            .as_ref()
            .is_some_and(|p| !p.recording && now >= p.announced + record_timeout)
        {
            if let Some(p) = self.publisher.take() {
                tracing::info!(peer = %self.peer, path = %p.hub.info().path, side = "upstream",
                    record_timeout_secs = record_timeout.as_secs(),
                    "announced but not recorded in time: path released");
                self.permits.retain(|(s, _)| Some(s) != p.session.as_ref());
                p.hub.end(&self.shard);
            }
        }
        let had = self.permits.len();
        if let Some(p) = &self.publisher {
            if let (Some(id), Some(at)) = (&p.session, p.hub.stats(&self.shard).last_packet) {
                self.sessions.handle_activity(at, id);
            }
        }
        if let Some(p) = &self.player {
            if let (Some(id), Some(r)) = (&p.session, &p.reader) {
                if let Some(heard) = self.shard.with_reader(p.stream.id, r.id, |r| r.heard) {
                    self.sessions.handle_activity(heard, id);
                }
            }
        }
        self.sessions.handle_timeout(now);
        while let Some(ServerEvent::Closed { session, reason }) = self.sessions.poll_event() {
            tracing::info!(peer = %self.peer, session = %session.id(), ?reason, "session expired");
            self.release_session(session.id());
        }
        had > 0 && self.permits.is_empty()
    }

    /// Releases the media of a session that ended.
    fn release_session(&mut self, id: &SessionId) {
        self.permits.retain(|(s, _)| s != id);
        if self.player.as_ref().is_some_and(|p| p.session.as_ref() == Some(id)) {
            self.stop_playing(true);
            self.player = None;
        }
        if self.publisher.as_ref().is_some_and(|p| p.session.as_ref() == Some(id)) {
            if let Some(p) = self.publisher.take() {
                p.hub.gone(&self.shard);
            }
        }
    }

    /// Releases everything when the connection closes.
    pub(crate) fn release_all(&mut self) {
        self.stop_playing(true);
        self.player = None;
        if let Some(p) = self.publisher.take() {
            tracing::info!(peer = %self.peer, path = %p.hub.info().path, side = "upstream",
                packets = p.hub.stats(&self.shard).packets_in, "publisher gone");
            p.hub.gone(&self.shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_channels_are_even_pairs_that_never_collide() {
        let pair = |first: u8, last: u8| {
            Some(ChannelRange { first: ChannelId(first), last: ChannelId(last) })
        };
        let got =
            |asked, taken: &[u8]| interleaved_pair(asked, taken).map(|c| (c.first.0, c.last.0));
        assert_eq!(got(pair(0, 1), &[]), Some((0, 1)));
        assert_eq!(got(pair(254, 255), &[]), Some((254, 255)));
        assert_eq!(got(pair(1, 2), &[]), None, "odd RTP channel");
        assert_eq!(got(pair(2, 2), &[]), None, "no RTCP channel");
        assert_eq!(got(pair(2, 5), &[]), None, "not a pair");
        assert_eq!(got(pair(2, 3), &[2]), None, "another track's channels");
        assert_eq!(got(None, &[0, 2]), Some((4, 5)), "the lowest free pair");
        let all: Vec<u8> = (0..=254).step_by(2).collect();
        assert_eq!(got(None, &all), None, "128 tracks take every pair");
    }

    #[test]
    fn paths_of_urls() {
        assert_eq!(url_path("rtsp://127.0.0.1:8554/cam"), "/cam");
        assert_eq!(url_path("rtsp://h/cam/"), "/cam");
        assert_eq!(url_path("rtsp://h/cam/trackID=1?x=y"), "/cam/trackID=1");
        assert_eq!(url_path("rtsp://h"), "/");
        assert_eq!(url_path("*"), "/");
    }

    #[test]
    fn track_urls() {
        assert_eq!(split_track("rtsp://h/cam/trackID=1"), Some(("rtsp://h/cam", 1)));
        assert_eq!(split_track("rtsp://h/cam?x=1/trackID=0/"), Some(("rtsp://h/cam?x=1", 0)));
        assert_eq!(url_path("rtsp://h/cam?x=1"), "/cam");
        assert_eq!(split_track("rtsp://h/cam"), None);
        assert_eq!(split_track("rtsp://h/cam/trackID=x"), None);
    }

    #[test]
    fn relay_sdp_rewrites_controls() {
        let body = b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
                     m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n\
                     m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=control:streamid=1\r\n";
        let out = crate::registry::relay_sdp(Sdp::parse(body).unwrap());
        assert!(out.contains("a=control:*\r\n"));
        assert!(out.contains("a=control:trackID=0\r\n"));
        assert!(out.contains("a=control:trackID=1\r\n"));
        assert!(!out.contains("streamid"));
    }
}
