//! The blaster's syscall module: CPU pinning, the open-files limit, signal masks and
//! `sigwait`, kernel randomness, epoll (control plane), poll (packet thread) and non-blocking
//! gathered writes on stream sockets. Every `unsafe` block of the crate lives here, each with
//! its `// SAFETY:` line. UDP sends are manifold-udp's.

// The workspace denies unsafe code; this module is the one place that needs it (libc calls).
#![allow(unsafe_code, reason = "syscall wrappers")]

use std::io::{self, IoSlice};
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Pins the calling thread to one CPU.
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no CPU {cpu}")));
    }
    // SAFETY: cpu_set_t is a plain bit array; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; cpu is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    cvt(unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// Raises the soft open-files limit to the hard one; returns the new soft limit.
pub(crate) fn raise_nofile_limit() -> io::Result<u64> {
    // SAFETY: rlimit is plain integers.
    let mut lim: libc::rlimit = unsafe { mem::zeroed() };
    // SAFETY: lim is valid for writes.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: lim is a valid rlimit.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    Ok(lim.rlim_cur)
}

/// A signal set holding SIGINT and SIGTERM.
fn shutdown_set() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed sigset_t.
    cvt(unsafe { libc::sigemptyset(&mut set) })?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `set` was initialised by sigemptyset; `sig` is a valid signal number.
        cvt(unsafe { libc::sigaddset(&mut set, sig) })?;
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

/// Waits for SIGINT or SIGTERM (blocked by [`block_shutdown_signals`]); returns the signal.
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

/// Fills `buf` from the kernel's CSPRNG (`getrandom(2)`), or from the clock if that fails
/// (session ids of a benchmark server need uniqueness, not secrecy).
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
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64);
        for b in &mut buf[filled..] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

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

/// A level-triggered epoll set; tokens are the caller's.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// An empty set.
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is ours to own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just returned by epoll_create1 and is owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is valid for the call; both fds are open (the kernel checks `fd`).
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }

    /// Watches `fd` for input (and output when `writable`), reported as `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest(writable), token)
    }

    /// Changes what `fd` is watched for.
    pub(crate) fn modify(&self, fd: RawFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest(writable), token)
    }

    /// Stops watching `fd`.
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` (-1: forever); returns how many of `events` were filled.
    pub(crate) fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout_ms: i32,
    ) -> io::Result<usize> {
        // SAFETY: events is valid for events.len() writes.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len().min(i32::MAX as usize) as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
        }
        Ok(n as usize)
    }
}

fn interest(writable: bool) -> u32 {
    let base = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
    if writable {
        base | libc::EPOLLOUT as u32
    } else {
        base
    }
}

/// An empty epoll event buffer of `n` slots.
pub(crate) fn epoll_events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}
