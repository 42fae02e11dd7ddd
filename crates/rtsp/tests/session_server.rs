//! The server session machine: the RFC 2326 Appendix A.2 table, 454/455/460, timeouts, session
//! ids, a replay of real clients' requests, and random method interleavings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns: a panic is a failed test

use std::collections::HashSet;
use std::time::{Duration, Instant};

use manifold_rtsp::codec::{decode, Item, Limits};
use manifold_rtsp::header::{Session, Transport, TypedHeader};
use manifold_rtsp::session::server::{
    Action, CloseReason, Decision, ServerConfig, ServerEvent, ServerSessions, ServerState,
};
use manifold_rtsp::{Method, Request, Response, SessionId, StatusCode};
use manifold_testdata::Direction;
use proptest::prelude::*;

/// A deterministic "random" source (xorshift), as a runtime would pass its RNG.
fn xorshift(seed: u64) -> impl FnMut(&mut [u8]) {
    let mut x = seed | 1;
    move |buf: &mut [u8]| {
        for b in buf {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

type Sessions = ServerSessions<Box<dyn FnMut(&mut [u8])>>;

fn sessions(config: ServerConfig) -> Sessions {
    ServerSessions::new(config, Box::new(xorshift(42)) as Box<dyn FnMut(&mut [u8])>)
}

const AGG: &str = "rtsp://h/live/";
const TRACK0: &str = "rtsp://h/live/stream=0";
const TRACK1: &str = "rtsp://h/live/stream=1";

fn request(method: Method, uri: &str, cseq: u32, session: Option<&SessionId>) -> Request {
    let mut r = Request::new(method, uri);
    r.headers.append("CSeq", cseq.to_string());
    if let Some(id) = session {
        r.headers.append("Session", id.0.clone());
    }
    if method == Method::Setup {
        r.headers.append("Transport", "RTP/AVP;unicast;client_port=5000-5001");
    }
    r
}

/// What a trivial runtime answers: 200, with a server transport for SETUP.
fn answer(action: &Action) -> Response {
    let mut r = Response::new(StatusCode::OK);
    if let Action::Setup { offer, .. } = action {
        let mut spec = offer.first().cloned().unwrap_or_default();
        spec.server_port = manifold_rtsp::header::PortRange::pair(6000);
        Transport::single(spec).set_in(&mut r.headers);
    }
    r
}

/// Sends a request; a `Needs` is answered with [`answer`]. Returns the response.
fn exchange(s: &mut Sessions, now: Instant, req: &Request) -> Response {
    match s.handle_request(now, req) {
        Decision::Reply(r) => r,
        Decision::Needs(p) => {
            let a = answer(&p.action);
            s.respond(now, p, a)
        }
    }
}

fn session_of(r: &Response) -> Option<SessionId> {
    Session::from_headers(&r.headers).unwrap().map(|s| s.id)
}

/// A session driven into `state` (`None` for Init: no session at all).
fn session_in(
    s: &mut Sessions,
    now: Instant,
    state: ServerState,
    record: bool,
) -> Option<SessionId> {
    if state == ServerState::Init {
        return None;
    }
    let mut setup = request(Method::Setup, TRACK0, 1, None);
    if record {
        setup.headers.set("Transport", "RTP/AVP;unicast;client_port=5000-5001;mode=record");
    }
    let r = exchange(s, now, &setup);
    assert_eq!(r.status, StatusCode::OK);
    let id = session_of(&r).unwrap();
    let go = match state {
        ServerState::Playing => Some(Method::Play),
        ServerState::Recording => Some(Method::Record),
        _ => None,
    };
    if let Some(m) = go {
        assert_eq!(exchange(s, now, &request(m, AGG, 2, Some(&id))).status, StatusCode::OK);
    }
    assert_eq!(s.session(&id).unwrap().state(), state);
    Some(id)
}

/// RFC 2326 Appendix A.2, written out independently of the implementation: the next state for
/// each (state, method), `None` = 455. Methods the table does not list keep the state.
fn rfc_table(state: ServerState, method: Method) -> Option<ServerState> {
    use Method::*;
    use ServerState::*;
    match method {
        Options | Describe | Announce | GetParameter | SetParameter => return Some(state),
        Redirect => return None,
        _ => {}
    }
    let rows: &[(ServerState, Method, ServerState)] = &[
        (Init, Setup, Ready),
        (Init, Teardown, Init),
        (Ready, Play, Playing),
        (Ready, Setup, Ready),
        (Ready, Teardown, Init),
        (Ready, Record, Recording),
        (Playing, Play, Playing),
        (Playing, Pause, Ready),
        (Playing, Teardown, Init),
        (Playing, Setup, Playing),
        (Recording, Record, Recording),
        (Recording, Pause, Ready),
        (Recording, Teardown, Init),
        (Recording, Setup, Recording),
    ];
    rows.iter().find(|(s, m, _)| *s == state && *m == method).map(|(_, _, n)| *n)
}

#[test]
fn transition_function_matches_rfc_table() {
    for state in ServerState::ALL {
        for method in Method::ALL {
            let expected =
                rfc_table(state, method).ok_or(StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
            assert_eq!(state.after(method), expected, "{state:?} × {method}");
        }
    }
}

#[test]
fn every_state_and_method_on_the_wire() {
    let t0 = Instant::now();
    for state in ServerState::ALL {
        for method in Method::ALL {
            // Sessions set up for recording accept RECORD, for playing PLAY: use the one the
            // method needs, so the row is checked and not the direction rule.
            let record = state == ServerState::Recording
                || (state != ServerState::Playing && method == Method::Record);
            let mut s = sessions(ServerConfig::default());
            let id = session_in(&mut s, t0, state, record);
            let r = exchange(&mut s, t0, &request(method, AGG, 10, id.as_ref()));
            assert_eq!(r.cseq(), Some(10));
            let sid = id.clone().or_else(|| session_of(&r));
            let after =
                sid.as_ref().and_then(|id| s.session(id)).map_or(ServerState::Init, |x| x.state());
            match rfc_table(state, method) {
                None => {
                    let want = if method == Method::Redirect {
                        StatusCode::METHOD_NOT_ALLOWED
                    } else {
                        StatusCode::METHOD_NOT_VALID_IN_THIS_STATE
                    };
                    assert_eq!(r.status, want, "{state:?} × {method}");
                    assert_eq!(after, state, "{state:?} × {method}: state kept");
                }
                Some(next) => {
                    assert_eq!(r.status, StatusCode::OK, "{state:?} × {method}");
                    assert_eq!(after, next, "{state:?} × {method}");
                    if id.is_some() && next != ServerState::Init {
                        assert_eq!(session_of(&r), id, "{state:?} × {method}: Session echoed");
                    }
                }
            }
        }
    }
}

#[test]
fn unknown_session_is_454_but_options_passes() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let bogus = SessionId("nope".into());
    for m in [Method::Play, Method::Pause, Method::Teardown, Method::Setup, Method::GetParameter] {
        let r = exchange(&mut s, t0, &request(m, AGG, 1, Some(&bogus)));
        assert_eq!(r.status, StatusCode::SESSION_NOT_FOUND, "{m}");
    }
    assert_eq!(
        exchange(&mut s, t0, &request(Method::Options, AGG, 1, Some(&bogus))).status,
        StatusCode::OK
    );
    assert!(s.is_empty());
}

#[test]
fn malformed_requests() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let mut no_cseq = Request::new(Method::Options, AGG);
    no_cseq.headers.append("User-Agent", "x");
    assert_eq!(exchange(&mut s, t0, &no_cseq).status, StatusCode::BAD_REQUEST);
    let mut no_transport = request(Method::Setup, TRACK0, 2, None);
    no_transport.headers.remove("Transport");
    assert_eq!(exchange(&mut s, t0, &no_transport).status, StatusCode::BAD_REQUEST);
    let mut raw = request(Method::Setup, TRACK0, 3, None);
    raw.headers.set("Transport", "RAW/RAW/UDP;unicast");
    assert_eq!(exchange(&mut s, t0, &raw).status, StatusCode::UNSUPPORTED_TRANSPORT);
    let mut bad_session = request(Method::Play, AGG, 4, None);
    bad_session.headers.append("Session", "a b");
    assert_eq!(exchange(&mut s, t0, &bad_session).status, StatusCode::BAD_REQUEST);
    assert!(s.is_empty());
}

#[test]
fn runtime_errors_change_nothing() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let Decision::Needs(p) = s.handle_request(t0, &request(Method::Setup, TRACK0, 1, None)) else {
        panic!()
    };
    let r = s.respond(t0, p, Response::new(StatusCode::NOT_FOUND));
    assert_eq!((r.status, r.cseq()), (StatusCode::NOT_FOUND, Some(1)));
    assert!(s.is_empty() && session_of(&r).is_none());
    let id = session_in(&mut s, t0, ServerState::Ready, false).unwrap();
    let Decision::Needs(p) = s.handle_request(t0, &request(Method::Play, AGG, 2, Some(&id))) else {
        panic!()
    };
    let r = s.respond(t0, p, Response::new(StatusCode::INVALID_RANGE));
    assert_eq!(session_of(&r), Some(id.clone()));
    assert_eq!(s.session(&id).unwrap().state(), ServerState::Ready);
}

#[test]
fn aggregate_only_and_per_track_teardown() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let id = session_in(&mut s, t0, ServerState::Ready, false).unwrap();
    // One track: its own URL is as good as the aggregate.
    assert_eq!(
        exchange(&mut s, t0, &request(Method::Play, TRACK0, 2, Some(&id))).status,
        StatusCode::OK
    );
    assert_eq!(
        exchange(&mut s, t0, &request(Method::Setup, TRACK1, 3, Some(&id))).status,
        StatusCode::OK
    );
    assert_eq!(s.session(&id).unwrap().tracks().len(), 2);
    assert_eq!(
        s.session(&id).unwrap().state(),
        ServerState::Playing,
        "SETUP while playing keeps playing"
    );
    let r = exchange(&mut s, t0, &request(Method::Pause, TRACK1, 4, Some(&id)));
    assert_eq!(r.status, StatusCode::ONLY_AGGREGATE_OPERATION_ALLOWED);
    // Re-SETUP of a known track replaces its transport instead of adding one.
    let Decision::Needs(p) = s.handle_request(t0, &request(Method::Setup, TRACK1, 5, Some(&id)))
    else {
        panic!()
    };
    assert!(matches!(p.action, Action::Setup { existing_track: Some(1), .. }));
    let a = answer(&p.action);
    s.respond(t0, p, a);
    assert_eq!(s.session(&id).unwrap().tracks().len(), 2);
    // TEARDOWN of one track keeps the session; of the last one ends it.
    assert_eq!(
        exchange(&mut s, t0, &request(Method::Teardown, TRACK0, 6, Some(&id))).status,
        StatusCode::OK
    );
    assert_eq!(s.session(&id).unwrap().tracks()[0].uri, TRACK1);
    assert!(s.poll_event().is_none());
    assert_eq!(
        exchange(&mut s, t0, &request(Method::Teardown, TRACK1, 7, Some(&id))).status,
        StatusCode::OK
    );
    assert!(s.is_empty());
    assert!(matches!(
        s.poll_event(),
        Some(ServerEvent::Closed { reason: CloseReason::Teardown, .. })
    ));
}

