//! The server side: every RTSP session a server (or one shard of it) knows, with the RFC 2326
//! Appendix A.2 state machine, per-track transports and timeouts.
//!
//! The machine decides *protocol*: which methods are valid in which state (455), unknown
//! sessions (454), aggregate-only control (460), malformed `CSeq`/`Session`/`Transport` (400,
//! 461), session ids and the `Session` header. The runtime decides *media*: whether the URL
//! names a stream, which track a SETUP URL means, which server ports or channels to use, what
//! `RTP-Info` to send. See [`ServerSessions`] for the drain contract.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::{random_token, same_uri, RandomSource};
use crate::header::{HeaderError, Session, Transport, TransportMode, TransportSpec, TypedHeader};
use crate::{Method, Request, Response, SessionId, StatusCode};

/// The state of one RTSP session on the server (RFC 2326 Appendix A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// No session: what a request without a `Session` header is checked against.
    Init,
    /// Set up (at least one track), not playing or recording.
    Ready,
    /// Sending media (after PLAY).
    Playing,
    /// Receiving media (after RECORD).
    Recording,
}

impl ServerState {
    /// Every state, for tests and tables.
    pub const ALL: [ServerState; 4] =
        [ServerState::Init, ServerState::Ready, ServerState::Playing, ServerState::Recording];

    /// The RFC 2326 Appendix A.2 transition for a request received in this state: the next
    /// state, or [`StatusCode::METHOD_NOT_VALID_IN_THIS_STATE`] (455). Methods that do not
    /// change session state (OPTIONS, DESCRIBE, ANNOUNCE, GET_PARAMETER, SET_PARAMETER) are
    /// valid everywhere; REDIRECT is a server-to-client method, valid nowhere here.
    pub fn after(self, method: Method) -> Result<ServerState, StatusCode> {
        use ServerState::*;
        let next = match (self, method) {
            (
                s,
                Method::Options
                | Method::Describe
                | Method::Announce
                | Method::GetParameter
                | Method::SetParameter,
            ) => s,
            (_, Method::Teardown) => Init,
            (Init | Ready, Method::Setup) => Ready,
            (s @ (Playing | Recording), Method::Setup) => s,
            (Ready | Playing, Method::Play) => Playing,
            (Ready | Recording, Method::Record) => Recording,
            (Playing | Recording, Method::Pause) => Ready,
            _ => return Err(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE),
        };
        Ok(next)
    }
}

/// One set-up track of a session: the SETUP Request-URI and the transport the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTrack {
    /// The SETUP Request-URI, as the client sent it.
    pub uri: String,
    /// The transport in the server's answer (or the client's first offer if the answer had
    /// no `Transport` header).
    pub transport: TransportSpec,
}

/// One RTSP session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSession {
    id: SessionId,
    state: ServerState,
    tracks: Vec<ServerTrack>,
    last_activity: Instant,
}

impl ServerSession {
    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The current state (never [`ServerState::Init`] for a live session).
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The set-up tracks, in SETUP order.
    pub fn tracks(&self) -> &[ServerTrack] {
        &self.tracks
    }

    /// When the client was last heard from in this session.
    pub fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// Whether the tracks were set up to receive media (`mode=record`).
    pub fn is_record(&self) -> bool {
        self.tracks.iter().any(|t| t.transport.mode == Some(TransportMode::Record))
    }

    fn track_index(&self, uri: &str) -> Option<usize> {
        self.tracks.iter().position(|t| same_uri(&t.uri, uri))
    }
}

/// Configuration of a [`ServerSessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The session timeout advertised in `Session: id;timeout=N` (whole seconds are sent).
    pub timeout: Duration,
    /// Extra time allowed after `timeout` before a silent session expires, for clients that
    /// refresh at the last moment and for network delay.
    pub grace: Duration,
    /// Length of generated session ids, in characters (6 random bits each; at least 8).
    pub id_len: usize,
}

impl Default for ServerConfig {
    /// 60 s timeout (RFC 2326's default), 5 s grace, 16-character (96-bit) ids.
    fn default() -> Self {
        ServerConfig { timeout: Duration::from_secs(60), grace: Duration::from_secs(5), id_len: 16 }
    }
}

