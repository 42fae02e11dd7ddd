//! Writers: messages and interleaved frames into a caller-owned buffer.

use crate::error::FrameTooLarge;
use crate::{ChannelId, Headers, Request, Response};

/// Appends `request` to `out` in wire form: request line, headers in order, empty line, body.
///
/// `Content-Length` is written from the body: any `Content-Length` headers get the body's
/// length, and one is appended when the body is non-empty and there is none. CR and LF inside
/// the URI, names or values are written as spaces, so a value can never inject a header.
pub fn write_request(request: &Request, out: &mut Vec<u8>) {
    push_text(out, request.method.as_str());
    out.push(b' ');
    push_text(out, &request.uri);
    out.push(b' ');
    out.extend_from_slice(request.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers_and_body(&request.headers, &request.body, out);
}

/// Appends `response` to `out` in wire form: status line, headers in order, empty line, body.
/// `Content-Length` and CR/LF are handled as in [`write_request`].
pub fn write_response(response: &Response, out: &mut Vec<u8>) {
    out.extend_from_slice(response.version.as_str().as_bytes());
    out.push(b' ');
    push_decimal(out, usize::from(response.status.0));
    out.push(b' ');
    push_text(out, &response.reason);
    out.extend_from_slice(b"\r\n");
    write_headers_and_body(&response.headers, &response.body, out);
}

/// The 4-byte header of an interleaved frame: `$`, the channel, the payload length (big-endian).
pub fn interleaved_header(channel: ChannelId, len: u16) -> [u8; 4] {
    let [hi, lo] = len.to_be_bytes();
    [b'$', channel.0, hi, lo]
}

/// Appends a whole interleaved frame (header and payload) to `out`; fails, writing nothing,
/// when the payload does not fit the 16-bit length.
pub fn write_interleaved(
    channel: ChannelId,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameTooLarge> {
    let len = u16::try_from(payload.len()).map_err(|_| FrameTooLarge { len: payload.len() })?;
    out.extend_from_slice(&interleaved_header(channel, len));
    out.extend_from_slice(payload);
    Ok(())
}

fn write_headers_and_body(headers: &Headers, body: &[u8], out: &mut Vec<u8>) {
    let mut wrote_length = false;
    for (name, value) in headers.iter() {
        push_text(out, name);
        out.extend_from_slice(b": ");
        if name.eq_ignore_ascii_case("Content-Length") {
            push_decimal(out, body.len());
            wrote_length = true;
        } else {
            push_text(out, value);
        }
        out.extend_from_slice(b"\r\n");
    }
    if !wrote_length && !body.is_empty() {
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, body.len());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Text with CR and LF replaced by spaces.
fn push_text(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
}

fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        // `n % 10` is a single digit.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}
