//! UDP media for a shard's sessions: every RTP socket read on one grid of `--udp-read-interval`
//! from the run's start, each datagram timed by the kernel's receive stamp. With `auto` the
//! grid's step is 50 ms and each socket is read on one tick in one, two or four, as its buffer
//! allows ([`ReadPace`]).
//!
//! Two ways to read on the grid (`--udp-receive`), measured against each other in
//! perf/RESULTS.md ("Generator cost beside the relay's"):
//!
//! - **`recvmmsg` per socket** ([`RecvBatch`], `batch`, the default), with GRO: a frame's
//!   datagrams come as one message, so a frame costs one receive however many packets it has.
//!   One task of the shard reads every socket at each tick ([`read_grid`]); with a zero
//!   interval, each socket has a task of its own that reads as soon as it is readable.
//! - **one multishot ring per shard** ([`RecvRing`], `ring`): each socket is armed once; one
//!   `io_uring_enter` per interval reads every socket that has data. No system call per socket,
//!   but one receive per datagram (a buffer holds one). Since `batch` moved to one task per
//!   shard, `ring` no longer costs less at any size measured.
//!
//! Either way the datagram's arrival is the time the kernel received it, so reading in batches
//! shifts no latency, gap or jitter, and what a datagram does to a session's statistics is in
//! one place, [`UdpSink::take`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::UdpSocket;
use glommio::Task;
use manifold_rtp::ntp::NtpTime;
use manifold_udp::{Message, RecvBatch, RecvRing, RingEvent};

use crate::args::UdpReadInterval;
use crate::grid::{next_tick, sleep_until};
use crate::guard::SourceFilter;
use crate::metrics::{Counts, Metrics};
use crate::progress::Live;
use crate::read_pace::{ReadPace, TickReading};
use crate::receiver::TrackReceiver;

/// Per-session track receivers, shared with the session's UDP readers.
pub(crate) type Receivers = Rc<RefCell<Vec<TrackReceiver>>>;

/// Messages per `recvmmsg`.
const RECV_BATCH: usize = 16;
/// Bytes per `recvmmsg` message: a whole GRO-coalesced message.
const RECV_BUF: usize = 65535;
/// Buffers in a shard's receive ring (the kernel's most): several intervals' datagrams at
/// 1 Gbit/s and 50 ms (about 5,500 of 1,200 bytes each), so that a late tick does not run the
/// ring dry. A dry ring stops the receives that find no buffer; the poll re-arms them, but
/// thousands of re-arms cost more than the reads (measured: 8,192 buffers at 5,000 readers
/// cost 18% more CPU than 32,768).
const RING_BUFFERS: u16 = 32768;
/// The grid's step with `--udp-read-interval auto`.
const AUTO_STEP: Duration = Duration::from_millis(50);
/// With `auto`, the most steps a socket goes unread (200 ms): the longer datagrams wait, the
/// more a server on the same host pays per packet (perf/RESULTS.md, "Reading less often").
const AUTO_MOST_STEPS: u32 = 4;

/// Bytes per ring buffer: one datagram (up to 1,940 bytes, an Ethernet MTU's worth and more)
/// after the kernel's header, the source address and the control messages. 64 MiB per shard.
const RING_BUF: usize = 2048;

/// What one RTP socket's datagrams go to.
pub(crate) struct UdpSink {
    track: usize,
    filter: SourceFilter,
    receivers: Receivers,
    /// The socket's running drop count (`SO_RXQ_OVFL`) last seen.
    drops_seen: u32,
}

impl UdpSink {
    pub(crate) fn new(track: usize, filter: SourceFilter, receivers: Receivers) -> Self {
        UdpSink { track, filter, receivers, drops_seen: 0 }
    }

    /// Accounts one received message: `now`/`wall` stand for its arrival when the kernel gave
    /// no receive time. Returns the datagrams the track's receiver took as RTP of the track.
    fn take(&mut self, msg: &Message<'_>, now: Instant, wall: SystemTime, m: &mut Metrics) -> u64 {
        if let Some(d) = msg.drops {
            m.counts.rxq_drops += u64::from(d.wrapping_sub(self.drops_seen));
            self.drops_seen = d;
        }
        if !self.filter.accepts(msg.source) {
            m.counts.foreign += msg.datagram_count() as u64;
            return 0;
        }
        if msg.truncated {
            // Longer than a buffer: not a datagram we can account for honestly.
            m.counts.malformed += msg.datagram_count() as u64;
            return 0;
        }
        let (arrival, arrival_ntp) = arrival_of(msg, now, wall);
        let mut rxs = self.receivers.borrow_mut();
        let Some(rx) = rxs.get_mut(self.track) else { return 0 };
        let mut n = 0;
        for datagram in msg.datagrams() {
            n += u64::from(rx.handle_packet(arrival, arrival_ntp, datagram, m));
        }
        n
    }
}

