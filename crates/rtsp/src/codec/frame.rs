//! Framing: where the next item starts and ends, found with a resumable scan so that bytes
//! arriving one at a time are each looked at once. Nothing here builds a message.

use super::Limits;
use crate::ParseError;

/// What [`Scan::frame`] found at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// A complete `$` frame: the channel byte and the payload at `payload..total`.
    Interleaved { channel: u8, payload: usize, total: usize },
    /// A complete message: head at `start..head_end` (ending with its empty line), body at
    /// `head_end..total`. Bytes before `start` are blank lines.
    Message { start: usize, head_end: usize, total: usize },
}

/// The resume position over the caller's buffer. All offsets are from the buffer's start.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Scan {
    /// Blank-line bytes (CR, LF) seen at the front so far.
    lead: usize,
    /// Whether the lead has ended, i.e. `buf[lead]` begins an item.
    lead_done: bool,
    /// Bytes of the first word (method or version) checked so far, from `lead`.
    word: usize,
    /// Whether the first word has ended.
    word_done: bool,
    /// Where to resume looking for the empty line that ends the head.
    line: usize,
    /// Whether the start line has ended (a LF was seen after `lead`).
    start_line_done: bool,
    /// Once the head is complete: its end and the end of the body.
    framed: Option<(usize, usize)>,
    /// The buffer length last seen, to notice a caller that passed a shorter buffer.
    seen: usize,
}

impl Scan {
    /// Finds the extent of the item at the front of `buf`, resuming where the last call on a
    /// prefix of the same buffer stopped.
    pub(super) fn frame(&mut self, buf: &[u8], limits: &Limits) -> Result<Frame, ParseError> {
        if buf.len() < self.seen {
            *self = Scan::default();
        }
        self.seen = buf.len();
        if let Some((head_end, total)) = self.framed {
            return Ok(complete_if(
                buf,
                total,
                Frame::Message { start: self.lead, head_end, total },
            ));
        }
        // The head, blank lines first, must fit in `max_head`: nothing beyond is ever scanned.
        let region = &buf[..buf.len().min(limits.max_head)];
        let too_large = buf.len() >= limits.max_head;

        if !self.lead_done {
            while let Some(&b) = region.get(self.lead) {
                if b != b'\r' && b != b'\n' {
                    self.lead_done = true;
                    break;
                }
                self.lead += 1;
            }
            if !self.lead_done {
                return incomplete_or(
                    too_large,
                    ParseError::HeadersTooLarge { limit: limits.max_head },
                );
            }
        }
        let start = self.lead;

        if region.get(start) == Some(&b'$') {
            let Some(&[_, channel, hi, lo]) = buf.get(start..start + 4) else {
                return Ok(Frame::Incomplete);
            };
            let payload = start + 4;
            let total = payload + usize::from(u16::from_be_bytes([hi, lo]));
            return Ok(complete_if(buf, total, Frame::Interleaved { channel, payload, total }));
        }

        self.check_first_word(region, start)?;

        match self.find_head_end(region, start) {
            Some(head_end) => {
                let body_len = content_length(&buf[start..head_end], limits)?;
                let total = head_end + body_len;
                self.framed = Some((head_end, total));
                Ok(complete_if(buf, total, Frame::Message { start, head_end, total }))
            }
            None if self.start_line_done => {
                incomplete_or(too_large, ParseError::HeadersTooLarge { limit: limits.max_head })
            }
            None => {
                incomplete_or(too_large, ParseError::StartLineTooLong { limit: limits.max_head })
            }
        }
    }

    /// Rejects early a stream that cannot be RTSP: the first word of a message (a method, or
    /// a version in a status line) must be made of token characters.
    fn check_first_word(&mut self, region: &[u8], start: usize) -> Result<(), ParseError> {
        if self.word_done {
            return Ok(());
        }
        let mut at = start + self.word;
        while let Some(&byte) = region.get(at) {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.word_done = true;
                    break;
                }
                b if is_token_byte(b) || b == b'/' => at += 1,
                byte => return Err(ParseError::Garbage { offset: at, byte }),
            }
        }
        self.word = at - start;
        Ok(())
    }

    /// Looks for the empty line ending the head (`\n\n` or `\n\r\n`) and returns the offset
    /// just past it.
    fn find_head_end(&mut self, region: &[u8], start: usize) -> Option<usize> {
        self.line = self.line.max(start);
        loop {
            let Some(offset) = region.get(self.line..)?.iter().position(|&b| b == b'\n') else {
                self.line = region.len();
                return None;
            };
            let lf = self.line + offset;
            self.start_line_done = true;
            // Resume at this LF if what follows it has not arrived yet.
            self.line = lf;
            match (region.get(lf + 1), region.get(lf + 2)) {
                (Some(b'\n'), _) => return Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
                (None, _) | (Some(b'\r'), None) => return None,
                _ => self.line = lf + 1,
            }
        }
    }
}

fn complete_if(buf: &[u8], total: usize, frame: Frame) -> Frame {
    if buf.len() >= total {
        frame
    } else {
        Frame::Incomplete
    }
}

fn incomplete_or(too_large: bool, error: ParseError) -> Result<Frame, ParseError> {
    if too_large {
        Err(error)
    } else {
        Ok(Frame::Incomplete)
    }
}

/// A token character (RFC 7230 §3.2.6), the alphabet of methods and header names.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The head's header lines as (name, value) byte slices, trimmed; lines without a colon and
/// continuation lines are skipped. The start line is not included.
pub(super) fn raw_headers(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        Some((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()))
    })
}

/// The body length declared by the head's `Content-Length` (0 when absent). Repeats must
/// agree. An invalid or oversized length leaves the message's end unknown.
fn content_length(head: &[u8], limits: &Limits) -> Result<usize, ParseError> {
    let mut declared: Option<&[u8]> = None;
    for (name, value) in raw_headers(head) {
        if !name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let invalid =
            || ParseError::InvalidContentLength { value: String::from_utf8_lossy(value).into() };
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        match declared {
            Some(first) if first != value => return Err(invalid()),
            _ => declared = Some(value),
        }
    }
    let Some(digits) = declared else { return Ok(0) };
    // Digits only, so this fails only on overflow: a length no limit admits.
    let length = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u64>().ok());
    match length.and_then(|l| usize::try_from(l).ok()) {
        Some(len) if len <= limits.max_body => Ok(len),
        _ => Err(ParseError::BodyTooLarge {
            length: length.unwrap_or(u64::MAX),
            limit: limits.max_body,
        }),
    }
}
