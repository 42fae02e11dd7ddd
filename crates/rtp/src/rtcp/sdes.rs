//! Source description packets (RFC 3550 §6.5): chunks of an SSRC and its items.

use super::{be32, ParseError};
use crate::Ssrc;

/// An SDES item type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SdesKind(pub u8);

impl SdesKind {
    /// Ends a chunk's item list; never carries a value.
    pub const END: SdesKind = SdesKind(0);
    /// Canonical end-point identifier, `user@host`.
    pub const CNAME: SdesKind = SdesKind(1);
    /// User name.
    pub const NAME: SdesKind = SdesKind(2);
    /// Electronic mail address.
    pub const EMAIL: SdesKind = SdesKind(3);
    /// Phone number.
    pub const PHONE: SdesKind = SdesKind(4);
    /// Geographic location.
    pub const LOC: SdesKind = SdesKind(5);
    /// Application or tool name.
    pub const TOOL: SdesKind = SdesKind(6);
    /// Notice or status.
    pub const NOTE: SdesKind = SdesKind(7);
    /// Private extension: the value is a prefix length byte, the prefix, then the value.
    pub const PRIV: SdesKind = SdesKind(8);
}

/// One SDES item: a type and its value (UTF-8 text for the standard types, not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SdesItem<'a> {
    /// The item type; never [`SdesKind::END`] in a parsed item.
    pub kind: SdesKind,
    /// The value, at most 255 bytes.
    pub value: &'a [u8],
}

impl<'a> SdesItem<'a> {
    /// For a PRIV item, its `(prefix, value)`; `None` for other types or a prefix overrun.
    pub fn private_parts(&self) -> Option<(&'a [u8], &'a [u8])> {
        if self.kind != SdesKind::PRIV {
            return None;
        }
        let (&len, rest) = self.value.split_first()?;
        (usize::from(len) <= rest.len()).then(|| rest.split_at(usize::from(len)))
    }
}

/// An SDES packet: up to 31 chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    /// Checks every chunk once, so that iterating later cannot fail.
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Self, ParseError> {
        let mut pos = 0;
        for chunk in 0..usize::from(count) {
            pos = chunk_end(body, pos).ok_or(ParseError::SdesOverrun { chunk })?;
        }
        Ok(Sdes { count, body })
    }

    /// The chunks, one per source described.
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks { rest: self.body, left: self.count }
    }
}

/// Finds the end of the chunk starting at `start` (a multiple of 4), padding included.
fn chunk_end(body: &[u8], start: usize) -> Option<usize> {
    let mut pos = start.checked_add(4)?;
    if pos > body.len() {
        return None;
    }
    loop {
        match *body.get(pos)? {
            0 => {
                // END, then null octets up to the next 32-bit boundary.
                let end = (pos + 4) & !3;
                return (end <= body.len()).then_some(end);
            }
            _ => {
                let len = usize::from(*body.get(pos + 1)?);
                pos += 2 + len;
            }
        }
    }
}

/// The chunks of an SDES packet.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.left == 0 {
            return None;
        }
        // Checked by `Sdes::parse`; a `None` here would only end the iteration early.
        let end = chunk_end(self.rest, 0)?;
        let chunk = SdesChunk { ssrc: Ssrc(be32(self.rest, 0)), items: &self.rest[4..end] };
        self.rest = &self.rest[end..];
        self.left -= 1;
        Some(chunk)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for SdesChunks<'_> {}

/// One SDES chunk: a source and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SdesChunk<'a> {
    ssrc: Ssrc,
    /// The items, END and padding included.
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// The source (SSRC or CSRC) described.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The items, in order.
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { rest: self.items }
    }

    /// The first CNAME item's value, if any.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == SdesKind::CNAME).map(|i| i.value)
    }
}

/// The items of an SDES chunk.
#[derive(Debug, Clone)]
pub struct SdesItems<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&kind, rest) = self.rest.split_first()?;
        if kind == 0 {
            self.rest = &[];
            return None;
        }
        let (&len, rest) = rest.split_first()?;
        let value = rest.get(..usize::from(len))?;
        self.rest = &rest[usize::from(len)..];
        Some(SdesItem { kind: SdesKind(kind), value })
    }
}
