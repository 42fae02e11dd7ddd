//! ffmpeg's and GStreamer's Digest answers against our verifier: a loopback RTSP server
//! (std::net, one thread) answers every request with what [`Access::check`] decides (401 with
//! its challenges, 404 once allowed, 503 when rate-limited), and records each client's
//! `Authorization` headers and the decisions. With the right password the client gets in;
//! with a wrong one it never does. Missing tools skip the test, or fail it under `CI=true`.
//!
//! Found with these tests (ffmpeg 5.1, GStreamer 1.22): both answer the MD5 challenge. ffmpeg
//! sends `algorithm="MD5"` with `qop="auth"`; GStreamer sends neither (RFC 2069 form).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is a failed test

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use manifold_access::{
    Access, AccessConfig, Action, Decision, Limits, NonceKey, Presented, Protocol, Reason, Request,
};
use manifold_rtsp::auth::{Algorithm, Authorization, Challenge};
use manifold_rtsp::codec::{self, Item};
use manifold_rtsp::{Response, StatusCode};

/// What the server saw: each request's `Authorization` (if any) and what was decided.
#[derive(Debug, Default)]
struct Seen {
    answers: Vec<(String, String)>,
}

fn have(tool: &str, arg: &str) -> bool {
    let found = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} missing and CI=true");
        println!("skipped: {tool} missing");
    }
    found
}

fn policy() -> Arc<manifold_access::Policy> {
    let config: AccessConfig =
        toml::from_str("[[user]]\nname = \"user\"\npassword = \"pass\"\nactions = [\"read\"]\n")
            .unwrap();
    Arc::new(config.compile().unwrap())
}

/// Serves connections until `stop` (or `deadline`), answering as `Access` decides.
fn serve(
    listener: TcpListener,
    deadline: Instant,
    stop: &AtomicBool,
    seen: &Mutex<Seen>,
    sha256_only: bool,
) {
    let mut secret = [0u8; 32];
    secret[0] = 1;
    let mut access =
        Access::new(policy(), NonceKey::new(secret, Instant::now()), Limits::default());
    listener.set_nonblocking(true).unwrap();
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        connection(stream, peer, &mut access, deadline, stop, seen, sha256_only);
    }
}

fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    access: &mut Access,
    deadline: Instant,
    stop: &AtomicBool,
    seen: &Mutex<Seen>,
    sha256_only: bool,
) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let consumed = match codec::decode(&buf, &codec::Limits::default()) {
            Ok(Some((Item::Request(req), n))) => {
                let auth = req.headers.get("Authorization");
                let credentials = match auth {
                    Some(value) => Presented::Header { value, method: req.method, uri: &req.uri },
                    None => Presented::Nothing,
                };
                let request = Request {
                    peer: peer.ip(),
                    path: "/x",
                    action: Action::Read,
                    protocol: Protocol::Rtsp,
                    over_tls: false,
                    credentials,
                };
                let decision = access.check(Instant::now(), &request);
                let (mut response, close) = match &decision {
                    Decision::Challenge(u) if sha256_only => {
                        // What a client does when MD5 is not on offer.
                        let mut u = u.clone();
                        u.challenges.retain(|c| {
                            matches!(c, Challenge::Digest(d) if d.algorithm == Some(Algorithm::Sha256))
                        });
                        (u.response(), false)
                    }
                    Decision::Challenge(u) => (u.response(), false),
                    Decision::Allowed { .. } => (Response::new(StatusCode::NOT_FOUND), true),
                    _ => (Response::new(StatusCode(503)), true),
                };
                if let Some(auth) = auth {
                    seen.lock().unwrap().answers.push((auth.to_owned(), summary(&decision)));
                }
                response.headers.set("CSeq", req.headers.get("CSeq").unwrap_or("0"));
                let mut out = Vec::new();
                codec::write_response(&response, &mut out);
                if stream.write_all(&out).is_err() || close {
                    return;
                }
                n
            }
            Ok(Some((_, n))) => n,
            Ok(None) => match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    0
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    0
                }
                Err(_) => return,
            },
            // What a server does with a head it will not take: 400 and close. (GStreamer
            // 1.22 repeats its RealMedia headers on every retry after a 401, so its fourth
            // retry has more than 64 header lines.)
            Err(e) => {
                seen.lock().unwrap().answers.push((String::new(), format!("undecodable: {e}")));
                return;
            }
        };
        buf.drain(..consumed);
    }
}

fn summary(d: &Decision) -> String {
    match d {
        Decision::Allowed { user } => format!("allowed {user:?}"),
        Decision::Challenge(u) => match &u.failure {
            Some(f) => format!("401 {}", f.reason),
            None => "401".into(),
        },
        Decision::Forbidden(r) => format!("403 {}", r.attempt.reason),
        Decision::RateLimited { .. } => "rate-limited".into(),
        Decision::NeedsHook(_) => "hook".into(),
    }
}

/// Runs `client(port)` against the server with `password`, returns what the server saw.
fn run(client: impl Fn(u16, &str) -> Command, password: &str) -> Seen {
    run_offering(client, password, false)
}

