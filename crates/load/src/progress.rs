//! Live counters the shards bump, and the once-a-second progress line on stderr when it is a
//! terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters shared by every shard (relaxed atomics, bumped per batch, not per packet), and
/// the setup latencies so far (one histogram behind a mutex, taken once per session).
#[derive(Debug, Default)]
pub struct Live {
    /// Setup latencies so far, microseconds (for the progress line's p99).
    pub setups: Mutex<Option<hdrhistogram::Histogram<u64>>>,
    /// Sessions started.
    pub started: AtomicU64,
    /// Sessions in progress.
    pub active: AtomicU64,
    /// Sessions that reached PLAY.
    pub played: AtomicU64,
    /// RTP packets received.
    pub packets: AtomicU64,
    /// Failed sessions.
    pub errors: AtomicU64,
}

impl Live {
    /// A session reached PLAY after `setup` (from its intended start).
    pub fn setup_done(&self, setup: Duration) {
        self.played.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut h) = self.setups.lock() {
            if h.is_none() {
                *h =
                    hdrhistogram::Histogram::new_with_bounds(1, crate::metrics::HIGHEST_US, 3).ok();
            }
            if let Some(h) = h.as_mut() {
                h.saturating_record(u64::try_from(setup.as_micros()).unwrap_or(u64::MAX));
            }
        }
    }

    /// The p99 of the setup latencies so far.
    pub fn setup_p99(&self) -> Option<Duration> {
        let h = self.setups.lock().ok()?;
        let h = h.as_ref().filter(|h| !h.is_empty())?;
        Some(Duration::from_micros(h.value_at_quantile(0.99)))
    }
}

/// The progress printer; stops (and ends its line) on [`Progress::stop`].
#[derive(Debug)]
pub(crate) struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts printing once a second if stderr is a terminal and `enabled`.
    pub(crate) fn start(live: Arc<Live>, enabled: bool, duration: Duration) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { stop, thread: None };
        }
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("load-progress".into())
            .spawn(move || {
                let begin = Instant::now();
                let (mut played, mut packets) = (0u64, 0u64);
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    let p = live.played.load(Ordering::Relaxed);
                    let k = live.packets.load(Ordering::Relaxed);
                    let p99 = live.setup_p99().map_or_else(
                        || "-".to_owned(),
                        |d| format!("{:.1}ms", d.as_secs_f64() * 1e3),
                    );
                    let line = format!(
                        "\r[{:>5.1}s/{:.0}s] active {} started {} setups/s {} setup p99 {p99} pkts/s \
                         {} errors {}   ",
                        begin.elapsed().as_secs_f64(),
                        duration.as_secs_f64(),
                        live.active.load(Ordering::Relaxed),
                        live.started.load(Ordering::Relaxed),
                        p - played,
                        k - packets,
                        live.errors.load(Ordering::Relaxed),
                    );
                    (played, packets) = (p, k);
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(line.as_bytes());
                    let _ = err.flush();
                }
                let _ = std::io::stderr().write_all(b"\n");
            })
            .ok();
        Progress { stop, thread }
    }

    /// Stops the printer.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
