//! The scenario's section of `perf/RESULTS.md`: written between two marker comments, so a
//! new run replaces its own section and leaves the rest of the file alone.

use std::fmt::Write as _;

use crate::measure::Measurement;
use crate::results::ScenarioResult;

/// The section for `result`, markers included.
pub(crate) fn section(result: &ScenarioResult, svg_name: Option<&str>) -> String {
    let s = &result.scenario;
    let m = &result.machine;
    let mut out = String::new();
    let _ = writeln!(out, "{}", begin_marker(&s.name));
    let _ = writeln!(out, "### `{}`: {}\n", s.name, s.description);
    let _ = writeln!(
        out,
        "Reproduce: `perf/run perf/scenarios/{}.toml`. Run {} UTC{}.\n",
        s.name,
        utc(result.started_unix),
        result.commit.as_deref().map(|c| format!(" at `{c}`")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "- Machine: `nproc` {}, {}, kernel {}; load average {:.2} at the start, {:.2} at the \
         end (a shared machine: read the ratios, which are taken side by side in this run).",
        m.nproc, m.cpu, m.kernel, m.load_start, m.load_end
    );
    let _ = writeln!(
        out,
        "- Stream: the synthetic H.264 stream at {:.2} Mbit/s, {} fps, GOP {}, RTP packets of at \
         most {} bytes (~{:.0} packets/s), sent by `manifold source rtp://` to every target.",
        s.stream.bitrate as f64 / 1e6,
        s.stream.fps,
        s.stream.gop,
        s.stream.mtu,
        s.nominal_packet_rate()
    );
    let _ = writeln!(
        out,
        "- Readers: `manifold load --transport {}`, {} s runs with a {} s ramp{}. CPUs: servers \
         on {} (relay-all on {}), source and generator on {}.",
        s.readers.transport,
        s.run.duration_s,
        s.run.ramp_s,
        s.run
            .arrival_rate
            .map(|r| format!(
                " (at most {r} arrivals/s: a larger rung ramps for longer and runs longer by \
                 as much)"
            ))
            .unwrap_or_default(),
        result.cpus.server,
        result.cpus.all,
        result.cpus.generator
    );
    let _ = writeln!(
        out,
        "- Server CPU is user + system time of the server process from /proc over the whole \
         generator run (setup and teardown included); loopback delivery into the readers' \
         sockets is charged to the sender, as it is for every target. e2e is capture time in \
         the source to arrival at the reader: an upper bound on the server's added latency.\n"
    );
    out.push_str(
        "| readers | target | delivered pkts | server CPU s | pkts / CPU-s | steady CPU | \
         e2e p50 / p99 / p99.9 ms | loss | RSS base → peak MiB | sessions ok / failed | note |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- |\n",
    );
    for r in &result.runs {
        let _ = writeln!(out, "{}", row(r));
    }
    if !result.ratios.is_empty() {
        out.push_str(
            "\nRatios of delivered packets per server CPU-second, same run, same readers (the \
             issue's target in brackets; relay-all/relay-1 near 1.0 means the second shard \
             costs nothing extra per packet):\n\n| readers | ratio | value | target | met |\n\
             | ---: | --- | ---: | ---: | --- |\n",
        );
        for q in &result.ratios {
            let target = q.target.map(|t| format!("≥ {t}")).unwrap_or_default();
            let met = match q.target {
                Some(t) if q.value >= t => "yes",
                Some(_) => "no",
                None => "",
            };
            let _ =
                writeln!(out, "| {} | {} | {:.2} | {target} | {met} |", q.readers, q.name, q.value);
        }
    }
    if !result.idle.is_empty() {
        out.push_str(
            "\nIdle sessions (DESCRIBE + SETUP, no PLAY), server RSS growth per session \
             (target ≤ 4 KiB; kernel socket memory is not in RSS):\n\n\
             | target | sessions | RSS base → peak MiB | per session KiB | met |\n\
             | --- | ---: | --- | ---: | --- |\n",
        );
        for r in &result.idle {
            let per = r.rss_per_reader_b / 1024.0;
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} → {:.1} | {per:.2} | {} |",
                r.target,
                r.sessions_ok,
                r.rss_base_kib as f64 / 1024.0,
                r.rss_peak_kib as f64 / 1024.0,
                if per <= 4.0 { "yes" } else { "no" }
            );
        }
    }
    if !result.verdicts.is_empty() {
        out.push_str("\nGate:\n\n");
        for v in &result.verdicts {
            let mark = if v.passed { "pass" } else { "FAIL" };
            let _ = writeln!(out, "- {mark}: {} (measured {:.4})", v.rule, v.value);
        }
    }
    if !result.failures.is_empty() {
        out.push_str("\nRuns that failed:\n\n");
        for f in &result.failures {
            let _ = writeln!(out, "- {}", f.replace('\n', " "));
        }
    }
    if !result.skipped.is_empty() {
        out.push_str("\nLeft out:\n\n");
        for f in &result.skipped {
            let _ = writeln!(out, "- {f}");
        }
    }
    if let Some(svg) = svg_name {
        let _ = writeln!(out, "\nCost growth: ![server CPU and memory against readers]({svg})");
    }
    let _ = writeln!(out, "{}", end_marker(&s.name));
    out
}

