//! `--processes N`: the load split over N worker processes (each with its own open-file limit
//! and its own shards), merged into one report.
//!
//! The parent re-executes the current binary with its own arguments plus a hidden
//! `--worker INDEX/PARTS/START_UNIX_NS/CLIENTS`; worker `i` runs the arrivals whose index is
//! `i` modulo `PARTS`, from the shared wall-clock start, and prints its raw measurements (a
//! [`WorkerOutput`] as one JSON line) on stdout instead of a report. The parent merges the
//! histograms with `add`.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::hlog::IntervalBlob;
use crate::metrics::{from_hex, to_hex, Metric, MetricsWire};
use crate::LoadError;

/// Which part of the load a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSpec {
    /// This worker's number, from 0.
    pub index: u64,
    /// How many workers share the load.
    pub parts: u64,
    /// The run's start, nanoseconds since the Unix epoch (shared by every worker).
    pub start_unix_ns: u128,
    /// The global intended concurrency (after any clipping by the parent).
    pub clients: u32,
}

impl WorkerSpec {
    /// Parses `INDEX/PARTS/START_UNIX_NS/CLIENTS`.
    pub fn parse(s: &str) -> Result<WorkerSpec, LoadError> {
        let bad = || LoadError::Executor(format!("bad --worker `{s}`"));
        let mut it = s.split('/');
        let mut next = || it.next().ok_or_else(bad);
        let index = next()?.parse().map_err(|_| bad())?;
        let parts: u64 = next()?.parse().map_err(|_| bad())?;
        let start_unix_ns = next()?.parse().map_err(|_| bad())?;
        let clients = next()?.parse().map_err(|_| bad())?;
        if parts == 0 || index >= parts {
            return Err(bad());
        }
        Ok(WorkerSpec { index, parts, start_unix_ns, clients })
    }

    /// The argument text.
    pub fn to_arg(self) -> String {
        format!("{}/{}/{}/{}", self.index, self.parts, self.start_unix_ns, self.clients)
    }

    /// The shared start as a wall-clock time.
    pub fn start(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.start_unix_ns).unwrap_or(u64::MAX))
    }
}

/// One interval histogram on the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IntervalWire {
    /// Interval number.
    pub index: u64,
    /// Metric name.
    pub metric: String,
    /// V2-serialized histogram, hex.
    pub hex: String,
}

/// What a worker prints for its parent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WorkerOutput {
    /// The worker's merged measurements.
    pub metrics: MetricsWire,
    /// Its interval histograms (with `--hlog`).
    pub intervals: Vec<IntervalWire>,
    /// Its CPU time, seconds.
    pub cpu_s: f64,
    /// Sessions its open-file limit fits.
    pub fits: u64,
}

impl WorkerOutput {
    /// The interval blobs back.
    pub fn blobs(&self) -> Vec<IntervalBlob> {
        self.intervals
            .iter()
            .filter_map(|i| {
                Some(IntervalBlob {
                    index: i.index,
                    metric: Metric::from_name(&i.metric)?,
                    bytes: from_hex(&i.hex)?,
                })
            })
            .collect()
    }

    /// Interval blobs to the wire.
    pub fn wire_intervals(blobs: &[IntervalBlob]) -> Vec<IntervalWire> {
        blobs
            .iter()
            .map(|b| IntervalWire {
                index: b.index,
                metric: b.metric.name().to_owned(),
                hex: to_hex(&b.bytes),
            })
            .collect()
    }
}

/// Starts `parts` workers (this binary, these arguments, plus `--worker`) and waits for
/// their outputs.
pub fn spawn_and_wait(
    parts: u64,
    clients: u32,
    start: SystemTime,
) -> Result<Vec<WorkerOutput>, LoadError> {
    let exe = std::env::current_exe()
        .map_err(|e| LoadError::Executor(format!("cannot find this binary to re-run: {e}")))?;
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let start_unix_ns = start.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut children = Vec::new();
    for index in 0..parts {
        let spec = WorkerSpec { index, parts, start_unix_ns, clients };
        let child = Command::new(&exe)
            .args(&argv)
            .arg("--worker")
            .arg(spec.to_arg())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| LoadError::Executor(format!("starting worker {index}: {e}")))?;
        children.push((index, child));
    }
    let mut outputs = Vec::new();
    for (index, child) in children {
        let out = child
            .wait_with_output()
            .map_err(|e| LoadError::Executor(format!("worker {index}: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
        let parsed: WorkerOutput = serde_json::from_str(line).map_err(|e| {
            LoadError::Executor(format!(
                "worker {index} (exit {:?}) gave no measurements: {e}",
                out.status.code()
            ))
        })?;
        outputs.push(parsed);
    }
    Ok(outputs)
}
