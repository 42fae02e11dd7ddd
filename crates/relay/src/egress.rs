//! Egress on every shard with readers: the readers of one stream on this shard
//! ([`Fanout`]), each reader ([`Reader`]), and what a reader's RTSP connection has to write
//! ([`ConnOut`]).
//!
//! UDP readers are sent from the shard's server-port socket a frame at a time: each reader gets
//! the frame's equal-sized packets as one UDP GSO send, and the sends of all readers go in one
//! `sendmmsg` (manifold-udp's `MmsgSender::send_gso_to_many`); odd-sized packets (parameter
//! sets, audio) go one packet to all readers per `sendmmsg` (`send_to_many`). TCP readers get
//! the shared handle in their bounded queue ([`ReaderQueue`]: skip to the next keyframe when
//! behind), which their connection's writer drains. Nothing here ever waits on a reader.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use manifold_rtsp::SessionId;
use manifold_udp::RawAddr;

use crate::notify::Notify;
use crate::packet::SharedPacket;
use crate::queue::ReaderQueue;
use crate::shard::Shard;

/// How one track reaches a reader.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReaderTrack {
    /// Interleaved on the RTSP connection, RTP on this channel (RTCP on the next).
    Tcp {
        /// The RTP channel.
        channel: u8,
    },
    /// UDP multicast: the stream's owner sends to the group once for all its readers.
    Multicast {
        /// The group's RTP address (RTCP is the next port).
        group: std::net::SocketAddrV4,
    },
    /// UDP to the reader's RTP port.
    Udp {
        /// The reader's RTP address.
        rtp: RawAddr,
        /// Where the reader's RTCP comes from (its RTCP port), when it gave one.
        rtcp: Option<SocketAddr>,
    },
}

/// What the writer of one RTSP connection has to send: responses first, then the media of
/// its live TCP readers.
#[derive(Debug)]
pub(crate) struct ConnOut {
    /// The peer, for logs.
    pub(crate) peer: SocketAddr,
    /// Encoded responses not yet written.
    pub(crate) control: RefCell<Vec<u8>>,
    /// Readers whose media goes out on this connection (TCP readers).
    pub(crate) readers: RefCell<Vec<Rc<Reader>>>,
    /// Wakes the writer.
    pub(crate) notify: Notify,
    /// Set when the connection is closing; the writer stops.
    pub(crate) closed: Cell<bool>,
}

impl ConnOut {
    /// An idle connection output for `peer`.
    pub(crate) fn new(peer: SocketAddr) -> ConnOut {
        ConnOut {
            peer,
            control: RefCell::new(Vec::new()),
            readers: RefCell::new(Vec::new()),
            notify: Notify::default(),
            closed: Cell::new(false),
        }
    }

    /// Queues encoded bytes (a response) and wakes the writer.
    pub(crate) fn send_control(&self, bytes: &[u8]) {
        self.control.borrow_mut().extend_from_slice(bytes);
        self.notify.notify();
    }

    /// Marks the connection closing and wakes the writer so it stops.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.notify.notify();
    }
}

/// One playing session: a reader of one stream.
#[derive(Debug)]
pub(crate) struct Reader {
    /// Unique on its shard.
    pub(crate) id: u64,
    /// The RTSP session, for logs.
    pub(crate) session: SessionId,
    /// The stream's path, for logs.
    pub(crate) path: String,
    /// By stream track index: how the track is sent, or `None` when not set up.
    pub(crate) tracks: Vec<Option<ReaderTrack>>,
    /// Bit `i` set: track `i` was torn down while playing (TEARDOWN of its URL), nothing of
    /// it is sent any more.
    pub(crate) torn_down: Cell<u64>,
    /// The reader's RTSP connection.
    pub(crate) out: Rc<ConnOut>,
    /// Packets waiting: for TCP readers always, for UDP readers until they go live.
    pub(crate) queue: RefCell<ReaderQueue>,
    /// Whether PLAY was answered.
    pub(crate) released: Cell<bool>,
    /// Whether media flows: TCP readers as soon as PLAY is answered, UDP readers once they
    /// also have their starting keyframe (they are then sent the fan-out's batches).
    pub(crate) live: Cell<bool>,
    /// When the reader last showed life outside requests (an RTCP report).
    pub(crate) heard: Cell<Instant>,
    /// Its metrics: packets sent, RTCP feedback.
    pub(crate) obs: crate::metrics::ReaderObs,
}

impl Reader {
    /// Whether the reader's tracks go over UDP.
    pub(crate) fn is_udp(&self) -> bool {
        self.tracks.iter().flatten().any(|t| matches!(t, ReaderTrack::Udp { .. }))
    }

