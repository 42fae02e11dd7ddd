//! Socket buffer sizes: asking past `net.core.rmem_max`/`wmem_max` where the process may, and
//! what a receive queue holds now.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use crate::recv::set_int_opt;

/// Which of a socket's buffers.
#[derive(Clone, Copy)]
enum Side {
    Receive,
    Send,
}

impl Side {
    fn set(self, sock: &socket2::SockRef<'_>, bytes: usize) -> io::Result<()> {
        match self {
            Side::Receive => sock.set_recv_buffer_size(bytes),
            Side::Send => sock.set_send_buffer_size(bytes),
        }
    }

    fn get(self, sock: &socket2::SockRef<'_>) -> io::Result<usize> {
        match self {
            Side::Receive => sock.recv_buffer_size(),
            Side::Send => sock.send_buffer_size(),
        }
    }

    /// The option that passes the sysctl cap.
    fn force(self) -> libc::c_int {
        match self {
            Side::Receive => libc::SO_RCVBUFFORCE,
            Side::Send => libc::SO_SNDBUFFORCE,
        }
    }
}

/// A socket buffer that was asked for, and what the kernel granted, both in the bytes the
/// caller asked in (the kernel reports twice that, for its own overhead; halved here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferSize {
    /// The bytes asked for.
    pub asked: usize,
    /// The bytes granted.
    pub granted: usize,
}

impl BufferSize {
    /// Whether the kernel granted less than was asked: `net.core.rmem_max` or `wmem_max`
    /// capped it, and the process may not pass the cap.
    pub fn capped(&self) -> bool {
        self.granted < self.asked
    }
}

/// Asks for a receive buffer of `bytes` (`SO_RCVBUF`); where `net.core.rmem_max` caps it
/// lower, tries `SO_RCVBUFFORCE`, which root (`CAP_NET_ADMIN`) may use past the cap.
pub fn set_recv_buffer(fd: impl AsFd, bytes: usize) -> io::Result<BufferSize> {
    set_buffer(fd.as_fd(), Side::Receive, bytes)
}

/// [`set_recv_buffer`] for the send buffer: `SO_SNDBUF`, then `SO_SNDBUFFORCE` past
/// `net.core.wmem_max`.
pub fn set_send_buffer(fd: impl AsFd, bytes: usize) -> io::Result<BufferSize> {
    set_buffer(fd.as_fd(), Side::Send, bytes)
}

fn set_buffer(fd: BorrowedFd<'_>, side: Side, bytes: usize) -> io::Result<BufferSize> {
    let sock = socket2::SockRef::from(&fd);
    side.set(&sock, bytes)?;
    let got = side.get(&sock)?;
    let size = |kernel: usize| BufferSize { asked: bytes, granted: kernel / 2 };
    if !size(got).capped() {
        return Ok(size(got));
    }
    let asked = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    match set_int_opt(fd, libc::SOL_SOCKET, side.force(), asked) {
        Ok(()) => side.get(&sock).map(size),
        // Not privileged: the capped buffer is what there is.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(size(got)),
        Err(e) => Err(e),
    }
}

/// What the datagrams queued on `fd` now take of its receive buffer, bytes (`SO_MEMINFO`):
/// the kernel's own count, against which [`crate::Message::buffer_charge`] is checked. A system call;
/// not for every read.
pub fn queued_charge(fd: impl AsFd) -> io::Result<usize> {
    // SK_MEMINFO_VARS: the kernel fills this many u32 counters.
    let mut info = [0u32; 9];
    let mut len = mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes, and the kernel writes at most `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[libc::SK_MEMINFO_RMEM_ALLOC as usize] as usize)
}
