//! End-to-end tests of `manifold serve` with real peers: ffmpeg publishes (TCP and UDP),
//! ffmpeg and GStreamer read through the relay, and the RTSP status codes a hostile or
//! confused client gets. Traffic stays on 127.0.0.1; the relay binds port 0 and prints the
//! address it got. When ffmpeg or gst-launch-1.0 is missing the peer tests print
//! "skipped: ..." and pass, except under `CI=true`, where they fail.

// Test helpers outside #[test] functions: a panic here is a failed test, not a crashed server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::{
    exchange, ffmpeg_reads, free_port, gstreamer_reads, have, run_bounded, setup_play_tcp,
    streams_json, wait_published, KillOnDrop, Relay,
};

/// The test clip (H.264 + AAC, 4 s, keyframe every second), made once per test run.
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        // Under the target directory (removed by `cargo clean`), one per test process.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("manifold-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("clip.mp4");
        let out = run_bounded(
            Command::new("ffmpeg")
                .args([
                    "-v",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=320x180:rate=25",
                    "-f",
                    "lavfi",
                    "-i",
                    "sine",
                    "-t",
                    "4",
                    "-c:v",
                    "libx264",
                    "-g",
                    "25",
                    "-bf",
                    "0",
                    "-c:a",
                    "aac",
                ])
                .arg(&path),
            Duration::from_secs(60),
        )
        .expect("ffmpeg makes the clip in time");
        assert!(out.status.success(), "clip: {}", String::from_utf8_lossy(&out.stderr));
        path
    })
}

/// An ffmpeg publisher looping the clip to `url` over RTSP, killed when dropped.
fn rtsp_publisher(url: &str, transport: &str) -> KillOnDrop {
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip())
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", transport, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg publisher");
    KillOnDrop(child)
}

fn connect(relay: &Relay) -> TcpStream {
    let c = TcpStream::connect(relay.addr).expect("connect to relay");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c
}

#[test]
fn answers_status_codes_and_survives_malformed_requests() {
    let relay = Relay::start(&[]);
    let mut c = connect(&relay);
    let url = relay.url("/nothing");
    let (s, head) = exchange(&mut c, &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(s, 200);
    assert!(head.contains("Public: ") && head.contains("CSeq: 1"), "{head}");
    let (s, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n"));
    assert_eq!(s, 404);
    let (s, head) = exchange(&mut c, "BOGUS\r\nCSeq: 3\r\n\r\n");
    assert_eq!(s, 400, "{head}");
    assert!(head.contains("CSeq: 3"), "{head}");
    let (s, _) = exchange(&mut c, &format!("FLY {url} RTSP/1.0\r\nCSeq: 4\r\n\r\n"));
    assert_eq!(s, 501);
    let (s, _) =
        exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 5\r\nSession: nope\r\n\r\n"));
    assert_eq!(s, 454);
    let (s, _) = exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 6\r\n\r\n"));
    assert_eq!(s, 455);
    let (s, _) = exchange(&mut c,
        &format!("SETUP {url} RTSP/1.0\r\nCSeq: 7\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"));
    assert_eq!(s, 404);
    let (s, _) = exchange(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: 8\r\n\r\n");
    assert_eq!(s, 200, "the connection survived");
}

#[test]
fn unsupported_transport_is_461() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    let mut c = connect(&relay);
    let url = relay.url("/demo/trackID=0");
    let (s, _) = exchange(&mut c,
        &format!("SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast;port=5000-5001\r\n\r\n"));
    assert_eq!(s, 461);
    let (s, _) = exchange(&mut c,
        &format!("SETUP {url} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;destination=10.9.9.9\r\n\r\n"));
    assert_eq!(s, 461, "a destination other than the peer is refused");
    let (s, head) = exchange(&mut c,
        &format!("SETUP {url} RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"));
    assert_eq!(s, 200, "{head}");
    assert!(head.contains("Session: ") && head.contains("interleaved=0-1"), "{head}");
}

#[test]
fn sigint_stops_the_relay_with_exit_0() {
    let mut relay = Relay::start(&["--synthetic", "/demo"]);
    let _idle = connect(&relay);
    let status = relay.interrupt(Duration::from_secs(10)).expect("relay exits after SIGINT");
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_second_relay_on_a_port_in_use_is_refused_and_a_restart_is_not() {
    // SO_REUSEPORT lets every shard bind the port; it let a second relay of the same user
    // bind it too, and the kernel then split new clients between the two. It is refused
    // now, with the address it found, and the first one keeps every client.
    let mut relay = Relay::start(&["--synthetic", "/demo"]);
    let port = relay.addr.port();
    for listen in [format!("127.0.0.1:{port}"), format!("0.0.0.0:{port}")] {
        let second = run_bounded(
            Command::new(env!("CARGO_BIN_EXE_manifold"))
                .args(["serve", "--listen", &listen, "--cores", "1"])
                .env("RUST_BACKTRACE", "0"),
            Duration::from_secs(10),
        )
        .expect("the second relay exits");
        let err = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{listen}: {err}");
        assert!(err.contains(&format!("cannot bind {listen}")), "{err}");
        assert!(err.contains(&format!("a socket listens on 127.0.0.1:{port} already")), "{err}");
    }
    // The connections a stopped relay closed itself wait in TIME_WAIT on its port; they do
    // not hold it against the next one.
    let mut reader = connect(&relay);
    let url = relay.url("/demo");
    setup_play_tcp(&mut reader, &url, 1);
    let status = relay.interrupt(Duration::from_secs(10)).expect("relay exits after SIGINT");
    assert!(status.success(), "exit status {status}");
    // Read to the relay's close, so that ours is a clean one (unread bytes would reset).
    reader.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
    drop(reader);
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let waiting = format!(":{port:04X} ");
    assert!(
        tcp.lines().any(|l| l.contains(&waiting) && l.split_whitespace().nth(3) == Some("06")),
        "the relay's side of the reader's connection is in TIME_WAIT:\n{tcp}"
    );
    let again = Relay::start_on(port, &["--synthetic", "/demo"]);
    assert_eq!(again.addr.port(), port);
}

#[test]
fn synthetic_stream_plays_in_ffmpeg_and_gstreamer() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let relay = Relay::start(&["--synthetic", "/demo"]);
    let url = relay.url("/demo");
    ffmpeg_reads(&url, "tcp");
    ffmpeg_reads(&url, "udp");
    gstreamer_reads(&url, 1);
}

#[test]
fn ffmpeg_publishes_over_tcp_and_is_read_back() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let relay = Relay::start(&[]);
    let url = relay.url("/cam");
    let _publisher = rtsp_publisher(&url, "tcp");
    wait_published(&relay, "/cam");
    ffmpeg_reads(&url, "udp");
    ffmpeg_reads(&url, "tcp");
    gstreamer_reads(&url, 2);
}

/// The relay's access settings for the credentials test: a publisher and a viewer, Basic
/// allowed in clear only so that the test can poll with a fixed header.
const USERS: &str = "allow_basic = true\n\
                     [[user]]\nname = \"cam\"\npassword = \"s3cret\"\nactions = [\"publish\"]\n\
                     paths = [\"cam/*\"]\n\
                     [[user]]\nname = \"viewer\"\npassword = \"v13w\"\nactions = [\"read\"]\n";

/// `Authorization` for viewer:v13w in Basic.
const VIEWER_BASIC: &str = "Basic dmlld2VyOnYxM3c=";

/// Waits until the viewer's DESCRIBE of `path` succeeds (its publisher is up).
fn wait_described_as_viewer(relay: &Relay, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = connect(relay);
        let url = relay.url(path);
        let (s, _) = exchange(
            &mut c,
            &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: {VIEWER_BASIC}\r\n\r\n"),
        );
        if s == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never published (DESCRIBE {s})");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// ffmpeg reading `url` fails (it exits non-zero within the bound).
fn ffmpeg_is_refused(url: &str) {
    ffmpeg_is_refused_over(url, "tcp");
}

/// ffmpeg cannot read `url` over `transport` (`tcp`, `udp`, `http`).
fn ffmpeg_is_refused_over(url: &str, transport: &str) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", transport, "-i", url, "-t", "1"])
            .args(["-f", "null", "-"]),
        Duration::from_secs(20),
    )
    .expect("ffmpeg finished in time");
    assert!(!out.status.success(), "ffmpeg read {url} though it should be refused");
}

