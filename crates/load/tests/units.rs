//! Unit tests of the generator's sans-IO parts: thresholds, histogram merge, the arrival
//! schedule and its pacing against a virtual clock, and the report's JSON schema.
// Tests may unwrap: a panic here is a failed test, not a crashed generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use manifold_load::health::{FdBudget, Health};
use manifold_load::metrics::{ErrorKind, Metric, Metrics};
use manifold_load::report::{Report, RunConfig, SCHEMA};
use manifold_load::schedule::{ArrivalProcess, Hold, Pacer, Schedule, ScheduleConfig};
use manifold_load::threshold::{Op, Stat, Subject, Threshold};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> RunConfig {
    RunConfig {
        url: "rtsp://127.0.0.1/test".into(),
        clients: 2,
        rate: 2.0,
        duration_s: 1.0,
        ramp_down_s: 0.0,
        arrivals: "uniform".into(),
        no_play: false,
        cpus: Vec::new(),
        hold: "1s".into(),
        transport: "udp".into(),
        processes: 1,
        tracks: 1,
        seed: 1,
    }
}

fn report(metrics: &Metrics, thresholds: &[Threshold]) -> Report {
    let fd = FdBudget::compute(20_000, 20_000, 10, 3, 2);
    let health = Health::assess(metrics, 2, ms(100), ms(1000), fd);
    Report::build(config(), metrics, 1.0, health, thresholds)
}

#[test]
fn thresholds_parse() {
    let t = Threshold::parse("e2e.p99<5ms").unwrap();
    assert_eq!(t.subject, Subject::Metric(Metric::E2e, Stat::Percentile(99.0)));
    assert_eq!(t.op, Op::Lt);
    assert_eq!(t.limit, 5000.0);

    let t = Threshold::parse("setup.p99.9 <= 0.2s").unwrap();
    assert_eq!(t.subject, Subject::Metric(Metric::Setup, Stat::Percentile(99.9)));
    assert_eq!(t.op, Op::Le);
    assert_eq!(t.limit, 200_000.0);

    let t = Threshold::parse("rtt.setup.max<250").unwrap();
    assert_eq!(t.subject, Subject::Metric(Metric::RttSetup, Stat::Max));
    assert_eq!(t.limit, 250_000.0, "a bare number on a duration is milliseconds");

    let t = Threshold::parse("gap.count>=10").unwrap();
    assert_eq!(t.subject, Subject::Metric(Metric::Gap, Stat::Count));
    assert_eq!(t.limit, 10.0);

    let t = Threshold::parse("loss.ratio<1%").unwrap();
    assert_eq!(t.subject, Subject::Value("loss.ratio".into()));
    assert!((t.limit - 0.01).abs() < 1e-12);

    let t = Threshold::parse("errors<1").unwrap();
    assert_eq!(t.subject, Subject::Value("errors".into()));
    assert_eq!(t.op, Op::Lt);

    for bad in ["e2e.p99", "e2e<5ms", "e2e.p101<5ms", "e2e.p99<fast", "<3", "errors<"] {
        assert!(Threshold::parse(bad).is_err(), "{bad} should not parse");
    }
}

#[test]
fn thresholds_evaluate() {
    let mut m = Metrics::new();
    for v in 1..=1000u64 {
        m.record_us(Metric::E2e, v * 10); // 10 us .. 10 ms
    }
    m.counts.packets = 990;
    m.counts.lost = 10;
    let pass = Threshold::parse("e2e.p50<6ms").unwrap();
    let fail = Threshold::parse("e2e.p99<5ms").unwrap();
    let loss_ok = Threshold::parse("loss.ratio<=0.01").unwrap();
    let loss_bad = Threshold::parse("loss.ratio<0.005").unwrap();
    let errors = Threshold::parse("errors<1").unwrap();
    let empty = Threshold::parse("first_rtp.p99<1s").unwrap();
    let r = report(&m, &[pass, fail, loss_ok, loss_bad, errors, empty]);
    let passed: Vec<bool> = r.thresholds.iter().map(|v| v.passed).collect();
    assert_eq!(passed, [true, false, true, false, true, false]);
    assert!(r.thresholds[5].actual.is_none(), "an empty histogram has no value and fails");
    assert!(!r.passed);

    let mut m2 = m.clone();
    m2.error(ErrorKind::Status, Some(454), || "x".into());
    let r = report(
        &m2,
        &[Threshold::parse("errors<1").unwrap(), Threshold::parse("errors.454>=1").unwrap()],
    );
    assert!(!r.thresholds[0].passed);
    assert!(r.thresholds[1].passed);
}

