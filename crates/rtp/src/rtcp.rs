//! RTCP (RFC 3550 §6): zero-copy views of the packets in a compound datagram, a writer that
//! builds compounds into a buffer the caller owns, and the RFC 3550 A.2 validity check.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|  count  |      PT       |  length (32-bit words - 1)    |  every packet
//! |                         body ...                              |
//! |                               |  padding ...  | padding count |  if P
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! [`packets`] parses leniently: any sequence of well-formed packets, including a single
//! reduced-size packet of any type (RFC 5506). [`validate_compound`] adds the strict checks a
//! receiver applies to a regular compound (RFC 3550 A.2). Packet types this module does not
//! know (feedback, XR, ...) come through as [`Unknown`] with their raw body.

mod bye;
mod report;
mod sdes;
mod writer;

pub use bye::{App, Bye};
pub use report::{ReceiverReport, ReportBlock, ReportBlocks, SenderInfo, SenderReport};
pub use sdes::{Sdes, SdesChunk, SdesChunks, SdesItem, SdesItems, SdesKind};
pub use writer::Writer;

/// The RTCP version (same as RTP's).
pub const VERSION: u8 = 2;

/// Length of the common header every RTCP packet starts with.
pub const HEADER_LEN: usize = 4;

/// The largest value of the 5-bit count field (report blocks, SDES chunks, BYE sources).
pub const MAX_COUNT: usize = 31;

/// An RTCP packet type (the PT field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketType(pub u8);

impl PacketType {
    /// SR, sender report.
    pub const SENDER_REPORT: PacketType = PacketType(200);
    /// RR, receiver report.
    pub const RECEIVER_REPORT: PacketType = PacketType(201);
    /// SDES, source description.
    pub const SOURCE_DESCRIPTION: PacketType = PacketType(202);
    /// BYE, goodbye.
    pub const BYE: PacketType = PacketType(203);
    /// APP, application-defined.
    pub const APP: PacketType = PacketType(204);
}

/// Why bytes are not well-formed RTCP, or not a valid compound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes left than the 4-byte common header.
    #[error("{available} bytes left, too short for an RTCP header")]
    TooShort {
        /// Bytes that were left.
        available: usize,
    },
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The length field runs past the end of the datagram.
    #[error("RTCP packet declares {declared} bytes, only {available} left")]
    LengthOverrun {
        /// Bytes the length field declares (header included).
        declared: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The padding count is zero or larger than the packet's body.
    #[error("RTCP padding count {count} in a {len}-byte packet")]
    BadPadding {
        /// The last byte of the packet.
        count: u8,
        /// The packet's length, header included.
        len: usize,
    },
    /// The body is shorter than its type and count require.
    #[error("RTCP packet type {} needs {needed} body bytes, has {available}", .packet_type.0)]
    BodyTooShort {
        /// The packet's type.
        packet_type: PacketType,
        /// Body bytes the type and count require.
        needed: usize,
        /// Body bytes present (padding excluded).
        available: usize,
    },
    /// An SDES chunk or item runs past the end of the packet, or lacks its END item.
    #[error("SDES chunk {chunk} runs past the end of the packet")]
    SdesOverrun {
        /// Index of the chunk (0-based).
        chunk: usize,
    },
    /// The BYE reason's length byte runs past the end of the packet.
    #[error("BYE reason of {len} bytes, only {available} left")]
    ByeReasonOverrun {
        /// The reason's length byte.
        len: u8,
        /// Bytes left after the length byte.
        available: usize,
    },
    /// (A.2) The datagram holds no packet at all.
    #[error("empty RTCP compound")]
    Empty,
    /// (A.2) A compound must start with an SR or RR.
    #[error("RTCP compound starts with packet type {}, not SR or RR", .0.0)]
    FirstNotReport(PacketType),
    /// (A.2) Only the last packet of a compound may be padded.
    #[error("RTCP packet {index} is padded but is not the last of the compound")]
    PaddingNotLast {
        /// Index of the padded packet (0-based).
        index: usize,
    },
}

/// Why a packet could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The caller's buffer has no room for the packet.
    #[error("RTCP packet needs {needed} bytes, buffer has {available} left")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// More report blocks, chunks or sources than the 5-bit count field holds, or an APP
    /// subtype or raw count above 31.
    #[error("count {count} does not fit the 5-bit count field")]
    CountTooLarge {
        /// The count asked for.
        count: usize,
    },
    /// An SDES item value, or a BYE reason, longer than 255 bytes.
    #[error("{len}-byte text, at most 255 fit")]
    TextTooLong {
        /// The text's length.
        len: usize,
    },
    /// An SDES item of type 0 (END), which cannot carry a value.
    #[error("SDES item type 0 is the END marker")]
    EndItem,
    /// APP data, or a raw body, whose length is not a multiple of 4.
    #[error("{len}-byte body is not a whole number of 32-bit words")]
    Unaligned {
        /// The body's length.
        len: usize,
    },
    /// The packet would exceed the 16-bit length field.
    #[error("{len}-byte RTCP packet exceeds the length field")]
    TooLong {
        /// The packet's length.
        len: usize,
    },
    /// Padding that is zero or not a multiple of 4, or padding with no packet to pad.
    #[error("cannot pad by {0} bytes")]
    BadPadding(u8),
}

