//! End-to-end tests of the relay's observability and admission limits: `/metrics` and
//! `/api/v1/streams` while readers play the synthetic stream (an ffmpeg UDP reader whose RTCP
//! receiver reports must show up as its loss and jitter, and a raw TCP reader that sends its
//! own interleaved report), the connections-per-IP and session limits, `publish_replace`, and
//! a tshark capture of the relay's RTSP/RTP/RTCP that must hold no malformed packet. Traffic
//! stays on 127.0.0.1. Missing ffmpeg/tshark skips those tests, except under `CI=true`.

// Test helpers outside #[test] functions: a panic here is a failed test, not a crashed server.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{exchange, have, wait_for_line, wait_timeout};

/// A running relay, stopped with SIGINT (or killed) when dropped.
struct Relay {
    child: Child,
    addr: SocketAddr,
    metrics: SocketAddr,
}

impl Relay {
    /// Starts `manifold serve` on 127.0.0.1 with metrics on a free port, plus `extra` flags.
    fn start(extra: &[&str]) -> Relay {
        Relay::start_in(None, extra)
    }

    /// The same, inside network namespace `netns` when given (`ip netns exec` execs the
    /// relay, so the child's pid is the relay's).
    fn start_in(netns: Option<&str>, extra: &[&str]) -> Relay {
        Relay::spawn(netns, extra, None)
    }

    /// The general form: with `log`, the relay logs at info level into that file.
    fn spawn(netns: Option<&str>, extra: &[&str], log: Option<&std::path::Path>) -> Relay {
        let metrics = free_port();
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_manifold")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_manifold")),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--cores", "2", "--metrics"])
            .arg(metrics.to_string())
            .args(extra)
            .env(
                "RUST_LOG",
                match log {
                    Some(_) => "info".into(),
                    None => std::env::var("MANIFOLD_TEST_LOG").unwrap_or_else(|_| "warn".into()),
                },
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
                None => Stdio::inherit(),
            })
            .spawn()
            .expect("start manifold serve");
        let addr = wait_for_line(&mut child, "listening on ", "manifold serve");
        Relay { child, addr: addr.parse().expect("listening address"), metrics }
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://{}{path}", self.addr)
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(self.addr).expect("connect to relay");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        c
    }

    /// GET `path` from the metrics endpoint: (status, headers, body).
    fn get(&self, path: &str) -> (u16, String, String) {
        http_get(self.metrics, path)
    }

    /// `/api/v1/streams`, parsed.
    fn streams(&self) -> Value {
        let (status, _, body) = self.get("/api/v1/streams");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Polls `/api/v1/streams` until `ok` holds (the shards publish once a second).
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.streams();
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {v:#}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
            if wait_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A port nobody listens on right now.
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http_raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

fn http_raw(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).expect("connect to metrics");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.write_all(request.as_bytes()).expect("send");
    let mut all = Vec::new();
    c.read_to_end(&mut all).expect("read to the end: the server closes");
    let text = String::from_utf8(all).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("Content-Length");
    assert_eq!(length, body.len(), "Content-Length matches the body");
    (status, head.to_owned(), body.to_owned())
}

fn session_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned()
}

/// SETUP of track 0 over TCP on a fresh connection: (status, connection, session if any).
fn setup_tcp(relay: &Relay, path: &str) -> (u16, TcpStream, Option<String>) {
    let mut c = relay.connect();
    let url = relay.url(path);
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    let session = (s == 200).then(|| session_of(&head));
    (s, c, session)
}

/// An RTCP receiver report about SSRC `source`: fraction lost 64/256, 10 packets lost,
/// jitter 900 ticks (10 ms at 90 kHz).
fn receiver_report(source: u32) -> Vec<u8> {
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    rr.extend_from_slice(&source.to_be_bytes());
    rr.extend_from_slice(&[64, 0, 0, 10]);
    rr.extend_from_slice(&1000u32.to_be_bytes());
    rr.extend_from_slice(&900u32.to_be_bytes());
    rr.extend_from_slice(&[0; 8]);
    rr
}

