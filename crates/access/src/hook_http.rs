//! The auth hook's HTTP/1.1 exchange as bytes: [`HookUrl`] is where it goes, [`post`] writes
//! the request, [`StatusParser`]
//! reads the status line of the answer, fed whatever the socket returned. Only the status
//! matters (2xx allows), so the parser stops there and the caller closes the connection
//! (the request says `Connection: close`). A full HTTP parser (headers, bodies, chunking)
//! would be dead weight here, which is why this is not `httparse`.

/// Why an `--auth-hook` URL is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookUrlError {
    /// Not `http://` (TLS to the hook is not spoken; keep the hook on loopback or a trusted
    /// network).
    #[error("must start with http:// (https is not supported)")]
    Scheme,
    /// No host after `http://`.
    #[error("no host")]
    NoHost,
    /// A port that is not 1 to 65535, or junk after an IPv6 literal.
    #[error("bad port {0:?}")]
    BadPort(String),
    /// Characters that cannot go into a request line or `Host` header (space, control).
    #[error("contains a space or control character")]
    BadCharacter,
}

/// Where the hook listens: `http://HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    /// The host name or address (an IPv6 literal without brackets), to resolve off the shard.
    pub host: String,
    /// The port (default 80).
    pub port: u16,
    /// The request target, `/` at least (query included).
    pub target: String,
}

impl HookUrl {
    /// Parses `http://HOST[:PORT][/PATH][?QUERY]`.
    pub fn parse(url: &str) -> Result<HookUrl, HookUrlError> {
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(HookUrlError::BadCharacter);
        }
        let (scheme, rest) = url.split_once("://").ok_or(HookUrlError::Scheme)?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(HookUrlError::Scheme);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or(HookUrlError::NoHost)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or(HookUrlError::BadPort(p.into()))?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(HookUrlError::NoHost);
        }
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(HookUrlError::BadPort(p.to_owned())),
            },
        };
        Ok(HookUrl { host: host.to_owned(), port, target })
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The longest status line accepted (`HTTP/1.1 200 ` + a reason phrase).
pub const MAX_STATUS_LINE: usize = 512;

/// Why the hook's answer is unreadable (the caller denies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookHttpError {
    /// No line end within [`MAX_STATUS_LINE`] bytes.
    #[error("status line longer than {MAX_STATUS_LINE} bytes")]
    TooLong,
    /// The line does not start with `HTTP/1.`.
    #[error("not an HTTP/1.x response")]
    NotHttp,
    /// The status is not three digits followed by a space or the line end.
    #[error("malformed status code")]
    BadStatus,
}

/// The POST of a JSON body to the hook.
pub fn post(url: &HookUrl, json: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\nUser-Agent: manifold\r\n\r\n",
        url.target,
        url.host_header(),
        json.len()
    );
    let mut out = Vec::with_capacity(head.len() + json.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(json);
    out
}

/// Reads `HTTP/1.x NNN reason\r\n` from bytes arriving in any pieces. Holds at most
/// [`MAX_STATUS_LINE`] bytes.
#[derive(Debug, Default)]
pub struct StatusParser {
    line: Vec<u8>,
    status: Option<u16>,
}

impl StatusParser {
    /// A parser that has seen nothing.
    pub fn new() -> Self {
        StatusParser::default()
    }

    /// Takes the next bytes. `Ok(None)`: need more; `Ok(Some(status))`: the status (and the
    /// same again for any later bytes); `Err`: the answer is not a readable HTTP response.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<u16>, HookHttpError> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let room = MAX_STATUS_LINE - self.line.len();
        let newline = bytes.iter().position(|&b| b == b'\n');
        let take = newline.unwrap_or(bytes.len());
        self.line.extend_from_slice(&bytes[..take.min(room)]);
        // A wrong start fails at once, however the bytes were split.
        let n = self.line.len().min(7);
        if self.line[..n] != b"HTTP/1."[..n] {
            return Err(HookHttpError::NotHttp);
        }
        if take >= room {
            return Err(HookHttpError::TooLong);
        }
        if newline.is_none() {
            return Ok(None);
        }
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        let status = parse_status_line(line)?;
        self.status = Some(status);
        Ok(self.status)
    }

    /// Whether a status allows (2xx).
    pub fn allows(status: u16) -> bool {
        (200..300).contains(&status)
    }
}

