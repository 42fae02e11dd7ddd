//! Receive side: `recvmmsg` batches, `UDP_GRO` coalescing, `SO_RXQ_OVFL` drop counts,
//! `SO_TIMESTAMPNS` receive times.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use crate::addr::decode_storage;

pub(crate) fn set_int_opt(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: value is a valid c_int for the duration of the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns `UDP_GRO` on or off: the kernel may then hand over several datagrams from one sender
/// as one message (a GSO send over loopback arrives whole), with the segment size in a control
/// message. [`RecvBatch`] buffers must then hold 64 KiB, and [`Message::datagrams`] splits them.
pub fn set_gro(fd: impl AsFd, on: bool) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_UDP, libc::UDP_GRO, libc::c_int::from(on))
}

/// Turns `SO_RXQ_OVFL` on or off: each message then carries the socket's running count of
/// datagrams dropped for want of receive buffer ([`Message::drops`]).
pub fn set_rxq_ovfl(fd: impl AsFd, on: bool) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, libc::c_int::from(on))
}

/// Turns `SO_TIMESTAMPNS` on or off: each message then carries the wall-clock time the kernel
/// queued it ([`Message::received`]), so a receiver that reads late (in batches, on a timer)
/// still knows when each datagram arrived.
pub fn set_timestamps(fd: impl AsFd, on: bool) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, libc::c_int::from(on))
}

/// Control-message space per message: room for UDP_GRO (int), SO_RXQ_OVFL (u32) and
/// SO_TIMESTAMPNS (timespec) and then some, aligned for cmsghdr.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgSpace([u8; 128]);

/// What the kernel said about one received message, besides the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meta {
    pub(crate) len: usize,
    pub(crate) segment_size: Option<usize>,
    pub(crate) drops: Option<u32>,
    pub(crate) received: Option<Duration>,
    pub(crate) truncated: bool,
    pub(crate) source: Option<SocketAddr>,
}

/// Reads the control messages we ask for (`UDP_GRO`, `SO_RXQ_OVFL`, `SO_TIMESTAMPNS`) from the
/// bytes the kernel wrote into a control buffer, into `meta`. Plain byte reads: the bytes may
/// sit at any alignment (a provided buffer's control field is not 8-aligned).
pub(crate) fn read_control(control: &[u8], meta: &mut Meta) {
    let header = mem::size_of::<libc::cmsghdr>();
    let align = mem::size_of::<usize>();
    let mut at = 0;
    while control.len().saturating_sub(at) >= header {
        // SAFETY: `header` bytes from `at` are inside `control` (checked above); cmsghdr is plain
        // integers, read unaligned.
        let c: libc::cmsghdr =
            unsafe { control.as_ptr().add(at).cast::<libc::cmsghdr>().read_unaligned() };
        #[allow(clippy::unnecessary_cast, reason = "socklen_t, not size_t, on musl")]
        let len = c.cmsg_len as usize;
        if len < header || len > control.len() - at {
            break;
        }
        let data = &control[at + header..at + len];
        match (c.cmsg_level, c.cmsg_type) {
            (libc::SOL_UDP, libc::UDP_GRO) => {
                if let Some(b) = data.first_chunk::<4>() {
                    meta.segment_size =
                        usize::try_from(i32::from_ne_bytes(*b)).ok().filter(|&s| s > 0);
                }
            }
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                meta.drops = data.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b));
            }
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                if data.len() >= mem::size_of::<libc::timespec>() =>
            {
                // SAFETY: a whole timespec is in `data`; read unaligned.
                let ts = unsafe { data.as_ptr().cast::<libc::timespec>().read_unaligned() };
                meta.received = u64::try_from(ts.tv_sec)
                    .ok()
                    .zip(u32::try_from(ts.tv_nsec).ok())
                    .map(|(s, ns)| Duration::new(s, ns));
            }
            _ => {}
        }
        at += len.div_ceil(align) * align;
    }
}

/// One `recvmmsg` batch: fixed buffers reused call after call; one per receiving shard.
///
/// [`recv`](Self::recv) fills it from one socket; [`messages`](Self::messages) reads the
/// result until the next `recv`.
pub struct RecvBatch {
    buf_size: usize,
    bufs: Vec<u8>,
    iovecs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    addrs: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<CmsgSpace>,
    meta: Vec<Meta>,
}

