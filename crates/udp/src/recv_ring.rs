//! Multishot receive: many sockets armed once each on an io_uring of our own, their datagrams
//! landing in a ring of buffers the kernel picks from.
//!
//! A load generator with one socket per simulated reader pays, with [`RecvBatch`](crate::RecvBatch),
//! one `recvmmsg` per socket per read, and half of each is the empty receive that ends it. Here
//! each socket carries one multishot `IORING_OP_RECVMSG`; a datagram's arrival only queues work
//! on the ring (the ring is set up with `DEFER_TASKRUN`), and one [`RecvRing::poll`] (one
//! `io_uring_enter`) runs the receives of every socket that has data and hands back the
//! datagrams. The kernel's receive time (`SO_TIMESTAMPNS`) and drop count (`SO_RXQ_OVFL`) come
//! with each datagram as they do from `recvmmsg`.
//!
//! Buffers hold one datagram each (sockets read here should not have `UDP_GRO` on: a coalesced
//! message longer than a buffer is cut). When the ring runs out of buffers in a poll, the
//! receives that found none stop; `poll` gives the buffers back and re-arms them, within the
//! same call, so nothing is lost as long as the sockets' receive buffers hold out.
//!
//! The ring is `SINGLE_ISSUER`: create and use it on one thread (a shard's).

use std::collections::HashMap;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::{BufRingEntry, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, types, IoUring};

use crate::addr::decode_storage;
use crate::recv::{read_control, Message, Meta};

/// The buffer group every receive of a ring picks from.
const GROUP: u16 = 0;
/// `user_data` of cancel requests (keys stay below it).
const CANCEL: u64 = u64::MAX;
/// Largest key [`RecvRing::arm`] takes.
pub const MAX_KEY: u64 = CANCEL - 1;
/// Room for the source address: IPv4 and IPv6.
const NAME_ROOM: usize = mem::size_of::<libc::sockaddr_in6>();
/// Room for the control messages we read (a timespec and a drop count, with headers).
const CONTROL_ROOM: usize = 64;
/// Bytes before the payload in each buffer: the kernel's header, the name, the control.
const PREAMBLE: usize = RECVMSG_OUT + NAME_ROOM + CONTROL_ROOM;
/// `struct io_uring_recvmsg_out`: four u32s the kernel writes first.
const RECVMSG_OUT: usize = 16;
/// Submission queue entries: arms, re-arms and cancels queue up between polls.
const SQ_ENTRIES: u32 = 1024;
/// Rounds of "give buffers back, re-arm the starved, enter again" per poll.
const MAX_ROUNDS: usize = 16;

/// One anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly one mapping of ours, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A socket armed on the ring.
struct Armed {
    fd: OwnedFd,
    /// Its receive stopped (out of buffers) and must be armed again.
    stopped: bool,
    /// A cancel was asked for: drop it when its receive ends.
    cancelled: bool,
}

/// What [`RecvRing::poll`] hands back for an armed socket.
#[derive(Debug)]
pub enum RingEvent<'a> {
    /// A datagram (source, kernel receive time and drop count as from [`RecvBatch`](crate::RecvBatch)).
    Datagram(Message<'a>),
    /// The socket's receive failed and was not re-armed; the socket is closed and the key
    /// forgotten.
    Failed(io::Error),
}

/// Multishot receives on many sockets, read with one `io_uring_enter` per [`poll`](Self::poll).
pub struct RecvRing {
    ring: IoUring,
    /// `entries` buffers of `buf_size` bytes.
    buffers: Mapping,
    /// The provided-buffer ring shared with the kernel: `entries` [`BufRingEntry`]s.
    ring_mem: Mapping,
    entries: u16,
    buf_size: usize,
    /// Our copy of the ring's tail: buffers handed (back) to the kernel.
    tail: u16,
    /// What every receive is armed with: only name and control lengths matter.
    template: Box<libc::msghdr>,
    sockets: HashMap<u64, Armed>,
    /// Some receive stopped for want of buffers and is not armed again yet.
    any_stopped: bool,
    broken: bool,
}

impl std::fmt::Debug for RecvRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvRing")
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("sockets", &self.sockets.len())
            .finish()
    }
}

