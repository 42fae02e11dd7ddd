//! One playing session on one shard ([`Reader`]): how each track reaches it, its bounded
//! queue (the skip-to-keyframe policy, [`ReaderQueue`]), whether media flows yet, and its
//! counters, and how long its writer has left it waiting (the stall limit). The fan-out owns
//! it and offers it packets; for a TCP reader the connection's writer drains the queue
//! through the fan-out (woken through `wake`), for a UDP reader the fan-out does when it
//! goes live.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use manifold_rtsp::SessionId;
use manifold_udp::RawAddr;
use serde::Serialize;

use crate::notify::Notify;
use crate::plane::packet::SharedPacket;
use crate::plane::queue::ReaderQueue;
use crate::plane::rtcp_feedback::{SentReports, TrackFeedback};

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

/// One playing session: a reader of one stream. Owned by its fan-out ([`crate::plane::fanout::Fanout`]);
/// the runtime reaches it by id.
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
    torn_down: Box<[bool]>,
    /// The runtime's wake-up for the writer of the reader's connection: notified when a live
    /// reader's queue gains packets and no wake-up is outstanding (see the drain contract).
    wake: Rc<Notify>,
    /// A wake-up was given and the writer has not drained since.
    woken: bool,
    /// Packets waiting: for TCP readers always, for UDP readers until they go live.
    pub(crate) queue: ReaderQueue,
    /// Whether PLAY was answered.
    pub(crate) released: bool,
    /// Whether media flows: TCP readers as soon as PLAY is answered, UDP readers once they
    /// also have their starting keyframe (they are then sent the fan-out's batches).
    pub(crate) live: bool,
    /// When the reader last showed life outside requests (an RTCP report).
    pub(crate) heard: Instant,
    /// Since when a live TCP reader's queued packets have waited for its writer without it
    /// taking any (`None`: nothing waits). Past the stall limit the reader is closed.
    waiting_since: Option<Instant>,
    /// Its counters: packets sent, RTCP feedback.
    pub(crate) obs: ReaderObs,
}

impl Reader {
    /// A reader that has joined nothing yet, created at `now`; `wake` is its connection's
    /// writer's wake-up.
    pub(crate) fn new(spec: ReaderSpec, wake: Rc<Notify>, now: Instant) -> Reader {
        Reader {
            torn_down: spec.tracks.iter().map(|_| false).collect(),
            id: spec.id,
            conn: spec.conn,
            peer: spec.peer,
            session: spec.session,
            path: spec.path,
            tracks: spec.tracks,
            wake,
            woken: false,
            queue: ReaderQueue::new(spec.queue_packets, spec.queue_bytes),
            released: false,
            live: false,
            heard: now,
            waiting_since: None,
            obs: ReaderObs::default(),
        }
    }

    /// Whether the reader's tracks go over UDP.
    pub(crate) fn is_udp(&self) -> bool {
        self.tracks.iter().flatten().any(|t| matches!(t, ReaderTrack::Udp { .. }))
    }

    /// The track's transport, if set up (and not torn down since).
    pub(crate) fn track(&self, track: usize) -> Option<ReaderTrack> {
        if self.torn_down.get(track).copied().unwrap_or(false) {
            return None;
        }
        self.tracks.get(track).copied().flatten()
    }

    /// Stops sending `track` (a TEARDOWN of its URL while playing): it is dropped from the
    /// queue, and later packets of it are ignored. The caller rebuilds the fan-out's UDP
    /// destinations. Returns whether the track was being sent.
    pub(crate) fn tear_down_track(&mut self, track: usize) -> bool {
        if self.track(track).is_none() {
            return false;
        }
        if let Some(t) = self.torn_down.get_mut(track) {
            *t = true;
        }
        self.queue.drop_track(track);
        true
    }

    /// The multicast group the reader joined, if its tracks go by multicast.
    pub(crate) fn multicast_group(&self) -> Option<std::net::SocketAddrV4> {
        self.tracks.iter().flatten().find_map(|t| match t {
            ReaderTrack::Multicast { group } => Some(*group),
            _ => None,
        })
    }

    /// Offers a packet at `now` to the queue (packets of tracks it did not set up, or that
    /// reach it by multicast, are ignored), and wakes the writer of a live reader.
    pub(crate) fn offer(&mut self, now: Instant, packet: &SharedPacket) {
        if matches!(self.track(packet.track()), None | Some(ReaderTrack::Multicast { .. })) {
            return;
        }
        self.queue.offer(packet.clone());
        // Queued packets are handed to the kernel later, by the connection's writer (or when
        // a UDP reader goes live).
        #[cfg(feature = "gate-test-slowdown")]
        crate::plane::gate_test_slowdown(1);
        if self.live {
            self.wake_writer(now);
        }
    }

    /// Tells the writer its queue has packets, once until the writer drains.
    fn wake_writer(&mut self, now: Instant) {
        if self.queue.is_empty() {
            return;
        }
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        if !self.woken {
            self.woken = true;
            self.wake.notify();
        }
    }

    /// Marks the reader live (PLAY answered, and for a UDP reader its keyframe queued); a TCP
    /// reader's writer is woken for what it queued.
    pub(crate) fn go_live(&mut self, now: Instant) {
        self.live = true;
        if !self.is_udp() {
            self.wake_writer(now);
        }
    }