#[test]
fn play_and_record_sessions_do_not_cross() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let rec = session_in(&mut s, t0, ServerState::Ready, true).unwrap();
    assert!(s.session(&rec).unwrap().is_record());
    let r = exchange(&mut s, t0, &request(Method::Play, AGG, 2, Some(&rec)));
    assert_eq!(r.status, StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
    let play = session_in(&mut s, t0, ServerState::Ready, false).unwrap();
    let r = exchange(&mut s, t0, &request(Method::Record, AGG, 2, Some(&play)));
    assert_eq!(r.status, StatusCode::METHOD_NOT_VALID_IN_THIS_STATE);
}

#[test]
fn timeouts_expire_silent_sessions_only() {
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let config = ServerConfig {
        timeout: Duration::from_secs(60),
        grace: Duration::from_secs(5),
        id_len: 16,
    };
    let mut s = sessions(config);
    assert_eq!(s.poll_timeout(), None);
    let quiet = session_in(&mut s, t0, ServerState::Playing, false).unwrap();
    let chatty = session_in(&mut s, t0, ServerState::Playing, false).unwrap();
    let rtcp = session_in(&mut s, t0, ServerState::Playing, false).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(65)));
    // Keep-alives: a GET_PARAMETER, and RTCP reported as activity.
    assert_eq!(
        exchange(&mut s, at(30), &request(Method::GetParameter, AGG, 3, Some(&chatty))).status,
        StatusCode::OK
    );
    assert!(s.handle_activity(at(40), &rtcp));
    assert!(!s.handle_activity(at(40), &SessionId("gone".into())));
    s.handle_timeout(at(64));
    assert!(s.poll_event().is_none());
    assert_eq!(s.len(), 3);
    s.handle_timeout(at(65));
    match s.poll_event() {
        Some(ServerEvent::Closed { session, reason: CloseReason::Timeout }) => {
            assert_eq!(session.id(), &quiet);
            assert_eq!(session.state(), ServerState::Playing);
            assert_eq!(session.tracks().len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.poll_event().is_none());
    assert_eq!(s.poll_timeout(), Some(at(95)), "re-armed at the refreshed session's expiry");
    s.handle_timeout(at(95));
    assert_eq!(s.len(), 1);
    s.handle_timeout(at(105));
    assert!(s.is_empty());
    assert_eq!(s.poll_timeout(), None);
    let r = exchange(&mut s, at(106), &request(Method::Play, AGG, 9, Some(&quiet)));
    assert_eq!(r.status, StatusCode::SESSION_NOT_FOUND);
}

#[test]
fn timeout_is_advertised() {
    let t0 = Instant::now();
    let mut s =
        sessions(ServerConfig { timeout: Duration::from_secs(30), ..ServerConfig::default() });
    let r = exchange(&mut s, t0, &request(Method::Setup, TRACK0, 1, None));
    assert_eq!(Session::from_headers(&r.headers).unwrap().unwrap().timeout, Some(30));
}

#[test]
fn session_ids_are_distinct_and_well_formed() {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let r = exchange(&mut s, t0, &request(Method::Setup, TRACK0, i, None));
        let id = session_of(&r).unwrap();
        assert!(Session::is_valid_id(&id.0) && id.0.len() == 16, "{id}");
        assert!(seen.insert(id));
    }
    assert_eq!(s.len(), 2000);
    // A broken source (always the same bytes) gives one session, then 503, never a duplicate.
    let mut s = ServerSessions::new(ServerConfig::default(), |b: &mut [u8]| b.fill(0));
    let first = s.handle_request(t0, &request(Method::Setup, TRACK0, 1, None));
    let Decision::Needs(p) = first else { panic!() };
    let a = answer(&p.action);
    assert_eq!(s.respond(t0, p, a).status, StatusCode::OK);
    let Decision::Needs(p) = s.handle_request(t0, &request(Method::Setup, TRACK0, 2, None)) else {
        panic!()
    };
    let a = answer(&p.action);
    assert_eq!(s.respond(t0, p, a).status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(s.len(), 1);
}

/// Every message of a TCP byte stream (interleaved frames skipped).
fn messages(stream: &[u8]) -> (Vec<Request>, Vec<Response>) {
    let (mut reqs, mut resps) = (Vec::new(), Vec::new());
    let mut pos = 0;
    let limits = Limits::default();
    while pos < stream.len() {
        match decode(&stream[pos..], &limits).unwrap() {
            Some((item, used)) => {
                match item {
                    Item::Request(r) => reqs.push(r),
                    Item::Response(r) => resps.push(r),
                    Item::Interleaved { .. } => {}
                }
                pos += used;
            }
            None => break, // a capture may end mid-frame
        }
    }
    (reqs, resps)
}

fn transcript_requests(name: &str) -> Vec<Request> {
    let c2s: Vec<u8> = manifold_testdata::transcript(name)
        .into_iter()
        .filter(|s| s.direction == Direction::ClientToServer)
        .flat_map(|s| s.bytes)
        .collect();
    messages(&c2s).0
}

fn pcap_requests(name: &str, port: u16) -> Vec<Request> {
    let client = manifold_testdata::tcp_client_port(name, port).unwrap();
    messages(&manifold_testdata::tcp_stream(name, client, port)).0
}

/// Feeds a real client's requests to the machine (its recorded session ids replaced by ours)
/// and returns the states after each request.
fn replay(requests: &[Request]) -> Vec<ServerState> {
    let t0 = Instant::now();
    let mut s = sessions(ServerConfig::default());
    let mut ours: Option<SessionId> = None;
    let mut states = Vec::new();
    for (i, recorded) in requests.iter().enumerate() {
        let mut req = recorded.clone();
        if req.headers.contains("Session") {
            let id = ours.clone().expect("a Session header before any SETUP answer");
            req.headers.set("Session", id.0);
        }
        let now = t0 + Duration::from_millis(100 * i as u64);
        let r = exchange(&mut s, now, &req);
        assert!(r.status.is_success(), "{} {} → {}", req.method, req.uri, r.status);
        assert_eq!(r.cseq(), recorded.cseq());
        if ours.is_none() {
            ours = session_of(&r);
        }
        states.push(
            ours.as_ref().and_then(|id| s.session(id)).map_or(ServerState::Init, |x| x.state()),
        );
    }
    if requests.last().map(|r| r.method) == Some(Method::Teardown) {
        assert!(s.is_empty());
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::Closed { reason: CloseReason::Teardown, .. })
        ));
    }
    states
}

