//! End-to-end tests of the relay's other ingests with real peers: pulling from GStreamer's
//! RTSP server (`crates/load/tests/gst_rtsp_server.py`, Python gi), over TCP and UDP, always-on
//! and on demand, with the upstream killed and restarted under a reader, and the receiver
//! reports the pull sends it (captured with tshark); and raw RTP sent by
//! `ffmpeg -f rtp`, with the sender restarted under a reader, and through a forwarder that
//! drops one packet in ten (the relay counts the upstream's loss exactly). Readers are ffmpeg
//! (decoding) and a minimal RTSP client of our own that checks the sequence stays continuous. Edges
//! pull from an origin, which redirects readers to them: ffmpeg, GStreamer and the generator
//! follow (the generator gives up on a redirect loop). Traffic stays on 127.0.0.1. A missing peer fails under `CI=true`, else prints "skipped: ...".

// Test helpers outside #[test] functions: a panic here is a failed test, not a crashed server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::{
    exchange, ffmpeg_frames, free_port, have, have_gst_server, run_bounded, streams_json, text,
    wait_published, PortPrinter, Relay,
};

const GST_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../load/tests/gst_rtsp_server.py");

/// GStreamer's RTSP server (a live H.264 stream at /test), killed when dropped.
struct GstServer {
    /// Kept for its `Drop`, which stops the server.
    _server: PortPrinter,
    port: u16,
}

impl GstServer {
    /// Starts on `port` (0: any free port) and waits until it listens.
    fn start(port: u16) -> GstServer {
        GstServer::start_with(port, None)
    }

    /// Starts on `port`, asking for Digest `credentials` (`user:password`) when given.
    fn start_with(port: u16, credentials: Option<&str>) -> GstServer {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(GST_SERVER).arg(port.to_string()).stderr(Stdio::null());
        cmd.args(credentials);
        let server = PortPrinter::start(cmd, &format!("the GStreamer RTSP server (port {port})"));
        GstServer { port: server.port, _server: server }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/test", self.port)
    }
}

/// The test clip (H.264, 4 s, keyframe every second), made once per test run.
fn clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("manifold-pull-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("clip.mp4");
        let out = run_bounded(
            Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
                .args(["-t", "4", "-c:v", "libx264", "-g", "25", "-bf", "0"])
                .arg(&path),
            Duration::from_secs(60),
        )
        .expect("ffmpeg makes the clip in time");
        assert!(out.status.success(), "clip: {}", String::from_utf8_lossy(&out.stderr));
        path
    })
}

/// DESCRIBE of `path`: the status and the response.
fn describe(relay: &Relay, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect(relay.addr).expect("connect to relay");
    c.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    exchange(&mut c, &format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", relay.url(path)))
}

/// What our own TCP reader saw: per RTP packet of track 0, when, seq, timestamp, SSRC.
#[derive(Debug, Default)]
struct Seen {
    packets: Vec<(Instant, u16, u32, u32)>,
    rtcp_byes: usize,
}

impl Seen {
    /// Asserts one SSRC, every sequence number the previous + 1, timestamps never going back.
    fn assert_continuous(&self) {
        assert!(!self.packets.is_empty(), "no packets");
        let ssrc = self.packets[0].3;
        for w in self.packets.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            assert_eq!(b.3, ssrc, "the SSRC changed");
            assert_eq!(b.1, a.1.wrapping_add(1), "sequence gap: {} then {}", a.1, b.1);
            let step = b.2.wrapping_sub(a.2) as i32;
            assert!(step >= 0, "timestamp went back: {} then {}", a.2, b.2);
        }
        assert_eq!(self.rtcp_byes, 0, "the reader got a BYE");
    }

    fn after(&self, at: Instant) -> usize {
        self.packets.iter().filter(|p| p.0 > at).count()
    }
}

