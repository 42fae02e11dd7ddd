//! RTP packets (RFC 3550 §5.1): a zero-copy view validated once at construction, a builder that
//! writes into a buffer the caller owns, and an in-place header rewriter for the relay's hot path.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers             |  CC × 4 bytes
//! |      defined by profile       |        length (words)         |  if X
//! |                        header extension                       |
//! |                            payload ...                        |
//! |                               |  padding ...  | padding count |  if P
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::ext::{self, Element, ExtError, Layout};
use crate::{RtpTime, Ssrc};

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const FIXED_HEADER_LEN: usize = 12;

/// The only RTP version there is.
pub const VERSION: u8 = 2;

/// The most CSRCs a header can carry (the CC field is 4 bits).
pub const MAX_CSRCS: usize = 15;

/// Why a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// Shorter than the 12-byte fixed header.
    #[error("{len} bytes is shorter than the 12-byte RTP header")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC count promises more identifiers than the datagram holds.
    #[error("{count} CSRCs need {needed} header bytes, datagram has {len}")]
    CsrcOverrun {
        /// The CC field.
        count: u8,
        /// Bytes the header needs up to the end of the CSRC list.
        needed: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The X bit is set but the 4-byte extension header is cut off.
    #[error("extension header needs {needed} bytes, datagram has {len}")]
    ExtensionHeaderTruncated {
        /// Bytes the header needs up to the end of the extension header.
        needed: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The extension's length field runs past the end of the datagram.
    #[error("header extension of {words} words needs {needed} bytes, datagram has {len}")]
    ExtensionOverrun {
        /// The extension length field, in 32-bit words.
        words: u16,
        /// Bytes the header needs up to the end of the extension.
        needed: usize,
        /// The datagram's length.
        len: usize,
    },
    /// The P bit is set but the padding count (the last byte) is zero.
    #[error("padding bit set with a padding count of zero")]
    ZeroPadding,
    /// The padding count is larger than what follows the header.
    #[error("padding of {padding} bytes exceeds the {available} bytes after the header")]
    PaddingOverrun {
        /// The padding count (last byte of the datagram).
        padding: u8,
        /// Bytes after the header (payload plus padding).
        available: usize,
    },
}

/// Why [`RtpBuilder`] could not write a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The output buffer is too small for the packet.
    #[error("packet needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// The packet's length.
        needed: usize,
        /// The buffer's length.
        available: usize,
    },
    /// Payload types are 7 bits.
    #[error("payload type {0} is above 127")]
    PayloadTypeOutOfRange(u8),
    /// More than 15 CSRCs.
    #[error("{0} CSRCs, at most 15 fit")]
    TooManyCsrcs(usize),
    /// Raw extension data must be a whole number of 32-bit words.
    #[error("extension data of {0} bytes is not a multiple of 4")]
    ExtensionNotWordAligned(usize),
    /// Extension data longer than the 16-bit word count can describe.
    #[error("extension data of {0} bytes exceeds 65535 words")]
    ExtensionTooLong(usize),
    /// The RFC 8285 elements could not be encoded.
    #[error("header extension elements: {0}")]
    Elements(#[from] ExtError),
}

/// A header extension as carried in the packet: the 16-bit profile field and the data that
/// follows the length field (a whole number of 32-bit words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The "defined by profile" field, e.g. `0xBEDE` for RFC 8285 one-byte elements.
    pub profile: u16,
    /// The extension data, without the 4-byte extension header.
    pub data: &'a [u8],
}

impl<'a> Extension<'a> {
    /// Iterates the RFC 8285 elements in this extension; fails if the profile is neither the
    /// one-byte nor the two-byte form.
    pub fn elements(&self) -> Result<ext::Elements<'a>, ExtError> {
        ext::Elements::new(self.profile, self.data)
    }

    /// The data of the first RFC 8285 element with local `id`, if present. A malformed
    /// element before it is an error.
    pub fn element(&self, id: u8) -> Result<Option<&'a [u8]>, ExtError> {
        for element in self.elements()? {
            let element = element?;
            if element.id == id {
                return Ok(Some(element.data));
            }
        }
        Ok(None)
    }
}