#[test]
fn publishers_and_readers_need_their_credentials() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let config = common::config_file("e2e-users", USERS);
    let port = free_port();
    let rtmp = format!("127.0.0.1:{port}");
    let relay =
        Relay::start(&["--config", config.to_str().expect("utf-8 path"), "--rtmp-listen", &rtmp]);
    let addr = relay.addr;
    // An ANNOUNCE without credentials: 401, offering Digest SHA-256 and MD5 (and Basic here).
    let mut c = connect(&relay);
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
               a=rtpmap:96 H264/90000\r\n";
    let (s, head) = exchange(
        &mut c,
        &format!(
            "ANNOUNCE rtsp://{addr}/cam/door RTSP/1.0\r\nCSeq: 1\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    assert_eq!(s, 401, "{head}");
    assert!(head.contains("algorithm=SHA-256") && head.contains("algorithm=MD5"), "{head}");
    // ffmpeg without credentials, or with the viewer's, cannot publish.
    for url in [format!("rtsp://{addr}/cam/door"), format!("rtsp://viewer:v13w@{addr}/cam/door")] {
        let out = run_bounded(
            Command::new("ffmpeg").args(["-v", "error", "-re", "-i"]).arg(clip()).args([
                "-t",
                "1",
                "-c",
                "copy",
                "-f",
                "rtsp",
                "-rtsp_transport",
                "tcp",
                &url,
            ]),
            Duration::from_secs(20),
        )
        .expect("ffmpeg finished in time");
        assert!(!out.status.success(), "ffmpeg published to {url} without the right credentials");
    }
    // With the publisher's it publishes (Digest MD5: ffmpeg has no SHA-256).
    let _publisher = rtsp_publisher(&format!("rtsp://cam:s3cret@{addr}/cam/door"), "tcp");
    wait_described_as_viewer(&relay, "/cam/door");
    std::thread::sleep(Duration::from_millis(1200));
    // The viewer reads with ffmpeg (UDP and TCP) and GStreamer; nobody else does.
    ffmpeg_reads(&format!("rtsp://viewer:v13w@{addr}/cam/door"), "tcp");
    ffmpeg_reads(&format!("rtsp://viewer:v13w@{addr}/cam/door"), "udp");
    gstreamer_reads(&format!("rtsp://viewer:v13w@{addr}/cam/door"), 2);
    ffmpeg_is_refused(&format!("rtsp://{addr}/cam/door"));
    ffmpeg_is_refused(&format!("rtsp://viewer:wrong@{addr}/cam/door"));
    ffmpeg_is_refused(&format!("rtsp://cam:s3cret@{addr}/cam/door")); // publish-only user
                                                                      // Through an HTTP tunnel the same Authorization headers decide.
    ffmpeg_reads(&format!("rtsp://viewer:v13w@{addr}/cam/door"), "http");
    ffmpeg_is_refused_over(&format!("rtsp://{addr}/cam/door"), "http");
    ffmpeg_is_refused_over(&format!("rtsp://viewer:wrong@{addr}/cam/door"), "http");
    // RTMP: the same permission, credentials on the URL's query.
    let out = run_bounded(
        Command::new("ffmpeg").args(["-v", "error", "-re", "-i"]).arg(clip()).args([
            "-t",
            "1",
            "-c",
            "copy",
            "-f",
            "flv",
            &format!("rtmp://{rtmp}/cam/side"),
        ]),
        Duration::from_secs(20),
    )
    .expect("ffmpeg finished in time");
    assert!(!out.status.success(), "ffmpeg published over RTMP without credentials");
    let _rtmp_publisher = rtmp_publisher(&format!("rtmp://{rtmp}/cam/side?user=cam&pass=s3cret"));
    wait_described_as_viewer(&relay, "/cam/side");
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

/// An ffmpeg RTMP publisher looping the clip to `url`, killed when dropped.
fn rtmp_publisher(url: &str) -> KillOnDrop {
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip())
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg rtmp publisher");
    KillOnDrop(child)
}

#[test]
fn ffmpeg_publishes_over_rtmp_and_is_read_back_over_rtsp() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let port = free_port();
    let rtmp = format!("127.0.0.1:{port}");
    let relay = Relay::start(&["--rtmp-listen", &rtmp]);
    let _publisher = rtmp_publisher(&format!("rtmp://{rtmp}/live/cam"));
    wait_published(&relay, "/live/cam");
    let url = relay.url("/live/cam");
    ffmpeg_reads(&url, "tcp");
    ffmpeg_reads(&url, "udp");
    gstreamer_reads(&url, 2);
}