/// When a message arrived, monotonic and wall clock: the kernel's receive stamp, or
/// `now`/`wall` when it gave none.
fn arrival_of(msg: &Message<'_>, now: Instant, wall: SystemTime) -> (Instant, NtpTime) {
    match msg.received {
        Some(at) => {
            let at = UNIX_EPOCH + at;
            // A stamp after `wall` (a clock step) counts as now.
            let ago = wall.duration_since(at).unwrap_or_default();
            (now.checked_sub(ago).unwrap_or(now), NtpTime::from_system_time(at))
        }
        None => (now, NtpTime::from_system_time(wall)),
    }
}

/// Reads what a session's RTCP socket of `track` holds (the server's sender reports, on the
/// session's own report clock: one read in seconds, not a grid's) and hands each compound
/// from `filter`'s address to the track's receiver, at the time the kernel received it, so
/// that a report read late still gives an exact DLSR. Returns the compounds taken.
pub(crate) fn read_rtcp(
    reading: &UdpReading,
    socket: impl AsFd,
    filter: SourceFilter,
    receiver: &mut TrackReceiver,
) -> u64 {
    let mut batch = reading.batch.borrow_mut();
    let mut m = reading.metrics.borrow_mut();
    let mut taken = 0;
    while let Ok(got) = batch.recv(socket.as_fd()) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        for msg in batch.messages() {
            if !filter.accepts(msg.source) {
                m.counts.foreign += 1;
                continue;
            }
            if msg.truncated {
                m.counts.malformed += 1;
                continue;
            }
            let (arrival, _) = arrival_of(&msg, now, wall);
            taken += u64::from(receiver.handle_rtcp(arrival, msg.data, &mut m));
        }
        if got < RECV_BATCH {
            break;
        }
    }
    taken
}

/// A shard's UDP reading: the grid, and the ring or the `recvmmsg` batch.
pub(crate) struct UdpReading {
    /// The grid's step (zero: every socket read on readiness by its own task).
    interval: Duration,
    /// On which ticks each socket is read (every tick unless `--udp-read-interval auto`).
    pace: RefCell<ReadPace>,
    /// The grid's origin: the run's start.
    anchor: Instant,
    batch: RefCell<RecvBatch>,
    ring: Option<RefCell<RecvRing>>,
    /// Every socket read on the grid, by key: its sink, and the socket itself unless the ring
    /// holds it.
    grid: RefCell<HashMap<u64, OnGrid>>,
    next_key: Cell<u64>,
    /// The shard's metrics and the run's live counters, which every datagram updates.
    metrics: Rc<RefCell<Metrics>>,
    live: Arc<Live>,
}

/// A socket read on the shard's grid.
struct OnGrid {
    sink: UdpSink,
    /// Read with `recvmmsg` on its ticks; `None` when the socket is armed on the ring.
    socket: Option<socket2::Socket>,
    /// The socket's receive buffer, bytes (`SO_RCVBUF` as the kernel set it).
    rcvbuf: usize,
}

impl UdpReading {
    /// With `ring` and a non-zero interval, tries to set up the shard's receive ring; without
    /// one (or where io_uring cannot do it), sockets are read with `recvmmsg`. The ring's
    /// buffers are shared by all sockets, so with it `auto` reads every socket at every step.
    pub(crate) fn new(
        interval: UdpReadInterval,
        ring: bool,
        anchor: Instant,
        metrics: Rc<RefCell<Metrics>>,
        live: Arc<Live>,
    ) -> Self {
        let (interval, most) = match interval {
            UdpReadInterval::Auto => (AUTO_STEP, AUTO_MOST_STEPS),
            UdpReadInterval::Every(d) => (d, 1),
        };
        let ring = if interval.is_zero() || !ring {
            None
        } else {
            match RecvRing::new(RING_BUFFERS, RING_BUF) {
                Ok(r) => {
                    tracing::debug!("UDP sockets read through a multishot io_uring");
                    Some(RefCell::new(r))
                }
                Err(e) => {
                    tracing::warn!("--udp-receive ring: no multishot io_uring here ({e}); reading with recvmmsg");
                    None
                }
            }
        };
        let most = if ring.is_some() { 1 } else { most };
        UdpReading {
            interval,
            pace: RefCell::new(ReadPace::new(most)),
            anchor,
            batch: RefCell::new(RecvBatch::new(RECV_BATCH, RECV_BUF)),
            ring,
            grid: RefCell::new(HashMap::new()),
            next_key: Cell::new(0),
            metrics,
            live,
        }
    }

