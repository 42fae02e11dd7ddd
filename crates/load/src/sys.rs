//! The generator's syscall module: resource limits, CPU usage, and handing a socket we bound
//! ourselves to glommio. Every unsafe block wraps one call and carries a `// SAFETY:` line.
// The only module of this crate that may use `unsafe`.
#![allow(unsafe_code, reason = "syscall wrappers")]

use std::io;
use std::mem;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::Duration;

/// The open-file limit `(soft, hard)`.
pub(crate) fn nofile() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid rlimit for the kernel to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Raises the soft open-file limit to the hard one; returns the new `(soft, hard)`.
pub(crate) fn raise_nofile() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        let r = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: `r` is a valid rlimit, read by the kernel.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    nofile()
}

/// Open file descriptors of this process right now.
pub(crate) fn open_fds() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64)
}

/// CPU time this process has used, user plus system.
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut u: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `u` is a valid rusage for the kernel to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Hands a bound UDP socket to glommio (which would otherwise bind with `SO_REUSEPORT`, and
/// then two clients' port pairs could share a port). Must run on a glommio executor thread.
pub(crate) fn glommio_udp(socket: socket2::Socket) -> glommio::net::UdpSocket {
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is an open UDP socket we own (just released from `socket`), and ownership
    // passes to the glommio socket, which closes it.
    unsafe { glommio::net::UdpSocket::from_raw_fd(fd) }
}

/// One `recvmmsg` batch from a glommio UDP socket, without waiting.
pub(crate) fn recv_batch(
    batch: &mut manifold_udp::RecvBatch,
    socket: &glommio::net::UdpSocket,
) -> io::Result<usize> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the fd belongs to `socket`, which is borrowed (so open) for the whole call.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    batch.recv(fd)
}