/// A minimal RTSP client: DESCRIBE, SETUP track 0 interleaved, PLAY, and records track 0's
/// RTP for `listen` (sending GET_PARAMETER keep-alives), in a thread.
fn tcp_reader(addr: SocketAddr, path: &str, listen: Duration) -> std::thread::JoinHandle<Seen> {
    let url = format!("rtsp://{addr}{path}");
    std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let (s, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
        assert_eq!(s, 200);
        let (session, _) = common::setup_play_tcp(&mut c, &url, 2);
        let mut seen = Seen::default();
        let deadline = Instant::now() + listen;
        let mut keepalive = Instant::now();
        let mut cseq = 4;
        while Instant::now() < deadline {
            if keepalive.elapsed() > Duration::from_secs(5) {
                let req = format!(
                    "GET_PARAMETER {url} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {session}\r\n\r\n"
                );
                c.write_all(req.as_bytes()).expect("keep-alive");
                cseq += 1;
                keepalive = Instant::now();
            }
            let mut first = [0u8; 1];
            if c.read_exact(&mut first).is_err() {
                break;
            }
            if first[0] != b'$' {
                // A response (to a keep-alive): skip its head.
                let mut head = vec![first[0]];
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && c.read_exact(&mut byte).is_ok() {
                    head.push(byte[0]);
                }
                continue;
            }
            let mut header = [0u8; 3];
            c.read_exact(&mut header).expect("frame header");
            let len = usize::from(u16::from_be_bytes([header[1], header[2]]));
            let mut frame = vec![0u8; len];
            c.read_exact(&mut frame).expect("frame payload");
            match header[0] {
                0 if len >= 12 => seen.packets.push((
                    Instant::now(),
                    u16::from_be_bytes([frame[2], frame[3]]),
                    u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
                    u32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]),
                )),
                1 => {
                    // RTCP compound: count BYE (PT 203) packets.
                    let mut at = 0;
                    while at + 4 <= frame.len() {
                        if frame[at + 1] == 203 {
                            seen.rtcp_byes += 1;
                        }
                        let words = usize::from(u16::from_be_bytes([frame[at + 2], frame[at + 3]]));
                        at += 4 + words * 4;
                    }
                }
                _ => {}
            }
        }
        seen
    })
}

#[test]
fn pulls_from_gstreamer_and_readers_survive_an_upstream_restart() {
    upstream_restart("", "tcp");
}

#[test]
fn pulls_gstreamer_behind_digest() {
    if !have("ffmpeg", "-version") || !have_gst_server() {
        return;
    }
    let upstream = GstServer::start_with(0, Some("puller:s3cret"));
    let authed = upstream.url().replacen("rtsp://", "rtsp://puller:s3cret@", 1);
    let relay = Relay::start(&["--pull", &format!("/cam={authed}")]);
    wait_published(&relay, "/cam");
    let (frames, said) = ffmpeg_frames(&relay.url("/cam"), "tcp", 2);
    assert!(frames >= 25, "decoded {frames} frames: {said}");
    // A wrong password never publishes the path.
    let wrong = upstream.url().replacen("rtsp://", "rtsp://puller:nope@", 1);
    let refused = Relay::start(&["--pull", &format!("/cam={wrong}")]);
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(describe(&refused, "/cam").0, 200, "published with a wrong password");
}

