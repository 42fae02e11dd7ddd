//! End-to-end tests of the generator-side commands with the real binary: `demo`, `load`
//! (thresholds that pass and fail, no drops of its own at high bitrates), `source` published
//! through our relay (read back by ffmpeg; at 40 Mbit/s over UDP, with no loss on the way in),
//! `merge` of interval logs, and `compare`. Everything stays on 127.0.0.1; relays bind
//! port 0 and print the address they got. Without ffmpeg the `source` test prints
//! "skipped: ..." and passes, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{have, run_bounded, text, wait_for_line};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");

/// A running `manifold serve --synthetic /demo`, killed when dropped.
struct Relay {
    child: Child,
    addr: SocketAddr,
}

impl Relay {
    fn start() -> Relay {
        Relay::start_with(&[])
    }

    /// With more `serve` flags.
    fn start_with(more: &[&str]) -> Relay {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--cores", "1", "--synthetic", "/demo"])
            .args(more)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start manifold serve");
        let addr = wait_for_line(&mut child, "listening on ", "manifold serve");
        Relay { child, addr: addr.parse().unwrap() }
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://{}{path}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `args` to completion within `limit` (killed past it: a failed test).
fn manifold(args: &[&str], limit: Duration) -> Output {
    run_bounded(Command::new(BIN).args(args).env("RUST_LOG", "warn"), limit)
        .unwrap_or_else(|| panic!("manifold {args:?} did not finish within {limit:?}"))
}

/// The table row of `metric`, split into columns.
fn row<'a>(stdout: &'a str, metric: &str) -> Option<Vec<&'a str>> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&metric))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-gen-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn demo_runs_relay_and_clients_and_reports_e2e() {
    let out = manifold(
        &["demo", "--clients", "50", "--duration", "4s", "--ramp", "1s", "--quiet"],
        Duration::from_secs(40),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    let e2e = row(&stdout, "e2e").unwrap_or_else(|| panic!("no e2e row\n{}", text(&out)));
    assert!(e2e[1].parse::<u64>().unwrap() > 0, "{}", text(&out));
    assert!(row(&stdout, "setup").is_some(), "{}", text(&out));
    assert!(stdout.contains("50 played"), "{}", text(&out));
    // What the run cost the relay (the demo watches its child).
    assert!(stdout.contains("delivered pkts per server CPU-s"), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("relay stopped cleanly"));
}

#[test]
fn udp_readers_of_a_high_bitrate_stream_drop_nothing_themselves() {
    // At PLAY the relay replays its GOP cache at once: a burst of about a second of the
    // stream, which the generator's 256 KiB receive buffers of before overflowed (7% of the
    // packets dropped by the generator's own sockets at 8 Mbit/s, 10 readers).
    let relay = Relay::start_with(&["--synthetic-bitrate", "8000000"]);
    let out = manifold(
        &[
            "load",
            &relay.url("/demo"),
            "--clients",
            "10",
            "--duration",
            "4s",
            "--transport",
            "udp",
            "--quiet",
            "--threshold",
            "rxq_drops<1",
            "--threshold",
            "loss.ratio<0.0001",
            "--threshold",
            "errors<1",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn load_thresholds_pass_and_fail_and_merge_and_compare() {
    let relay = Relay::start();
    let url = relay.url("/demo");
    let dir = scratch("load");
    let (json, hlog) = (dir.join("run.json"), dir.join("run.hlog"));
    let pass = manifold(
        &[
            "load",
            &url,
            "--clients",
            "20",
            "--duration",
            "3s",
            "--transport",
            "mix:50",
            "--quiet",
            "--json",
            json.to_str().unwrap(),
            "--hlog",
            hlog.to_str().unwrap(),
            "--threshold",
            "errors<1",
            "--threshold",
            "setup.p99<2s",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(pass.status.code(), Some(0), "{}", text(&pass));
    let stdout = String::from_utf8_lossy(&pass.stdout);
    assert!(stdout.contains("threshold errors<1: pass"), "{}", text(&pass));

    let fail = manifold(
        &[
            "load",
            &url,
            "--clients",
            "5",
            "--duration",
            "2s",
            "--quiet",
            "--threshold",
            "e2e.p99<1us",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(fail.status.code(), Some(99), "{}", text(&fail));
    assert!(String::from_utf8_lossy(&fail.stdout).contains("FAIL"), "{}", text(&fail));

    // --processes re-runs this binary as hidden workers and merges their measurements.
    let split = manifold(
        &["load", &url, "--clients", "10", "--duration", "2s", "--processes", "2", "--quiet"],
        Duration::from_secs(30),
    );
    assert_eq!(split.status.code(), Some(0), "{}", text(&split));
    let stdout = String::from_utf8_lossy(&split.stdout);
    assert!(stdout.contains("2 process(es)") && stdout.contains("10 played"), "{}", text(&split));

    // merge: the log twice holds every histogram's samples twice.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let single = report["metrics"]["e2e"]["count"].as_u64().unwrap();
    assert!(single > 0);
    let merged_json = dir.join("merged.json");
    let h = hlog.to_str().unwrap();
    let merged = manifold(
        &["merge", h, h, "--json", merged_json.to_str().unwrap(), "--threshold", "e2e.count>=1"],
        Duration::from_secs(10),
    );
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    assert_eq!(m["metrics"]["e2e"]["count"].as_u64(), Some(2 * single));
    assert_eq!(
        m["metrics"]["setup"]["count"],
        report["metrics"]["setup"]["count"].as_u64().unwrap() * 2
    );
    let once =
        manifold(&["merge", h, "--json", merged_json.to_str().unwrap()], Duration::from_secs(10));
    assert_eq!(once.status.code(), Some(0), "{}", text(&once));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    assert_eq!(m["metrics"]["e2e"]["count"].as_u64(), Some(single));

    // compare: equal passes; a doubled e2e p99 (and p50) fails.
    let j = json.to_str().unwrap();
    let same = manifold(&["compare", j, j, "--max-regression", "10%"], Duration::from_secs(10));
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let mut worse = report.clone();
    for p in ["p50", "p99"] {
        let v = worse["metrics"]["e2e"][p].as_u64().unwrap();
        worse["metrics"]["e2e"][p] = serde_json::json!(v * 2 + 2000);
    }
    let worse_path = dir.join("worse.json");
    std::fs::write(&worse_path, serde_json::to_string(&worse).unwrap()).unwrap();
    let regressed = manifold(
        &["compare", j, worse_path.to_str().unwrap(), "--max-regression", "10%"],
        Duration::from_secs(10),
    );
    assert_eq!(regressed.status.code(), Some(99), "{}", text(&regressed));
    assert!(String::from_utf8_lossy(&regressed.stdout).contains("e2e p99"), "{}", text(&regressed));
    let _ = std::fs::remove_dir_all(&dir);
}

fn source_through_relay(transport: &str) {
    if !have("ffmpeg", "-version") {
        return;
    }
    let relay = Relay::start();
    let url = relay.url("/published");
    let mut source = Command::new(BIN)
        .args(["source", &url, "--transport", transport, "--duration", "8s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Beside ffmpeg, the generator: the source's sender reports (about one a second) reach
    // readers through the relay over UDP and interleaved, as ffmpeg's own reports would.
    let load = Command::new(BIN)
        .args(["load", &url, "--clients", "2", "--duration", "3s", "--transport", "mix:50"])
        .args(["--quiet", "--threshold", "errors<1", "--threshold", "sender_reports>=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = run_bounded(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-rtsp_transport",
            "tcp",
            "-i",
            &url,
            "-t",
            "3",
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(20),
    )
    .expect("ffmpeg finished");
    let loaded = load.wait_with_output().unwrap();
    let _ = source.kill();
    let published = source.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&read.stderr);
    assert!(read.status.success(), "ffmpeg: {err}\nsource: {}", text(&published));
    assert_eq!(loaded.status.code(), Some(0), "{}", text(&loaded));
    assert!(err.contains("h264"), "{err}");
    let frames: u64 = err
        .rsplit("frame=")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 50, "ffmpeg decoded {frames} frames\n{err}");
}

#[test]
fn source_over_tcp_publishes_to_our_relay_and_ffmpeg_decodes() {
    source_through_relay("tcp");
}

#[test]
fn source_over_udp_publishes_to_our_relay_and_ffmpeg_decodes() {
    source_through_relay("udp");
}

#[test]
fn a_high_bitrate_udp_publisher_loses_nothing_on_its_way_into_the_relay() {
    // A 40 Mbit/s publisher sends each frame at once: a keyframe is a burst of several hundred
    // KiB into the shard's server RTP port. With the kernel's default receive buffer there
    // (208 KiB) the relay lost 14% of the packets upstream of every reader; 4 MiB holds it.
    let relay = Relay::start();
    let url = relay.url("/udp-publisher");
    let mut source = Command::new(BIN)
        .args(["source", &url, "--transport", "udp", "--bitrate", "40000000", "--quiet"])
        .args(["--duration", "10s"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let read = manifold(
        &[
            "load",
            &url,
            "--clients",
            "2",
            "--duration",
            "5s",
            "--transport",
            "tcp",
            "--quiet",
            "--threshold",
            "loss.ratio<0.0001",
            "--threshold",
            "errors<1",
        ],
        Duration::from_secs(30),
    );
    let _ = source.kill();
    let published = source.wait_with_output().unwrap();
    assert_eq!(read.status.code(), Some(0), "{}\nsource: {}", text(&read), text(&published));
}

#[test]
fn a_republished_source_reads_as_one_stream_through_our_relay() {
    // A publisher replaced within the relay's grace: the readers' stream goes on (same SSRC,
    // sequence numbers and RTP times continued, sender reports mapped alike). The second
    // source's packet counters are its own (a random base), so the generator counts them as
    // a new source's, not as 500 duplicates of the first one's; and the relayed sender
    // reports still place the media where its capture times say.
    let relay = Relay::start_with(&["--publish-grace-secs", "10"]);
    let url = relay.url("/republished");
    let source = |duration: &str, transport: &str| {
        Command::new(BIN)
            .args(["source", &url, "--quiet", "--duration", duration, "--transport", transport])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = source("3s", "tcp");
    std::thread::sleep(Duration::from_millis(700));
    let load = Command::new(BIN)
        .args(["load", &url, "--clients", "2", "--duration", "6s", "--transport", "mix:50"])
        .args(["--quiet", "--threshold", "errors<1", "--threshold", "duplicates<1"])
        .args(["--threshold", "reordered<1", "--threshold", "sr_offset.max<50ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "first source: {}", text(&first));
    let second = source("4s", "udp");
    let loaded = load.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert!(second.status.success(), "second source: {}", text(&second));
    let out = text(&loaded);
    assert_eq!(loaded.status.code(), Some(0), "{out}");
    assert!(out.contains("sessions: 2 scheduled, 2 started, 2 played, 2 ok"), "{out}");
}