    /// The track's transport, if set up (and not torn down since).
    pub(crate) fn track(&self, track: usize) -> Option<ReaderTrack> {
        let bit = u32::try_from(track).ok().and_then(|t| 1u64.checked_shl(t)).unwrap_or(0);
        if self.torn_down.get() & bit != 0 {
            return None;
        }
        self.tracks.get(track).copied().flatten()
    }

    /// Stops sending `track` (a TEARDOWN of its URL while playing): it is dropped from the
    /// queue, and later packets of it are ignored. The caller rebuilds the fan-out's UDP
    /// destinations. Returns whether the track was being sent.
    pub(crate) fn tear_down_track(&self, track: usize) -> bool {
        let Some(bit) = u32::try_from(track).ok().and_then(|t| 1u64.checked_shl(t)) else {
            return false;
        };
        if self.track(track).is_none() {
            return false;
        }
        self.torn_down.set(self.torn_down.get() | bit);
        self.queue.borrow_mut().drop_track(track);
        true
    }

    /// The multicast group the reader joined, if its tracks go by multicast.
    pub(crate) fn multicast_group(&self) -> Option<std::net::SocketAddrV4> {
        self.tracks.iter().flatten().find_map(|t| match t {
            ReaderTrack::Multicast { group } => Some(*group),
            _ => None,
        })
    }

    /// Offers a packet to the queue (packets of tracks it did not set up, or that reach it
    /// by multicast, are ignored).
    pub(crate) fn offer(&self, packet: &SharedPacket) {
        if matches!(self.track(packet.track()), None | Some(ReaderTrack::Multicast { .. })) {
            return;
        }
        self.queue.borrow_mut().offer(packet.clone());
        // Queued packets are handed to the kernel later, by the connection's writer (or when
        // a UDP reader goes live).
        #[cfg(feature = "gate-test-slowdown")]
        gate_test_slowdown(1);
        if self.live.get() {
            self.out.notify.notify();
        }
    }

    /// Queues the GOP a new reader starts with.
    pub(crate) fn preload(&self, packets: &[SharedPacket]) {
        for p in packets {
            self.offer(p);
        }
    }

    /// The sequence number and RTP time of the first packet queued for each track: what
    /// `RTP-Info` tells the reader before it goes live.
    pub(crate) fn first_queued(&self, track: usize) -> Option<(u16, u32)> {
        let queue = self.queue.borrow();
        let first = queue.iter().find(|p| p.track() == track && !p.is_rtcp());
        first.map(|p| (p.seq(), p.rtptime()))
    }
}

/// The readers of one stream on one shard.
#[derive(Debug)]
pub(crate) struct Fanout {
    readers: RefCell<Vec<Rc<Reader>>>,
    /// The readers that take RTP through their queue: TCP readers, and UDP readers until they
    /// go live (live UDP readers get the batched sends instead). Kept apart so that a packet
    /// costs nothing per live UDP reader beyond its share of the send.
    queued: RefCell<Vec<Rc<Reader>>>,
    /// Per track: the RTP addresses of the live UDP readers.
    udp_dests: RefCell<Vec<Vec<RawAddr>>>,
    /// Packets delivered, for metrics.
    pub(crate) packets_out: Cell<u64>,
    /// Per track: the SSRC of the latest packet (for the BYE a leaving reader gets).
    ssrcs: RefCell<Vec<Option<u32>>>,
    /// Per track: the packets of the frame being collected for the live UDP readers.
    pending: RefCell<Vec<Vec<SharedPacket>>>,
    /// Per track: packets and bytes sent to each live UDP reader by the batched sends so
    /// far (a reader's share is the growth since it joined).
    udp_sent: RefCell<Vec<[u64; 2]>>,
    /// Counters of readers that left.
    retired: Cell<crate::metrics::Totals>,
}

impl Fanout {
    /// No readers yet.
    pub(crate) fn new() -> Fanout {
        Fanout {
            readers: RefCell::new(Vec::new()),
            queued: RefCell::new(Vec::new()),
            udp_dests: RefCell::new(Vec::new()),
            packets_out: Cell::new(0),
            ssrcs: RefCell::new(Vec::new()),
            pending: RefCell::new(Vec::new()),
            udp_sent: RefCell::new(Vec::new()),
            retired: Cell::new(crate::metrics::Totals::default()),
        }
    }

