//! The client side: one RTSP client session, from OPTIONS to TEARDOWN, sans-IO.
//!
//! Play: `OPTIONS` (optional) → `DESCRIBE` → `SETUP` each track → `PLAY`.
//! Record (publish): `OPTIONS` (optional) → `ANNOUNCE` (the caller's SDP) → `SETUP` each track
//! with `mode=record` → `RECORD` (or, with `start_after_setup` off, held after the SETUPs
//! until told to start). Then keep-alives at half the server's session timeout,
//! `PAUSE`/`PLAY`/`RECORD` on command, and `TEARDOWN`. A 401 is answered once with the
//! strongest Digest (or Basic, if allowed) challenge; later requests carry `Authorization`. A
//! 3xx with a `Location` ends the session as [`ClientError::Redirected`]: the runtime opens a
//! new connection there (the machine has no connection to move).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use manifold_sdp::Sdp;

use crate::auth::{Challenge, ClientAuth, Credentials};
use crate::header::{
    ChannelRange, HeaderError, LowerTransport, PortRange, Public, RtpInfo, Session, Transport,
    TransportMode, TransportSpec, TypedHeader,
};
use crate::{ChannelId, Method, Request, Response, SessionId, StatusCode};

/// Whether the client receives or sends media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMode {
    /// DESCRIBE, SETUP, PLAY: receive the server's media.
    Play,
    /// ANNOUNCE this SDP, SETUP with `mode=record`, RECORD: send media to the server.
    Record {
        /// The SDP body of the ANNOUNCE (its media sections are the tracks set up).
        sdp: Vec<u8>,
    },
}

/// How the media travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaTransport {
    /// RTP/RTCP interleaved on the RTSP connection: track `i` gets channels `2i`-`2i+1`.
    Interleaved,
    /// RTP/RTCP over UDP: track `i` offers `client_ports[i]` (the runtime's bound sockets).
    Udp {
        /// One RTP/RTCP port pair per track, in SDP order.
        client_ports: Vec<PortRange>,
    },
}

/// Configuration of a [`ClientSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The presentation URL; a `user:password@` in it gives the credentials (and is never
    /// sent on the wire).
    pub url: String,
    /// Play or record.
    pub mode: ClientMode,
    /// Interleaved or UDP.
    pub transport: MediaTransport,
    /// Credentials; override the URL's userinfo.
    pub credentials: Option<Credentials>,
    /// Whether a `Basic` challenge may be answered (it sends the password in clear).
    pub allow_basic: bool,
    /// The client nonce for Digest answers (the runtime draws it; nothing here is random).
    pub cnonce: String,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// Whether to start with OPTIONS (which also tells whether GET_PARAMETER keep-alives work).
    pub send_options: bool,
    /// The `Range` of PLAY and RECORD, e.g. `npt=0.000-`; `None` sends none.
    pub range: Option<String>,
    /// Whether PLAY (RECORD) follows the last SETUP at once. `false` holds the session in
    /// [`ClientState::Ready`], kept alive, until [`ClientSession::play`]
    /// ([`ClientSession::record`]) starts it or [`ClientSession::teardown`] ends it.
    pub start_after_setup: bool,
    /// How long to wait for each response before failing.
    pub response_timeout: Duration,
    /// The session timeout assumed when the server's `Session` header gives none (RFC 2326:
    /// 60 s). Keep-alives go at half of it.
    pub default_session_timeout: Duration,
}

impl ClientConfig {
    /// An interleaved (RTP over the RTSP connection) player with defaults: OPTIONS first, `Range: npt=0.000-`,
    /// 10 s response timeout, no User-Agent, Basic refused.
    pub fn play(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            mode: ClientMode::Play,
            transport: MediaTransport::Interleaved,
            credentials: None,
            allow_basic: false,
            cnonce: String::new(),
            user_agent: None,
            send_options: true,
            range: Some("npt=0.000-".to_owned()),
            start_after_setup: true,
            response_timeout: Duration::from_secs(10),
            default_session_timeout: Duration::from_secs(60),
        }
    }

    /// An interleaved publisher of `sdp`, otherwise like [`ClientConfig::play`].
    pub fn record(url: impl Into<String>, sdp: impl Into<Vec<u8>>) -> Self {
        ClientConfig { mode: ClientMode::Record { sdp: sdp.into() }, ..ClientConfig::play(url) }
    }
}

