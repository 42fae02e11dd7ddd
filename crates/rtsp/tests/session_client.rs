//! The client session machine: against the server machine in memory (virtual time, injected
//! loss, authentication, keep-alives), and against recorded real servers' responses, checking
//! that it sends what ffmpeg and GStreamer sent.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns: a panic is a failed test

use std::time::{Duration, Instant};

use manifold_rtsp::auth::{Algorithm, Authorization, Challenge, DigestChallenge, Secret, Verdict};
use manifold_rtsp::codec::{decode, write_request, write_response, Item, Limits};
use manifold_rtsp::header::{ChannelRange, PortRange, Public, RtpInfo, Transport, TypedHeader};
use manifold_rtsp::session::client::{
    ClientConfig, ClientError, ClientEvent, ClientSession, ClientState, ClientTrack,
    MediaTransport, RtcpRoute,
};
use manifold_rtsp::session::server::{
    Action, CloseReason, Decision, ServerConfig, ServerEvent, ServerSessions,
};
use manifold_rtsp::{ChannelId, Method, Request, Response, StatusCode};
use manifold_testdata::Direction;
use proptest::prelude::*;

const URL: &str = "rtsp://h:8554/live";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=test\r\nt=0 0\r\na=control:*\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n\
m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/1\r\na=control:stream=1\r\n";

/// The random source the server machine gets.
type Random = Box<dyn FnMut(&mut [u8])>;

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

/// Through the codec and back, so the test also checks the wire form.
fn over_the_wire_request(r: &Request) -> Request {
    let mut buf = Vec::new();
    write_request(r, &mut buf);
    match decode(&buf, &Limits::default()).unwrap() {
        Some((Item::Request(r), n)) if n == buf.len() => r,
        other => panic!("{other:?}"),
    }
}

fn over_the_wire_response(r: &Response) -> Response {
    let mut buf = Vec::new();
    write_response(r, &mut buf);
    match decode(&buf, &Limits::default()).unwrap() {
        Some((Item::Response(r), n)) if n == buf.len() => r,
        other => panic!("{other:?}"),
    }
}

struct ServerAuth {
    challenges: Vec<Challenge>,
    realm: String,
    nonce: String,
    user: String,
    password: String,
}

/// A minimal runtime around the server machine: answers DESCRIBE with [`SDP`], picks server
/// ports, checks credentials when asked to.
struct TestServer {
    sessions: ServerSessions<Random>,
    public: Option<&'static str>,
    auth: Option<ServerAuth>,
    seen: Vec<Request>,
}

impl TestServer {
    fn new() -> Self {
        TestServer {
            sessions: ServerSessions::new(ServerConfig::default(), xorshift(7)),
            public: Some(
                "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER",
            ),
            auth: None,
            seen: Vec::new(),
        }
    }

    fn with_auth(mut self, challenges: Vec<Challenge>, password: &str) -> Self {
        self.auth = Some(ServerAuth {
            challenges,
            realm: "manifold".into(),
            nonce: "nonce-1".into(),
            user: "user".into(),
            password: password.into(),
        });
        self
    }

    fn serve(&mut self, now: Instant, req: &Request) -> Response {
        self.seen.push(req.clone());
        if let Some(a) = &self.auth {
            let verdict = req
                .headers
                .get("Authorization")
                .and_then(|v| Authorization::parse(v).ok())
                .filter(|au| au.username() == a.user)
                .map(|au| {
                    au.verify(
                        req.method,
                        &req.uri,
                        &a.realm,
                        &a.nonce,
                        &Secret::Password(&a.password),
                    )
                });
            if verdict != Some(Verdict::Valid) {
                let mut r = Response::new(StatusCode::UNAUTHORIZED);
                r.headers.set("CSeq", req.cseq().unwrap_or(0).to_string());
                for c in &a.challenges {
                    let mut c = c.clone();
                    if let Challenge::Digest(d) = &mut c {
                        d.nonce = a.nonce.clone();
                        d.stale = verdict == Some(Verdict::Stale);
                    }
                    r.headers.append("WWW-Authenticate", c.to_string());
                }
                return r;
            }
        }
        match self.sessions.handle_request(now, req) {
            Decision::Reply(r) => r,
            Decision::Needs(p) => {
                let mut r = Response::new(StatusCode::OK);
                match &p.action {
                    Action::Other if p.method == Method::Options => {
                        if let Some(public) = self.public {
                            r.headers.set("Public", public);
                        }
                    }
                    Action::Other if p.method == Method::Describe => {
                        r.headers.set("Content-Base", format!("{}/", p.uri));
                        r.headers.set("Content-Type", "application/sdp");
                        r.body = SDP.as_bytes().to_vec();
                    }
                    Action::Setup { offer, .. } => {
                        let mut spec = offer.first().cloned().unwrap();
                        if spec.interleaved.is_none() {
                            spec.server_port = PortRange::pair(40000);
                        }
                        spec.ssrc = Some(0x1234_5678);
                        Transport::single(spec).set_in(&mut r.headers);
                    }
                    Action::Play => {
                        r.headers
                            .set("RTP-Info", format!("url={}/stream=0;seq=1;rtptime=0", p.uri));
                    }
                    _ => {}
                }
                self.sessions.respond(now, p, r)
            }
        }
    }
}