    /// Takes into `counts` that sockets were read on one tick in `every`, for the report's
    /// slowest interval.
    fn note_interval(&self, counts: &mut Counts, every: u32) {
        let ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let slowest = ms.saturating_mul(u64::from(every));
        counts.udp_read_interval_max_ms = counts.udp_read_interval_max_ms.max(slowest);
    }

    /// Whether sockets go on the ring: they must then not coalesce (`UDP_GRO` off), as ring
    /// buffers hold one datagram.
    pub(crate) fn uses_ring(&self) -> bool {
        self.ring.is_some()
    }
}

/// A session's reading of one socket; dropping it stops the reading.
pub(crate) enum UdpRead {
    /// Its own task, reading on readiness (a zero `--udp-read-interval`).
    Task(Task<()>),
    /// On the shard's grid, read by its one reading task.
    Grid(GridEntry),
}

/// A socket on the shard's grid under `key`; dropping it takes the socket off (and cancels
/// its receive on the ring).
pub(crate) struct GridEntry {
    reading: Rc<UdpReading>,
    key: u64,
}

impl UdpRead {
    /// Stops reading. A socket on the grid is read one last time first: it may hold up to an
    /// interval of the stream (200 ms with `auto`), which the session did receive.
    pub(crate) async fn stop(self) {
        match self {
            UdpRead::Task(t) => {
                t.cancel().await;
            }
            UdpRead::Grid(entry) => entry.read_last(),
        }
    }
}

