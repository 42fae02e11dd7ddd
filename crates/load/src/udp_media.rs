//! UDP media for a shard's sessions: every RTP socket read on one grid of `--udp-read-interval`
//! from the run's start, each datagram timed by the kernel's receive stamp.
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

use crate::grid::{next_tick, sleep_until};
use crate::guard::SourceFilter;
use crate::metrics::Metrics;
use crate::progress::Live;
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
    /// no receive time. Returns the datagrams handed to the track's receiver.
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
        let (arrival, arrival_ntp) = match msg.received {
            Some(at) => {
                let at = UNIX_EPOCH + at;
                // A stamp after `wall` (a clock step) counts as now.
                let ago = wall.duration_since(at).unwrap_or_default();
                (now.checked_sub(ago).unwrap_or(now), NtpTime::from_system_time(at))
            }
            None => (now, NtpTime::from_system_time(wall)),
        };
        let mut rxs = self.receivers.borrow_mut();
        let Some(rx) = rxs.get_mut(self.track) else { return 0 };
        let mut n = 0;
        for datagram in msg.datagrams() {
            rx.handle_packet(arrival, arrival_ntp, datagram, m);
            n += 1;
        }
        n
    }
}

/// A shard's UDP reading: the grid, and the ring or the `recvmmsg` batch.
pub(crate) struct UdpReading {
    /// `--udp-read-interval` (zero: every socket read on readiness by its own task).
    interval: Duration,
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
    /// Read with `recvmmsg` at every tick; `None` when the socket is armed on the ring.
    socket: Option<socket2::Socket>,
}

impl UdpReading {
    /// With `ring` and a non-zero interval, tries to set up the shard's receive ring; without
    /// one (or where io_uring cannot do it), sockets are read with `recvmmsg`.
    pub(crate) fn new(
        interval: Duration,
        ring: bool,
        anchor: Instant,
        metrics: Rc<RefCell<Metrics>>,
        live: Arc<Live>,
    ) -> Self {
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
        UdpReading {
            interval,
            anchor,
            batch: RefCell::new(RecvBatch::new(RECV_BATCH, RECV_BUF)),
            ring,
            grid: RefCell::new(HashMap::new()),
            next_key: Cell::new(0),
            metrics,
            live,
        }
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
    /// Stops reading; datagrams not yet read are not accounted.
    pub(crate) async fn stop(self) {
        match self {
            UdpRead::Task(t) => {
                t.cancel().await;
            }
            UdpRead::Grid(entry) => drop(entry),
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
    reading.grid.borrow_mut().insert(key, OnGrid { sink, socket });
    Some(UdpRead::Grid(GridEntry { reading: reading.clone(), key }))
}

/// Reads every socket of the shard on the grid until `stop`: at each tick, one
/// `io_uring_enter` for all of them (the ring), or a `recvmmsg` per socket. One task and one
/// timer for the shard, however many sockets (a task and a timer per socket cost about a
/// sixth of the generator's CPU at 5,000 readers).
pub(crate) async fn read_grid(reading: Rc<UdpReading>, stop: Rc<Cell<bool>>) {
    if reading.interval.is_zero() {
        return;
    }
    while !stop.get() {
        sleep_until(next_tick(reading.anchor, reading.interval, Instant::now())).await;
        let packets = match &reading.ring {
            Some(ring) => match poll_ring(&reading, ring) {
                Some(packets) => packets,
                None => return,
            },
            None => drain_all(&reading),
        };
        reading.live.packets.fetch_add(packets, Ordering::Relaxed);
    }
}

/// One tick with the ring: hands every completed receive to its session's sink; the
/// datagrams taken, or `None` when the ring itself failed (no more media for this shard).
fn poll_ring(reading: &UdpReading, ring: &RefCell<RecvRing>) -> Option<u64> {
    let mut grid = reading.grid.borrow_mut();
    let mut m = reading.metrics.borrow_mut();
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

/// One tick without the ring: drains every session's socket with `recvmmsg`; the datagrams
/// taken.
fn drain_all(reading: &UdpReading) -> u64 {
    let mut batch = reading.batch.borrow_mut();
    let mut m = reading.metrics.borrow_mut();
    reading
        .grid
        .borrow_mut()
        .values_mut()
        .filter_map(|on| Some((on.socket.as_ref()?, &mut on.sink)))
        .map(|(socket, sink)| drain(&mut batch, socket, sink, &mut m))
        .sum()
}

/// Reads what `socket` holds with `recvmmsg` batches until it is empty; returns the datagrams
/// handed to the sink.
fn drain(batch: &mut RecvBatch, socket: impl AsFd, sink: &mut UdpSink, m: &mut Metrics) -> u64 {
    let mut packets = 0;
    while let Ok(got) = batch.recv(socket.as_fd()) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        for msg in batch.messages() {
            packets += sink.take(&msg, now, wall, m);
        }
        if got < RECV_BATCH {
            break;
        }
    }
    packets
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
        let packets = drain(
            &mut reading.batch.borrow_mut(),
            manifold_sys::fd_of(&socket),
            &mut sink,
            &mut reading.metrics.borrow_mut(),
        );
        reading.live.packets.fetch_add(packets, Ordering::Relaxed);
    }
}
