//! RTMPT: RTMP tunnelled over HTTP/1.x, sans-IO framing. The client POSTs everything:
//!
//! * `/fcs/ident2`: a probe some clients send first (answered 404, as Flash Media Server
//!   does when it has no identity to give);
//! * `/open/1`: opens a session; the answer's body is the session id and a newline;
//! * `/send/ID/SEQ`: the body is RTMP bytes from the client;
//! * `/idle/ID/SEQ`: a poll with nothing to send;
//! * `/close/ID/SEQ`: the end.
//!
//! Each answer to send, idle and close is `200` with `Content-Type: application/x-fcs` and a
//! body of one polling-interval byte (how long the client may wait before its next poll, in
//! units the client scales; 1 while data flow, growing while idle) followed by the RTMP bytes
//! the server has for the client. [`parse_request`] reads requests from a connection's bytes
//! retina-style (`Ok(None)`: need more bytes), bounded by [`Limits`]; [`Polling`] keeps the
//! interval; the answers are built by [`answer`], [`open_answer`] and [`refusal`]. Sessions,
//! their table and what the bytes mean (the RTMP session) are the server's.

/// The most header lines a request may have.
const MAX_HEADERS: usize = 32;
/// The longest session id accepted (the server's own are 16 hex digits).
pub const MAX_SESSION_ID: usize = 64;

/// Bounds on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request head (request line and headers).
    pub max_head: usize,
    /// The largest body (ffmpeg sends what it buffered between polls: a keyframe or so).
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 8 << 10, max_body: 4 << 20 }
    }
}

/// What a request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/fcs/ident2`.
    Ident,
    /// `/open/1`.
    Open,
    /// `/send/ID/SEQ`: the body is RTMP bytes.
    Send {
        /// The session.
        session: String,
        /// The client's request counter.
        seq: u64,
    },
    /// `/idle/ID/SEQ`.
    Idle {
        /// The session.
        session: String,
        /// The client's request counter.
        seq: u64,
    },
    /// `/close/ID/SEQ`.
    Close {
        /// The session.
        session: String,
        /// The client's request counter.
        seq: u64,
    },
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What it asks.
    pub command: Command,
    /// Its body.
    pub body: Vec<u8>,
    /// Whether the connection stays open after the answer (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
}

/// Why a request cannot be served; each maps to an HTTP status ([`RtmptError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtmptError {
    /// The head is larger than [`Limits::max_head`].
    #[error("HTTP head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// Not an HTTP/1.x request.
    #[error("malformed HTTP request: {0}")]
    Malformed(&'static str),
    /// A method other than POST.
    #[error("method {0:?}: RTMPT only POSTs")]
    Method(String),
    /// The body is larger than [`Limits::max_body`].
    #[error("body of {len} bytes exceeds {max}")]
    BodyTooLarge {
        /// Its announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A path that is none of RTMPT's.
    #[error("not an RTMPT path: {0:?}")]
    UnknownPath(String),
}

impl RtmptError {
    /// The status line to answer with before closing.
    pub fn status(&self) -> &'static str {
        match self {
            RtmptError::HeadTooLarge(_) => "431 Request Header Fields Too Large",
            RtmptError::Malformed(_) => "400 Bad Request",
            RtmptError::Method(_) => "405 Method Not Allowed",
            RtmptError::BodyTooLarge { .. } => "413 Content Too Large",
            RtmptError::UnknownPath(_) => "404 Not Found",
        }
    }
}

/// Reads one request from the front of `buf`: `Ok(None)` until its head and whole body have
/// arrived, else the request and the bytes it took. After an error the connection cannot be
/// read on (answer with [`refusal`] and close).
pub fn parse_request(buf: &[u8], limits: Limits) -> Result<Option<(Request, usize)>, RtmptError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return match buf.len() > limits.max_head {
                true => Err(RtmptError::HeadTooLarge(limits.max_head)),
                false => Ok(None),
            }
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RtmptError::Malformed("too many headers"))
        }
        Err(_) => return Err(RtmptError::Malformed("not an HTTP/1.x request")),
    };
    if head_len > limits.max_head {
        return Err(RtmptError::HeadTooLarge(limits.max_head));
    }
    let method = req.method.unwrap_or_default();
    if method != "POST" {
        return Err(RtmptError::Method(method.to_owned()));
    }
    let mut length = None;
    let mut connection = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(h.value)
                .map_err(|_| RtmptError::Malformed("Content-Length"))?;
            let len: u64 =
                text.trim().parse().map_err(|_| RtmptError::Malformed("Content-Length"))?;
            if length.is_some_and(|l| l != len) {
                return Err(RtmptError::Malformed("conflicting Content-Length"));
            }
            length = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // RTMPT clients send whole bodies with a length; chunked bodies are refused rather
            // than half-supported.
            return Err(RtmptError::Malformed("Transfer-Encoding"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection = std::str::from_utf8(h.value).ok().map(str::trim);
        }
    }
    let len = length.unwrap_or(0);
    let body_len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= limits.max_body)
        .ok_or(RtmptError::BodyTooLarge { len, max: limits.max_body })?;
    let command = command_of(req.path.unwrap_or_default())?;
    let keep_alive = match (req.version, connection) {
        (_, Some(c)) if c.eq_ignore_ascii_case("close") => false,
        (Some(0), Some(c)) => c.eq_ignore_ascii_case("keep-alive"),
        (Some(0), None) => false,
        _ => true,
    };
    let Some(body) = buf.get(head_len..head_len + body_len) else { return Ok(None) };
    Ok(Some((Request { command, body: body.to_vec(), keep_alive }, head_len + body_len)))
}