#[test]
fn an_edge_pulls_what_its_readers_ask_for_from_the_origin_and_lets_go() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let origin_metrics = format!("127.0.0.1:{}", free_port());
    let origin = Relay::start(&["--synthetic", "/demo", "--metrics", &origin_metrics]);
    let metrics = format!("127.0.0.1:{}", free_port());
    let edge = Relay::start(&[
        "--origin",
        &format!("rtsp://{}", origin.addr),
        "--pull-grace-secs",
        "6",
        "--metrics",
        &metrics,
    ]);
    std::thread::sleep(Duration::from_millis(1200));
    // A reader of the edge gets the origin's stream.
    let (frames, said) = ffmpeg_frames(&edge.url("/demo"), "tcp", 2);
    assert!(frames >= 25, "decoded {frames} frames through the edge: {said}");
    // The edge's pull reports to the origin as a player does: the origin shows its reader's
    // RTCP feedback (the first report comes 1 to 3 s into PLAY; the pull lingers 6 s more).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = streams(&origin_metrics);
        let readers = v["streams"][0]["readers"].as_array().cloned().unwrap_or_default();
        if readers.iter().any(|r| r["rtcp"][0]["reports"].as_u64().unwrap_or(0) > 0) {
            assert_eq!(readers[0]["rtcp"][0]["fraction_lost"], 0.0, "{readers:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no receiver report from the edge: {readers:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A path the origin does not have: 404 at once, not after the pull's full wait.
    let asked = Instant::now();
    assert_eq!(describe(&edge, "/nothing").0, 404);
    assert!(asked.elapsed() < Duration::from_secs(5), "404 took {:?}", asked.elapsed());
    // The last reader gone, the edge lets go of the path after the grace.
    let deadline = Instant::now() + Duration::from_secs(15);
    while streams_json(&metrics).contains("\"/demo\"") {
        assert!(Instant::now() < deadline, "the edge kept pulling /demo without readers");
        std::thread::sleep(Duration::from_millis(250));
    }
    // And pulls it again for the next reader.
    let (frames, said) = ffmpeg_frames(&edge.url("/demo"), "udp", 2);
    assert!(frames >= 25, "decoded {frames} frames through the edge again: {said}");
}

#[test]
fn an_edge_pulls_with_its_origin_credentials_and_keeps_readers_through_an_origin_restart() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-e2e-edge-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("origin.toml");
    std::fs::write(
        &config,
        "[[user]]\nname = \"edge\"\npassword = \"e0ge\"\nactions = [\"read\"]\n",
    )
    .expect("write config");
    let port = free_port();
    let flags = ["--config".to_owned(), config.to_str().expect("utf-8").to_owned()];
    let origin = relay_on(port, &flags);
    let edge = Relay::start(&["--origin", &format!("rtsp://edge:e0ge@127.0.0.1:{port}")]);
    let stranger = Relay::start(&["--origin", &format!("rtsp://edge:wrong@127.0.0.1:{port}")]);
    assert_ne!(describe(&stranger, "/demo").0, 200, "pulled with a wrong password");
    assert_ne!(describe(&origin, "/demo").0, 200, "the origin let an anonymous reader in");

    // Our reader on the edge, across the origin's restart: one continuous stream.
    let ours = tcp_reader(edge.addr, "/demo", Duration::from_secs(12));
    std::thread::sleep(Duration::from_secs(4));
    drop(origin);
    std::thread::sleep(Duration::from_millis(1500));
    let _origin = relay_on(port, &flags);
    let back = Instant::now();
    let seen = ours.join().expect("our reader");
    seen.assert_continuous();
    let after = seen.after(back + Duration::from_secs(2));
    eprintln!("edge reader: {} packets, {after} after the origin came back", seen.packets.len());
    assert!(after > 40, "only {after} packets after the origin came back");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_origin_sends_readers_to_its_edges_and_players_follow() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    // The origin's port first: the edges pull from it, it sends readers to them.
    let origin_port = free_port();
    let origin_url = format!("rtsp://127.0.0.1:{origin_port}");
    let (ma, mb) = (free_port(), free_port());
    let edge_a = Relay::start(&["--origin", &origin_url, "--metrics", &format!("127.0.0.1:{ma}")]);
    let edge_b = Relay::start(&["--origin", &origin_url, "--metrics", &format!("127.0.0.1:{mb}")]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["serve", "--listen", &format!("127.0.0.1:{origin_port}"), "--cores", "2"])
        .args(["--synthetic", "/demo"])
        .args(["--redirect-to", &format!("rtsp://{}#metrics={ma}", edge_a.addr)])
        .args(["--redirect-to", &format!("rtsp://{}#metrics={mb}", edge_b.addr)])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the origin");
    let addr =
        common::wait_for_line(&mut child, "listening on ", "the origin").parse().expect("addr");
    let origin = Relay { child, addr };
    // Once the origin has read the edges' load, 40 readers spread evenly.
    std::thread::sleep(Duration::from_millis(2500));
    let mut to_a = 0;
    for _ in 0..40 {
        let (status, head) = describe(&origin, "/demo");
        assert_eq!(status, 302, "{head}");
        let location =
            head.lines().find_map(|l| l.strip_prefix("Location: ")).expect("Location").to_owned();
        if location == edge_a.url("/demo") {
            to_a += 1;
        } else {
            assert_eq!(location, edge_b.url("/demo"));
        }
    }
    assert!((18..=22).contains(&to_a), "{to_a} of 40 to edge A");
    // Players follow the redirect and play through an edge (which pulls from the origin).
    let (frames, said) = ffmpeg_frames(&origin.url("/demo"), "tcp", 2);
    assert!(frames >= 25, "ffmpeg decoded {frames} frames through the redirect: {said}");
    common::gstreamer_plays(&origin.url("/demo"), &["protocols=tcp"], 1, "rtph264depay", 25);
    // An edge that stops answering gets nobody.
    drop(edge_b);
    std::thread::sleep(Duration::from_secs(5));
    for _ in 0..5 {
        let (_, head) = describe(&origin, "/demo");
        assert!(head.contains(&edge_a.url("/demo")), "sent to a dead edge: {head}");
    }
}