#[test]
fn histograms_merge_by_adding_never_averaging() {
    // Shard A: 990 fast values; shard B: 10 slow ones. The merged p99.5 must be slow, which
    // no average of per-shard percentiles would give.
    let mut a = Metrics::new();
    let mut b = Metrics::new();
    for _ in 0..990 {
        a.record(Metric::Setup, ms(1));
    }
    for _ in 0..10 {
        b.record(Metric::Setup, ms(500));
    }
    a.counts.packets = 5;
    b.counts.packets = 7;
    b.error(ErrorKind::Timeout, None, || "slow".into());
    let mut merged = Metrics::new();
    merged.merge(&a);
    merged.merge(&b);
    let h = merged.histogram(Metric::Setup);
    assert_eq!(h.len(), 1000);
    assert!(h.value_at_quantile(0.5) < 1100);
    assert!(h.value_at_quantile(0.995) > 490_000);
    assert!(h.max() >= 500_000 && h.max() < 501_000);
    assert_eq!(merged.counts.packets, 12);
    assert_eq!(merged.errors(), 1);
    assert_eq!(merged.counts.failed, 1);
}

#[test]
fn open_model_schedule_is_fixed_in_advance() {
    let s = Schedule::new(ScheduleConfig {
        clients: 4,
        rate: 2.0,
        duration: Duration::from_secs(10),
        ramp_down: Duration::ZERO,
        process: ArrivalProcess::Uniform,
        hold: Hold::Fixed(Duration::from_secs(3)),
        udp_share: 0.5,
        seed: 7,
    });
    let arrivals: Vec<_> = s.arrivals().collect();
    // Ramp: 0, 0.5, 1.0, 1.5 s; then each replaces one at its intended end: 3, 3.5, 4, 4.5,
    // 6, 6.5, 7, 7.5, 9, 9.5 (and none at or after 10 s).
    let starts: Vec<u128> = arrivals.iter().map(|a| a.at.as_millis()).collect();
    assert_eq!(
        starts,
        [0, 500, 1000, 1500, 3000, 3500, 4000, 4500, 6000, 6500, 7000, 7500, 9000, 9500]
    );
    assert!(arrivals.iter().enumerate().all(|(i, a)| a.index == i as u64));
    // Holds are cut at the end of the run.
    assert_eq!(arrivals[12].hold, Duration::from_secs(1));
    assert_eq!(arrivals[0].hold, Duration::from_secs(3));
    // Intended concurrency never exceeds `clients`.
    for t in (0..10_000).step_by(100) {
        let t = ms(t);
        let live = arrivals.iter().filter(|a| a.at <= t && t < a.at + a.hold).count();
        assert!(live <= 4, "{live} sessions at {t:?}");
    }
    // Repeatable from the seed; the mix draws roughly the share asked.
    let again: Vec<_> = s.arrivals().collect();
    assert_eq!(arrivals, again);
    let udp = arrivals.iter().filter(|a| a.udp).count();
    assert!(udp > 0 && udp < arrivals.len());
}