/// Sends everything the client has to send at `now`; `lose` drops requests on the way.
fn pump(
    c: &mut ClientSession,
    s: &mut TestServer,
    now: Instant,
    lose: &mut dyn FnMut(&Request) -> bool,
) {
    while let Some(req) = c.poll_transmit(now) {
        let req = over_the_wire_request(&req);
        if lose(&req) {
            continue;
        }
        let resp = over_the_wire_response(&s.serve(now, &req));
        c.handle_response(now, &resp);
    }
}

fn no_loss(_: &Request) -> bool {
    false
}

/// Runs client and server on virtual time from `from` to `to`, jumping between their timers.
fn run(
    c: &mut ClientSession,
    s: &mut TestServer,
    from: Instant,
    to: Instant,
    lose: &mut dyn FnMut(&Request) -> bool,
) -> Vec<ServerEvent> {
    let mut server_events = Vec::new();
    let mut now = from;
    loop {
        pump(c, s, now, lose);
        while let Some(e) = s.sessions.poll_event() {
            server_events.push(e);
        }
        let next = [c.poll_timeout(), s.sessions.poll_timeout()].into_iter().flatten().min();
        match next {
            Some(t) if t <= to => {
                now = t.max(now);
                c.handle_timeout(now);
                s.sessions.handle_timeout(now);
            }
            _ => return server_events,
        }
    }
}

fn events(c: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn methods(reqs: &[Request]) -> Vec<Method> {
    reqs.iter().map(|r| r.method).collect()
}

#[test]
fn plays_interleaved_two_tracks_and_tears_down() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play(URL);
    config.user_agent = Some("manifold-test".into());
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new();
    pump(&mut c, &mut s, t0, &mut no_loss);
    use Method::*;
    assert_eq!(methods(&s.seen), [Options, Describe, Setup, Setup, Play]);
    let cseqs: Vec<_> = s.seen.iter().map(|r| r.cseq().unwrap()).collect();
    assert_eq!(cseqs, [1, 2, 3, 4, 5]);
    assert!(s.seen.iter().all(|r| r.headers.get("User-Agent") == Some("manifold-test")));
    assert_eq!(s.seen[1].headers.get("Accept"), Some("application/sdp"));
    assert_eq!(s.seen[2].uri, "rtsp://h:8554/live/stream=0");
    assert_eq!(s.seen[3].uri, "rtsp://h:8554/live/stream=1");
    assert_eq!(s.seen[4].uri, "rtsp://h:8554/live/");
    assert_eq!(s.seen[4].headers.get("Range"), Some("npt=0.000-"));
    assert!(!s.seen[2].headers.contains("Session"));
    let session = c.session().unwrap().clone();
    assert_eq!(s.seen[3].headers.get("Session"), Some(session.0.as_str()));

    let ev = events(&mut c);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let ClientEvent::Described { sdp, base } = &ev[0] else { panic!("{ev:?}") };
    assert_eq!((sdp.media().len(), base.as_str()), (2, "rtsp://h:8554/live/"));
    let ClientEvent::Ready { session: id, tracks } = &ev[1] else { panic!("{ev:?}") };
    assert_eq!(id, &session);
    for (i, t) in tracks.iter().enumerate() {
        let want = ChannelRange::pair(ChannelId(2 * i as u8));
        assert_eq!(t.offer.interleaved, want);
        assert_eq!(t.transport.as_ref().unwrap().interleaved, want);
        assert_eq!(t.transport.as_ref().unwrap().ssrc, Some(0x1234_5678));
    }
    assert_eq!((tracks[0].kind.as_str(), tracks[1].kind.as_str()), ("video", "audio"));
    let ClientEvent::Playing { rtp_info: Some(info) } = &ev[2] else { panic!("{ev:?}") };
    assert_eq!(info.entries[0].seq, Some(1));
    assert_eq!(c.state(), ClientState::Playing);
    assert_eq!(c.session_timeout(), Duration::from_secs(60));
    let live = s.sessions.session(&session).unwrap();
    assert_eq!(live.tracks().len(), 2);
    assert_eq!(live.state(), manifold_rtsp::session::server::ServerState::Playing);

    c.teardown();
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(s.seen.last().unwrap().method, Teardown);
    assert_eq!(events(&mut c), [ClientEvent::Closed]);
    assert_eq!(c.state(), ClientState::Closed);
    assert!(s.sessions.is_empty());
    assert!(c.poll_transmit(t0).is_none() && c.poll_timeout().is_none());
}