impl RecvRing {
    /// A ring of `entries` buffers (a power of two up to 32768) of `buf_size` bytes each
    /// (datagrams up to `buf_size` minus about 110 bytes fit). Fails where the kernel lacks what
    /// it needs (multishot receive with provided buffer rings and `DEFER_TASKRUN`: Linux 6.1),
    /// or io_uring is off (`kernel.io_uring_disabled`, seccomp): use [`RecvBatch`](crate::RecvBatch) then.
    pub fn new(entries: u16, buf_size: usize) -> io::Result<Self> {
        if !entries.is_power_of_two() || entries > 32768 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer count must be a power of two up to 32768",
            ));
        }
        if buf_size <= PREAMBLE || u32::try_from(buf_size).is_err() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffer size too small"));
        }
        // DEFER_TASKRUN: receives run only inside our own enter, all of them at once;
        // SINGLE_ISSUER is its precondition.
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize((u32::from(entries) * 2).max(SQ_ENTRIES * 2))
            .build(SQ_ENTRIES)?;
        let buffers = Mapping::new(usize::from(entries) * buf_size)?;
        let ring_mem = Mapping::new(usize::from(entries) * mem::size_of::<BufRingEntry>())?;
        // SAFETY: ring_mem is page-aligned, `entries` entries long, and lives as long as the
        // ring (field order drops the ring first; Drop below also unregisters it).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                ring_mem.ptr.as_ptr() as u64,
                entries,
                GROUP,
                0,
            )?;
        }
        // SAFETY: msghdr is plain integers and pointers; all-zero is valid.
        let mut template: Box<libc::msghdr> = Box::new(unsafe { mem::zeroed() });
        template.msg_namelen = NAME_ROOM as libc::socklen_t;
        template.msg_controllen = CONTROL_ROOM as _;
        let mut this = RecvRing {
            ring,
            buffers,
            ring_mem,
            entries,
            buf_size,
            tail: 0,
            template,
            sockets: HashMap::new(),
            any_stopped: false,
            broken: false,
        };
        for bid in 0..entries {
            this.give_back(bid);
        }
        this.publish_tail();
        Ok(this)
    }

    /// Sockets armed (not yet cancelled).
    pub fn len(&self) -> usize {
        self.sockets.values().filter(|a| !a.cancelled).count()
    }

    /// Whether no socket is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Arms `fd` (a UDP socket) under `key` (unique among armed keys, at most [`MAX_KEY`]):
    /// its datagrams come out of [`poll`](Self::poll) from the next call on. The ring owns the
    /// socket from now on and closes it once [`cancel`](Self::cancel)led or failed.
    pub fn arm(&mut self, fd: OwnedFd, key: u64) -> io::Result<()> {
        if key > MAX_KEY || self.sockets.contains_key(&key) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "key in use or too large"));
        }
        if self.broken {
            return Err(io::Error::other("the receive ring failed earlier"));
        }
        self.push_recv(key, fd.as_raw_fd())?;
        self.sockets.insert(key, Armed { fd, stopped: false, cancelled: false });
        Ok(())
    }

    /// Stops `key`'s receive; its datagrams still in flight are dropped, and the socket is
    /// closed when the kernel confirms (at once if its receive is not running).
    pub fn cancel(&mut self, key: u64) {
        let Some(armed) = self.sockets.get_mut(&key) else { return };
        if armed.cancelled {
            return;
        }
        if armed.stopped {
            self.sockets.remove(&key);
            return;
        }
        armed.cancelled = true;
        let sqe = opcode::AsyncCancel::new(key).build().user_data(CANCEL);
        if self.push(&sqe).is_err() {
            // Not cancelled in the kernel: its datagrams are dropped below until the socket's
            // receive ends, when the ring is dropped at the latest.
        }
    }

    /// Runs every pending receive (one `io_uring_enter`, more when buffers ran out) and calls
    /// `on` with each datagram or failure, by key. Returns the datagrams handed over.
    pub fn poll(&mut self, mut on: impl FnMut(u64, RingEvent<'_>)) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::other("the receive ring failed earlier"));
        }
        let mut total = 0;
        for _ in 0..MAX_ROUNDS {
            if self.any_stopped {
                self.rearm_stopped();
            }
            self.publish_tail();
            self.enter()?;
            let got = self.reap(&mut on);
            total += got;
            if !self.any_stopped {
                break;
            }
        }
        // Receives still stopped here (a flood beyond MAX_ROUNDS ring-fulls) are armed again
        // at the next poll; their datagrams wait in the sockets' buffers meanwhile.
        Ok(total)
    }

    /// Submits what is queued and runs the deferred receives, waiting for nothing.
    fn enter(&mut self) -> io::Result<()> {
        let ts = Timespec::new();
        let args = SubmitArgs::new().timespec(&ts);
        // `want` bounds how much deferred work one enter runs (newer kernels stop at 20
        // items otherwise); the zero timeout makes it return once that work is done.
        let want = self.ring.params().cq_entries() as usize;
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => {
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// Reads every completion: datagrams to `on`, buffers back to the ring, ended receives
    /// marked stopped (out of buffers) or forgotten. Returns the datagrams handed over.
    fn reap(&mut self, on: &mut impl FnMut(u64, RingEvent<'_>)) -> usize {
        let mut got = 0;
        loop {
            let Some(cqe) = self.ring.completion().next() else { break };
            let key = cqe.user_data();
            if key == CANCEL {
                continue;
            }
            let res = cqe.result();
            let flags = cqe.flags();
            if let Some(bid) = cqueue::buffer_select(flags) {
                if res >= 0 && bid < self.entries {
                    let live = self.sockets.get(&key).is_some_and(|a| !a.cancelled);
                    if live {
                        if let Some(message) = self.message(bid, res as usize) {
                            got += 1;
                            on(key, RingEvent::Datagram(message));
                        }
                    }
                }
                if bid < self.entries {
                    self.give_back(bid);
                }
            }
            if cqueue::more(flags) {
                continue;
            }
            // This receive has ended.
            let Some(armed) = self.sockets.get_mut(&key) else { continue };
            if armed.cancelled {
                self.sockets.remove(&key);
            } else if res >= 0 || res == -libc::ENOBUFS {
                // Out of buffers (or the kernel ended it for its own reasons): again, with
                // buffers given back.
                armed.stopped = true;
                self.any_stopped = true;
            } else {
                self.sockets.remove(&key);
                on(key, RingEvent::Failed(io::Error::from_raw_os_error(-res)));
            }
        }
        got
    }

    /// Re-arms every receive that stopped (those the queue has no room for stay stopped).
    fn rearm_stopped(&mut self) {
        self.any_stopped = false;
        let stopped: Vec<(u64, i32)> = self
            .sockets
            .iter()
            .filter(|(_, a)| a.stopped)
            .map(|(&k, a)| (k, a.fd.as_raw_fd()))
            .collect();
        for (key, fd) in stopped {
            if self.push_recv(key, fd).is_ok() {
                if let Some(a) = self.sockets.get_mut(&key) {
                    a.stopped = false;
                }
            } else {
                self.any_stopped = true;
            }
        }
    }

    /// Queues `fd`'s multishot receive under `key`.
    fn push_recv(&mut self, key: u64, fd: i32) -> io::Result<()> {
        let sqe = opcode::RecvMsgMulti::new(types::Fd(fd), &raw const *self.template, GROUP)
            .build()
            .user_data(key);
        self.push(&sqe)
    }

    /// Queues one entry, submitting first when the queue is full.
    fn push(&mut self, sqe: &io_uring::squeue::Entry) -> io::Result<()> {
        for _ in 0..2 {
            // SAFETY: receives point at the boxed template and the registered buffer group,
            // both alive until the ring is dropped; cancels point at nothing.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
        Err(io::Error::other("io_uring submission queue full"))
    }

    /// The datagram in buffer `bid`, `len` bytes of which the kernel wrote.
    fn message(&self, bid: u16, len: usize) -> Option<Message<'_>> {
        let start = usize::from(bid) * self.buf_size;
        // SAFETY: buffer `bid` is inside the mapping; the kernel finished writing it (its
        // completion is posted) and does not touch it again until we give it back.
        let buf = unsafe {
            std::slice::from_raw_parts(self.buffers.ptr.as_ptr().add(start), len.min(self.buf_size))
        };
        let out = RecvMsgOut::parse(buf, &self.template).ok()?;
        // SAFETY: sockaddr_storage is plain integers; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let name = out.name_data();
        let n = name.len().min(mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: n bytes fit in storage and in name; the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(name.as_ptr(), (&raw mut storage).cast::<u8>(), n);
        }
        let mut meta = Meta {
            len: out.payload_data().len(),
            truncated: out.is_payload_truncated(),
            source: decode_storage(&storage, out.incoming_name_len() as libc::socklen_t),
            ..Meta::default()
        };
        read_control(out.control_data(), &mut meta);
        // The payload is the rest of what the kernel wrote (`payload_data` borrows `out`).
        Some(Message {
            data: buf.get(PREAMBLE..)?,
            source: meta.source,
            segment_size: meta.segment_size,
            drops: meta.drops,
            received: meta.received,
            truncated: meta.truncated,
        })
    }

    /// Puts buffer `bid` at the ring's tail (visible to the kernel at the next publish).
    fn give_back(&mut self, bid: u16) {
        let mask = self.entries - 1;
        let base = self.ring_mem.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the slot is inside the ring mapping; the kernel reads slots only below the
        // published tail, and this one is past it.
        unsafe {
            let entry = &mut *base.add(usize::from(self.tail & mask));
            entry.set_addr(self.buffers.ptr.as_ptr().add(usize::from(bid) * self.buf_size) as u64);
            entry.set_len(self.buf_size as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes the buffers given back visible to the kernel.
    fn publish_tail(&self) {
        let base = self.ring_mem.ptr.as_ptr().cast::<BufRingEntry>();
        // SAFETY: the tail field overlays the first entry's last u16, inside the mapping and
        // aligned; the kernel reads it with acquire ordering.
        unsafe {
            let tail = BufRingEntry::tail(base).cast_mut().cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for RecvRing {
    fn drop(&mut self) {
        // Closing the ring cancels its receives; the buffer ring memory must outlive them, so
        // unregister first (it fails only if the ring is gone) and let the fields drop in order:
        // the ring (closed), then the mappings.
        let _ = self.ring.submitter().unregister_buf_ring(GROUP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn ring(entries: u16) -> RecvRing {
        RecvRing::new(entries, 2048).expect("io_uring multishot receive (Linux 6.1+)")
    }

    fn socket() -> (UdpSocket, std::net::SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = s.local_addr().unwrap();
        (s, a)
    }

    /// Arms `n` fresh sockets under keys 0..n; returns a sender and their addresses.
    fn arm_sockets(r: &mut RecvRing, n: u64) -> (UdpSocket, Vec<std::net::SocketAddr>) {
        let addrs = (0..n)
            .map(|key| {
                let (s, a) = socket();
                r.arm(OwnedFd::from(s), key).unwrap();
                a
            })
            .collect();
        (UdpSocket::bind("127.0.0.1:0").unwrap(), addrs)
    }

    fn collect(r: &mut RecvRing) -> Vec<(u64, Vec<u8>, Option<Duration>, bool)> {
        let mut out = Vec::new();
        r.poll(|key, ev| match ev {
            RingEvent::Datagram(m) => out.push((key, m.data.to_vec(), m.received, m.truncated)),
            RingEvent::Failed(e) => panic!("{key}: {e}"),
        })
        .unwrap();
        out
    }

    #[test]
    fn one_poll_reads_every_socket() {
        let mut r = ring(64);
        let (tx, addrs) = arm_sockets(&mut r, 10);
        assert!(collect(&mut r).is_empty(), "nothing sent yet");
        for (i, a) in addrs.iter().enumerate() {
            for n in 0..3u8 {
                tx.send_to(&[i as u8, n], a).unwrap();
            }
        }
        let got = collect(&mut r);
        assert_eq!(got.len(), 30);
        for key in 0..10u64 {
            let mine: Vec<Vec<u8>> =
                got.iter().filter(|g| g.0 == key).map(|g| g.1.clone()).collect();
            assert_eq!(mine, vec![vec![key as u8, 0], vec![key as u8, 1], vec![key as u8, 2]]);
        }
        // Nothing is handed over twice.
        assert!(collect(&mut r).is_empty());
    }

    #[test]
    fn hundreds_of_sockets_are_read_by_one_poll() {
        // Newer kernels run only 20 deferred receives per enter unless asked for more.
        let mut r = ring(1024);
        let (tx, addrs) = arm_sockets(&mut r, 300);
        assert!(collect(&mut r).is_empty());
        for a in &addrs {
            tx.send_to(b"x", a).unwrap();
        }
        assert_eq!(collect(&mut r).len(), 300);
    }

    #[test]
    fn more_datagrams_than_buffers_are_all_read_in_one_poll() {
        let mut r = ring(16);
        let (tx, addrs) = arm_sockets(&mut r, 8);
        for round in 0..20u8 {
            for a in &addrs {
                tx.send_to(&[round; 100], a).unwrap();
            }
        }
        let got = collect(&mut r);
        assert_eq!(got.len(), 160, "16 buffers, 160 datagrams: given back and re-armed");
        for key in 0..8u64 {
            let rounds: Vec<u8> = got.iter().filter(|g| g.0 == key).map(|g| g.1[0]).collect();
            assert_eq!(rounds, (0..20).collect::<Vec<u8>>(), "in order for socket {key}");
        }
        // And the ring goes on working afterwards.
        tx.send_to(b"after", addrs[3]).unwrap();
        let got = collect(&mut r);
        assert_eq!((got.len(), got[0].0, &got[0].1[..]), (1, 3, &b"after"[..]));
    }

    #[test]
    fn a_flood_beyond_one_poll_is_read_by_the_next() {
        // 16 buffers, at most MAX_ROUNDS ring-fulls per poll: 400 datagrams take two polls,
        // and the receives left stopped by the first are armed again by the second.
        let mut r = ring(16);
        let (tx, addrs) = arm_sockets(&mut r, 8);
        for round in 0..50u8 {
            for a in &addrs {
                tx.send_to(&[round; 64], a).unwrap();
            }
        }
        let first = collect(&mut r);
        assert!(first.len() <= MAX_ROUNDS * 16, "one poll: {}", first.len());
        let mut all = first;
        for _ in 0..4 {
            all.extend(collect(&mut r));
        }
        assert_eq!(all.len(), 400);
        for key in 0..8u64 {
            let rounds: Vec<u8> = all.iter().filter(|g| g.0 == key).map(|g| g.1[0]).collect();
            assert_eq!(rounds, (0..50).collect::<Vec<u8>>(), "in order for socket {key}");
        }
    }

    #[test]
    fn kernel_receive_times_come_with_each_datagram() {
        let mut r = ring(16);
        let (s, a) = socket();
        crate::set_timestamps(&s, true).unwrap();
        // Receive stamping is switched on from a work queue; give it a moment.
        std::thread::sleep(Duration::from_millis(100));
        r.arm(OwnedFd::from(s), 7).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        tx.send_to(b"first", a).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        tx.send_to(b"second", a).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let got = collect(&mut r);
        assert_eq!(got.len(), 2);
        let (t0, t1) = (got[0].2.unwrap(), got[1].2.unwrap());
        assert!(t0 >= before && t1 <= after);
        assert!(t1 - t0 >= Duration::from_millis(25), "stamped at arrival: {t0:?} {t1:?}");
        assert!(after - t1 >= Duration::from_millis(25), "not at the read");
    }

    #[test]
    fn source_address_and_truncation_are_reported() {
        let mut r = RecvRing::new(8, 256).unwrap();
        let (s, a) = socket();
        r.arm(OwnedFd::from(s), 1).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&[9; 1000], a).unwrap();
        tx.send_to(&[8; 10], a).unwrap();
        let mut seen = Vec::new();
        r.poll(|_, ev| {
            if let RingEvent::Datagram(m) = ev {
                seen.push((m.source, m.data.len(), m.truncated));
            }
        })
        .unwrap();
        let from = Some(tx.local_addr().unwrap());
        assert_eq!(seen[0].0, from);
        assert!(seen[0].2 && seen[0].1 < 1000, "cut to the buffer: {:?}", seen[0]);
        assert_eq!(seen[1], (from, 10, false));
    }

    #[test]
    fn a_cancelled_socket_hands_over_nothing_more_and_its_key_is_free_again() {
        let mut r = ring(16);
        let (s, a) = socket();
        r.arm(OwnedFd::from(s), 5).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"one", a).unwrap();
        assert_eq!(collect(&mut r).len(), 1);
        tx.send_to(b"two", a).unwrap();
        r.cancel(5);
        assert!(collect(&mut r).is_empty(), "cancelled before the read");
        assert!(r.is_empty());
        // The socket is closed once the kernel confirmed: its port is free again.
        let _ = collect(&mut r);
        assert!(UdpSocket::bind(a).is_ok(), "socket closed");
        let (s, _) = socket();
        r.arm(OwnedFd::from(s), 5).unwrap();
    }
}