/// A packet of a type this module does not parse, kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unknown<'a> {
    packet_type: PacketType,
    count: u8,
    body: &'a [u8],
}

impl<'a> Unknown<'a> {
    /// The PT field.
    pub fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// The 5-bit count (or format, e.g. FMT for feedback messages) field.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// Everything after the 4-byte header, padding excluded.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// One RTCP packet of a compound, as a typed view of the datagram's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// SR.
    SenderReport(SenderReport<'a>),
    /// RR.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES.
    Sdes(Sdes<'a>),
    /// BYE.
    Bye(Bye<'a>),
    /// APP.
    App(App<'a>),
    /// Any other type.
    Unknown(Unknown<'a>),
}

impl<'a> Packet<'a> {
    /// Parses the first packet of `buf`; returns it and the bytes it took (padding included).
    pub fn parse(buf: &'a [u8]) -> Result<(Packet<'a>, usize), ParseError> {
        let (header, body) = split(buf)?;
        let packet = match header.packet_type {
            PacketType::SENDER_REPORT => {
                Packet::SenderReport(SenderReport::parse(header.count, body)?)
            }
            PacketType::RECEIVER_REPORT => {
                Packet::ReceiverReport(ReceiverReport::parse(header.count, body)?)
            }
            PacketType::SOURCE_DESCRIPTION => Packet::Sdes(Sdes::parse(header.count, body)?),
            PacketType::BYE => Packet::Bye(Bye::parse(header.count, body)?),
            PacketType::APP => Packet::App(App::parse(header.count, body)?),
            packet_type => Packet::Unknown(Unknown { packet_type, count: header.count, body }),
        };
        Ok((packet, header.len))
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::SenderReport(_) => PacketType::SENDER_REPORT,
            Packet::ReceiverReport(_) => PacketType::RECEIVER_REPORT,
            Packet::Sdes(_) => PacketType::SOURCE_DESCRIPTION,
            Packet::Bye(_) => PacketType::BYE,
            Packet::App(_) => PacketType::APP,
            Packet::Unknown(u) => u.packet_type,
        }
    }
}

/// The common header, decoded.
#[derive(Debug, Clone, Copy)]
struct Header {
    padding: bool,
    count: u8,
    packet_type: PacketType,
    /// Length of the whole packet in bytes, header and padding included.
    len: usize,
}

/// Decodes the header of the first packet in `buf` and returns its body, padding removed.
fn split(buf: &[u8]) -> Result<(Header, &[u8]), ParseError> {
    let [b0, pt, l0, l1, ..] = *buf else {
        return Err(ParseError::TooShort { available: buf.len() });
    };
    if b0 >> 6 != VERSION {
        return Err(ParseError::BadVersion(b0 >> 6));
    }
    let len = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
    let packet =
        buf.get(..len).ok_or(ParseError::LengthOverrun { declared: len, available: buf.len() })?;
    let header =
        Header { padding: b0 & 0x20 != 0, count: b0 & 0x1f, packet_type: PacketType(pt), len };
    let mut end = len;
    if header.padding {
        // The last byte counts the padding, itself included.
        let count = packet[len - 1];
        if count == 0 || usize::from(count) > len - HEADER_LEN {
            return Err(ParseError::BadPadding { count, len });
        }
        end -= usize::from(count);
    }
    Ok((header, &packet[HEADER_LEN..end]))
}

/// Iterates over the packets of a compound datagram; see [`packets`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<Packet<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Packet::parse(self.rest) {
            Ok((packet, len)) => {
                self.rest = &self.rest[len..];
                Some(Ok(packet))
            }
            Err(e) => {
                // Nothing after a malformed packet can be located: stop here.
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Packets<'_> {}

/// The packets of an RTCP datagram, in order. Yields an error (once, then stops) at the first
/// packet that is malformed or truncated. Lenient: accepts any packet types in any order, and
/// a single reduced-size packet (RFC 5506); use [`validate_compound`] for the strict check.
pub fn packets(buf: &[u8]) -> Packets<'_> {
    Packets { rest: buf }
}

/// The RFC 3550 A.2 validity check for a compound RTCP datagram: every packet is version 2 and
/// well formed, the first is an SR or RR, only the last is padded, and the lengths add up to
/// the datagram exactly. Returns the number of packets.
///
/// Unlike the A.2 sample code, a padded first packet is accepted when it is also the last.
pub fn validate_compound(buf: &[u8]) -> Result<usize, ParseError> {
    let mut rest = buf;
    let mut index = 0;
    while !rest.is_empty() {
        let (header, _) = split(rest)?;
        if index == 0
            && !matches!(
                header.packet_type,
                PacketType::SENDER_REPORT | PacketType::RECEIVER_REPORT
            )
        {
            return Err(ParseError::FirstNotReport(header.packet_type));
        }
        if header.padding && header.len != rest.len() {
            return Err(ParseError::PaddingNotLast { index });
        }
        Packet::parse(rest)?;
        rest = &rest[header.len..];
        index += 1;
    }
    if index == 0 {
        return Err(ParseError::Empty);
    }
    Ok(index)
}

/// Reads a big-endian u32 at `at`; callers check the length first.
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests;
