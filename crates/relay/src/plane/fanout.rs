//! The readers of one stream on one shard ([`Fanout`]), sans-IO. A packet is handed to every
//! reader without a syscall or a copy per reader: live UDP readers get each frame as one
//! [`Egress::UdpFrame`] (the shard sends it as one GSO message per reader, batched across
//! readers with `sendmmsg`); TCP readers, and UDP readers until they go live, get the shared
//! handle in their bounded queue (skip to the next keyframe when behind). Nothing here ever
//! waits on a reader.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use manifold_udp::RawAddr;

use crate::plane::packet::SharedPacket;
use crate::plane::reader::{totals, Reader, ReaderTrack, Totals};
use crate::plane::Egress;

/// The readers of one stream on one shard.
///
/// Drain contract: [`Fanout::deliver`] and [`Fanout::activate`] push the sends they decide
/// into the caller's `out`, in order; the caller carries them out (and may batch them) before
/// it hands the fan-out the next packet. TCP readers' packets stay in their queues, and their
/// writers are woken to drain them.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    readers: RefCell<Vec<Rc<Reader>>>,
    /// The readers that take RTP through their queue: TCP readers, and UDP readers until they
    /// go live (live UDP readers get the batched sends instead). Kept apart so that a packet
    /// costs nothing per live UDP reader beyond its share of the send.
    queued: RefCell<Vec<Rc<Reader>>>,
    /// Per track: the RTP addresses of the live UDP readers.
    udp_dests: RefCell<Vec<Rc<[RawAddr]>>>,
    /// Per track: the SSRC of the latest packet (for the BYE a leaving reader gets).
    ssrcs: RefCell<Vec<Option<u32>>>,
    /// Per track: the packets of the frame being collected for the live UDP readers.
    pending: RefCell<Vec<Vec<SharedPacket>>>,
    /// Per track: packets and bytes sent to each live UDP reader by the batched sends so
    /// far (a reader's share is the growth since it joined).
    udp_sent: RefCell<Vec<[u64; 2]>>,
    /// Counters of readers that left.
    retired: Cell<Totals>,
}

impl Fanout {
    /// No readers yet.
    pub(crate) fn new() -> Fanout {
        Fanout::default()
    }

    /// Hands a packet to every reader: its share of a frame for the live UDP readers of its
    /// track, a queue push for the others. A released UDP reader whose queue now starts at a
    /// keyframe goes live ([`Fanout::activate`]).
    pub(crate) fn deliver(&self, packet: &SharedPacket, out: &mut Vec<Egress>) {
        if packet.is_rtcp() {
            for r in self.readers.borrow().iter() {
                if r.live.get() && r.is_udp() {
                    if let Some(ReaderTrack::Udp { rtcp: Some(to), .. }) = r.track(packet.track()) {
                        out.push(Egress::Rtcp { packet: packet.clone(), to });
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
        self.batch_for_udp(packet, out);
        let mut ready: Option<Vec<Rc<Reader>>> = None;
        for r in self.queued.borrow().iter() {
            r.offer(packet);
            if r.released.get() && r.is_udp() && r.queue.borrow().started() {
                ready.get_or_insert_with(Vec::new).push(r.clone());
            }
        }
        for r in ready.into_iter().flatten() {
            self.activate(&r, out);
        }
    }

    /// Collects a frame's packets for the live UDP readers of its track and sends the frame
    /// when it is complete (marker bit, or the next frame's timestamp). Holding a frame never
    /// delays a packet by more than the frame itself takes to arrive.
    fn batch_for_udp(&self, packet: &SharedPacket, out: &mut Vec<Egress>) {
        let track = packet.track();
        let has_dests = self.udp_dests.borrow().get(track).is_some_and(|d| !d.is_empty());
        let mut pending = self.pending.borrow_mut();
        if pending.len() <= track {
            pending.resize_with(track + 1, Vec::new);
        }
        let frame = &mut pending[track];
        if frame.last().is_some_and(|last| last.rtptime() != packet.rtptime()) {
            self.flush_frame(track, frame, out);
        }
        if !has_dests {
            frame.clear();
            return;
        }
        frame.push(packet.clone());
        if packet.marker() || frame.len() >= manifold_udp::GSO_MAX_SEGMENTS {
            self.flush_frame(track, frame, out);
        }
    }

    fn flush_frame(&self, track: usize, frame: &mut Vec<SharedPacket>, out: &mut Vec<Egress>) {
        let dests = self.udp_dests.borrow().get(track).cloned();
        match dests {
            Some(dests) if !dests.is_empty() && !frame.is_empty() => {
                let mut sent = self.udp_sent.borrow_mut();
                if sent.len() <= track {
                    sent.resize(track + 1, [0; 2]);
                }
                sent[track][0] += frame.len() as u64;
                sent[track][1] += frame.iter().map(|p| p.len() as u64).sum::<u64>();
                let packets = std::mem::replace(frame, Vec::with_capacity(frame.len()));
                out.push(Egress::UdpFrame { packets, dests });
            }
            _ => frame.clear(),
        }
    }

    /// Moves a released UDP reader to the batched sends: what it queued (from its keyframe
    /// on) goes out one by one first, except the packets of the frame being collected, which
    /// reach it with that frame.
    pub(crate) fn activate(&self, reader: &Rc<Reader>, out: &mut Vec<Egress>) {
        let mut q = reader.queue.borrow_mut();
        while let Some(p) = q.pop() {
            if self.holds(&p) {
                continue;
            }
            match reader.track(p.track()) {
                Some(ReaderTrack::Udp { rtcp: Some(to), .. }) if p.is_rtcp() => {
                    out.push(Egress::Rtcp { packet: p, to });
                }
                Some(ReaderTrack::Udp { rtp, .. }) if !p.is_rtcp() => {
                    reader.obs.count(p.len());
                    out.push(Egress::UdpPacket { packet: p, dest: rtp });
                }
                _ => {}
            }
        }
        drop(q);
        *reader.obs.udp_base.borrow_mut() = self.udp_sent();
        reader.live.set(true);
        self.rebuild_udp();
    }

    /// Whether `packet` is held in the frame being collected for UDP readers (it will reach
    /// every live UDP reader of its track when the frame is sent).
    fn holds(&self, packet: &SharedPacket) -> bool {
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
            retired.add(&self.totals(&r));
            self.retired.set(retired);
        }
        self.readers.borrow_mut().retain(|r| r.id != id);
        self.queued.borrow_mut().retain(|r| r.id != id);
        self.rebuild_udp();
        self.readers.borrow().is_empty()
    }

    /// A reader's counters, with its share of the batched UDP sends.
    pub(crate) fn totals(&self, reader: &Reader) -> Totals {
        totals(reader, &self.udp_sent.borrow())
    }

    /// Per track: packets and bytes each live UDP reader was sent by the batched sends.
    pub(crate) fn udp_sent(&self) -> Vec<[u64; 2]> {
        self.udp_sent.borrow().clone()
    }

    /// Counters of the readers that left.
    pub(crate) fn retired(&self) -> Totals {
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
        *self.udp_dests.borrow_mut() = dests.into_iter().map(Rc::from).collect();
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
    /// The BYEs that tell `reader` its `tracks` end (with `reason`): one per track that is
    /// set up and has had a packet (whose SSRC the BYE names).
    pub(crate) fn byes(
        &self,
        reader: &Reader,
        tracks: std::ops::Range<usize>,
        reason: &str,
    ) -> Vec<Bye> {
        let mut byes = Vec::new();
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
    !(reader.live.get() && reader.is_udp())
}