#[test]
fn ffmpeg_and_gstreamer_read_through_an_http_tunnel() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let tunnel = format!("127.0.0.1:{}", free_port());
    let relay = Relay::start(&["--synthetic", "/demo", "--http-tunnel-listen", &tunnel]);
    std::thread::sleep(Duration::from_millis(1200));
    let url = relay.url("/demo");
    ffmpeg_reads(&url, "http");
    gstreamer_reads(&relay.url("/demo").replacen("rtsp://", "rtsph://", 1), 1);
    // The extra port for tunnels (where only HTTP may pass).
    ffmpeg_reads(&format!("rtsp://{tunnel}/demo"), "http");
}

/// One base64 POST of a tunnel, on its own connection: `request` for the GET half `cookie`.
fn tunnel_post(relay: &Relay, cookie: &str, request: &str) {
    use base64::Engine as _;
    let mut c = connect(relay);
    let body = base64::engine::general_purpose::STANDARD.encode(request);
    let post = format!(
        "POST /demo HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n\
         Content-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n{body}"
    );
    c.write_all(post.as_bytes()).expect("POST");
    // Closed at once, as clients that open one POST per request do.
}

/// Opens a tunnel's GET half with `cookie`: its reader, past the HTTP answer's head.
fn tunnel_get(relay: &Relay, cookie: &str) -> BufReader<TcpStream> {
    let mut get = connect(relay);
    let head = format!(
        "GET /demo HTTP/1.0\r\nx-sessioncookie: {cookie}\r\n\
         Accept: application/x-rtsp-tunnelled\r\n\r\n"
    );
    get.write_all(head.as_bytes()).expect("GET");
    let mut reader = BufReader::new(get);
    let mut line = String::new();
    reader.read_line(&mut line).expect("GET answered");
    assert_eq!(line, "HTTP/1.0 200 OK\r\n");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).expect("GET head");
    }
    reader
}

/// The next RTSP answer on a tunnel's GET half: status line and CSeq.
fn tunnel_answer(reader: &mut BufReader<TcpStream>) -> (String, Option<String>) {
    let mut status = String::new();
    reader.read_line(&mut status).expect("response on the GET half");
    let mut cseq = None;
    loop {
        let mut l = String::new();
        reader.read_line(&mut l).expect("response head");
        if l == "\r\n" {
            break;
        }
        cseq = cseq.or(l.strip_prefix("CSeq: ").map(|v| v.trim().to_owned()));
    }
    (status, cseq)
}

