//! The readers of one stream on one shard ([`Fanout`]), sans-IO. A packet is handed to every
//! reader without a syscall or a copy per reader: live UDP readers get each frame as one
//! [`Egress::UdpFrame`] (the shard sends it as one GSO message per reader, batched across
//! readers with `sendmmsg`); TCP readers, and UDP readers until they go live, get the shared
//! handle in their bounded queue (skip to the next keyframe when behind). Nothing here ever
//! waits on a reader.

use std::rc::Rc;
use std::time::{Duration, Instant};

use manifold_udp::RawAddr;
use rustc_hash::FxHashMap;

use crate::plane::packet::SharedPacket;
use crate::plane::reader::{totals, Reader, ReaderTrack, TcpFrame, Totals};
use crate::plane::Egress;

/// The readers of one stream on one shard; it owns them (the runtime names a reader by id).
///
/// Drain contract: [`Fanout::deliver`], [`Fanout::release`] and [`Fanout::activate`] push the
/// sends they decide into the caller's `out`, in order; the caller carries them out (and may
/// batch them) before it hands the fan-out the next packet. TCP readers' packets stay in
/// their queues: when a live TCP reader's queue gains packets and no wake-up is outstanding,
/// its connection's writer is notified once; the writer then calls [`Fanout::drain`] until
/// the queue is empty (which ends the wake-up). A reader whose queued packets wait longer
/// than the stall limit without the writer taking any is named by [`Fanout::stalled`], and
/// the runtime closes it.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    readers: Vec<Reader>,
    /// Reader id → index in `readers` (looked up per writer wake-up: a cheap hash).
    index: FxHashMap<u64, usize>,
    /// Indices of the readers that take RTP through their queue: TCP readers, and UDP readers
    /// until they go live (live UDP readers get the batched sends instead). Kept apart so that
    /// a packet costs nothing per live UDP reader beyond its share of the send.
    queued: Vec<usize>,
    /// Per track: the RTP addresses of the live UDP readers.
    udp_dests: Vec<Rc<[RawAddr]>>,
    /// Per track: the SSRC of the latest packet (for the BYE a leaving reader gets).
    ssrcs: Vec<Option<u32>>,
    /// Per track: the packets of the frame being collected for the live UDP readers.
    pending: Vec<Vec<SharedPacket>>,
    /// Per track: packets and bytes sent to each live UDP reader by the batched sends so
    /// far (a reader's share is the growth since it joined).
    udp_sent: Vec<[u64; 2]>,
    /// Counters of readers that left.
    retired: Totals,
}

impl Fanout {
    /// Hands a packet to every reader at `now`: its share of a frame for the live UDP readers
    /// of its track, a queue push for the others. A released UDP reader whose queue now starts
    /// at a keyframe goes live ([`Fanout::activate`]).
    pub(crate) fn deliver(&mut self, now: Instant, packet: &SharedPacket, out: &mut Vec<Egress>) {
        if packet.is_rtcp() {
            for r in &mut self.readers {
                if r.live && r.is_udp() {
                    if let Some(ReaderTrack::Udp { rtcp: Some(to), .. }) = r.track(packet.track()) {
                        r.obs.rtcp_sent(now, packet);
                        out.push(Egress::Rtcp { packet: packet.clone(), to });
                    }
                } else {
                    r.offer(now, packet);
                }
            }
            return;
        }
        let track = packet.track();
        if self.ssrcs.len() <= track {
            self.ssrcs.resize(track + 1, None);
        }
        self.ssrcs[track] = Some(packet.ssrc());
        self.batch_for_udp(packet, out);
        let mut ready: Option<Vec<u64>> = None;
        for &i in &self.queued {
            let r = &mut self.readers[i];
            r.offer(now, packet);
            if r.released && r.is_udp() && r.queue.started() {
                ready.get_or_insert_with(Vec::new).push(r.id);
            }
        }
        for id in ready.into_iter().flatten() {
            self.activate(now, id, out);
        }
    }

