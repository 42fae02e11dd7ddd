//! The final report: a table for people (stdout) and JSON for machines (`--json`, schema
//! [`SCHEMA`]). Durations in the JSON are microseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::health::Health;
use crate::metrics::{Metric, Metrics};
use crate::receiver::SENDER_REPORT_WINDOW;
use crate::server::{ServerProcess, ServerUsage};
pub use crate::threshold::{is_value_name, SERVER_VALUE_NAMES, VALUE_NAMES};
use crate::threshold::{Threshold, Verdict};

/// The JSON schema id; bumped on any incompatible change.
pub const SCHEMA: &str = "manifold-load/1";

/// Percentiles every metric reports.
pub const PERCENTILES: [(&str, f64); 5] =
    [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9), ("p99_99", 99.99)];

/// One histogram's summary, microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// Always `"us"`.
    pub unit: &'static str,
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Percentiles by name (`p50`, `p90`, `p99`, `p99_9`, `p99_99`).
    #[serde(flatten)]
    pub percentiles: BTreeMap<&'static str, u64>,
    /// Largest.
    pub max: u64,
}

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunConfig {
    /// The URL, without credentials.
    pub url: String,
    /// Intended concurrency.
    pub clients: u32,
    /// Arrivals per second during the ramp-up.
    pub rate: f64,
    /// Run length, seconds.
    pub duration_s: f64,
    /// Ramp-down, seconds: the last stretch of the run, over which the sessions end one by one
    /// (0: all at the end).
    pub ramp_down_s: f64,
    /// How the ramp-up's arrivals were spaced (`uniform`, `poisson`).
    pub arrivals: String,
    /// Setup only (`--no-play`): sessions set up every track and held without PLAY.
    pub no_play: bool,
    /// CPUs the generator's shards ran on: read back from the kernel for shards in this
    /// process; with `--processes`, the `--cpus` list every worker pinned to (empty without
    /// one).
    pub cpus: Vec<usize>,
    /// Hold-time distribution.
    pub hold: String,
    /// Transport choice.
    pub transport: String,
    /// Generator processes the load was split over.
    pub processes: u64,
    /// Tracks in the presentation.
    pub tracks: usize,
    /// Seed.
    pub seed: u64,
}

/// Session counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sessions {
    /// Sessions the schedule meant to start.
    pub scheduled: u64,
    /// Sessions started.
    pub started: u64,
    /// Sessions that reached PLAY.
    pub played: u64,
    /// Sessions that ended without error.
    pub ok: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// Starts more than the tolerance behind their intended time.
    pub behind_schedule: u64,
    /// Sessions not started for want of file descriptors.
    pub clipped: u64,
    /// Sessions whose own hold ended before PLAY, the server answering in time (not errors).
    pub cut_by_hold: u64,
    /// Sessions that received video and not one keyframe (not errors; not in
    /// `first_keyframe`).
    pub no_keyframe: u64,
    /// Sessions with audio or video for [`SENDER_REPORT_WINDOW`] or longer and not one RTCP
    /// sender report (not errors).
    pub no_sender_report: u64,
}

/// Media totals and rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Media {
    /// RTP packets received.
    pub packets: u64,
    /// RTP bytes received.
    pub bytes: u64,
    /// Packets lost.
    pub lost: u64,
    /// Lost / (received + lost); 1 when a run meant to play received not one packet (nothing
    /// received is total loss, never a 0/0 pass).
    pub loss_ratio: f64,
    /// Duplicates.
    pub duplicates: u64,
    /// Reordered packets.
    pub reordered: u64,
    /// Non-RTP packets.
    pub malformed: u64,
    /// UDP datagrams from another address or port than the server's: not counted as packets.
    pub foreign: u64,
    /// Times a track's SSRC changed mid-session.
    pub ssrc_changes: u64,
    /// RTP packets of a payload type the SDP did not give their track (players drop them):
    /// not counted as packets.
    pub wrong_payload_type: u64,
    /// RTCP sender reports received from the server.
    pub sender_reports: u64,
    /// Packets whose loss accounting used the packet-counter extension (the rest used RTP
    /// sequence numbers).
    pub counted_by_counter: u64,
    /// Packets per second over the run.
    pub packets_per_s: f64,
    /// Bits per second over the run.
    pub bits_per_s: f64,
}

/// Errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Errors {
    /// Failed sessions.
    pub total: u64,
    /// By status code.
    pub by_status: BTreeMap<String, u64>,
    /// By kind (`status`, `timeout`, `reset`, `refused`, `auth`, `protocol`, `io`, `generator`,
    /// `no_media`, `stalled`, `stuck`).
    pub by_kind: BTreeMap<String, u64>,
    /// The first few messages.
    pub samples: Vec<String>,
}

/// What the run cost the server (`--server-pid`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerReport {
    /// The processes watched.
    pub pids: Vec<u32>,
    /// Whether every process was there for the whole run; when not, the derived figures are
    /// withheld (`null`) and thresholds on them cannot be judged.
    pub complete: bool,
    /// Seconds the processes were watched (the run).
    pub wall_s: f64,
    /// CPU seconds the processes used during the run.
    pub cpu_s: f64,
    /// CPU time as a share of one core (2.0: two cores busy all the time).
    pub cpu_share: Option<f64>,
    /// Packets the generator received per server CPU-second.
    pub pkts_per_cpu_s: Option<f64>,
    /// Packets the generator received per generator CPU-second, for comparison: below the
    /// server's, the generator costs more than what it measures.
    pub generator_pkts_per_cpu_s: Option<f64>,
    /// Resident memory at the start, KiB.
    pub rss_base_kib: u64,
    /// Peak resident memory, KiB.
    pub rss_peak_kib: u64,
    /// (peak − start) / most sessions open at once, KiB.
    pub rss_per_session_kib: Option<f64>,
    /// Most generator sessions open at one reading.
    pub peak_sessions: u64,
    /// Each process.
    pub processes: Vec<ServerProcess>,
    /// What went wrong with the watch (a process gone mid-run).
    pub notes: Vec<String>,
}

impl ServerReport {
    /// The usage the report was made from (for the hlog's counts line).
    pub fn usage(&self) -> ServerUsage {
        ServerUsage {
            processes: self.processes.clone(),
            wall_s: self.wall_s,
            peak_sessions: self.peak_sessions,
        }
    }