#[test]
fn a_tunnel_joins_posts_from_any_shard_and_refuses_strangers() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    let url = relay.url("/demo");
    let mut reader = tunnel_get(&relay, "c00kie");
    // Eight requests on eight POST connections: with two shards, some land on the other
    // shard than the GET (all on the same one 1 time in 128).
    for cseq in 1..=8 {
        tunnel_post(&relay, "c00kie", &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n"));
        let (status, got_cseq) = tunnel_answer(&mut reader);
        assert_eq!(status, "RTSP/1.0 200 OK\r\n", "request {cseq}");
        assert_eq!(got_cseq, Some(cseq.to_string()), "in order, on the GET half");
    }
    // A second GET with the same cookie, and a POST for a tunnel nobody opened, are refused.
    let mut again = connect(&relay);
    again.write_all(b"GET /demo HTTP/1.0\r\nx-sessioncookie: c00kie\r\n\r\n").expect("GET");
    let mut answer = String::new();
    BufReader::new(again).read_line(&mut answer).expect("answered");
    assert!(answer.starts_with("HTTP/1.0 403 "), "{answer}");
    let mut stranger = connect(&relay);
    stranger
        .write_all(b"POST /demo HTTP/1.0\r\nx-sessioncookie: nobody\r\n\r\nT1BUSU9OUw==")
        .expect("POST");
    let mut rest = Vec::new();
    let _ = stranger.read_to_end(&mut rest);
    // The relay closes it without an RTSP answer anywhere.
    assert!(!String::from_utf8_lossy(&rest).contains("RTSP/1.0"), "{rest:?}");
}

#[test]
fn a_tunnel_get_whose_post_never_comes_is_closed_after_the_request_timeout() {
    let config = common::config_file("e2e-lone-get", "request_timeout_secs = 2\n");
    let relay =
        Relay::start(&["--synthetic", "/demo", "--config", config.to_str().expect("utf-8")]);
    let opened = Instant::now();
    let mut get = tunnel_get(&relay, "lonely").into_inner();
    get.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut rest = Vec::new();
    get.read_to_end(&mut rest).expect("closed by the relay, not timed out here");
    let after = opened.elapsed();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(after >= Duration::from_millis(1500), "closed before the timeout: {after:?}");
    assert!(after < Duration::from_secs(6), "closed late: {after:?}");
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

#[test]
fn bad_base64_and_a_cookie_from_another_address_are_refused_and_harm_no_reader() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    let url = relay.url("/demo");
    // A reader playing over plain TCP beside the tunnel.
    let mut player = connect(&relay);
    setup_play_tcp(&mut player, &url, 1);
    let mut tunnel = tunnel_get(&relay, "c00kie");

    // A POST for the tunnel whose body is not base64: 400, and closed.
    let mut bad = connect(&relay);
    bad.write_all(
        b"POST /demo HTTP/1.0\r\nx-sessioncookie: c00kie\r\nContent-Length: 32767\r\n\r\n*not base64*",
    )
    .expect("POST");
    let mut answer = Vec::new();
    let _ = bad.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 400 "), "{answer}");

    // The right cookie from another address (127.0.0.2): closed, nothing reaches the tunnel.
    let other =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    other.bind(&"127.0.0.2:0".parse::<SocketAddr>().expect("addr").into()).expect("127.0.0.2");
    other.connect(&relay.addr.into()).expect("connect from 127.0.0.2");
    let mut other = TcpStream::from(other);
    let foreign = format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 99\r\n\r\n");
    let body = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(foreign)
    };
    other
        .write_all(
            format!("POST /demo HTTP/1.0\r\nx-sessioncookie: c00kie\r\n\r\n{body}").as_bytes(),
        )
        .expect("POST");
    let mut rest = Vec::new();
    let _ = other.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("RTSP/1.0"), "{rest:?}");

    // The tunnel goes on: the next answer on its GET half is to its own client's request.
    tunnel_post(&relay, "c00kie", &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n"));
    let (status, cseq) = tunnel_answer(&mut tunnel);
    assert_eq!((status.as_str(), cseq.as_deref()), ("RTSP/1.0 200 OK\r\n", Some("7")));

    // And the player still receives media: drain what came meanwhile, then new bytes arrive.
    player.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 65536];
    while player.read(&mut buf).is_ok_and(|n| n > 0) {}
    player.set_nonblocking(false).expect("blocking");
    player.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
    let n = player.read(&mut buf).expect("media after the attacks");
    assert!(n > 0 && buf[..n].contains(&b'$'), "interleaved media goes on");
}

