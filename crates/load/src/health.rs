//! The generator's own health: CPU, timer lag, receive-queue drops, the open-file limit, and
//! whether the run was limited by the generator rather than the server.

use std::time::Duration;

use crate::metrics::{Metric, Metrics};
use manifold_sys::limits;

/// File descriptors kept free for the process itself (stdio, glommio rings and eventfds, the
/// JSON file, the probe connection), plus this many per shard.
const FD_RESERVE: u64 = 64;
const FD_RESERVE_PER_SHARD: u64 = 16;

/// Timer lag p99 above which the generator counts as overloaded.
const TIMER_LAG_LIMIT: Duration = Duration::from_millis(20);
/// CPU use (share of the shards' cores) above which the generator counts as saturated.
const CPU_LIMIT: f64 = 0.9;
/// Share of starts behind schedule above which the generator counts as too slow.
const BEHIND_LIMIT: f64 = 0.01;

/// How many sessions the open-file limit has room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FdBudget {
    /// Soft limit after raising it to the hard one.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
    /// Descriptors open before the run.
    pub in_use: u64,
    /// Descriptors one session needs (1 TCP, plus 2 UDP per track when over UDP).
    pub per_session: u64,
    /// Sessions that fit at once.
    pub fits: u64,
}

impl FdBudget {
    /// Raises the soft limit to the hard one and works out how many sessions needing
    /// `per_session` descriptors fit next to `shards` shards.
    pub fn raise_and_measure(per_session: u64, shards: usize) -> FdBudget {
        let (soft, hard) =
            limits::raise_nofile().or_else(|_| limits::nofile()).unwrap_or((1024, 1024));
        let in_use = limits::open_fds().unwrap_or(16);
        FdBudget::compute(soft, hard, in_use, per_session, shards)
    }

    /// The arithmetic of [`raise_and_measure`](Self::raise_and_measure), for tests.
    pub fn compute(soft: u64, hard: u64, in_use: u64, per_session: u64, shards: usize) -> FdBudget {
        let reserve = FD_RESERVE + FD_RESERVE_PER_SHARD * shards as u64 + in_use;
        let fits = soft.saturating_sub(reserve) / per_session.max(1);
        FdBudget { soft, hard, in_use, per_session: per_session.max(1), fits }
    }
}

/// The generator's health over a run, and whether it limited the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Health {
    /// Cores the generator ran on (shards times processes, at most the online CPUs).
    pub shards: usize,
    /// CPU time used by the process, seconds.
    pub cpu_seconds: f64,
    /// Wall time of the run, seconds.
    pub wall_seconds: f64,
    /// CPU time as a share of the shards' cores (1.0 = every shard busy all the time).
    pub cpu_share: f64,
    /// Health timer lag p99, microseconds.
    pub timer_lag_p99_us: u64,
    /// Health timer lag max, microseconds.
    pub timer_lag_max_us: u64,
    /// Packets the generator's sockets dropped for want of buffer (`SO_RXQ_OVFL`).
    pub rxq_drops: u64,
    /// The longest its UDP sockets went between reads, milliseconds (0: none read on a grid).
    pub udp_read_interval_max_ms: u64,
    /// The open-file budget.
    pub fd: FdBudget,
    /// Sessions not started because they would not fit.
    pub clipped: u64,
    /// Starts behind schedule.
    pub behind_schedule: u64,
    /// Whether the generator itself limited the run (its numbers then say as much about the
    /// generator as about the server).
    pub generator_limited: bool,
    /// Why, in words.
    pub reasons: Vec<String>,
}

impl Health {
    /// Judges a run from its merged metrics, CPU use and wall time.
    pub fn assess(
        metrics: &Metrics,
        shards: usize,
        cpu: Duration,
        wall: Duration,
        fd: FdBudget,
    ) -> Health {
        let lag = metrics.histogram(Metric::TimerLag);
        let (lag_p99, lag_max) =
            if lag.is_empty() { (0, 0) } else { (lag.value_at_quantile(0.99), lag.max()) };
        let wall_s = wall.as_secs_f64().max(1e-9);
        let cpu_share = cpu.as_secs_f64() / (wall_s * shards.max(1) as f64);
        let c = &metrics.counts;
        let mut reasons = Vec::new();
        if c.clipped > 0 {
            reasons.push(format!(
                "{} sessions not started: the open-file limit ({} soft, {} hard) fits {} sessions \
                 of {} descriptors each",
                c.clipped, fd.soft, fd.hard, fd.fits, fd.per_session
            ));
        }
        if c.started > 0 && c.behind_schedule as f64 > BEHIND_LIMIT * c.started as f64 {
            reasons.push(format!(
                "{} of {} starts were behind schedule (the generator could not keep the arrival \
                 rate)",
                c.behind_schedule, c.started
            ));
        }
        if lag_p99 > TIMER_LAG_LIMIT.as_micros() as u64 {
            reasons
                .push(format!("timer lag p99 {:.1} ms: shards overloaded", lag_p99 as f64 / 1e3));
        }
        if cpu_share > CPU_LIMIT {
            reasons.push(format!("generator CPU {:.0}% of its cores", cpu_share * 100.0));
        }
        if c.rxq_drops > 0 {
            reasons.push(format!(
                "the generator's sockets dropped {} packets (receive queue full): part of the \
                 loss is the generator's",
                c.rxq_drops
            ));
        }
        Health {
            shards,
            cpu_seconds: cpu.as_secs_f64(),
            wall_seconds: wall.as_secs_f64(),
            cpu_share,
            timer_lag_p99_us: lag_p99,
            timer_lag_max_us: lag_max,
            rxq_drops: c.rxq_drops,
            udp_read_interval_max_ms: c.udp_read_interval_max_ms,
            fd,
            clipped: c.clipped,
            behind_schedule: c.behind_schedule,
            generator_limited: !reasons.is_empty(),
            reasons,
        }
    }
}
