//! What the harness reads about processes and the machine from /proc: CPU time and resident
//! memory (manifold-sys's readers), the CPU model, the kernel, the load average. Signals go
//! out through manifold-sys.

use std::time::Duration;

use manifold_sys::procstat;

use serde::Serialize;

/// CPU time (user + system, every thread) a process has used so far; `None` once it is gone.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    procstat::cpu_time(pid).ok()
}

/// Resident set size in KiB; `None` once the process is gone.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    procstat::rss_kib(pid).ok()
}

/// The machine a run was taken on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Online CPUs.
    pub(crate) nproc: usize,
    /// As /proc/cpuinfo names it.
    pub(crate) cpu: String,
    /// `uname -r`.
    pub(crate) kernel: String,
    /// The 1-minute load average when the run began and ended.
    pub(crate) load_start: f64,
    pub(crate) load_end: f64,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        let load = load_average();
        Machine { nproc: online_cpus(), cpu, kernel, load_start: load, load_end: load }
    }
}

/// Online CPUs.
pub(crate) fn online_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The 1-minute load average.
pub(crate) fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 100);
        assert!(cpu_time(me).is_some());
    }
}