    /// The figures of `usage` for `delivered` packets, beside the generator's `generator_cpu_s`.
    pub fn of(usage: &ServerUsage, delivered: u64, generator_cpu_s: f64) -> ServerReport {
        let complete = usage.complete();
        let notes = usage
            .processes
            .iter()
            .filter_map(|p| {
                Some(format!(
                    "server process {} was gone {:.1}s into the run: its CPU after the last \
                     reading is unknown, so the server's figures are withheld",
                    p.pid, p.gone_at_s?
                ))
            })
            .collect();
        let whole = |v: Option<f64>| v.filter(|_| complete);
        ServerReport {
            pids: usage.processes.iter().map(|p| p.pid).collect(),
            complete,
            wall_s: usage.wall_s,
            cpu_s: usage.cpu_s(),
            cpu_share: whole(Some(usage.cpu_share())),
            pkts_per_cpu_s: whole(usage.pkts_per_cpu_s(delivered)),
            generator_pkts_per_cpu_s: (generator_cpu_s > 0.0)
                .then(|| delivered as f64 / generator_cpu_s),
            rss_base_kib: usage.rss_base_kib(),
            rss_peak_kib: usage.rss_peak_kib(),
            rss_per_session_kib: whole(usage.rss_per_session_kib()),
            peak_sessions: usage.peak_sessions,
            processes: usage.processes.clone(),
            notes,
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The configuration.
    pub config: RunConfig,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Session counts.
    pub sessions: Sessions,
    /// Setups (PLAY answered) per second over the run.
    pub setups_per_s: f64,
    /// Media totals.
    pub media: Media,
    /// Histogram summaries by metric name (only metrics with values).
    pub metrics: BTreeMap<&'static str, MetricSummary>,
    /// Errors.
    pub errors: Errors,
    /// Generator health.
    pub health: Health,
    /// What the run cost the server (`--server-pid`; `null` without).
    pub server: Option<ServerReport>,
    /// Where counts (sessions, media, errors) are missing from, for a report merged from
    /// interval logs that do not all carry them: then those figures are zero, not measured,
    /// and thresholds on them cannot be judged. Empty when the counts are complete.
    pub counts_missing_from: Vec<String>,
    /// Threshold outcomes.
    pub thresholds: Vec<Verdict>,
    /// Whether every threshold held (one that could not be judged did not).
    pub passed: bool,
}

/// Lost / (received + lost). A run meant to play (not `--no-play`) that received not one
/// packet has lost everything it came for, counted or not: the ratio is 1 then, never the 0 of
/// 0/0, so a loss threshold cannot pass on nothing.
pub fn loss_ratio(c: &crate::metrics::Counts, no_play: bool) -> f64 {
    let denominator = c.packets.saturating_sub(c.duplicates) + c.lost;
    if c.packets == 0 && !no_play {
        1.0
    } else if denominator == 0 {
        0.0
    } else {
        c.lost as f64 / denominator as f64
    }
}

/// Summarizes one histogram; `None` when empty.
pub fn summarize(metrics: &Metrics, metric: Metric) -> Option<MetricSummary> {
    let h = metrics.histogram(metric);
    if h.is_empty() {
        return None;
    }
    Some(MetricSummary {
        unit: "us",
        count: h.len(),
        min: h.min(),
        mean: h.mean(),
        percentiles: PERCENTILES
            .iter()
            .map(|&(name, p)| (name, h.value_at_quantile(p / 100.0)))
            .collect(),
        max: h.max(),
    })
}

impl Report {
    /// Builds the report and evaluates the thresholds.
    pub fn build(
        config: RunConfig,
        metrics: &Metrics,
        elapsed_s: f64,
        health: Health,
        thresholds: &[Threshold],
    ) -> Report {
        Report::build_with_counts_missing(config, metrics, elapsed_s, health, thresholds, vec![])
    }

    /// [`build`](Self::build) with what the run cost the server (`--server-pid`).
    pub fn build_with_server(
        config: RunConfig,
        metrics: &Metrics,
        elapsed_s: f64,
        health: Health,
        server: Option<&ServerUsage>,
        thresholds: &[Threshold],
    ) -> Report {
        let mut report =
            Report::build_with_counts_missing(config, metrics, elapsed_s, health, &[], vec![]);
        report.server =
            server.map(|u| ServerReport::of(u, metrics.counts.packets, report.health.cpu_seconds));
        report.judge(metrics, thresholds);
        report
    }

    /// [`build`](Self::build) for measurements whose counts are missing from `sources` (interval
    /// logs that carry none): the counts in `metrics` are then not the run's, so the report
    /// says so and thresholds on plain values cannot be judged. Empty `sources`: the same as
    /// `build`.
    pub fn build_with_counts_missing(
        config: RunConfig,
        metrics: &Metrics,
        elapsed_s: f64,
        health: Health,
        thresholds: &[Threshold],
        sources: Vec<String>,
    ) -> Report {
        let c = &metrics.counts;
        let secs = elapsed_s.max(1e-9);
        let media = Media {
            packets: c.packets,
            bytes: c.bytes,
            lost: c.lost,
            loss_ratio: loss_ratio(c, config.no_play),
            duplicates: c.duplicates,
            reordered: c.reordered,
            malformed: c.malformed,
            foreign: c.foreign,
            ssrc_changes: c.ssrc_changes,
            wrong_payload_type: c.wrong_payload_type,
            sender_reports: c.sender_reports,
            counted_by_counter: c.counted_by_counter,
            packets_per_s: c.packets as f64 / secs,
            bits_per_s: c.bytes as f64 * 8.0 / secs,
        };
        let errors = Errors {
            total: metrics.errors(),
            by_status: metrics.errors_by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            by_kind: metrics
                .errors_by_kind
                .iter()
                .map(|(k, v)| (k.name().to_owned(), *v))
                .collect(),
            samples: metrics.error_samples.clone(),
        };
        let summaries =
            Metric::ALL.iter().filter_map(|&m| Some((m.name(), summarize(metrics, m)?))).collect();
        let mut report = Report {
            schema: SCHEMA,
            config,
            elapsed_s,
            sessions: Sessions {
                scheduled: c.scheduled,
                started: c.started,
                played: c.played,
                ok: c.ok,
                failed: c.failed,
                behind_schedule: c.behind_schedule,
                clipped: c.clipped,
                cut_by_hold: c.cut_by_hold,
                no_keyframe: c.no_keyframe,
                no_sender_report: c.no_sender_report,
            },
            // Setups are counted where they are timed (PLAY answered; the last SETUP with
            // `--no-play`), so merged interval logs have them too.
            setups_per_s: metrics.histogram(Metric::Setup).len() as f64 / secs,
            media,
            metrics: summaries,
            errors,
            health,
            server: None,
            counts_missing_from: sources,
            thresholds: Vec::new(),
            passed: true,
        };
        report.judge(metrics, thresholds);
        report
    }

    /// Evaluates the thresholds.
    fn judge(&mut self, metrics: &Metrics, thresholds: &[Threshold]) {
        let verdicts: Vec<Verdict> =
            thresholds.iter().map(|t| t.evaluate(metrics, &|name| self.value(name))).collect();
        self.passed = verdicts.iter().all(|v| v.passed);
        self.thresholds = verdicts;
    }

    /// A plain value by name, for thresholds: `errors`, `errors.<kind>`, `errors.<status>`,
    /// `sessions.{scheduled,started,ok,failed,played,cut_by_hold,no_keyframe,no_sender_report}`,
    /// `behind_schedule`, `clipped`,
    /// `loss` (count), `loss.ratio`, `duplicates`, `reordered`, `foreign`, `ssrc_changes`,
    /// `wrong_payload_type`, `sender_reports`, `packets`, `bytes`,
    /// `packets_per_s`, `bits_per_s`, `setups_per_s`, `rxq_drops`, `generator_limited` (0/1),
    /// `cpu` (share of the shards' cores); with `--server-pid`, the `server.*` figures (see
    /// [`SERVER_VALUE_NAMES`]; `None` without it, or when a process went away mid-run). `None`
    /// for an unknown name, and for every name when the counts are missing (see
    /// [`Report::counts_missing_from`]).
    pub fn value(&self, name: &str) -> Option<f64> {
        if !self.counts_missing_from.is_empty() || !is_value_name(name) {
            return None;
        }
        if let Some(key) = name.strip_prefix("server.") {
            let s = self.server.as_ref().filter(|s| s.complete)?;
            return match key {
                "pkts_per_cpu_s" => s.pkts_per_cpu_s,
                "cpu_s" => Some(s.cpu_s),
                "cpu" => s.cpu_share,
                "rss_peak_kib" => Some(s.rss_peak_kib as f64),
                "rss_per_session_kib" => s.rss_per_session_kib,
                _ => None,
            };
        }
        let s = &self.sessions;
        let m = &self.media;
        let v = match name {
            "errors" => self.errors.total as f64,
            "sessions.scheduled" => s.scheduled as f64,
            "sessions.started" => s.started as f64,
            "sessions.ok" => s.ok as f64,
            "sessions.failed" => s.failed as f64,
            "sessions.played" => s.played as f64,
            "behind_schedule" => s.behind_schedule as f64,
            "clipped" => s.clipped as f64,
            "sessions.cut_by_hold" => s.cut_by_hold as f64,
            "sessions.no_keyframe" => s.no_keyframe as f64,
            "sessions.no_sender_report" => s.no_sender_report as f64,
            "loss" | "lost" => m.lost as f64,
            "loss.ratio" => m.loss_ratio,
            "duplicates" => m.duplicates as f64,
            "reordered" => m.reordered as f64,
            "foreign" => m.foreign as f64,
            "ssrc_changes" => m.ssrc_changes as f64,
            "wrong_payload_type" => m.wrong_payload_type as f64,
            "sender_reports" => m.sender_reports as f64,
            "packets" => m.packets as f64,
            "bytes" => m.bytes as f64,
            "packets_per_s" => m.packets_per_s,
            "bits_per_s" => m.bits_per_s,
            "setups_per_s" => self.setups_per_s,
            "rxq_drops" => self.health.rxq_drops as f64,
            "generator_limited" => f64::from(u8::from(self.health.generator_limited)),
            "cpu" => self.health.cpu_share,
            other => {
                let key = other.strip_prefix("errors.")?;
                let n = self.errors.by_kind.get(key).or_else(|| self.errors.by_status.get(key));
                n.copied().unwrap_or(0) as f64
            }
        };
        Some(v)
    }

    /// The process exit code this report calls for: 0 when every threshold held, 99 when one
    /// failed, 1 when one could not be judged (its value was not measured).
    pub fn exit_code(&self) -> i32 {
        if self.thresholds.iter().any(|v| !v.judged) {
            crate::EXIT_ERROR
        } else if self.passed {
            crate::EXIT_PASS
        } else {
            crate::EXIT_THRESHOLD
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        let arrivals = if c.arrivals == "poisson" { " poisson" } else { "" };
        let _ = writeln!(
            out,
            "manifold load {}: {} clients, {:.1}/s{arrivals} ramp, {:.1}s, ramp-down {:.1}s, hold {}, \
             transport {}, {} track(s), {} process(es){}",
            c.url,
            c.clients,
            c.rate,
            c.duration_s,
            c.ramp_down_s,
            c.hold,
            c.transport,
            c.tracks,
            c.processes,
            if c.cpus.is_empty() {
                String::new()
            } else {
                format!(", CPUs {}", crate::args::CpuList::from_cpus(c.cpus.iter().copied()))
            }
        );
        if c.no_play {
            let _ = writeln!(
                out,
                "SETUP-ONLY RUN (--no-play): sessions set up every track and held without PLAY; \
                 no media expected, setup ends at the last SETUP"
            );
        }
        if self.counts_missing_from.is_empty() {
            let s = &self.sessions;
            let _ = writeln!(
                out,
                "sessions: {} scheduled, {} started, {} played, {} ok, {} failed, {} behind \
                 schedule, {} clipped, {} cut by their hold before PLAY{}{}; {:.1} setups/s \
                 over {:.1}s",
                s.scheduled,
                s.started,
                s.played,
                s.ok,
                s.failed,
                s.behind_schedule,
                s.clipped,
                s.cut_by_hold,
                match s.no_keyframe {
                    0 => String::new(),
                    n => format!(", {n} received video without a keyframe"),
                },
                match s.no_sender_report {
                    0 => String::new(),
                    n => format!(
                        ", {n} received media {} s or longer without a sender report",
                        SENDER_REPORT_WINDOW.as_secs()
                    ),
                },
                self.setups_per_s,
                self.elapsed_s
            );
            let m = &self.media;
            let _ = writeln!(
                out,
                "media: {} packets, {} bytes ({:.0} pkt/s, {:.2} Mbit/s), lost {} ({:.4}%), \
                 duplicates {}, reordered {}, malformed {}, foreign {}, SSRC changes {}, sender \
                 reports {}{}",
                m.packets,
                m.bytes,
                m.packets_per_s,
                m.bits_per_s / 1e6,
                m.lost,
                m.loss_ratio * 100.0,
                m.duplicates,
                m.reordered,
                m.malformed,
                m.foreign,
                m.ssrc_changes,
                m.sender_reports,
                match m.wrong_payload_type {
                    0 => String::new(),
                    n => format!(", wrong payload type {n}"),
                }
            );
        } else {
            let _ = writeln!(
                out,
                "sessions, media, errors: not available (no counts in {}); thresholds on them \
                 cannot be judged",
                self.counts_missing_from.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\n{:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "metric (ms)", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        );
        for (name, sm) in &self.metrics {
            let ms = |v: u64| format!("{:.3}", v as f64 / 1000.0);
            let p = |k: &str| sm.percentiles.get(k).copied().map_or_else(|| "-".into(), ms);
            let _ = writeln!(
                out,
                "{:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                name,
                sm.count,
                p("p50"),
                p("p90"),
                p("p99"),
                p("p99_9"),
                p("p99_99"),
                ms(sm.max)
            );
        }
        let e = &self.errors;
        if e.total > 0 {
            let kinds: Vec<String> = e.by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let codes: Vec<String> = e.by_status.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(out, "\nerrors: {} ({}; status {})", e.total, kinds.join(", "), {
                if codes.is_empty() {
                    "-".to_owned()
                } else {
                    codes.join(", ")
                }
            });
            for sample in &e.samples {
                let _ = writeln!(out, "  {sample}");
            }
        }
        let h = &self.health;
        let _ = writeln!(
            out,
            "\ngenerator: {} cores, CPU {:.1}s ({:.0}% of its cores), timer lag p99 {:.2} ms max \
             {:.2} ms, rxq drops {}{}, open files {} (fits {} sessions)",
            h.shards,
            h.cpu_seconds,
            h.cpu_share * 100.0,
            h.timer_lag_p99_us as f64 / 1e3,
            h.timer_lag_max_us as f64 / 1e3,
            h.rxq_drops,
            match h.udp_read_interval_max_ms {
                0 => String::new(),
                ms => format!(" (UDP reads up to {ms} ms apart)"),
            },
            h.fd.soft,
            h.fd.fits
        );
        if let Some(s) = &self.server {
            let pids: Vec<String> = s.pids.iter().map(u32::to_string).collect();
            let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_owned(), f);
            let _ = writeln!(
                out,
                "server (pid {}): CPU {:.2}s ({} of a core), {} delivered pkts per server \
                 CPU-s (generator: {} per its CPU-s), RSS {:.1} -> {:.1} MiB, {} per session \
                 (peak {} sessions)",
                pids.join(","),
                s.cpu_s,
                opt(s.cpu_share, &|v| format!("{:.0}%", v * 100.0)),
                opt(s.pkts_per_cpu_s, &|v| format!("{v:.0}")),
                opt(s.generator_pkts_per_cpu_s, &|v| format!("{v:.0}")),
                s.rss_base_kib as f64 / 1024.0,
                s.rss_peak_kib as f64 / 1024.0,
                opt(s.rss_per_session_kib, &|v| format!("{v:.1} KiB")),
                s.peak_sessions
            );
            for n in &s.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        if h.generator_limited {
            let _ =
                writeln!(out, "GENERATOR-LIMITED RUN: these numbers are not the server's alone:");
            for r in &h.reasons {
                let _ = writeln!(out, "  - {r}");
            }
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(out);
            for v in &self.thresholds {
                let actual = match (v.actual, v.unit) {
                    (None, _) if !v.judged => "not measured".to_owned(),
                    (None, _) => "no data".to_owned(),
                    (Some(a), "us") => format!("{:.3} ms", a / 1000.0),
                    (Some(a), _) => format!("{a}"),
                };
                let verdict = match (v.judged, v.passed) {
                    (false, _) => "CANNOT JUDGE",
                    (true, true) => "pass",
                    (true, false) => "FAIL",
                };
                let _ = writeln!(out, "threshold {}: {verdict} (actual {actual})", v.threshold);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::health::FdBudget;

    fn report(sources: Vec<String>) -> Report {
        report_of(&Metrics::new(), sources)
    }

    fn report_of(m: &Metrics, sources: Vec<String>) -> Report {
        let health = Health::assess(
            m,
            1,
            Duration::ZERO,
            Duration::from_secs(1),
            FdBudget::compute(0, 0, 0, 1, 0),
        );
        let config = RunConfig {
            url: "rtsp://127.0.0.1/x".into(),
            clients: 1,
            rate: 1.0,
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
        };
        Report::build_with_counts_missing(config, m, 1.0, health, &[], sources)
    }

    #[test]
    fn the_slowest_udp_read_interval_of_any_shard_is_reported() {
        let generator_line = |r: &Report| {
            r.table().lines().find(|l| l.starts_with("generator:")).unwrap().to_owned()
        };
        assert!(!generator_line(&report(Vec::new())).contains("UDP reads"), "none on a grid");
        let (mut merged, mut slow) = (Metrics::new(), Metrics::new());
        merged.counts.udp_read_interval_max_ms = 50;
        slow.counts.udp_read_interval_max_ms = 200;
        merged.merge(&slow);
        merged.merge(&Metrics::new());
        let r = report_of(&merged, Vec::new());
        assert_eq!(r.health.udp_read_interval_max_ms, 200, "the most, not a sum");
        assert!(generator_line(&r).contains("(UDP reads up to 200 ms apart)"), "{r:?}");
    }

    #[test]
    fn every_value_name_has_a_value_unless_counts_are_missing() {
        let r = report(Vec::new());
        for name in VALUE_NAMES.into_iter().chain(["errors.timeout", "errors.503"]) {
            assert!(is_value_name(name), "{name}");
            assert!(r.value(name).is_some(), "{name} has no value");
        }
        for name in ["erors", "errors.", "errors.bogus", "errors.5030", "sessions", "e2e"] {
            assert!(!is_value_name(name), "{name}");
            assert_eq!(r.value(name), None, "{name}");
        }
        let merged = report(vec!["old.hlog".into()]);
        for name in VALUE_NAMES {
            assert_eq!(merged.value(name), None, "{name} is not measured");
        }
    }

    #[test]
    fn server_values_come_from_a_complete_watch_only() {
        use crate::server::{ServerProcess, ServerUsage};
        let mut m = Metrics::new();
        m.counts.packets = 600_000;
        let proc_ = |gone_at_s| ServerProcess {
            pid: 42,
            cpu_s: 2.0,
            rss_base_kib: 10_000,
            rss_peak_kib: 30_000,
            gone_at_s,
        };
        let usage =
            |gone| ServerUsage { processes: vec![proc_(gone)], wall_s: 4.0, peak_sessions: 100 };
        let health = Health::assess(
            &m,
            1,
            Duration::from_secs(1),
            Duration::from_secs(4),
            FdBudget::compute(0, 0, 0, 1, 0),
        );
        let config = report(Vec::new()).config;
        let t = [Threshold::parse("server.pkts_per_cpu_s>300000").unwrap()];
        let r = Report::build_with_server(
            config.clone(),
            &m,
            4.0,
            health.clone(),
            Some(&usage(None)),
            &t,
        );
        for name in SERVER_VALUE_NAMES {
            assert!(is_value_name(name), "{name}");
        }
        assert_eq!(r.value("server.pkts_per_cpu_s"), Some(300_000.0));
        assert_eq!(r.value("server.cpu_s"), Some(2.0));
        assert_eq!(r.value("server.cpu"), Some(0.5));
        assert_eq!(r.value("server.rss_peak_kib"), Some(30_000.0));
        assert_eq!(r.value("server.rss_per_session_kib"), Some(200.0));
        let s = r.server.as_ref().unwrap();
        assert_eq!(s.generator_pkts_per_cpu_s, Some(600_000.0));
        assert_eq!(s.usage(), usage(None), "the hlog carries what the report was made from");
        assert!(!r.passed, "300,000 is not above 300,000");
        assert!(r.table().contains("server (pid 42): CPU 2.00s (50% of a core)"), "{}", r.table());

        let gone = Report::build_with_server(config, &m, 4.0, health, Some(&usage(Some(1.0))), &t);
        for name in SERVER_VALUE_NAMES {
            assert_eq!(gone.value(name), None, "{name} withheld");
        }
        assert_eq!(gone.exit_code(), crate::EXIT_ERROR);
        assert!(gone.table().contains("server process 42 was gone 1.0s into the run"));
        assert_eq!(report(Vec::new()).value("server.cpu"), None, "no --server-pid");
    }

    #[test]
    fn unknown_values_do_not_parse_as_thresholds() {
        let err = Threshold::parse("eror<1").unwrap_err();
        assert!(err.reason.contains("unknown value `eror`"), "{err}");
        assert!(Threshold::parse("errors.bogus<1").is_err());
        assert!(Threshold::parse("errors.refused<1").is_ok());
        assert!(Threshold::parse("errors.454<1").is_ok());
    }

    #[test]
    fn the_table_names_setup_only_runs_and_the_ramp_down() {
        let mut r = report(Vec::new());
        r.config.ramp_down_s = 2.5;
        r.config.cpus = vec![2, 3];
        assert!(!r.table().contains("SETUP-ONLY"));
        r.config.no_play = true;
        let t = r.table();
        assert!(t.contains("SETUP-ONLY RUN (--no-play)"), "{t}");
        assert!(t.contains("ramp-down 2.5s"), "{t}");
        assert!(t.contains("CPUs 2-3"), "{t}");
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["config"]["ramp_down_s"], 2.5);
        assert_eq!(v["config"]["no_play"], true);
        assert_eq!(v["config"]["cpus"], serde_json::json!([2, 3]));
    }
}