    /// Hands a packet to every reader: one `sendmmsg` for the live UDP readers of its track,
    /// a queue push for the others.
    pub(crate) fn deliver(&self, shard: &Shard, packet: &SharedPacket) {
        self.packets_out.set(self.packets_out.get() + 1);
        if packet.is_rtcp() {
            for r in self.readers.borrow().iter() {
                if r.live.get() && r.is_udp() {
                    if let Some(ReaderTrack::Udp { rtcp: Some(to), .. }) = r.track(packet.track()) {
                        shard.send_rtcp(packet.rtp(), to);
                    }
                } else {
                    r.offer(packet);
                }
            }
            return;
        }
        {
            let mut ssrcs = self.ssrcs.borrow_mut();
            if ssrcs.len() <= packet.track() {
                ssrcs.resize(packet.track() + 1, None);
            }
            ssrcs[packet.track()] = Some(packet.ssrc());
        }
        self.batch_for_udp(shard, packet);
        let mut ready: Option<Vec<Rc<Reader>>> = None;
        for r in self.queued.borrow().iter() {
            r.offer(packet);
            if r.released.get() && r.is_udp() && r.queue.borrow().started() {
                ready.get_or_insert_with(Vec::new).push(r.clone());
            }
        }
        for r in ready.into_iter().flatten() {
            shard.activate_udp(self, &r);
        }
    }

    /// Collects a frame's packets for the live UDP readers of its track and sends the frame
    /// when it is complete (marker bit, or the next frame's timestamp): each reader gets the
    /// frame as GSO sends, all readers in one `sendmmsg`. Holding a frame never delays a
    /// packet by more than the frame itself takes to arrive.
    fn batch_for_udp(&self, shard: &Shard, packet: &SharedPacket) {
        let track = packet.track();
        let has_dests = self.udp_dests.borrow().get(track).is_some_and(|d| !d.is_empty());
        let mut pending = self.pending.borrow_mut();
        if pending.len() <= track {
            pending.resize_with(track + 1, Vec::new);
        }
        let frame = &mut pending[track];
        if frame.last().is_some_and(|last| last.rtptime() != packet.rtptime()) {
            self.flush_frame(shard, track, frame);
        }
        if !has_dests {
            frame.clear();
            return;
        }
        frame.push(packet.clone());
        if packet.marker() || frame.len() >= manifold_udp::GSO_MAX_SEGMENTS {
            self.flush_frame(shard, track, frame);
        }
    }

    fn flush_frame(&self, shard: &Shard, track: usize, frame: &mut Vec<SharedPacket>) {
        if let Some(dests) = self.udp_dests.borrow().get(track) {
            if !dests.is_empty() && !frame.is_empty() {
                shard.send_udp_frame(frame, dests);
                #[cfg(feature = "gate-test-slowdown")]
                gate_test_slowdown(frame.len() * dests.len());
                let mut sent = self.udp_sent.borrow_mut();
                if sent.len() <= track {
                    sent.resize(track + 1, [0; 2]);
                }
                sent[track][0] += frame.len() as u64;
                sent[track][1] += frame.iter().map(|p| p.len() as u64).sum::<u64>();
            }
        }
        frame.clear();
    }

    /// Whether `packet` is held in the frame being collected for UDP readers (it will reach
    /// every live UDP reader of its track when the frame is sent).
    pub(crate) fn holds(&self, packet: &SharedPacket) -> bool {
        self.pending
            .borrow()
            .get(packet.track())
            .is_some_and(|f| f.iter().any(|p| std::sync::Arc::ptr_eq(p, packet)))
    }

    /// Adds a reader (not live yet: its packets queue up).
    pub(crate) fn add(&self, reader: Rc<Reader>) {
        if takes_queue(&reader) {
            self.queued.borrow_mut().push(reader.clone());
        }
        self.readers.borrow_mut().push(reader);
    }

