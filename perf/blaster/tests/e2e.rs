//! End to end: the built binary fed with the synthetic stream as raw RTP (an in-test sender)
//! and read by the project's own generator (`manifold-load`), over UDP and TCP, for every
//! send mode; its RTSP answers to bad requests; its exit summary; its flag errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns; a panic is a failed test

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use manifold_load::{LoadArgs, TransportChoice};
use support::sender;

/// One blaster at a time: the generator's glommio shards share the 8 MiB locked-memory cap,
/// and two CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

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

/// The blaster fed by an in-test sender; both stop on drop.
struct Blaster {
    child: Child,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sender: Option<JoinHandle<u64>>,
    sdp: std::path::PathBuf,
}

impl Blaster {
    fn start(mode: &str, bitrate: Option<u64>) -> Blaster {
        let port = free_port_pair();
        let rtp_in: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let stream = sender::stream(bitrate);
        let sdp = std::env::temp_dir().join(format!("blaster-{}-{port}.sdp", std::process::id()));
        std::fs::write(&sdp, sender::sdp(&stream, rtp_in)).expect("write the SDP");
        let mut child = Command::new(env!("CARGO_BIN_EXE_manifold-perf-blaster"))
            .args(["--listen", "127.0.0.1:0", "--rtp-in", &rtp_in.to_string(), "--sdp"])
            .arg(&sdp)
            .args(["--send", mode])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the blaster");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read LISTEN");
        let Some(addr) = line.trim().strip_prefix("LISTEN ") else {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().expect("stderr").read_to_string(&mut err);
            panic!("no LISTEN line but {line:?}; stderr: {err}");
        };
        let addr = addr.parse().expect("LISTEN address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sender = std::thread::spawn(move || sender::send(stream, rtp_in, &flag));
        Blaster { child, stdout, addr, stop, sender: Some(sender), sdp }
    }

    fn url(&self) -> String {
        format!("rtsp://{}/perf", self.addr)
    }

    /// SIGTERM, then the summary line and the exit status.
    fn terminate(mut self) -> (serde_json::Value, std::process::ExitStatus) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(killed.success());
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read the summary");
        let status = self.child.wait().expect("wait for the blaster");
        let summary = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("summary {line:?} is not JSON: {e}"));
        (summary, status)
    }
}

impl Drop for Blaster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.sender.take() {
            let _ = s.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sdp);
    }
}

/// `clients` generator sessions for `secs` seconds over `transport`.
fn load(url: &str, transport: TransportChoice, clients: u32) -> manifold_load::Report {
    let mut args = LoadArgs::new(url);
    args.clients = clients;
    args.duration = Duration::from_millis(2500);
    args.ramp = Duration::from_millis(300);
    args.transport = transport;
    args.shards = Some(1);
    args.quiet = true;
    manifold_load::execute(&args).expect("generator run").report
}

fn assert_clean(report: &manifold_load::Report, clients: u64, what: &str) {
    let s = &report.sessions;
    let m = &report.media;
    assert_eq!(s.played, clients, "{what}: sessions {s:?}, errors {:?}", report.errors);
    assert_eq!(s.failed, 0, "{what}: errors {:?}", report.errors);
    assert!(m.packets > clients * 20, "{what}: only {} packets", m.packets);
    assert_eq!(m.lost, 0, "{what}: lost packets: {m:?}");
    assert_eq!(m.duplicates, 0, "{what}: {m:?}");
    assert_eq!(m.malformed, 0, "{what}: {m:?}");
    // The extmap lines reached the generator: loss was counted on the packet counter.
    assert_eq!(m.counted_by_counter, m.packets, "{what}: {m:?}");
}

