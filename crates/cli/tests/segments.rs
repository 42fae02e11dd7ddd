//! One run over several generator machines (`manifold load --segment I/N --start-at T`, then
//! `manifold merge`), on one machine: the same schedule run whole, and as two segments at once
//! against the same relay, must give the same sessions and, within timing, the same packets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::{run_bounded, text, wait_timeout, Relay};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");

/// The schedule: 40 lanes over 1 s, each a 1.5 s session and then one that ends in the 2 s
/// ramp-down (80 sessions), half UDP (the draws of `--seed`). The shortest hold is about
/// 0.5 s, far more than a setup on loopback, so that every session plays in both runs.
const SCHEDULE: [&str; 16] = [
    "--clients",
    "40",
    "--duration",
    "5s",
    "--ramp",
    "1s",
    "--ramp-down",
    "2s",
    "--hold",
    "1500ms",
    "--transport",
    "mix:50",
    "--seed",
    "7",
    "--shards",
    "1",
];

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-segments-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(url: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("load").arg(url).args(SCHEDULE).arg("--quiet").args(extra).env("RUST_LOG", "warn");
    cmd
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn count(report: &serde_json::Value, group: &str, key: &str) -> u64 {
    report[group][key].as_u64().unwrap_or_else(|| panic!("no {group}.{key} in {report}"))
}

#[test]
fn two_segments_merged_equal_the_whole_run() {
    let relay = Relay::start(&["--cores", "1", "--synthetic", "/demo"]);
    let url = relay.url("/demo");
    let dir = scratch();
    let whole_json = dir.join("whole.json");
    let whole = run_bounded(
        &mut load(&url, &["--json", whole_json.to_str().unwrap()]),
        Duration::from_secs(30),
    )
    .expect("the whole run finishes");
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    let whole = report(&whole_json);

    // Both segments at once, from a shared start 2 s ahead (Unix seconds, as a script would
    // give it); each writes its hlog with counts.
    let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(2);
    let start = format!("{:.3}", start.as_secs_f64());
    let hlogs: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("seg-{i}.hlog"))).collect();
    let mut segments: Vec<_> = hlogs
        .iter()
        .enumerate()
        .map(|(i, hlog)| {
            let segment = format!("{i}/2");
            load(&url, &["--segment", &segment, "--start-at", &start])
                .arg("--hlog")
                .arg(hlog)
                .stdout(Stdio::null())
                .spawn()
                .expect("start a segment")
        })
        .collect();
    for (i, child) in segments.iter_mut().enumerate() {
        let status = wait_timeout(child, Duration::from_secs(30));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "segment {i}");
    }

    let merged_json = dir.join("merged.json");
    let merged = run_bounded(
        Command::new(BIN).arg("merge").args(&hlogs).args([
            "--json",
            merged_json.to_str().unwrap(),
            "--threshold",
            "errors<1",
        ]),
        Duration::from_secs(10),
    )
    .expect("merge finishes");
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let merged = report(&merged_json);

    // Sessions are the schedule's: exactly the same ones, all played and ended well.
    for key in ["scheduled", "started", "played", "ok"] {
        assert_eq!(count(&merged, "sessions", key), count(&whole, "sessions", key), "{key}");
    }
    let scheduled = count(&whole, "sessions", "scheduled");
    assert_eq!(scheduled, 80, "every lane is replaced once");
    assert_eq!(count(&merged, "sessions", "failed"), 0);
    // Packets follow from the session-seconds the schedule implies, the same in both runs;
    // only setup times and where in the stream each PLAY lands differ: within 5%.
    let (a, b) = (count(&whole, "media", "packets"), count(&merged, "media", "packets"));
    eprintln!("packets: whole run {a}, two segments merged {b}");
    assert!(a > 0 && a.abs_diff(b) * 20 <= a, "packets: whole run {a}, merged segments {b}");
}

#[test]
fn a_start_long_past_is_refused() {
    let out = run_bounded(
        Command::new(BIN).args([
            "load",
            "rtsp://127.0.0.1:9/x",
            "--segment",
            "0/2",
            "--start-at",
            "2020-01-01T00:00:00Z",
        ]),
        Duration::from_secs(10),
    )
    .expect("finishes");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in the past"), "{}", text(&out));
    let out = run_bounded(
        Command::new(BIN).args(["load", "rtsp://127.0.0.1:9/x", "--segment", "2/2"]),
        Duration::from_secs(10),
    )
    .expect("finishes");
    assert_eq!(out.status.code(), Some(2), "a clap error: {}", text(&out));
}