    /// Collects a frame's packets for the live UDP readers of its track and sends the frame
    /// when it is complete (marker bit, or the next frame's timestamp). Holding a frame never
    /// delays a packet by more than the frame itself takes to arrive.
    fn batch_for_udp(&mut self, packet: &SharedPacket, out: &mut Vec<Egress>) {
        let track = packet.track();
        let has_dests = self.udp_dests.get(track).is_some_and(|d| !d.is_empty());
        if self.pending.len() <= track {
            self.pending.resize_with(track + 1, Vec::new);
        }
        let mut frame = std::mem::take(&mut self.pending[track]);
        if frame.last().is_some_and(|last| last.rtptime() != packet.rtptime()) {
            self.flush_frame(track, &mut frame, out);
        }
        if has_dests {
            frame.push(packet.clone());
            if packet.marker() || frame.len() >= manifold_udp::GSO_MAX_SEGMENTS {
                self.flush_frame(track, &mut frame, out);
            }
        } else {
            frame.clear();
        }
        self.pending[track] = frame;
    }

    fn flush_frame(&mut self, track: usize, frame: &mut Vec<SharedPacket>, out: &mut Vec<Egress>) {
        match self.udp_dests.get(track) {
            Some(dests) if !dests.is_empty() && !frame.is_empty() => {
                if self.udp_sent.len() <= track {
                    self.udp_sent.resize(track + 1, [0; 2]);
                }
                self.udp_sent[track][0] += frame.len() as u64;
                self.udp_sent[track][1] += frame.iter().map(|p| p.len() as u64).sum::<u64>();
                let packets = std::mem::replace(frame, Vec::with_capacity(frame.len()));
                out.push(Egress::UdpFrame { packets, dests: dests.clone() });
            }
            _ => frame.clear(),
        }
    }

    /// Moves released UDP reader `id` to the batched sends: what it queued (from its keyframe
    /// on) goes out one by one first, except the packets of the frame being collected, which
    /// reach it with that frame.
    pub(crate) fn activate(&mut self, now: Instant, id: u64, out: &mut Vec<Egress>) {
        let Some(&i) = self.index.get(&id) else { return };
        let udp_sent = self.udp_sent.clone();
        let pending = &self.pending;
        let reader = &mut self.readers[i];
        while let Some(p) = reader.queue.pop() {
            let held = pending
                .get(p.track())
                .is_some_and(|f| f.iter().any(|q| std::sync::Arc::ptr_eq(q, &p)));
            if held {
                continue;
            }
            match reader.track(p.track()) {
                Some(ReaderTrack::Udp { rtcp: Some(to), .. }) if p.is_rtcp() => {
                    reader.obs.rtcp_sent(now, &p);
                    out.push(Egress::Rtcp { packet: p, to });
                }
                Some(ReaderTrack::Udp { rtp, .. }) if !p.is_rtcp() => {
                    reader.obs.count(p.len());
                    out.push(Egress::UdpPacket { packet: p, dest: rtp });
                }
                _ => {}
            }
        }
        reader.obs.udp_base = udp_sent;
        reader.live = true;
        self.rebuild_udp();
    }

    /// PLAY was answered for reader `id` at `now`: a TCP reader goes live (its writer is
    /// woken for what it queued); a UDP reader once its queue holds its starting keyframe
    /// (until then packets keep queueing and skipping).
    pub(crate) fn release(&mut self, now: Instant, id: u64, out: &mut Vec<Egress>) {
        let Some(r) = self.get_mut(id) else { return };
        r.released = true;
        if !r.is_udp() {
            r.go_live(now);
        } else if r.queue.started() {
            self.activate(now, id, out);
        }
    }