/// A validated RTP packet borrowed from a datagram.
///
/// [`RtpPacket::parse`] checks every length once; the accessors then index without further
/// checks and never allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Where the payload starts (after CSRCs and extension).
    payload_start: usize,
    /// Where the padding starts (end of the payload).
    payload_end: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as one RTP packet (the whole datagram).
    pub fn parse(buf: &'a [u8]) -> Result<Self, PacketError> {
        let len = buf.len();
        if len < FIXED_HEADER_LEN {
            return Err(PacketError::TooShort { len });
        }
        let version = buf[0] >> 6;
        if version != VERSION {
            return Err(PacketError::BadVersion(version));
        }
        let count = buf[0] & 0x0f;
        let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(count);
        if header_len > len {
            return Err(PacketError::CsrcOverrun { count, needed: header_len, len });
        }
        if buf[0] & 0x10 != 0 {
            if header_len + 4 > len {
                return Err(PacketError::ExtensionHeaderTruncated { needed: header_len + 4, len });
            }
            let words = be16(buf, header_len + 2);
            let needed = header_len + 4 + 4 * usize::from(words);
            if needed > len {
                return Err(PacketError::ExtensionOverrun { words, needed, len });
            }
            header_len = needed;
        }
        let mut payload_end = len;
        if buf[0] & 0x20 != 0 {
            let padding = buf[len - 1];
            let available = len - header_len;
            if padding == 0 {
                return Err(PacketError::ZeroPadding);
            }
            if usize::from(padding) > available {
                return Err(PacketError::PaddingOverrun { padding, available });
            }
            payload_end = len - usize::from(padding);
        }
        Ok(RtpPacket { buf, payload_start: header_len, payload_end })
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The M bit; for video, the last packet of a frame.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }

    /// The 16-bit sequence number as on the wire (extend it with [`crate::SeqNo::extend`]).
    pub fn sequence(&self) -> u16 {
        be16(self.buf, 2)
    }

    /// The media timestamp.
    pub fn timestamp(&self) -> RtpTime {
        RtpTime(be32(self.buf, 4))
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(self.buf, 8))
    }

    /// The contributing sources, in header order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = Ssrc> + 'a {
        let count = usize::from(self.buf[0] & 0x0f);
        self.buf[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * count]
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The header extension, if the X bit is set.
    pub fn extension(&self) -> Option<Extension<'a>> {
        if self.buf[0] & 0x10 == 0 {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.buf[0] & 0x0f);
        Some(Extension { profile: be16(self.buf, at), data: &self.buf[at + 4..self.payload_start] })
    }

    /// Length of the header: fixed part, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The payload, without header or padding. May be empty.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }

    /// Number of padding bytes at the end, including the count byte; 0 if the P bit is clear.
    pub fn padding(&self) -> u8 {
        // Validation guarantees this fits: it is the last byte's value or zero.
        (self.buf.len() - self.payload_end) as u8
    }
}

/// Writes an RTP packet into a caller-owned buffer.
///
/// ```
/// use manifold_rtp::packet::{RtpBuilder, RtpPacket};
/// use manifold_rtp::{RtpTime, Ssrc};
///
/// let mut buf = [0u8; 1500];
/// let len = RtpBuilder::new(96, 7, RtpTime(90_000), Ssrc(0xdead_beef))
///     .marker(true)
///     .payload(b"\x65frame")
///     .write(&mut buf)?;
/// let packet = RtpPacket::parse(&buf[..len])?;
/// assert_eq!(packet.payload(), b"\x65frame");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpBuilder<'a> {
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: RtpTime,
    ssrc: Ssrc,
    csrcs: &'a [Ssrc],
    extension: ExtensionSource<'a>,
    payload: &'a [u8],
    padding: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtensionSource<'a> {
    None,
    Raw(Extension<'a>),
    Elements(&'a [Element<'a>]),
}

impl<'a> RtpBuilder<'a> {
    /// A packet with no marker, CSRCs, extension, payload or padding.
    pub fn new(payload_type: u8, sequence: u16, timestamp: RtpTime, ssrc: Ssrc) -> Self {
        RtpBuilder {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: &[],
            extension: ExtensionSource::None,
            payload: &[],
            padding: 0,
        }
    }

    /// Sets the M bit.
    pub fn marker(mut self, marker: bool) -> Self {
        self.marker = marker;
        self
    }

    /// Sets the contributing sources (at most 15).
    pub fn csrcs(mut self, csrcs: &'a [Ssrc]) -> Self {
        self.csrcs = csrcs;
        self
    }

    /// Sets a raw header extension; `data` must be a whole number of 32-bit words.
    pub fn extension(mut self, profile: u16, data: &'a [u8]) -> Self {
        self.extension = ExtensionSource::Raw(Extension { profile, data });
        self
    }