    /// Removes reader `id`; returns whether the fan-out is now empty.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let leaving = self.readers.borrow().iter().find(|r| r.id == id).cloned();
        if let Some(r) = leaving {
            let mut retired = self.retired.get();
            retired.add(&crate::metrics::totals(&r, self));
            self.retired.set(retired);
        }
        self.readers.borrow_mut().retain(|r| r.id != id);
        self.queued.borrow_mut().retain(|r| r.id != id);
        self.rebuild_udp();
        self.readers.borrow().is_empty()
    }

    /// Per track: packets and bytes each live UDP reader was sent by the batched sends.
    pub(crate) fn udp_sent(&self) -> Vec<[u64; 2]> {
        self.udp_sent.borrow().clone()
    }

    /// Counters of the readers that left.
    pub(crate) fn retired(&self) -> crate::metrics::Totals {
        self.retired.get()
    }

    /// The SSRC last seen on `track`.
    pub(crate) fn ssrc(&self, track: usize) -> Option<u32> {
        self.ssrcs.borrow().get(track).copied().flatten()
    }

    /// Every reader.
    pub(crate) fn readers(&self) -> Vec<Rc<Reader>> {
        self.readers.borrow().clone()
    }

    /// Recomputes the UDP destinations (and which readers take packets through their queue)
    /// after a reader went live or left, or a track was torn down.
    pub(crate) fn rebuild_udp(&self) {
        let readers = self.readers.borrow();
        *self.queued.borrow_mut() = readers.iter().filter(|r| takes_queue(r)).cloned().collect();
        let mut dests: Vec<Vec<RawAddr>> = Vec::new();
        for r in readers.iter().filter(|r| r.live.get()) {
            for i in 0..r.tracks.len() {
                if let Some(ReaderTrack::Udp { rtp, .. }) = r.track(i) {
                    if dests.len() <= i {
                        dests.resize_with(i + 1, Vec::new);
                    }
                    dests[i].push(rtp);
                }
            }
        }
        *self.udp_dests.borrow_mut() = dests;
    }
}

/// Whether `reader` takes RTP through its queue rather than the fan-out's batched UDP sends:
/// TCP readers always, UDP readers until they go live (`Shard::activate_udp`, which rebuilds
/// the fan-out).
fn takes_queue(reader: &Reader) -> bool {
    !(reader.live.get() && reader.is_udp())
}

/// Rounds of [`gate_test_slowdown`] per datagram: about 2.7–3 µs of CPU on the development
/// machines, 2–3× the 0.8–1.3 µs the relay spends per datagram it delivers there, which leaves
/// it 0.22–0.28× the packets per CPU-second (perf/PROFILE.md).
#[cfg(feature = "gate-test-slowdown")]
const SLOWDOWN_ROUNDS_PER_DATAGRAM: u64 = 2048;

/// Test-only (`--features gate-test-slowdown`): burns CPU for `datagrams` datagrams handed to
/// the kernel, a fixed chain of multiplications the optimiser cannot drop, so that the CI perf
/// gate can be shown to fail on a build that delivers well under half the packets per relay
/// CPU-second. Compiled out of every normal build.
#[cfg(feature = "gate-test-slowdown")]
fn gate_test_slowdown(datagrams: usize) {
    let rounds = (datagrams as u64).saturating_mul(SLOWDOWN_ROUNDS_PER_DATAGRAM);
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..rounds {
        x = std::hint::black_box(
            x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407),
        );
    }
    std::hint::black_box(x);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn reader(id: u64, track: ReaderTrack) -> Rc<Reader> {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        Rc::new(Reader {
            id,
            session: SessionId(format!("s{id}")),
            path: "/demo".into(),
            tracks: vec![Some(track)],
            torn_down: Cell::new(0),
            out: Rc::new(ConnOut::new(peer)),
            queue: RefCell::new(ReaderQueue::new(100, 1 << 20)),
            released: Cell::new(false),
            live: Cell::new(false),
            heard: Cell::new(Instant::now()),
            obs: crate::metrics::ReaderObs::default(),
        })
    }

    fn queued_ids(f: &Fanout) -> Vec<u64> {
        f.queued.borrow().iter().map(|r| r.id).collect()
    }

    #[test]
    fn live_udp_readers_leave_the_per_packet_walk() {
        let udp = ReaderTrack::Udp {
            rtp: "127.0.0.1:6000".parse::<SocketAddr>().unwrap().into(),
            rtcp: None,
        };
        let f = Fanout::new();
        f.add(reader(1, ReaderTrack::Tcp { channel: 0 }));
        let u = reader(2, udp);
        f.add(u.clone());
        assert_eq!(queued_ids(&f), [1, 2], "a UDP reader queues until it goes live");
        u.live.set(true);
        f.rebuild_udp();
        assert_eq!(queued_ids(&f), [1], "a live UDP reader gets the batched sends only");
        assert_eq!(f.udp_dests.borrow()[0].len(), 1);
        let t = f.readers().into_iter().find(|r| r.id == 1).unwrap();
        t.live.set(true);
        f.rebuild_udp();
        assert_eq!(queued_ids(&f), [1], "a live TCP reader still takes its queue");
        assert!(!f.remove(1));
        assert!(queued_ids(&f).is_empty());
        assert!(f.remove(2));
        assert!(f.udp_dests.borrow().iter().all(Vec::is_empty));
    }
}
