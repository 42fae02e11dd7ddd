//! The blaster's own syscalls: poll (packet thread) and non-blocking gathered writes on stream
//! sockets. Every `unsafe` block of the crate lives here, each with its `// SAFETY:` line. CPU
//! pinning, the open-files limit, signals, randomness and the control plane's epoll are
//! manifold-sys's; UDP sends are manifold-udp's.

// The workspace denies unsafe code; this module is the one place that needs it (libc calls).
#![allow(unsafe_code, reason = "syscall wrappers")]

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::RawFd;

/// Most slices one `sendmsg` takes (`IOV_MAX` on Linux).
pub(crate) const IOV_MAX: usize = 1024;

/// One non-blocking `sendmsg` of gathered slices (at most [`IOV_MAX`]) on a connected stream
/// socket, without SIGPIPE. Returns the bytes the kernel took (`WouldBlock` when none).
pub(crate) fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let bufs = &bufs[..bufs.len().min(IOV_MAX)];
    // SAFETY: msghdr is pointers and integers; all-zero (null, 0) is a valid value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix; the kernel only reads it.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len() as _;
    loop {
        // SAFETY: `msg` points at `bufs.len()` valid iovecs, each borrowing live memory for the
        // duration of the call; no address and no control data.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `poll(2)` on `fds` for up to `timeout_ms` (-1: forever); `EINTR` counts as a timeout.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is valid for fds.len() reads and writes.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    Ok(n as usize)
}