#[test]
fn records_over_udp() {
    let t0 = Instant::now();
    let mut config = ClientConfig::record(URL, SDP);
    let ports = vec![PortRange::pair(5000).unwrap(), PortRange::pair(5002).unwrap()];
    config.transport = MediaTransport::Udp { client_ports: ports.clone() };
    config.send_options = false;
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new();
    pump(&mut c, &mut s, t0, &mut no_loss);
    use Method::*;
    assert_eq!(methods(&s.seen), [Announce, Setup, Setup, Record]);
    assert_eq!(s.seen[0].body, SDP.as_bytes());
    assert_eq!(s.seen[0].headers.get("Content-Type"), Some("application/sdp"));
    assert_eq!(s.seen[3].uri, URL);
    for (i, req) in s.seen[1..3].iter().enumerate() {
        let t = Transport::from_headers(&req.headers).unwrap().unwrap();
        assert_eq!(t.specs[0].client_port, Some(ports[i]));
        assert_eq!(t.specs[0].mode, Some(manifold_rtsp::header::TransportMode::Record));
    }
    let ev = events(&mut c);
    assert!(matches!(&ev[..], [ClientEvent::Ready { .. }, ClientEvent::Recording]), "{ev:?}");
    let live = s.sessions.session(c.session().unwrap()).unwrap();
    assert!(live.is_record());
    assert_eq!(live.state(), manifold_rtsp::session::server::ServerState::Recording);
    assert_eq!(c.tracks()[1].transport.as_ref().unwrap().server_port, PortRange::pair(40000));
}

#[test]
fn keepalives_hold_the_session_for_ten_minutes() {
    for (public, expected) in [
        (Some("OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"), Method::GetParameter),
        (Some("OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"), Method::Options),
        (None, Method::Options),
    ] {
        let t0 = Instant::now();
        let mut c = ClientSession::new(ClientConfig::play(URL));
        let mut s = TestServer::new();
        s.public = public;
        let end = t0 + Duration::from_secs(600);
        let server_events = run(&mut c, &mut s, t0, end, &mut no_loss);
        assert!(server_events.is_empty(), "{server_events:?}");
        assert_eq!(c.state(), ClientState::Playing);
        assert_eq!(s.sessions.len(), 1);
        let keepalives: Vec<_> = s.seen[5..].iter().collect();
        assert_eq!(keepalives.len(), 20, "every 30 s for 600 s");
        for k in &keepalives {
            assert_eq!(k.method, expected);
            assert_eq!(k.headers.get("Session"), Some(c.session().unwrap().0.as_str()));
        }
    }
}

#[test]
fn a_session_held_after_setup_is_kept_alive_until_told_to_play() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play(URL);
    config.start_after_setup = false;
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new();
    s.public = Some("OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER");
    assert!(!c.play(), "nothing to start before the SETUPs");
    let server_events = run(&mut c, &mut s, t0, t0 + Duration::from_secs(300), &mut no_loss);
    assert!(server_events.is_empty(), "the server kept the session: {server_events:?}");
    assert_eq!(c.state(), ClientState::Ready);
    assert_eq!(
        methods(&s.seen[..4]),
        [Method::Options, Method::Describe, Method::Setup, Method::Setup]
    );
    let keepalives = &s.seen[4..];
    assert_eq!(keepalives.len(), 10, "every 30 s for 300 s, and no PLAY");
    assert!(keepalives.iter().all(|k| k.method == Method::GetParameter), "{keepalives:?}");
    // Told to play: one PLAY, then playing.
    let at = t0 + Duration::from_secs(301);
    assert!(c.play());
    assert!(!c.play(), "PLAY is queued once");
    pump(&mut c, &mut s, at, &mut no_loss);
    assert_eq!(s.seen.last().map(|r| r.method), Some(Method::Play));
    assert_eq!(c.state(), ClientState::Playing);
    assert!(!c.play(), "already playing");
}

