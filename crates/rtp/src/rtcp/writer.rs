//! Building RTCP packets into a buffer the caller owns.

use super::report::{BLOCK_LEN, SENDER_INFO_LEN};
use super::{
    BuildError, PacketType, ReportBlock, SdesItem, SenderInfo, HEADER_LEN, MAX_COUNT, VERSION,
};
use crate::Ssrc;

/// The largest packet the 16-bit length field can describe.
const MAX_PACKET_LEN: usize = (u16::MAX as usize + 1) * 4;

/// Writes a compound RTCP packet, one packet per call, into a buffer the caller owns.
///
/// Each method either appends a whole packet or, on error, leaves the buffer as it was. The
/// writer does not enforce compound rules (SR or RR first, an SDES CNAME, padding last): call
/// the methods in the order RFC 3550 §6.1 asks for, or build a reduced-size packet (RFC 5506).
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    /// Where the most recent packet starts, for [`Writer::pad_last`].
    last: Option<usize>,
}

impl<'b> Writer<'b> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Writer<'b> {
        Writer { buf, len: 0, last: None }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Ends the writer, returning the written part of the buffer.
    pub fn finish(self) -> &'b mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Appends an SR.
    pub fn sender_report(
        &mut self,
        ssrc: Ssrc,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<(), BuildError> {
        let count = count(blocks.len())?;
        let body = 4 + SENDER_INFO_LEN + blocks.len() * BLOCK_LEN;
        let out = self.packet(PacketType::SENDER_REPORT, count, body)?;
        out[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        info.write(&mut out[4..4 + SENDER_INFO_LEN]);
        write_blocks(&mut out[4 + SENDER_INFO_LEN..], blocks);
        Ok(())
    }

    /// Appends an RR.
    pub fn receiver_report(
        &mut self,
        ssrc: Ssrc,
        blocks: &[ReportBlock],
    ) -> Result<(), BuildError> {
        let count = count(blocks.len())?;
        let out = self.packet(PacketType::RECEIVER_REPORT, count, 4 + blocks.len() * BLOCK_LEN)?;
        out[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        write_blocks(&mut out[4..], blocks);
        Ok(())
    }

    /// Appends an SDES with one chunk per `(source, items)`.
    pub fn sdes(&mut self, chunks: &[(Ssrc, &[SdesItem<'_>])]) -> Result<(), BuildError> {
        let count = count(chunks.len())?;
        let mut body = 0;
        for (_, items) in chunks {
            for item in *items {
                if item.kind.0 == 0 {
                    return Err(BuildError::EndItem);
                }
                text_len(item.value)?;
            }
            body += chunk_len(items);
        }
        let out = self.packet(PacketType::SOURCE_DESCRIPTION, count, body)?;
        let mut pos = 0;
        for (ssrc, items) in chunks {
            let end = pos + chunk_len(items);
            out[pos..pos + 4].copy_from_slice(&ssrc.0.to_be_bytes());
            pos += 4;
            for item in *items {
                out[pos] = item.kind.0;
                out[pos + 1] = item.value.len() as u8; // checked above
                out[pos + 2..pos + 2 + item.value.len()].copy_from_slice(item.value);
                pos += 2 + item.value.len();
            }
            // END and the null octets up to the boundary.
            out[pos..end].fill(0);
            pos = end;
        }
        Ok(())
    }

    /// Appends a BYE for `sources`, with an optional reason (at most 255 bytes).
    pub fn bye(&mut self, sources: &[Ssrc], reason: Option<&[u8]>) -> Result<(), BuildError> {
        let count = count(sources.len())?;
        let reason_len = match reason {
            Some(text) => (1 + text_len(text)?).next_multiple_of(4),
            None => 0,
        };
        let out = self.packet(PacketType::BYE, count, sources.len() * 4 + reason_len)?;
        for (slot, ssrc) in out.chunks_exact_mut(4).zip(sources) {
            slot.copy_from_slice(&ssrc.0.to_be_bytes());
        }
        if let Some(text) = reason {
            let at = sources.len() * 4;
            out[at] = text.len() as u8; // checked above
            out[at + 1..at + 1 + text.len()].copy_from_slice(text);
            out[at + 1 + text.len()..].fill(0);
        }
        Ok(())
    }

    /// Appends an APP packet; `data` must be a whole number of 32-bit words.
    pub fn app(
        &mut self,
        subtype: u8,
        ssrc: Ssrc,
        name: [u8; 4],
        data: &[u8],
    ) -> Result<(), BuildError> {
        let subtype = count(usize::from(subtype))?;
        if data.len() % 4 != 0 {
            return Err(BuildError::Unaligned { len: data.len() });
        }
        let out = self.packet(PacketType::APP, subtype, 8 + data.len())?;
        out[0..4].copy_from_slice(&ssrc.0.to_be_bytes());
        out[4..8].copy_from_slice(&name);
        out[8..].copy_from_slice(data);
        Ok(())
    }

    /// Appends a packet of any type with a raw body (a whole number of 32-bit words); `count`
    /// goes into the 5-bit count field.
    pub fn raw(
        &mut self,
        packet_type: PacketType,
        count: u8,
        body: &[u8],
    ) -> Result<(), BuildError> {
        let count = self::count(usize::from(count))?;
        if body.len() % 4 != 0 {
            return Err(BuildError::Unaligned { len: body.len() });
        }
        self.packet(packet_type, count, body.len())?.copy_from_slice(body);
        Ok(())
    }

    /// Pads the packet written last by `padding` bytes (a non-zero multiple of 4), e.g. to
    /// round a compound up to a cipher's block size. RFC 3550 pads only the last packet.
    pub fn pad_last(&mut self, padding: u8) -> Result<(), BuildError> {
        let Some(start) = self.last.filter(|_| padding > 0 && padding % 4 == 0) else {
            return Err(BuildError::BadPadding(padding));
        };
        let pad = usize::from(padding);
        let len = self.len - start + pad;
        if len > MAX_PACKET_LEN {
            return Err(BuildError::TooLong { len });
        }
        let available = self.buf.len() - self.len;
        let tail = self
            .buf
            .get_mut(self.len..self.len + pad)
            .ok_or(BuildError::BufferTooSmall { needed: pad, available })?;
        tail.fill(0);
        tail[pad - 1] = padding;
        self.buf[start] |= 0x20;
        self.buf[start + 2..start + 4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
        self.len += pad;
        Ok(())
    }

    /// Reserves a packet with a `body`-byte body, writes its header, and returns the body.
    fn packet(
        &mut self,
        packet_type: PacketType,
        count: u8,
        body: usize,
    ) -> Result<&mut [u8], BuildError> {
        let len = HEADER_LEN + body;
        if len > MAX_PACKET_LEN {
            return Err(BuildError::TooLong { len });
        }
        let start = self.len;
        let available = self.buf.len() - start;
        let out = self
            .buf
            .get_mut(start..start + len)
            .ok_or(BuildError::BufferTooSmall { needed: len, available })?;
        out[0] = (VERSION << 6) | count;
        out[1] = packet_type.0;
        out[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
        self.len += len;
        self.last = Some(start);
        Ok(&mut out[HEADER_LEN..])
    }
}

/// Checks a count against the 5-bit field.
fn count(n: usize) -> Result<u8, BuildError> {
    if n > MAX_COUNT {
        return Err(BuildError::CountTooLarge { count: n });
    }
    Ok(n as u8)
}

/// Checks a text against its length byte.
fn text_len(text: &[u8]) -> Result<usize, BuildError> {
    if text.len() > 255 {
        return Err(BuildError::TextTooLong { len: text.len() });
    }
    Ok(text.len())
}

/// Length of an SDES chunk: SSRC, items, at least one END octet, padded to 32 bits.
fn chunk_len(items: &[SdesItem<'_>]) -> usize {
    let items: usize = items.iter().map(|i| 2 + i.value.len()).sum();
    (4 + items + 1).next_multiple_of(4)
}

fn write_blocks(out: &mut [u8], blocks: &[ReportBlock]) {
    for (slot, block) in out.chunks_exact_mut(BLOCK_LEN).zip(blocks) {
        block.write(slot);
    }
}
