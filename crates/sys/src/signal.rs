//! Signals without signal handlers: block them in every thread (the mask is inherited by
//! threads spawned afterwards) and take them in one thread with `sigwait`, which can do anything
//! a normal thread can, unlike a handler. SIGINT/SIGTERM stop a process; the relay also takes
//! SIGHUP (reload its TLS certificate) the same way.

use std::io;
use std::mem;

/// The signals a long-running manifold process shuts down on.
pub const SHUTDOWN_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The signal that asks a server to reload its files (the relay's TLS certificate).
pub const RELOAD_SIGNAL: libc::c_int = libc::SIGHUP;

/// The relay's signals: shutdown, and reload.
pub const SERVER_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, RELOAD_SIGNAL];

/// A signal set holding `signals`.
fn set_of(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    if unsafe { libc::sigemptyset(&mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for &sig in signals {
        // SAFETY: `set` was initialised by sigemptyset; `sig` is a valid signal number.
        if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// Blocks SIGINT and SIGTERM in the calling thread, so that threads spawned afterwards inherit
/// the mask and the signals wait for [`wait_shutdown_signal`] instead of killing the process.
/// Call it before spawning any thread.
pub fn block_shutdown_signals() -> io::Result<()> {
    block_signals(&SHUTDOWN_SIGNALS)
}

/// Blocks `signals` in the calling thread (and the threads it spawns afterwards), so that
/// they wait for [`wait_signal`]. Call it before spawning any thread.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = set_of(signals)?;
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for SIGINT or SIGTERM (which must be blocked, see [`block_shutdown_signals`]) and
/// returns the signal number.
pub fn wait_shutdown_signal() -> io::Result<libc::c_int> {
    wait_signal(&SHUTDOWN_SIGNALS)
}

/// Waits for one of `signals` (which must be blocked, see [`block_signals`]) and returns it.
pub fn wait_signal(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = set_of(signals)?;
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is an initialised sigset_t and `sig` a valid place for the result.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// The name of a signal taken here, for logs.
pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_sigterm_is_taken_by_sigwait() {
        // On a thread of its own: the mask is per thread, and the signal is sent to that thread
        // only (a process-directed SIGTERM could land on a test thread without the mask).
        std::thread::spawn(|| {
            block_shutdown_signals().unwrap();
            // SAFETY: pthread_self has no preconditions; pthread_kill targets this live thread.
            let rc = unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGTERM) };
            assert_eq!(rc, 0);
            let sig = wait_shutdown_signal().unwrap();
            assert_eq!(name(sig), "SIGTERM");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_blocked_sighup_is_taken_with_the_server_signals() {
        std::thread::spawn(|| {
            block_signals(&SERVER_SIGNALS).unwrap();
            // SAFETY: pthread_self has no preconditions; pthread_kill targets this live thread.
            let rc = unsafe { libc::pthread_kill(libc::pthread_self(), RELOAD_SIGNAL) };
            assert_eq!(rc, 0);
            let sig = wait_signal(&SERVER_SIGNALS).unwrap();
            assert_eq!(name(sig), "SIGHUP");
        })
        .join()
        .unwrap();
    }
}
