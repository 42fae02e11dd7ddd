//! The relay's syscall module: signal masks and `sigwait`, and kernel randomness. Every
//! `unsafe` block of the crate lives here, each with its `// SAFETY:` line.
// The workspace denies unsafe code; this module is the one place that needs it (libc calls).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The signals the relay shuts down on.
const SHUTDOWN_SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// A signal set holding SIGINT and SIGTERM.
fn shutdown_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    if unsafe { libc::sigemptyset(&mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for sig in SHUTDOWN_SIGNALS {
        // SAFETY: `set` was initialised by sigemptyset; `sig` is a valid signal number.
        if unsafe { libc::sigaddset(&mut set, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// Blocks SIGINT and SIGTERM in the calling thread, so that threads spawned afterwards inherit
/// the mask and the signals wait for [`wait_shutdown_signal`] instead of killing the process.
pub(crate) fn block_shutdown_signals() -> io::Result<()> {
    let set = shutdown_set()?;
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits for SIGINT or SIGTERM (which must be blocked, see [`block_shutdown_signals`]) and
/// returns the signal number.
pub(crate) fn wait_shutdown_signal() -> io::Result<libc::c_int> {
    let set = shutdown_set()?;
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is an initialised sigset_t and `sig` a valid place for the result.
    let rc = unsafe { libc::sigwait(&set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}

/// Fills `buf` with bytes from the kernel's CSPRNG (`getrandom(2)`). Falls back to a hash of
/// the time if the call fails, which it does not on any supported kernel.
pub(crate) fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, exclusively borrowed buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    if filled < buf.len() {
        use std::hash::{BuildHasher, Hasher};
        for b in &mut buf[filled..] {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(std::time::SystemTime::now().elapsed().map_or(0, |d| d.as_nanos()));
            *b = h.finish() as u8;
        }
    }
}

/// The descriptor of a socket glommio owns (glommio's sockets give only `AsRawFd`), borrowed
/// for as long as the socket is. This is the crate's only way to a descriptor: a bare number
/// kept past its owner's drop names whatever the kernel opens next (a connection accepted a
/// moment later, on any shard), and a call on it would hit that one instead.
pub(crate) fn fd_of<S: AsRawFd>(owner: &S) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `owner`, which the returned borrow keeps borrowed, so
    // it stays open for the borrow's whole lifetime.
    unsafe { BorrowedFd::borrow_raw(owner.as_raw_fd()) }
}

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

/// Hands a bound std UDP socket to glommio (which builds on socket2 0.4, so the socket2 0.5
/// `From` impls do not apply).
pub(crate) fn glommio_udp(socket: std::net::UdpSocket) -> glommio::net::UdpSocket {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is an open UDP socket whose ownership `into_raw_fd` just released; glommio
    // takes it over and is its only owner from here on.
    unsafe { glommio::net::UdpSocket::from_raw_fd(fd) }
}

/// Receive buffer of the sockets an upstream's RTP arrives on: 4 MiB (where `rmem_max`
/// allows; the kernel caps it silently otherwise) holds ~3 s of a 10 Mbit/s stream, so a
/// burst from the sender or a shard busy for a moment loses nothing upstream of every reader.
pub(crate) const INGEST_RCVBUF: usize = 4 << 20;

/// Sets `SO_RCVBUF` of a socket glommio owns (best effort: a refusal only leaves the default).
pub(crate) fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) {
    if let Err(e) = socket2::SockRef::from(&fd).set_recv_buffer_size(bytes) {
        tracing::debug!(error = %e, "SO_RCVBUF not raised");
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
