//! `--server-pid`: what a run cost the server it tested, sans-IO. [`ServerWatch`] takes
//! readings of each watched process (CPU time and resident memory, with the generator's open
//! sessions at that moment) and gives a [`ServerUsage`]: the server's CPU time and peak memory
//! over the run, from which the report derives delivered packets per server CPU-second, the
//! server's CPU share and its memory per session. The readings themselves come from
//! `sampler.rs`.
//!
//! A process that was gone at the first reading is an error before the run starts; one that
//! goes away mid-run keeps its figures up to its last reading and is marked `gone`, and every
//! figure derived from an incomplete watch is withheld (a threshold on it cannot be judged),
//! since the CPU it used after its last reading is unknown.

use std::time::{Duration, Instant};

use manifold_sys::procstat::ProcSample;

/// One watched process over the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerProcess {
    /// Its process id.
    pub pid: u32,
    /// CPU time it used between the first and the last reading, seconds.
    pub cpu_s: f64,
    /// Resident memory at the first reading, KiB.
    pub rss_base_kib: u64,
    /// Largest resident memory read, KiB.
    pub rss_peak_kib: u64,
    /// Seconds into the watch when it was first found gone (`None`: there to the end).
    pub gone_at_s: Option<f64>,
}

/// What the watched processes used over a run (or several merged runs).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerUsage {
    /// Each process.
    pub processes: Vec<ServerProcess>,
    /// Seconds from the first reading to the last.
    pub wall_s: f64,
    /// Most generator sessions open at one reading.
    pub peak_sessions: u64,
}

impl ServerUsage {
    /// Whether every process was there from the first reading to the last: only then are the
    /// totals the server's.
    pub fn complete(&self) -> bool {
        !self.processes.is_empty() && self.processes.iter().all(|p| p.gone_at_s.is_none())
    }

    /// CPU seconds of every process.
    pub fn cpu_s(&self) -> f64 {
        self.processes.iter().map(|p| p.cpu_s).sum()
    }

    /// CPU time as a share of one core over the watch (2.0: two cores busy all the time).
    pub fn cpu_share(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.cpu_s() / self.wall_s
        } else {
            0.0
        }
    }

    /// Peak resident memory of every process, KiB.
    pub fn rss_peak_kib(&self) -> u64 {
        self.processes.iter().map(|p| p.rss_peak_kib).sum()
    }

    /// Resident memory at the start, every process, KiB.
    pub fn rss_base_kib(&self) -> u64 {
        self.processes.iter().map(|p| p.rss_base_kib).sum()
    }

    /// Packets delivered (received by the generator) per server CPU-second; `None` when the
    /// server used no measurable CPU (a clock tick is 10 ms).
    pub fn pkts_per_cpu_s(&self, delivered: u64) -> Option<f64> {
        let cpu = self.cpu_s();
        (cpu > 0.0).then(|| delivered as f64 / cpu)
    }

    /// Memory the server grew by per open session at the peak, KiB: (peak − start) / most
    /// sessions open at once. `None` when no session was open at a reading.
    pub fn rss_per_session_kib(&self) -> Option<f64> {
        let growth = self.rss_peak_kib().saturating_sub(self.rss_base_kib());
        (self.peak_sessions > 0).then(|| growth as f64 / self.peak_sessions as f64)
    }

    /// Adds another run's usage (`manifold merge`, `--processes`): runs are concurrent, so the
    /// longest watch and the largest session peak are the merge's; a pid watched by both (one
    /// server measured from two generators) counts once, with the larger figures, and other
    /// pids add up. The pid is only unique on one machine: hlogs merged from several machines
    /// each watching its own local server could share one by chance.
    pub fn merge(&mut self, other: &ServerUsage) {
        self.wall_s = self.wall_s.max(other.wall_s);
        self.peak_sessions = self.peak_sessions.max(other.peak_sessions);
        for p in &other.processes {
            match self.processes.iter_mut().find(|q| q.pid == p.pid) {
                Some(q) => {
                    q.cpu_s = q.cpu_s.max(p.cpu_s);
                    q.rss_base_kib = q.rss_base_kib.min(p.rss_base_kib);
                    q.rss_peak_kib = q.rss_peak_kib.max(p.rss_peak_kib);
                    q.gone_at_s = match (q.gone_at_s, p.gone_at_s) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => self.processes.push(p.clone()),
            }
        }
    }
}

