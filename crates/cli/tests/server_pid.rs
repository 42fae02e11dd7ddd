//! `manifold load --server-pid`: what a run cost the server, end to end against our relay and
//! GStreamer's RTSP server (`crates/load/tests/gst_rtsp_server.py`, Python gi): the report's
//! `server` block, its thresholds, the hlog's counts line and `merge`, and a process that does
//! not exist or exits mid-run.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{have_gst_server, run_bounded, text, PortPrinter, Relay};

const GST_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../load/tests/gst_rtsp_server.py");

fn manifold() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_manifold"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("manifold-server-pid-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn verdict<'a>(report: &'a serde_json::Value, threshold: &str) -> &'a serde_json::Value {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["threshold"] == threshold)
        .unwrap_or_else(|| panic!("no verdict for {threshold}: {report}"))
}

#[test]
fn reports_what_the_run_cost_the_relay() {
    let relay =
        Relay::start(&["--cores", "1", "--synthetic", "/demo", "--synthetic-bitrate", "2000000"]);
    let pid = relay.child.id();
    let dir = scratch("relay");
    let (json, hlog) = (dir.join("r.json"), dir.join("r.hlog"));
    let out = run_bounded(
        manifold()
            .args(["load", &relay.url("/demo"), "--clients", "30", "--ramp", "0.5s"])
            .args(["--duration", "3s", "--transport", "mix:50", "--quiet"])
            .args(["--server-pid", &pid.to_string()])
            .args(["--threshold", "server.pkts_per_cpu_s>1000"])
            .args(["--threshold", "server.rss_per_session_kib<1000000"])
            // Cannot hold: the relay used some CPU, so its share is above zero.
            .args(["--threshold", "server.cpu<0"])
            .arg("--json")
            .arg(&json)
            .arg("--hlog")
            .arg(&hlog),
        Duration::from_secs(30),
    )
    .expect("manifold load finished");
    assert_eq!(out.status.code(), Some(99), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains(&format!("server (pid {pid}): CPU")), "{table}");

    let r = read_json(&json);
    let s = &r["server"];
    assert_eq!(s["pids"], serde_json::json!([pid]), "{s}");
    assert_eq!(s["complete"], true, "{s}");
    let cpu_s = s["cpu_s"].as_f64().unwrap();
    assert!(cpu_s > 0.0, "{s}");
    let packets = r["media"]["packets"].as_f64().unwrap();
    assert!(packets > 1000.0, "{r}");
    let rate = s["pkts_per_cpu_s"].as_f64().unwrap();
    assert!((rate - packets / cpu_s).abs() < 1e-6 * rate, "delivered per server CPU-second: {s}");
    assert!(s["generator_pkts_per_cpu_s"].as_f64().unwrap() > 0.0, "{s}");
    let share = s["cpu_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 2.0, "one shard: {s}");
    assert!(s["rss_peak_kib"].as_u64().unwrap() >= s["rss_base_kib"].as_u64().unwrap());
    assert!(s["rss_base_kib"].as_u64().unwrap() > 1000, "{s}");
    let peak = s["peak_sessions"].as_u64().unwrap();
    assert!((1..=30).contains(&peak), "{s}");
    assert!(s["rss_per_session_kib"].as_f64().is_some(), "{s}");
    assert_eq!(verdict(&r, "server.pkts_per_cpu_s>1000")["passed"], true, "{r}");
    assert_eq!(verdict(&r, "server.rss_per_session_kib<1000000")["passed"], true, "{r}");
    let failed = verdict(&r, "server.cpu<0");
    assert_eq!((&failed["passed"], &failed["judged"]), (&false.into(), &true.into()), "{r}");

    // The hlog's counts line carries the server's usage: `merge` judges the same thresholds.
    let log = std::fs::read_to_string(&hlog).unwrap();
    let counts = log.lines().find(|l| l.starts_with("#[manifold-counts]")).expect("counts line");
    assert!(counts.contains("\"server\""), "{counts}");
    let merged_json = dir.join("m.json");
    let merged = run_bounded(
        manifold()
            .arg("merge")
            .arg(&hlog)
            .args(["--threshold", "server.pkts_per_cpu_s>1000", "--json"])
            .arg(&merged_json),
        Duration::from_secs(10),
    )
    .expect("manifold merge finished");
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let m = read_json(&merged_json);
    assert_eq!(m["server"]["cpu_s"], s["cpu_s"], "{m}");
    assert_eq!(m["server"]["pkts_per_cpu_s"], s["pkts_per_cpu_s"], "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_vanishing_server_process_is_said_and_never_judged() {
    let relay = Relay::start(&["--cores", "1", "--synthetic", "/demo"]);
    let load = |extra: &[&str]| {
        run_bounded(
            manifold().args(["load", &relay.url("/demo"), "--clients", "2", "--quiet"]).args(extra),
            Duration::from_secs(30),
        )
        .expect("manifold load finished")
    };

    // No such process (above the kernel's largest pid): refused before the run.
    let out = load(&["--duration", "1s", "--server-pid", "8388608"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--server-pid 8388608: no process 8388608"), "{}", text(&out));

    // A threshold on the server without a process to watch.
    let out = load(&["--duration", "1s", "--threshold", "server.cpu<1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --server-pid"), "{}", text(&out));

    // One of two processes exits mid-run: reported, and its figures are not judged.
    let mut short = Command::new("sleep").arg("1").stdin(Stdio::null()).spawn().unwrap();
    let short_pid = short.id();
    // Reaped as soon as it exits, so its /proc entry goes away.
    let reaper = std::thread::spawn(move || short.wait());
    let dir = scratch("gone");
    let json = dir.join("r.json");
    let relay_pid = relay.child.id().to_string();
    let out = load(&[
        "--duration",
        "3s",
        "--server-pid",
        &relay_pid,
        "--server-pid",
        &short_pid.to_string(),
        "--threshold",
        "server.pkts_per_cpu_s>0",
        "--json",
        json.to_str().unwrap(),
    ]);
    reaper.join().unwrap().unwrap();
    assert_eq!(out.status.code(), Some(1), "cannot judge: {}", text(&out));
    let r = read_json(&json);
    let s = &r["server"];
    assert_eq!(s["complete"], false, "{s}");
    assert!(s["pkts_per_cpu_s"].is_null(), "withheld: {s}");
    let gone = s["processes"][1]["gone_at_s"].as_f64().expect("gone_at_s");
    assert!(gone > 0.5 && gone < 2.5, "{s}");
    assert!(s["notes"][0].as_str().unwrap().contains(&format!("process {short_pid} was gone")));
    assert_eq!(verdict(&r, "server.pkts_per_cpu_s>0")["judged"], false, "{r}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("CANNOT JUDGE"), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reports_what_the_run_cost_gstreamers_rtsp_server() {
    if !have_gst_server() {
        return;
    }
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(GST_SERVER).arg("0").stderr(Stdio::null());
    let server = PortPrinter::start(cmd, "the GStreamer RTSP server");
    let pid = server.child.id();
    let dir = scratch("gst");
    let json = dir.join("r.json");
    let out = run_bounded(
        manifold()
            .args(["load", &format!("rtsp://127.0.0.1:{}/test", server.port)])
            .args(["--clients", "10", "--ramp", "0.5s", "--duration", "3s", "--quiet"])
            .args(["--transport", "mix:50", "--server-pid", &pid.to_string()])
            .args(["--threshold", "server.pkts_per_cpu_s>0", "--threshold", "errors<1"])
            .arg("--json")
            .arg(&json),
        Duration::from_secs(30),
    )
    .expect("manifold load finished");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = read_json(&json);
    let s = &r["server"];
    assert_eq!(s["pids"], serde_json::json!([pid]), "{s}");
    assert_eq!(s["complete"], true, "{s}");
    // GStreamer encodes the stream itself (x264): its CPU shows.
    assert!(s["cpu_s"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["pkts_per_cpu_s"].as_f64().unwrap() > 0.0, "{s}");
    assert!(s["rss_peak_kib"].as_u64().unwrap() > 1000, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}