/// What a request means for the session machine, once it is valid for the session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// SETUP: choose a transport from `offer` (the client's specs, preferred first) for the
    /// track named by the request URI, and answer with a `Transport` header.
    Setup {
        /// The client's parsed `Transport` header.
        offer: Transport,
        /// The index of the already set-up track this SETUP changes, if any.
        existing_track: Option<usize>,
    },
    /// PLAY on the aggregate URI (or the only track's): start or resume sending. Add
    /// `RTP-Info` and `Range` to the answer as wanted.
    Play,
    /// RECORD: start or resume receiving.
    Record,
    /// PAUSE: stop sending or receiving, keep the session.
    Pause,
    /// TEARDOWN of the whole session (`track: None`) or of one track (`Some(index)`).
    Teardown {
        /// The track torn down, when the URI names one.
        track: Option<usize>,
    },
    /// A method that does not change session state: OPTIONS, DESCRIBE, ANNOUNCE,
    /// GET_PARAMETER, SET_PARAMETER. The session (if any) was refreshed already.
    Other,
}

/// A request the runtime must answer: read its fields, build a [`Response`] (status, and
/// the media headers: `Transport`, `RTP-Info`, `Range`, `Content-*`, body), and hand it to
/// [`ServerSessions::respond`], which applies the state change if the status is 2xx and adds
/// `CSeq` and `Session`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a pending request must be answered with ServerSessions::respond"]
pub struct Pending {
    /// The request method.
    pub method: Method,
    /// The Request-URI.
    pub uri: String,
    /// The session the request belongs to; `None` for a SETUP that creates one, and for
    /// session-less requests.
    pub session: Option<SessionId>,
    /// The session's state before the request ([`ServerState::Init`] without a session).
    pub state: ServerState,
    /// What the request asks for.
    pub action: Action,
    cseq: u32,
}

/// The machine's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The machine answered by itself (a protocol error, or a TEARDOWN with no session):
    /// send this response.
    Reply(Response),
    /// Valid so far; the runtime decides the rest and calls [`ServerSessions::respond`].
    Needs(Pending),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// TEARDOWN of the session (or of its last track).
    Teardown,
    /// No request or [`ServerSessions::handle_activity`] for `timeout + grace`.
    Timeout,
}

/// Something the runtime must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A session ended: release its media (the session as it was, with its tracks).
    Closed {
        /// The session.
        session: ServerSession,
        /// Why.
        reason: CloseReason,
    },
}

/// The RTSP sessions of a server, sans-IO.
///
/// # Drain contract
///
/// * For each request: `handle_request(now, &req)`. A [`Decision::Reply`] is sent as is. A
///   [`Decision::Needs`] is answered by the runtime with `respond(now, pending, response)`,
///   exactly once, and the returned response is sent. Dropping a `Pending` changes nothing
///   (but leaves the client waiting: answer errors through `respond` too).
/// * When the client shows life outside RTSP requests (RTCP receiver reports, interleaved
///   data): `handle_activity(now, &id)`.
/// * Arm a timer for `poll_timeout()` and call `handle_timeout(now)` when it fires; the
///   deadline may be early (a session refreshed since), which is harmless.
/// * After any `handle_*` or `respond`, drain `poll_event()` until `None`.
/// * When a connection closes, `close(&id)` for sessions that should die with it (e.g.
///   interleaved ones); no event is produced for that.
pub struct ServerSessions<R> {
    config: ServerConfig,
    random: R,
    sessions: HashMap<SessionId, ServerSession>,
    /// Possibly stale expiry deadlines, earliest first (one entry per live session).
    deadlines: BinaryHeap<Reverse<(Instant, SessionId)>>,
    events: VecDeque<ServerEvent>,
}

