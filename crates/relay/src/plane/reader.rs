//! One playing session on one shard ([`Reader`]): how each track reaches it, its bounded
//! queue (the skip-to-keyframe policy, [`ReaderQueue`]), whether media flows yet, and its
//! counters. The fan-out offers it packets; for a TCP reader the connection's writer drains
//! the queue (woken through `wake`), for a UDP reader the fan-out does when it goes live.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use manifold_rtsp::SessionId;
use manifold_udp::RawAddr;
use serde::Serialize;

use crate::notify::Notify;
use crate::plane::packet::SharedPacket;
use crate::plane::queue::ReaderQueue;
use crate::plane::rtcp_feedback::TrackFeedback;

/// How one track reaches a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Who a reader is and how it is sent to, for [`Reader::new`].
#[derive(Debug, Clone)]
pub(crate) struct ReaderSpec {
    /// Unique on its shard.
    pub(crate) id: u64,
    /// The connection it plays on (the shard's connection table).
    pub(crate) conn: u64,
    /// The connection's peer, for logs.
    pub(crate) peer: SocketAddr,
    /// The RTSP session, for logs.
    pub(crate) session: SessionId,
    /// The stream's path, for logs.
    pub(crate) path: String,
    /// By stream track index: how the track is sent, or `None` when not set up.
    pub(crate) tracks: Vec<Option<ReaderTrack>>,
    /// Bounds of its queue: packets and bytes.
    pub(crate) queue_packets: usize,
    /// See `queue_packets`.
    pub(crate) queue_bytes: usize,
}

/// One playing session: a reader of one stream.
#[derive(Debug)]
pub(crate) struct Reader {
    /// Unique on its shard.
    pub(crate) id: u64,
    /// The connection it plays on.
    pub(crate) conn: u64,
    /// The connection's peer, for logs.
    pub(crate) peer: SocketAddr,
    /// The RTSP session, for logs.
    pub(crate) session: SessionId,
    /// The stream's path, for logs.
    pub(crate) path: String,
    /// By stream track index: how the track is sent, or `None` when not set up.
    pub(crate) tracks: Vec<Option<ReaderTrack>>,
    /// Per track: torn down while playing (TEARDOWN of its URL): nothing of it is sent.
    /// (Plain cells: read per packet per reader, so no borrow flag.)
    torn_down: Box<[Cell<bool>]>,
    /// Wakes the writer of the reader's connection when its queue has packets.
    pub(crate) wake: Rc<Notify>,
    /// Packets waiting: for TCP readers always, for UDP readers until they go live.
    pub(crate) queue: RefCell<ReaderQueue>,
    /// Whether PLAY was answered.
    pub(crate) released: Cell<bool>,
    /// Whether media flows: TCP readers as soon as PLAY is answered, UDP readers once they
    /// also have their starting keyframe (they are then sent the fan-out's batches).
    pub(crate) live: Cell<bool>,
    /// When the reader last showed life outside requests (an RTCP report).
    pub(crate) heard: Cell<Instant>,
    /// Its counters: packets sent, RTCP feedback.
    pub(crate) obs: ReaderObs,
}

impl Reader {
    /// A reader that has joined nothing yet, created at `now`; `wake` is its connection's
    /// writer's wake-up.
    pub(crate) fn new(spec: ReaderSpec, wake: Rc<Notify>, now: Instant) -> Reader {
        Reader {
            torn_down: spec.tracks.iter().map(|_| Cell::new(false)).collect(),
            id: spec.id,
            conn: spec.conn,
            peer: spec.peer,
            session: spec.session,
            path: spec.path,
            tracks: spec.tracks,
            wake,
            queue: RefCell::new(ReaderQueue::new(spec.queue_packets, spec.queue_bytes)),
            released: Cell::new(false),
            live: Cell::new(false),
            heard: Cell::new(now),
            obs: ReaderObs::default(),
        }
    }

    /// Whether the reader's tracks go over UDP.
    pub(crate) fn is_udp(&self) -> bool {
        self.tracks.iter().flatten().any(|t| matches!(t, ReaderTrack::Udp { .. }))
    }

    /// The track's transport, if set up (and not torn down since).
    pub(crate) fn track(&self, track: usize) -> Option<ReaderTrack> {
        if self.torn_down.get(track).is_some_and(Cell::get) {
            return None;
        }
        self.tracks.get(track).copied().flatten()
    }

