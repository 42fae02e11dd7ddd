//! `--hlog FILE`: the histograms per one-second interval, in the standard HdrHistogram
//! interval log format (one line per interval and metric, tagged with the metric's name),
//! which `HistogramLogProcessor` and other hlog tools read and merge across machines.
//!
//! Shards close an interval every second ([`IntervalRecorder`]); its histograms are kept
//! compressed until the end, when intervals from every shard are merged with `add` and
//! written ([`write()`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::metrics::{Metric, Metrics};

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

/// Merges every shard's intervals and writes the log to `path`; `start` is the wall-clock
/// time of the run's start (interval 0).
pub fn write(path: &Path, blobs: &[IntervalBlob], start: SystemTime) -> io::Result<()> {
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
    drop(writer);
    file.flush()
}