/// [`run`], the 401s offering Digest SHA-256 alone when `sha256_only`.
fn run_offering(client: impl Fn(u16, &str) -> Command, password: &str, sha256_only: bool) -> Seen {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(20);
    let server = {
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || serve(listener, deadline, &stop, &seen, sha256_only))
    };
    let mut child = client(port, password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The client gives up by itself on a 404, a 503 or a closed connection; bound it anyway.
    let client_deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() && Instant::now() < client_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::Relaxed);
    server.join().expect("the test server panicked");
    let mut s = seen.lock().unwrap();
    Seen { answers: std::mem::take(&mut s.answers) }
}

fn digest_of(value: &str) -> manifold_rtsp::auth::DigestAuthorization {
    match Authorization::parse(value).unwrap() {
        Authorization::Digest(d) => d,
        other => panic!("expected Digest, got {other:?}"),
    }
}

fn ffmpeg(port: u16, password: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i"])
        .arg(format!("rtsp://user:{password}@127.0.0.1:{port}/x"))
        .args(["-t", "1", "-f", "null", "-"]);
    c
}

fn gstreamer(port: u16, password: &str) -> Command {
    let mut c = Command::new("gst-launch-1.0");
    c.arg("-q")
        .arg("rtspsrc")
        .arg(format!("location=rtsp://127.0.0.1:{port}/x"))
        .arg("user-id=user")
        .arg(format!("user-pw={password}"))
        .args(["protocols=tcp", "!", "fakesink"]);
    c
}

#[test]
fn ffmpeg_digest_is_verified() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let good = run(ffmpeg, "pass");
    let (value, outcome) = good.answers.first().expect("ffmpeg sent no Authorization");
    assert_eq!(outcome, "allowed Some(\"user\")", "{good:?}");
    let d = digest_of(value);
    println!("ffmpeg answers: algorithm {:?}, qop {:?}", d.algorithm, d.qop);
    assert_eq!(d.algorithm, Some(Algorithm::Md5), "ffmpeg 5.1 keeps the last Digest challenge");
    assert!(d.qop.is_some() && d.nc.is_some() && d.cnonce.is_some(), "{value}");

    let bad = run(ffmpeg, "wrong");
    assert!(!bad.answers.is_empty(), "ffmpeg sent no Authorization");
    for (value, outcome) in &bad.answers {
        assert!(!outcome.starts_with("allowed"), "{value} -> {outcome}");
    }
    println!("wrong password: {:?}", bad.answers.iter().map(|a| &a.1).collect::<Vec<_>>());
    assert!(
        bad.answers.iter().any(|(_, o)| o == &format!("401 {}", Reason::WrongPassword)),
        "{bad:?}"
    );
}

#[test]
fn gstreamer_digest_is_verified() {
    if !have("gst-launch-1.0", "--version") {
        return;
    }
    let good = run(gstreamer, "pass");
    let (value, outcome) = good.answers.first().expect("GStreamer sent no Authorization");
    assert_eq!(outcome, "allowed Some(\"user\")", "{good:?}");
    let d = digest_of(value);
    println!("GStreamer answers: algorithm {:?}, qop {:?}", d.algorithm, d.qop);
    assert_eq!(d.qop, None, "GStreamer 1.22 answers RFC 2069 style");

    let bad = run(gstreamer, "wrong");
    assert!(!bad.answers.is_empty(), "GStreamer sent no Authorization");
    for (value, outcome) in &bad.answers {
        assert!(!outcome.starts_with("allowed"), "{value} -> {outcome}");
    }
    println!("wrong password: {:?}", bad.answers.iter().map(|a| &a.1).collect::<Vec<_>>());
    assert!(
        bad.answers.iter().any(|(_, o)| o == &format!("401 {}", Reason::WrongPassword)),
        "{bad:?}"
    );
}

/// Offered Digest SHA-256 alone, ffmpeg 5.1 sends no credentials at all (it knows MD5 and
/// MD5-sess only), and GStreamer 1.22 answers with MD5 anyway (it ignores `algorithm`).
/// Hence the 401 always offers MD5 after SHA-256.
#[test]
fn sha256_alone_is_not_enough_for_either_client() {
    if have("ffmpeg", "-version") {
        let seen = run_offering(ffmpeg, "pass", true);
        assert!(seen.answers.is_empty(), "ffmpeg answered SHA-256: {seen:?}");
    }
    if have("gst-launch-1.0", "--version") {
        let seen = run_offering(gstreamer, "pass", true);
        let (value, outcome) = seen.answers.first().expect("GStreamer sent no Authorization");
        let d = digest_of(value);
        assert_eq!(d.algorithm, None, "{value}");
        assert_eq!(d.response.len(), 32, "an MD5 digest: {value}");
        // Our verifier takes the answer's own (absent = MD5) algorithm, so it still passes.
        assert_eq!(outcome, "allowed Some(\"user\")", "{seen:?}");
    }
}
