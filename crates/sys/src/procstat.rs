//! Another process's CPU time and resident memory, read from /proc: what the perf harness and
//! the generator's `--server-pid` sample. The parsers are plain functions of the file texts.

use std::io;
use std::time::Duration;

/// One reading of a process: its CPU time and resident set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system time, every thread, since the process started.
    pub cpu: Duration,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

impl ProcSample {
    /// Reads process `pid` now. `NotFound` when there is no such process (or it exited between
    /// the two reads); `InvalidData` when /proc answers in a form we do not know.
    pub fn read(pid: u32) -> io::Result<ProcSample> {
        let cpu = cpu_time(pid)?;
        let rss_kib = rss_kib(pid)?;
        Ok(ProcSample { cpu, rss_kib })
    }
}

/// CPU time (user + system, every thread) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = read(pid, "stat")?;
    let ticks = parse_cpu_ticks(&stat).ok_or_else(|| bad(pid, "stat"))?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// Resident set size of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = read(pid, "status")?;
    parse_status_kib(&status, "VmRSS:").ok_or_else(|| bad(pid, "status"))
}

fn read(pid: u32, file: &str) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).map_err(|e| {
        // A process that exited leaves ENOENT, or ESRCH for one being reaped.
        if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) {
            io::Error::new(io::ErrorKind::NotFound, format!("no process {pid}"))
        } else {
            e
        }
    })
}

fn bad(pid: u32, file: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/{file}: unknown format"))
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// A `KEY: N kB` line's number from the text of /proc/PID/status.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second, the unit of /proc/PID/stat's times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ticks_past_a_name_with_spaces_and_parens() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 \
                    3 0 99 1000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_status_kib("VmRSS:\t  2048 kB\n", "VmRSS:"), Some(2048));
        assert_eq!(parse_status_kib("VmPeak:\t  2048 kB\n", "VmRSS:"), None);
    }

    #[test]
    fn reads_this_process_and_not_a_missing_one() {
        let me = std::process::id();
        // Burn a little CPU so the counter has something to show.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let s = ProcSample::read(me).unwrap();
        assert!(s.cpu > Duration::ZERO);
        assert!(s.rss_kib > 100);
        // Above the kernel's pid_max (at most 2^22): never a process.
        let gone = ProcSample::read(1 << 23).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound, "{gone}");
    }
}
