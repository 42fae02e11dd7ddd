//! Typed RTSP headers (RFC 2326 §12): each type parses a header value with [`FromStr`] (or its
//! `parse` function) and writes the canonical form with [`fmt::Display`].
//!
//! Parsing is tolerant of what real peers send (any case in parameter names, optional quotes,
//! stray spaces, unknown parameters) and strict about what would change meaning (numbers out of
//! range, missing required parts). Writing is canonical: the form GStreamer and ffmpeg send and
//! accept, so `parse(write(x)) == x` for every value.
//!
//! The [`TypedHeader`] trait reads a typed header from [`Headers`] and sets it back:
//!
//! ```
//! use manifold_rtsp::header::{Session, Transport, TypedHeader};
//! use manifold_rtsp::Headers;
//!
//! let mut headers = Headers::new();
//! headers.append("transport", "RTP/AVP;unicast;client_port=21518-21519");
//! let transport = Transport::from_headers(&headers).unwrap().unwrap();
//! assert_eq!(transport.specs[0].client_port.unwrap().first, 21518);
//!
//! Session::parse("nKzoG66kIQDPNcyC;timeout=60").unwrap().set_in(&mut headers);
//! assert_eq!(headers.get("Session"), Some("nKzoG66kIQDPNcyC;timeout=60"));
//! ```
//!
//! `WWW-Authenticate` and `Authorization` live in [`crate::auth`].

use std::fmt;
use std::str::FromStr;

use crate::Headers;

mod misc;
mod range;
mod rtp_info;
mod session;
mod transport;

pub use misc::{
    Accept, Allow, CSeq, ContentBase, ContentLength, ContentLocation, ContentType, MediaRange,
    MediaType, MethodName, ProxyRequire, Public, Quality, Require, Scale, Server, Speed,
    Unsupported, UserAgent,
};
pub use range::{
    ClockRange, NptRange, NptTime, Range, RangeSpec, SmpteKind, SmpteRange, SmpteTime, UtcTime,
};
pub use rtp_info::{RtpInfo, RtpInfoEntry};
pub use session::Session;
pub use transport::{
    ChannelRange, Delivery, Destination, LowerTransport, PortRange, Profile, Transport,
    TransportMode, TransportSpec,
};

/// Why a header value could not be parsed. Every variant names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The value is empty (or only whitespace) where something is required.
    #[error("{header}: empty value")]
    Empty {
        /// The header's name.
        header: &'static str,
    },
    /// A required part is missing.
    #[error("{header}: missing {what}")]
    Missing {
        /// The header's name.
        header: &'static str,
        /// What is missing, e.g. "session id".
        what: &'static str,
    },
    /// A part is malformed or out of range.
    #[error("{header}: invalid {what}: {value:?}")]
    Invalid {
        /// The header's name.
        header: &'static str,
        /// Which part is wrong, e.g. "client_port".
        what: &'static str,
        /// The offending text (cut to at most 64 bytes).
        value: String,
    },
    /// The value is well formed but names something this crate does not speak, e.g. a
    /// transport protocol other than RTP or a range unit other than npt, smpte and clock.
    #[error("{header}: unsupported {what}: {value:?}")]
    Unsupported {
        /// The header's name.
        header: &'static str,
        /// What kind of thing is unsupported, e.g. "transport protocol".
        what: &'static str,
        /// The offending text (cut to at most 64 bytes).
        value: String,
    },
    /// A parameter appears twice where it may appear once.
    #[error("{header}: duplicate parameter {param:?}")]
    Duplicate {
        /// The header's name.
        header: &'static str,
        /// The repeated parameter's name as sent (cut to at most 64 bytes).
        param: String,
    },
}

impl HeaderError {
    /// The name of the header the error is about, e.g. `"Transport"`.
    pub fn header(&self) -> &'static str {
        match self {
            HeaderError::Empty { header }
            | HeaderError::Missing { header, .. }
            | HeaderError::Invalid { header, .. }
            | HeaderError::Unsupported { header, .. }
            | HeaderError::Duplicate { header, .. } => header,
        }
    }

    pub(crate) fn invalid(header: &'static str, what: &'static str, value: &str) -> Self {
        HeaderError::Invalid { header, what, value: cut(value) }
    }

    pub(crate) fn unsupported(header: &'static str, what: &'static str, value: &str) -> Self {
        HeaderError::Unsupported { header, what, value: cut(value) }
    }

    pub(crate) fn duplicate(header: &'static str, param: &str) -> Self {
        HeaderError::Duplicate { header, param: cut(param) }
    }
}

