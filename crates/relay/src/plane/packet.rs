//! One media packet as it travels through the relay: received once, shared by every shard
//! and reader through an [`Arc`], never copied per reader.
//!
//! The bytes carry 4 bytes of headroom in front of the RTP packet, pre-filled with the `$`
//! interleave header for the track's conventional channel (`2 × track`), so a TCP reader on
//! that channel writes header and packet as one slice and a UDP reader sends the packet alone.

use std::sync::Arc;

use manifold_rtp::ntp::CompactNtp;
use manifold_rtsp::codec::interleaved_header;
use manifold_rtsp::ChannelId;

/// Bytes reserved in front of the RTP packet for the interleave header.
pub(crate) const HEADROOM: usize = 4;

/// Largest RTP packet accepted (what an interleaved frame can carry).
pub(crate) const MAX_PACKET: usize = u16::MAX as usize;

/// A received RTP packet with its headroom and what ingest learnt about it.
#[derive(Debug)]
pub struct Packet {
    bytes: Box<[u8]>,
    track: usize,
    seq: u16,
    rtptime: u32,
    sync_point: bool,
    rtcp: bool,
    /// A sender report's time (the middle 32 bits of its NTP time, what a receiver report's
    /// LSR gives back), read once here rather than by every reader it goes to.
    sender_report: Option<CompactNtp>,
}

/// The shared handle every reader holds.
pub type SharedPacket = Arc<Packet>;

impl Packet {
    /// Wraps `rtp` (an RTP packet of `track`) with headroom. `sync_point` says a reader may
    /// start here (the first packet of a keyframe, or any packet of a stream without one).
    /// `None` when the packet is too short for an RTP header or too long for a frame.
    pub fn new(track: usize, rtp: &[u8], sync_point: bool) -> Option<Packet> {
        if rtp.len() < 12 || rtp.len() > MAX_PACKET {
            return None;
        }
        let len = u16::try_from(rtp.len()).ok()?;
        let mut bytes = vec![0u8; HEADROOM + rtp.len()].into_boxed_slice();
        let channel = ChannelId(u8::try_from(track.saturating_mul(2)).unwrap_or(u8::MAX - 1));
        bytes[..HEADROOM].copy_from_slice(&interleaved_header(channel, len));
        bytes[HEADROOM..].copy_from_slice(rtp);
        let seq = u16::from_be_bytes([rtp[2], rtp[3]]);
        let rtptime = u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]);
        Some(Packet { bytes, track, seq, rtptime, sync_point, rtcp: false, sender_report: None })
    }

    /// Wraps an RTCP compound packet of `track` (sender reports passed on to readers), with
    /// headroom holding the header for the track's RTCP channel (`2 × track + 1`).
    pub fn rtcp(track: usize, rtcp: &[u8]) -> Option<Packet> {
        if rtcp.len() < 8 || rtcp.len() > MAX_PACKET {
            return None;
        }
        let len = u16::try_from(rtcp.len()).ok()?;
        let mut bytes = vec![0u8; HEADROOM + rtcp.len()].into_boxed_slice();
        let channel = u8::try_from(track.saturating_mul(2).saturating_add(1)).unwrap_or(u8::MAX);
        bytes[..HEADROOM].copy_from_slice(&interleaved_header(ChannelId(channel), len));
        bytes[HEADROOM..].copy_from_slice(rtcp);
        let sender_report = match manifold_rtp::rtcp::packets(rtcp).next() {
            Some(Ok(manifold_rtp::rtcp::Packet::SenderReport(sr))) => {
                Some(sr.sender_info().ntp.compact())
            }
            _ => None,
        };
        Some(Packet {
            bytes,
            track,
            seq: 0,
            rtptime: 0,
            sync_point: false,
            rtcp: true,
            sender_report,
        })
    }

    /// For a compound that starts with a sender report, that report's time in the compact
    /// form a receiver report's LSR names it by.
    pub fn sender_report(&self) -> Option<CompactNtp> {
        self.sender_report
    }

    /// Whether this is RTCP (sent on the RTCP channel or port) rather than RTP.
    pub fn is_rtcp(&self) -> bool {
        self.rtcp
    }

    /// The packet without headroom (what a UDP reader is sent; RTCP for an RTCP packet).
    pub fn rtp(&self) -> &[u8] {
        &self.bytes[HEADROOM..]
    }

    /// The interleaved frame (`$` header and packet) for `channel`, when the headroom already
    /// holds that channel's header; `None` otherwise (write your own 4-byte header first).
    pub fn framed_for(&self, channel: u8) -> Option<&[u8]> {
        (self.bytes[1] == channel).then_some(&self.bytes[..])
    }

    /// The RTP packet's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len() - HEADROOM
    }

    /// Whether the RTP packet is empty (never: construction requires a header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The track (media section index) it belongs to.
    pub fn track(&self) -> usize {
        self.track
    }

    /// The RTP sequence number.
    pub fn seq(&self) -> u16 {
        self.seq
    }

    /// The RTP marker bit (for video: the last packet of a frame).
    pub fn marker(&self) -> bool {
        !self.rtcp && self.bytes[HEADROOM + 1] & 0x80 != 0
    }

    /// The SSRC: of the RTP packet, or of the RTCP packet's sender.
    pub fn ssrc(&self) -> u32 {
        let at = if self.rtcp { HEADROOM + 4 } else { HEADROOM + 8 };
        let b = &self.bytes[at..at + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The RTP timestamp.
    pub fn rtptime(&self) -> u32 {
        self.rtptime
    }

    /// Whether a reader may start at this packet.
    pub fn is_sync_point(&self) -> bool {
        self.sync_point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0xAA]);
        p
    }

    #[test]
    fn headroom_holds_the_interleave_header() {
        let p = Packet::new(1, &rtp(7), true).unwrap();
        assert_eq!(p.seq(), 7);
        assert_eq!(p.rtptime(), 1234);
        assert_eq!(p.rtp(), &rtp(7)[..]);
        assert_eq!(p.framed_for(2).unwrap()[..4], [b'$', 2, 0, 13]);
        assert!(p.framed_for(0).is_none());
        assert!(Packet::new(0, &[0x80; 5], false).is_none());
    }
}
