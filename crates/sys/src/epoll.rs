//! A level-triggered epoll set, for the perf tools that run on plain threads (the blaster's
//! control plane, the send-path and receive-floor benchmarks) rather than on glommio.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// A level-triggered epoll set; tokens are the caller's.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// An empty set.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the returned fd is ours to own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by epoll_create1 and is owned by nobody else.
        Ok(Epoll { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    fn ctl(&self, op: libc::c_int, fd: impl AsFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is valid for the call; both descriptors are open (one is borrowed).
        let rc =
            unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_fd().as_raw_fd(), &mut ev) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Watches `fd` for input (and output when `writable`), reported as `token`.
    pub fn add(&self, fd: impl AsFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest(writable), token)
    }

    /// Changes what `fd` is watched for.
    pub fn modify(&self, fd: impl AsFd, token: u64, writable: bool) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest(writable), token)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: impl AsFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` (-1: forever); returns how many of `events` were filled (0
    /// when a signal interrupted the wait).
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
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

/// Input and the peer's half-close, plus output when `writable`.
fn interest(writable: bool) -> u32 {
    let base = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
    if writable {
        base | libc::EPOLLOUT as u32
    } else {
        base
    }
}

/// An empty event buffer of `n` slots for [`Epoll::wait`].
pub fn events(n: usize) -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn reports_a_readable_socket_by_its_token_and_forgets_it_when_deleted() {
        let epoll = Epoll::new().unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        epoll.add(&rx, 7, false).unwrap();
        let mut evs = events(4);
        assert_eq!(epoll.wait(&mut evs, 0).unwrap(), 0);
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        assert_eq!(epoll.wait(&mut evs, 1000).unwrap(), 1);
        let token = evs[0].u64;
        assert_eq!(token, 7);
        epoll.delete(&rx).unwrap();
        assert_eq!(epoll.wait(&mut evs, 0).unwrap(), 0);
        assert!(epoll.delete(&rx).is_err(), "deleting twice is the kernel's ENOENT");
    }
}