/// Why a watch could not start.
#[derive(Debug, thiserror::Error)]
#[error("--server-pid {pid}: {reason}")]
pub struct ServerPidError {
    /// The process asked for.
    pub pid: u32,
    /// What is wrong (no such process, /proc unreadable).
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Watched {
    pid: u32,
    first: ProcSample,
    last: ProcSample,
    rss_peak_kib: u64,
    gone_at: Option<Duration>,
}

/// The readings of the watched processes over one run; fed by the sampler, read at the end.
#[derive(Debug, Clone)]
pub struct ServerWatch {
    start: Instant,
    last_reading: Instant,
    watched: Vec<Watched>,
    peak_sessions: u64,
}

impl ServerWatch {
    /// Starts a watch at `now` from each process's first reading (`None`: the reading failed,
    /// with why). A process that cannot be read at the start is an error: the run would report
    /// nothing about it.
    pub fn start(
        now: Instant,
        first: Vec<(u32, Result<ProcSample, String>)>,
    ) -> Result<ServerWatch, ServerPidError> {
        let mut watched = Vec::with_capacity(first.len());
        for (pid, reading) in first {
            let s = reading.map_err(|reason| ServerPidError { pid, reason })?;
            watched.push(Watched {
                pid,
                first: s,
                last: s,
                rss_peak_kib: s.rss_kib,
                gone_at: None,
            });
        }
        Ok(ServerWatch { start: now, last_reading: now, watched, peak_sessions: 0 })
    }

    /// The pids watched, in the order given.
    pub fn pids(&self) -> Vec<u32> {
        self.watched.iter().map(|w| w.pid).collect()
    }

    /// Takes one round of readings at `now` (`None` for a process that could not be read: it
    /// is gone from then on, even if its pid comes back, as that would be another process),
    /// with `sessions` generator sessions open.
    pub fn handle_readings(
        &mut self,
        now: Instant,
        readings: &[(u32, Option<ProcSample>)],
        sessions: u64,
    ) {
        self.last_reading = self.last_reading.max(now);
        self.peak_sessions = self.peak_sessions.max(sessions);
        let at = now.saturating_duration_since(self.start);
        for (pid, reading) in readings {
            let Some(w) = self.watched.iter_mut().find(|w| w.pid == *pid) else { continue };
            if w.gone_at.is_some() {
                continue;
            }
            match reading {
                // CPU time never goes back: a smaller one is another process under the pid.
                Some(s) if s.cpu >= w.last.cpu => {
                    w.last = *s;
                    w.rss_peak_kib = w.rss_peak_kib.max(s.rss_kib);
                }
                _ => w.gone_at = Some(at),
            }
        }
    }

