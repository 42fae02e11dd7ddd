//! Clients that try to exhaust the relay, against the real binary: one connection opening
//! thousands of sessions, a thousand idle and a thousand half-sent connections, a client that
//! pipelines 16 MiB of requests and reads nothing; RTMP publishers that send garbage, a message
//! over the size limit, or nothing. Each attack must be bounded by the relay's limits, and a
//! reader on the same shard must keep receiving while it runs.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{exchange, Relay};

/// The relay's settings for the attacks: short timeouts so the test is quick.
const CONFIG: &str = "synthetic = [\"/demo\"]\n\
                      request_timeout_secs = 2\n\
                      idle_timeout_secs = 3\n\
                      reader_stall_secs = 2\n\
                      max_sessions_per_connection = 16\n";

/// Execs its arguments with transparent huge pages disabled (`PR_SET_THP_DISABLE`, which
/// the exec'd process keeps).
const NO_THP_EXEC: &str = "import ctypes, os, sys\n\
                           if ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) != 0: sys.exit('prctl failed')\n\
                           os.execv(sys.argv[1], sys.argv[1:])";

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Reads one response head (and body) from a buffered connection: its status and headers.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, String)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).ok()?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    Some((status, head))
}

/// A TCP reader of `/demo` that records the longest gap between interleaved frames in each
/// phase of the test (the phase is whatever `phase` holds when the frame arrives).
struct Watcher {
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    gaps: Arc<Mutex<Vec<Duration>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(addr: SocketAddr, phases: usize, t0: Instant) -> Watcher {
        let phase = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let gaps = Arc::new(Mutex::new(vec![Duration::ZERO; phases]));
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let url = format!("rtsp://{addr}/demo");
        let (session, _) = common::setup_play_tcp(&mut c, &url, 1);
        let thread = {
            let (phase, stop, gaps) = (phase.clone(), stop.clone(), gaps.clone());
            std::thread::spawn(move || {
                let mut last: Option<Instant> = None;
                let mut buf = vec![0u8; 65_536];
                let mut keepalive = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let mut header = [0u8; 4];
                    if c.read_exact(&mut header).is_err() {
                        break;
                    }
                    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
                    if header[0] != b'$' || c.read_exact(&mut buf[..len]).is_err() {
                        break;
                    }
                    let now = Instant::now();
                    if let Some(prev) = last {
                        let p = phase.load(Ordering::Relaxed);
                        let mut g = gaps.lock().unwrap();
                        if now - prev > Duration::from_millis(100) {
                            eprintln!("gap {:?} in phase {p} ending at {:?}", now - prev, now - t0);
                        }
                        g[p] = g[p].max(now - prev);
                    }
                    last = Some(now);
                    if keepalive.elapsed() > Duration::from_secs(20) {
                        keepalive = now;
                        let req = format!(
                            "GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 9\r\nSession: {session}\r\n\r\n"
                        );
                        let _ = c.write_all(req.as_bytes());
                    }
                }
            })
        };
        Watcher { phase, stop, gaps, thread: Some(thread) }
    }

    fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::Relaxed);
    }

    fn finish(mut self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("watcher");
        }
        self.gaps.lock().unwrap().clone()
    }
}

