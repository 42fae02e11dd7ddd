//! Sender and receiver reports (RFC 3550 §6.4) and their report blocks.

use super::{be32, PacketType, ParseError};
use crate::ntp::{CompactNtp, NtpTime};
use crate::{RtpTime, SeqNo, Ssrc};

/// Length of one report block on the wire.
pub(super) const BLOCK_LEN: usize = 24;
/// Length of the sender info section of an SR.
pub(super) const SENDER_INFO_LEN: usize = 20;

/// One reception report block: what a receiver observed of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: Ssrc,
    /// Fraction of packets lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost; a 24-bit signed field on the wire (writers clamp to it).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received; the low 32 bits go on the wire.
    pub highest_seq: SeqNo,
    /// Interarrival jitter in media clock ticks.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR from the source (0: none yet).
    pub last_sr: CompactNtp,
    /// Time since that SR arrived, in 1/65536 s (0: none yet).
    pub delay_since_last_sr: CompactNtp,
}

impl ReportBlock {
    /// Decodes a block from exactly [`BLOCK_LEN`] bytes.
    fn read(b: &[u8]) -> ReportBlock {
        // Sign-extend the 24-bit field by shifting it to the top and back.
        let lost = (be32(b, 4) << 8) as i32 >> 8;
        ReportBlock {
            ssrc: Ssrc(be32(b, 0)),
            fraction_lost: b[4],
            cumulative_lost: lost,
            highest_seq: SeqNo(u64::from(be32(b, 8))),
            jitter: be32(b, 12),
            last_sr: CompactNtp(be32(b, 16)),
            delay_since_last_sr: CompactNtp(be32(b, 20)),
        }
    }

    /// Encodes the block into exactly [`BLOCK_LEN`] bytes.
    pub(super) fn write(&self, out: &mut [u8]) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out[0..4].copy_from_slice(&self.ssrc.0.to_be_bytes());
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&(self.highest_seq.0 as u32).to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.0.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.0.to_be_bytes());
    }
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        self.chunks.next().map(ReportBlock::read)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// The sender info section of an SR: what the sender sent, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderInfo {
    /// Wall-clock time of the report.
    pub ntp: NtpTime,
    /// The same instant in the stream's media clock.
    pub rtp: RtpTime,
    /// RTP packets sent since the start of transmission.
    pub packet_count: u32,
    /// RTP payload octets sent since the start of transmission.
    pub octet_count: u32,
}

impl SenderInfo {
    fn read(b: &[u8]) -> SenderInfo {
        SenderInfo {
            ntp: NtpTime::new(be32(b, 0), be32(b, 4)),
            rtp: RtpTime(be32(b, 8)),
            packet_count: be32(b, 12),
            octet_count: be32(b, 16),
        }
    }

    /// Encodes into exactly [`SENDER_INFO_LEN`] bytes.
    pub(super) fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.ntp.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.rtp.0.to_be_bytes());
        out[12..16].copy_from_slice(&self.packet_count.to_be_bytes());
        out[16..20].copy_from_slice(&self.octet_count.to_be_bytes());
    }
}

/// Splits `body` into the fixed part of `fixed` bytes, `count` report blocks, and the
/// profile-specific extension after them.
fn split_blocks(
    packet_type: PacketType,
    count: u8,
    fixed: usize,
    body: &[u8],
) -> Result<(&[u8], &[u8]), ParseError> {
    let needed = fixed + usize::from(count) * BLOCK_LEN;
    if body.len() < needed {
        return Err(ParseError::BodyTooShort { packet_type, needed, available: body.len() });
    }
    Ok((&body[fixed..needed], &body[needed..]))
}

/// An SR: the sender's SSRC and sender info, then report blocks about the sources it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenderReport<'a> {
    ssrc: Ssrc,
    info: SenderInfo,
    blocks: &'a [u8],
    extension: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, ParseError> {
        let (blocks, extension) =
            split_blocks(PacketType::SENDER_REPORT, count, 4 + SENDER_INFO_LEN, body)?;
        Ok(SenderReport {
            ssrc: Ssrc(be32(body, 0)),
            info: SenderInfo::read(&body[4..]),
            blocks,
            extension,
        })
    }

    /// The sender.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// What the sender sent, and when.
    pub fn sender_info(&self) -> SenderInfo {
        self.info
    }

    /// The reception report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { chunks: self.blocks.chunks_exact(BLOCK_LEN) }
    }

    /// Profile-specific extension bytes after the report blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        self.extension
    }
}

/// An RR: the reporter's SSRC, then report blocks about the sources it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiverReport<'a> {
    ssrc: Ssrc,
    blocks: &'a [u8],
    extension: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, ParseError> {
        let (blocks, extension) = split_blocks(PacketType::RECEIVER_REPORT, count, 4, body)?;
        Ok(ReceiverReport { ssrc: Ssrc(be32(body, 0)), blocks, extension })
    }

    /// The reporter.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The reception report blocks.
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks { chunks: self.blocks.chunks_exact(BLOCK_LEN) }
    }

    /// Profile-specific extension bytes after the report blocks (usually empty).
    pub fn extension(&self) -> &'a [u8] {
        self.extension
    }
}

impl crate::ntp::SrMapping {
    /// The mapping a sender report's sender info establishes, for a `clock_rate` media clock.
    pub fn from_sender_info(info: &SenderInfo, clock_rate: u32) -> crate::ntp::SrMapping {
        crate::ntp::SrMapping { ntp: info.ntp, rtp: info.rtp, clock_rate }
    }
}