/// One track of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTrack {
    /// The SETUP URL (the media control resolved against the aggregate URL).
    pub url: String,
    /// The SDP media kind (`video`, `audio`, ...).
    pub kind: String,
    /// The transport offered in SETUP.
    pub offer: TransportSpec,
    /// The transport in the server's answer (`None` until set up, or if it sent none).
    pub transport: Option<TransportSpec>,
}

/// Where a track's RTCP goes (receiver reports, for a client that plays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpRoute {
    /// From the track's RTCP socket (its client port + 1) to this port of the server.
    Udp {
        /// The server's RTCP port.
        port: u16,
    },
    /// On the RTSP connection, on this channel (the track's RTP channel + 1).
    Interleaved {
        /// The RTCP channel.
        channel: ChannelId,
    },
}

impl ClientTrack {
    /// Where the track's RTCP goes, from the transport the server answered: its second
    /// `server_port` (or its first + 1) over UDP, its second interleaved channel (or its first
    /// + 1) over TCP. `None` when the answer names no port (UDP) and the offer no channel.
    pub fn rtcp_route(&self) -> Option<RtcpRoute> {
        let spec = self.transport.as_ref().unwrap_or(&self.offer);
        match spec.lower_transport() {
            LowerTransport::Tcp => {
                let range = spec.interleaved.or(self.offer.interleaved)?;
                let channel = if range.last != range.first {
                    range.last
                } else {
                    ChannelId(range.first.0.checked_add(1)?)
                };
                Some(RtcpRoute::Interleaved { channel })
            }
            LowerTransport::Udp => {
                let ports = self.transport.as_ref()?.server_port?;
                let port = if ports.last != ports.first {
                    ports.last
                } else {
                    ports.first.checked_add(1)?
                };
                Some(RtcpRoute::Udp { port })
            }
        }
    }
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// OPTIONS, DESCRIBE/ANNOUNCE and SETUP in progress.
    Starting,
    /// Every track set up; PLAY or RECORD not yet answered.
    Ready,
    /// PLAY answered 2xx.
    Playing,
    /// RECORD answered 2xx.
    Recording,
    /// PAUSE answered 2xx.
    Paused,
    /// TEARDOWN answered (or nothing to tear down).
    Closed,
    /// Failed; see the [`ClientEvent::Failed`] event.
    Failed,
}

/// Why a client session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered a request with an error status.
    #[error("{method} answered {status}")]
    Status {
        /// The request's method.
        method: Method,
        /// The status.
        status: StatusCode,
    },
    /// The server sent the client elsewhere: a 3xx with a `Location` (RFC 2326 §11.3, e.g. an
    /// origin's `302 Moved Temporarily` to an edge). The session is over; following it (a new
    /// connection and session to `location`) is the runtime's decision.
    #[error("{method} answered {status}: moved to {location}")]
    Redirected {
        /// The request's method.
        method: Method,
        /// The status.
        status: StatusCode,
        /// The `Location` header's URL.
        location: String,
    },
    /// No response within the response timeout.
    #[error("no response to {method}")]
    Timeout {
        /// The request's method.
        method: Method,
    },
    /// A 401 with no credentials, no supported challenge, or credentials refused.
    #[error("authentication failed for {method}")]
    Unauthorized {
        /// The request's method.
        method: Method,
    },
    /// A required header is missing from a response.
    #[error("{method} response has no {header} header")]
    MissingHeader {
        /// The request's method.
        method: Method,
        /// The header.
        header: &'static str,
    },
    /// A response header is malformed.
    #[error("{method} response: {error}")]
    BadHeader {
        /// The request's method.
        method: Method,
        /// What is wrong.
        error: HeaderError,
    },
    /// The SDP (described or to announce) does not parse.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// The SDP has no media sections.
    #[error("SDP has no media")]
    NoTracks,
    /// Fewer UDP port pairs were given than there are tracks.
    #[error("{tracks} tracks but {ports} UDP port pairs")]
    NotEnoughPorts {
        /// Tracks in the SDP.
        tracks: usize,
        /// Port pairs given.
        ports: usize,
    },
}

