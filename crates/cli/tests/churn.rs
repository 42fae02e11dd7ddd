//! Session churn against the real binary: hundreds of sessions a second arrive and leave over
//! UDP and TCP for a bounded time, and the relay must close none of them. A connection's end
//! once shut down a descriptor number after the socket was closed, by when it could be a
//! connection accepted since (on any shard): a few readers per thousand were reset that way.
//! The run is bounded (20 s of arrivals, killed after 90 s) and stays on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::process::Command;
use std::time::Duration;

mod common;
use common::{run_bounded, text, Relay};

#[test]
fn churning_readers_are_never_closed_by_the_server() {
    let relay = Relay::start(&["--synthetic", "/demo", "--synthetic-bitrate", "1000000"]);
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-churn-{}.json", std::process::id()));
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_manifold"))
            .args(["load", &relay.url("/demo")])
            .args(["--clients", "400", "--rate", "300/s", "--hold", "exp:1500ms"])
            .args(["--duration", "20s", "--transport", "mix:50", "--quiet"])
            .args(["--threshold", "errors<1", "--json"])
            .arg(&json)
            .env("RUST_LOG", "warn"),
        Duration::from_secs(90),
    )
    .expect("manifold load finished within 90 s");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).unwrap();
    let _ = std::fs::remove_file(&json);
    let sessions = &report["sessions"];
    let started = sessions["started"].as_u64().unwrap();
    println!(
        "churn: {started} sessions started, {} played, {} ok, {} cut by their hold, errors {}",
        sessions["played"], sessions["ok"], sessions["cut_by_hold"], report["errors"]
    );
    // Enough churn to have hit the reuse race many times over (it cost ~3 per 1,000).
    assert!(started >= 4000, "only {started} sessions started\n{}", text(&out));
    assert_eq!(report["errors"]["total"].as_u64(), Some(0), "{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Every session either played and ended cleanly or was cut by its own hold before PLAY.
    let ok = sessions["ok"].as_u64().unwrap();
    let cut = sessions["cut_by_hold"].as_u64().unwrap();
    assert_eq!(ok + cut, started, "{}", text(&out));
}
