//! Counts travel in interval logs: `manifold merge` of the hlogs of a split run gives the
//! counts one run with both workloads would have reported, so every threshold of
//! `manifold load` works on the merge; logs without counts cannot have thresholds on counts
//! judged, and say so (exit code 1) instead of passing.
// Tests may unwrap: a panic here is a failed test, not a crashed generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use manifold_load::health::{FdBudget, Health};
use manifold_load::hlog::{self, IntervalRecorder, RunCounts};
use manifold_load::merge::{merge, read_hlog, MergeError};
use manifold_load::metrics::{ErrorKind, Metric, Metrics};
use manifold_load::report::{Report, RunConfig};
use manifold_load::threshold::Threshold;

fn config() -> RunConfig {
    RunConfig {
        url: "rtsp://127.0.0.1/test".into(),
        clients: 10,
        rate: 10.0,
        duration_s: 3.0,
        ramp_down_s: 0.0,
        arrivals: "uniform".into(),
        no_play: false,
        cpus: vec![0],
        hold: "3s".into(),
        transport: "udp".into(),
        processes: 1,
        tracks: 1,
        seed: 1,
    }
}

/// The report `manifold load` builds from a run's merged metrics (3 s, one core).
fn load_report(m: &Metrics, thresholds: &[Threshold]) -> Report {
    let fd = FdBudget::compute(20_000, 20_000, 20, 3, 1);
    let health = Health::assess(m, 1, Duration::from_millis(600), Duration::from_secs(3), fd);
    Report::build(config(), m, 3.0, health, thresholds)
}

/// One generator's measurements: `sessions` sessions, one failed with `failure`.
fn workload(
    sessions: u64,
    packets: u64,
    gap_ms: u64,
    failure: (ErrorKind, Option<u16>),
) -> Metrics {
    let mut m = Metrics::new();
    let c = &mut m.counts;
    c.scheduled = sessions + 1;
    c.started = sessions;
    c.played = sessions - 1;
    c.ok = sessions - 1;
    c.behind_schedule = 1;
    c.clipped = 1;
    c.packets = packets;
    c.bytes = packets * 1200;
    c.lost = packets / 100;
    c.duplicates = 2;
    c.reordered = 3;
    c.malformed = 1;
    c.rxq_drops = 4;
    c.counted_by_counter = packets;
    m.error(failure.0, failure.1, || format!("{:?} failure", failure.0));
    for i in 0..sessions - 1 {
        m.record(Metric::Setup, Duration::from_millis(20 + i));
    }
    for i in 0..packets {
        m.record_us(Metric::Gap, 40_000 + i % 7);
    }
    m.record(Metric::Gap, Duration::from_millis(gap_ms));
    m
}