#[test]
fn a_lost_keepalive_times_out_both_sides() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new();
    let mut lose_first_keepalive = |r: &Request| r.method == Method::GetParameter;
    let server_events =
        run(&mut c, &mut s, t0, t0 + Duration::from_secs(300), &mut lose_first_keepalive);
    let ev = events(&mut c);
    assert_eq!(
        ev.last(),
        Some(&ClientEvent::Failed(ClientError::Timeout { method: Method::GetParameter }))
    );
    assert_eq!(c.state(), ClientState::Failed);
    assert!(c.poll_transmit(t0 + Duration::from_secs(400)).is_none());
    assert!(c.poll_timeout().is_none());
    // The server never heard the keep-alive: the session expired 60 s + 5 s after PLAY.
    assert!(matches!(
        &server_events[..],
        [ServerEvent::Closed { reason: CloseReason::Timeout, .. }]
    ));
    assert!(s.sessions.is_empty());
}

#[test]
fn keepalive_fallback_and_forgotten_session() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new();
    pump(&mut c, &mut s, t0, &mut no_loss);
    events(&mut c);
    // A server that lists GET_PARAMETER but refuses it: the client falls back to OPTIONS.
    assert_eq!(c.poll_timeout(), Some(at(30)));
    c.handle_timeout(at(30));
    let k = c.poll_transmit(at(30)).unwrap();
    assert_eq!(k.method, Method::GetParameter);
    let mut refuse = Response::new(StatusCode::NOT_IMPLEMENTED);
    refuse.headers.set("CSeq", k.cseq().unwrap().to_string());
    c.handle_response(at(30), &refuse);
    assert!(c.poll_event().is_none());
    assert_eq!(c.poll_timeout(), Some(at(60)));
    c.handle_timeout(at(60));
    let k = c.poll_transmit(at(60)).unwrap();
    assert_eq!(k.method, Method::Options);
    // The server forgot the session: that one is fatal.
    let mut gone = Response::new(StatusCode::SESSION_NOT_FOUND);
    gone.headers.set("CSeq", k.cseq().unwrap().to_string());
    c.handle_response(at(60), &gone);
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Status {
            method: Method::Options,
            status: StatusCode::SESSION_NOT_FOUND
        })]
    );
}

#[test]
fn a_lost_setup_fails_after_the_response_timeout() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new();
    let mut lose = |r: &Request| r.method == Method::Setup;
    pump(&mut c, &mut s, t0, &mut lose);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    c.handle_timeout(t0 + Duration::from_secs(9));
    assert_eq!(c.state(), ClientState::Starting);
    c.handle_timeout(t0 + Duration::from_secs(10));
    let ev = events(&mut c);
    assert_eq!(
        ev.last(),
        Some(&ClientEvent::Failed(ClientError::Timeout { method: Method::Setup }))
    );
    // A late answer changes nothing.
    let mut late = Response::new(StatusCode::OK);
    late.headers.set("CSeq", "3");
    late.headers.set("Session", "x");
    c.handle_response(t0 + Duration::from_secs(11), &late);
    assert!(c.poll_event().is_none());
    assert_eq!(c.state(), ClientState::Failed);
}

#[test]
fn responses_with_other_cseqs_are_ignored() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let req = c.poll_transmit(t0).unwrap();
    assert_eq!(req.method, Method::Options);
    let mut wrong = Response::new(StatusCode::OK);
    wrong.headers.set("CSeq", "99");
    c.handle_response(t0, &wrong);
    assert!(c.poll_transmit(t0).is_none(), "still waiting for CSeq 1");
    wrong.headers.set("CSeq", "1");
    c.handle_response(t0, &wrong);
    assert_eq!(c.poll_transmit(t0).unwrap().method, Method::Describe);
}

fn digest_challenges() -> Vec<Challenge> {
    vec![
        Challenge::basic("manifold"),
        Challenge::Digest(DigestChallenge::new("manifold", "", Algorithm::Md5)),
        Challenge::Digest(DigestChallenge::new("manifold", "", Algorithm::Sha256)),
    ]
}

#[test]
fn digest_auth_from_url_credentials() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play("rtsp://user:s%3Acret@h:8554/live");
    config.cnonce = "0a4f113b".into();
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new().with_auth(digest_challenges(), "s:cret");
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(c.state(), ClientState::Playing, "{:?}", events(&mut c));
    use Method::*;
    assert_eq!(methods(&s.seen), [Options, Options, Describe, Setup, Setup, Play]);
    assert!(s.seen.iter().all(|r| !r.uri.contains('@')), "userinfo never on the wire");
    assert!(!s.seen[0].headers.contains("Authorization"));
    for (i, r) in s.seen[1..].iter().enumerate() {
        let a = r.headers.get("Authorization").unwrap();
        assert!(a.starts_with("Digest ") && a.contains("algorithm=SHA-256"), "{a}");
        assert!(a.contains(&format!("nc={:08x}", i + 1)), "{a}");
    }
}

