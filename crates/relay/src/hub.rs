//! The stream hub: one per published path, on the shard that owns its upstream. It parses
//! each packet's RTP header once, finds keyframes, keeps the GOP cache, and hands one shared
//! handle to the readers of its own shard and one to each other shard with readers (through
//! that shard pair's bounded queue, never waiting: a full queue drops and the shard resumes
//! at the next keyframe).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use manifold_rtp::codec::GopStart;
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rewrite::Rewriter;
use manifold_rtp::{RtpTime, Ssrc};

use crate::gop::GopCache;
use crate::packet::{Packet, SharedPacket};
use crate::registry::StreamInfo;
use crate::shard::{Shard, ShardMsg};

/// Most packets the GOP cache holds.
const GOP_MAX_PACKETS: usize = 8192;
/// Most bytes the GOP cache holds.
const GOP_MAX_BYTES: usize = 16 << 20;

/// What the hub knows about another shard.
#[derive(Debug, Clone, Copy, Default)]
struct Remote {
    /// The shard has readers of this stream.
    subscribed: bool,
    /// Its queue was full: send nothing until the next sync point.
    lagging: bool,
}

impl Remote {
    /// Whether a packet goes to this shard: it must have readers, and after a full queue
    /// only a sync point (keyframe start) may resume the flow.
    fn admits(&self, sync_point: bool) -> bool {
        self.subscribed && (!self.lagging || sync_point)
    }

    /// Records whether the shard's queue took the packet.
    fn sent(&mut self, queued: bool) {
        self.lagging = !queued;
    }
}

/// Counters of one hub.
#[derive(Debug, Default)]
pub(crate) struct HubStats {
    pub(crate) last_packet: Cell<Option<std::time::Instant>>,
    pub(crate) packets_in: Cell<u64>,
    pub(crate) bytes_in: Cell<u64>,
    pub(crate) malformed: Cell<u64>,
    pub(crate) remote_drops: Cell<u64>,
}

/// One stream's hub.
#[derive(Debug)]
pub(crate) struct Hub {
    info: Arc<StreamInfo>,
    gop: RefCell<GopCache>,
    gop_starts: RefCell<Vec<GopStart>>,
    has_keyframes: bool,
    remotes: RefCell<Vec<Remote>>,
    /// Per track: the upstream's latest sender report.
    last_sr: RefCell<Vec<Option<SharedPacket>>>,
    pub(crate) stats: HubStats,
    gop_enabled: bool,
    /// Set for streams whose upstream may come and go (pull, raw RTP): one outgoing stream
    /// per track, continuous across upstreams.
    continuity: Option<RefCell<Continuity>>,
}

/// The continuity state of a hub: per track, the rewriter onto the outgoing stream and the
/// offset from the current upstream's timestamps to the outgoing ones (for sender reports).
#[derive(Debug)]
struct Continuity {
    rewriters: Vec<Rewriter>,
    ts_offsets: Vec<Option<u32>>,
    /// The packet being rewritten (the hub copies it once into the shared buffer anyway).
    scratch: Vec<u8>,
}

impl Hub {
    /// A hub for `info` on a relay of `shards` shards, with or without a GOP cache.
    pub(crate) fn new(info: Arc<StreamInfo>, shards: usize, gop_cache: bool) -> Hub {
        let has_keyframes = info.tracks.iter().any(|t| t.codec.is_some());
        Hub {
            gop: RefCell::new(GopCache::new(gop_cache, GOP_MAX_PACKETS, GOP_MAX_BYTES)),
            gop_starts: RefCell::new(vec![GopStart::default(); info.tracks.len()]),
            has_keyframes,
            remotes: RefCell::new(vec![Remote::default(); shards]),
            last_sr: RefCell::new(Vec::new()),
            stats: HubStats::default(),
            gop_enabled: gop_cache,
            continuity: None,
            info,
        }
    }