    /// Hands the writer of TCP reader `id` up to `max_bytes` and `max_frames` frames of its
    /// queue ([`Reader::drain`]); returns the bytes taken.
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        id: u64,
        max_bytes: usize,
        max_frames: usize,
        out: &mut Vec<TcpFrame>,
    ) -> usize {
        self.get_mut(id).map_or(0, |r| r.drain(now, max_bytes, max_frames, out))
    }

    /// The readers whose writers left their packets waiting for `limit` or longer at `now`:
    /// (reader, connection) pairs for the runtime to close.
    pub(crate) fn stalled(&self, now: Instant, limit: Duration, out: &mut Vec<(u64, u64)>) {
        out.extend(self.readers.iter().filter(|r| r.stalled(now, limit)).map(|r| (r.id, r.conn)));
    }

    /// Adds a reader (not live yet: its packets queue up).
    pub(crate) fn add(&mut self, reader: Reader) {
        self.index.insert(reader.id, self.readers.len());
        self.readers.push(reader);
        self.rebuild_queued();
    }

    /// Removes reader `id`; returns whether the fan-out is now empty.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        if let Some(i) = self.index.remove(&id) {
            let totals = self.totals(&self.readers[i]);
            self.retired.add(&totals);
            self.readers.swap_remove(i);
            if let Some(moved) = self.readers.get(i) {
                self.index.insert(moved.id, i);
            }
            self.rebuild_udp();
        }
        self.readers.is_empty()
    }

    /// Reader `id`.
    pub(crate) fn get(&self, id: u64) -> Option<&Reader> {
        self.index.get(&id).map(|&i| &self.readers[i])
    }

    /// Reader `id`, to change.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Reader> {
        self.index.get(&id).map(|&i| &mut self.readers[i])
    }

    /// Stops sending `track` to reader `id` (a TEARDOWN of its URL while playing); returns
    /// whether the track was being sent.
    pub(crate) fn tear_down_track(&mut self, id: u64, track: usize) -> bool {
        let torn = self.get_mut(id).is_some_and(|r| r.tear_down_track(track));
        if torn {
            self.rebuild_udp();
        }
        torn
    }

    /// A reader's counters, with its share of the batched UDP sends.
    pub(crate) fn totals(&self, reader: &Reader) -> Totals {
        totals(reader, &self.udp_sent)
    }

    /// Counters of the readers that left.
    pub(crate) fn retired(&self) -> Totals {
        self.retired
    }

    /// The SSRC last seen on `track`.
    pub(crate) fn ssrc(&self, track: usize) -> Option<u32> {
        self.ssrcs.get(track).copied().flatten()
    }

    /// Every reader.
    pub(crate) fn readers(&self) -> &[Reader] {
        &self.readers
    }

    /// Recomputes which readers take packets through their queue.
    fn rebuild_queued(&mut self) {
        self.queued = self
            .readers
            .iter()
            .enumerate()
            .filter(|(_, r)| takes_queue(r))
            .map(|(i, _)| i)
            .collect();
    }

    /// Recomputes the UDP destinations (and which readers take packets through their queue)
    /// after a reader went live or left, or a track was torn down.
    fn rebuild_udp(&mut self) {
        self.rebuild_queued();
        let mut dests: Vec<Vec<RawAddr>> = Vec::new();
        for r in self.readers.iter().filter(|r| r.live) {
            for i in 0..r.tracks.len() {
                if let Some(ReaderTrack::Udp { rtp, .. }) = r.track(i) {
                    if dests.len() <= i {
                        dests.resize_with(i + 1, Vec::new);
                    }
                    dests[i].push(rtp);
                }
            }
        }
        self.udp_dests = dests.into_iter().map(Rc::from).collect();
    }
}

/// An RTCP BYE for one of a reader's tracks: how the track reaches the reader, and the
/// compound packet (an empty receiver report and the BYE) for its RTCP channel or port.
#[derive(Debug, Clone)]
pub(crate) struct Bye {
    /// How the track reaches the reader.
    pub(crate) track: ReaderTrack,
    /// The RTCP compound packet.
    pub(crate) rtcp: Vec<u8>,
}

impl Fanout {
    /// The BYEs that tell reader `id` that `track` (or, with `None`, every track) ends, with
    /// `reason`: one per track that is set up and has had a packet (whose SSRC the BYE names).
    pub(crate) fn byes(&self, id: u64, track: Option<usize>, reason: &str) -> Vec<Bye> {
        let mut byes = Vec::new();
        let Some(reader) = self.get(id) else { return byes };
        let tracks = match track {
            Some(t) => t..t + 1,
            None => 0..reader.tracks.len(),
        };
        for track in tracks {
            let (Some(t), Some(ssrc)) = (reader.track(track), self.ssrc(track)) else {
                continue;
            };
            let mut buf = [0u8; 128];
            let mut w = manifold_rtp::rtcp::Writer::new(&mut buf);
            let ssrc = manifold_rtp::Ssrc(ssrc);
            if w.receiver_report(ssrc, &[]).is_err()
                || w.bye(&[ssrc], Some(reason.as_bytes())).is_err()
            {
                continue;
            }
            byes.push(Bye { track: t, rtcp: w.written().to_vec() });
        }
        byes
    }
}

/// Whether `reader` takes RTP through its queue rather than the fan-out's batched UDP sends:
/// TCP readers always, UDP readers until they go live ([`Fanout::activate`]).
fn takes_queue(reader: &Reader) -> bool {
    !(reader.live && reader.is_udp())
}
