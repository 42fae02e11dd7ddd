//! Goodbye (RFC 3550 §6.6) and application-defined (§6.7) packets.

use super::{be32, PacketType, ParseError};
use crate::Ssrc;

/// A BYE packet: sources leaving the session, with an optional reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bye<'a> {
    sources: &'a [u8],
    reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, ParseError> {
        let needed = usize::from(count) * 4;
        let (sources, rest) = body.split_at_checked(needed).ok_or(ParseError::BodyTooShort {
            packet_type: PacketType::BYE,
            needed,
            available: body.len(),
        })?;
        let reason = match rest.split_first() {
            None => None,
            Some((&len, text)) => Some(
                text.get(..usize::from(len))
                    .ok_or(ParseError::ByeReasonOverrun { len, available: text.len() })?,
            ),
        };
        Ok(Bye { sources, reason })
    }

    /// The sources leaving.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = Ssrc> + 'a {
        self.sources.chunks_exact(4).map(|c| Ssrc(be32(c, 0)))
    }

    /// Why they leave (UTF-8 text by convention, not checked), if given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        self.reason
    }
}

/// An APP packet: an application-defined name, subtype and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct App<'a> {
    subtype: u8,
    ssrc: Ssrc,
    name: [u8; 4],
    data: &'a [u8],
}

impl<'a> App<'a> {
    pub(super) fn parse(subtype: u8, body: &'a [u8]) -> Result<Self, ParseError> {
        let [s0, s1, s2, s3, n0, n1, n2, n3, ref data @ ..] = *body else {
            return Err(ParseError::BodyTooShort {
                packet_type: PacketType::APP,
                needed: 8,
                available: body.len(),
            });
        };
        Ok(App {
            subtype,
            ssrc: Ssrc(u32::from_be_bytes([s0, s1, s2, s3])),
            name: [n0, n1, n2, n3],
            data,
        })
    }

    /// The 5-bit subtype (the count field).
    pub fn subtype(&self) -> u8 {
        self.subtype
    }

    /// The sender.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The four-character name (ASCII by convention, not checked).
    pub fn name(&self) -> [u8; 4] {
        self.name
    }

    /// The application-dependent data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}