/// Writes `m` as an hlog of three one-second intervals, with its counts line if `counts`.
fn write_hlog(path: &Path, m: &Metrics, counts: bool) {
    let mut rec = IntervalRecorder::new();
    // The histograms in the first interval, timer lag in the next two.
    rec.close(0, m);
    let mut lag = Metrics::new();
    lag.record(Metric::TimerLag, Duration::from_micros(300));
    rec.close(1, &lag);
    rec.close(2, &lag);
    let report = load_report(m, &[]);
    let run = RunCounts::of(m, &report);
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    hlog::write(path, &rec.blobs, start, counts.then_some(&run)).unwrap();
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("manifold-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn merged_counts_equal_one_run_with_both_workloads() {
    let dir = Dir::new("counts");
    let a = workload(6, 900, 250, (ErrorKind::Status, Some(503)));
    let b = workload(4, 700, 120, (ErrorKind::Timeout, None));
    let (pa, pb) = (dir.file("a.hlog"), dir.file("b.hlog"));
    write_hlog(&pa, &a, true);
    write_hlog(&pb, &b, true);
    let mut both = a.clone();
    both.merge(&b);

    let thresholds = [
        "errors<1",
        "errors<3",
        "errors.503>=1",
        "errors.timeout>=1",
        "sessions.ok>=8",
        "sessions.ok>8",
        "loss<16",
        "loss.ratio<0.0099",
        "duplicates<=4",
        "reordered<6",
        "packets>=1600",
        "gap.max<250ms",
        "setup.count>=8",
        "setups_per_s>2",
        "rxq_drops<8",
        "clipped<2",
        "behind_schedule<=2",
    ];
    let merged = merge(&[pa.clone(), pb.clone()], &thresholds.map(String::from)).unwrap();
    let parsed: Vec<Threshold> = thresholds.iter().map(|t| Threshold::parse(t).unwrap()).collect();
    let single = load_report(&both, &parsed);

    assert!(merged.counts_missing_from.is_empty());
    assert_eq!(merged.sessions, single.sessions);
    assert_eq!(merged.sessions.ok, 8);
    assert_eq!(merged.sessions.failed, 2);
    assert_eq!(merged.media, single.media);
    assert_eq!(merged.media.packets, 1600);
    assert_eq!(merged.media.lost, 16);
    assert_eq!(merged.errors.total, 2);
    assert_eq!(merged.errors.by_status, single.errors.by_status);
    assert_eq!(merged.errors.by_kind, single.errors.by_kind);
    assert_eq!(merged.errors.samples.len(), 2);
    assert_eq!(merged.setups_per_s, single.setups_per_s);
    // The longest gap is the larger of the two runs' (histograms add; max of maxima).
    assert_eq!(merged.metrics["gap"].max, single.metrics["gap"].max);
    assert!(merged.metrics["gap"].max >= 249_000);
    assert_eq!(merged.health.rxq_drops, 8);
    assert_eq!(merged.health.clipped, 2);
    assert_eq!(merged.health.shards, 2, "cores add up");
    assert!((merged.health.cpu_seconds - 1.2).abs() < 1e-9, "CPU time adds up");
    assert_eq!(merged.elapsed_s, 3.0);

    let verdicts: Vec<(&str, bool)> =
        merged.thresholds.iter().map(|v| (v.threshold.as_str(), v.passed)).collect();
    let expected: Vec<(&str, bool)> =
        single.thresholds.iter().map(|v| (v.threshold.as_str(), v.passed)).collect();
    assert_eq!(verdicts, expected);
    assert_eq!(
        verdicts,
        [
            ("errors<1", false),
            ("errors<3", true),
            ("errors.503>=1", true),
            ("errors.timeout>=1", true),
            ("sessions.ok>=8", true),
            ("sessions.ok>8", false),
            ("loss<16", false),
            ("loss.ratio<0.0099", false),
            ("duplicates<=4", true),
            ("reordered<6", false),
            ("packets>=1600", true),
            ("gap.max<250ms", false),
            ("setup.count>=8", true),
            ("setups_per_s>2", true),
            ("rxq_drops<8", false),
            ("clipped<2", false),
            ("behind_schedule<=2", true),
        ]
    );
    assert!(merged.thresholds.iter().all(|v| v.judged));
    assert_eq!(merged.exit_code(), 99);

    // Thresholds that hold give exit code 0.
    let ok = merge(&[pa, pb], &["errors<=2".to_owned(), "sessions.ok>=8".to_owned()]).unwrap();
    assert!(ok.passed);
    assert_eq!(ok.exit_code(), 0);
}

#[test]
fn the_counts_line_is_a_comment_to_hlog_readers() {
    let dir = Dir::new("counts-comment");
    let m = workload(3, 50, 80, (ErrorKind::Reset, None));
    let (with, without) = (dir.file("with.hlog"), dir.file("without.hlog"));
    write_hlog(&with, &m, true);
    write_hlog(&without, &m, false);
    let text = std::fs::read(&with).unwrap();
    let counts_lines = String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| l.starts_with("#[manifold-counts] {"))
        .count();
    assert_eq!(counts_lines, 1);
    // A standard reader sees the same intervals in both files and no error.
    let entries = |bytes: &[u8]| -> Vec<(String, Duration)> {
        IntervalLogIterator::new(bytes)
            .map(|e| e.unwrap())
            .filter_map(|e| match e {
                LogEntry::Interval(h) => {
                    Some((h.tag().unwrap().as_str().to_owned(), h.start_timestamp()))
                }
                _ => None,
            })
            .collect()
    };
    let plain = std::fs::read(&without).unwrap();
    assert_eq!(entries(&text), entries(&plain));
    assert!(!entries(&text).is_empty());
    // Read back: the counts are the run's.
    let back = read_hlog(&with).unwrap().counts.expect("counts line read");
    assert_eq!(Metrics::from_wire(&back.metrics).counts, m.counts);
    assert!(read_hlog(&without).unwrap().counts.is_none());

    // A counts line that does not parse is an error, not silently no counts.
    let broken = dir.file("broken.hlog");
    let mut bytes = plain.clone();
    bytes.extend_from_slice(b"#[manifold-counts] {\"schema\":\"manifold-counts/1\",\"elapsed\n");
    std::fs::write(&broken, bytes).unwrap();
    let err = read_hlog(&broken).unwrap_err();
    assert!(err.to_string().contains("counts line does not parse"), "{err}");
}

#[test]
fn logs_without_counts_cannot_have_count_thresholds_judged() {
    let dir = Dir::new("no-counts");
    let m = workload(3, 50, 80, (ErrorKind::Reset, None));
    let (with, without) = (dir.file("with.hlog"), dir.file("old.hlog"));
    write_hlog(&with, &m, true);
    write_hlog(&without, &m, false);

    // Histogram thresholds still work; the report says the counts are missing, and where.
    let r = merge(&[with.clone(), without.clone()], &["gap.max<1s".to_owned()]).unwrap();
    assert_eq!(r.counts_missing_from, [without.display().to_string()]);
    assert!(r.passed);
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.value("errors"), None, "zero errors here is not a measurement");
    assert!(r.table().contains("not available (no counts in"), "{}", r.table());

    // A threshold on counts is an error naming the file (exit code 1), never a pass, even
    // when one of the files has counts.
    for files in [vec![without.clone()], vec![with.clone(), without.clone()]] {
        let err = merge(&files, &["errors<1".to_owned(), "gap.max<1s".to_owned()]).unwrap_err();
        assert!(
            matches!(&err, MergeError::CannotJudge { thresholds, .. } if thresholds == &["errors<1"])
        );
        assert!(err.to_string().contains("old.hlog"), "{err}");
        assert_eq!(err.exit_code(), 1);
    }

    // The same verdict inside a report: not judged, exit code 1.
    let t = [Threshold::parse("sessions.ok>=1").unwrap()];
    let health = Health::assess(
        &m,
        1,
        Duration::ZERO,
        Duration::from_secs(1),
        FdBudget::compute(0, 0, 0, 1, 0),
    );
    let r =
        Report::build_with_counts_missing(config(), &m, 1.0, health, &t, vec!["old.hlog".into()]);
    assert!(!r.thresholds[0].judged);
    assert!(!r.passed);
    assert_eq!(r.exit_code(), 1);
    assert!(r.table().contains("threshold sessions.ok>=1: CANNOT JUDGE (actual not measured)"));
}