#[test]
fn hold_distributions() {
    assert_eq!("5s".parse::<Hold>().unwrap(), Hold::Fixed(Duration::from_secs(5)));
    assert_eq!("uniform:1s-3s".parse::<Hold>().unwrap(), Hold::Uniform(ms(1000), ms(3000)));
    assert_eq!("exp:2s".parse::<Hold>().unwrap(), Hold::Exponential(ms(2000)));
    assert!("uniform:3s-1s".parse::<Hold>().is_err());
    assert_eq!(Hold::Uniform(ms(1000), ms(3000)).sample(0.5), ms(2000));
    let mean = Hold::Exponential(ms(2000));
    let avg: f64 =
        (0..10_000).map(|i| mean.sample(i as f64 / 10_000.0).as_secs_f64()).sum::<f64>() / 1e4;
    assert!((avg - 2.0).abs() < 0.1, "exponential mean {avg}");
}

#[test]
fn pacing_counts_starts_behind_schedule_on_a_virtual_clock() {
    // 50 arrivals/s (every 20 ms), but a generator that needs 30 ms per start: it falls
    // further behind with every start. The pacer never delays; it counts.
    let s = Schedule::new(ScheduleConfig {
        clients: 20,
        rate: 50.0,
        duration: Duration::from_secs(60),
        ramp_down: Duration::ZERO,
        process: ArrivalProcess::Uniform,
        hold: Hold::Fixed(Duration::from_secs(60)),
        udp_share: 1.0,
        seed: 1,
    });
    let mut pacer = Pacer::new(ms(10));
    let mut clock = Duration::ZERO;
    let mut lags = Vec::new();
    for a in s.arrivals() {
        clock = clock.max(a.at); // sleep until the intended start if early
        lags.push(pacer.start(a.at, clock));
        clock += ms(30); // the start itself takes 30 ms
    }
    assert_eq!(pacer.started(), 20);
    // Lag of start i is 10 ms * i: behind (> 10 ms) from i = 2 on.
    assert_eq!(lags[1], ms(10));
    assert_eq!(pacer.behind(), 18);
    assert_eq!(pacer.worst(), ms(190));

    // A generator that keeps up has nothing behind.
    let mut pacer = Pacer::new(ms(10));
    for a in s.arrivals() {
        pacer.start(a.at, a.at + ms(1));
    }
    assert_eq!(pacer.behind(), 0);
}

#[test]
fn fd_budget_says_how_many_fit() {
    let fd = FdBudget::compute(20_000, 20_000, 36, 3, 2);
    // 20,000 - (64 + 2 * 16 + 36) = 19,868 descriptors, 3 per UDP session.
    assert_eq!(fd.fits, 6622);
    assert_eq!(FdBudget::compute(100, 100, 90, 3, 2).fits, 0);
}