/// The command of a request path.
fn command_of(path: &str) -> Result<Command, RtmptError> {
    let unknown = || RtmptError::UnknownPath(path.chars().take(80).collect());
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let session = |id: &str, seq: &str| -> Result<(String, u64), RtmptError> {
        let ok = !id.is_empty()
            && id.len() <= MAX_SESSION_ID
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let seq = seq.parse().map_err(|_| unknown())?;
        if ok {
            Ok((id.to_owned(), seq))
        } else {
            Err(unknown())
        }
    };
    Ok(match parts[..] {
        ["fcs", "ident2"] => Command::Ident,
        ["open", "1"] => Command::Open,
        ["send", id, seq] => {
            let (session, seq) = session(id, seq)?;
            Command::Send { session, seq }
        }
        ["idle", id, seq] => {
            let (session, seq) = session(id, seq)?;
            Command::Idle { session, seq }
        }
        ["close", id, seq] => {
            let (session, seq) = session(id, seq)?;
            Command::Close { session, seq }
        }
        _ => return Err(unknown()),
    })
}

/// The polling-interval byte of a session's answers: 1 while the server has data for the
/// client, then doubling (roughly: 3, 5, 9, 17, 33) with each empty answer, as Flash Media
/// Server and Red5 pace idle clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Polling {
    empty: u8,
}

impl Polling {
    /// The byte for an answer carrying `data_len` bytes.
    pub fn next(&mut self, data_len: usize) -> u8 {
        if data_len > 0 {
            self.empty = 0;
            return 1;
        }
        self.empty = (self.empty + 1).min(5);
        (1u8 << self.empty) + 1
    }
}

fn head(status: &str, len: usize, keep_alive: bool) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {status}\r\nServer: manifold\r\nContent-Type: application/x-fcs\r\n\
         Cache-Control: no-cache\r\nConnection: {connection}\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

/// The answer to send, idle or close: the interval byte, then `data`.
pub fn answer(interval: u8, data: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut out = head("200 OK", 1 + data.len(), keep_alive);
    out.push(interval);
    out.extend_from_slice(data);
    out
}

/// The answer to `/open/1`: the session id and a newline.
pub fn open_answer(session: &str, keep_alive: bool) -> Vec<u8> {
    let mut out = head("200 OK", session.len() + 1, keep_alive);
    out.extend_from_slice(session.as_bytes());
    out.push(b'\n');
    out
}

