//! The floor tool end to end: small runs of both transports, and the flags it refuses.

use std::process::Command;

fn floor(args: &[&str]) -> std::process::Output {
    let run = Command::new(env!("CARGO_BIN_EXE_manifold-perf-floor")).args(args).output();
    run.unwrap_or_else(|e| panic!("running manifold-perf-floor: {e}"))
}

#[test]
fn both_transports_deliver_every_packet_and_bill_both_threads() {
    let out =
        floor(&["--seconds", "1", "udp:20:3", "tcp:20:3", "udp:20:1", "udp:20:1+2", "tcp:20:1+2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<&str>> =
        stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    for row in rows {
        let num = |i: usize| row[i].parse::<f64>().unwrap();
        let per_frame: f64 = row[2].split('+').map(|p| p.parse::<f64>().unwrap()).sum();
        let (sent, received, dropped) = (num(3), num(4), num(5));
        // 20 readers, 25 frames/s, one second: 500 frames' packets, give or take a frame's.
        assert!(sent >= 20.0 * 20.0 * per_frame, "{row:?}");
        assert_eq!(dropped, 0.0, "{row:?}");
        // The reader's window is the sender's, give or take a read interval at either end (a
        // frame or two, more when a busy machine makes a thread late: up to a quarter of the
        // window). Counting messages for datagrams would be a third short on `1+2`.
        let slack = (4.0 * 20.0 * per_frame).max(0.25 * sent);
        assert!((received - sent).abs() <= slack, "{row:?}");
        assert!(num(6) > 0.0 && num(7) > 0.0, "both threads' CPU is counted: {row:?}");
        assert!(num(10).is_finite() && num(10) > 0.0, "{row:?}");
    }
}

#[test]
fn refuses_malformed_runs() {
    for bad in ["sctp:10:1", "udp:0:1", "udp:10:0", "udp:10:33", "udp:10:1+0", "udp:10", "udp:x:1"]
    {
        let out = floor(&["--seconds", "1", bad]);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("run"), "{bad}");
    }
}