#[test]
fn stale_nonce_is_retried_transparently() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play(URL);
    config.credentials = Some(manifold_rtsp::auth::Credentials::new("user", "pw"));
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new().with_auth(digest_challenges(), "pw");
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(c.state(), ClientState::Playing);
    // The server rotates its nonce: the next request is stale, answered with stale=true, and
    // retried with the new nonce without failing.
    s.auth.as_mut().unwrap().nonce = "nonce-2".into();
    let before = s.seen.len();
    c.pause();
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(methods(&s.seen[before..]), [Method::Pause, Method::Pause]);
    assert_eq!(c.state(), ClientState::Paused);
    assert!(s
        .seen
        .last()
        .unwrap()
        .headers
        .get("Authorization")
        .unwrap()
        .contains("nonce=\"nonce-2\""));
}

#[test]
fn a_server_that_is_always_stale_does_not_loop_us() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play("rtsp://user:pw@h/live"));
    let mut s = TestServer::new().with_auth(digest_challenges(), "pw");
    let mut n = 0;
    while let Some(req) = c.poll_transmit(t0) {
        n += 1;
        s.auth.as_mut().unwrap().nonce = format!("nonce-{n}");
        let resp = s.serve(t0, &req);
        c.handle_response(t0, &resp);
    }
    assert_eq!(n, 5, "first try, one retry, three stale retries");
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Unauthorized { method: Method::Options })]
    );
}

#[test]
fn wrong_password_fails_after_one_retry() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play("rtsp://user:wrong@h/live"));
    let mut s = TestServer::new().with_auth(digest_challenges(), "right");
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(methods(&s.seen), [Method::Options, Method::Options]);
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Unauthorized { method: Method::Options })]
    );
    // No credentials at all: no retry.
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new().with_auth(digest_challenges(), "right");
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(s.seen.len(), 1);
    assert_eq!(c.state(), ClientState::Failed);
}

#[test]
fn basic_only_when_allowed() {
    let t0 = Instant::now();
    for allow in [false, true] {
        let mut config = ClientConfig::play("rtsp://user:pw@h/live");
        config.allow_basic = allow;
        let mut c = ClientSession::new(config);
        let mut s = TestServer::new().with_auth(vec![Challenge::basic("manifold")], "pw");
        pump(&mut c, &mut s, t0, &mut no_loss);
        if allow {
            assert_eq!(c.state(), ClientState::Playing);
            assert!(s.seen[1].headers.get("Authorization").unwrap().starts_with("Basic "));
        } else {
            assert_eq!(c.state(), ClientState::Failed);
            assert_eq!(s.seen.len(), 1);
        }
    }
}

#[test]
fn server_errors_fail_the_session() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play(URL));
    c.poll_transmit(t0).unwrap();
    let mut ok = Response::new(StatusCode::OK);
    ok.headers.set("CSeq", "1");
    c.handle_response(t0, &ok);
    let describe = c.poll_transmit(t0).unwrap();
    assert_eq!(describe.method, Method::Describe);
    let mut not_found = Response::new(StatusCode::NOT_FOUND);
    not_found.headers.set("CSeq", "2");
    c.handle_response(t0, &not_found);
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Status {
            method: Method::Describe,
            status: StatusCode::NOT_FOUND
        })]
    );
    assert!(c.poll_transmit(t0).is_none());
}

#[test]
fn a_redirect_ends_the_session_with_its_location() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play(URL);
    config.send_options = false;
    let mut c = ClientSession::new(config.clone());
    assert_eq!(c.poll_transmit(t0).unwrap().method, Method::Describe);
    let mut moved = Response::new(StatusCode::MOVED_TEMPORARILY);
    moved.headers.set("CSeq", "1");
    moved.headers.set("Location", " rtsp://edge:8554/live ");
    c.handle_response(t0, &over_the_wire_response(&moved));
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Redirected {
            method: Method::Describe,
            status: StatusCode::MOVED_TEMPORARILY,
            location: "rtsp://edge:8554/live".to_owned(),
        })]
    );
    assert!(c.poll_transmit(t0).is_none(), "nothing more on this connection");

    // A 3xx that names no place is an error status like any other.
    let mut c = ClientSession::new(config);
    c.poll_transmit(t0).unwrap();
    moved.headers = Default::default();
    moved.headers.set("CSeq", "1");
    c.handle_response(t0, &moved);
    assert_eq!(
        events(&mut c),
        [ClientEvent::Failed(ClientError::Status {
            method: Method::Describe,
            status: StatusCode::MOVED_TEMPORARILY
        })]
    );
}

