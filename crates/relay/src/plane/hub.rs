//! The stream hub, sans-IO: one per published path, on the shard that owns its upstream. It
//! parses each packet's RTP header once, finds keyframes, keeps the GOP cache, rewrites the
//! packet onto one continuous outgoing stream when the upstream may come and go
//! (continuity), maps the upstream's sender reports onto it, and says which other shards get
//! the packet ([`Forwarding`]: cross-shard lag). It returns one shared handle per packet; the
//! shard hands it to its own fan-out and to the other shards' queues.

use std::sync::Arc;
use std::time::{Duration, Instant};

use manifold_rtp::codec::GopStart;
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rewrite::Rewriter;
use manifold_rtp::rtcp::ReportBlock;
use manifold_rtp::{RtpTime, Ssrc};

use crate::plane::forward::Forwarding;
use crate::plane::gop::GopCache;
use crate::plane::packet::{Packet, SharedPacket};
use crate::plane::upstream_loss::UpstreamLoss;
use crate::registry::StreamInfo;

/// Most packets the GOP cache holds.
const GOP_MAX_PACKETS: usize = 8192;
/// Most bytes the GOP cache holds.
const GOP_MAX_BYTES: usize = 16 << 20;

/// Counters of one upstream (a hub's, or a forwarding publisher's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HubStats {
    /// When the latest RTP packet came in.
    pub(crate) last_packet: Option<Instant>,
    /// RTP packets taken in.
    pub(crate) packets_in: u64,
    /// Their bytes.
    pub(crate) bytes_in: u64,
    /// Packets that did not parse (or named no track).
    pub(crate) malformed: u64,
    /// Packets another shard's full queue did not take.
    pub(crate) remote_drops: u64,
    /// Packets the upstream numbered that never reached the hub (sequence gaps).
    pub(crate) lost: u64,
    /// The upstream's interarrival jitter, its worst track's.
    pub(crate) jitter: Duration,
    /// Packets of a payload type the SDP did not give their track: forwarded as they are,
    /// but ffmpeg, live555 and GStreamer readers drop them.
    pub(crate) wrong_payload_type: u64,
}

impl HubStats {
    /// Counts one RTP packet of `len` bytes taken in at `now`.
    pub(crate) fn count_in(&mut self, now: Instant, len: usize) {
        self.packets_in += 1;
        self.bytes_in += len as u64;
        self.last_packet = Some(now);
    }
}