/// A relay on 127.0.0.1:`port` (one shard) serving the synthetic stream at /demo, with
/// `extra` flags.
fn relay_on(port: u16, extra: &[String]) -> Relay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--cores", "1"])
        .args(["--synthetic", "/demo"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay");
    let addr = common::wait_for_line(&mut child, "listening on ", "the relay").parse().unwrap();
    Relay { child, addr }
}

/// [`relay_on`] with `extra` its `--redirect-to` edges, once it redirects readers (it has
/// read the edges' load).
fn origin_on(port: u16, extra: &[String]) -> Relay {
    let origin = relay_on(port, extra);
    let deadline = Instant::now() + Duration::from_secs(15);
    while describe(&origin, "/demo").0 != 302 {
        assert!(Instant::now() < deadline, "the origin never redirected");
        std::thread::sleep(Duration::from_millis(200));
    }
    origin
}

/// `manifold load` of `url` (20 sessions over 1 s, 4 s, half UDP), its JSON report in `json`.
fn load_through(url: &str, json: &Path) -> std::process::Output {
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_manifold"))
            .args(["load", url, "--clients", "20", "--ramp", "1s", "--duration", "4s"])
            .args(["--transport", "mix:50", "--quiet", "--json"])
            .arg(json)
            .env("RUST_LOG", "warn"),
        Duration::from_secs(60),
    )
    .expect("manifold load finishes")
}

#[test]
fn the_generator_follows_the_origins_redirect_and_gives_up_on_a_loop() {
    // The edges pull from the origin, whose port they must know first.
    let origin_port = free_port();
    let upstream = format!("rtsp://127.0.0.1:{origin_port}");
    let (ma, mb) = (free_port(), free_port());
    let edge_a = Relay::start(&["--origin", &upstream, "--metrics", &format!("127.0.0.1:{ma}")]);
    let edge_b = Relay::start(&["--origin", &upstream, "--metrics", &format!("127.0.0.1:{mb}")]);
    let origin = origin_on(
        origin_port,
        &[
            "--redirect-to".into(),
            format!("rtsp://{}#metrics={ma}", edge_a.addr),
            "--redirect-to".into(),
            format!("rtsp://{}#metrics={mb}", edge_b.addr),
        ],
    );
    let json = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-redirected-load-{}.json", std::process::id()));
    let out = load_through(&origin.url("/demo"), &json);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["sessions"]["ok"], 20, "{}", text(&out));
    assert!(report["media"]["packets"].as_u64().unwrap() > 0);
    // Every session asked twice (302 at the origin, 200 at an edge); the connect is timed at
    // the run's server only.
    assert_eq!(report["metrics"]["rtt.describe"]["count"], 40);
    assert_eq!(report["metrics"]["connect"]["count"], 20);

    // An origin that sends readers to itself: the generator gives up after 3 redirects.
    let (port, metrics) = (free_port(), free_port());
    let looping = origin_on(
        port,
        &[
            "--metrics".into(),
            format!("127.0.0.1:{metrics}"),
            "--redirect-to".into(),
            format!("rtsp://127.0.0.1:{port}#metrics={metrics}"),
        ],
    );
    let out = load_through(&looping.url("/demo"), &json);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("redirected more than 3 times"),
        "{}",
        text(&out)
    );
}