    /// What the processes used from the first reading to the last.
    pub fn usage(&self) -> ServerUsage {
        ServerUsage {
            processes: self
                .watched
                .iter()
                .map(|w| ServerProcess {
                    pid: w.pid,
                    cpu_s: w.last.cpu.saturating_sub(w.first.cpu).as_secs_f64(),
                    rss_base_kib: w.first.rss_kib,
                    rss_peak_kib: w.rss_peak_kib,
                    gone_at_s: w.gone_at.map(|d| d.as_secs_f64()),
                })
                .collect(),
            wall_s: self.last_reading.saturating_duration_since(self.start).as_secs_f64(),
            peak_sessions: self.peak_sessions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu_ms: u64, rss_kib: u64) -> ProcSample {
        ProcSample { cpu: Duration::from_millis(cpu_ms), rss_kib }
    }

    #[test]
    fn cpu_and_memory_over_the_run() {
        let t0 = Instant::now();
        let mut w = ServerWatch::start(t0, vec![(7, Ok(sample(1_000, 10_000)))]).unwrap();
        w.handle_readings(t0 + Duration::from_secs(1), &[(7, Some(sample(1_500, 30_000)))], 100);
        w.handle_readings(t0 + Duration::from_secs(2), &[(7, Some(sample(2_000, 20_000)))], 50);
        let u = w.usage();
        assert!(u.complete());
        assert_eq!(u.wall_s, 2.0);
        assert_eq!(u.cpu_s(), 1.0);
        assert_eq!(u.cpu_share(), 0.5);
        assert_eq!(u.rss_peak_kib(), 30_000);
        assert_eq!(u.peak_sessions, 100);
        assert_eq!(u.pkts_per_cpu_s(400_000), Some(400_000.0));
        // (30,000 - 10,000) KiB over the 100 sessions open at the peak.
        assert_eq!(u.rss_per_session_kib(), Some(200.0));
    }

    #[test]
    fn a_missing_process_at_the_start_is_an_error() {
        let e =
            ServerWatch::start(Instant::now(), vec![(4, Err("no process 4".into()))]).unwrap_err();
        assert_eq!(e.pid, 4);
        assert!(e.to_string().contains("--server-pid 4: no process 4"), "{e}");
    }

    #[test]
    fn a_process_gone_mid_run_keeps_its_figures_and_makes_the_watch_incomplete() {
        let t0 = Instant::now();
        let first = vec![(1, Ok(sample(0, 100))), (2, Ok(sample(0, 100)))];
        let mut w = ServerWatch::start(t0, first).unwrap();
        let at = |s| t0 + Duration::from_secs(s);
        w.handle_readings(at(1), &[(1, Some(sample(300, 100))), (2, Some(sample(200, 100)))], 1);
        w.handle_readings(at(2), &[(1, Some(sample(600, 100))), (2, None)], 1);
        // The pid back with less CPU time: another process; still gone.
        w.handle_readings(at(3), &[(1, Some(sample(900, 100))), (2, Some(sample(10, 100)))], 1);
        let u = w.usage();
        assert!(!u.complete());
        assert_eq!(u.processes[1].gone_at_s, Some(2.0));
        assert!((u.processes[1].cpu_s - 0.2).abs() < 1e-9);
        assert!((u.cpu_s() - 1.1).abs() < 1e-9);
        // A reused pid whose CPU time went backwards is caught too.
        let mut w = ServerWatch::start(t0, vec![(3, Ok(sample(500, 1)))]).unwrap();
        w.handle_readings(at(1), &[(3, Some(sample(100, 1)))], 0);
        assert!(!w.usage().complete());
    }

    #[test]
    fn no_cpu_or_no_session_gives_no_ratio() {
        let t0 = Instant::now();
        let w = ServerWatch::start(t0, vec![(1, Ok(sample(5, 100)))]).unwrap();
        let u = w.usage();
        assert_eq!(u.pkts_per_cpu_s(1000), None);
        assert_eq!(u.rss_per_session_kib(), None);
        assert_eq!(u.cpu_share(), 0.0);
        assert!(!ServerUsage::default().complete(), "nothing watched is not a measurement");
    }

    #[test]
    fn merged_usages_count_a_shared_pid_once() {
        let p = |pid, cpu_s, peak| ServerProcess {
            pid,
            cpu_s,
            rss_base_kib: 10,
            rss_peak_kib: peak,
            gone_at_s: None,
        };
        let mut a = ServerUsage { processes: vec![p(1, 2.0, 50)], wall_s: 10.0, peak_sessions: 5 };
        let b = ServerUsage {
            processes: vec![p(1, 2.5, 40), p(2, 1.0, 20)],
            wall_s: 9.0,
            peak_sessions: 7,
        };
        a.merge(&b);
        assert_eq!(a.processes.len(), 2);
        assert_eq!(a.cpu_s(), 3.5);
        assert_eq!(a.rss_peak_kib(), 70);
        assert_eq!(a.wall_s, 10.0);
        assert_eq!(a.peak_sessions, 7);
    }
}