#[test]
fn report_json_schema() {
    let mut m = Metrics::new();
    m.record(Metric::E2e, ms(3));
    m.record(Metric::Setup, ms(20));
    m.counts.packets = 100;
    m.counts.bytes = 120_000;
    m.counts.started = 2;
    m.counts.ok = 2;
    let r = report(&m, &[Threshold::parse("e2e.p99<5ms").unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    assert_eq!(v["schema"], "manifold-load/1");
    for key in [
        "config",
        "elapsed_s",
        "sessions",
        "setups_per_s",
        "media",
        "metrics",
        "errors",
        "health",
        "thresholds",
        "passed",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let e2e = &v["metrics"]["e2e"];
    assert_eq!(e2e["unit"], "us");
    for key in ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(e2e.get(key).is_some(), "e2e lacks {key}");
    }
    assert!(e2e["p99"].as_u64().unwrap() >= 2990 && e2e["p99"].as_u64().unwrap() <= 3010);
    assert!(v["metrics"].get("jitter").is_none(), "empty metrics are left out");
    assert_eq!(v["media"]["packets"], 100);
    assert_eq!(v["sessions"]["ok"], 2);
    assert_eq!(v["thresholds"][0]["threshold"], "e2e.p99<5ms");
    assert_eq!(v["thresholds"][0]["passed"], true);
    assert_eq!(v["health"]["generator_limited"], false);
    assert_eq!(v["passed"], true);
    let table = r.table();
    assert!(
        table.contains("e2e")
            && table.contains("p99.9")
            && table.contains("threshold e2e.p99<5ms: pass")
    );
}

#[test]
fn hlog_intervals_merge_across_shards_and_read_back() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use manifold_load::hlog::{self, IntervalRecorder};

    // Two shards, two intervals each.
    let mut shards = [IntervalRecorder::new(), IntervalRecorder::new()];
    for (s, rec) in shards.iter_mut().enumerate() {
        for i in 0..2u64 {
            let mut m = Metrics::new();
            for v in 0..100u64 {
                m.record_us(Metric::E2e, 1000 * (1 + i) + v + 10 * s as u64);
            }
            rec.close(i, &m);
        }
        assert_eq!(rec.total.histogram(Metric::E2e).len(), 200);
    }
    let blobs: Vec<_> = shards.iter().flat_map(|r| r.blobs.clone()).collect();
    let path = std::env::temp_dir().join(format!("manifold-load-{}.hlog", std::process::id()));
    hlog::write(&path, &blobs, std::time::SystemTime::now(), None).unwrap();
    let text = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut de = Deserializer::new();
    let mut seen = Vec::new();
    for entry in IntervalLogIterator::new(&text) {
        if let LogEntry::Interval(h) = entry.unwrap() {
            let bytes = base64_decode(h.encoded_histogram());
            let hist: hdrhistogram::Histogram<u64> = de.deserialize(&mut bytes.as_slice()).unwrap();
            seen.push((h.tag().unwrap().as_str().to_owned(), h.start_timestamp(), hist.len()));
        }
    }
    assert_eq!(
        seen,
        [("e2e".to_owned(), Duration::ZERO, 200), ("e2e".to_owned(), Duration::from_secs(1), 200)]
    );
}

/// Standard base64 (the hlog's histogram encoding), enough for the test.
fn base64_decode(s: &str) -> Vec<u8> {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = table.iter().position(|&t| t == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn junit_lists_every_threshold() {
    let mut m = Metrics::new();
    m.record(Metric::Setup, ms(20));
    let r = report(
        &m,
        &[Threshold::parse("setup.p99<1s").unwrap(), Threshold::parse("setup.max<5ms").unwrap()],
    );
    let xml = manifold_load::junit::to_xml(&r);
    assert!(xml.contains("tests=\"3\" failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"setup.p99&lt;1s\""));
    assert!(xml.contains("<failure message=\"setup.max&lt;5ms failed"));
}

#[test]
fn metrics_cross_the_process_boundary_intact() {
    use manifold_load::workers::WorkerSpec;
    let mut m = Metrics::new();
    for v in 1..=500u64 {
        m.record_us(Metric::Setup, v * 100);
    }
    m.counts.packets = 42;
    m.error(ErrorKind::Refused, None, || "refused".into());
    m.error(ErrorKind::Status, Some(503), || "busy".into());
    let json = serde_json::to_string(&m.to_wire()).unwrap();
    let back = Metrics::from_wire(&serde_json::from_str(&json).unwrap());
    assert_eq!(back.histogram(Metric::Setup), m.histogram(Metric::Setup));
    assert_eq!(back.counts, m.counts);
    assert_eq!(back.errors_by_kind, m.errors_by_kind);
    assert_eq!(back.errors_by_status, m.errors_by_status);

    let spec =
        WorkerSpec { index: 1, parts: 3, start_unix_ns: 1_700_000_000_123_456_789, clients: 90 };
    assert_eq!(WorkerSpec::parse(&spec.to_arg()).unwrap(), spec);
    assert!(WorkerSpec::parse("3/3/0/10").is_err());
}
