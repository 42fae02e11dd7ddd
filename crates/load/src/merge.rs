//! `manifold merge a.hlog b.hlog ...`: one report, and global thresholds, from the interval
//! logs (`--hlog`) of several runs (typically one per generator machine, run at once).
//!
//! Every interval histogram of every file is added into one histogram per metric (tags are
//! metric names), so percentiles are those of all samples together, never averages of
//! percentiles. The counts line of each file (see [`crate::hlog`]) is added too: session,
//! media and error counts summed, CPU time and cores summed, the run length the longest of
//! them (the runs are meant to be concurrent), so every threshold of `manifold load` works on
//! the merge. When a file has no counts line (an older manifold, another tool), the merged
//! report says the counts are not available, and a threshold on them is an error
//! ([`MergeError::CannotJudge`], exit code 1), never a silent pass.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use crate::health::{FdBudget, Health};
use crate::hlog::{GeneratorFigures, RunCounts};
use crate::metrics::{to_hex, Metrics, MetricsWire};
use crate::report::{Report, RunConfig};
use crate::threshold::Threshold;
use crate::LoadError;

/// Flags of `manifold merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The interval logs (`manifold load --hlog FILE`) to merge.
    #[arg(required = true)]
    pub hlogs: Vec<PathBuf>,
    /// Write the merged report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A threshold on the merged histograms or counts, e.g. `e2e.p99<5ms`, `errors<1`
    /// (repeatable); exit 99 when one fails, 1 when a file has no counts for one on counts.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,
}

/// Why merging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not an interval log, or a histogram in it does not decode.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A threshold does not parse, or the JSON could not be written.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Thresholds on counts, but some files carry no counts.
    #[error(
        "cannot judge {}: no counts in {} (an interval log from an older manifold or another \
         tool); only thresholds on histograms (e.g. e2e.p99<5ms) work on it",
        thresholds.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
        files.join(", ")
    )]
    CannotJudge {
        /// The thresholds that could not be judged.
        thresholds: Vec<String>,
        /// The files without counts.
        files: Vec<String>,
    },
}

impl MergeError {
    /// The process exit code (1).
    pub fn exit_code(&self) -> i32 {
        crate::EXIT_ERROR
    }
}

/// One interval log, read.
#[derive(Debug, Clone)]
pub struct HlogContents {
    /// Every histogram of the file added up, by metric (only metrics we know).
    pub metrics: Metrics,
    /// Time from the first interval's start to the last one's end.
    pub span: Duration,
    /// Interval histograms read.
    pub intervals: usize,
    /// Tags that name no metric we know (skipped).
    pub unknown_tags: Vec<String>,
    /// The run's counts, from its counts line (summed if there are several, as in logs
    /// concatenated); `None` when it has none.
    pub counts: Option<RunCounts>,
}

/// Adds `b` into `a`: counts summed, CPU time and cores summed, the length the longest, the
/// open-file figures those of the tighter limit with the fits summed; the server's usage
/// merged (see `ServerUsage::merge`) when both carry it, else dropped, since delivered packets
/// would then count runs whose server cost is unknown.
fn add_counts(a: &mut RunCounts, b: &RunCounts) {
    a.server = match (a.server.take(), &b.server) {
        (Some(mut x), Some(y)) => {
            x.merge(y);
            Some(x)
        }
        _ => None,
    };
    let mut m = Metrics::from_wire(&a.metrics);
    m.merge(&Metrics::from_wire(&b.metrics));
    a.metrics = m.to_wire();
    a.elapsed_s = a.elapsed_s.max(b.elapsed_s);
    let (g, h) = (&mut a.generator, &b.generator);
    if h.fd_soft < g.fd_soft {
        (g.fd_soft, g.fd_hard, g.fd_in_use, g.fd_per_session) =
            (h.fd_soft, h.fd_hard, h.fd_in_use, h.fd_per_session);
    }
    *g = GeneratorFigures {
        cores: g.cores + h.cores,
        cpu_s: g.cpu_s + h.cpu_s,
        fd_fits: g.fd_fits + h.fd_fits,
        ..g.clone()
    };
}

/// Reads an interval log written by `--hlog` (or any hlog whose tags are our metric names
/// and whose values are microseconds).
pub fn read_hlog(path: &Path) -> Result<HlogContents, MergeError> {
    let text =
        std::fs::read(path).map_err(|source| MergeError::Read { path: path.to_owned(), source })?;
    let bad = |reason: String| MergeError::Format { path: path.to_owned(), reason };
    let mut metrics = Metrics::new();
    let mut first: Option<Duration> = None;
    let mut last = Duration::ZERO;
    let mut intervals = 0;
    let mut unknown_tags = Vec::new();
    let mut counts: Option<RunCounts> = None;
    for line in text.split(|&b| b == b'\n') {
        let Some(comment) = line.strip_prefix(b"#") else { continue };
        let Ok(comment) = std::str::from_utf8(comment) else { continue };
        match RunCounts::from_comment(comment.trim_end_matches('\r')) {
            None => {}
            Some(Err(reason)) => return Err(bad(reason)),
            Some(Ok(c)) => match &mut counts {
                Some(sum) => add_counts(sum, &c),
                None => counts = Some(c),
            },
        }
    }
    for entry in IntervalLogIterator::new(&text) {
        let entry = entry.map_err(|e| bad(format!("not an interval log: {e:?}")))?;
        let LogEntry::Interval(h) = entry else { continue };
        let tag = h.tag().map(|t| t.as_str().to_owned()).unwrap_or_default();
        if crate::metrics::Metric::from_name(&tag).is_none() {
            if !unknown_tags.contains(&tag) {
                unknown_tags.push(tag);
            }
            continue;
        }
        let bytes = base64_decode(h.encoded_histogram())
            .ok_or_else(|| bad(format!("interval of `{tag}`: bad base64")))?;
        if crate::metrics::histogram_from_bytes(&bytes).is_none() {
            return Err(bad(format!("interval of `{tag}`: histogram does not decode")));
        }
        // Through the wire form: the one public way into a Metrics' histograms.
        let mut wire = MetricsWire::default();
        wire.histograms.insert(tag, to_hex(&bytes));
        metrics.merge(&Metrics::from_wire(&wire));
        let start = h.start_timestamp();
        first = Some(first.map_or(start, |f| f.min(start)));
        last = last.max(start + h.duration());
        intervals += 1;
    }
    if intervals == 0 {
        return Err(bad("no interval histograms with known metric tags".into()));
    }
    let span = last.saturating_sub(first.unwrap_or_default());
    Ok(HlogContents { metrics, span, intervals, unknown_tags, counts })
}