    /// Turns on continuity (call before the hub is shared): every RTP packet is rewritten by
    /// a `manifold_rtp::rewrite::Rewriter` per track onto a fixed outgoing SSRC, so readers see
    /// one continuous stream whatever the upstream does (reconnects, new SSRC, counters reset),
    /// and sender reports are mapped onto the outgoing stream.
    pub(crate) fn with_continuity(mut self) -> Hub {
        let rewriters = self
            .info
            .tracks
            .iter()
            .map(|t| {
                let mut ssrc = [0u8; 4];
                crate::sys::fill_random(&mut ssrc);
                Rewriter::new(Ssrc(u32::from_be_bytes(ssrc)), t.clock_rate.max(1))
            })
            .collect();
        self.continuity = Some(RefCell::new(Continuity {
            ts_offsets: vec![None; self.info.tracks.len()],
            rewriters,
            scratch: Vec::with_capacity(2048),
        }));
        self
    }

    /// The upstream reconnected: the next packet of each track rebases the outgoing stream
    /// (sequence continues, timestamps advance by the wall time that passed), and the GOP
    /// cache waits for the new upstream's first keyframe.
    pub(crate) fn upstream_restarted(&self) {
        if let Some(c) = &self.continuity {
            let mut c = c.borrow_mut();
            c.rewriters.iter_mut().for_each(Rewriter::reset);
            c.ts_offsets.iter_mut().for_each(|o| *o = None);
        }
        self.gop_starts.borrow_mut().iter_mut().for_each(|g| *g = GopStart::default());
        *self.gop.borrow_mut() = GopCache::new(self.gop_enabled, GOP_MAX_PACKETS, GOP_MAX_BYTES);
        self.last_sr.borrow_mut().clear();
    }

    /// The stream.
    pub(crate) fn info(&self) -> &Arc<StreamInfo> {
        &self.info
    }

    /// Takes in one RTP packet of `track` from the upstream and fans it out.
    pub(crate) fn ingest(&self, shard: &Shard, track: usize, rtp: &[u8]) {
        let Some(track_info) = self.info.tracks.get(track) else {
            self.stats.malformed.set(self.stats.malformed.get() + 1);
            return;
        };
        let Ok(parsed) = RtpPacket::parse(rtp) else {
            self.stats.malformed.set(self.stats.malformed.get() + 1);
            return;
        };
        let (sync, gop_start) = match track_info.codec {
            Some(codec) => {
                let starts = codec.starts_keyframe(parsed.payload()).unwrap_or(false);
                let timestamp: RtpTime = parsed.timestamp();
                let mut starts_of = self.gop_starts.borrow_mut();
                let first = starts_of.get_mut(track).is_some_and(|g| g.observe(timestamp, starts));
                (first, first)
            }
            // Without a codec that has keyframes, a reader may start anywhere.
            None => (!self.has_keyframes, !self.has_keyframes),
        };
        let packet = match &self.continuity {
            None => Packet::new(track, rtp, sync),
            Some(c) => {
                let mut c = c.borrow_mut();
                let Continuity { rewriters, ts_offsets, scratch } = &mut *c;
                let (Some(rewriter), Some(offset)) =
                    (rewriters.get_mut(track), ts_offsets.get_mut(track))
                else {
                    return;
                };
                let now = std::time::Instant::now();
                let timestamp = parsed.timestamp();
                // `None`: a late packet of the new upstream that would collide with what
                // readers already got.
                let Some(out) = rewriter.rewrite(now, parsed.ssrc(), parsed.sequence(), timestamp)
                else {
                    return;
                };
                if let Some(change) = out.change {
                    tracing::debug!(path = %self.info.path, track, ?change, side = "upstream",
                        "outgoing stream rebased");
                }
                *offset = Some(out.timestamp.0.wrapping_sub(timestamp.0));
                scratch.clear();
                scratch.extend_from_slice(rtp);
                if scratch.len() >= 12 {
                    scratch[2..4].copy_from_slice(&out.seq.wire().to_be_bytes());
                    scratch[4..8].copy_from_slice(&out.timestamp.0.to_be_bytes());
                    scratch[8..12].copy_from_slice(&rewriter.ssrc().0.to_be_bytes());
                }
                Packet::new(track, scratch, sync)
            }
        };
        let Some(packet) = packet else {
            self.stats.malformed.set(self.stats.malformed.get() + 1);
            return;
        };
        self.stats.packets_in.set(self.stats.packets_in.get() + 1);
        self.stats.last_packet.set(Some(std::time::Instant::now()));
        self.stats.bytes_in.set(self.stats.bytes_in.get() + rtp.len() as u64);
        let packet = Arc::new(packet);
        self.gop.borrow_mut().push(&packet, gop_start);
        self.fan_out(shard, packet);
    }

