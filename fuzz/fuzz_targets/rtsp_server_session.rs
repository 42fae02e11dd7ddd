//! The server session machine driven by a client stream decoded from the input, with the
//! runtime's answers and virtual time taken from a script at the front of the input.
//!
//! Input: `[L][script: L bytes][RTSP byte stream]`. Each request takes three script bytes
//! (cyclically; an empty script means "200, no time passes, nothing else"): the runtime's
//! status and whether a SETUP answer names a transport; the seconds that pass before it; and
//! an extra step (the client's media keeps a session alive, a connection drops a session, or
//! timers fire between the request and its answer). Session ids the client names that the
//! machine never issued (those in recorded transcripts) are mapped, in order of appearance,
//! onto the ids it did issue, so recorded exchanges replay; others stay unknown.
//!
//! Invariants: every answer carries the request's CSeq (a 400 when the request has none);
//! the live sessions are exactly those created and not yet closed (so never more than were
//! created); no answer names a session after it closed (the TEARDOWN answer aside, which
//! names the session it ends) and activity on it is refused; a live session is never in
//! Init; the timer is never later than the earliest expiry, and after it fires no expired
//! session is left; closing events come once per session, for timeouts only when the session
//! was silent for `timeout + grace`; and once every session has been silent that long, none
//! is left.
#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use manifold_rtsp::codec::{Decoder, Item, Limits};
use manifold_rtsp::header::{PortRange, Session, Transport, TypedHeader};
use manifold_rtsp::session::server::{
    Action, CloseReason, Decision, ServerConfig, ServerEvent, ServerSessions,
};
use manifold_rtsp::{Request, Response, SessionId, StatusCode};

/// Requests handled per input, at most (keeps an execution short).
const MAX_REQUESTS: usize = 256;

/// What the runtime may answer a request with.
const STATUSES: [u16; 12] = [200, 200, 200, 200, 200, 201, 404, 454, 461, 500, 503, 302];

type Random = Box<dyn FnMut(&mut [u8])>;

/// A deterministic "random" source (xorshift), as a runtime would pass its RNG.
fn xorshift(seed: u64) -> Random {
    let mut x = seed | 1;
    Box::new(move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    })
}

struct Script<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Script<'_> {
    fn next(&mut self) -> u8 {
        if self.bytes.is_empty() {
            return 0;
        }
        let b = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        b
    }
}

struct Harness {
    machine: ServerSessions<Random>,
    config: ServerConfig,
    now: Instant,
    /// The sessions the machine has answered as created and not closed since.
    live: HashSet<SessionId>,
    closed: HashSet<SessionId>,
    created: usize,
    /// Client-side ids (from recordings) → the ids the machine issued.
    aliases: HashMap<String, SessionId>,
    /// Issued ids no client-side id is mapped to yet, oldest first.
    unaliased: VecDeque<SessionId>,
}

impl Harness {
    fn expiry(&self, last_activity: Instant) -> Instant {
        last_activity + self.config.timeout + self.config.grace
    }

    /// Points the request's `Session` at an issued id when it names an unknown one.
    fn map_session(&mut self, req: &mut Request) {
        let Some(value) = req.headers.get("Session").map(str::to_owned) else { return };
        let Ok(Some(header)) = Session::from_headers(&req.headers) else { return };
        let id = header.id;
        if self.live.contains(&id) || self.closed.contains(&id) {
            return;
        }
        let real = match self.aliases.get(&id.0) {
            Some(real) => real.clone(),
            None => match self.unaliased.pop_front() {
                Some(real) => {
                    self.aliases.insert(id.0.clone(), real.clone());
                    real
                }
                None => return,
            },
        };
        req.headers.set("Session", value.replacen(&id.0, &real.0, 1));
    }

    /// Checks an answer to `req`; `ending` is the session a TEARDOWN answer may name.
    fn check_answer(&mut self, req: &Request, resp: &Response, ending: Option<&SessionId>) {
        match req.cseq() {
            Some(cseq) => assert_eq!(resp.cseq(), Some(cseq), "CSeq of {req:?} in {resp:?}"),
            None => assert_eq!(resp.status, StatusCode::BAD_REQUEST, "no CSeq: {resp:?}"),
        }
        let Some(header) = Session::from_headers(&resp.headers).expect("the answer's Session")
        else {
            return;
        };
        let id = header.id;
        if ending == Some(&id) {
            return;
        }
        assert!(!self.closed.contains(&id), "closed session {id:?} answered as live: {resp:?}");
        assert!(self.machine.session(&id).is_some(), "answer names no live session: {resp:?}");
        if self.live.insert(id.clone()) {
            self.created += 1;
            self.unaliased.push_back(id);
        }
    }

    fn drain_events(&mut self) {
        while let Some(ServerEvent::Closed { session, reason }) = self.machine.poll_event() {
            let id = session.id().clone();
            assert!(self.live.remove(&id), "closed {id:?}, which was not live");
            assert!(self.closed.insert(id.clone()), "closed {id:?} twice");
            if reason == CloseReason::Timeout {
                assert!(self.expiry(session.last_activity()) <= self.now, "{id:?} expired early");
            }
        }
    }

