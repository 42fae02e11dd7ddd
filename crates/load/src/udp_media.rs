//! UDP media for a shard's sessions: every RTP socket read on one grid of `--udp-read-interval`
//! from the run's start, each datagram timed by the kernel's receive stamp.
//!
//! Two ways to read on the grid (`--udp-receive`), measured against each other in
//! perf/RESULTS.md ("Generator cost beside the relay's"):
//!
//! - **`recvmmsg` per socket** ([`RecvBatch`], `batch`, the default), with GRO: a frame's
//!   datagrams come as one message, so a frame costs one receive however many packets it has;
//!   with a zero interval, one task per socket reading as soon as it is readable.
//! - **one multishot ring per shard** ([`RecvRing`], `ring`): each socket is armed once; one
//!   `io_uring_enter` per interval reads every socket that has data. No system call per socket,
//!   but one receive per datagram (a buffer holds one): cheaper with thousands of readers of
//!   one-packet frames, dearer with several packets a frame.
//!
//! Either way the datagram's arrival is the time the kernel received it, so reading in batches
//! shifts no latency, gap or jitter, and what a datagram does to a session's statistics is in
//! one place, [`UdpSink::take`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::UdpSocket;
use glommio::Task;
use manifold_rtp::ntp::NtpTime;
use manifold_udp::{Message, RecvBatch, RecvRing, RingEvent};

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
    sinks: RefCell<HashMap<u64, UdpSink>>,
    next_key: Cell<u64>,
    /// The shard's metrics and the run's live counters, which every datagram updates.
    metrics: Rc<RefCell<Metrics>>,
    live: Arc<Live>,
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
            sinks: RefCell::new(HashMap::new()),
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
    /// Its own task (`recvmmsg` on the grid, or on readiness).
    Task(Task<()>),
    /// Armed on the shard's ring.
    Ring(RingArm),
}

/// A socket armed on the shard's ring under `key`; dropping it cancels the receive.
pub(crate) struct RingArm {
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
            UdpRead::Ring(arm) => drop(arm),
        }
    }
}

impl Drop for RingArm {
    fn drop(&mut self) {
        self.reading.sinks.borrow_mut().remove(&self.key);
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
    if let Some(ring) = &reading.ring {
        let key = reading.next_key.get();
        reading.next_key.set(key + 1);
        match ring.borrow_mut().arm(OwnedFd::from(socket), key) {
            Ok(()) => {
                reading.sinks.borrow_mut().insert(key, sink);
                return Some(UdpRead::Ring(RingArm { reading: reading.clone(), key }));
            }
            Err(e) => {
                tracing::warn!("UDP socket not armed on the receive ring: {e}");
                return None;
            }
        }
    }
    let socket = manifold_sys::glommio_udp(socket);
    Some(UdpRead::Task(glommio::spawn_local(read_socket(reading.clone(), socket, sink))))
}

/// Reads the shard's ring on the grid until `stop`: one enter per interval for all sockets.
pub(crate) async fn read_ring(reading: Rc<UdpReading>, stop: Rc<Cell<bool>>) {
    let Some(ring) = &reading.ring else { return };
    while !stop.get() {
        sleep_until(next_tick(reading.anchor, reading.interval, Instant::now())).await;
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut m = reading.metrics.borrow_mut();
        let mut sinks = reading.sinks.borrow_mut();
        let mut packets = 0u64;
        let polled = ring.borrow_mut().poll(|key, event| match event {
            RingEvent::Datagram(msg) => {
                if let Some(sink) = sinks.get_mut(&key) {
                    packets += sink.take(&msg, now, wall, &mut m);
                }
            }
            RingEvent::Failed(e) => {
                // The session sees its media stop and reports it (stalled, or no media).
                tracing::warn!("UDP receive on the ring failed: {e}");
                sinks.remove(&key);
            }
        });
        reading.live.packets.fetch_add(packets, Ordering::Relaxed);
        if let Err(e) = polled {
            tracing::error!(
                "the shard's UDP receive ring failed: {e}; its sessions get no more media"
            );
            return;
        }
    }
}

/// Drains one RTP socket with `recvmmsg` batches until it is empty, every interval on the
/// shard's grid (or, with a zero interval, whenever it becomes readable).
async fn read_socket(reading: Rc<UdpReading>, socket: UdpSocket, mut sink: UdpSink) {
    let mut peek = [0u8; 1];
    loop {
        if !reading.interval.is_zero() {
            // Every socket of the shard on one grid: one wake-up reads them all, rather than
            // one wake-up (and executor round) per socket.
            sleep_until(next_tick(reading.anchor, reading.interval, Instant::now())).await;
        } else if socket.peek_from(&mut peek).await.is_err() {
            // ICMP errors on an unconnected socket are not ours to act on; try again shortly.
            glommio::timer::sleep(Duration::from_millis(1)).await;
            continue;
        }
        loop {
            let mut batch = reading.batch.borrow_mut();
            let got = match batch.recv(manifold_sys::fd_of(&socket)) {
                Ok(n) => n,
                Err(_) => break,
            };
            let now = Instant::now();
            let wall = SystemTime::now();
            let mut m = reading.metrics.borrow_mut();
            let mut packets = 0u64;
            for msg in batch.messages() {
                packets += sink.take(&msg, now, wall, &mut m);
            }
            reading.live.packets.fetch_add(packets, Ordering::Relaxed);
            if got < RECV_BATCH {
                break;
            }
        }
    }
}

async fn sleep_until(at: Instant) {
    glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// The first point after `now` of the grid of `interval`s from `anchor`.
fn next_tick(anchor: Instant, interval: Duration, now: Instant) -> Instant {
    let step = interval.as_nanos().max(1);
    let since = now.saturating_duration_since(anchor).as_nanos();
    let ticks = u32::try_from(since / step + 1).unwrap_or(u32::MAX);
    anchor + interval.saturating_mul(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_reads_fall_on_one_grid() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_tick(t0, ms(50), t0), t0 + ms(50));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(49)), t0 + ms(50));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(50)), t0 + ms(100));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(1234)), t0 + ms(1250));
        // Before the anchor (sessions start after it, but the clock may say otherwise).
        assert_eq!(next_tick(t0 + ms(10), ms(50), t0), t0 + ms(60));
    }
}