#[test]
fn attacks_stay_bounded_and_a_reader_on_the_shard_keeps_receiving() {
    let t0 = Instant::now();
    // The test process holds two thousand sockets of its own.
    manifold_sys::limits::raise_nofile().expect("raise the open-file limit");
    let config = common::config_file("e2e-hostile", CONFIG);
    // One shard: every attack lands on the watcher's shard.
    // Transparent huge pages off for the relay (inherited through exec): resident memory
    // then grows by pages of 4 KiB, not 2 MiB, and measures what the relay buffers.
    let mut child = std::process::Command::new("python3")
        .args(["-c", NO_THP_EXEC, env!("CARGO_BIN_EXE_manifold"), "serve"])
        .args(["--listen", "127.0.0.1:0", "--cores", "1", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the relay");
    let addr = common::wait_for_line(&mut child, "listening on ", "manifold serve");
    let relay = Relay { child, addr: addr.parse().expect("listening address") };
    let pid = relay.child.id();
    let url = relay.url("/demo");
    std::thread::sleep(Duration::from_millis(1500));
    let watcher = Watcher::start(relay.addr, 4, t0);
    std::thread::sleep(Duration::from_secs(3)); // phase 0: the normal gap
    let baseline_fds = fds(pid);

    // Phase 1: 16 MiB of pipelined DESCRIBEs from a client that never reads.
    watcher.enter(1);
    let rss_before = rss(pid);
    let flood = TcpStream::connect(relay.addr).expect("connect");
    flood.set_write_timeout(Some(Duration::from_secs(4))).expect("timeout");
    let sampler_stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = sampler_stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(rss(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let request = format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    let chunk: Vec<u8> = request.as_bytes().repeat(65_536 / request.len());
    let mut sent = 0usize;
    let mut writer = &flood;
    let mut cut_off = false;
    while sent < 16 << 20 {
        match writer.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // The relay stopped reading: keep trying until it cuts the client off.
                continue;
            }
            Err(_) => {
                cut_off = true;
                break;
            }
        }
    }
    sampler_stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let grown = peak.saturating_sub(rss_before);
    assert!(cut_off, "the flooding client was never disconnected ({sent} bytes taken)");
    assert!(grown < 2 << 20, "RSS grew by {grown} bytes ({rss_before} → {peak})");
    drop(flood);
    std::thread::sleep(Duration::from_millis(500));

    // Phase 2: 10,000 SETUPs on one connection, pipelined 100 at a time.
    watcher.enter(2);
    let greedy = TcpStream::connect(relay.addr).expect("connect");
    greedy.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut greedy_w = greedy.try_clone().expect("clone");
    let mut greedy_r = BufReader::new(greedy);
    let (mut ok, mut refused, mut sessions) = (0, 0, Vec::new());
    for batch in 0..100 {
        let mut requests = String::new();
        for i in 0..100 {
            let cseq = batch * 100 + i + 1;
            requests.push_str(&format!(
                "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: {cseq}\r\n\
                 Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
            ));
        }
        greedy_w.write_all(requests.as_bytes()).expect("send SETUPs");
        for _ in 0..100 {
            let (status, head) = read_response(&mut greedy_r).expect("a response to every SETUP");
            match status {
                200 => {
                    ok += 1;
                    sessions.extend(
                        head.lines()
                            .find_map(|l| l.strip_prefix("Session: "))
                            .map(|v| v.split(';').next().unwrap_or_default().to_owned()),
                    );
                }
                503 => {
                    assert!(head.contains("Retry-After: "), "{head}");
                    refused += 1;
                }
                other => panic!("SETUP answered {other}: {head}"),
            }
        }
    }
    assert_eq!((ok, refused), (16, 9_984), "16 sessions per connection, the rest refused");
    // Its session still works (a connection plays one session: its latest), and another
    // client still gets one.
    let latest = sessions.last().expect("a session");
    let play = format!("PLAY {url} RTSP/1.0\r\nCSeq: 10001\r\nSession: {latest}\r\n\r\n");
    greedy_w.write_all(play.as_bytes()).expect("PLAY");
    assert_eq!(read_response(&mut greedy_r).map(|r| r.0), Some(200), "kept its sessions");
    let mut other = TcpStream::connect(relay.addr).expect("connect");
    other.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let (s, head) = exchange(
        &mut other,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "another client gets a session: {head}");
    drop((greedy_w, greedy_r, other));

    // Phase 3: a thousand idle connections and a thousand that send half a request.
    watcher.enter(3);
    let before = fds(pid);
    let start = Instant::now();
    let mut held: Vec<TcpStream> = Vec::with_capacity(2000);
    for i in 0..2000 {
        let mut c = TcpStream::connect(relay.addr).expect("connect");
        if i % 2 == 1 {
            c.write_all(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: slow").expect("half");
        }
        held.push(c);
    }
    eprintln!("phase 3 at {:?}: connected", t0.elapsed());
    let mut opened = fds(pid);
    while opened < baseline_fds + 1990 && start.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(20));
        opened = opened.max(fds(pid));
    }
    assert!(opened >= baseline_fds + 1990, "the relay took the connections: {before} → {opened}");
    eprintln!("phase 3 at {:?}: all accepted", t0.elapsed());
    // Half-sent ones go after the request timeout (2 s), idle ones after the idle timeout
    // (3 s): all within 3 s + slack, none before 2 s.
    let mut closed_at = None;
    while start.elapsed() < Duration::from_secs(12) {
        if fds(pid) <= baseline_fds + 5 {
            closed_at = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed_at =
        closed_at.unwrap_or_else(|| panic!("fds still {} (baseline {baseline_fds})", fds(pid)));
    eprintln!("phase 3 at {:?}: all closed", t0.elapsed());
    assert!(closed_at >= Duration::from_secs(2), "closed before any timeout: {closed_at:?}");
    assert!(closed_at <= Duration::from_secs(3 + 4), "closed late: {closed_at:?}");
    // Every one of them sees its end (a few may still have been in the accept queue when the
    // descriptors were counted: they get until the deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    for c in &mut held {
        c.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut b = [0u8; 512];
        let eof = loop {
            match c.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue, // whatever the relay answered: read to the end
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) if Instant::now() < deadline => continue,
                Err(_) => break false,
            }
        };
        assert!(eof, "a held connection was not closed by the relay");
    }
    drop(held);

    let gaps = watcher.finish();
    // Normal: the baseline's longest gap, and at least two frame intervals of the synthetic
    // stream (25 fps): on a shared machine a quiet stream sees gaps that long anyway.
    let normal = gaps[0].max(Duration::from_millis(80));
    for (phase, gap) in gaps.iter().enumerate().skip(1) {
        assert!(*gap < normal * 2, "phase {phase}: max gap {gap:?} against {:?} normally", gaps[0]);
    }
    eprintln!(
        "hostile: max gaps {gaps:?}; fds back to baseline after {closed_at:?}; flood {sent} bytes \
         taken, RSS +{grown} bytes"
    );
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}

