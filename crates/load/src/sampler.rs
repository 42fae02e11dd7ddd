//! The I/O half of `--server-pid`: a thread that reads each watched process's CPU time and
//! resident memory from /proc every [`SAMPLE_EVERY`] during the run, with the generator's open
//! sessions, and feeds them to a [`ServerWatch`] (the arithmetic is there).

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use manifold_sys::procstat::ProcSample;

use crate::progress::Live;
use crate::server::{ServerPidError, ServerUsage, ServerWatch};

/// Time between two readings: often enough to catch the memory peak of a run of seconds,
/// rarely enough to cost nothing (two small /proc reads per process).
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// A running watch; [`stop`](Self::stop) takes the last readings and gives the usage.
#[derive(Debug)]
pub(crate) struct Sampler {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<ServerWatch>,
}

impl Sampler {
    /// Reads every process once (an error if one cannot be read) and starts sampling; `live`
    /// gives the sessions open at each reading (none: counted as 0).
    pub(crate) fn start(pids: &[u32], live: Option<Arc<Live>>) -> Result<Sampler, ServerPidError> {
        let first = pids
            .iter()
            .map(|&pid| (pid, ProcSample::read(pid).map_err(|e| e.to_string())))
            .collect();
        let mut watch = ServerWatch::start(Instant::now(), first)?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("server-pid".into())
            .spawn(move || {
                let pids = watch.pids();
                loop {
                    let end = !matches!(
                        stopped.recv_timeout(SAMPLE_EVERY),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    let readings: Vec<(u32, Option<ProcSample>)> =
                        pids.iter().map(|&pid| (pid, ProcSample::read(pid).ok())).collect();
                    let sessions = live.as_ref().map_or(0, |l| l.active.load(Ordering::Relaxed));
                    watch.handle_readings(Instant::now(), &readings, sessions);
                    if end {
                        return watch;
                    }
                }
            })
            .map_err(|e| ServerPidError {
                pid: pids.first().copied().unwrap_or_default(),
                reason: format!("cannot start the sampling thread: {e}"),
            })?;
        Ok(Sampler { stop, thread })
    }

    /// Takes the last readings now and returns what the processes used.
    pub(crate) fn stop(self) -> ServerUsage {
        let _ = self.stop.send(());
        // The thread only reads /proc; it cannot panic short of a bug, which shows here.
        self.thread.join().map(|w| w.usage()).unwrap_or_default()
    }
}
