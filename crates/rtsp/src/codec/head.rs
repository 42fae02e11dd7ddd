//! Parsing a complete head (start line and headers) and body into a [`Request`] or
//! [`Response`]. The framing is already known here, so every error can say where the message
//! ends ([`Rejected`]) and the connection can skip it.

use super::frame::{is_token_byte, raw_headers};
use super::{Item, Limits};
use crate::error::Rejected;
use crate::{Headers, Method, ParseError, Request, Response, StatusCode, Version};

/// A decoded message and any problem tolerated in it.
pub(super) struct Parsed {
    pub(super) item: Item<'static>,
    pub(super) warning: Option<ParseError>,
}

/// Parses `head` (start line through the empty line, no leading blank lines) and `body`;
/// `total` is where the message ends in the caller's buffer.
pub(super) fn parse(
    head: &[u8],
    body: &[u8],
    total: usize,
    limits: &Limits,
) -> Result<Parsed, ParseError> {
    let rejected = Rejected { len: total, cseq: lenient_cseq(head) };
    let mut lines =
        head.split(|&b| b == b'\n').map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let start_line = lines.next().unwrap_or_default();
    let header_lines = lines.take_while(|line| !line.is_empty());

    let first_word = start_line.split(|&b| b == b' ' || b == b'\t').next().unwrap_or_default();
    if first_word.contains(&b'/') {
        let (version, status, reason) = status_line(start_line, rejected)?;
        let headers = headers(header_lines, limits, rejected)?;
        let warning = required_cseq(&headers, rejected).err();
        let response = Response { version, status, reason, headers, body: body.to_vec() };
        Ok(Parsed { item: Item::Response(response), warning })
    } else {
        let (method, uri, version) = request_line(start_line, rejected)?;
        let headers = headers(header_lines, limits, rejected)?;
        required_cseq(&headers, rejected)?;
        let request = Request { method, uri, version, headers, body: body.to_vec() };
        Ok(Parsed { item: Item::Request(request), warning: None })
    }
}

/// `METHOD SP Request-URI SP RTSP-Version`; runs of spaces or tabs are accepted as separators.
fn request_line(line: &[u8], rejected: Rejected) -> Result<(Method, String, Version), ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ParseError::NonUtf8 { field: "request line", rejected })?;
    let malformed = || ParseError::MalformedRequestLine { line: text.to_owned(), rejected };
    // A control character (a stray CR, say) is never part of a URI; taking it in would make a
    // message the writer cannot reproduce.
    if has_control(text) {
        return Err(malformed());
    }
    let mut parts = text.split([' ', '\t']).filter(|part| !part.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    // The version is checked first: a request from a newer protocol is answered 505 even if
    // its method is new too.
    let version = version_of(version, rejected).ok_or_else(malformed)??;
    let method = Method::from_wire(method)
        .ok_or_else(|| ParseError::UnknownMethod { method: method.to_owned(), rejected })?;
    Ok((method, uri.to_owned(), version))
}

/// Whether `text` holds an ASCII control character other than the tab separator.
fn has_control(text: &str) -> bool {
    text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// `RTSP-Version SP 3DIGIT [SP Reason-Phrase]`; the reason is trimmed and may be empty.
fn status_line(
    line: &[u8],
    rejected: Rejected,
) -> Result<(Version, StatusCode, String), ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ParseError::NonUtf8 { field: "status line", rejected })?;
    let malformed = || ParseError::MalformedStatusLine { line: text.to_owned(), rejected };
    if has_control(text) {
        return Err(malformed());
    }
    let (version, rest) = text.split_once([' ', '\t']).ok_or_else(malformed)?;
    let version = version_of(version, rejected).ok_or_else(malformed)??;
    let rest = rest.trim_start_matches([' ', '\t']);
    let (code, reason) = match rest.find([' ', '\t']) {
        Some(space) => rest.split_at(space),
        None => (rest, ""),
    };
    let status = match code.as_bytes() {
        &[a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            StatusCode([a, b, c].iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
        }
        _ => return Err(malformed()),
    };
    Ok((version, status, reason.trim_matches([' ', '\t']).to_owned()))
}

/// `None` when `token` is not a version at all (`NAME/x.y`); `Some(Err)` when it is one we do
/// not speak.
fn version_of(token: &str, rejected: Rejected) -> Option<Result<Version, ParseError>> {
    if token.eq_ignore_ascii_case(Version::V1_0.as_str()) {
        return Some(Ok(Version::V1_0));
    }
    let (name, number) = token.split_once('/')?;
    let is_version = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphabetic())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    is_version.then(|| Err(ParseError::BadVersion { version: token.to_owned(), rejected }))
}

/// Header lines into [`Headers`]: `name: value` with a token name (whitespace before the colon
/// tolerated), the value trimmed; a line starting with a space or tab continues the previous
/// value (obs-fold), joined with one space.
fn headers<'h>(
    lines: impl Iterator<Item = &'h [u8]> + Clone,
    limits: &Limits,
    rejected: Rejected,
) -> Result<Headers, ParseError> {
    let count = lines.clone().filter(|line| !is_continuation(line)).count();
    if count > limits.max_headers {
        return Err(ParseError::TooManyHeaders { count, limit: limits.max_headers, rejected });
    }
    let mut entries: Vec<(String, String)> = Vec::with_capacity(count);
    for line in lines {
        let text = std::str::from_utf8(line)
            .map_err(|_| ParseError::NonUtf8 { field: "header line", rejected })?;
        let malformed = || ParseError::MalformedHeader { line: text.to_owned(), rejected };
        // A control character in a header (a stray CR, a NUL) is never valid (RFC 2326
        // §15.1: TEXT excludes CTLs); taking it in could smuggle a header past a proxy.
        if has_control(text) {
            return Err(malformed());
        }
        if is_continuation(line) {
            let (_, value) = entries.last_mut().ok_or_else(malformed)?;
            let more = text.trim_matches([' ', '\t']);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        let (name, value) = text.split_once(':').ok_or_else(malformed)?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(malformed());
        }
        entries.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let mut headers = Headers::new();
    for (name, value) in entries {
        headers.append(name, value);
    }
    Ok(headers)
}

fn is_continuation(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

/// The message's CSeq: present, a `u32`, and the same in every repeat.
fn required_cseq(headers: &Headers, rejected: Rejected) -> Result<u32, ParseError> {
    let mut cseq = None;
    for value in headers.get_all("CSeq") {
        let invalid = || ParseError::InvalidCSeq { value: value.to_owned(), rejected };
        let n: u32 = value.parse().map_err(|_| invalid())?;
        if cseq.is_some_and(|first| first != n) {
            return Err(invalid());
        }
        cseq = Some(n);
    }
    cseq.ok_or(ParseError::MissingCSeq { rejected })
}

/// The first readable CSeq in a head that may be otherwise invalid, for error responses.
fn lenient_cseq(head: &[u8]) -> Option<u32> {
    raw_headers(head)
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"cseq"))
        .find_map(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())
}
