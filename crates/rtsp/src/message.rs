//! The RTSP message model: requests, responses, their headers, and wire identities.

use std::fmt;

use crate::StatusCode;

/// An RTSP method (RFC 2326 §10). Methods outside this list are rejected by the parser
/// with [`crate::ParseError::UnknownMethod`] (501 Not Implemented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// OPTIONS
    Options,
    /// DESCRIBE
    Describe,
    /// ANNOUNCE
    Announce,
    /// SETUP
    Setup,
    /// PLAY
    Play,
    /// PAUSE
    Pause,
    /// RECORD
    Record,
    /// TEARDOWN
    Teardown,
    /// GET_PARAMETER
    GetParameter,
    /// SET_PARAMETER
    SetParameter,
    /// REDIRECT
    Redirect,
}

impl Method {
    /// Every method, in the order servers usually list them in `Public`.
    pub const ALL: [Method; 11] = [
        Method::Options,
        Method::Describe,
        Method::Announce,
        Method::Setup,
        Method::Play,
        Method::Pause,
        Method::Record,
        Method::Teardown,
        Method::GetParameter,
        Method::SetParameter,
        Method::Redirect,
    ];

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Announce => "ANNOUNCE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Record => "RECORD",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Redirect => "REDIRECT",
        }
    }

    /// Looks a method up by its wire name (method names are case-sensitive, RFC 2326 §6.1).
    pub fn from_wire(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol version of a message. Only RTSP/1.0 is spoken; others are rejected by the
/// parser with [`crate::ParseError::BadVersion`] (505).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// RTSP/1.0
    #[default]
    V1_0,
}

impl Version {
    /// The version's text on the wire.
    pub fn as_str(self) -> &'static str {
        "RTSP/1.0"
    }
}

/// Message headers in arrival order. Names keep their original spelling (so a message
/// round-trips byte for byte) and are looked up case-insensitively; repeated headers are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first value of `name` (case-insensitive), if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (case-insensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present (case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a header, keeping any existing ones of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every header of `name` with one value (appended if absent).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.entries.iter().position(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some(first) => {
                self.entries[first].1 = value;
                let mut i = 0;
                self.entries.retain(|(n, _)| {
                    i += 1;
                    i - 1 == first || !n.eq_ignore_ascii_case(&name)
                });
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Removes every header of `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.entries.len()
    }

    /// All headers as (name, value) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An RTSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI exactly as sent (`*` for a server-wide OPTIONS).
    pub uri: String,
    /// The protocol version.
    pub version: Version,
    /// Headers, including CSeq.
    pub headers: Headers,
    /// The body (length given by Content-Length); empty when there is none.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Request {
            method,
            uri: uri.into(),
            version: Version::V1_0,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The CSeq value, if present and numeric.
    pub fn cseq(&self) -> Option<u32> {
        self.headers.get("CSeq").and_then(|v| v.trim().parse().ok())
    }
}

/// An RTSP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The protocol version.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase exactly as sent.
    pub reason: String,
    /// Headers, including CSeq.
    pub headers: Headers,
    /// The body (length given by Content-Length); empty when there is none.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the status's standard reason phrase, no headers and no body.
    pub fn new(status: StatusCode) -> Self {
        Response {
            version: Version::V1_0,
            status,
            reason: status.reason().to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The CSeq value, if present and numeric.
    pub fn cseq(&self) -> Option<u32> {
        self.headers.get("CSeq").and_then(|v| v.trim().parse().ok())
    }
}

/// An RTSP session identifier (the `Session` header's id part, RFC 2326 §12.37).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An interleaved channel number (the byte after `$`, RFC 2326 §10.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u8);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_case_insensitive_and_repeated() {
        let mut h = Headers::new();
        h.append("User-Agent", "a");
        h.append("user-agent", "b");
        h.append("CSeq", "3");
        assert_eq!(h.get("USER-AGENT"), Some("a"));
        assert_eq!(h.get_all("User-Agent").collect::<Vec<_>>(), ["a", "b"]);
        h.set("user-AGENT", "c");
        assert_eq!(h.get_all("User-Agent").collect::<Vec<_>>(), ["c"]);
        assert_eq!(h.remove("cseq"), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn methods_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_wire(m.as_str()), Some(m));
        }
        assert_eq!(Method::from_wire("options"), None);
    }
}
