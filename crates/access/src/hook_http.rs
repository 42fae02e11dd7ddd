//! The auth hook's HTTP/1.1 exchange as bytes: [`post`] writes the request, [`StatusParser`]
//! reads the status line of the answer, fed whatever the socket returned. Only the status
//! matters (2xx allows), so the parser stops there and the caller closes the connection
//! (the request says `Connection: close`). A full HTTP parser (headers, bodies, chunking)
//! would be dead weight here, which is why this is not `httparse`.

use crate::hook::HookUrl;

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