    /// Stops sending `track` (a TEARDOWN of its URL while playing): it is dropped from the
    /// queue, and later packets of it are ignored. The caller rebuilds the fan-out's UDP
    /// destinations. Returns whether the track was being sent.
    pub(crate) fn tear_down_track(&self, track: usize) -> bool {
        if self.track(track).is_none() {
            return false;
        }
        if let Some(t) = self.torn_down.get(track) {
            t.set(true);
        }
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
    /// by multicast, are ignored), and wakes the writer of a live reader.
    pub(crate) fn offer(&self, packet: &SharedPacket) {
        if matches!(self.track(packet.track()), None | Some(ReaderTrack::Multicast { .. })) {
            return;
        }
        self.queue.borrow_mut().offer(packet.clone());
        // Queued packets are handed to the kernel later, by the connection's writer (or when
        // a UDP reader goes live).
        #[cfg(feature = "gate-test-slowdown")]
        crate::plane::gate_test_slowdown(1);
        if self.live.get() {
            self.wake.notify();
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

    /// An RTCP compound packet from the reader at `now`, about `track` when the channel or
    /// port it came on says which (else track 0): it shows the reader is alive, and its
    /// report blocks become the reader's loss and jitter. Returns whether it held any. The
    /// one rule for UDP and TCP readers alike.
    pub(crate) fn absorb_rtcp(&self, now: Instant, track: Option<usize>, compound: &[u8]) -> bool {
        self.heard.set(now);
        let track = track.unwrap_or(0);
        let mut feedback = self.obs.feedback.borrow_mut();
        if feedback.len() <= track {
            feedback.resize(track + 1, TrackFeedback::default());
        }
        crate::plane::rtcp_feedback::absorb(&mut feedback[track], compound, now) > 0
    }

    /// The track whose RTCP a reader's interleaved channel carries (its RTP channel + 1).
    pub(crate) fn track_of_rtcp_channel(&self, channel: u8) -> Option<usize> {
        self.tracks.iter().position(
            |t| matches!(t, Some(ReaderTrack::Tcp { channel: c }) if c.checked_add(1) == Some(channel)),
        )
    }

    /// The track whose RTCP comes from `from` (the reader's RTCP port).
    pub(crate) fn track_of_rtcp_source(&self, from: SocketAddr) -> Option<usize> {
        self.tracks
            .iter()
            .position(|t| matches!(t, Some(ReaderTrack::Udp { rtcp: Some(a), .. }) if *a == from))
    }
}

/// Counters a reader accumulates (what its fan-out cannot count for it).
#[derive(Debug, Default)]
pub(crate) struct ReaderObs {
    /// Packets sent to the reader one by one (TCP frames, UDP packets before it joins the
    /// fan-out's batches).
    packets: Cell<u64>,
    /// Bytes of those packets.
    bytes: Cell<u64>,
    /// Per track: the fan-out's UDP counters when the reader joined its batches.
    pub(crate) udp_base: RefCell<Vec<[u64; 2]>>,
    /// Per track: what the reader's RTCP reports said.
    pub(crate) feedback: RefCell<Vec<TrackFeedback>>,
}

impl ReaderObs {
    /// Counts one packet of `len` bytes sent to the reader on its own.
    pub(crate) fn count(&self, len: usize) {
        self.packets.set(self.packets.get() + 1);
        self.bytes.set(self.bytes.get() + len as u64);
    }
}

/// Packet counters of one reader, or summed over several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    /// Packets sent.
    pub(crate) packets: u64,
    /// Bytes sent.
    pub(crate) bytes: u64,
    /// Packets dropped by the reader's queue (behind, or waiting for a keyframe).
    pub(crate) dropped: u64,
    /// Times the reader fell behind and skipped to the next keyframe.
    pub(crate) keyframe_skips: u64,
}

impl Totals {
    /// Adds another's counts.
    pub(crate) fn add(&mut self, o: &Totals) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.dropped += o.dropped;
        self.keyframe_skips += o.keyframe_skips;
    }
}

/// A reader's counters: its own, plus what the fan-out's batched UDP sends gave it since it
/// joined them (`udp_sent`: the fan-out's per-track counters).
pub(crate) fn totals(reader: &Reader, udp_sent: &[[u64; 2]]) -> Totals {
    let mut t = Totals {
        packets: reader.obs.packets.get(),
        bytes: reader.obs.bytes.get(),
        ..Totals::default()
    };
    if reader.live.get() && reader.is_udp() {
        let base = reader.obs.udp_base.borrow();
        for (i, track) in reader.tracks.iter().enumerate() {
            if !matches!(track, Some(ReaderTrack::Udp { .. })) {
                continue;
            }
            let now = udp_sent.get(i).copied().unwrap_or_default();
            let then = base.get(i).copied().unwrap_or_default();
            t.packets += now[0].saturating_sub(then[0]);
            t.bytes += now[1].saturating_sub(then[1]);
        }
    }
    let q = reader.queue.borrow().stats();
    t.dropped = q.dropped;
    t.keyframe_skips = q.skips;
    t
}