#[test]
fn pause_resume_and_teardown_mid_setup() {
    let t0 = Instant::now();
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new();
    pump(&mut c, &mut s, t0, &mut no_loss);
    events(&mut c);
    assert!(!c.play() && !c.record());
    assert!(c.pause());
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert_eq!(events(&mut c), [ClientEvent::Paused]);
    assert!(c.play());
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert!(matches!(&events(&mut c)[..], [ClientEvent::Playing { .. }]));

    // TEARDOWN requested while the first SETUP is in flight: sent right after its answer.
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut s = TestServer::new();
    let mut sent = Vec::new();
    while let Some(req) = c.poll_transmit(t0) {
        sent.push(req.method);
        if req.method == Method::Setup {
            c.teardown();
        }
        let resp = s.serve(t0, &req);
        c.handle_response(t0, &resp);
    }
    assert_eq!(sent, [Method::Options, Method::Describe, Method::Setup, Method::Teardown]);
    assert_eq!(c.state(), ClientState::Closed);
    assert!(s.sessions.is_empty());

    // TEARDOWN before any session: closed at once, nothing sent.
    let mut c = ClientSession::new(ClientConfig::play(URL));
    c.teardown();
    assert!(c.poll_transmit(t0).is_none());
    assert_eq!(events(&mut c), [ClientEvent::Closed]);
}

#[test]
fn too_few_udp_ports_and_bad_sdp() {
    let t0 = Instant::now();
    let mut config = ClientConfig::play(URL);
    config.transport = MediaTransport::Udp { client_ports: vec![PortRange::pair(5000).unwrap()] };
    let mut c = ClientSession::new(config);
    let mut s = TestServer::new();
    pump(&mut c, &mut s, t0, &mut no_loss);
    assert!(matches!(
        events(&mut c).last(),
        Some(ClientEvent::Failed(ClientError::NotEnoughPorts { tracks: 2, ports: 1 }))
    ));
    let mut c = ClientSession::new(ClientConfig::record(URL, "not sdp"));
    assert!(c.poll_transmit(t0).is_none());
    assert!(matches!(events(&mut c)[..], [ClientEvent::Failed(ClientError::Sdp(_))]));
}

#[test]
fn server_initiated_requests_are_answered() {
    let mut c = ClientSession::new(ClientConfig::play(URL));
    let mut req = Request::new(Method::Options, "*");
    req.headers.set("CSeq", "7");
    let r = c.handle_request(Instant::now(), &req);
    assert_eq!((r.status, r.cseq()), (StatusCode::OK, Some(7)));
    req.method = Method::Redirect;
    assert_eq!(c.handle_request(Instant::now(), &req).status, StatusCode::NOT_IMPLEMENTED);
}

// ---- replay against recorded servers ----

fn messages(stream: &[u8]) -> (Vec<Request>, Vec<Response>) {
    let (mut reqs, mut resps) = (Vec::new(), Vec::new());
    let mut pos = 0;
    while pos < stream.len() {
        match decode(&stream[pos..], &Limits::default()).unwrap() {
            Some((item, used)) => {
                match item {
                    Item::Request(r) => reqs.push(r),
                    Item::Response(r) => resps.push(r),
                    Item::Interleaved { .. } => {}
                }
                pos += used;
            }
            None => break,
        }
    }
    (reqs, resps)
}

fn from_transcript(name: &str) -> (Vec<Request>, Vec<Response>) {
    let gather = |d: Direction| -> Vec<u8> {
        manifold_testdata::transcript(name)
            .into_iter()
            .filter(|s| s.direction == d)
            .flat_map(|s| s.bytes)
            .collect()
    };
    (messages(&gather(Direction::ClientToServer)).0, messages(&gather(Direction::ServerToClient)).1)
}

fn from_pcap(name: &str, port: u16) -> (Vec<Request>, Vec<Response>) {
    let client = manifold_testdata::tcp_client_port(name, port).unwrap();
    let c2s = manifold_testdata::tcp_stream(name, client, port);
    let s2c = manifold_testdata::tcp_stream(name, port, client);
    (messages(&c2s).0, messages(&s2c).1)
}

fn transport_of(r: &Request) -> Option<manifold_rtsp::header::TransportSpec> {
    Transport::from_headers(&r.headers).unwrap().map(|t| t.specs[0].clone())
}