    /// Sets RFC 8285 header extension elements, encoded straight into the output (one-byte form
    /// when every element allows it, else two-byte; see [`ext::encoded_len`]). An empty slice
    /// clears the extension.
    pub fn extension_elements(mut self, elements: &'a [Element<'a>]) -> Self {
        self.extension = if elements.is_empty() {
            ExtensionSource::None
        } else {
            ExtensionSource::Elements(elements)
        };
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Appends `padding` bytes (including the count byte) and sets the P bit; 0 means none.
    pub fn padding(mut self, padding: u8) -> Self {
        self.padding = padding;
        self
    }

    /// Length of the extension data (after the 4-byte extension header), and its profile.
    fn extension_layout(&self) -> Result<Option<Layout>, BuildError> {
        let layout = match self.extension {
            ExtensionSource::None => return Ok(None),
            ExtensionSource::Raw(e) => {
                if e.data.len() % 4 != 0 {
                    return Err(BuildError::ExtensionNotWordAligned(e.data.len()));
                }
                Layout { profile: e.profile, len: e.data.len() }
            }
            ExtensionSource::Elements(elements) => ext::encoded_len(elements)?,
        };
        if layout.len / 4 > usize::from(u16::MAX) {
            return Err(BuildError::ExtensionTooLong(layout.len));
        }
        Ok(Some(layout))
    }

    /// The packet's length in bytes, or why it cannot be built.
    pub fn packet_len(&self) -> Result<usize, BuildError> {
        if self.payload_type > 0x7f {
            return Err(BuildError::PayloadTypeOutOfRange(self.payload_type));
        }
        if self.csrcs.len() > MAX_CSRCS {
            return Err(BuildError::TooManyCsrcs(self.csrcs.len()));
        }
        let ext_len = self.extension_layout()?.map_or(0, |layout| 4 + layout.len);
        Ok(FIXED_HEADER_LEN
            + 4 * self.csrcs.len()
            + ext_len
            + self.payload.len()
            + usize::from(self.padding))
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BuildError> {
        let needed = self.packet_len()?;
        let Some(out) = out.get_mut(..needed) else {
            return Err(BuildError::BufferTooSmall { needed, available: out.len() });
        };
        let extension = self.extension_layout()?;
        out[0] = VERSION << 6
            | u8::from(self.padding > 0) << 5
            | u8::from(extension.is_some()) << 4
            | self.csrcs.len() as u8; // checked ≤ 15 by packet_len()
        out[1] = u8::from(self.marker) << 7 | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let mut at = FIXED_HEADER_LEN;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.0.to_be_bytes());
            at += 4;
        }
        if let Some(Layout { profile, len }) = extension {
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&((len / 4) as u16).to_be_bytes());
            at += 4;
            match self.extension {
                ExtensionSource::Raw(e) => out[at..at + len].copy_from_slice(e.data),
                ExtensionSource::Elements(elements) => {
                    ext::write_elements(elements, &mut out[at..at + len])?;
                }
                ExtensionSource::None => {}
            }
            at += len;
        }
        out[at..at + self.payload.len()].copy_from_slice(self.payload);
        at += self.payload.len();
        if self.padding > 0 {
            let end = at + usize::from(self.padding);
            out[at..end - 1].fill(0);
            out[end - 1] = self.padding;
        }
        Ok(needed)
    }

    /// Appends the packet to `out`; returns its length. On error `out` is unchanged.
    pub fn write_to_vec(&self, out: &mut Vec<u8>) -> Result<usize, BuildError> {
        let start = out.len();
        let needed = self.packet_len()?;
        out.resize(start + needed, 0);
        match self.write(&mut out[start..]) {
            Ok(n) => Ok(n),
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

/// In-place access to the fixed header of a packet already validated with [`RtpPacket::parse`],
/// for rewriting sequence, timestamp and SSRC on the hot path without parsing again.
///
/// It only needs the 12 fixed-header bytes, so it works on the start of a packet buffer
/// (e.g. after the 4-byte interleave headroom).
#[derive(Debug)]
pub struct FixedHeaderMut<'a>(&'a mut [u8; FIXED_HEADER_LEN]);

impl<'a> FixedHeaderMut<'a> {
    /// The fixed header at the start of `buf`, or `None` if `buf` is shorter than 12 bytes.
    pub fn new(buf: &'a mut [u8]) -> Option<Self> {
        buf.first_chunk_mut::<FIXED_HEADER_LEN>().map(FixedHeaderMut)
    }

    /// The 16-bit sequence number.
    pub fn sequence(&self) -> u16 {
        be16(&self.0[..], 2)
    }

    /// The media timestamp.
    pub fn timestamp(&self) -> RtpTime {
        RtpTime(be32(&self.0[..], 4))
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(be32(&self.0[..], 8))
    }

    /// Overwrites the sequence number.
    pub fn set_sequence(&mut self, sequence: u16) {
        self.0[2..4].copy_from_slice(&sequence.to_be_bytes());
    }

    /// Overwrites the timestamp.
    pub fn set_timestamp(&mut self, timestamp: RtpTime) {
        self.0[4..8].copy_from_slice(&timestamp.0.to_be_bytes());
    }

    /// Overwrites the SSRC.
    pub fn set_ssrc(&mut self, ssrc: Ssrc) {
        self.0[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    }

    /// Overwrites the M bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.0[1] = (self.0[1] & 0x7f) | u8::from(marker) << 7;
    }

    /// Overwrites the payload type (the low 7 bits of `payload_type`).
    pub fn set_payload_type(&mut self, payload_type: u8) {
        self.0[1] = (self.0[1] & 0x80) | (payload_type & 0x7f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(first: u8) -> Vec<u8> {
        let mut b = vec![first, 96, 0x12, 0x34, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd];
        b.truncate(FIXED_HEADER_LEN);
        b
    }

    #[test]
    fn parses_minimal_packet() {
        let mut b = header(0x80);
        b[1] = 0x80 | 96;
        b.extend_from_slice(b"abc");
        let p = RtpPacket::parse(&b).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence(), 0x1234);
        assert_eq!(p.timestamp(), RtpTime(1));
        assert_eq!(p.ssrc(), Ssrc(0xaabb_ccdd));
        assert_eq!(p.csrcs().len(), 0);
        assert_eq!(p.extension(), None);
        assert_eq!(p.payload(), b"abc");
        assert_eq!(p.padding(), 0);
        assert_eq!(p.header_len(), 12);
    }

    #[test]
    fn empty_payload_is_valid() {
        // ffmpeg's NAT punch packet is a bare 12-byte header.
        let b = header(0x80);
        assert_eq!(RtpPacket::parse(&b).unwrap().payload(), b"");
    }

    #[test]
    fn too_short() {
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(PacketError::TooShort { len: 11 }));
        assert_eq!(RtpPacket::parse(&[]), Err(PacketError::TooShort { len: 0 }));
    }

    #[test]
    fn bad_version() {
        assert_eq!(RtpPacket::parse(&header(0x40)), Err(PacketError::BadVersion(1)));
        assert_eq!(RtpPacket::parse(&header(0xc0)), Err(PacketError::BadVersion(3)));
    }

    #[test]
    fn csrc_overrun() {
        let mut b = header(0x82);
        b.extend_from_slice(&[0; 4]);
        assert_eq!(
            RtpPacket::parse(&b),
            Err(PacketError::CsrcOverrun { count: 2, needed: 20, len: 16 })
        );
        b.extend_from_slice(&[0, 0, 0, 9]);
        assert_eq!(RtpPacket::parse(&b).unwrap().csrcs().collect::<Vec<_>>(), [Ssrc(0), Ssrc(9)]);
    }

    #[test]
    fn extension_header_truncated() {
        let mut b = header(0x90);
        b.extend_from_slice(&[0xbe, 0xde, 0]);
        assert_eq!(
            RtpPacket::parse(&b),
            Err(PacketError::ExtensionHeaderTruncated { needed: 16, len: 15 })
        );
    }

    #[test]
    fn extension_overrun() {
        let mut b = header(0x90);
        b.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4]);
        assert_eq!(
            RtpPacket::parse(&b),
            Err(PacketError::ExtensionOverrun { words: 2, needed: 24, len: 20 })
        );
        b.extend_from_slice(&[5, 6, 7, 8]);
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(
            p.extension(),
            Some(Extension { profile: 0xbede, data: &[1, 2, 3, 4, 5, 6, 7, 8] })
        );
        assert_eq!(p.payload(), b"");
    }

    #[test]
    fn zero_padding() {
        let mut b = header(0xa0);
        b.extend_from_slice(&[1, 2, 0]);
        assert_eq!(RtpPacket::parse(&b), Err(PacketError::ZeroPadding));
    }

    #[test]
    fn padding_overrun() {
        let mut b = header(0xa0);
        b.extend_from_slice(&[1, 2, 4]);
        assert_eq!(
            RtpPacket::parse(&b),
            Err(PacketError::PaddingOverrun { padding: 4, available: 3 })
        );
        // A padded packet with nothing after the header: the count byte is header.
        let b = header(0xa0);
        assert!(matches!(RtpPacket::parse(&b), Err(PacketError::PaddingOverrun { .. })));
    }

    #[test]
    fn padding_may_consume_whole_body() {
        let mut b = header(0xa0);
        b.extend_from_slice(&[0, 0, 3]);
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.payload(), b"");
        assert_eq!(p.padding(), 3);
    }

    #[test]
    fn padding_cannot_reach_into_extension() {
        let mut b = header(0xb0);
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 4]);
        assert_eq!(
            RtpPacket::parse(&b),
            Err(PacketError::PaddingOverrun { padding: 4, available: 1 })
        );
        *b.last_mut().unwrap() = 1;
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!((p.payload(), p.padding()), (&[][..], 1));
        assert_eq!(p.extension().unwrap().data, [0x10, 0xff, 0, 0]);
    }

    #[test]
    fn builder_errors() {
        let b = RtpBuilder::new(128, 0, RtpTime(0), Ssrc(0));
        assert_eq!(b.packet_len(), Err(BuildError::PayloadTypeOutOfRange(128)));
        let csrcs = [Ssrc(1); 16];
        let b = RtpBuilder::new(0, 0, RtpTime(0), Ssrc(0)).csrcs(&csrcs);
        assert_eq!(b.packet_len(), Err(BuildError::TooManyCsrcs(16)));
        let b = RtpBuilder::new(0, 0, RtpTime(0), Ssrc(0)).extension(1, &[1, 2, 3]);
        assert_eq!(b.packet_len(), Err(BuildError::ExtensionNotWordAligned(3)));
        let big = vec![0; 4 * 65536];
        let b = RtpBuilder::new(0, 0, RtpTime(0), Ssrc(0)).extension(1, &big);
        assert_eq!(b.packet_len(), Err(BuildError::ExtensionTooLong(4 * 65536)));
        let elements = [Element { id: 0, data: b"x" }];
        let b = RtpBuilder::new(0, 0, RtpTime(0), Ssrc(0)).extension_elements(&elements);
        assert!(matches!(b.packet_len(), Err(BuildError::Elements(_))));
        let b = RtpBuilder::new(0, 0, RtpTime(0), Ssrc(0)).payload(b"hello");
        let mut small = [0u8; 16];
        assert_eq!(
            b.write(&mut small),
            Err(BuildError::BufferTooSmall { needed: 17, available: 16 })
        );
        let mut v = vec![1, 2];
        let bad = RtpBuilder::new(200, 0, RtpTime(0), Ssrc(0));
        assert!(bad.write_to_vec(&mut v).is_err());
        assert_eq!(v, [1, 2]);
        assert_eq!(b.write_to_vec(&mut v), Ok(17));
        assert_eq!(v.len(), 19);
        assert_eq!(RtpPacket::parse(&v[2..]).unwrap().payload(), b"hello");
    }

    #[test]
    fn builder_with_elements() {
        let elements = [Element { id: 3, data: &[1, 2, 3] }, Element { id: 5, data: &[9] }];
        let mut buf = [0u8; 64];
        let n = RtpBuilder::new(96, 1, RtpTime(2), Ssrc(3))
            .extension_elements(&elements)
            .payload(b"p")
            .write(&mut buf)
            .unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0xbede);
        let got: Vec<_> = ext.elements().unwrap().map(Result::unwrap).collect();
        assert_eq!(got, elements);
        assert_eq!(ext.element(5), Ok(Some(&[9][..])));
        assert_eq!(ext.element(4), Ok(None));
        let bad = Extension { profile: 0xbede, data: &[0x10, 7, 0x53, 1] };
        assert!(bad.element(5).is_err());
        assert_eq!(bad.element(1), Ok(Some(&[7][..])));
        assert_eq!(p.payload(), b"p");
    }

    #[test]
    fn builder_with_raw_extension_and_csrcs() {
        let csrcs = [Ssrc(1), Ssrc(0xffff_ffff)];
        let mut buf = [0u8; 64];
        let n = RtpBuilder::new(0, 65535, RtpTime(u32::MAX), Ssrc(0))
            .csrcs(&csrcs)
            .extension(0xabac, &[1, 2, 3, 4, 5, 6, 7, 8])
            .payload(b"pay")
            .padding(1)
            .write(&mut buf)
            .unwrap();
        assert_eq!(n, 12 + 8 + 4 + 8 + 3 + 1);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        let ext = p.extension().unwrap();
        assert_eq!((ext.profile, ext.data), (0xabac, &[1, 2, 3, 4, 5, 6, 7, 8][..]));
        assert_eq!(ext.elements().unwrap_err(), ExtError::UnknownProfile(0xabac));
        assert_eq!((p.payload(), p.padding()), (&b"pay"[..], 1));
    }

    #[test]
    fn fixed_header_mut_rewrites_in_place() {
        let mut buf = [0u8; 64];
        let n = RtpBuilder::new(96, 1, RtpTime(2), Ssrc(3))
            .marker(true)
            .payload(b"xyz")
            .padding(4)
            .write(&mut buf)
            .unwrap();
        let mut h = FixedHeaderMut::new(&mut buf[..n]).unwrap();
        assert_eq!((h.sequence(), h.timestamp(), h.ssrc()), (1, RtpTime(2), Ssrc(3)));
        h.set_sequence(0xfffe);
        h.set_timestamp(RtpTime(0xffff_0000));
        h.set_ssrc(Ssrc(0x0102_0304));
        h.set_payload_type(0xff);
        h.set_marker(false);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.sequence(), 0xfffe);
        assert_eq!(p.timestamp(), RtpTime(0xffff_0000));
        assert_eq!(p.ssrc(), Ssrc(0x0102_0304));
        assert_eq!(p.payload_type(), 0x7f);
        assert!(!p.marker());
        assert_eq!(p.payload(), b"xyz");
        assert_eq!(p.padding(), 4);
        assert!(FixedHeaderMut::new(&mut buf[..11]).is_none());
    }

    /// Everything a packet carries, owned, for round-trip comparison.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Fields {
        marker: bool,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        csrcs: Vec<Ssrc>,
        elements: Vec<(u8, Vec<u8>)>,
        payload: Vec<u8>,
        padding: u8,
    }

    fn fields() -> impl Strategy<Value = Fields> {
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u32>().prop_map(Ssrc), 0..=15),
            crate::ext::tests::elements_strategy(),
            prop::collection::vec(any::<u8>(), 0..300),
            any::<u8>(),
        )
            .prop_map(|(marker, pt, seq, ts, ssrc, csrcs, elements, payload, padding)| {
                Fields {
                    marker,
                    payload_type: pt,
                    sequence: seq,
                    timestamp: ts,
                    ssrc,
                    csrcs,
                    elements,
                    payload,
                    padding,
                }
            })
    }

    fn build(f: &Fields) -> Vec<u8> {
        let elements: Vec<Element<'_>> =
            f.elements.iter().map(|(id, data)| Element { id: *id, data }).collect();
        let mut out = Vec::new();
        RtpBuilder::new(f.payload_type, f.sequence, RtpTime(f.timestamp), Ssrc(f.ssrc))
            .marker(f.marker)
            .csrcs(&f.csrcs)
            .extension_elements(&elements)
            .payload(&f.payload)
            .padding(f.padding)
            .write_to_vec(&mut out)
            .unwrap();
        out
    }

    fn fields_of(p: &RtpPacket<'_>) -> Fields {
        Fields {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp().0,
            ssrc: p.ssrc().0,
            csrcs: p.csrcs().collect(),
            elements: p.extension().map_or_else(Vec::new, |e| {
                e.elements().unwrap().map(|e| e.map(|e| (e.id, e.data.to_vec())).unwrap()).collect()
            }),
            payload: p.payload().to_vec(),
            padding: p.padding(),
        }
    }

    proptest! {
        #[test]
        fn round_trip(f in fields()) {
            let bytes = build(&f);
            let p = RtpPacket::parse(&bytes).unwrap();
            prop_assert_eq!(fields_of(&p), f);
        }

        #[test]
        fn prefixes_never_panic(f in fields()) {
            let bytes = build(&f);
            for end in 0..bytes.len() {
                if let Ok(p) = RtpPacket::parse(&bytes[..end]) {
                    // Whatever parses must be internally consistent.
                    prop_assert!(p.header_len() + p.payload().len() + usize::from(p.padding()) == end);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = RtpPacket::parse(&bytes) {
                let _ = (p.csrcs().count(), p.extension(), p.payload(), p.padding());
            }
        }
    }
}
