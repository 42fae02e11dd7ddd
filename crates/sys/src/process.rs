//! Other processes: signalling a child, and tying a child's life to ours.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

/// Sends `signal` to process `pid` (`kill(2)`); `ESRCH` when there is no such process.
pub fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) takes plain integers; a stale pid at worst signals nothing (ESRCH).
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the child started by `command` receive SIGTERM when the thread that starts it exits
/// (however it exits, SIGKILL included), so an interrupted parent leaves no orphan behind.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and calls only prctl(2), which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminates_a_child() {
        let mut command = Command::new("sleep");
        command.arg("30");
        die_with_parent(&mut command);
        let mut child = command.spawn().unwrap();
        send_signal(child.id(), libc::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        // The process is reaped: its pid names nothing now (or, rarely, a newer process; do
        // not signal it, only check a clearly impossible pid).
        assert!(send_signal(u32::MAX, 0).is_err());
    }
}