/// An answer without a body (`status` such as `404 Not Found`); `keep_alive` false closes.
pub fn refusal(status: &str, keep_alive: bool) -> Vec<u8> {
    head(status, 0, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What ffmpeg 5.1 sends (`-f flv rtmpt://…`), recorded on loopback.
    const FFMPEG_OPEN: &[u8] =
        b"POST /open/1 HTTP/1.1\r\nAccept: */*\r\nConnection: keep-alive\r\n\
Host: 127.0.0.1:19361\r\nContent-Length: 1\r\nIcy-MetaData: 1\r\nCache-Control: no-cache\r\n\
Content-type: application/x-fcs\r\nUser-Agent: Shockwave Flash\r\n\r\n\x00";

    fn ffmpeg_send(body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "POST /send/abcdef0123/0 HTTP/1.1\r\nAccept: */*\r\nConnection: keep-alive\r\n\
             Host: 127.0.0.1:19361\r\nContent-Length: {}\r\nIcy-MetaData: 1\r\n\
             Cache-Control: no-cache\r\nContent-type: application/x-fcs\r\n\
             User-Agent: Shockwave Flash\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Parses every request of `bytes`, fed whole up to `split` and then the rest.
    fn parse_all(bytes: &[u8], split: usize) -> Result<Vec<Request>, RtmptError> {
        let mut out = Vec::new();
        let mut start = 0;
        for fed in [split.min(bytes.len()), bytes.len()] {
            while let Some((req, used)) = parse_request(&bytes[start..fed], Limits::default())? {
                out.push(req);
                start += used;
            }
        }
        assert_eq!(start, bytes.len());
        Ok(out)
    }

    #[test]
    fn ffmpeg_requests_at_every_split() {
        let body: Vec<u8> = (0..1537).map(|i| i as u8).collect();
        let mut stream = FFMPEG_OPEN.to_vec();
        stream.extend_from_slice(&ffmpeg_send(&body));
        stream.extend_from_slice(
            b"POST /idle/abcdef0123/1 HTTP/1.1\r\nContent-Length: 1\r\n\r\n\x00",
        );
        stream.extend_from_slice(b"POST /close/abcdef0123/2 HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        let expected = vec![
            Request { command: Command::Open, body: vec![0], keep_alive: true },
            Request {
                command: Command::Send { session: "abcdef0123".into(), seq: 0 },
                body,
                keep_alive: true,
            },
            Request {
                command: Command::Idle { session: "abcdef0123".into(), seq: 1 },
                body: vec![0],
                keep_alive: true,
            },
            Request {
                command: Command::Close { session: "abcdef0123".into(), seq: 2 },
                body: vec![],
                keep_alive: false,
            },
        ];
        for split in 0..=stream.len() {
            assert_eq!(parse_all(&stream, split).unwrap(), expected, "split at {split}");
        }
    }

    #[test]
    fn bad_requests_are_typed_with_their_status() {
        let limits = Limits { max_head: 64, max_body: 10 };
        let cases: [(&[u8], &str); 7] = [
            (b"GET /open/1 HTTP/1.1\r\n\r\n", "405"),
            (b"POST /open/2 HTTP/1.1\r\n\r\n", "404"),
            (b"POST /send/a%20b/1 HTTP/1.1\r\n\r\n", "404"),
            (b"POST /send/abc/x HTTP/1.1\r\n\r\n", "404"),
            (b"POST /send/abc/1 HTTP/1.1\r\nContent-Length: 11\r\n\r\n", "413"),
            (b"POST /open/1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
            (b"\x16\x03\x01 not http\r\n\r\n", "400"),
        ];
        for (bytes, status) in cases {
            let e = parse_request(bytes, limits).unwrap_err();
            assert!(e.status().starts_with(status), "{bytes:?}: {e}");
        }
        let long = [b"POST /open/1 HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 80]].concat();
        assert_eq!(parse_request(&long, limits), Err(RtmptError::HeadTooLarge(64)));
        // Chunked bodies are refused, not misread.
        let chunked =
            b"POST /open/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\x00\r\n0\r\n\r\n";
        assert!(matches!(parse_request(chunked, Limits::default()), Err(RtmptError::Malformed(_))));
    }

    #[test]
    fn answers_and_polling() {
        let a = answer(1, b"xyz", true);
        let text = String::from_utf8_lossy(&a);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Type: application/x-fcs\r\n"), "{text}");
        assert!(text.contains("Content-Length: 4\r\n"), "{text}");
        assert!(a.ends_with(b"\r\n\r\n\x01xyz"));
        assert!(open_answer("0123abcd", false)
            .ends_with(b"Connection: close\r\nContent-Length: 9\r\n\r\n0123abcd\n"));
        assert!(refusal("404 Not Found", true).starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        let mut p = Polling::default();
        let idle: Vec<u8> = (0..7).map(|_| p.next(0)).collect();
        assert_eq!(idle, [3, 5, 9, 17, 33, 33, 33]);
        assert_eq!(p.next(10), 1);
        assert_eq!(p.next(0), 3);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_never_overread(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
            split in 0usize..300,
        ) {
            let limits = Limits { max_head: 128, max_body: 64 };
            if let Ok(Some((_, used))) = parse_request(&bytes, limits) {
                prop_assert!(used <= bytes.len());
            }
            let cut = split.min(bytes.len());
            // A prefix never yields a request the whole does not (requests are never
            // read from bytes that are not there yet).
            if let Ok(Some((req, used))) = parse_request(&bytes[..cut], limits) {
                let whole = parse_request(&bytes, limits);
                prop_assert_eq!(whole, Ok(Some((req, used))));
            }
        }

        #[test]
        fn any_body_round_trips(body in prop::collection::vec(any::<u8>(), 0..2000), seq: u32) {
            let head = format!("POST /send/s1/{seq} HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
            let bytes = [head.as_bytes(), &body].concat();
            let (req, used) = parse_request(&bytes, Limits::default()).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(req.body, body);
            prop_assert_eq!(req.command, Command::Send { session: "s1".into(), seq: u64::from(seq) });
        }
    }
}
