//! End to end: `manifold load`'s simulated clients behave like players. They send RTCP
//! receiver reports, and the relay's per-reader RTCP figures (`/api/v1/streams`) fill in for
//! UDP and TCP readers alike, round-trip times too (with `--no-rtcp` they stay empty); and
//! they keep their sessions
//! alive, so a relay with a short session timeout keeps even sessions that never PLAY. The
//! relay plays its synthetic stream; everything stays on 127.0.0.1 and every wait is bounded.

// Test helpers outside #[test] functions: a panic here is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{wait_timeout, Relay};

/// How long each generator runs: longer than the latest possible first report (RFC 3550's
/// half of 5 s × 1.5 ÷ (e − 3/2) ≈ 3.1 s after PLAY).
const RUN: &str = "6s";

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address")
}

/// `/api/v1/streams` from the relay's metrics endpoint, parsed.
fn streams(metrics: SocketAddr) -> Value {
    let mut c = TcpStream::connect(metrics).expect("connect to metrics");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(c, "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).expect("read");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The readers of every stream, as (transport, packets, RTCP reports summed over tracks, the
/// longest round-trip time the relay took from them, ms).
fn readers(v: &Value) -> Vec<(String, u64, u64, Option<f64>)> {
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    streams
        .iter()
        .flat_map(|s| s["readers"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let reports = r["rtcp"]
                .as_array()
                .map_or(0, |t| t.iter().map(|f| f["reports"].as_u64().unwrap_or(0)).sum());
            let rtt = r["rtcp"]
                .as_array()
                .and_then(|t| t.iter().filter_map(|f| f["max_rtt_ms"].as_f64()).reduce(f64::max));
            let transport = r["transport"].as_str().unwrap_or("").to_owned();
            (transport, r["packets"].as_u64().unwrap_or(0), reports, rtt)
        })
        .collect()
}

/// Starts `manifold load` with three clients over `transport` for `run`.
fn load(url: &str, transport: &str, run: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(["load", url, "--clients", "3", "--duration", run, "--transport", transport])
        .args(["--quiet"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start manifold load")
}

/// What the relay showed while a UDP and a TCP generator ran: per transport, the most
/// packets and the most RTCP reports any of its readers had and the longest round-trip time
/// it took from their reports (their LSR and DLSR), and how long readers were seen.
struct Seen {
    udp: (u64, u64, Option<f64>),
    tcp: (u64, u64, Option<f64>),
    readers_for: Duration,
}

fn run_generators(extra: &[&str]) -> Seen {
    let metrics = free_port();
    let relay = Relay::start(&["--metrics", &metrics.to_string(), "--synthetic", "/demo"]);
    let url = relay.url("/demo");
    let mut udp = load(&url, "udp", RUN, extra);
    let mut tcp = load(&url, "tcp", RUN, extra);
    let mut seen = Seen { udp: (0, 0, None), tcp: (0, 0, None), readers_for: Duration::ZERO };
    let mut first_with_readers = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while matches!(udp.try_wait(), Ok(None)) || matches!(tcp.try_wait(), Ok(None)) {
        assert!(Instant::now() < deadline, "the generators did not end in time");
        for (transport, packets, reports, rtt) in readers(&streams(metrics)) {
            let at = Instant::now();
            let since = *first_with_readers.get_or_insert(at);
            seen.readers_for = at - since;
            let slot = if transport == "udp" { &mut seen.udp } else { &mut seen.tcp };
            let longest = match (slot.2, rtt) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            *slot = (slot.0.max(packets), slot.1.max(reports), longest);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for (name, child) in [("udp", &mut udp), ("tcp", &mut tcp)] {
        let status = wait_timeout(child, Duration::from_secs(5)).expect("generator ended");
        assert_eq!(status.code(), Some(0), "{name} generator failed");
    }
    seen
}

#[test]
fn the_relay_shows_the_generators_rtcp_reports_for_udp_and_tcp_readers() {
    let seen = run_generators(&[]);
    assert!(seen.udp.0 > 0 && seen.tcp.0 > 0, "readers of both transports played");
    assert!(seen.udp.1 > 0, "no RTCP report from a UDP reader reached the relay");
    assert!(seen.tcp.1 > 0, "no RTCP report from a TCP reader reached the relay");
    // Their reports name the sender reports they were sent, as players' do: on loopback the
    // round trip is well under a millisecond, but a busy machine may hold one up.
    for (name, rtt) in [("udp", seen.udp.2), ("tcp", seen.tcp.2)] {
        let rtt = rtt.unwrap_or_else(|| panic!("no round trip from a {name} reader's reports"));
        assert!(rtt < 500.0, "{name}: round trip {rtt} ms");
    }
}

#[test]
fn no_rtcp_leaves_the_relays_rtcp_figures_empty() {
    let seen = run_generators(&["--no-rtcp"]);
    assert!(seen.udp.0 > 0 && seen.tcp.0 > 0, "readers of both transports played");
    assert!(
        seen.readers_for > Duration::from_millis(3500),
        "readers were watched for only {:?}, less than a report takes to come",
        seen.readers_for
    );
    assert_eq!((seen.udp.1, seen.tcp.1), (0, 0), "reports came despite --no-rtcp");
    assert_eq!((seen.udp.2, seen.tcp.2), (None, None));
}

#[test]
fn sessions_held_without_play_outlive_a_short_session_timeout() {
    // The relay expires a silent session after its timeout (1 s) plus 5 s of grace; only the
    // generator's keep-alives (every half timeout) hold these sessions, which never PLAY and
    // so send no RTCP.
    let metrics = free_port();
    let relay = Relay::start(&[
        "--metrics",
        &metrics.to_string(),
        "--synthetic",
        "/demo",
        "--session-timeout-secs",
        "1",
    ]);
    let url = relay.url("/demo");
    let mut udp = load(&url, "udp", "10s", &["--no-play"]);
    let mut tcp = load(&url, "tcp", "10s", &["--no-play"]);
    let sessions = || streams(metrics)["sessions"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sessions() < 6 {
        assert!(Instant::now() < deadline, "the six sessions were never set up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_set_up = Instant::now();
    // Past the timeout and its grace, with a margin, and before the runs end.
    std::thread::sleep(Duration::from_millis(7500).saturating_sub(all_set_up.elapsed()));
    assert_eq!(sessions(), 6, "the relay expired sessions the generator held");
    for (name, child) in [("udp", &mut udp), ("tcp", &mut tcp)] {
        let status = wait_timeout(child, Duration::from_secs(15)).expect("generator ended");
        assert_eq!(status.code(), Some(0), "{name} generator failed");
    }
}
