//! RTSP over HTTP, the QuickTime tunnel, sans-IO: a client opens a `GET` connection that
//! carries the server's RTSP responses and interleaved media, and `POST` connections whose
//! bodies carry its RTSP requests in base64; the two are joined by the `x-sessioncookie`
//! header. This module tells such a connection from a plain RTSP one by its first bytes,
//! parses the HTTP head, builds the server's answer to the `GET`, and decodes the `POST`
//! body's base64 across any split ([`Base64Stream`]). Joining the two connections is the
//! server's business. The client's half (its heads, its base64, the server's answer) is
//! [`client`].

use base64::Engine as _;

pub mod client;

/// The answer a `GET` gets before the tunnel carries RTSP: no length, no end.
pub const GET_RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\n\
    Server: manifold\r\n\
    Connection: close\r\n\
    Cache-Control: no-cache\r\n\
    Pragma: no-cache\r\n\
    Content-Type: application/x-rtsp-tunnelled\r\n\r\n";

/// The longest cookie accepted (clients send 16–32 characters).
pub const MAX_COOKIE: usize = 128;

/// Which half of a tunnel a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelSide {
    /// The server-to-client half: responses and media.
    Get,
    /// A client-to-server half: base64 requests.
    Post,
}

/// The HTTP head of a tunnel connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelHead {
    /// `GET` or `POST`.
    pub side: TunnelSide,
    /// The request target (the RTSP URL's path), e.g. `/demo`.
    pub path: String,
    /// The `x-sessioncookie` joining the two halves.
    pub cookie: String,
}

/// Why a connection's HTTP head cannot start a tunnel; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// The head is larger than the limit.
    #[error("HTTP head larger than {0} bytes")]
    TooLarge(usize),
    /// Not an HTTP/1.x request line, or a header line without a colon, or not UTF-8.
    #[error("malformed HTTP head")]
    Malformed,
    /// A method other than GET and POST.
    #[error("method {0:?} cannot open a tunnel")]
    Method(String),
    /// No usable `x-sessioncookie` (absent, empty, too long or with odd characters).
    #[error("no usable x-sessioncookie header")]
    NoCookie,
    /// The POST body is not base64.
    #[error("POST body is not base64")]
    Base64,
}

impl TunnelError {
    /// The status line to answer with before closing.
    pub fn status_line(&self) -> &'static str {
        match self {
            TunnelError::TooLarge(_) => "431 Request Header Fields Too Large",
            TunnelError::Method(_) => "405 Method Not Allowed",
            TunnelError::Malformed | TunnelError::NoCookie | TunnelError::Base64 => {
                "400 Bad Request"
            }
        }
    }

    /// The whole answer: the status line, `Connection: close`, no body.
    pub fn response(&self) -> Vec<u8> {
        format!(
            "HTTP/1.0 {}\r\nServer: manifold\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.status_line()
        )
        .into_bytes()
    }
}

/// Whether a connection that starts with `first` speaks HTTP (a tunnel) rather than RTSP:
/// `None` until four bytes are there. RTSP requests and `$` frames never start like HTTP's
/// `GET ` or `POST`.
pub fn is_http(first: &[u8]) -> Option<bool> {
    let head = first.get(..4)?;
    Some(head == b"GET " || head == b"POST")
}

/// Parses a tunnel's HTTP head from the start of `buf`: `Ok(None)` until the blank line that
/// ends it has arrived, else the head and its length (what follows is a POST's body).
pub fn parse_head(buf: &[u8], max: usize) -> Result<Option<(TunnelHead, usize)>, TunnelError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= max { Err(TunnelError::TooLarge(max)) } else { Ok(None) };
    };
    if end + 4 > max {
        return Err(TunnelError::TooLarge(max));
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| TunnelError::Malformed)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or(TunnelError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TunnelError::Malformed);
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Err(TunnelError::Malformed);
    }
    let side = match method {
        "GET" => TunnelSide::Get,
        "POST" => TunnelSide::Post,
        other => return Err(TunnelError::Method(other.to_owned())),
    };
    let mut cookie = None;
    for line in lines {
        if line.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err(TunnelError::Malformed);
        }
        let (name, value) = line.split_once(':').ok_or(TunnelError::Malformed)?;
        if name.trim().eq_ignore_ascii_case("x-sessioncookie") {
            cookie = Some(value.trim());
        }
    }
    let cookie = cookie
        .filter(|c| !c.is_empty() && c.len() <= MAX_COOKIE)
        .filter(|c| c.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(TunnelError::NoCookie)?;
    let path = target.split(['?', '#']).next().unwrap_or(target).to_owned();
    Ok(Some((TunnelHead { side, path, cookie: cookie.to_owned() }, end + 4)))
}

/// Decodes a POST body's base64 as it arrives, split anywhere. Whitespace is skipped; each
/// group of four characters is decoded as soon as it is complete, so a request is handed on
/// as soon as its last group has arrived. Clients encode each request on its own, with
/// padding, so a padded group ends one encoding and the next group starts another.
#[derive(Debug, Default, Clone)]
pub struct Base64Stream {
    group: [u8; 4],
    len: usize,
}