#[test]
fn gstreamer_publishes_and_plays_with_digest() {
    if !have("gst-launch-1.0", "--version") {
        return;
    }
    // No Basic: only Digest is offered, so that is what GStreamer must answer.
    let config = common::config_file(
        "e2e-digest",
        "[[user]]\nname = \"cam\"\npassword = \"s3cret\"\nactions = [\"publish\", \"read\"]\n",
    );
    let metrics = format!("127.0.0.1:{}", free_port());
    let relay = Relay::start(&["--config", config.to_str().expect("utf-8"), "--metrics", &metrics]);
    let location = format!("location=rtsp://{}/cam/gst", relay.addr);
    let mut publisher = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "is-live=true", "!"])
        .args(["video/x-raw,width=320,height=180,framerate=25/1", "!"])
        .args(["x264enc", "tune=zerolatency", "key-int-max=25", "!", "rtspclientsink"])
        .args([location.as_str(), "user-id=cam", "user-pw=s3cret", "protocols=tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gst-launch-1.0 publisher");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !streams_json(&metrics).contains("\"/cam/gst\"") {
        assert!(Instant::now() < deadline, "GStreamer never published with Digest");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(1200));
    gstreamer_reads(&format!("rtsp://cam:s3cret@{}/cam/gst", relay.addr), 1);
    let _ = publisher.kill();
    let _ = publisher.wait();
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

/// An auth hook: a Python HTTP server allowing `hooked`/`pw` to read and nothing else.
const HOOK: &str = r#"
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        q = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = q.get("user") == "hooked" and q.get("password") == "pw" and q.get("action") == "read"
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print("PORT", s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn an_auth_hook_decides_who_reads() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-c", HOOK]);
    let hook = common::PortPrinter::start(cmd, "the auth hook");
    // The hook needs the password: Basic, allowed in clear here.
    let config = common::config_file("e2e-hook", "allow_basic = true\n");
    let relay = Relay::start(&[
        "--synthetic",
        "/demo",
        "--config",
        config.to_str().expect("utf-8"),
        "--auth-hook",
        &format!("http://127.0.0.1:{}/auth", hook.port),
    ]);
    std::thread::sleep(Duration::from_millis(1200));
    let addr = relay.addr;
    ffmpeg_reads(&format!("rtsp://hooked:pw@{addr}/demo"), "tcp");
    ffmpeg_is_refused(&format!("rtsp://hooked:wrong@{addr}/demo"));
    ffmpeg_is_refused(&format!("rtsp://{addr}/demo"));
    // The hook gone: denied (after the cached answer expires).
    drop(hook);
    std::thread::sleep(Duration::from_secs(6));
    ffmpeg_is_refused(&format!("rtsp://hooked:pw@{addr}/demo"));
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

#[test]
fn a_path_announced_but_never_recorded_is_released() {
    let config = common::config_file("e2e-record", "record_timeout_secs = 2\n");
    let relay = Relay::start(&["--config", config.to_str().expect("utf-8")]);
    let mut c = connect(&relay);
    let url = relay.url("/squat");
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
               a=rtpmap:96 H264/90000\r\n";
    let (s, _) = exchange(
        &mut c,
        &format!(
            "ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    assert_eq!(s, 200);
    let mut probe = connect(&relay);
    let describe = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert_eq!(exchange(&mut probe, &describe).0, 200, "announced: published");
    std::thread::sleep(Duration::from_millis(3500));
    let mut probe = connect(&relay);
    assert_eq!(exchange(&mut probe, &describe).0, 404, "released without RECORD");
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

/// A network namespace joined to this one by a veth pair (`10.203.N.1` here, `10.203.N.2`
/// inside), torn down when dropped.
struct Netns {
    name: String,
    veth: String,
    here: String,
}

impl Netns {
    fn create() -> Netns {
        let n = std::process::id() % 250;
        let (name, veth, peer) = (format!("mfl{n}"), format!("mfl{n}a"), format!("mfl{n}b"));
        let (here, there) = (format!("10.203.{n}.1"), format!("10.203.{n}.2"));
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().is_ok_and(|s| s.success());
            assert!(ok, "ip {args:?} failed (the test needs root)");
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let _ = Command::new("ip").args(["link", "del", &veth]).status();
        let ns = Netns { name: name.clone(), veth: veth.clone(), here: here.clone() };
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &name]);
        ip(&["addr", "add", &format!("{here}/30"), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{there}/30"), "dev", &peer]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &peer, "up"]);
        ns
    }

    /// The first line a request to `addr` gets from inside the namespace.
    fn ask(&self, addr: SocketAddr, request: &str) -> String {
        let script = "import socket,sys\n\
                      s=socket.create_connection((sys.argv[1],int(sys.argv[2])),5)\n\
                      s.sendall(sys.argv[3].encode())\n\
                      print(s.makefile().readline().strip())";
        let out =
            run_bounded(
                Command::new("ip")
                    .args(["netns", "exec", &self.name, "python3", "-c", script])
                    .args([addr.ip().to_string(), addr.port().to_string(), request.to_owned()]),
                Duration::from_secs(15),
            )
            .expect("request from the namespace");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.veth]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[test]
fn by_default_anyone_reads_and_only_loopback_publishes() {
    if !have("ip", "-V") {
        return;
    }
    let ns = Netns::create();
    let mut child = Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["serve", "--listen", &format!("{}:0", ns.here), "--synthetic", "/demo"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start manifold serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let addr: SocketAddr =
        common::wait_for_line(&mut child, "listening on ", "manifold serve").parse().expect("addr");
    let mut relay = Relay { child, addr };
    let read = ns.ask(addr, &format!("DESCRIBE rtsp://{addr}/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(read, "RTSP/1.0 200 OK", "anyone may read");
    let sdp = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
               a=rtpmap:96 H264/90000\r\n";
    let announce = format!(
        "ANNOUNCE rtsp://{addr}/cam RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let refused = ns.ask(addr, &announce);
    assert!(
        refused.starts_with("RTSP/1.0 403") || refused.starts_with("RTSP/1.0 401"),
        "{refused}"
    );
    let _ = relay.interrupt(Duration::from_secs(5));
    let text = log.join().unwrap_or_default();
    assert!(
        text.contains("add a [[user]] with actions = [\"publish\"]"),
        "the log says how: {text}"
    );
}

#[test]
fn ffmpeg_publishes_over_udp_and_is_read_back() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let relay = Relay::start(&[]);
    let url = relay.url("/cam");
    let _publisher = rtsp_publisher(&url, "udp");
    wait_published(&relay, "/cam");
    ffmpeg_reads(&url, "tcp");
    ffmpeg_reads(&url, "udp");
}

/// What a raw interleaved reader saw.
#[derive(Debug)]
struct Received {
    rtp_info_seq: Option<u16>,
    first_seq: Option<u16>,
    first_nal_type: Option<u8>,
    packets: usize,
}

/// A minimal RTSP client: DESCRIBE, SETUP track 0 over TCP, PLAY, then counts RTP frames for
/// `listen`.
fn raw_tcp_reader(relay_addr: SocketAddr, path: &str, listen: Duration) -> Received {
    let url = format!("rtsp://{relay_addr}{path}");
    let mut c = TcpStream::connect(relay_addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let (s, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(s, 200);
    let (_, head) = common::setup_play_tcp(&mut c, &url, 2);
    let rtp_info_seq = head
        .lines()
        .find_map(|l| l.strip_prefix("RTP-Info: "))
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("seq=")))
        .and_then(|v| v.parse().ok());
    let mut got = Received { rtp_info_seq, first_seq: None, first_nal_type: None, packets: 0 };
    let deadline = Instant::now() + listen;
    while Instant::now() < deadline {
        let mut header = [0u8; 4];
        if c.read_exact(&mut header).is_err() {
            break;
        }
        assert_eq!(header[0], b'$', "interleaved frame expected");
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut frame = vec![0u8; len];
        c.read_exact(&mut frame).expect("frame payload");
        if header[1] != 0 || len < 13 {
            continue;
        }
        if got.first_seq.is_none() {
            got.first_seq = Some(u16::from_be_bytes([frame[2], frame[3]]));
            let csrcs = usize::from(frame[0] & 0x0f) * 4;
            let mut at = 12 + csrcs;
            if frame[0] & 0x10 != 0 {
                let words = usize::from(u16::from_be_bytes([frame[at + 2], frame[at + 3]]));
                at += 4 + words * 4;
            }
            got.first_nal_type = frame.get(at).map(|b| b & 0x1f);
        }
        got.packets += 1;
    }
    got
}

#[test]
fn many_tcp_readers_across_shards_start_at_a_keyframe() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    // A reader that plays and never reads must not hold anyone up.
    let mut idle = connect(&relay);
    let url = relay.url("/demo");
    exchange(
        &mut idle,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"
        ),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let addr = relay.addr;
    let readers: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || raw_tcp_reader(addr, "/demo", Duration::from_secs(3))))
        .collect();
    for r in readers {
        let got = r.join().expect("reader thread");
        assert!(got.packets >= 50, "{got:?}");
        assert_eq!(got.first_seq, got.rtp_info_seq, "RTP-Info names the first packet: {got:?}");
        // The first packet starts a keyframe: SPS, or an IDR slice, or a STAP-A of SPS/PPS.
        assert!(matches!(got.first_nal_type, Some(7 | 5 | 24)), "{got:?}");
    }
}

#[test]
fn silent_sessions_expire() {
    let relay = Relay::start(&["--synthetic", "/demo", "--session-timeout-secs", "1"]);
    let mut c = connect(&relay);
    let url = relay.url("/demo");
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    assert!(head.contains(";timeout=1"), "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    // Timeout 1 s plus 1 s grace, then the session is gone, and with it the connection
    // (it held nothing else).
    std::thread::sleep(Duration::from_millis(3000));
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut byte = [0u8; 1];
    assert!(matches!(c.read(&mut byte), Ok(0) | Err(_)), "the connection was closed");
    let mut again = connect(&relay);
    let (s, _) = exchange(
        &mut again,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(s, 454);
}

#[test]
fn garbage_never_takes_the_relay_down() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    // A deterministic spray of hostile inputs: binary noise, truncated and oversized heads,
    // absurd lengths, interleaved frames from nowhere, then each connection is dropped.
    let mut seed: u32 = 0x1234_5678;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let url = relay.url("/demo");
    let inputs: Vec<Vec<u8>> = vec![
        (0..4096).map(|_| next() as u8).collect(),
        format!("SETUP {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n").into_bytes(),
        format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
        b"$\x00\xff\xff\x80\x60".to_vec(),
        format!("SETUP {url}/trackID=9 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=99999\r\n\r\n").into_bytes(),
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 1\r\nSession: ;;;\r\n\r\nANNOUNCE {url} RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n").into_bytes(),
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;interleaved=255\r\n\r\n").into_bytes(),
    ];
    for input in &inputs {
        for chunking in [1, 7, 4096] {
            if let Ok(mut c) = TcpStream::connect(relay.addr) {
                c.set_read_timeout(Some(Duration::from_millis(300))).ok();
                for piece in input.chunks(chunking) {
                    if c.write_all(piece).is_err() {
                        break;
                    }
                }
                let mut sink = [0u8; 4096];
                let _ = c.read(&mut sink);
            }
        }
    }
    // Still serving.
    let mut c = connect(&relay);
    let (s, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(s, 200);
}

/// A minimal UDP reader: SETUP track 0 with its own ports, PLAY, then the sequence numbers of
/// the RTP packets it receives for `listen`, and the RTP-Info seq.
fn raw_udp_reader(relay_addr: SocketAddr, path: &str, listen: Duration) -> (Option<u16>, Vec<u16>) {
    let url = format!("rtsp://{relay_addr}{path}");
    // An RTP port and the RTCP port right after it.
    let (rtp, _rtcp) = (0..100)
        .find_map(|_| {
            let rtp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            let port = rtp.local_addr().ok()?.port().checked_add(1)?;
            let rtcp = std::net::UdpSocket::bind(("127.0.0.1", port)).ok()?;
            Some((rtp, rtcp))
        })
        .expect("a free UDP port pair");
    rtp.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let rtp_port = rtp.local_addr().unwrap().port();
    let rtcp_port = rtp_port + 1;
    let mut c = TcpStream::connect(relay_addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\
             Transport: RTP/AVP;unicast;client_port={rtp_port}-{rtcp_port}\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    assert!(head.contains("server_port="), "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let (s, head) =
        exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"));
    assert_eq!(s, 200, "{head}");
    let rtp_info_seq = head
        .lines()
        .find_map(|l| l.strip_prefix("RTP-Info: "))
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("seq=")))
        .and_then(|v| v.parse().ok());
    let mut seqs = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + listen;
    while Instant::now() < deadline {
        if let Ok(n) = rtp.recv(&mut buf) {
            if n >= 12 {
                seqs.push(u16::from_be_bytes([buf[2], buf[3]]));
            }
        }
    }
    (rtp_info_seq, seqs)
}

#[test]
fn udp_readers_get_every_packet_once_in_order_from_the_keyframe() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    std::thread::sleep(Duration::from_millis(1500));
    let addr = relay.addr;
    let readers: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                // Staggered joins land at different points of the GOP and of a frame.
                std::thread::sleep(Duration::from_millis(37 * i));
                raw_udp_reader(addr, "/demo", Duration::from_secs(3))
            })
        })
        .collect();
    for r in readers {
        let (rtp_info_seq, seqs) = r.join().expect("reader thread");
        assert!(seqs.len() >= 50, "only {} packets", seqs.len());
        assert_eq!(Some(seqs[0]), rtp_info_seq, "RTP-Info names the first packet");
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1), "a gap, duplicate or reorder: {seqs:?}");
        }
    }
}