fn serves_udp_and_tcp_without_loss(mode: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 2 Mbit/s: frames of several equal-sized packets (GSO runs) plus odd-sized ones.
    let blaster = Blaster::start(mode, Some(2_000_000));
    let udp = load(&blaster.url(), TransportChoice::Udp, 4);
    assert_clean(&udp, 4, &format!("{mode}, udp"));
    let tcp = load(&blaster.url(), TransportChoice::Tcp, 4);
    assert_clean(&tcp, 4, &format!("{mode}, tcp"));
    let (summary, status) = blaster.terminate();
    assert!(status.success(), "exit status {status}");
    let n = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{k} in {summary}"));
    assert!(n("received") > 0, "{summary}");
    assert!(n("datagrams_sent") >= udp.media.packets, "{summary}");
    assert!(n("tcp_sent") >= tcp.media.packets, "{summary}");
    assert_eq!(n("send_errors"), 0, "{summary}");
    assert_eq!(n("tcp_dropped"), 0, "{summary}");
    assert_eq!(n("readers_max"), 4, "{summary}");
    assert_eq!(summary["send"], mode, "{summary}");
}

#[test]
fn sendto_serves_udp_and_tcp_without_loss() {
    serves_udp_and_tcp_without_loss("sendto");
}

#[test]
fn sendmmsg_serves_udp_and_tcp_without_loss() {
    serves_udp_and_tcp_without_loss("sendmmsg");
}

#[test]
fn gso_serves_udp_and_tcp_without_loss() {
    serves_udp_and_tcp_without_loss("gso");
}

#[test]
fn gso_mmsg_serves_udp_and_tcp_without_loss() {
    serves_udp_and_tcp_without_loss("gso-mmsg");
}

/// Sends one request and reads one response head (and body, by Content-Length).
fn request(conn: &mut TcpStream, text: &str) -> String {
    conn.write_all(text.as_bytes()).expect("send request");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = conn.read(&mut byte).expect("read response");
        assert!(n > 0, "connection closed after {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).expect("UTF-8 head");
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().expect("Content-Length"));
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).expect("read body");
    head + &String::from_utf8_lossy(&body)
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or_default()
}