#[test]
fn replays_recorded_clients() {
    use ServerState::*;
    let ffmpeg_play = replay(&transcript_requests("rtsp/ffmpeg-play-udp.txt"));
    assert_eq!(ffmpeg_play, [Init, Init, Ready, Playing, Init]);
    let gst_play = replay(&transcript_requests("rtsp/gst-play-udp.txt"));
    assert_eq!(gst_play, [Init, Init, Ready, Playing, Ready, Init]);
    let ffmpeg_publish = replay(&transcript_requests("rtsp/ffmpeg-publish-udp.txt"));
    assert_eq!(ffmpeg_publish, [Init, Init, Ready, Ready, Recording, Init]);

    let tcp_play = replay(&pcap_requests("rtsp/ffmpeg-play-tcp.pcap", 18554));
    assert_eq!(&tcp_play[..4], [Init, Init, Ready, Playing]);
    let gst_tcp = replay(&pcap_requests("rtsp/gst-play-tcp.pcap", 18554));
    assert_eq!(&gst_tcp[..4], [Init, Init, Ready, Playing]);
    let tcp_publish = replay(&pcap_requests("rtsp/ffmpeg-publish-tcp.pcap", 18555));
    assert_eq!(&tcp_publish[..5], [Init, Init, Ready, Ready, Recording]);
}

