//! The RTSP message codec: a streaming decoder for a TCP byte stream that mixes RTSP requests,
//! responses and `$` interleaved frames (RFC 2326 §10.12), and the matching writers.
//!
//! # Decoding
//!
//! The caller owns the receive buffer. [`Decoder::feed`] looks at its front and returns
//! `Ok(None)` when more bytes are needed, or `Ok(Some((item, consumed)))` when one [`Item`] is
//! complete; the caller then drops `consumed` bytes from the front and feeds the rest again
//! (several items may already be buffered). Interleaved payloads borrow from the buffer, so
//! the relay's packet path copies nothing.
//!
//! Between an `Ok(None)` and the next call the caller may only *append* to the buffer: the
//! decoder keeps a small resume position so that a head arriving byte by byte is scanned once,
//! not once per byte. After `Ok(Some(..))` or `Err(..)` that position is forgotten. On an
//! error, [`ParseError::resume_at`] says how many bytes to drop to go on with the next message,
//! or that the stream cannot be resynchronised and the connection should be closed.
//!
//! What the decoder tolerates, as real peers need: LF-only line ends, blank lines (CRLF
//! keep-alives) before a message or frame, any header-name case, repeated headers (kept in
//! order), whitespace around values and before the colon, and obs-fold continuation lines
//! (joined to the previous value with one space). A message has a body only when it carries
//! `Content-Length`; responses without `CSeq` are decoded and the problem is reported through
//! [`Decoder::warning`].
//!
//! # Writing
//!
//! [`write_request`] and [`write_response`] keep header order and spelling and write
//! `Content-Length` from the body, so `decode(write(x)) == x` for any message whose
//! `Content-Length` header (present whenever the body is non-empty) matches its body.
//! [`interleaved_header`] and [`write_interleaved`] frame RTP/RTCP for a TCP connection.

mod frame;
mod head;
mod write;

#[cfg(test)]
mod tests;

pub use write::{interleaved_header, write_interleaved, write_request, write_response};

use crate::{ChannelId, ParseError, Request, Response};
use frame::{Frame, Scan};

/// Size limits the decoder enforces, each with its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head in bytes: any blank lines before the message, the start line, the headers
    /// and the empty line that ends them. Default 8 KiB. Exceeding it is
    /// [`ParseError::StartLineTooLong`] or [`ParseError::HeadersTooLarge`].
    pub max_head: usize,
    /// Most header lines in one message (continuation lines not counted). Default 64;
    /// exceeding it is [`ParseError::TooManyHeaders`].
    pub max_headers: usize,
    /// Largest body in bytes (`Content-Length`). Default 64 KiB; exceeding it is
    /// [`ParseError::BodyTooLarge`]. An interleaved frame is at most 65535 bytes by
    /// construction and is not limited further.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 8 * 1024, max_headers: 64, max_body: 64 * 1024 }
    }
}

/// One decoded unit of an RTSP connection's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// An RTSP request.
    Request(Request),
    /// An RTSP response.
    Response(Response),
    /// A `$` interleaved frame (RFC 2326 §10.12), its payload borrowed from the input.
    Interleaved {
        /// The channel byte.
        channel: ChannelId,
        /// The frame's payload (an RTP or RTCP packet), without the 4-byte header.
        payload: &'a [u8],
    },
}

/// A streaming decoder over a caller-owned buffer; see the [module docs](self) for the
/// contract. Holds only the limits, a resume position and the last warning: no bytes.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    scan: Scan,
    warning: Option<ParseError>,
}

impl Decoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Decoder { limits, scan: Scan::default(), warning: None }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes the item at the front of `buf`: `Ok(None)` when more bytes are needed,
    /// `Ok(Some((item, consumed)))` when one is complete (drop `consumed` bytes, which include
    /// any blank lines before it), `Err` when the bytes are invalid.
    pub fn feed<'b>(&mut self, buf: &'b [u8]) -> Result<Option<(Item<'b>, usize)>, ParseError> {
        self.warning = None;
        let result = self.decode_front(buf);
        if !matches!(result, Ok(None)) {
            self.scan = Scan::default();
        }
        result
    }

    /// A problem the decoder tolerated in the item it last returned (for now only a response
    /// without a valid `CSeq`: [`ParseError::MissingCSeq`] or [`ParseError::InvalidCSeq`]),
    /// for the caller to log. Cleared by the next [`Decoder::feed`].
    pub fn warning(&self) -> Option<&ParseError> {
        self.warning.as_ref()
    }

    /// Forgets the resume position, for a caller that replaced its buffer rather than
    /// appending to it.
    pub fn reset(&mut self) {
        self.scan = Scan::default();
        self.warning = None;
    }

    fn decode_front<'b>(&mut self, buf: &'b [u8]) -> Result<Option<(Item<'b>, usize)>, ParseError> {
        match self.scan.frame(buf, &self.limits)? {
            Frame::Incomplete => Ok(None),
            Frame::Interleaved { channel, payload, total } => {
                Ok(buf.get(payload..total).map(|payload| {
                    (Item::Interleaved { channel: ChannelId(channel), payload }, total)
                }))
            }
            Frame::Message { start, head_end, total } => {
                let (Some(head), Some(body)) = (buf.get(start..head_end), buf.get(head_end..total))
                else {
                    return Ok(None);
                };
                let parsed = head::parse(head, body, total, &self.limits)?;
                self.warning = parsed.warning;
                Ok(Some((parsed.item, total)))
            }
        }
    }
}

/// Decodes the item at the front of `buf` with a fresh [`Decoder`]: the same result as
/// [`Decoder::feed`], without the resume position (each call scans from the start) and without
/// warnings. Handy for one-shot parsing and tests.
pub fn decode<'b>(buf: &'b [u8], limits: &Limits) -> Result<Option<(Item<'b>, usize)>, ParseError> {
    Decoder::new(*limits).feed(buf)
}