// SAFETY: the raw pointers in `iovecs` and `hdrs` point into this struct's own heap buffers;
// they are rewritten at the start of every `recv` and only used inside it.
unsafe impl Send for RecvBatch {}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("batch", &self.hdrs.len())
            .field("buf_size", &self.buf_size)
            .field("received", &self.meta.len())
            .finish()
    }
}

impl RecvBatch {
    /// Room for `batch` messages (clamped to 1..=1024) of `buf_size` bytes each: 2048 is
    /// enough for RTP; use 65535 on sockets with [`set_gro`] on, or coalesced messages are cut.
    pub fn new(batch: usize, buf_size: usize) -> Self {
        let batch = batch.clamp(1, 1024);
        let buf_size = buf_size.max(1);
        // SAFETY: sockaddr_storage and mmsghdr are plain integers and pointers; all-zero is a
        // valid value of each.
        let (addr, hdr) =
            unsafe { (mem::zeroed::<libc::sockaddr_storage>(), mem::zeroed::<libc::mmsghdr>()) };
        RecvBatch {
            buf_size,
            bufs: vec![0; batch * buf_size],
            iovecs: vec![libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; batch],
            hdrs: vec![hdr; batch],
            addrs: vec![addr; batch],
            cmsgs: vec![CmsgSpace([0; 128]); batch],
            meta: Vec::with_capacity(batch),
        }
    }

    /// Receives up to a batch of messages from `fd` without blocking (`MSG_DONTWAIT`).
    ///
    /// Returns how many arrived (at least one), or `WouldBlock` when none were queued.
    pub fn recv(&mut self, fd: impl AsFd) -> io::Result<usize> {
        self.meta.clear();
        let n = self.hdrs.len();
        let bufs = self.bufs.as_mut_ptr();
        for i in 0..n {
            self.iovecs[i] = libc::iovec {
                // SAFETY: i * buf_size < bufs.len(), so the offset stays inside the allocation.
                iov_base: unsafe { bufs.add(i * self.buf_size) }.cast(),
                iov_len: self.buf_size,
            };
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            h.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &raw mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = (&raw mut self.cmsgs[i]).cast();
            h.msg_hdr.msg_controllen = mem::size_of::<CmsgSpace>() as _;
            h.msg_hdr.msg_flags = 0;
        }
        let fd = fd.as_fd().as_raw_fd();
        let got = loop {
            // SAFETY: every header points at this struct's own buffers, sized as declared, which
            // outlive the call.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        for i in 0..got {
            let meta = self.parse(i);
            self.meta.push(meta);
        }
        Ok(got)
    }

    /// Reads message `i`'s length, flags, source and control messages.
    fn parse(&self, i: usize) -> Meta {
        let h = &self.hdrs[i];
        let mut meta = Meta {
            len: (h.msg_len as usize).min(self.buf_size),
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            source: decode_storage(&self.addrs[i], h.msg_hdr.msg_namelen),
            ..Meta::default()
        };
        #[allow(clippy::unnecessary_cast, reason = "socklen_t, not size_t, on musl")]
        let control_len = (h.msg_hdr.msg_controllen as usize).min(mem::size_of::<CmsgSpace>());
        read_control(&self.cmsgs[i].0[..control_len], &mut meta);
        meta
    }

    /// Messages received by the last [`recv`](Self::recv).
    pub fn messages(&self) -> impl ExactSizeIterator<Item = Message<'_>> + '_ {
        self.meta.iter().enumerate().map(move |(i, m)| {
            let start = i * self.buf_size;
            Message {
                data: &self.bufs[start..start + m.len],
                source: m.source,
                segment_size: m.segment_size,
                drops: m.drops,
                received: m.received,
                truncated: m.truncated,
            }
        })
    }
}