impl<R: RandomSource> ServerSessions<R> {
    /// No sessions; ids are drawn from `random`.
    pub fn new(config: ServerConfig, random: R) -> Self {
        ServerSessions {
            config,
            random,
            sessions: HashMap::new(),
            deadlines: BinaryHeap::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// A session by id.
    pub fn session(&self, id: &SessionId) -> Option<&ServerSession> {
        self.sessions.get(id)
    }

    /// Every live session, in no particular order.
    pub fn sessions(&self) -> impl Iterator<Item = &ServerSession> {
        self.sessions.values()
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are no live sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Checks a request against the session table and the state machine, refreshing the
    /// session it names. Answers by itself with 400 (no `CSeq`, a malformed `Session`, a SETUP
    /// without or with a malformed `Transport`), 461 (a transport other than RTP), 454 (an
    /// unknown session; an OPTIONS naming one is served as session-less instead, since
    /// clients use OPTIONS as a keep-alive after the server forgot them), 455 (the RFC table,
    /// [`ServerState::after`], or PLAY on a session set up with `mode=record` and RECORD on
    /// one set up for playing), 405 (REDIRECT from a client), 460 (PLAY/PAUSE/RECORD on one
    /// track of a multi-track session) and 200 (TEARDOWN without a session). Anything that
    /// depends on media, such as 404, 459 or 461 for a transport the runtime cannot serve, is
    /// the runtime's answer through [`respond`](Self::respond).
    pub fn handle_request(&mut self, now: Instant, req: &Request) -> Decision {
        let Some(cseq) = req.cseq() else {
            return Decision::Reply(Response::new(StatusCode::BAD_REQUEST));
        };
        let reply = |status: StatusCode, session: Option<&SessionId>| {
            let mut r = Response::new(status);
            r.headers.set("CSeq", cseq.to_string());
            if let Some(id) = session {
                r.headers.set("Session", id.0.clone());
            }
            Decision::Reply(r)
        };
        // No option tag is supported (RFC 2326 §12.32): a request that requires one is
        // refused with 551 and the tags named back in `Unsupported`.
        let required: Vec<&str> = req
            .headers
            .get_all("Require")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !required.is_empty() {
            let mut r = Response::new(StatusCode::OPTION_NOT_SUPPORTED);
            r.headers.set("CSeq", cseq.to_string());
            r.headers.set("Unsupported", required.join(", "));
            return Decision::Reply(r);
        }
        let header = match Session::from_headers(&req.headers) {
            Ok(h) => h,
            Err(_) => return reply(StatusCode::BAD_REQUEST, None),
        };
        let session_id = match header {
            // An OPTIONS naming a forgotten session is still a fine OPTIONS.
            Some(h) if !self.sessions.contains_key(&h.id) => {
                if req.method == Method::Options {
                    None
                } else {
                    return reply(StatusCode::SESSION_NOT_FOUND, None);
                }
            }
            Some(h) => Some(h.id),
            None => None,
        };
        let session = match &session_id {
            Some(id) => match self.sessions.get_mut(id) {
                Some(s) => {
                    s.last_activity = now;
                    Some(&*s)
                }
                None => return reply(StatusCode::SESSION_NOT_FOUND, None),
            },
            None => None,
        };
        let state = session.map_or(ServerState::Init, |s| s.state);
        if let Err(status) = state.after(req.method) {
            let status = if req.method == Method::Redirect {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                status
            };
            return reply(status, session_id.as_ref());
        }
        let action = match req.method {
            Method::Setup => {
                let offer = match Transport::from_headers(&req.headers) {
                    Ok(Some(t)) => t,
                    Ok(None) => return reply(StatusCode::BAD_REQUEST, session_id.as_ref()),
                    Err(HeaderError::Unsupported { .. }) => {
                        return reply(StatusCode::UNSUPPORTED_TRANSPORT, session_id.as_ref())
                    }
                    Err(_) => return reply(StatusCode::BAD_REQUEST, session_id.as_ref()),
                };
                Action::Setup {
                    offer,
                    existing_track: session.and_then(|s| s.track_index(&req.uri)),
                }
            }
            Method::Play | Method::Record | Method::Pause => {
                if let Some(s) = session {
                    if s.track_index(&req.uri).is_some() && s.tracks.len() > 1 {
                        return reply(
                            StatusCode::ONLY_AGGREGATE_OPERATION_ALLOWED,
                            session_id.as_ref(),
                        );
                    }
                    let wrong_direction = match req.method {
                        Method::Play => s.is_record(),
                        Method::Record => !s.is_record(),
                        _ => false,
                    };
                    if wrong_direction {
                        return reply(
                            StatusCode::METHOD_NOT_VALID_IN_THIS_STATE,
                            session_id.as_ref(),
                        );
                    }
                }
                match req.method {
                    Method::Play => Action::Play,
                    Method::Record => Action::Record,
                    _ => Action::Pause,
                }
            }
            Method::Teardown => match session {
                // Init + TEARDOWN stays in Init (RFC 2326 A.2): nothing to tear down.
                None => return reply(StatusCode::OK, None),
                Some(s) => Action::Teardown { track: s.track_index(&req.uri) },
            },
            _ => Action::Other,
        };
        Decision::Needs(Pending {
            method: req.method,
            uri: req.uri.clone(),
            session: session_id,
            state,
            action,
            cseq,
        })
    }

    /// Finishes a [`Pending`] request with the runtime's answer: on a 2xx, applies the state
    /// change (creating the session for a first SETUP, recording the track's transport from
    /// the answer's `Transport` header); in every case sets `CSeq` and, when a session
    /// exists, `Session` (with `timeout`). Returns the response to send, which is a 454 if
    /// the session vanished meanwhile and a 503 if no unused session id could be drawn.
    pub fn respond(&mut self, now: Instant, pending: Pending, mut response: Response) -> Response {
        response.headers.set("CSeq", pending.cseq.to_string());
        if let Some(id) = &pending.session {
            if !self.sessions.contains_key(id) {
                let mut r = Response::new(StatusCode::SESSION_NOT_FOUND);
                r.headers.set("CSeq", pending.cseq.to_string());
                return r;
            }
        }
        if !response.status.is_success() {
            if let Some(id) = &pending.session {
                response.headers.set("Session", self.session_header(id).to_string());
            }
            return response;
        }
        let id = match (&pending.action, pending.session) {
            (Action::Setup { offer, existing_track }, session) => {
                let answered = Transport::from_headers(&response.headers).ok().flatten();
                let transport = answered
                    .as_ref()
                    .and_then(Transport::first)
                    .or_else(|| offer.first())
                    .cloned()
                    .unwrap_or_default();
                let id = match session {
                    Some(id) => id,
                    None => match self.create_session(now) {
                        Some(id) => id,
                        None => {
                            let mut r = Response::new(StatusCode::SERVICE_UNAVAILABLE);
                            r.headers.set("CSeq", pending.cseq.to_string());
                            return r;
                        }
                    },
                };
                if let Some(s) = self.sessions.get_mut(&id) {
                    let track = ServerTrack { uri: pending.uri.clone(), transport };
                    match existing_track.filter(|&i| i < s.tracks.len()) {
                        Some(i) => s.tracks[i] = track,
                        None => s.tracks.push(track),
                    }
                    // From the state now, not when the request arrived: another request
                    // of the session may have been answered in between.
                    s.state = s.state.after(pending.method).unwrap_or(s.state);
                    s.last_activity = now;
                }
                Some(id)
            }
            (Action::Teardown { track }, Some(id)) => {
                let header = Session::new(id.clone());
                header.set_in(&mut response.headers);
                let close = match (track, self.sessions.get_mut(&id)) {
                    (Some(i), Some(s)) if s.tracks.len() > 1 && *i < s.tracks.len() => {
                        s.tracks.remove(*i);
                        s.last_activity = now;
                        false
                    }
                    _ => true,
                };
                if close {
                    if let Some(session) = self.sessions.remove(&id) {
                        self.events.push_back(ServerEvent::Closed {
                            session,
                            reason: CloseReason::Teardown,
                        });
                    }
                }
                return response;
            }
            (_, Some(id)) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.state = s.state.after(pending.method).unwrap_or(s.state);
                    s.last_activity = now;
                }
                Some(id)
            }
            (_, None) => None,
        };
        if let Some(id) = id {
            response.headers.set("Session", self.session_header(&id).to_string());
        }
        response
    }

    /// Records that the client of session `id` is alive (e.g. an RTCP receiver report);
    /// returns whether the session exists.
    pub fn handle_activity(&mut self, now: Instant, id: &SessionId) -> bool {
        match self.sessions.get_mut(id) {
            Some(s) => {
                s.last_activity = s.last_activity.max(now);
                true
            }
            None => false,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Expires every session silent for `timeout + grace` as of `now` (each yields a
    /// [`ServerEvent::Closed`] with [`CloseReason::Timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.deadlines.pop() else { break };
            let Some(s) = self.sessions.get(&id) else { continue };
            let expiry = s.last_activity + self.config.timeout + self.config.grace;
            if expiry <= now {
                if let Some(session) = self.sessions.remove(&id) {
                    self.events
                        .push_back(ServerEvent::Closed { session, reason: CloseReason::Timeout });
                }
            } else {
                self.deadlines.push(Reverse((expiry, id)));
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Removes a session without an event (its connection closed); returns it.
    pub fn close(&mut self, id: &SessionId) -> Option<ServerSession> {
        self.sessions.remove(id)
    }

    fn session_header(&self, id: &SessionId) -> Session {
        Session {
            id: id.clone(),
            timeout: Some(u32::try_from(self.config.timeout.as_secs()).unwrap_or(u32::MAX)),
        }
    }

    fn create_session(&mut self, now: Instant) -> Option<SessionId> {
        let len = self.config.id_len.max(8);
        for _ in 0..16 {
            let id = SessionId(random_token(&mut self.random, len));
            if !self.sessions.contains_key(&id) {
                self.sessions.insert(
                    id.clone(),
                    ServerSession {
                        id: id.clone(),
                        state: ServerState::Init,
                        tracks: Vec::new(),
                        last_activity: now,
                    },
                );
                let expiry = now + self.config.timeout + self.config.grace;
                self.deadlines.push(Reverse((expiry, id.clone())));
                return Some(id);
            }
        }
        None
    }
}

impl<R> std::fmt::Debug for ServerSessions<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSessions")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(7);
                *b = n;
            }
        }
    }

    fn req(method: Method, uri: &str, cseq: u32, session: Option<&SessionId>) -> Request {
        let mut r = Request::new(method, uri);
        r.headers.append("CSeq", cseq.to_string());
        if let Some(s) = session {
            r.headers.append("Session", s.0.clone());
        }
        r
    }

    #[test]
    fn a_required_option_is_refused_with_551_naming_it() {
        let t0 = Instant::now();
        let mut s = ServerSessions::new(ServerConfig::default(), counter());
        let mut r = req(Method::Options, "rtsp://h/live", 4, None);
        r.headers.append("Require", "play.basic, com.example.x");
        r.headers.append("Require", "funky");
        let Decision::Reply(resp) = s.handle_request(t0, &r) else { panic!("answered at once") };
        assert_eq!(resp.status, StatusCode::OPTION_NOT_SUPPORTED);
        assert_eq!(resp.cseq(), Some(4));
        assert_eq!(resp.headers.get("Unsupported"), Some("play.basic, com.example.x, funky"));
        let plain = req(Method::Options, "rtsp://h/live", 5, None);
        assert!(matches!(s.handle_request(t0, &plain), Decision::Needs(_)));
    }

    #[test]
    fn setup_play_teardown() {
        let t0 = Instant::now();
        let mut s = ServerSessions::new(ServerConfig::default(), counter());
        let mut r = req(Method::Setup, "rtsp://h/live/stream=0", 1, None);
        r.headers.append("Transport", "RTP/AVP;unicast;client_port=5000-5001");
        let Decision::Needs(p) = s.handle_request(t0, &r) else { panic!() };
        assert!(matches!(p.action, Action::Setup { existing_track: None, .. }));
        let mut answer = Response::new(StatusCode::OK);
        answer
            .headers
            .set("Transport", "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001");
        let resp = s.respond(t0, p, answer);
        let session = Session::from_headers(&resp.headers).unwrap().unwrap();
        assert_eq!(session.timeout, Some(60));
        assert_eq!(session.id.0.len(), 16);
        assert_eq!(resp.cseq(), Some(1));
        let live = s.session(&session.id).unwrap();
        assert_eq!(live.state(), ServerState::Ready);
        assert_eq!(live.tracks()[0].transport.server_port.unwrap().first, 6000);

        let Decision::Needs(p) =
            s.handle_request(t0, &req(Method::Play, "rtsp://h/live/", 2, Some(&session.id)))
        else {
            panic!()
        };
        s.respond(t0, p, Response::new(StatusCode::OK));
        assert_eq!(s.session(&session.id).unwrap().state(), ServerState::Playing);
        let Decision::Needs(p) =
            s.handle_request(t0, &req(Method::Teardown, "rtsp://h/live/", 3, Some(&session.id)))
        else {
            panic!()
        };
        s.respond(t0, p, Response::new(StatusCode::OK));
        assert!(s.is_empty());
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::Closed { reason: CloseReason::Teardown, .. })
        ));
    }
}
