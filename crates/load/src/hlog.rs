//! `--hlog FILE`: the histograms per one-second interval, in the standard HdrHistogram
//! interval log format (one line per interval and metric, tagged with the metric's name),
//! which `HistogramLogProcessor` and other hlog tools read and merge across machines.
//!
//! Shards close an interval every second ([`IntervalRecorder`]); its histograms are kept
//! compressed until the end, when intervals from every shard are merged with `add` and
//! written ([`write()`]).
//!
//! After the intervals, one comment line carries what histograms cannot: the run's counts
//! (sessions, media, errors by status and kind), its length, the generator's CPU and
//! open-file figures and, with `--server-pid`, what the run cost the server, as [`RunCounts`]
//! JSON after [`COUNTS_TAG`]:
//! `#[manifold-counts] {"schema":"manifold-counts/1",...}`. Being a comment, it is ignored by
//! standard hlog tools; `manifold merge` reads it back and adds the counts of every file.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::metrics::{Metric, Metrics, MetricsWire};
use crate::report::Report;
use crate::server::ServerUsage;

/// What starts the counts comment line (after its `#`).
pub const COUNTS_TAG: &str = "[manifold-counts] ";
/// The counts line's schema id; bumped on any incompatible change.
pub const COUNTS_SCHEMA: &str = "manifold-counts/1";

/// A run's counts and generator figures, as carried in its hlog.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunCounts {
    /// [`COUNTS_SCHEMA`].
    pub schema: String,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Counts, errors by status and kind, the first error messages (no histograms: they are
    /// the log's intervals).
    pub metrics: MetricsWire,
    /// The generator's side.
    pub generator: GeneratorFigures,
    /// What the run cost the server (`--server-pid`); absent without it, and in lines written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
}

/// The generator figures a report's health block is judged from.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorFigures {
    /// Cores the generator ran on.
    pub cores: usize,
    /// CPU time, seconds.
    pub cpu_s: f64,
    /// Open-file soft limit.
    pub fd_soft: u64,
    /// Open-file hard limit.
    pub fd_hard: u64,
    /// Descriptors open before the run.
    pub fd_in_use: u64,
    /// Descriptors per session.
    pub fd_per_session: u64,
    /// Sessions the limit fits.
    pub fd_fits: u64,
}

impl RunCounts {
    /// The counts of a run: its merged metrics and the report built from them.
    pub fn of(metrics: &Metrics, report: &Report) -> RunCounts {
        let mut wire = metrics.to_wire();
        wire.histograms.clear();
        let h = &report.health;
        RunCounts {
            schema: COUNTS_SCHEMA.to_owned(),
            elapsed_s: report.elapsed_s,
            metrics: wire,
            generator: GeneratorFigures {
                cores: h.shards,
                cpu_s: h.cpu_seconds,
                fd_soft: h.fd.soft,
                fd_hard: h.fd.hard,
                fd_in_use: h.fd.in_use,
                fd_per_session: h.fd.per_session,
                fd_fits: h.fd.fits,
            },
            server: report.server.as_ref().map(|s| s.usage()),
        }
    }

    /// The comment line's text (without the `#`): [`COUNTS_TAG`] and one line of JSON.
    pub fn to_comment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        format!("{COUNTS_TAG}{json}")
    }

    /// Reads a comment line's text (after the `#`); `None` when it is not a counts line,
    /// `Some(Err)` when it is one that does not parse or has another schema.
    pub fn from_comment(line: &str) -> Option<Result<RunCounts, String>> {
        let json = line.strip_prefix(COUNTS_TAG)?;
        Some(match serde_json::from_str::<RunCounts>(json) {
            Ok(c) if c.schema == COUNTS_SCHEMA => Ok(c),
            Ok(c) => Err(format!("counts of schema `{}`, expected `{COUNTS_SCHEMA}`", c.schema)),
            Err(e) => Err(format!("counts line does not parse: {e}")),
        })
    }
}

/// Length of one interval.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One metric's histogram over one interval, serialized (V2).
#[derive(Debug, Clone)]
pub struct IntervalBlob {
    /// Interval number from the start of the run.
    pub index: u64,
    /// The metric.
    pub metric: Metric,
    /// The histogram, V2-serialized.
    pub bytes: Vec<u8>,
}

/// A shard's interval bookkeeping: the running total, and the closed intervals.
pub struct IntervalRecorder {
    /// Everything recorded so far, closed intervals merged.
    pub total: Metrics,
    /// Closed intervals.
    pub blobs: Vec<IntervalBlob>,
    serializer: V2Serializer,
}

impl std::fmt::Debug for IntervalRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalRecorder").field("intervals", &self.blobs.len()).finish()
    }
}

impl Default for IntervalRecorder {
    fn default() -> Self {
        IntervalRecorder::new()
    }
}

impl IntervalRecorder {
    /// An empty recorder.
    pub fn new() -> IntervalRecorder {
        IntervalRecorder {
            total: Metrics::new(),
            blobs: Vec::new(),
            serializer: V2Serializer::new(),
        }
    }

    /// Closes interval `index` with the metrics recorded during it.
    pub fn close(&mut self, index: u64, interval: &Metrics) {
        for metric in Metric::ALL {
            let h = interval.histogram(metric);
            if h.is_empty() {
                continue;
            }
            let mut bytes = Vec::new();
            if self.serializer.serialize(h, &mut bytes).is_ok() {
                self.blobs.push(IntervalBlob { index, metric, bytes });
            }
        }
        self.total.merge(interval);
    }
}

/// Merges every shard's intervals and writes the log to `path`, then the run's `counts` (if
/// given) as a comment line; `start` is the wall-clock time of the run's start (interval 0).
pub fn write(
    path: &Path,
    blobs: &[IntervalBlob],
    start: SystemTime,
    counts: Option<&RunCounts>,
) -> io::Result<()> {
    let mut merged: BTreeMap<(u64, Metric), Histogram<u64>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for b in blobs {
        let Ok(h) = de.deserialize::<u64, _>(&mut b.bytes.as_slice()) else { continue };
        match merged.get_mut(&(b.index, b.metric)) {
            Some(m) => {
                if m.add(&h).is_err() {
                    for v in h.iter_recorded() {
                        m.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                    }
                }
            }
            None => {
                merged.insert((b.index, b.metric), h);
            }
        }
    }
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    let mut serializer = V2Serializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("manifold load: latencies in microseconds; tags are metric names")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut file, &mut serializer)?;
    for ((index, metric), h) in &merged {
        writer
            .write_histogram(h, Duration::from_secs(*index), INTERVAL, Tag::new(metric.name()))
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
    }
    if let Some(c) = counts {
        writer.write_comment(&c.to_comment())?;
    }
    drop(writer);
    file.flush()
}