#[test]
fn pulls_over_udp_and_udp_readers_survive_an_upstream_restart() {
    upstream_restart("#udp", "udp");
}

/// The relay pulls GStreamer's server (`options`: the `--pull` URL fragment); ffmpeg decodes
/// it over UDP and TCP; then the upstream is killed and restarted under two readers: ours
/// (TCP, checks sequence continuity) and ffmpeg over `reader` (decodes before and after).
fn upstream_restart(options: &str, reader: &'static str) {
    if !have("ffmpeg", "-version") || !have_gst_server() {
        return;
    }
    let mut upstream = GstServer::start(0);
    let port = upstream.port;
    let pull = format!("/cam={}{options}", upstream.url());
    let relay = Relay::start(&["--pull", &pull]);
    wait_published(&relay, "/cam");
    let (sdp_status, sdp) = describe(&relay, "/cam");
    assert_eq!(sdp_status, 200);
    assert!(sdp.contains("H264/90000") && sdp.contains("a=control:trackID=0"), "{sdp}");

    // ffmpeg decodes the pulled stream, over UDP and over TCP.
    for transport in ["udp", "tcp"] {
        let (frames, stderr) = ffmpeg_frames(&relay.url("/cam"), transport, 3);
        assert!(frames >= 50, "ffmpeg {transport}: only {frames} frames; {stderr}");
    }

    // Readers across an upstream restart: ours (sequence continuity) and ffmpeg (decoding).
    let ours = tcp_reader(relay.addr, "/cam", Duration::from_secs(14));
    let url = relay.url("/cam");
    let ffmpeg = std::thread::spawn(move || ffmpeg_frames(&url, reader, 12));
    std::thread::sleep(Duration::from_secs(4));
    drop(upstream);
    std::thread::sleep(Duration::from_millis(1500));
    upstream = GstServer::start(port);
    let back = Instant::now();
    let seen = ours.join().expect("our reader");
    let (frames, stderr) = ffmpeg.join().expect("ffmpeg reader");
    drop(upstream);
    seen.assert_continuous();
    let after = seen.after(back + Duration::from_secs(2));
    assert!(after > 100, "only {after} packets after the upstream came back");
    // 12 s of media with a gap of a few seconds: most frames decoded, after the gap too.
    assert!(frames >= 150, "ffmpeg decoded only {frames} frames across the restart: {stderr}");
}

