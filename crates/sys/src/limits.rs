//! The open-file limit, and the CPU time of the process and of the calling thread.

use std::io;
use std::mem;
use std::time::Duration;

/// The open-file limit, `(soft, hard)`.
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid rlimit for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Raises the soft open-file limit to the hard one (which needs no privilege) and returns the
/// new `(soft, hard)`. Thousands of clients or readers need more descriptors than a default
/// soft limit of 1024; children inherit the raised limit.
pub fn raise_nofile() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        let r = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: `r` is a valid rlimit, read by the kernel.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    nofile()
}

/// Open file descriptors of this process right now.
pub fn open_fds() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64)
}

/// CPU time this process has used, user plus system (zero if the kernel will not say).
pub fn cpu_time() -> Duration {
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut u: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `u` is a valid rusage for the kernel to fill.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time the calling thread has used so far, user plus system, including the softirq work
/// it ran inline (zero if the kernel will not say).
pub fn thread_cpu_time() -> Duration {
    // SAFETY: timespec is plain integers; all-zero is a valid value.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: `ts` is valid for writes; the clock id is a constant the kernel knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let (_, hard) = nofile().unwrap();
        let (soft, hard_after) = raise_nofile().unwrap();
        assert_eq!(hard_after, hard);
        assert_eq!(soft, hard);
    }

    #[test]
    fn open_fds_and_cpu_time_answer() {
        assert!(open_fds().unwrap() >= 3);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > Duration::ZERO);
    }

    #[test]
    fn a_threads_cpu_time_is_its_own() {
        let busy = std::thread::spawn(|| {
            let start = thread_cpu_time();
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            thread_cpu_time() - start
        });
        let idle = std::thread::spawn(|| {
            let start = thread_cpu_time();
            std::thread::sleep(Duration::from_millis(50));
            thread_cpu_time() - start
        });
        let (busy, idle) = (busy.join().unwrap(), idle.join().unwrap());
        assert!(busy > Duration::ZERO);
        assert!(
            idle < busy,
            "a sleeping thread is not billed for a busy one: {idle:?} vs {busy:?}"
        );
    }
}