/// What happened, drained with [`ClientSession::poll_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// DESCRIBE answered: the SDP and the base URL its controls resolve against.
    Described {
        /// The parsed SDP.
        sdp: Sdp,
        /// `Content-Base`, else `Content-Location`, else the request URL.
        base: String,
    },
    /// Every track is set up.
    Ready {
        /// The session id.
        session: SessionId,
        /// The tracks, with the server's transports.
        tracks: Vec<ClientTrack>,
    },
    /// PLAY answered 2xx.
    Playing {
        /// The `RTP-Info` header, if sent and well formed.
        rtp_info: Option<RtpInfo>,
    },
    /// RECORD answered 2xx.
    Recording,
    /// PAUSE answered 2xx.
    Paused,
    /// TEARDOWN answered (any status), or torn down before a session existed.
    Closed,
    /// The session failed; no more requests will be sent.
    Failed(ClientError),
}

/// How many `stale=true` 401s in a row one request may be retried after (a server that
/// always says stale must not loop us forever).
const MAX_STALE_RETRIES: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Options,
    Describe,
    Announce,
    Setup(usize),
    Play,
    Record,
    Pause,
    Teardown,
    KeepAlive,
}

#[derive(Debug, Clone)]
struct InFlight {
    cseq: u32,
    step: Step,
    method: Method,
    deadline: Instant,
}

/// One RTSP client session, sans-IO.
///
/// # Drain contract
///
/// * Send every request `poll_transmit(now)` gives, until `None` (at most one request is in
///   flight; the next comes after its response).
/// * Feed each response on the connection to `handle_response(now, response)`, and requests
///   the server sends to `handle_request` (answer with what it returns).
/// * Arm a timer for `poll_timeout()`; when it fires call `handle_timeout(now)`, then
///   `poll_transmit` again (a keep-alive may be due).
/// * After every call, drain `poll_event()` until `None`.
/// * Commands (`pause`, `play`, `record`, `teardown`) queue requests; `poll_transmit` sends them.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    /// The URL without userinfo.
    url: String,
    credentials: Option<Credentials>,
    state: ClientState,
    next_cseq: u32,
    queue: VecDeque<Step>,
    in_flight: Option<InFlight>,
    events: VecDeque<ClientEvent>,
    auth: Option<ClientAuth>,
    /// The step last answered with a 401, and how many 401s in a row it got: one retry with
    /// new credentials, plus up to [`MAX_STALE_RETRIES`] more for `stale=true` challenges.
    auth_retried: Option<(Step, u8)>,
    public: Option<Public>,
    keepalive_with_options: bool,
    aggregate: String,
    tracks: Vec<ClientTrack>,
    session: Option<SessionId>,
    session_timeout: Duration,
    last_sent: Option<Instant>,
    closing: bool,
}

impl ClientSession {
    /// A session that starts sending at the first `poll_transmit`. A record-mode SDP that
    /// does not parse, or too few UDP ports, fail it at once (see `poll_event`).
    pub fn new(config: ClientConfig) -> Self {
        let (url_credentials, url) = match Credentials::from_url(&config.url) {
            Some((c, stripped)) => (Some(c), stripped),
            None => (None, config.url.clone()),
        };
        let mut s = ClientSession {
            credentials: config.credentials.clone().or(url_credentials),
            aggregate: url.clone(),
            url,
            state: ClientState::Starting,
            next_cseq: 1,
            queue: VecDeque::new(),
            in_flight: None,
            events: VecDeque::new(),
            auth: None,
            auth_retried: None,
            public: None,
            keepalive_with_options: false,
            tracks: Vec::new(),
            session: None,
            session_timeout: config.default_session_timeout,
            last_sent: None,
            closing: false,
            config,
        };
        if s.config.send_options {
            s.queue.push_back(Step::Options);
        }
        match &s.config.mode {
            ClientMode::Play => s.queue.push_back(Step::Describe),
            ClientMode::Record { sdp } => match Sdp::parse(sdp) {
                Ok(sdp) => {
                    s.aggregate = sdp.aggregate_url(&s.url);
                    if let Err(e) = s.set_tracks(&sdp) {
                        s.fail(e);
                    } else {
                        s.queue.push_back(Step::Announce);
                    }
                }
                Err(e) => s.fail(ClientError::Sdp(e.to_string())),
            },
        }
        s
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The session id, once the first SETUP is answered.
    pub fn session(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }

    /// The tracks (known after DESCRIBE, or from the start when recording).
    pub fn tracks(&self) -> &[ClientTrack] {
        &self.tracks
    }

    /// The aggregate URL PLAY/RECORD/PAUSE/TEARDOWN go to.
    pub fn aggregate_url(&self) -> &str {
        &self.aggregate
    }

    /// The session timeout in effect (the server's, else the configured default).
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The next request to send, if one is due and none is in flight.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some()
            || matches!(self.state, ClientState::Closed | ClientState::Failed)
        {
            return None;
        }
        let step = self.queue.pop_front()?;
        let req = self.build(step);
        self.in_flight = Some(InFlight {
            cseq: self.next_cseq,
            step,
            method: req.method,
            deadline: now + self.config.response_timeout,
        });
        self.next_cseq = self.next_cseq.wrapping_add(1);
        self.last_sent = Some(now);
        Some(req)
    }