    fn fan_out(&self, shard: &Shard, packet: SharedPacket) {
        // Multicast readers, wherever they are: one send to the stream's group.
        shard.mcast.send(self.info.id, &packet);
        if let Some(fanout) = shard.fanout(self.info.id) {
            fanout.deliver(shard, &packet);
        }
        let mut remotes = self.remotes.borrow_mut();
        for (to, remote) in remotes.iter_mut().enumerate() {
            if to == shard.id() || !remote.subscribed {
                continue;
            }
            if !remote.admits(packet.is_sync_point()) {
                self.stats.remote_drops.set(self.stats.remote_drops.get() + 1);
                continue;
            }
            let msg = ShardMsg::Packet { stream: self.info.id, packet: packet.clone() };
            let queued = shard.try_send(to, msg);
            remote.sent(queued);
            if !queued {
                self.stats.remote_drops.set(self.stats.remote_drops.get() + 1);
            }
        }
    }

    /// Takes in an RTCP compound packet of `track` from the upstream: a sender report is
    /// passed on to readers as is (the relay keeps SSRC, sequence and timestamps, so the
    /// upstream's NTP↔RTP mapping holds for them) and kept for new readers.
    pub(crate) fn ingest_rtcp(&self, shard: &Shard, track: usize, rtcp: &[u8]) {
        let is_sr = matches!(
            manifold_rtp::rtcp::packets(rtcp).next(),
            Some(Ok(manifold_rtp::rtcp::Packet::SenderReport(_)))
        );
        if !is_sr || track >= self.info.tracks.len() {
            return;
        }
        let packet = match &self.continuity {
            None => Packet::rtcp(track, rtcp),
            Some(c) => {
                // Onto the outgoing stream: its SSRC, and the NTP time's RTP time shifted
                // by the current upstream's offset (no offset yet: no media yet, drop it).
                let c = c.borrow();
                let (Some(rewriter), Some(Some(offset))) =
                    (c.rewriters.get(track), c.ts_offsets.get(track))
                else {
                    return;
                };
                let mut sr = rtcp.to_vec();
                let Some(rtp_ts) = sr.get(16..20) else { return };
                let rtp_ts = u32::from_be_bytes([rtp_ts[0], rtp_ts[1], rtp_ts[2], rtp_ts[3]]);
                sr[4..8].copy_from_slice(&rewriter.ssrc().0.to_be_bytes());
                sr[16..20].copy_from_slice(&rtp_ts.wrapping_add(*offset).to_be_bytes());
                Packet::rtcp(track, &sr)
            }
        };
        let Some(packet) = packet else { return };
        let packet = Arc::new(packet);
        {
            let mut srs = self.last_sr.borrow_mut();
            if srs.len() <= track {
                srs.resize(track + 1, None);
            }
            srs[track] = Some(packet.clone());
        }
        self.fan_out(shard, packet);
    }

    /// The cached GOP, for a new reader, followed by the latest sender report of each track.
    pub(crate) fn snapshot(&self) -> Vec<SharedPacket> {
        let mut packets = self.gop.borrow().snapshot();
        if !packets.is_empty() {
            packets.extend(self.last_sr.borrow().iter().flatten().cloned());
        }
        packets
    }

    /// Shard `from` has readers (or not any more). A shard already subscribed keeps its
    /// state: if it is lagging, its readers still need the next keyframe.
    pub(crate) fn set_subscribed(&self, from: usize, subscribed: bool) {
        if let Some(r) = self.remotes.borrow_mut().get_mut(from) {
            if r.subscribed != subscribed {
                *r = Remote { subscribed, lagging: false };
            }
        }
    }

    /// The shards with readers, other than the owner.
    pub(crate) fn subscribed_shards(&self) -> Vec<usize> {
        self.remotes
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.subscribed)
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_shard_queue_resumes_at_the_next_keyframe() {
        let mut r = Remote::default();
        assert!(!r.admits(true), "no readers there");
        r.subscribed = true;
        assert!(r.admits(false));
        r.sent(false);
        assert!(!r.admits(false), "after a drop, mid-GOP packets are held back");
        assert!(r.admits(true), "a keyframe start may resume");
        r.sent(true);
        assert!(r.admits(false));
    }
}