#[derive(Debug, Clone)]
struct Op {
    method: Method,
    /// 0: no Session header, 1: the live session (if any), 2: an unknown id.
    session: u8,
    /// 0: aggregate, 1: track 0, 2: track 1.
    uri: u8,
    record: bool,
    runtime_fails: bool,
    advance_secs: u64,
}

fn op() -> impl Strategy<Value = Op> {
    (0..Method::ALL.len(), 0u8..3, 0u8..3, any::<bool>(), prop::bool::weighted(0.1), 0u64..40)
        .prop_map(|(m, session, uri, record, runtime_fails, advance_secs)| Op {
            method: Method::ALL[m],
            session,
            uri,
            record,
            runtime_fails,
            advance_secs,
        })
}

proptest! {
    /// Random interleavings of valid and invalid requests, runtime failures and time passing:
    /// no panic, every answer carries the CSeq, live sessions are never in Init and have
    /// tracks, and a state changes only through a 2xx, as the RFC table says.
    #[test]
    fn random_interleavings_stay_consistent(ops in prop::collection::vec(op(), 1..60)) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = sessions(ServerConfig::default());
        let mut live: Option<SessionId> = None;
        for (i, op) in ops.iter().enumerate() {
            now += Duration::from_secs(op.advance_secs);
            s.handle_timeout(now);
            while let Some(ServerEvent::Closed { session, .. }) = s.poll_event() {
                if live.as_ref() == Some(session.id()) { live = None; }
            }
            let uri = [AGG, TRACK0, TRACK1][usize::from(op.uri)];
            let unknown = SessionId("unknown".into());
            let sid = match op.session { 0 => None, 1 => live.clone(), _ => Some(unknown.clone()) };
            let sid = sid.as_ref();
            let mut req = request(op.method, uri, i as u32, sid);
            if op.record && op.method == Method::Setup {
                req.headers.set("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record");
            }
            let before = sid.and_then(|id| s.session(id)).map(|x| x.state());
            let response = match s.handle_request(now, &req) {
                Decision::Reply(r) => r,
                Decision::Needs(p) => {
                    let from = p.state;
                    prop_assert_eq!(Some(from), before.or(Some(ServerState::Init)));
                    prop_assert!(from.after(op.method).is_ok());
                    let a = if op.runtime_fails { Response::new(StatusCode::NOT_FOUND) } else { answer(&p.action) };
                    s.respond(now, p, a)
                }
            };
            prop_assert_eq!(response.cseq(), Some(i as u32));
            let created = session_of(&response).filter(|id| s.session(id).is_some());
            if live.is_none() { live = created; }
            let after = sid.and_then(|id| s.session(id)).map(|x| x.state());
            if let (Some(b), Some(a)) = (before, after) {
                if !response.status.is_success() || op.method == Method::Teardown {
                    // (a TEARDOWN that leaves the session alive removed one track only)
                    prop_assert_eq!(a, b, "state changed on an error");
                } else {
                    prop_assert_eq!(Ok(a), b.after(op.method));
                }
            }
            for x in s.sessions() {
                prop_assert!(x.state() != ServerState::Init);
                prop_assert!(!x.tracks().is_empty());
            }
            if let Some(id) = &live { if s.session(id).is_none() { live = None; } }
        }
    }
}