#[test]
fn pulls_over_udp_on_demand() {
    if !have("ffmpeg", "-version") || !have_gst_server() {
        return;
    }
    let upstream = GstServer::start(0);
    let pull = format!("/lazy={}#udp,on-demand", upstream.url());
    let relay = Relay::start(&["--pull", &pull, "--pull-grace-secs", "2"]);
    // Nothing pulled yet; the first DESCRIBE starts the pull and waits for the SDP.
    let started = Instant::now();
    let (status, sdp) = describe(&relay, "/lazy");
    assert_eq!(status, 200, "{sdp}");
    assert!(sdp.contains("H264/90000"), "{sdp}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let (frames, stderr) = ffmpeg_frames(&relay.url("/lazy"), "tcp", 3);
    assert!(frames >= 50, "only {frames} frames; {stderr}");
    // The last reader left: after the grace the pull stops, and a new DESCRIBE restarts it.
    std::thread::sleep(Duration::from_secs(4));
    let (frames, stderr) = ffmpeg_frames(&relay.url("/lazy"), "udp", 3);
    assert!(frames >= 50, "only {frames} frames after an on-demand restart; {stderr}");
    // An unknown path is still 404.
    assert_eq!(describe(&relay, "/nothing").0, 404);
}

#[test]
fn a_pull_sends_receiver_reports_to_its_upstream_over_udp_and_tcp() {
    if !have_gst_server() || !have("tshark", "--version") {
        return;
    }
    // One server per pull: two clients setting up one shared media at once can trip an
    // assertion in GStreamer's server (gst_rtsp_media_get_rates).
    let (over_udp, over_tcp) = (GstServer::start(0), GstServer::start(0));
    let ports = [over_udp.port, over_tcp.port];
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-pull-rr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("pull.pcapng");
    // Everything on loopback while the relay pulls twice: over UDP and interleaved.
    let mut tshark = Command::new("tshark")
        .args([
            "-i",
            "lo",
            "-q",
            "-f",
            &format!("udp or tcp port {} or tcp port {}", ports[0], ports[1]),
        ])
        .arg("-w")
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    let mut err = std::io::BufReader::new(tshark.stderr.take().expect("stderr"));
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut err, &mut line).is_ok_and(|n| n > 0)
        && !line.contains("Capturing on")
    {
        line.clear();
    }
    assert!(line.contains("Capturing on"), "tshark did not start capturing: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let relay = Relay::start(&[
        "--pull",
        &format!("/u={}#udp", over_udp.url()),
        "--pull",
        &format!("/t={}", over_tcp.url()),
    ]);
    wait_published(&relay, "/u");
    wait_published(&relay, "/t");
    // The first report comes 1 to 3 s into PLAY, the next 2 to 6 s later (RFC 3550).
    std::thread::sleep(Duration::from_secs(10));
    let _ = Command::new("kill").args(["-INT", &tshark.id().to_string()]).status();
    assert!(common::wait_timeout(&mut tshark, Duration::from_secs(10)).is_some(), "tshark stopped");
    drop(relay);
    drop((over_udp, over_tcp));

    // RTCP on any UDP port (the heuristic), and on the RTSP connection's interleaved channels.
    let fields = |display: &str| -> Vec<String> {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["--enable-heuristic", "rtcp_udp", "-d", &format!("tcp.port=={},rtsp", ports[1])])
            .args(["-Y", display, "-T", "fields", "-e", "rtcp.ssrc.identifier"])
            .args(["-e", "rtcp.ssrc.high_seq", "-e", "rtcp.ssrc.cum_nr"])
            .output()
            .expect("tshark -r");
        assert!(out.status.success(), "tshark -r: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    };
    let ours = "rtcp.pt == 201 && rtcp.sdes.text contains \"manifold@\"";
    for transport in ["udp", "tcp"] {
        let reports = fields(&format!("{transport} && {ours}"));
        assert!(reports.len() >= 2, "{transport}: {} receiver reports: {reports:?}", reports.len());
        // After the first, each has a report block about GStreamer's source: nothing lost.
        let last: Vec<&str> = reports.last().unwrap().split('\t').collect();
        assert!(!last[0].is_empty() && last[1].parse::<u64>().is_ok(), "{transport}: {last:?}");
        assert_eq!(last[2], "0", "{transport}: cumulative lost on loopback: {last:?}");
    }
    let malformed = fields(&format!("({ours}) && (_ws.malformed || _ws.expert.severity == error)"));
    assert!(malformed.is_empty(), "malformed reports: {malformed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free even UDP port whose next port is free too (for RTP and RTCP).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = a.local_addr().expect("addr").port();
        if port % 2 != 0 || port == u16::MAX - 1 {
            continue;
        }
        if std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port pair");
}

/// `ffmpeg -f rtp` looping the clip (video only) to `port`; writes its SDP to `sdp`.
fn rtp_sender(port: u16, sdp: Option<&Path>) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-re", "-stream_loop", "-1", "-i"]).arg(clip());
    cmd.args(["-an", "-c", "copy", "-f", "rtp"]);
    if let Some(sdp) = sdp {
        cmd.arg("-sdp_file").arg(sdp);
    }
    cmd.arg(format!("rtp://127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg RTP sender")
}

#[test]
fn raw_rtp_from_ffmpeg_is_relayed_and_a_restarted_sender_continues_the_stream() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let port = free_port_pair();
    let sdp = clip().with_file_name(format!("rtp-{port}.sdp"));
    let mut first = rtp_sender(port, Some(&sdp));
    wait_for_sdp(&sdp);
    let rtp = format!("/raw=127.0.0.1:{port}");
    let relay = Relay::start(&["--rtp", &rtp, "--rtp-sdp", sdp.to_str().expect("utf-8 path")]);
    wait_published(&relay, "/raw");
    let (frames, stderr) = ffmpeg_frames(&relay.url("/raw"), "udp", 3);
    assert!(frames >= 50, "only {frames} frames; {stderr}");

    // The sender restarts (new SSRC, new sequence numbers) under a reader.
    let ours = tcp_reader(relay.addr, "/raw", Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(3));
    let _ = first.kill();
    let _ = first.wait();
    std::thread::sleep(Duration::from_millis(500));
    let mut second = rtp_sender(port, None);
    let back = Instant::now();
    let seen = ours.join().expect("our reader");
    let (frames, stderr) = ffmpeg_frames(&relay.url("/raw"), "tcp", 3);
    let _ = second.kill();
    let _ = second.wait();
    seen.assert_continuous();
    let after = seen.after(back + Duration::from_secs(1));
    assert!(after > 50, "only {after} packets after the sender restarted");
    assert!(frames >= 50, "only {frames} frames after the sender restarted; {stderr}");
}