/// One received message: a datagram, or with `UDP_GRO` several coalesced ones.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// The bytes (all coalesced datagrams back to back).
    pub data: &'a [u8],
    /// The sender.
    pub source: Option<SocketAddr>,
    /// With `UDP_GRO`: the size of each coalesced datagram but the last (which may be shorter).
    /// `None`: `data` is one datagram.
    pub segment_size: Option<usize>,
    /// With `SO_RXQ_OVFL`: datagrams this socket had dropped (buffer full) when this one was
    /// queued, a running count. The kernel omits it while the count is zero.
    pub drops: Option<u32>,
    /// With `SO_TIMESTAMPNS` ([`set_timestamps`]): when the kernel queued it, wall clock, since
    /// the Unix epoch (for a coalesced message, its first datagram).
    pub received: Option<Duration>,
    /// The buffer was too small and the message was cut.
    pub truncated: bool,
}

impl<'a> Message<'a> {
    /// The original datagrams, split at the GRO segment size.
    pub fn datagrams(&self) -> Datagrams<'a> {
        Datagrams {
            rest: Some(self.data),
            size: self.segment_size.unwrap_or(self.data.len()).max(1),
        }
    }

    /// At most what this message took of its socket's receive buffer (`SO_RCVBUF`) while it
    /// was queued: the kernel charges a buffer's whole allocation and its `sk_buff`, not the
    /// bytes, so a 200-byte datagram costs 1,280 bytes of buffer and a 1,426-byte one 2,304
    /// (Linux 6.18, `SO_MEMINFO`). Twice the bytes plus 1 KiB bounds every size from 1 byte
    /// to a 64 KiB coalesced message (`tests/loopback.rs` checks it against the kernel's own
    /// count), so a reader can tell how near its buffer came to full.
    pub fn buffer_charge(&self) -> usize {
        2 * self.data.len() + 1024
    }

    /// How many datagrams this message holds (an empty datagram counts as one).
    pub fn datagram_count(&self) -> usize {
        match self.segment_size {
            Some(s) if s > 0 => self.data.len().div_ceil(s).max(1),
            _ => 1,
        }
    }
}

/// The datagrams of one [`Message`], in order.
#[derive(Clone, Debug)]
pub struct Datagrams<'a> {
    rest: Option<&'a [u8]>,
    size: usize,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if rest.len() <= self.size {
            self.rest = None;
            Some(rest)
        } else {
            let (first, tail) = rest.split_at(self.size);
            self.rest = Some(tail);
            Some(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_coalesced_message() {
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let m = Message {
            data: &data,
            source: None,
            segment_size: Some(1000),
            drops: None,
            received: None,
            truncated: false,
        };
        let parts: Vec<&[u8]> = m.datagrams().collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(m.datagram_count(), 3);
        assert_eq!(parts[2].len(), 500);
        assert_eq!(parts.concat(), data);
    }

    #[test]
    fn empty_datagram_is_one() {
        let m = Message {
            data: &[],
            source: None,
            segment_size: None,
            drops: None,
            received: None,
            truncated: false,
        };
        assert_eq!(m.datagram_count(), 1);
        assert_eq!(m.datagrams().collect::<Vec<_>>(), vec![&[] as &[u8]]);
    }

    #[test]
    fn timestamps_say_when_the_kernel_queued_each_message() {
        use std::net::UdpSocket;
        use std::time::{SystemTime, UNIX_EPOCH};

        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::new(4, 2048);
        tx.send_to(b"untimed", rx.local_addr().unwrap()).unwrap();
        assert_eq!(batch.recv(&rx).unwrap(), 1);
        assert_eq!(batch.messages().next().unwrap().received, None, "off by default");

        set_timestamps(&rx, true).unwrap();
        // The first socket asking for timestamps turns the kernel's receive stamping on, and
        // it does so from a work queue: until then datagrams are stamped when read.
        std::thread::sleep(Duration::from_millis(100));
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        tx.send_to(b"first", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        tx.send_to(b"second", rx.local_addr().unwrap()).unwrap();
        // Read well after both arrived: the times are the arrivals, not the read.
        std::thread::sleep(Duration::from_millis(30));
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(batch.recv(&rx).unwrap(), 2);
        let times: Vec<Duration> = batch.messages().map(|m| m.received.unwrap()).collect();
        assert!(times[0] >= before && times[1] <= after, "{times:?} in {before:?}..{after:?}");
        let apart = times[1] - times[0];
        assert!(apart >= Duration::from_millis(25), "sent 30 ms apart, stamped {apart:?} apart");
        assert!(after - times[1] >= Duration::from_millis(25), "stamped at arrival, not read");
    }
}