    /// Queues the GOP a new reader starts with.
    pub(crate) fn preload(&mut self, now: Instant, packets: &[SharedPacket]) {
        for p in packets {
            self.offer(now, p);
        }
    }

    /// The sequence number and RTP time of the first packet queued for each track: what
    /// `RTP-Info` tells the reader before it goes live.
    pub(crate) fn first_queued(&self, track: usize) -> Option<(u16, u32)> {
        let first = self.queue.iter().find(|p| p.track() == track && !p.is_rtcp());
        first.map(|p| (p.seq(), p.rtptime()))
    }

    /// Hands the writer at `now` up to `max_bytes` (at least one frame) and `max_frames`
    /// interleaved frames from the queue of a live TCP reader, counting them as sent.
    /// Returns the bytes taken (with 4 bytes of `$` header each). Draining it empty ends the
    /// outstanding wake-up; taking anything restarts the stall clock.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        max_bytes: usize,
        max_frames: usize,
        out: &mut Vec<TcpFrame>,
    ) -> usize {
        let mut bytes = 0;
        let mut took = 0;
        if self.live {
            while bytes < max_bytes && took < max_frames {
                let Some(packet) = self.queue.pop() else { break };
                let Some(ReaderTrack::Tcp { channel }) = self.track(packet.track()) else {
                    continue;
                };
                let channel = if packet.is_rtcp() { channel.saturating_add(1) } else { channel };
                bytes += packet.len() + 4;
                took += 1;
                if packet.is_rtcp() {
                    self.obs.rtcp_sent(now, &packet);
                } else {
                    self.obs.count(packet.len());
                }
                out.push(TcpFrame { packet, channel });
            }
        }
        if self.queue.is_empty() {
            self.woken = false;
            self.waiting_since = None;
        } else if took > 0 {
            self.waiting_since = Some(now);
        }
        bytes
    }

    /// Whether the reader's queued packets have waited for its writer for `limit` or longer
    /// at `now` (the writer cannot hand them to a full socket: the reader reads nothing).
    pub(crate) fn stalled(&self, now: Instant, limit: std::time::Duration) -> bool {
        self.waiting_since.is_some_and(|since| now.saturating_duration_since(since) >= limit)
    }

    /// An RTCP compound packet from the reader at `now`, about `track` when the channel or
    /// port it came on says which (else track 0): it shows the reader is alive, and its
    /// report blocks become the reader's loss and jitter. Returns whether it held any. The
    /// one rule for UDP and TCP readers alike.
    pub(crate) fn absorb_rtcp(
        &mut self,
        now: Instant,
        track: Option<usize>,
        compound: &[u8],
    ) -> bool {
        self.heard = now;
        let track = track.unwrap_or(0);
        let feedback = &mut self.obs.feedback;
        if feedback.len() <= track {
            feedback.resize(track + 1, TrackFeedback::default());
        }
        let none = SentReports::default();
        let sent = self.obs.sr_sent.get(track).unwrap_or(&none);
        crate::plane::rtcp_feedback::absorb(&mut feedback[track], compound, now, sent) > 0
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

/// One interleaved frame for a TCP reader's writer: the shared packet and the channel it goes
/// on (the track's RTP channel, or the next one for RTCP).
#[derive(Debug, Clone)]
pub(crate) struct TcpFrame {
    /// The packet.
    pub(crate) packet: SharedPacket,
    /// Its interleaved channel.
    pub(crate) channel: u8,
}

/// Counters a reader accumulates (what its fan-out cannot count for it).
#[derive(Debug, Default)]
pub(crate) struct ReaderObs {
    /// Packets sent to the reader one by one (TCP frames, UDP packets before it joins the
    /// fan-out's batches).
    packets: u64,
    /// Bytes of those packets.
    bytes: u64,
    /// Per track: the fan-out's UDP counters when the reader joined its batches.
    pub(crate) udp_base: Vec<[u64; 2]>,
    /// Per track: what the reader's RTCP reports said.
    pub(crate) feedback: Vec<TrackFeedback>,
    /// Per track: when the latest sender reports went to the reader (for round trips).
    sr_sent: Vec<SentReports>,
}

impl ReaderObs {
    /// Counts one packet of `len` bytes sent to the reader on its own.
    pub(crate) fn count(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }

    /// An RTCP packet went to the reader at `now` (handed to its writer, or to the kernel):
    /// a sender report's time is remembered, for the round trip its receiver reports give.
    pub(crate) fn rtcp_sent(&mut self, now: Instant, packet: &SharedPacket) {
        let Some(report) = packet.sender_report() else { return };
        let track = packet.track();
        if self.sr_sent.len() <= track {
            self.sr_sent.resize(track + 1, SentReports::default());
        }
        self.sr_sent[track].sent(now, report);
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
    let mut t =
        Totals { packets: reader.obs.packets, bytes: reader.obs.bytes, ..Totals::default() };
    if reader.live && reader.is_udp() {
        let base = &reader.obs.udp_base;
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
    let q = reader.queue.stats();
    t.dropped = q.dropped;
    t.keyframe_skips = q.skips;
    t
}
