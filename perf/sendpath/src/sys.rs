//! The few syscalls the benchmark needs beyond manifold-udp and manifold-sys (CPU pinning, the
//! open-files limit): thread CPU time, `SO_RCVBUF` read back, uname, epoll.

// The benchmark's syscall module; each block carries a `// SAFETY:` line.
#![allow(unsafe_code, reason = "syscall wrappers")]

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// CPU time consumed by the calling thread so far (includes softirq work it ran inline).
pub(crate) fn thread_cpu_time() -> Duration {
    // SAFETY: timespec is plain integers.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: ts is valid for writes; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Sets `SO_RCVBUF` (the kernel doubles it for bookkeeping and caps it at `rmem_max`) and
/// returns what the kernel actually set.
pub(crate) fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<usize> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value is a valid c_int for the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&raw const value).cast(), len)
    })?;
    let mut got: libc::c_int = 0;
    let mut got_len = len;
    // SAFETY: got and got_len are valid for writes of the sizes passed.
    cvt(unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&raw mut got).cast(), &mut got_len)
    })?;
    Ok(usize::try_from(got).unwrap_or(0))
}

/// `uname -srvm`.
pub(crate) fn uname() -> String {
    // SAFETY: utsname is plain byte arrays.
    let mut u: libc::utsname = unsafe { mem::zeroed() };
    // SAFETY: u is valid for writes.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.version),
        field(&u.machine)
    )
}

/// A level-triggered epoll set; tokens are the caller's indices.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is ours to own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just returned by epoll_create1 and is owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Watches `fd` for input, reporting it as `token`.
    pub(crate) fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: ev is valid for the call; both fds are open.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout_ms` and writes ready tokens into `tokens`.
    pub(crate) fn wait(
        &self,
        events: &mut [libc::epoll_event],
        tokens: &mut Vec<u64>,
        timeout_ms: i32,
    ) -> io::Result<()> {
        tokens.clear();
        // SAFETY: events is valid for events.len() writes.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        tokens.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}

/// An empty epoll event buffer of `n` slots.
pub(crate) fn epoll_events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}