    fn check_table(&self) {
        assert_eq!(self.machine.len(), self.live.len(), "sessions: {:?}", self.live);
        assert!(self.machine.len() <= self.created);
        for id in &self.closed {
            assert!(self.machine.session(id).is_none(), "closed {id:?} still in the table");
        }
        let mut earliest = None::<Instant>;
        for id in &self.live {
            let s = self.machine.session(id).expect("a live session is in the table");
            assert_ne!(s.state(), manifold_rtsp::session::server::ServerState::Init, "{s:?}");
            assert!(s.last_activity() <= self.now);
            let expiry = self.expiry(s.last_activity());
            earliest = Some(earliest.map_or(expiry, |e| e.min(expiry)));
        }
        if let Some(earliest) = earliest {
            let timer = self.machine.poll_timeout().expect("a timer while sessions live");
            assert!(timer <= earliest, "timer {timer:?} after the earliest expiry {earliest:?}");
        }
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        if self.machine.poll_timeout().is_some_and(|t| t <= self.now) {
            self.machine.handle_timeout(self.now);
        }
        self.drain_events();
        for id in &self.live {
            let s = self.machine.session(id).expect("live");
            assert!(self.expiry(s.last_activity()) > self.now, "{id:?} expired but kept");
        }
    }

    /// Client media (interleaved RTCP) for every session it might belong to.
    fn activity(&mut self) {
        let ids: Vec<SessionId> = self.live.iter().chain(&self.closed).cloned().collect();
        for id in ids {
            let live = self.live.contains(&id);
            assert_eq!(self.machine.handle_activity(self.now, &id), live, "activity on {id:?}");
        }
    }

    fn request(&mut self, mut req: Request, script: &mut Script<'_>) {
        let (answer, secs, extra) = (script.next(), script.next(), script.next());
        self.advance(u64::from(secs % 128));
        match extra % 8 {
            5 => self.activity(),
            6 => {
                // The connection of the oldest issued session closes.
                if let Some(id) = self.live.iter().min().cloned() {
                    assert!(self.machine.close(&id).is_some());
                    self.live.remove(&id);
                    self.closed.insert(id);
                }
            }
            _ => {}
        }
        self.map_session(&mut req);
        match self.machine.handle_request(self.now, &req) {
            Decision::Reply(resp) => self.check_answer(&req, &resp, None),
            Decision::Needs(pending) => {
                assert_eq!(pending.method, req.method);
                assert_eq!(pending.uri, req.uri);
                if let Some(id) = &pending.session {
                    let s = self.machine.session(id).expect("a pending request's session lives");
                    assert_eq!(s.state(), pending.state);
                    assert_eq!(s.last_activity(), self.now, "the request refreshed it");
                }
                let status = StatusCode(STATUSES[usize::from(answer) % STATUSES.len()]);
                let mut resp = Response::new(status);
                if let Action::Setup { offer, .. } = &pending.action {
                    if answer & 0x80 == 0 {
                        let mut spec = offer.first().cloned().unwrap_or_default();
                        spec.server_port = PortRange::pair(6000);
                        Transport::single(spec).set_in(&mut resp.headers);
                    }
                }
                if extra % 8 == 7 {
                    // Timers fire while the runtime works on the answer.
                    self.advance(u64::from(secs));
                }
                let ending = match pending.action {
                    Action::Teardown { .. } => pending.session.clone(),
                    _ => None,
                };
                let resp = self.machine.respond(self.now, pending, resp);
                self.drain_events();
                self.check_answer(&req, &resp, ending.as_ref());
            }
        }
        self.drain_events();
        self.check_table();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else { return };
    let (script, stream) = rest.split_at(usize::from(len).min(rest.len()));
    let mut script = Script { bytes: script, at: 0 };
    let config = ServerConfig::default();
    let mut h = Harness {
        machine: ServerSessions::new(config.clone(), xorshift(0x5eed)),
        config,
        now: Instant::now(),
        live: HashSet::new(),
        closed: HashSet::new(),
        created: 0,
        aliases: HashMap::new(),
        unaliased: VecDeque::new(),
    };
    let mut decoder = Decoder::new(Limits::default());
    let mut at = 0;
    let mut requests = 0;
    while at < stream.len() && requests < MAX_REQUESTS {
        match decoder.feed(&stream[at..]) {
            Ok(Some((item, consumed))) => {
                at += consumed;
                match item {
                    Item::Request(req) => {
                        requests += 1;
                        h.request(req, &mut script);
                    }
                    Item::Interleaved { .. } => h.activity(),
                    Item::Response(_) => {}
                }
            }
            Ok(None) => break,
            Err(e) => match e.resume_at() {
                Some(skip) => at += skip,
                None => break,
            },
        }
    }
    // Everyone goes silent: every session expires.
    let latest =
        h.live.iter().filter_map(|id| h.machine.session(id)).map(|s| s.last_activity()).max();
    if let Some(latest) = latest {
        let wait = h.expiry(latest).saturating_duration_since(h.now);
        h.advance(wait.as_secs() + 1);
    }
    assert!(h.machine.is_empty() && h.live.is_empty(), "{:?} outlived their timeout", h.live);
    assert_eq!(h.machine.poll_event(), None);
});