    /// When `handle_timeout` should be called next: the in-flight request's deadline, or the
    /// next keep-alive.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(f) = &self.in_flight {
            return Some(f.deadline);
        }
        self.keepalive_at()
    }

    /// Fails the session if the in-flight request timed out; queues a keep-alive if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(f) = &self.in_flight {
            if f.deadline <= now {
                let method = f.method;
                self.in_flight = None;
                self.fail(ClientError::Timeout { method });
            }
            return;
        }
        if self.keepalive_at().is_some_and(|at| at <= now) {
            self.queue.push_back(Step::KeepAlive);
        }
    }

    /// Handles a response on the connection. Responses that do not answer the in-flight
    /// request (by `CSeq`) are ignored.
    pub fn handle_response(&mut self, _now: Instant, response: &Response) {
        let Some(f) = self.in_flight.take_if(|f| response.cseq() == Some(f.cseq)) else {
            return;
        };
        if response.status == StatusCode::UNAUTHORIZED {
            self.on_unauthorized(f, response);
            return;
        }
        self.auth_retried = None;
        if !response.status.is_success() {
            match f.step {
                // Optional or best-effort requests: failures are not fatal, except a
                // keep-alive told that the session is gone.
                Step::Options => {}
                Step::KeepAlive if response.status != StatusCode::SESSION_NOT_FOUND => {
                    self.keepalive_with_options = true
                }
                Step::Teardown => self.close(),
                _ => self.fail(match response.headers.get("Location") {
                    Some(location) if response.status.is_redirection() => ClientError::Redirected {
                        method: f.method,
                        status: response.status,
                        location: location.trim().to_owned(),
                    },
                    _ => ClientError::Status { method: f.method, status: response.status },
                }),
            }
            self.after_step();
            return;
        }
        if let Err(e) = self.on_success(f, response) {
            self.fail(e);
        }
        self.after_step();
    }

    /// Answers a request the server sent on the connection (OPTIONS and GET_PARAMETER get
    /// 200, anything else 501).
    pub fn handle_request(&mut self, _now: Instant, request: &Request) -> Response {
        let status = match request.method {
            Method::Options | Method::GetParameter => StatusCode::OK,
            _ => StatusCode::NOT_IMPLEMENTED,
        };
        let mut r = Response::new(status);
        if let Some(cseq) = request.cseq() {
            r.headers.set("CSeq", cseq.to_string());
        }
        r
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Queues a PAUSE; `false` unless playing or recording.
    pub fn pause(&mut self) -> bool {
        self.command(
            matches!(self.state, ClientState::Playing | ClientState::Recording),
            Step::Pause,
        )
    }

    /// Queues a PLAY to resume, or to start a session held after setup (see
    /// [`ClientConfig::start_after_setup`]); `false` unless paused or held in play mode.
    pub fn play(&mut self) -> bool {
        let ok = self.may_start() && self.config.mode == ClientMode::Play;
        self.command(ok, Step::Play)
    }

    /// Queues a RECORD to resume, or to start a session held after setup; `false` unless
    /// paused or held in record mode.
    pub fn record(&mut self) -> bool {
        let ok = self.may_start() && self.config.mode != ClientMode::Play;
        self.command(ok, Step::Record)
    }

    /// Paused, or set up and held (nothing started it yet).
    fn may_start(&self) -> bool {
        let held = self.state == ClientState::Ready
            && !self.config.start_after_setup
            && !self.queue.iter().any(|s| matches!(s, Step::Play | Step::Record))
            && !self
                .in_flight
                .as_ref()
                .is_some_and(|f| matches!(f.step, Step::Play | Step::Record));
        self.state == ClientState::Paused || held
    }

    /// Ends the session: drops queued requests and sends TEARDOWN once the in-flight request
    /// (if any) is answered; with no session yet, closes at once.
    pub fn teardown(&mut self) {
        if matches!(self.state, ClientState::Closed | ClientState::Failed) {
            return;
        }
        self.closing = true;
        self.queue.clear();
        if self.in_flight.is_none() {
            self.after_step();
        }
    }

    fn command(&mut self, ok: bool, step: Step) -> bool {
        if ok && !self.closing {
            self.queue.push_back(step);
        }
        ok && !self.closing
    }

    fn keepalive_at(&self) -> Option<Instant> {
        let active = matches!(
            self.state,
            ClientState::Ready
                | ClientState::Playing
                | ClientState::Recording
                | ClientState::Paused
        );
        if !active || self.session.is_none() || !self.queue.is_empty() || self.closing {
            return None;
        }
        self.last_sent.map(|t| t + self.session_timeout / 2)
    }

    fn fail(&mut self, error: ClientError) {
        if matches!(self.state, ClientState::Failed | ClientState::Closed) {
            return;
        }
        self.state = ClientState::Failed;
        self.queue.clear();
        self.in_flight = None;
        self.events.push_back(ClientEvent::Failed(error));
    }

    fn close(&mut self) {
        self.state = ClientState::Closed;
        self.queue.clear();
        self.events.push_back(ClientEvent::Closed);
    }

    /// After a response: a pending teardown replaces whatever was queued.
    fn after_step(&mut self) {
        if !self.closing || matches!(self.state, ClientState::Closed | ClientState::Failed) {
            return;
        }
        if self.in_flight.is_some() {
            return;
        }
        self.queue.clear();
        if self.session.is_some() {
            self.queue.push_back(Step::Teardown);
        } else {
            self.close();
        }
    }

    fn on_unauthorized(&mut self, f: InFlight, response: &Response) {
        let challenges = Challenge::from_response(response);
        let stale = challenges.iter().any(|c| matches!(c, Challenge::Digest(d) if d.stale));
        let attempts = match self.auth_retried {
            Some((step, n)) if step == f.step => n,
            _ => 0,
        };
        let may_retry = attempts == 0 || (stale && attempts <= MAX_STALE_RETRIES);
        let auth = match (&self.credentials, may_retry) {
            (Some(creds), true) => {
                ClientAuth::new(&challenges, creds.clone(), self.config.allow_basic).ok()
            }
            _ => None,
        };
        match auth {
            Some(a) => {
                self.auth = Some(a);
                self.auth_retried = Some((f.step, attempts + 1));
                self.queue.push_front(f.step);
                self.after_step();
            }
            None => self.fail(ClientError::Unauthorized { method: f.method }),
        }
    }

    fn on_success(&mut self, f: InFlight, response: &Response) -> Result<(), ClientError> {
        let method = f.method;
        let bad = |error: HeaderError| ClientError::BadHeader { method, error };
        match f.step {
            Step::Options => {
                self.public = Public::from_headers(&response.headers).ok().flatten();
            }
            Step::Describe => {
                let base = manifold_sdp::base_url(
                    response.headers.get("Content-Base"),
                    response.headers.get("Content-Location"),
                    &self.url,
                )
                .to_owned();
                let sdp =
                    Sdp::parse(&response.body).map_err(|e| ClientError::Sdp(e.to_string()))?;
                self.aggregate = sdp.aggregate_url(&base);
                self.set_tracks(&sdp)?;
                self.events.push_back(ClientEvent::Described { sdp, base });
                self.queue_setups();
            }
            Step::Announce => self.queue_setups(),
            Step::Setup(i) => {
                let header = Session::from_headers(&response.headers)
                    .map_err(bad)?
                    .ok_or(ClientError::MissingHeader { method, header: "Session" })?;
                if self.session.is_none() {
                    self.session = Some(header.id);
                    if let Some(t) = header.timeout.filter(|&t| t > 0) {
                        self.session_timeout = Duration::from_secs(u64::from(t));
                    }
                }
                let answered = Transport::from_headers(&response.headers).map_err(bad)?;
                if let Some(track) = self.tracks.get_mut(i) {
                    track.transport = answered.and_then(|t| t.specs.into_iter().next());
                }
                if i + 1 == self.tracks.len() {
                    self.state = ClientState::Ready;
                    if let Some(session) = self.session.clone() {
                        self.events
                            .push_back(ClientEvent::Ready { session, tracks: self.tracks.clone() });
                    }
                }
            }
            Step::Play => {
                self.state = ClientState::Playing;
                let rtp_info = RtpInfo::from_headers(&response.headers).ok().flatten();
                self.events.push_back(ClientEvent::Playing { rtp_info });
            }
            Step::Record => {
                self.state = ClientState::Recording;
                self.events.push_back(ClientEvent::Recording);
            }
            Step::Pause => {
                self.state = ClientState::Paused;
                self.events.push_back(ClientEvent::Paused);
            }
            Step::Teardown => self.close(),
            Step::KeepAlive => {}
        }
        Ok(())
    }

    fn queue_setups(&mut self) {
        for i in 0..self.tracks.len() {
            self.queue.push_back(Step::Setup(i));
        }
        if self.config.start_after_setup {
            self.queue.push_back(match self.config.mode {
                ClientMode::Play => Step::Play,
                ClientMode::Record { .. } => Step::Record,
            });
        }
    }

    fn set_tracks(&mut self, sdp: &Sdp) -> Result<(), ClientError> {
        let media = sdp.media();
        if media.is_empty() {
            return Err(ClientError::NoTracks);
        }
        if let MediaTransport::Udp { client_ports } = &self.config.transport {
            if client_ports.len() < media.len() {
                return Err(ClientError::NotEnoughPorts {
                    tracks: media.len(),
                    ports: client_ports.len(),
                });
            }
        }
        let record = matches!(self.config.mode, ClientMode::Record { .. });
        self.tracks = media
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut offer = match &self.config.transport {
                    MediaTransport::Interleaved => {
                        let first = u8::try_from(2 * i).unwrap_or(254);
                        TransportSpec::tcp_interleaved(
                            ChannelRange::pair(ChannelId(first)).unwrap_or(ChannelRange {
                                first: ChannelId(254),
                                last: ChannelId(255),
                            }),
                        )
                    }
                    MediaTransport::Udp { client_ports } => {
                        TransportSpec::udp_unicast(client_ports[i])
                    }
                };
                if record {
                    offer.mode = Some(TransportMode::Record);
                }
                ClientTrack {
                    url: m.resolve_control(&self.aggregate),
                    kind: m.kind().to_owned(),
                    offer,
                    transport: None,
                }
            })
            .collect();
        Ok(())
    }

    fn build(&mut self, step: Step) -> Request {
        let (method, uri) = match step {
            Step::Options => (Method::Options, self.url.clone()),
            Step::Describe => (Method::Describe, self.url.clone()),
            Step::Announce => (Method::Announce, self.url.clone()),
            Step::Setup(i) => {
                let url =
                    self.tracks.get(i).map_or_else(|| self.aggregate.clone(), |t| t.url.clone());
                (Method::Setup, url)
            }
            Step::Play => (Method::Play, self.aggregate.clone()),
            Step::Record => (Method::Record, self.aggregate.clone()),
            Step::Pause => (Method::Pause, self.aggregate.clone()),
            Step::Teardown => (Method::Teardown, self.aggregate.clone()),
            Step::KeepAlive => {
                let get_parameter = !self.keepalive_with_options
                    && self.public.as_ref().is_some_and(|p| p.contains(Method::GetParameter));
                let m = if get_parameter { Method::GetParameter } else { Method::Options };
                (m, self.aggregate.clone())
            }
        };
        let mut req = Request::new(method, uri);
        req.headers.append("CSeq", self.next_cseq.to_string());
        if let Some(ua) = &self.config.user_agent {
            req.headers.append("User-Agent", ua.clone());
        }
        match step {
            Step::Describe => req.headers.append("Accept", "application/sdp"),
            Step::Announce => {
                if let ClientMode::Record { sdp } = &self.config.mode {
                    req.headers.append("Content-Type", "application/sdp");
                    req.headers.append("Content-Length", sdp.len().to_string());
                    req.body = sdp.clone();
                }
            }
            Step::Setup(i) => {
                if let Some(t) = self.tracks.get(i) {
                    Transport::single(t.offer.clone()).set_in(&mut req.headers);
                }
            }
            Step::Play | Step::Record => {
                if let Some(r) = &self.config.range {
                    req.headers.append("Range", r.clone());
                }
            }
            _ => {}
        }
        if let Some(id) = &self.session {
            req.headers.append("Session", id.0.clone());
        }
        if let Some(auth) = &mut self.auth {
            if let Ok(value) = auth.authorize(method, &req.uri, &self.config.cnonce) {
                req.headers.append("Authorization", value);
            }
        }
        req
    }
}