/// One stream's hub.
///
/// Drain contract: every `handle_*` returns the packet to fan out (or `None`); the caller
/// gives it to the shard's own fan-out and then asks [`Hub::forward_targets`] which other
/// shards' queues it goes to, reporting each attempt with [`Hub::forwarded`] before the next
/// packet. Nothing here reads a clock or touches a socket.
#[derive(Debug)]
pub(crate) struct Hub {
    info: Arc<StreamInfo>,
    gop: GopCache,
    gop_starts: Vec<GopStart>,
    has_keyframes: bool,
    forwarding: Forwarding,
    /// Per track: the upstream's latest sender report (as readers get it).
    last_sr: Vec<Option<SharedPacket>>,
    stats: HubStats,
    /// The upstream's sequence and jitter statistics.
    upstream_loss: UpstreamLoss,
    gop_enabled: bool,
    /// Set for streams whose upstream may come and go (pull, raw RTP, publishers with a
    /// grace): one outgoing stream per track, continuous across upstreams.
    continuity: Option<Continuity>,
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
            gop: GopCache::new(gop_cache, GOP_MAX_PACKETS, GOP_MAX_BYTES),
            gop_starts: vec![GopStart::default(); info.tracks.len()],
            has_keyframes,
            forwarding: Forwarding::new(shards),
            last_sr: Vec::new(),
            stats: HubStats::default(),
            upstream_loss: UpstreamLoss::new(info.tracks.iter().map(|t| t.clock_rate)),
            gop_enabled: gop_cache,
            continuity: None,
            info,
        }
    }

    /// Turns on continuity: every RTP packet is rewritten by a
    /// `manifold_rtp::rewrite::Rewriter` per track onto a fixed outgoing SSRC (`ssrc()` draws
    /// one per track; the runtime passes kernel randomness), so readers see one continuous
    /// stream whatever the upstream does (reconnects, new SSRC, counters reset), and sender
    /// reports are mapped onto the outgoing stream.
    pub(crate) fn with_continuity(mut self, mut ssrc: impl FnMut() -> u32) -> Hub {
        let rewriters = self
            .info
            .tracks
            .iter()
            .map(|t| Rewriter::new(Ssrc(ssrc()), t.clock_rate.max(1)))
            .collect();
        self.continuity = Some(Continuity {
            ts_offsets: vec![None; self.info.tracks.len()],
            rewriters,
            scratch: Vec::with_capacity(2048),
        });
        self
    }

    /// The upstream reconnected: the next packet of each track rebases the outgoing stream
    /// (sequence continues, timestamps advance by the wall time that passed), and the GOP
    /// cache waits for the new upstream's first keyframe.
    pub(crate) fn upstream_restarted(&mut self) {
        if let Some(c) = &mut self.continuity {
            c.rewriters.iter_mut().for_each(Rewriter::reset);
            c.ts_offsets.iter_mut().for_each(|o| *o = None);
        }
        self.gop_starts.iter_mut().for_each(|g| *g = GopStart::default());
        self.upstream_loss.upstream_restarted();
        self.gop = GopCache::new(self.gop_enabled, GOP_MAX_PACKETS, GOP_MAX_BYTES);
        self.last_sr.clear();
    }

    /// The report blocks of a receiver report to the upstream at `now`, by track (see
    /// [`UpstreamLoss::report_blocks`]).
    pub(crate) fn upstream_report_blocks(&mut self, now: Instant) -> Vec<(usize, ReportBlock)> {
        self.upstream_loss.report_blocks(now)
    }

    /// The stream.
    pub(crate) fn info(&self) -> &Arc<StreamInfo> {
        &self.info
    }

    /// The upstream's counters.
    pub(crate) fn stats(&self) -> HubStats {
        HubStats {
            lost: self.upstream_loss.lost(),
            jitter: self.upstream_loss.jitter(),
            ..self.stats
        }
    }

    /// Takes in one RTP packet of `track` from the upstream at `now`; returns the shared
    /// packet to fan out (`None`: malformed, or a late packet continuity drops).
    pub(crate) fn handle_rtp(
        &mut self,
        now: Instant,
        track: usize,
        rtp: &[u8],
    ) -> Option<SharedPacket> {
        let Some(track_info) = self.info.tracks.get(track) else {
            self.stats.malformed += 1;
            return None;
        };
        let Ok(parsed) = RtpPacket::parse(rtp) else {
            self.stats.malformed += 1;
            return None;
        };
        self.upstream_loss.handle_packet(now, track, &parsed);
        if !track_info.payload_types.contains(parsed.payload_type()) {
            self.stats.wrong_payload_type += 1;
            if self.stats.wrong_payload_type == 1 {
                tracing::warn!(path = %self.info.path, track, payload_type = parsed.payload_type(),
                    side = "upstream", "the upstream sends a payload type its SDP does not give \
                    the track: readers such as ffmpeg, live555 and GStreamer drop these packets \
                    (manifold_stream_upstream_wrong_payload_type_total)");
            }
        }
        let (sync, gop_start) = match track_info.codec {
            Some(codec) => {
                let starts = codec.starts_keyframe(parsed.payload()).unwrap_or(false);
                let timestamp: RtpTime = parsed.timestamp();
                let first =
                    self.gop_starts.get_mut(track).is_some_and(|g| g.observe(timestamp, starts));
                (first, first)
            }
            // Without a codec that has keyframes, a reader may start anywhere.
            None => (!self.has_keyframes, !self.has_keyframes),
        };
        let packet = match &mut self.continuity {
            None => Packet::new(track, rtp, sync),
            Some(c) => {
                let Continuity { rewriters, ts_offsets, scratch } = c;
                let (Some(rewriter), Some(offset)) =
                    (rewriters.get_mut(track), ts_offsets.get_mut(track))
                else {
                    return None;
                };
                let timestamp = parsed.timestamp();
                // `None`: a late packet of the new upstream that would collide with what
                // readers already got.
                let out = rewriter.rewrite(now, parsed.ssrc(), parsed.sequence(), timestamp)?;
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
            self.stats.malformed += 1;
            return None;
        };
        self.stats.count_in(now, rtp.len());
        let packet = Arc::new(packet);
        self.gop.push(&packet, gop_start);
        Some(packet)
    }

    /// Takes in an RTCP compound packet of `track` from the upstream at `now`: a sender report
    /// is passed on to readers (mapped onto the outgoing stream under continuity) and kept for
    /// new readers, and noted for the receiver reports to the upstream; anything else is
    /// dropped.
    pub(crate) fn handle_rtcp(
        &mut self,
        now: Instant,
        track: usize,
        rtcp: &[u8],
    ) -> Option<SharedPacket> {
        let Some(Ok(manifold_rtp::rtcp::Packet::SenderReport(sr))) =
            manifold_rtp::rtcp::packets(rtcp).next()
        else {
            return None;
        };
        if track >= self.info.tracks.len() {
            return None;
        }
        self.upstream_loss.handle_sender_report(now, track, sr.ssrc(), sr.sender_info().ntp);
        let packet = match &self.continuity {
            None => Packet::rtcp(track, rtcp),
            Some(c) => {
                // Onto the outgoing stream: its SSRC, and the NTP time's RTP time shifted
                // by the current upstream's offset (no offset yet: no media yet, drop it).
                let (Some(rewriter), Some(Some(offset))) =
                    (c.rewriters.get(track), c.ts_offsets.get(track))
                else {
                    return None;
                };
                let mut sr = rtcp.to_vec();
                let rtp_ts = sr.get(16..20)?;
                let rtp_ts = u32::from_be_bytes([rtp_ts[0], rtp_ts[1], rtp_ts[2], rtp_ts[3]]);
                let upstream = u32::from_be_bytes([sr[4], sr[5], sr[6], sr[7]]);
                retag_source(&mut sr, upstream, rewriter.ssrc().0);
                sr[16..20].copy_from_slice(&rtp_ts.wrapping_add(*offset).to_be_bytes());
                Packet::rtcp(track, &sr)
            }
        };
        let packet = Arc::new(packet?);
        if self.last_sr.len() <= track {
            self.last_sr.resize(track + 1, None);
        }
        self.last_sr[track] = Some(packet.clone());
        Some(packet)
    }

    /// The cached GOP, for a new reader, followed by the latest sender report of each track.
    pub(crate) fn snapshot(&self) -> Vec<SharedPacket> {
        let mut packets = self.gop.snapshot();
        if !packets.is_empty() {
            packets.extend(self.last_sr.iter().flatten().cloned());
        }
        packets
    }

    /// Shard `shard` has readers of the stream (or not any more).
    pub(crate) fn set_subscribed(&mut self, shard: usize, subscribed: bool) {
        self.forwarding.set_subscribed(shard, subscribed);
    }

    /// The shards with readers, other than the owner.
    pub(crate) fn subscribed_shards(&self) -> Vec<usize> {
        self.forwarding.subscribed()
    }

    /// Fills `targets` with the shards other than `own` that `packet` goes to; the packets
    /// a lagging shard is not offered count as drops.
    pub(crate) fn forward_targets(
        &mut self,
        own: usize,
        packet: &Packet,
        targets: &mut Vec<usize>,
    ) {
        self.stats.remote_drops += self.forwarding.targets(own, packet.is_sync_point(), targets);
    }

    /// Says whether shard `to`'s queue took the packet [`Hub::forward_targets`] named.
    pub(crate) fn forwarded(&mut self, to: usize, queued: bool) {
        self.forwarding.sent(to, queued);
        if !queued {
            self.stats.remote_drops += 1;
        }
    }
}