#[test]
fn answers_rtsp_errors_where_due() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let blaster = Blaster::start("gso", None);
    let url = blaster.url();
    let mut c = TcpStream::connect(blaster.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let r = request(&mut c, &format!("OPTIONS {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.contains("Public: OPTIONS, DESCRIBE, SETUP, PLAY"), "{r}");
    let r = request(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\n\r\n"));
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.contains(&format!("Content-Base: {url}/\r\n")), "{r}");
    assert!(r.contains("a=control:*\r\n") && r.contains("a=control:trackID=0\r\n"), "{r}");
    assert!(r.contains("a=extmap:2 urn:manifold:rtp-hdrext:packet-counter"), "{r}");
    // No CSeq: 400.
    let r = request(&mut c, &format!("OPTIONS {url} RTSP/1.0\r\n\r\n"));
    assert_eq!(status_of(&r), "400", "{r}");
    // Not RTP: 461; a track that does not exist: 404; PLAY before SETUP: 455.
    let r = request(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RAW/RAW/UDP;unicast\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), "461", "{r}");
    let r = request(
        &mut c,
        &format!(
            "SETUP {url}/trackID=5 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=9000-9001\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), "404", "{r}");
    let r = request(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 5\r\n\r\n"));
    assert_eq!(status_of(&r), "455", "{r}");
    // An unknown session: 454.
    let r = request(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 6\r\nSession: nosuch\r\n\r\n"));
    assert_eq!(status_of(&r), "454", "{r}");
    // Publishing is not served.
    let r = request(&mut c, &format!("ANNOUNCE {url} RTSP/1.0\r\nCSeq: 7\r\n\r\n"));
    assert_eq!(status_of(&r), "405", "{r}");
    // A good SETUP answers the server-port pair; PLAY, keep-alive, TEARDOWN.
    let r = request(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 8\r\nTransport: RTP/AVP;unicast;client_port=9000-9001\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.contains("Transport: RTP/AVP;unicast;client_port=9000-9001;server_port="), "{r}");
    let session = r
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let r = request(
        &mut c,
        &format!(
            "PLAY {url} RTSP/1.0\r\nCSeq: 9\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.contains("Range: npt=0.000-"), "{r}");
    let r = request(
        &mut c,
        &format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 10\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(status_of(&r), "200", "{r}");
    let r = request(
        &mut c,
        &format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 11\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(status_of(&r), "200", "{r}");
    let (summary, status) = blaster.terminate();
    assert!(status.success());
    assert_eq!(summary["readers_max"], 1, "{summary}");
}

#[test]
fn bad_flags_exit_2_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_manifold-perf-blaster"))
        .args(["--listen", "127.0.0.1:0", "--send", "carrier-pigeon"])
        .output()
        .expect("run the blaster");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_manifold-perf-blaster"))
        .args(["--listen", "127.0.0.1:0", "--rtp-in", "127.0.0.1:0", "--sdp", "/nonexistent.sdp"])
        .args(["--send", "gso"])
        .output()
        .expect("run the blaster");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent.sdp"), "{err}");
}

/// Reads an interleaved connection: `$` frames and responses, across calls.
struct Interleaved {
    decoder: manifold_rtsp::codec::Decoder,
    buf: Vec<u8>,
}

impl Interleaved {
    fn new() -> Interleaved {
        let limits = manifold_rtsp::codec::Limits::default();
        Interleaved { decoder: manifold_rtsp::codec::Decoder::new(limits), buf: Vec::new() }
    }

    /// Decodes what `conn` sends for `time` (a framing error fails the test); returns the RTP
    /// frames on channel 0 and the responses (status and CSeq) seen.
    fn read(&mut self, conn: &mut TcpStream, time: Duration) -> (u64, Vec<String>) {
        use manifold_rtsp::codec::Item;
        conn.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let mut chunk = vec![0u8; 64 * 1024];
        let (mut frames, mut responses) = (0, Vec::new());
        let end = std::time::Instant::now() + time;
        while std::time::Instant::now() < end {
            match conn.read(&mut chunk) {
                Ok(0) => panic!("connection closed"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => panic!("read: {e}"),
            }
            let mut start = 0;
            loop {
                let item = self.decoder.feed(&self.buf[start..]).unwrap_or_else(|e| {
                    panic!("framing broken after {frames} frames of this read: {e}")
                });
                let Some((item, used)) = item else { break };
                match item {
                    Item::Interleaved { channel, payload } => {
                        assert_eq!(channel.0, 0);
                        assert_eq!(payload[0] >> 6, 2, "an RTP version 2 packet");
                        frames += 1;
                    }
                    Item::Response(r) => {
                        responses.push(format!("{} {}", r.status, r.cseq().unwrap_or(0)));
                    }
                    Item::Request(r) => panic!("unexpected request {r:?}"),
                }
                start += used;
            }
            if start > 0 {
                self.buf.drain(..start);
                self.decoder.reset();
            }
        }
        (frames, responses)
    }
}

#[test]
fn a_stalled_interleaved_reader_loses_whole_packets_and_stays_framed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 40 Mbit/s: a reader that stops reading for 1.5 s fills its socket (the send buffer
    // grows to `tcp_wmem`'s maximum, 4 MiB by default) within the stall.
    let blaster = Blaster::start("gso", Some(40_000_000));
    let url = blaster.url();
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    socket.connect(&blaster.addr.into()).expect("connect");
    let mut c: TcpStream = socket.into();
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let r = request(
        &mut c,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(status_of(&r), "200", "{r}");
    assert!(r.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1"), "{r}");
    let session = r
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let r =
        request(&mut c, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {session}\r\n\r\n"));
    assert_eq!(status_of(&r), "200", "{r}");
    // Stall, then read: whatever arrives is whole, well-framed packets.
    std::thread::sleep(Duration::from_millis(1500));
    let mut stream = Interleaved::new();
    let (frames, _) = stream.read(&mut c, Duration::from_millis(700));
    assert!(frames > 100, "only {frames} frames after the stall");
    // A keep-alive while playing: its answer comes between frames, framing intact.
    c.write_all(
        format!("GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes(),
    )
    .expect("send GET_PARAMETER");
    let (frames, responses) = stream.read(&mut c, Duration::from_millis(700));
    assert!(frames > 100, "only {frames} frames after the keep-alive");
    assert_eq!(responses, ["200 OK 3"], "the keep-alive's answer");
    let (summary, status) = blaster.terminate();
    assert!(status.success());
    assert!(summary["tcp_dropped"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["tcp_sent"].as_u64().unwrap() > 200, "{summary}");
}