#[test]
fn a_reader_that_stops_reading_is_cut_off_without_hurting_others() {
    if !have("ffmpeg", "-version") {
        return;
    }
    // 20 Mbit/s, a 1 MiB reader queue, and a 2 s stall limit.
    let config = common::config_file(
        "e2e-stall",
        "synthetic = [\"/demo\"]\nsynthetic_bitrate = 20000000\n\
         reader_queue_bytes = 1048576\nreader_stall_secs = 2\n",
    );
    let relay = Relay::start(&["--config", config.to_str().expect("utf-8 path")]);
    let url = relay.url("/demo");
    // The stalled reader: PLAY over TCP, then never read.
    let mut stalled = connect(&relay);
    let (s, head) = exchange(
        &mut stalled,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let (s, _) = exchange(
        &mut stalled,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(s, 200);
    // Meanwhile a real player decodes the stream without errors.
    ffmpeg_reads(&url, "tcp");
    // Kernel buffers (several MB on loopback) fill first, then the reader's queue, then the
    // 2 s stall limit runs: give it time, then draining the socket must end in EOF or reset.
    std::thread::sleep(Duration::from_secs(8));
    stalled.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut sink = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(30);
    let closed = loop {
        match stalled.read(&mut sink) {
            Ok(0) | Err(_) => break true,
            Ok(_) if Instant::now() > deadline => break false,
            Ok(_) => {}
        }
    };
    assert!(closed, "the stalled reader was never disconnected");
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

#[test]
fn two_hundred_mixed_readers_all_receive() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    std::thread::sleep(Duration::from_millis(1200));
    let addr = relay.addr;
    let tcp: Vec<_> = (0..100)
        .map(|_| std::thread::spawn(move || raw_tcp_reader(addr, "/demo", Duration::from_secs(4))))
        .collect();
    let udp: Vec<_> = (0..100)
        .map(|_| std::thread::spawn(move || raw_udp_reader(addr, "/demo", Duration::from_secs(4))))
        .collect();
    for r in tcp {
        let got = r.join().expect("TCP reader");
        assert!(got.packets >= 50, "{got:?}");
        assert_eq!(got.first_seq, got.rtp_info_seq, "{got:?}");
    }
    for r in udp {
        let (rtp_info_seq, seqs) = r.join().expect("UDP reader");
        assert!(seqs.len() >= 50, "only {} packets", seqs.len());
        assert_eq!(Some(seqs[0]), rtp_info_seq);
    }
}

/// The sequence numbers and first NAL type of the RTP packets `rtp` receives for `listen`.
fn receive_udp(rtp: &std::net::UdpSocket, listen: Duration) -> (Vec<u16>, Option<u8>) {
    let mut seqs = Vec::new();
    let mut first_nal = None;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + listen;
    while Instant::now() < deadline {
        if let Ok(n) = rtp.recv(&mut buf) {
            if n > 12 {
                seqs.push(u16::from_be_bytes([buf[2], buf[3]]));
                if first_nal.is_none() {
                    // The synthetic stream's header extension: 4 + 4 × length bytes after 12.
                    let words = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
                    let at = if buf[0] & 0x10 != 0 { 16 + 4 * words } else { 12 };
                    first_nal = buf.get(at).map(|b| b & 0x1f);
                }
            }
        }
    }
    (seqs, first_nal)
}

#[test]
fn pause_stops_delivery_and_play_resumes_at_a_keyframe() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    std::thread::sleep(Duration::from_millis(1200));
    let url = relay.url("/demo");
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
    rtp.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let port = rtp.local_addr().expect("addr").port();
    let mut c = connect(&relay);
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port={port}\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let play = |c: &mut TcpStream, cseq: u32| {
        exchange(c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {session}\r\n\r\n"))
    };
    assert_eq!(play(&mut c, 2).0, 200);
    let (before, _) = receive_udp(&rtp, Duration::from_millis(1500));
    assert!(before.len() >= 20, "{before:?}");
    let (s, _) =
        exchange(&mut c, &format!("PAUSE {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"));
    assert_eq!(s, 200);
    receive_udp(&rtp, Duration::from_millis(300));
    let (during, _) = receive_udp(&rtp, Duration::from_millis(1000));
    assert!(during.is_empty(), "packets while paused: {during:?}");
    assert_eq!(play(&mut c, 4).0, 200);
    let (after, first_nal) = receive_udp(&rtp, Duration::from_millis(2500));
    assert!(!after.is_empty(), "nothing after PLAY");
    let last = *before.last().expect("packets before PAUSE");
    assert!(after[0].wrapping_sub(last) < 0x8000, "resumed behind: {last} then {}", after[0]);
    assert!(matches!(first_nal, Some(7 | 5 | 24)), "resumed at NAL type {first_nal:?}");
}

/// What comes next on an interleaved connection: a `$` frame or a response.
enum Incoming {
    /// An interleaved frame: its channel.
    Frame(u8),
    /// A response's status code.
    Response(u16),
}

/// Reads the next interleaved frame or response on `c` (`None` on timeout or close).
fn next_incoming(c: &mut TcpStream) -> Option<Incoming> {
    let mut first = [0u8; 1];
    c.read_exact(&mut first).ok()?;
    if first[0] == b'$' {
        let mut rest = [0u8; 3];
        c.read_exact(&mut rest).ok()?;
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let mut frame = vec![0u8; len];
        c.read_exact(&mut frame).ok()?;
        return Some(Incoming::Frame(rest[0]));
    }
    let mut head = first.to_vec();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    c.read_exact(&mut body).ok()?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(Incoming::Response(status))
}

/// Counts the frames per channel (0..4) for `listen`, stopping at a response (returned).
fn count_frames(c: &mut TcpStream, listen: Duration) -> ([usize; 4], Option<u16>) {
    let mut counts = [0usize; 4];
    let deadline = Instant::now() + listen;
    while Instant::now() < deadline {
        match next_incoming(c) {
            Some(Incoming::Frame(ch)) => {
                if let Some(n) = counts.get_mut(usize::from(ch)) {
                    *n += 1;
                }
            }
            Some(Incoming::Response(status)) => return (counts, Some(status)),
            None => break,
        }
    }
    (counts, None)
}

#[test]
fn teardown_of_one_track_stops_only_that_track() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let relay = Relay::start(&[]);
    let url = relay.url("/cam");
    let _publisher = rtsp_publisher(&url, "tcp");
    wait_published(&relay, "/cam");
    let mut c = connect(&relay);
    let (s, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(s, 200);
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=1 RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let (s, head) =
        exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n"));
    assert_eq!(s, 200, "{head}");
    let (before, _) = count_frames(&mut c, Duration::from_millis(1500));
    assert!(before[0] > 0 && before[2] > 0, "both tracks before TEARDOWN: {before:?}");

    // TEARDOWN of the audio track only: its answer comes between media frames.
    let teardown =
        format!("TEARDOWN {url}/trackID=1 RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\n\r\n");
    c.write_all(teardown.as_bytes()).expect("send TEARDOWN");
    let (_, status) = count_frames(&mut c, Duration::from_secs(5));
    assert_eq!(status, Some(200), "TEARDOWN of track 1 answered");
    count_frames(&mut c, Duration::from_millis(200));
    let (after, status) = count_frames(&mut c, Duration::from_millis(1500));
    assert_eq!(status, None);
    assert!(after[0] > 0, "video stopped after the audio TEARDOWN: {after:?}");
    assert_eq!(after[2] + after[3], 0, "audio after its TEARDOWN: {after:?}");

    // The aggregate TEARDOWN ends everything.
    let teardown = format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 6\r\nSession: {session}\r\n\r\n");
    c.write_all(teardown.as_bytes()).expect("send TEARDOWN");
    let (_, status) = count_frames(&mut c, Duration::from_secs(5));
    assert_eq!(status, Some(200), "aggregate TEARDOWN answered");
    count_frames(&mut c, Duration::from_millis(200));
    c.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let (after, _) = count_frames(&mut c, Duration::from_millis(1000));
    assert_eq!(after[0] + after[2], 0, "media after the aggregate TEARDOWN: {after:?}");
}