/// Configures our client like the recorded one, feeds it the recorded server's responses,
/// and checks each of its requests against the recorded client's.
fn replay(name: &str, recorded: Vec<Request>, responses: Vec<Response>) {
    let first = &recorded[0];
    let setups: Vec<_> = recorded.iter().filter(|r| r.method == Method::Setup).collect();
    let offers: Vec<_> = setups.iter().map(|r| transport_of(r).unwrap()).collect();
    let announce = recorded.iter().find(|r| r.method == Method::Announce);
    let start = recorded.iter().find(|r| matches!(r.method, Method::Play | Method::Record));
    let mut config = match announce {
        Some(a) => ClientConfig::record(first.uri.clone(), a.body.clone()),
        None => ClientConfig::play(first.uri.clone()),
    };
    config.send_options = first.method == Method::Options;
    config.user_agent = first.headers.get("User-Agent").map(str::to_owned);
    config.range = start.and_then(|r| r.headers.get("Range")).map(str::to_owned);
    config.transport = if offers[0].interleaved.is_some() {
        MediaTransport::Interleaved
    } else {
        MediaTransport::Udp {
            client_ports: offers.iter().map(|o| o.client_port.unwrap()).collect(),
        }
    };
    let mut c = ClientSession::new(config);
    let t0 = Instant::now();
    let mut saw_start = false;
    for (i, (want, answer)) in recorded.iter().zip(&responses).enumerate() {
        let now = t0 + Duration::from_millis(50 * i as u64);
        match want.method {
            Method::Pause => assert!(c.pause(), "{name}"),
            Method::Teardown => c.teardown(),
            _ => {}
        }
        let ours =
            c.poll_transmit(now).unwrap_or_else(|| panic!("{name}: nothing to send for {want:?}"));
        let ctx = format!(
            "{name} #{i}: ours {} {}, theirs {} {}",
            ours.method, ours.uri, want.method, want.uri
        );
        assert_eq!(ours.method, want.method, "{ctx}");
        assert_eq!(ours.uri, want.uri, "{ctx}");
        assert_eq!(ours.cseq(), want.cseq(), "{ctx}");
        assert_eq!(ours.headers.get("Session"), want.headers.get("Session"), "{ctx}");
        assert_eq!(ours.headers.get("Range"), want.headers.get("Range"), "{ctx}");
        assert_eq!(ours.body, want.body, "{ctx}");
        match (transport_of(&ours), transport_of(want)) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                assert_eq!(a.lower_transport(), b.lower_transport(), "{ctx}");
                assert_eq!(a.is_multicast(), b.is_multicast(), "{ctx}");
                assert_eq!(a.client_port, b.client_port, "{ctx}");
                assert_eq!(a.interleaved, b.interleaved, "{ctx}");
                assert_eq!(a.mode_or_default(), b.mode_or_default(), "{ctx}");
            }
            (a, b) => panic!("{ctx}: transports {a:?} vs {b:?}"),
        }
        let mut answer = answer.clone();
        answer.headers.set("CSeq", ours.cseq().unwrap().to_string());
        c.handle_response(now, &answer);
        for e in events(&mut c) {
            match e {
                ClientEvent::Failed(err) => panic!("{ctx}: failed: {err}"),
                ClientEvent::Playing { rtp_info } => {
                    saw_start = true;
                    let want_info = RtpInfo::from_headers(&answer.headers).unwrap();
                    assert_eq!(rtp_info, want_info);
                }
                ClientEvent::Recording => saw_start = true,
                ClientEvent::Ready { tracks, .. } => {
                    assert_eq!(tracks.len(), setups.len(), "{ctx}");
                    assert!(tracks.iter().all(|t| t.transport.is_some()));
                }
                _ => {}
            }
        }
    }
    assert!(saw_start, "{name}: never started");
    if recorded.last().map(|r| r.method) == Some(Method::Teardown) {
        assert_eq!(c.state(), ClientState::Closed, "{name}");
    }
    assert!(c.poll_transmit(t0 + Duration::from_secs(1)).is_none(), "{name}: nothing more to send");
}

#[test]
fn replays_recorded_transcripts() {
    for name in manifold_testdata::TRANSCRIPTS {
        let (reqs, resps) = from_transcript(name);
        assert_eq!(reqs.len(), resps.len(), "{name}");
        replay(name, reqs, resps);
    }
}

#[test]
fn replays_recorded_interleaved_sessions() {
    for (name, port) in [
        ("rtsp/ffmpeg-play-tcp.pcap", 18554),
        ("rtsp/gst-play-tcp.pcap", 18554),
        ("rtsp/ffmpeg-publish-tcp.pcap", 18555),
    ] {
        let (reqs, resps) = from_pcap(name, port);
        let n = reqs.len().min(resps.len());
        assert!(n >= 4, "{name}");
        replay(name, reqs[..n].to_vec(), resps[..n].to_vec());
    }
}