impl GridEntry {
    /// Takes what the socket still holds, then takes it off the grid (on the ring, receives
    /// not yet completed are cancelled unread).
    fn read_last(self) {
        let reading = &self.reading;
        if let Some(on) = reading.grid.borrow_mut().get_mut(&self.key) {
            if let Some(socket) = on.socket.as_ref() {
                let (packets, _) = drain(
                    &mut reading.batch.borrow_mut(),
                    socket,
                    &mut on.sink,
                    &mut reading.metrics.borrow_mut(),
                );
                reading.live.packets.fetch_add(packets, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for GridEntry {
    fn drop(&mut self) {
        self.reading.grid.borrow_mut().remove(&self.key);
        if let Some(ring) = &self.reading.ring {
            ring.borrow_mut().cancel(self.key);
        }
    }
}

/// Starts reading `socket` into `sink`; `None` when the ring refused it (the socket is gone
/// with it, and the session sees no media and says so).
pub(crate) fn start(
    reading: &Rc<UdpReading>,
    socket: socket2::Socket,
    sink: UdpSink,
) -> Option<UdpRead> {
    if reading.interval.is_zero() {
        let socket = manifold_sys::glommio_udp(socket);
        return Some(UdpRead::Task(glommio::spawn_local(read_on_readiness(
            reading.clone(),
            socket,
            sink,
        ))));
    }
    let key = reading.next_key.get();
    reading.next_key.set(key + 1);
    let rcvbuf = socket.recv_buffer_size().unwrap_or(0);
    let socket = match &reading.ring {
        Some(ring) => {
            if let Err(e) = ring.borrow_mut().arm(OwnedFd::from(socket), key) {
                tracing::warn!("UDP socket not armed on the receive ring: {e}");
                return None;
            }
            None
        }
        None => Some(socket),
    };
    reading.grid.borrow_mut().insert(key, OnGrid { sink, socket, rcvbuf });
    Some(UdpRead::Grid(GridEntry { reading: reading.clone(), key }))
}

/// Reads the shard's sockets on the grid until `stop`: at each tick, one `io_uring_enter`
/// for all of them (the ring), or a `recvmmsg` per socket whose turn it is. One task and one
/// timer for the shard, however many sockets (a task and a timer per socket cost about a
/// sixth of the generator's CPU at 5,000 readers).
pub(crate) async fn read_grid(reading: Rc<UdpReading>, stop: Rc<Cell<bool>>) {
    if reading.interval.is_zero() {
        return;
    }
    while !stop.get() {
        let at = next_tick(reading.anchor, reading.interval, Instant::now());
        sleep_until(at).await;
        let packets = match &reading.ring {
            Some(ring) => match poll_ring(&reading, ring) {
                Some(packets) => packets,
                None => return,
            },
            None => {
                let tick = (at - reading.anchor).as_nanos() / reading.interval.as_nanos();
                read_tick(&reading, tick as u64, Instant::now())
            }
        };
        reading.live.packets.fetch_add(packets, Ordering::Relaxed);
    }
}

/// One tick with the ring: hands every completed receive to its session's sink; the
/// datagrams taken, or `None` when the ring itself failed (no more media for this shard).
fn poll_ring(reading: &UdpReading, ring: &RefCell<RecvRing>) -> Option<u64> {
    let mut grid = reading.grid.borrow_mut();
    let mut m = reading.metrics.borrow_mut();
    if !grid.is_empty() {
        reading.note_interval(&mut m.counts, 1);
    }
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut packets = 0u64;
    let polled = ring.borrow_mut().poll(|key, event| match event {
        RingEvent::Datagram(msg) => {
            if let Some(on) = grid.get_mut(&key) {
                packets += on.sink.take(&msg, now, wall, &mut m);
            }
        }
        RingEvent::Failed(e) => {
            // The session sees its media stop and reports it (stalled, or no media).
            tracing::warn!("UDP receive on the ring failed: {e}");
            grid.remove(&key);
        }
    });
    match polled {
        Ok(_) => Some(packets),
        Err(e) => {
            tracing::error!(
                "the shard's UDP receive ring failed: {e}; its sessions get no more media"
            );
            None
        }
    }
}

/// Grid tick number `tick` without the ring, at `now`: drains with `recvmmsg` the sockets
/// whose turn it is, and tells the pace how full their buffers were; the datagrams taken.
fn read_tick(reading: &UdpReading, tick: u64, now: Instant) -> u64 {
    let mut batch = reading.batch.borrow_mut();
    let mut m = reading.metrics.borrow_mut();
    let mut pace = reading.pace.borrow_mut();
    let drops_before = m.counts.rxq_drops;
    let (mut packets, mut found, mut read_any) = (0, TickReading::default(), false);
    for (key, on) in reading.grid.borrow_mut().iter_mut() {
        let Some(socket) = on.socket.as_ref() else { continue };
        if !pace.reads(*key, tick) {
            continue;
        }
        read_any = true;
        let (taken, charge) = drain(&mut batch, socket, &mut on.sink, &mut m);
        packets += taken;
        found.fullest = found.fullest.max(charge as f64 / on.rcvbuf.max(1) as f64);
    }
    found.dropped = m.counts.rxq_drops > drops_before;
    if read_any {
        reading.note_interval(&mut m.counts, pace.every());
    }
    if pace.handle_tick(now, found) {
        tracing::debug!(
            "UDP sockets now read every {} ms (fullest buffer {:.0}%{})",
            reading.interval.as_millis() * u128::from(pace.every()),
            found.fullest * 100.0,
            if found.dropped { ", datagrams dropped" } else { "" }
        );
    }
    packets
}

/// Reads what `socket` holds with `recvmmsg` batches until it is empty; returns the datagrams
/// handed to the sink, and at most what they took of the socket's receive buffer.
fn drain(
    batch: &mut RecvBatch,
    socket: impl AsFd,
    sink: &mut UdpSink,
    m: &mut Metrics,
) -> (u64, usize) {
    let (mut packets, mut charge) = (0, 0);
    while let Ok(got) = batch.recv(socket.as_fd()) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        for msg in batch.messages() {
            packets += sink.take(&msg, now, wall, m);
            charge += msg.buffer_charge();
        }
        if got < RECV_BATCH {
            break;
        }
    }
    (packets, charge)
}

/// Reads one RTP socket whenever it becomes readable (a zero `--udp-read-interval`).
async fn read_on_readiness(reading: Rc<UdpReading>, socket: UdpSocket, mut sink: UdpSink) {
    let mut peek = [0u8; 1];
    loop {
        if socket.peek_from(&mut peek).await.is_err() {
            // ICMP errors on an unconnected socket are not ours to act on; try again shortly.
            glommio::timer::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let (packets, _) = drain(
            &mut reading.batch.borrow_mut(),
            manifold_sys::fd_of(&socket),
            &mut sink,
            &mut reading.metrics.borrow_mut(),
        );
        reading.live.packets.fetch_add(packets, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};

    use super::*;
    use crate::read_pace::GROW_AFTER;

    /// A shard's reading with `auto` and `n` sockets on its grid, and a socket that sends to
    /// them.
    fn shard(n: usize) -> (Rc<UdpReading>, Vec<GridEntry>, Vec<StdUdpSocket>, StdUdpSocket) {
        let anchor = Instant::now();
        let metrics = Rc::new(RefCell::new(Metrics::new()));
        let reading = Rc::new(UdpReading::new(
            UdpReadInterval::Auto,
            false,
            anchor,
            metrics,
            Arc::new(Live::default()),
        ));
        let (mut entries, mut peers) = (Vec::new(), Vec::new());
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..n {
            let socket = StdUdpSocket::bind((localhost, 0)).expect("bind");
            socket.set_nonblocking(true).expect("nonblocking");
            let socket = socket2::Socket::from(socket);
            socket.set_recv_buffer_size(64 * 1024).expect("rcvbuf");
            let peer = socket.try_clone().expect("clone");
            let sink = UdpSink::new(
                0,
                SourceFilter::new(localhost, None),
                Rc::new(RefCell::new(Vec::new())),
            );
            match start(&reading, socket, sink) {
                Some(UdpRead::Grid(entry)) => entries.push(entry),
                _ => panic!("not on the grid"),
            }
            peers.push(StdUdpSocket::from(peer));
        }
        let sender = StdUdpSocket::bind((localhost, 0)).expect("bind");
        (reading, entries, peers, sender)
    }

    fn send_to_all(sender: &StdUdpSocket, peers: &[StdUdpSocket], bytes: usize) {
        for p in peers {
            sender.send_to(&vec![0x80; bytes], p.local_addr().expect("addr")).expect("send");
        }
    }

    fn queued(p: &StdUdpSocket) -> usize {
        manifold_udp::queued_charge(p).expect("SO_MEMINFO")
    }

    #[test]
    fn auto_reads_calm_sockets_in_turn_and_every_tick_again_once_one_fills() {
        let (reading, entries, peers, sender) = shard(8);
        let step = reading.interval;
        assert_eq!(step, AUTO_STEP);
        let at = |tick: u64| reading.anchor + step * tick as u32;
        // A small datagram a tick: a few percent of each buffer. Until a calm spell is over,
        // every socket is read at every tick.
        let mut tick = 0;
        while reading.pace.borrow().every() == 1 {
            tick += 1;
            assert!(at(tick) <= reading.anchor + GROW_AFTER + step * 2, "never read less often");
            send_to_all(&sender, &peers, 200);
            read_tick(&reading, tick, at(tick));
            assert!(peers.iter().all(|p| queued(p) == 0), "tick {tick}: a socket was not read");
        }
        assert_eq!(reading.pace.borrow().every(), 2);
        let slowest = || reading.metrics.borrow().counts.udp_read_interval_max_ms;
        assert_eq!(slowest(), AUTO_STEP.as_millis() as u64, "no socket read at the new pace yet");
        // Now half the sockets a tick, in turn: the other half keep theirs until next tick.
        for _ in 0..4 {
            tick += 1;
            send_to_all(&sender, &peers, 200);
            read_tick(&reading, tick, at(tick));
            for (e, p) in entries.iter().zip(&peers) {
                let read = e.key % 2 == tick % 2;
                assert_eq!(queued(p) == 0, read, "tick {tick}, socket {}", e.key);
            }
        }
        assert_eq!(slowest(), 2 * AUTO_STEP.as_millis() as u64, "the report sees the pace");
        // One socket fills past half its buffer: at its turn, every socket every tick again.
        let full = &peers[(tick as usize + 1) % 2];
        while queued(full) < 70 * 1024 {
            sender.send_to(&[0x80; 1200], full.local_addr().expect("addr")).expect("send");
        }
        tick += 1;
        read_tick(&reading, tick, at(tick));
        assert_eq!(queued(full), 0);
        assert_eq!(reading.pace.borrow().every(), 1);
        assert_eq!(slowest(), 2 * AUTO_STEP.as_millis() as u64, "the slowest it reached");
        drop(entries);
        assert!(reading.grid.borrow().is_empty());
    }

    #[test]
    fn a_socket_taken_off_the_grid_is_read_one_last_time() {
        let (reading, mut entries, peers, sender) = shard(2);
        send_to_all(&sender, &peers, 200);
        let entry = entries.remove(0);
        let key = entry.key;
        entry.read_last();
        assert_eq!(queued(&peers[0]), 0, "the last datagram was left unread");
        assert!(queued(&peers[1]) > 0, "another session's socket was read");
        assert!(!reading.grid.borrow().contains_key(&key));
        assert_eq!(reading.grid.borrow().len(), 1);
    }
}