impl Base64Stream {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Base64Stream::default()
    }

    /// Decodes `input`, appending the bytes of every completed group to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), TunnelError> {
        for &b in input {
            if b.is_ascii_whitespace() {
                continue;
            }
            if !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) {
                return Err(TunnelError::Base64);
            }
            self.group[self.len] = b;
            self.len += 1;
            if self.len == 4 {
                self.len = 0;
                let mut bytes = [0u8; 3];
                let n = base64::engine::general_purpose::STANDARD
                    .decode_slice(self.group, &mut bytes)
                    .map_err(|_| TunnelError::Base64)?;
                out.extend_from_slice(&bytes[..n]);
            }
        }
        Ok(())
    }

    /// Characters of an incomplete group held back.
    pub fn pending(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn tells_http_from_rtsp() {
        assert_eq!(is_http(b"GE"), None);
        assert_eq!(is_http(b"GET /x HTTP/1.0"), Some(true));
        assert_eq!(is_http(b"POST /x HTTP/1.0"), Some(true));
        assert_eq!(is_http(b"OPTIONS * RTSP/1.0"), Some(false));
        assert_eq!(is_http(b"GET_PARAMETER rtsp://h/x RTSP/1.0"), Some(false));
        assert_eq!(is_http(b"$\x00\x00\x10"), Some(false));
    }

    #[test]
    fn parses_a_head_at_every_split() {
        let head = b"GET /demo?x=1 HTTP/1.0\r\nX-SessionCookie: abc123\r\nAccept: application/x-rtsp-tunnelled\r\n\r\nrest";
        let end = head.len() - 4;
        for cut in 0..end {
            assert_eq!(parse_head(&head[..cut], 8192), Ok(None), "cut at {cut}");
        }
        let (h, used) = parse_head(head, 8192).unwrap().unwrap();
        assert_eq!(used, end);
        assert_eq!(
            h,
            TunnelHead { side: TunnelSide::Get, path: "/demo".into(), cookie: "abc123".into() }
        );
    }

    #[test]
    fn refuses_heads_that_cannot_open_a_tunnel() {
        let cases: [(&[u8], TunnelError); 6] = [
            (b"GET /x HTTP/1.0\r\n\r\n", TunnelError::NoCookie),
            (b"GET /x HTTP/1.0\r\nx-sessioncookie: \r\n\r\n", TunnelError::NoCookie),
            (b"GET /x HTTP/1.0\r\nx-sessioncookie: a b\r\n\r\n", TunnelError::NoCookie),
            (b"PUT /x HTTP/1.0\r\nx-sessioncookie: a\r\n\r\n", TunnelError::Method("PUT".into())),
            (b"GET /x HTTP/2\r\nx-sessioncookie: a\r\n\r\n", TunnelError::Malformed),
            (b"GET /x HTTP/1.0\r\nno colon\r\n\r\n", TunnelError::Malformed),
        ];
        for (head, want) in cases {
            assert_eq!(parse_head(head, 8192), Err(want), "{}", String::from_utf8_lossy(head));
        }
        assert_eq!(parse_head(&[b'a'; 100], 64), Err(TunnelError::TooLarge(64)));
        assert!(TunnelError::NoCookie.response().starts_with(b"HTTP/1.0 400 "));
    }

    #[test]
    fn real_clients_heads() {
        for (name, side) in [
            ("ffmpeg-get.bin", TunnelSide::Get),
            ("ffmpeg-post.bin", TunnelSide::Post),
            ("gst-get.bin", TunnelSide::Get),
            ("gst-post.bin", TunnelSide::Post),
        ] {
            let path = format!("{}/../../testdata/rtsp-tunnel/{name}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).expect("recorded tunnel head");
            let (head, used) = parse_head(&bytes, 8192).unwrap().unwrap();
            assert_eq!((head.side, head.path.as_str()), (side, "/demo"), "{name}");
            if side == TunnelSide::Post {
                let mut decoded = Vec::new();
                Base64Stream::new().feed(&bytes[used..], &mut decoded).unwrap();
                assert!(decoded.starts_with(b"OPTIONS rtsp://127.0.0.1:18600/demo RTSP/1.0\r\n"));
                assert!(decoded.ends_with(b"\r\n\r\n"), "{name}");
            }
        }
    }

    #[test]
    fn decodes_base64_across_every_split_and_separate_encodings() {
        let a = b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let b = b"DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\n\r\n";
        let body = format!("{}\r\n{}", b64(a), b64(b));
        let want = [&a[..], &b[..]].concat();
        for cut in 0..body.len() {
            let mut d = Base64Stream::new();
            let mut out = Vec::new();
            d.feed(&body.as_bytes()[..cut], &mut out).unwrap();
            d.feed(&body.as_bytes()[cut..], &mut out).unwrap();
            assert_eq!(out, want, "cut at {cut}");
            assert_eq!(d.pending(), 0);
        }
        assert_eq!(Base64Stream::new().feed(b"ab*d", &mut Vec::new()), Err(TunnelError::Base64));
        assert_eq!(Base64Stream::new().feed(b"a=bc", &mut Vec::new()), Err(TunnelError::Base64));
    }

    proptest::proptest! {
        #[test]
        fn any_requests_survive_any_splits(
            messages in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 1..60), 1..5),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let body: String = messages.iter().map(|m| b64(m)).collect::<Vec<_>>().join("\r\n");
            let mut cuts = cuts;
            cuts.push(0);
            cuts.push(body.len());
            cuts.retain(|&c| c <= body.len());
            cuts.sort_unstable();
            let mut d = Base64Stream::new();
            let mut out = Vec::new();
            for w in cuts.windows(2) {
                d.feed(&body.as_bytes()[w[0]..w[1]], &mut out).unwrap();
            }
            proptest::prop_assert_eq!(out, messages.concat());
        }
    }
}