#[test]
fn public_header_of_recorded_servers() {
    let (_, resps) = from_transcript("rtsp/ffmpeg-publish-udp.txt");
    let public = Public::from_headers(&resps[0].headers).unwrap().unwrap();
    assert!(!public.contains(Method::GetParameter), "so our keep-alive there would be OPTIONS");
}

#[derive(Debug, Clone)]
enum Behaviour {
    Answer,
    Error(u16),
    Drop,
    WrongCSeq,
    Unauthorized,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        6 => Just(Behaviour::Answer),
        1 => (400u16..600).prop_map(Behaviour::Error),
        1 => Just(Behaviour::Drop),
        1 => Just(Behaviour::WrongCSeq),
        1 => Just(Behaviour::Unauthorized),
    ]
}

proptest! {
    /// Whatever the server does (answers, errors, silence, wrong CSeqs, 401s) and whenever
    /// the caller pauses or tears down: no panic, at most one terminal event, and nothing is
    /// sent after it.
    #[test]
    fn client_survives_any_server(
        script in prop::collection::vec((behaviour(), 0u64..40, 0u8..6), 1..40),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut config = ClientConfig::play("rtsp://u:p@h/live");
        config.response_timeout = Duration::from_secs(5);
        let mut c = ClientSession::new(config);
        let mut s = TestServer::new();
        let mut terminal = 0;
        for (b, advance, command) in script {
            match command {
                0 => { c.pause(); }
                1 => { c.play(); }
                2 => c.teardown(),
                _ => {}
            }
            if let Some(req) = c.poll_transmit(now) {
                let cseq = req.cseq().unwrap();
                let resp = match b {
                    Behaviour::Answer => Some(s.serve(now, &req)),
                    Behaviour::Error(code) => {
                        let mut r = Response::new(StatusCode(code));
                        r.headers.set("CSeq", cseq.to_string());
                        Some(r)
                    }
                    Behaviour::Drop => None,
                    Behaviour::WrongCSeq => {
                        let mut r = s.serve(now, &req);
                        r.headers.set("CSeq", (cseq + 1000).to_string());
                        Some(r)
                    }
                    Behaviour::Unauthorized => {
                        let mut r = Response::new(StatusCode::UNAUTHORIZED);
                        r.headers.set("CSeq", cseq.to_string());
                        r.headers.set("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\", qop=\"auth\"");
                        Some(r)
                    }
                };
                if let Some(r) = resp {
                    c.handle_response(now, &r);
                }
            }
            now += Duration::from_secs(advance);
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            for e in events(&mut c) {
                if matches!(e, ClientEvent::Failed(_) | ClientEvent::Closed) {
                    terminal += 1;
                }
            }
            if matches!(c.state(), ClientState::Failed | ClientState::Closed) {
                prop_assert!(c.poll_transmit(now).is_none());
                prop_assert!(c.poll_timeout().is_none());
            }
            prop_assert!(terminal <= 1);
        }
    }
}

/// A track set up with `offer` and the server's `answer` (Transport header values).
fn track(offer: &str, answer: Option<&str>) -> ClientTrack {
    let spec = |s: &str| Transport::parse(s).unwrap().specs.remove(0);
    ClientTrack {
        url: format!("{URL}/stream=0"),
        kind: "video".into(),
        offer: spec(offer),
        transport: answer.map(spec),
    }
}

#[test]
fn rtcp_goes_to_the_port_or_channel_the_answer_names() {
    let udp = "RTP/AVP;unicast;client_port=5000-5001";
    let route = |offer, answer| track(offer, answer).rtcp_route();
    let answered = format!("{udp};server_port=6970-6971");
    assert_eq!(route(udp, Some(answered.as_str())), Some(RtcpRoute::Udp { port: 6971 }));
    let one_port = format!("{udp};server_port=6970");
    assert_eq!(route(udp, Some(one_port.as_str())), Some(RtcpRoute::Udp { port: 6971 }));
    assert_eq!(route(udp, Some(udp)), None, "no server_port: nowhere to send");
    assert_eq!(route(udp, None), None);

    let tcp = "RTP/AVP/TCP;unicast;interleaved=0-1";
    let channel = |c| Some(RtcpRoute::Interleaved { channel: ChannelId(c) });
    assert_eq!(route(tcp, Some("RTP/AVP/TCP;unicast;interleaved=4-5")), channel(5));
    assert_eq!(route(tcp, Some("RTP/AVP/TCP;unicast;interleaved=6")), channel(7));
    assert_eq!(route(tcp, Some("RTP/AVP/TCP;unicast")), channel(1), "the offer's channels");
    assert_eq!(route(tcp, None), channel(1));
}