/// At most 64 bytes of `s` (on a character boundary), for error messages.
fn cut(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A header with a typed value: its name, and reading it from / writing it to [`Headers`].
pub trait TypedHeader: FromStr<Err = HeaderError> + fmt::Display {
    /// The header's canonical name, e.g. `"Transport"` (looked up case-insensitively).
    const NAME: &'static str;

    /// Whether the value is a comma-separated list, so that repeated header lines are one
    /// value joined with `,` (RFC 2326 §4.2, as in HTTP/1.1 §4.2). When `false`, only the
    /// first line counts.
    const LIST: bool = false;

    /// Reads the header from `headers`: `Ok(None)` when absent, an error when present but
    /// malformed. List headers given on several lines are joined first.
    fn from_headers(headers: &Headers) -> Result<Option<Self>, HeaderError> {
        if Self::LIST {
            let mut lines = headers.get_all(Self::NAME);
            let Some(first) = lines.next() else {
                return Ok(None);
            };
            let mut joined: Option<String> = None;
            for line in lines {
                let j = joined.get_or_insert_with(|| first.to_owned());
                j.push(',');
                j.push_str(line);
            }
            match joined {
                Some(j) => j.parse().map(Some),
                None => first.parse().map(Some),
            }
        } else {
            headers.get(Self::NAME).map(str::parse).transpose()
        }
    }

    /// Sets the header in `headers` to this value's canonical form, replacing any lines of
    /// the same name.
    fn set_in(&self, headers: &mut Headers) {
        headers.set(Self::NAME, self.to_string());
    }
}

/// Implements `FromStr` (via the type's `parse`) and `TypedHeader` for a header type.
macro_rules! typed_header {
    ($ty:ty, $name:expr) => {
        typed_header!($ty, $name, false);
    };
    ($ty:ty, $name:expr, $list:expr) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::header::HeaderError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty>::parse(s)
            }
        }
        impl $crate::header::TypedHeader for $ty {
            const NAME: &'static str = $name;
            const LIST: bool = $list;
        }
    };
}
use typed_header;

/// Splits `s` at `sep` outside double-quoted strings (a backslash escapes the next character
/// inside quotes). Pieces are not trimmed.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b if b == sep && !in_quotes => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

/// Removes one pair of surrounding double quotes, if present, and undoes `\` escapes inside.
fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let s = s.trim();
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out.into()
        }
        Some(inner) => inner.into(),
        None => s.into(),
    }
}

/// Whether an unknown parameter (`name` or `name=value`) can be kept and written back as it
/// came: the name a token, the value free of controls and, unless quoted, of commas (which
/// would split it into another list element on the way back).
fn is_extension_param(name: &str, value: Option<&str>) -> bool {
    is_token(name)
        && value.is_none_or(|v| {
            !v.bytes().any(|b| b.is_ascii_control())
                && (!v.contains(',') || (v.len() >= 2 && v.starts_with('"') && v.ends_with('"')))
        })
}

/// Whether `s` is an RFC 2616 token (non-empty, no separators, no controls, ASCII).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

/// Writes `s` as a token when it is one, else as a quoted string.
fn write_token_or_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if is_token(s) {
        f.write_str(s)
    } else {
        write_quoted(f, s)
    }
}

/// Writes `s` as a quoted string, escaping `"` and `\`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Parses a non-negative decimal integer made only of ASCII digits (no sign, no spaces).
fn parse_decimal<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes() {
        assert_eq!(split_unquoted(r#"a;b="x;y";c"#, b';'), ["a", r#"b="x;y""#, "c"]);
        assert_eq!(split_unquoted(r#"a="\";";b"#, b';'), [r#"a="\";""#, "b"]);
        assert_eq!(split_unquoted("", b','), [""]);
    }

    #[test]
    fn unquote_and_escape() {
        assert_eq!(unquote(r#" "PLAY" "#), "PLAY");
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote("bare"), "bare");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn error_messages_name_the_header() {
        let e = HeaderError::invalid("Transport", "client_port", "x");
        assert_eq!(e.header(), "Transport");
        assert_eq!(e.to_string(), r#"Transport: invalid client_port: "x""#);
        let long = "é".repeat(100);
        let HeaderError::Invalid { value, .. } = HeaderError::invalid("Range", "npt", &long) else {
            unreachable!()
        };
        assert!(value.len() <= 67);
    }

    #[test]
    fn list_headers_join_repeated_lines() {
        let mut h = Headers::new();
        h.append("Public", "OPTIONS, DESCRIBE");
        h.append("public", "SETUP");
        let p = Public::from_headers(&h).unwrap().unwrap();
        assert_eq!(p.0.len(), 3);
        let mut h = Headers::new();
        h.append("User-Agent", "GStreamer/1.22.0");
        h.append("User-Agent", "RealMedia Player Version 6.0.9.1235");
        assert_eq!(UserAgent::from_headers(&h).unwrap().unwrap().0, "GStreamer/1.22.0");
        assert_eq!(CSeq::from_headers(&h), Ok(None));
        h.append("CSeq", "x");
        assert!(CSeq::from_headers(&h).is_err());
    }
}