/// A TCP reader of track 0 that reads its interleaved frames in a thread and sends one
/// receiver report on channel 1 once the first RTP packet arrived.
fn tcp_reader_with_report(relay: &Relay, path: &str) -> std::thread::JoinHandle<usize> {
    let (s, mut c, session) = setup_tcp(relay, path);
    assert_eq!(s, 200);
    let url = relay.url(path);
    let session = session.expect("session");
    let (s, head) =
        exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"));
    assert_eq!(s, 200, "{head}");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut packets = 0;
        let mut reported = false;
        while Instant::now() < deadline {
            let mut header = [0u8; 4];
            if c.read_exact(&mut header).is_err() {
                break;
            }
            let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let mut frame = vec![0u8; len];
            if c.read_exact(&mut frame).is_err() {
                break;
            }
            if header[1] == 0 && len >= 12 {
                packets += 1;
                if !reported {
                    let ssrc = u32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                    let rr = receiver_report(ssrc);
                    let mut out = vec![b'$', 1];
                    out.extend_from_slice(&(rr.len() as u16).to_be_bytes());
                    out.extend_from_slice(&rr);
                    c.write_all(&out).expect("send RR");
                    reported = true;
                }
            }
        }
        packets
    })
}

/// The text follows the exposition format: `# TYPE` before each family's samples, each
/// family once, samples `name{labels} value`.
fn check_exposition(text: &str) {
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert!(seen.insert(name.to_owned()), "family {name} twice");
            current = name.to_owned();
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let name = &line[..line.find(['{', ' ']).expect("sample")];
        assert_eq!(name, current, "sample outside its family: {line}");
        let value = line.rsplit(' ').next().expect("value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

#[test]
fn metrics_and_streams_api_while_readers_play() {
    if !have("ffmpeg", "-version") {
        return;
    }
    // 2 Mbit/s: ffmpeg sends a receiver report per ~280 KB received, about every second.
    let relay = Relay::start(&["--synthetic", "/demo", "--synthetic-bitrate", "2000000"]);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "udp", "-i", &relay.url("/demo")])
        .args(["-t", "8", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let tcp = tcp_reader_with_report(&relay, "/demo");

    let v = relay.wait_for("both readers with RTCP feedback", Duration::from_secs(7), |v| {
        let readers = v["streams"][0]["readers"].as_array().cloned().unwrap_or_default();
        readers.len() == 2
            && readers.iter().all(|r| r["rtcp"][0]["reports"].as_u64().unwrap_or(0) > 0)
            // ffmpeg's first report may come before it has a sender report to name.
            && readers.iter().any(|r| r["rtcp"][0]["rtt_ms"].is_f64())
    });
    let stream = &v["streams"][0];
    assert_eq!(stream["path"], "/demo");
    assert_eq!(stream["upstream"]["kind"], "synthetic");
    assert!(stream["upstream"]["packets_in"].as_u64().unwrap() > 0);
    assert_eq!(stream["upstream"]["lost"], 0, "the built-in source loses nothing");
    let readers = stream["readers"].as_array().unwrap();
    let udp = readers.iter().find(|r| r["transport"] == "udp").expect("the ffmpeg reader");
    let tcp_reader = readers.iter().find(|r| r["transport"] == "tcp").expect("the TCP reader");
    assert!(udp["packets"].as_u64().unwrap() > 0, "{udp}");
    // No token configured: the endpoint is open, and shows no session ids.
    assert_eq!(udp["session"], "", "{udp}");
    assert!(udp["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    // ffmpeg on loopback: nothing lost, jitter small but reported.
    assert_eq!(udp["rtcp"][0]["fraction_lost"], 0.0, "{udp}");
    assert!(udp["rtcp"][0]["jitter_ms"].as_f64().unwrap() < 100.0, "{udp}");
    // ffmpeg's reports give back the relay's sender reports (LSR, DLSR): a round trip. The
    // hand-made TCP report below names none, so it has none.
    let rtt = udp["rtcp"][0]["rtt_ms"].as_f64().unwrap_or_else(|| panic!("no round trip: {udp}"));
    assert!(rtt < 500.0, "{udp}");
    // The TCP reader's report, exactly as sent.
    assert_eq!(tcp_reader["rtcp"][0]["fraction_lost"], 0.25, "{tcp_reader}");
    assert_eq!(tcp_reader["rtcp"][0]["cumulative_lost"], 10);
    assert_eq!(tcp_reader["rtcp"][0]["jitter_ms"], 10.0);
    assert!(tcp_reader["rtcp"][0]["rtt_ms"].is_null(), "{tcp_reader}");
    assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    assert_eq!(v["sessions"], 2);

    let (status, head, text) = relay.get("/metrics");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    assert!(head.contains("Connection: close"));
    check_exposition(&text);
    assert_eq!(sample(&text, "manifold_stream_readers{path=\"/demo\"}"), 2.0);
    assert!(sample(&text, "manifold_stream_packets_in_total{path=\"/demo\"}") > 0.0);
    assert_eq!(sample(&text, "manifold_stream_upstream_lost_total{path=\"/demo\"}"), 0.0);
    assert!(sample(&text, "manifold_stream_bytes_out_total{path=\"/demo\"}") > 0.0);
    let max_loss = "manifold_stream_rtcp_fraction_lost{path=\"/demo\",stat=\"max\"}";
    assert_eq!(sample(&text, max_loss), 0.25);
    let max_jitter = "manifold_stream_rtcp_jitter_ms{path=\"/demo\",stat=\"max\"}";
    assert!(sample(&text, max_jitter) >= 10.0);
    let busy = sample(&text, "manifold_shard_busy_ratio{shard=\"0\"}");
    assert!((0.0..=1.0).contains(&busy));
    assert!(text.contains("manifold_shard_queue_depth{from=\"0\",to=\"1\"}"));
    assert_eq!(sample(&text, "manifold_sessions"), 2.0);

    // Other paths and methods.
    assert_eq!(relay.get("/nope").0, 404);
    assert_eq!(http_raw(relay.metrics, "POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(http_raw(relay.metrics, "garbage\r\n\r\n").0, 400);

    assert!(tcp.join().unwrap() > 0, "the TCP reader got packets");
    let _ = wait_timeout(&mut ffmpeg, Duration::from_secs(10));
}

#[test]
fn the_connection_beyond_the_per_ip_limit_is_closed() {
    let relay = Relay::start(&["--max-connections-per-ip", "3", "--limit-loopback"]);
    let options = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", relay.url("/"));
    let mut open: Vec<TcpStream> = (0..3).map(|_| relay.connect()).collect();
    for c in &mut open {
        assert_eq!(exchange(c, &options).0, 200);
    }
    let mut extra = relay.connect();
    let _ = extra.write_all(options.as_bytes());
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the 4th connection is closed without an answer");
    // A slot given back admits a new connection.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = relay.connect();
        if exchange(&mut c, &options).0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was never given back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = relay.wait_for("the refusal counted", Duration::from_secs(3), |v| {
        v["refused_connections"].as_u64() >= Some(1)
    });
    assert_eq!(v["refused_sessions"], 0);
}

#[test]
fn a_setup_beyond_the_session_limit_gets_503() {
    let relay = Relay::start(&["--synthetic", "/demo", "--max-sessions", "1"]);
    let (s, mut first, session) = setup_tcp(&relay, "/demo");
    assert_eq!(s, 200);
    let (s, _second, _) = setup_tcp(&relay, "/demo");
    assert_eq!(s, 503, "the session limit is reached");
    // TEARDOWN gives the slot back.
    let session = session.expect("session");
    let url = relay.url("/demo");
    let (s, _) = exchange(
        &mut first,
        &format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(s, 200);
    let (s, _third, _) = setup_tcp(&relay, "/demo");
    assert_eq!(s, 200, "a slot was given back");
    let (_, _, text) = relay.get("/metrics");
    assert_eq!(sample(&text, "manifold_refused_total{what=\"session\"}"), 1.0);
}

#[test]
fn a_setup_beyond_the_per_address_session_limit_gets_503() {
    let relay =
        Relay::start(&["--synthetic", "/demo", "--max-sessions-per-ip", "1", "--limit-loopback"]);
    let (s, _first, _) = setup_tcp(&relay, "/demo");
    assert_eq!(s, 200);
    let (s, _second, _) = setup_tcp(&relay, "/demo");
    assert_eq!(s, 503, "one session per address");
    let (_, _, text) = relay.get("/metrics");
    assert_eq!(sample(&text, "manifold_refused_total{what=\"session\"}"), 1.0);
}

const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=NAME\r\nt=0 0\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n";

fn announce(relay: &Relay, c: &mut TcpStream, path: &str, name: &str) -> u16 {
    let body = SDP.replace("NAME", name);
    let req = format!(
        "ANNOUNCE {} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        relay.url(path),
        body.len()
    );
    exchange(c, &req).0
}

#[test]
fn a_second_publisher_is_refused_by_default() {
    let relay = Relay::start(&[]);
    let mut first = relay.connect();
    assert_eq!(announce(&relay, &mut first, "/cam", "first"), 200);
    let mut second = relay.connect();
    assert_eq!(announce(&relay, &mut second, "/cam", "second"), 403);
}

#[test]
fn publish_replace_closes_the_old_publisher() {
    let relay = Relay::start(&["--publish-replace"]);
    let mut first = relay.connect();
    assert_eq!(announce(&relay, &mut first, "/cam", "first"), 200);
    let v = relay.wait_for("the first publisher", Duration::from_secs(3), |v| {
        v["streams"][0]["upstream"]["kind"] == "publisher"
    });
    let first_peer = v["streams"][0]["upstream"]["peer"].clone();
    let mut second = relay.connect();
    assert_eq!(announce(&relay, &mut second, "/cam", "second"), 200);
    // The old publisher's connection is closed.
    let mut buf = [0u8; 64];
    assert_eq!(first.read(&mut buf).unwrap_or(0), 0, "the old publisher is closed");
    // DESCRIBE gives the new publisher's SDP.
    let mut c = relay.connect();
    let (s, text) =
        exchange(&mut c, &format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", relay.url("/cam")));
    assert_eq!(s, 200);
    assert!(text.contains("s=second"), "{text}");
    relay.wait_for("the new publisher in the API", Duration::from_secs(3), |v| {
        let s = &v["streams"][0];
        v["streams"].as_array().map(Vec::len) == Some(1)
            && s["upstream"]["peer"] != first_peer
            && s["upstream"]["kind"] == "publisher"
    });
    // The replacement keeps the path: a third publisher replaces the second.
    let mut third = relay.connect();
    assert_eq!(announce(&relay, &mut third, "/cam", "third"), 200);
    assert_eq!(second.read(&mut buf).unwrap_or(0), 0, "the second publisher is closed");
}

/// A network namespace of our own with loopback up, multicast on and a multicast route
/// through it; deleted on drop.
struct Netns(String);

impl Netns {
    /// `None` (and a "skipped" line) when namespaces cannot be made here (not root).
    fn create() -> Option<Netns> {
        let name = format!("manifold-mc-{}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ok(&["netns", "add", &name]) {
            println!("skipped: cannot create a network namespace (needs root and iproute2)");
            return None;
        }
        let ns = Netns(name);
        for cmd in [
            &["link", "set", "lo", "up"][..],
            &["link", "set", "lo", "multicast", "on"],
            &["route", "add", "224.0.0.0/4", "dev", "lo"],
        ] {
            let mut args = vec!["netns", "exec", &ns.0, "ip"];
            args.extend_from_slice(cmd);
            assert!(ok(&args), "ip {cmd:?} in the namespace");
        }
        Some(ns)
    }

    /// `program args…` inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn multicast_readers_share_one_send_per_packet() {
    if !have("ffmpeg", "-version") || !have("curl", "--version") {
        return;
    }
    // Multicast stays inside a namespace of our own: its loopback is the only interface.
    let Some(ns) = Netns::create() else { return };
    let relay = Relay::start_in(
        Some(&ns.0),
        &["--synthetic", "/demo", "--multicast-range", "239.255.42.0/24"],
    );
    let url = relay.url("/demo");
    let readers: Vec<Child> = (0..2)
        .map(|_| {
            ns.command("ffmpeg")
                .args(["-v", "error", "-rtsp_transport", "udp_multicast", "-i", &url])
                .args(["-t", "4", "-f", "null", "-"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("ffmpeg")
        })
        .collect();
    let metrics_url = format!("http://{}", relay.metrics);
    let fetch = |path: &str| -> String {
        let out = ns
            .command("curl")
            .args(["-s", "--max-time", "5", &format!("{metrics_url}{path}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(6);
    let v: Value = loop {
        let v: Value = serde_json::from_str(&fetch("/api/v1/streams")).unwrap_or(Value::Null);
        let multicast = v["streams"][0]["readers"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["transport"] == "multicast").count());
        let sent = v["streams"][0]["upstream"]["multicast_packets"].as_u64().unwrap_or(0);
        if multicast == 2 && sent > 50 {
            break v;
        }
        assert!(Instant::now() < deadline, "two multicast readers never showed: {v:#}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let upstream = &v["streams"][0]["upstream"];
    let sent = upstream["multicast_packets"].as_u64().unwrap();
    let packets_in = upstream["packets_in"].as_u64().unwrap();
    assert!(sent <= packets_in, "one send per packet for both readers: {sent} > {packets_in}");
    assert_eq!(v["streams"][0]["packets"], 0, "nothing went unicast");
    let text = fetch("/metrics");
    check_exposition(&text);
    assert!(sample(&text, "manifold_stream_multicast_packets_total{path=\"/demo\"}") > 0.0);
    for mut r in readers {
        let status = wait_timeout(&mut r, Duration::from_secs(10)).expect("ffmpeg finished");
        let mut err = String::new();
        if let Some(mut e) = r.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "ffmpeg over multicast: {err}");
    }
    drop(relay);
}

/// The RTP server ports the shards logged ("shard up … rtp_port=N").
fn server_ports(log: &std::path::Path, shards: usize) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let ports: Vec<u16> = text
            .lines()
            .filter(|l| l.contains("shard up"))
            .filter_map(|l| {
                let at = l.find("rtp_port")? + "rtp_port".len();
                let digits: String = l[at..]
                    .chars()
                    .skip_while(|c| !c.is_ascii_digit())
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .collect();
        if ports.len() == shards {
            return ports;
        }
        assert!(Instant::now() < deadline, "no server ports in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_capture_of_the_relay_has_no_malformed_packets() {
    if !have("ffmpeg", "-version") || !have("tshark", "--version") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = dir.join("relay.log");
    let pcap = dir.join("relay.pcapng");
    // The synthetic stream: ffmpeg's own SDP (as a publisher would announce it) is not what
    // this checks; the relay's RTSP answers, RTP and RTCP are.
    let relay = Relay::spawn(None, &["--synthetic", "/demo"], Some(&log));
    let ports = server_ports(&log, 2);
    let rtsp_port = relay.addr.port();
    let mut filter = format!("tcp port {rtsp_port}");
    let mut decode = vec!["-d".to_owned(), format!("tcp.port=={rtsp_port},rtsp")];
    for p in &ports {
        filter += &format!(" or udp port {p} or udp port {}", p + 1);
        decode.extend(["-d".to_owned(), format!("udp.port=={p},rtp")]);
        decode.extend(["-d".to_owned(), format!("udp.port=={},rtcp", p + 1)]);
    }
    let mut tshark = Command::new("tshark")
        .args(["-i", "lo", "-q", "-f", &filter, "-w"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark");
    // tshark says "Capturing on 'Loopback: lo'" once it captures.
    let mut err = BufReader::new(tshark.stderr.take().expect("stderr"));
    let mut line = String::new();
    while err.read_line(&mut line).is_ok_and(|n| n > 0) && !line.contains("Capturing on") {
        line.clear();
    }
    assert!(line.contains("Capturing on"), "tshark did not start capturing: {line}");
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    for transport in ["udp", "tcp"] {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", transport, "-i", &relay.url("/demo")])
            .args(["-t", "3", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|mut c| wait_timeout(&mut c, Duration::from_secs(15)))
            .expect("ffmpeg");
        assert!(status.is_some_and(|s| s.success()), "ffmpeg over {transport}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill").args(["-INT", &tshark.id().to_string()]).status();
    assert!(wait_timeout(&mut tshark, Duration::from_secs(10)).is_some(), "tshark stopped");
    drop(relay);

    let count = |display: &str| -> usize {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(&decode)
            .args(["-Y", display])
            .output()
            .expect("tshark -r");
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count()
    };
    let malformed = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(&decode)
        .args(["-Y", "_ws.malformed || _ws.expert.severity == error"])
        .output()
        .expect("tshark -r");
    assert!(malformed.status.success(), "tshark -r failed (bad filter?)");
    let malformed = String::from_utf8_lossy(&malformed.stdout).into_owned();
    assert!(malformed.trim().is_empty(), "malformed packets:\n{malformed}");
    assert!(count("rtsp.request") >= 8, "RTSP requests captured");
    assert!(count("rtsp.response") >= 8, "RTSP responses captured");
    assert!(count("udp && rtp") > 10, "RTP over UDP captured");
    assert!(count("tcp && rtp") > 10, "RTP interleaved captured");
    assert!(count("rtcp.pt == 200") > 0, "sender reports captured");
    assert!(count("rtcp.pt == 203") > 0, "BYEs captured");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_metrics_token_guards_both_endpoints_and_shows_session_ids_to_its_holder() {
    let config = common::config_file("metrics-token", "metrics_token = \"t0ken\"\n");
    let relay =
        Relay::start(&["--synthetic", "/demo", "--config", config.to_str().expect("utf-8")]);
    let mut c = relay.connect();
    let url = relay.url("/demo");
    let (s, head) = exchange(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let session = session_of(&head);
    let (s, _) =
        exchange(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"));
    assert_eq!(s, 200);
    for path in ["/metrics", "/api/v1/streams"] {
        let (status, head, _) = relay.get(path);
        assert_eq!(status, 401, "{path} without the token");
        assert!(head.contains("WWW-Authenticate: Bearer"), "{head}");
        let wrong = format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n");
        assert_eq!(http_raw(relay.metrics, &wrong).0, 401, "{path} with a wrong token");
    }
    let get = "GET /api/v1/streams HTTP/1.1\r\nAuthorization: Bearer t0ken\r\n\r\n";
    let deadline = Instant::now() + Duration::from_secs(7);
    loop {
        let (status, _, body) = http_raw(relay.metrics, get);
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("JSON");
        if v["streams"][0]["readers"][0]["session"] == session.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session id never shown to the token's holder: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}