/// Merges the logs into one report (thresholds evaluated on the merged histograms and, when
/// every file carries them, the summed counts). A threshold on counts that some file lacks
/// is [`MergeError::CannotJudge`].
pub fn merge(paths: &[PathBuf], thresholds: &[String]) -> Result<Report, MergeError> {
    let thresholds = thresholds
        .iter()
        .map(|t| Threshold::parse(t).map_err(LoadError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let mut merged = Metrics::new();
    let mut span = Duration::ZERO;
    let mut counts: Option<RunCounts> = None;
    let mut missing = Vec::new();
    for path in paths {
        let contents = read_hlog(path)?;
        merged.merge(&contents.metrics);
        // The runs are meant to be concurrent (one per machine): the longest is the run.
        span = span.max(contents.span);
        match (&mut counts, contents.counts) {
            (_, None) => missing.push(path.display().to_string()),
            (Some(sum), Some(c)) => add_counts(sum, &c),
            (None, Some(c)) => counts = Some(c),
        }
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let mut config = RunConfig {
        url: format!("merged from {}", names.join(", ")),
        clients: 0,
        rate: 0.0,
        duration_s: span.as_secs_f64(),
        ramp_down_s: 0.0,
        arrivals: "-".into(),
        no_play: false,
        cpus: Vec::new(),
        hold: "-".into(),
        transport: "-".into(),
        processes: paths.len() as u64,
        tracks: 0,
        seed: 0,
    };
    let report = match counts.filter(|_| missing.is_empty()) {
        Some(c) => {
            merged.merge(&Metrics::from_wire(&c.metrics));
            let g = &c.generator;
            let elapsed = Duration::try_from_secs_f64(c.elapsed_s).unwrap_or(span);
            config.duration_s = c.elapsed_s;
            let fd = FdBudget {
                soft: g.fd_soft,
                hard: g.fd_hard,
                in_use: g.fd_in_use,
                per_session: g.fd_per_session,
                fits: g.fd_fits,
            };
            let cpu = Duration::try_from_secs_f64(g.cpu_s).unwrap_or_default();
            let health = Health::assess(&merged, g.cores, cpu, elapsed, fd);
            Report::build_with_server(
                config,
                &merged,
                c.elapsed_s,
                health,
                c.server.as_ref(),
                &thresholds,
            )
        }
        None => {
            // No process ran here: the health block describes nothing but the merged timer
            // lag.
            let fd = FdBudget::compute(0, 0, 0, 1, 0);
            let health = Health::assess(&merged, 1, Duration::ZERO, span, fd);
            let report = Report::build_with_counts_missing(
                config,
                &merged,
                span.as_secs_f64(),
                health,
                &thresholds,
                missing.clone(),
            );
            let unjudged: Vec<String> = report
                .thresholds
                .iter()
                .filter(|v| !v.judged)
                .map(|v| v.threshold.clone())
                .collect();
            if !unjudged.is_empty() {
                return Err(MergeError::CannotJudge { thresholds: unjudged, files: missing });
            }
            report
        }
    };
    Ok(report)
}

/// Standard base64 (RFC 4648 §4) with optional padding; `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::hlog::IntervalRecorder;
    use crate::metrics::Metric;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert!(base64_decode("Zm9v*").is_none());
    }

    fn write_log(path: &Path, values: &[u64]) {
        let mut rec = IntervalRecorder::new();
        let mut m = Metrics::new();
        for &v in values {
            m.record_us(Metric::E2e, v);
        }
        rec.close(0, &m);
        let mut m = Metrics::new();
        m.record_us(Metric::Setup, 5_000);
        rec.close(1, &m);
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        crate::hlog::write(path, &rec.blobs, start, None).unwrap();
    }

    #[test]
    fn merged_logs_add_their_histograms() {
        let dir = std::env::temp_dir().join(format!("manifold-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.hlog"), dir.join("b.hlog"));
        write_log(&a, &[1_000, 2_000, 3_000]);
        write_log(&b, &[10_000]);
        let one = read_hlog(&a).unwrap();
        assert_eq!(one.metrics.histogram(Metric::E2e).len(), 3);
        assert_eq!(one.span, Duration::from_secs(2));
        let report = merge(&[a, b], &["e2e.max<5ms".to_owned()]).unwrap();
        assert_eq!(report.metrics["e2e"].count, 4);
        assert_eq!(report.metrics["setup"].count, 2);
        assert!(!report.passed, "the 10 ms sample breaks e2e.max<5ms");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