/// RTCP packet type of a source description (RFC 3550 §6.5).
const RTCP_SDES: u8 = 202;

/// Rewrites `from` to `to` wherever a compound RTCP packet names the source: the first
/// packet's sender SSRC and every SDES chunk about it. Readers (GStreamer's rtpbin) tie a
/// track to its CNAME by the chunk's SSRC and sync tracks of one CNAME by their sender
/// reports: a chunk left on the upstream SSRC would leave the outgoing track without one.
fn retag_source(compound: &mut [u8], from: u32, to: u32) {
    if let Some(first) = compound.get_mut(4..8) {
        first.copy_from_slice(&to.to_be_bytes());
    }
    let mut at = 0;
    while at + 4 <= compound.len() {
        let words = usize::from(u16::from_be_bytes([compound[at + 2], compound[at + 3]]));
        let end = (at + 4 + 4 * words).min(compound.len());
        if compound[at + 1] == RTCP_SDES {
            let chunks = usize::from(compound[at] & 0x1f);
            let mut c = at + 4;
            for _ in 0..chunks {
                let Some(ssrc) = compound.get_mut(c..c + 4) else { break };
                if ssrc == from.to_be_bytes() {
                    ssrc.copy_from_slice(&to.to_be_bytes());
                }
                // Items (type, length, value) up to the END item, then padding to 32 bits.
                let mut i = c + 4;
                while i < end && compound[i] != 0 {
                    i += 2 + usize::from(*compound.get(i + 1).unwrap_or(&0));
                }
                c = (i + 4) & !3;
            }
        }
        at = end.max(at + 4);
    }
}