fn row(r: &Measurement) -> String {
    let e2e = r
        .e2e
        .as_ref()
        .map(|l| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                l.p50_us as f64 / 1e3,
                l.p99_us as f64 / 1e3,
                l.p99_9_us as f64 / 1e3
            )
        })
        .unwrap_or_else(|| "n/a".into());
    let mut note = Vec::new();
    if r.generator_limited {
        note.push(format!("generator-limited: {}", r.generator_reasons.join("; ")));
    }
    if r.errors > 0 {
        note.push(format!("{} errors", r.errors));
    }
    format!(
        "| {} | {} | {} | {:.2} | {:.0} | {:.0}% | {e2e} | {:.4}% | {:.1} → {:.1} | {} / {} | {} |",
        r.readers,
        r.target,
        r.delivered_packets,
        r.server_cpu_s,
        r.packets_per_cpu_s,
        r.steady_cpu_share * 100.0,
        r.loss_ratio * 100.0,
        r.rss_base_kib as f64 / 1024.0,
        r.rss_peak_kib as f64 / 1024.0,
        r.sessions_ok,
        r.sessions_failed,
        note.join("; ").replace('|', "/")
    )
}

fn begin_marker(name: &str) -> String {
    format!("<!-- manifold-perf {name} begin -->")
}

fn end_marker(name: &str) -> String {
    format!("<!-- manifold-perf {name} end -->")
}

/// `doc` with the scenario's section replaced, or appended under the harness heading.
pub(crate) fn splice(doc: &str, name: &str, section: &str) -> String {
    let (begin, end) = (begin_marker(name), end_marker(name));
    if let (Some(a), Some(b)) = (doc.find(&begin), doc.find(&end)) {
        if a < b {
            let after = &doc[b + end.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            return format!("{}{section}{after}", &doc[..a]);
        }
    }
    let mut out = doc.to_owned();
    if !out.ends_with('\n') && !out.is_empty() {
        out.push('\n');
    }
    if !out.contains(HEADING) {
        out.push_str(&format!("\n{HEADING}\n\n{INTRO}\n"));
    }
    out.push('\n');
    out.push_str(section);
    out
}

const HEADING: &str = "## Perf harness: the relay beside the raw limit and GStreamer (issue 5)";
const INTRO: &str = "Each section below is written by `perf/run` (the `manifold-perf` harness) \
from one run of a scenario in `perf/scenarios/`; the JSON of the run is in `perf/results/`.";

/// `YYYY-MM-DD HH:MM` for Unix seconds (UTC).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::{measurement, result};
    use crate::scenario::Target;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(1_795_312_800), "2026-11-22 02:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn a_new_run_replaces_its_own_section_only() {
        let mut r = result(
            vec![
                measurement(Target::BlasterSendto, 100, 200_000.0),
                measurement(Target::Relay1, 100, 500_000.0),
            ],
            "",
        );
        r.conclude();
        let first = section(&r, Some("t.svg"));
        assert!(first.contains("| 100 | relay-1/blaster-sendto | 2.50 | ≥ 3 | no |"), "{first}");
        let doc = splice("# Results\n\nearlier text\n", "t", &first);
        assert!(doc.starts_with("# Results\n\nearlier text\n"));
        assert!(doc.contains(HEADING));
        r.runs[1].packets_per_cpu_s = 700_000.0;
        r.conclude();
        let second = section(&r, None);
        let doc2 = splice(&format!("{doc}\n## Later section\n"), "t", &second);
        assert!(doc2.contains("| 3.50 |"));
        assert!(!doc2.contains("| 2.50 |"));
        assert_eq!(doc2.matches(HEADING).count(), 1);
        assert!(doc2.ends_with("## Later section\n"), "{doc2}");
    }
}
