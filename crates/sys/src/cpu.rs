//! Pinning a thread to a CPU.

use std::io;
use std::mem;

/// Pins the calling thread to CPU `cpu` (`sched_setaffinity(2)`).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no CPU {cpu}")));
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_to_an_allowed_cpu_and_refuses_a_bogus_one() {
        // On a thread of its own, so the test harness's threads keep their affinity.
        std::thread::spawn(|| {
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
            let first: usize = list.trim().split([',', '-']).next().unwrap().parse().unwrap();
            pin_to_cpu(first).unwrap();
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap();
            assert_eq!(list.trim(), first.to_string());
            let e = pin_to_cpu(libc::CPU_SETSIZE as usize).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        })
        .join()
        .unwrap();
    }
}
