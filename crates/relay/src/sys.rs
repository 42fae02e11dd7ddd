//! The relay's syscall module: what only the relay does (shutting a socket down, `SO_RCVBUF` of
//! a glommio socket, the gathering `sendmsg` of TCP egress), and the shared syscalls of
//! `manifold-sys` re-exported. Every `unsafe` block of the crate lives here, each with its
//! `// SAFETY:` line.
// The workspace denies unsafe code; this module is the one place that needs it (libc calls).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd};
use std::sync::Once;

// Shared with the generator and the perf tools; re-exported so the relay's modules keep one
// path to every syscall.
pub(crate) use manifold_sys::{fd_of, fill_random, glommio_udp};

/// Four bytes of kernel randomness (outgoing SSRCs).
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    u32::from_be_bytes(b)
}

/// Shuts down both directions of a socket, so that a task blocked reading it wakes up with
/// end of stream. Errors (e.g. not connected any more) are ignored: the socket is going away.
pub(crate) fn shutdown_socket(fd: BorrowedFd<'_>) {
    let _ = socket2::SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
}

/// Receive buffer of the sockets an upstream's RTP arrives on: 4 MiB holds ~3 s of a
/// 10 Mbit/s stream, so a burst from the sender or a shard busy for a moment loses nothing
/// upstream of every reader. Past `net.core.rmem_max` only as root; else the relay warns.
pub(crate) const INGEST_RCVBUF: usize = 4 << 20;

/// Sets `SO_RCVBUF` of a socket glommio owns, past `net.core.rmem_max` where the relay may
/// (`SO_RCVBUFFORCE`); best effort: a refusal leaves a smaller buffer, said once per process,
/// since what it drops is lost to every reader of the stream.
pub(crate) fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) {
    static CAPPED: Once = Once::new();
    let set = manifold_udp::set_recv_buffer(fd, bytes);
    said_if_short(set, &CAPPED, "upstream RTP receive", "rmem_max", "lost to every reader");
}

/// Send buffer of a shard's UDP egress socket: a keyframe's burst to many readers waits here
/// while a link (or a qdisc) drains.
pub(crate) const EGRESS_SNDBUF: usize = 4 << 20;

/// Sets `SO_SNDBUF`, past `net.core.wmem_max` where the relay may (`SO_SNDBUFFORCE`); a
/// smaller buffer is said once per process.
pub(crate) fn set_send_buffer(fd: BorrowedFd<'_>, bytes: usize) {
    static CAPPED: Once = Once::new();
    let set = manifold_udp::set_send_buffer(fd, bytes);
    let lost = "dropped (manifold_shard_udp_send_drops_total)";
    said_if_short(set, &CAPPED, "UDP egress send", "wmem_max", lost);
}

/// Warns (once per `once`) when the kernel set a smaller buffer than asked, or none.
fn said_if_short(
    set: io::Result<manifold_udp::BufferSize>,
    once: &'static Once,
    what: &str,
    sysctl: &str,
    lost: &str,
) {
    match set {
        Ok(size) if size.capped() => once.call_once(|| {
            tracing::warn!(
                got_kib = size.granted / 1024,
                wanted_kib = size.asked / 1024,
                "{what} buffers capped by net.core.{sysctl}: a burst larger than that is {lost} \
                 (run as root, or sysctl -w net.core.{sysctl}={})",
                size.asked
            );
        }),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "{what} buffer not set"),
    }
}

/// Most slices one `sendmsg` takes (`IOV_MAX` on Linux).
pub(crate) const IOV_MAX: usize = 1024;

/// One non-blocking `sendmsg` of gathered slices on a connected stream socket (at most
/// [`IOV_MAX`] of them): the interleaved frames of a TCP reader straight from the shared packet
/// buffers, no copy. Returns the bytes the kernel took (`WouldBlock` when it took none).
pub(crate) fn send_vectored(
    fd: BorrowedFd<'_>,
    bufs: &[std::io::IoSlice<'_>],
) -> io::Result<usize> {
    let bufs = &bufs[..bufs.len().min(IOV_MAX)];
    // SAFETY: msghdr is pointers and integers; all-zero (null, 0) is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix; the kernel only reads it.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs.len()` valid iovecs, each borrowing live memory for the
    // duration of the call; no address and no control data.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