fn parse_status_line(line: &[u8]) -> Result<u16, HookHttpError> {
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(HookHttpError::NotHttp)?;
    let rest = match rest {
        [minor, b' ', rest @ ..] if minor.is_ascii_digit() => rest,
        _ => return Err(HookHttpError::NotHttp),
    };
    match rest {
        [a, b, c, tail @ ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (tail.is_empty() || tail[0] == b' ') =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(HookHttpError::BadStatus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HookUrl::parse("http://127.0.0.1:9000/auth?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("127.0.0.1", 9000, "/auth?x=1"));
        assert_eq!(u.host_header(), "127.0.0.1:9000");
        let u = HookUrl::parse("HTTP://[::1]/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("::1", 80, "/"));
        assert_eq!(u.host_header(), "[::1]");
        let u = HookUrl::parse("http://auth.local?q").unwrap();
        assert_eq!((u.host.as_str(), u.target.as_str()), ("auth.local", "/?q"));
        assert_eq!(HookUrl::parse("https://h/").unwrap_err(), HookUrlError::Scheme);
        assert_eq!(HookUrl::parse("h:80/").unwrap_err(), HookUrlError::Scheme);
        assert_eq!(HookUrl::parse("http:///x").unwrap_err(), HookUrlError::NoHost);
        assert!(matches!(HookUrl::parse("http://h:0/"), Err(HookUrlError::BadPort(_))));
        assert!(matches!(HookUrl::parse("http://h:99999/"), Err(HookUrlError::BadPort(_))));
        assert!(matches!(HookUrl::parse("http://[::1]x/"), Err(HookUrlError::BadPort(_))));
        assert_eq!(HookUrl::parse("http://h/a b").unwrap_err(), HookUrlError::BadCharacter);
        assert_eq!(HookUrl::parse("http://h/\r\nX: y").unwrap_err(), HookUrlError::BadCharacter);
    }

    /// Feeds `input` split at every byte boundary (and whole); each must give the same result.
    fn every_split(input: &[u8]) -> Result<Option<u16>, HookHttpError> {
        let mut whole = StatusParser::new();
        let expected = whole.feed(input);
        for at in 0..=input.len() {
            let mut p = StatusParser::new();
            let first = p.feed(&input[..at]);
            let got = match first {
                Err(e) => Err(e),
                Ok(Some(s)) => Ok(Some(s)),
                Ok(None) => p.feed(&input[at..]),
            };
            assert_eq!(got, expected, "split at {at} of {:?}", String::from_utf8_lossy(input));
        }
        // One byte at a time.
        let mut p = StatusParser::new();
        let mut last = Ok(None);
        for b in input {
            last = p.feed(std::slice::from_ref(b));
            if !matches!(last, Ok(None)) {
                break;
            }
        }
        assert_eq!(last, expected);
        expected
    }

    #[test]
    fn statuses_at_every_split() {
        assert_eq!(every_split(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), Ok(Some(200)));
        assert_eq!(every_split(b"HTTP/1.0 204 No Content\r\n"), Ok(Some(204)));
        assert_eq!(every_split(b"HTTP/1.1 401 Unauthorized\r\n"), Ok(Some(401)));
        assert_eq!(every_split(b"HTTP/1.1 500\r\n"), Ok(Some(500)));
        assert_eq!(every_split(b"HTTP/1.1 200 OK\n"), Ok(Some(200)));
        assert_eq!(every_split(b"HTTP/1.1 200 OK"), Ok(None));
        assert_eq!(every_split(b"HTTP/2 200\r\n"), Err(HookHttpError::NotHttp));
        assert_eq!(every_split(b"SSH-2.0-OpenSSH\r\n"), Err(HookHttpError::NotHttp));
        assert_eq!(every_split(b"HTTP/1.1 2000 OK\r\n"), Err(HookHttpError::BadStatus));
        assert_eq!(every_split(b"HTTP/1.1 2x0 OK\r\n"), Err(HookHttpError::BadStatus));
        assert_eq!(every_split(b"HTTP/1.1 20\r\n"), Err(HookHttpError::BadStatus));
        let long = [b"HTTP/1.1 200 ".as_slice(), &[b'a'; MAX_STATUS_LINE]].concat();
        assert_eq!(every_split(&long), Err(HookHttpError::TooLong));
        assert!(StatusParser::allows(200) && StatusParser::allows(299));
        assert!(!StatusParser::allows(199) && !StatusParser::allows(300));
        assert!(!StatusParser::allows(403));
    }

    #[test]
    fn post_request_bytes() {
        let url = HookUrl::parse("http://[::1]:8080/auth").unwrap();
        let req = post(&url, br#"{"user":"u"}"#);
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /auth HTTP/1.1\r\nHost: [::1]:8080\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 12\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"user\":\"u\"}"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_splits_agree(input in proptest::collection::vec(proptest::num::u8::ANY, 0..80), at in 0usize..80) {
            let at = at.min(input.len());
            let mut whole = StatusParser::new();
            let expected = whole.feed(&input);
            let mut p = StatusParser::new();
            let got = match p.feed(&input[..at]) {
                Ok(None) => p.feed(&input[at..]),
                other => other,
            };
            proptest::prop_assert_eq!(got, expected);
        }

        #[test]
        fn any_status_round_trips(code in 100u16..1000, reason in "[ -~]{0,40}") {
            let line = format!("HTTP/1.1 {code} {reason}\r\n");
            proptest::prop_assert_eq!(every_split(line.as_bytes()), Ok(Some(code)));
        }
    }
}
