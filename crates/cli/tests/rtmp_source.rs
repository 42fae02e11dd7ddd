//! End-to-end tests of `manifold source rtmp://`: the real binary publishes the synthetic
//! stream to ffmpeg acting as an RTMP server (which must decode every frame), and to the
//! relay's `--rtmp-listen`, where 50 `manifold load` readers must see no loss and measure
//! end-to-end latency from the capture time the source carried through RTMP in an SEI, and
//! ffmpeg must decode the RTSP path. Traffic stays on 127.0.0.1. A missing ffmpeg fails
//! under `CI=true`, else the test prints "skipped".

// Test helpers outside #[test] functions: a panic here is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{ffmpeg_reads, free_port, have, run_bounded, text, wait_published, KillOnDrop, Relay};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-rtmp-source-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `manifold source` child, killed when dropped.
fn start_source(url: &str, duration: &str) -> KillOnDrop {
    let child = Command::new(BIN)
        .args(["source", url, "--duration", duration, "--quiet"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start manifold source");
    KillOnDrop(child)
}

#[test]
fn ffmpeg_as_an_rtmp_server_decodes_every_frame() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let server = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-listen", "1", "-i", &url, "-f", "framecrc", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg as an RTMP server");
    // Until ffmpeg listens, the source's connection is refused: retry, boundedly.
    let mut published = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let out = run_bounded(
            Command::new(BIN).args(["source", &url, "--duration", "2s"]).env("RUST_LOG", "warn"),
            Duration::from_secs(30),
        )
        .expect("manifold source finishes in time");
        if out.status.success() {
            published = Some(out);
            break;
        }
        assert!(text(&out).contains("connecting"), "{}", text(&out));
    }
    let published = published.expect("ffmpeg never listened");
    assert!(text(&published).contains("sent 50 frames"), "{}", text(&published));
    let out = server.wait_with_output().expect("ffmpeg ends when the publisher leaves");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {stderr}");
    // ffmpeg reports the end of an RTMP input as an I/O error (its own publisher causes the
    // same); anything else is a problem.
    for line in stderr.lines() {
        assert!(
            line.ends_with("Input/output error") || line.contains("Last message repeated"),
            "ffmpeg reported: {stderr}"
        );
    }
    let frames =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, 50, "2 s at 25 fps decoded");
}

#[test]
fn relayed_rtmp_source_has_no_loss_and_end_to_end_latency() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let rtmp = format!("127.0.0.1:{}", free_port());
    let relay = Relay::start(&["--rtmp-listen", &rtmp]);
    let _source = start_source(&format!("rtmp://{rtmp}/live/cam"), "60s");
    wait_published(&relay, "/live/cam");
    let url = relay.url("/live/cam");

    let dir = scratch("load");
    let json = dir.join("load.json");
    let out = run_bounded(
        Command::new(BIN)
            .args(["load", &url, "--clients", "50", "--duration", "4s", "--quiet", "--json"])
            .arg(&json)
            .env("RUST_LOG", "warn"),
        Duration::from_secs(90),
    )
    .expect("manifold load finishes in time");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["sessions"]["played"], 50, "{report:#}");
    assert_eq!(report["media"]["lost"], 0, "{report:#}");
    assert!(report["media"]["packets"].as_u64().unwrap_or(0) > 50 * 50, "{report:#}");
    let e2e = &report["metrics"]["e2e"];
    assert!(e2e["count"].as_u64().unwrap_or(0) > 50 * 50, "no e2e samples: {report:#}");
    // Same host, same clock: the latency is real and small, not a wild clock difference.
    assert!(e2e["p50"].as_u64().is_some_and(|us| us < 1_000_000), "{e2e:#}");

    ffmpeg_reads(&url, "tcp");
    ffmpeg_reads(&url, "udp");
    let _ = std::fs::remove_dir_all(&dir);
}