/// Reads until the relay closes `c` (or resets it); how long that took from `since`, or
/// `None` if it was still open at `limit`.
fn closed_within(c: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    let mut b = [0u8; 4096];
    loop {
        let left = limit.checked_sub(since.elapsed())?;
        c.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("timeout");
        match c.read(&mut b) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Some(since.elapsed())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if since.elapsed() >= limit {
                    return None;
                }
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// A plain RTMP handshake with the relay at `addr` (C0 C1, S0 S1 S2 back, C2 echoing S1).
fn rtmp_handshake(addr: &str) -> TcpStream {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| if (4..8).contains(&i) { 0 } else { (i * 7) as u8 }));
    c.write_all(&c0c1).expect("C0 C1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    c.read_exact(&mut s0s1s2).expect("S0 S1 S2");
    assert_eq!(s0s1s2[0], 3, "S0");
    c.write_all(&s0s1s2[1..1537]).expect("C2 (S1 echoed)");
    c
}

/// RTMP publishers that misbehave, against the real binary on one shard: one that sends
/// garbage instead of a handshake (and keeps sending), one that shakes hands and then
/// announces a message over the size limit (8 MiB), one that connects and says nothing. Each is
/// closed (the silent one at the handshake timeout, 10 s), and a reader of the shard's
/// stream keeps its normal pace all along.
#[test]
fn hostile_rtmp_publishers_are_closed_and_a_reader_keeps_receiving() {
    let t0 = Instant::now();
    let rtmp = format!("127.0.0.1:{}", common::free_port());
    let relay = Relay::start(&["--cores", "1", "--synthetic", "/demo", "--rtmp-listen", &rtmp]);
    std::thread::sleep(Duration::from_millis(1500));
    let watcher = Watcher::start(relay.addr, 2, t0);
    std::thread::sleep(Duration::from_secs(2)); // phase 0: the normal gap

    watcher.enter(1);
    let start = Instant::now();
    let mut silent = TcpStream::connect(&rtmp).expect("connect");

    // Garbage where C0 (version 3) should be, written for as long as the relay takes it.
    let mut garbage = TcpStream::connect(&rtmp).expect("connect");
    garbage.set_write_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2048);
    let mut taken = 0usize;
    while taken < 32 << 20 {
        match garbage.write(&junk) {
            Ok(n) => taken += n,
            Err(_) => break,
        }
    }
    let garbage_closed = closed_within(&mut garbage, start, Duration::from_secs(5));
    assert!(garbage_closed.is_some(), "garbage still open after 5 s ({taken} bytes taken)");
    assert!(taken < 32 << 20, "the relay read 32 MiB of garbage without closing");

    // After a handshake, a well-formed message keeps the connection open (so the close that
    // follows is the size limit's doing); a chunk announcing 16 MiB - 1 closes it.
    let mut fine = rtmp_handshake(&rtmp);
    // Set Chunk Size 4096: chunk stream 2, type 1, four bytes.
    fine.write_all(&[0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0]).expect("message");
    assert_eq!(closed_within(&mut fine, Instant::now(), Duration::from_millis(700)), None);
    let mut oversize = rtmp_handshake(&rtmp);
    let mut chunk = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0];
    chunk.extend([0u8; 128]);
    oversize.write_all(&chunk).expect("oversize chunk");
    let oversize_closed = closed_within(&mut oversize, Instant::now(), Duration::from_secs(5));
    assert!(oversize_closed.is_some(), "a 16 MiB message was not refused");

    // The silent one: closed at the handshake timeout (10 s), not before.
    let silent_closed = closed_within(&mut silent, start, Duration::from_secs(20))
        .expect("a silent RTMP connection was never closed");
    assert!(silent_closed >= Duration::from_secs(8), "closed early: {silent_closed:?}");

    let gaps = watcher.finish();
    let normal = gaps[0].max(Duration::from_millis(80));
    assert!(gaps[1] < normal * 2, "max gap {:?} against {:?} normally", gaps[1], gaps[0]);
    eprintln!(
        "hostile rtmp: garbage closed after {garbage_closed:?} ({taken} bytes taken), oversize \
         after {oversize_closed:?}, silent after {silent_closed:?}; max gaps {gaps:?}"
    );
}