/// A relay's `/api/v1/streams` from its metrics endpoint at `metrics`, parsed.
fn streams(metrics: &str) -> serde_json::Value {
    let body = streams_json(metrics);
    let json = body.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits (bounded) until `ffmpeg -f rtp` has written its SDP file, which it does as it starts
/// sending; the relay reads it at start-up.
fn wait_for_sdp(sdp: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(sdp).is_ok_and(|s| s.contains("m=video")) {
        assert!(Instant::now() < deadline, "ffmpeg wrote no SDP");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
}

/// A UDP forwarder between ffmpeg and the relay that drops one packet in every 10 once told
/// to; told to stop, it forwards up to the end of a run of 10 (every packet it dropped has a
/// later one that arrived) and returns how many it dropped.
fn lossy_forwarder(
    listen: u16,
    to: u16,
    dropping: std::sync::Arc<std::sync::atomic::AtomicU8>,
) -> std::thread::JoinHandle<u64> {
    use std::sync::atomic::Ordering;
    let socket = std::net::UdpSocket::bind(("127.0.0.1", listen)).expect("bind the forwarder");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    std::thread::spawn(move || {
        let (mut buf, mut n, mut dropped) = ([0u8; 2048], 0u64, 0u64);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Ok(len) = socket.recv(&mut buf) else { continue };
            // 0: forward all; 1: drop one in 10; 2: stop at the end of this run of 10.
            let mode = dropping.load(Ordering::Relaxed);
            if mode == 2 && n % 10 == 0 {
                break;
            }
            if mode >= 1 && n % 10 == 5 {
                dropped += 1;
            } else {
                let _ = socket.send_to(&buf[..len], ("127.0.0.1", to));
            }
            n += 1;
        }
        dropped
    })
}

#[test]
fn the_relay_counts_what_a_raw_rtp_upstream_lost_on_the_way_in() {
    use std::sync::atomic::{AtomicU8, Ordering};
    if !have("ffmpeg", "-version") {
        return;
    }
    // ffmpeg sends to the forwarder, which passes all but one packet in 10 to the relay.
    let (relay_port, forwarder_port) = (free_port_pair(), free_port_pair());
    let mode = std::sync::Arc::new(AtomicU8::new(0));
    let forwarder = lossy_forwarder(forwarder_port, relay_port, mode.clone());
    let sdp = clip().with_file_name(format!("rtp-lossy-{relay_port}.sdp"));
    let mut ffmpeg = rtp_sender(forwarder_port, Some(&sdp));
    wait_for_sdp(&sdp);
    let metrics = format!("127.0.0.1:{}", free_port());
    let rtp = format!("/lossy=127.0.0.1:{relay_port}");
    let sdp_arg = sdp.to_str().expect("utf-8 path");
    let relay = Relay::start(&["--rtp", &rtp, "--rtp-sdp", sdp_arg, "--metrics", &metrics]);
    wait_published(&relay, "/lossy");
    mode.store(1, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(4));
    mode.store(2, Ordering::Relaxed);
    let dropped = forwarder.join().expect("the forwarder");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert!(dropped >= 5, "only {dropped} packets dropped in 4 s");

    // Metrics are read from the shards once a second.
    std::thread::sleep(Duration::from_millis(2500));
    let v = streams(&metrics);
    let upstream = &v["streams"][0]["upstream"];
    assert_eq!(upstream["lost"], dropped, "{upstream}");
    assert!(upstream["jitter_ms"].as_f64().is_some(), "{upstream}");
    assert_eq!(upstream["wrong_payload_type"], 0, "ffmpeg sends its SDP's payload type");
    let _ = std::fs::remove_file(&sdp);
}

/// An ffmpeg publisher looping the clip to `url` over TCP.
fn rtsp_publisher(url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(clip())
        .args(["-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg publisher")
}

#[test]
fn a_republish_within_the_grace_continues_the_readers_stream() {
    // One shard: every republish lands on the shard that owns the stream's hub.
    republish_continues("1", 2);
}

#[test]
fn a_republish_on_another_shard_continues_the_readers_stream() {
    // Two shards, several republishes: each new publisher's connection lands on either
    // shard (SO_REUSEPORT), the owner of the stream's hub or the other one, which forwards
    // its packets to the owner (the relay logs which; with info logs: "republished on
    // another shard").
    republish_continues("2", 5);
}

/// A reader plays `/pub` while its publisher is replaced `republishes` times (1 s apart,
/// within the grace), on a relay of `cores` shards: one continuous stream, no BYE.
fn republish_continues(cores: &str, republishes: u32) {
    if !have("ffmpeg", "-version") {
        return;
    }
    let relay = Relay::start(&["--cores", cores, "--publish-grace-secs", "10"]);
    let url = relay.url("/pub");
    let mut publisher = rtsp_publisher(&url);
    wait_published(&relay, "/pub");
    let listen = Duration::from_secs(3 + 4 * u64::from(republishes) + 2);
    let ours = tcp_reader(relay.addr, "/pub", listen);
    std::thread::sleep(Duration::from_secs(3));
    let mut backs = Vec::new();
    for _ in 0..republishes {
        let _ = publisher.kill();
        let _ = publisher.wait();
        std::thread::sleep(Duration::from_secs(1));
        publisher = rtsp_publisher(&url);
        backs.push(Instant::now());
        std::thread::sleep(Duration::from_secs(3));
    }
    let seen = ours.join().expect("our reader");
    let (frames, stderr) = ffmpeg_frames(&url, "tcp", 3);
    let _ = publisher.kill();
    let _ = publisher.wait();
    seen.assert_continuous();
    for (i, back) in backs.iter().enumerate() {
        let from = *back + Duration::from_secs(1);
        let to = *back + Duration::from_secs(3);
        let got = seen.packets.iter().filter(|p| p.0 > from && p.0 < to).count();
        assert!(got > 20, "only {got} packets after republish {i}");
    }
    assert!(frames >= 50, "only {frames} frames after the republishes; {stderr}");
}
