//! The client's half of the QuickTime tunnel, sans-IO: the heads of the `GET` (which will carry
//! the server's responses and media) and of the `POST` (which carries the client's requests in
//! base64), each request's base64, and the server's answer to the `GET`, read as it arrives.
//!
//! The caller opens the two connections, writes the heads, reads the `GET`'s answer with
//! [`parse_response_head`] (what follows its blank line is already RTSP) and from then on
//! writes every request through [`encode_request`] on the `POST`. Randomness for the cookie
//! comes in from the caller like everything else.

use base64::Engine as _;

/// The content type both halves announce.
pub const CONTENT_TYPE: &str = "application/x-rtsp-tunnelled";

/// The `Content-Length` a `POST` announces: QuickTime's, which ffmpeg and GStreamer send too.
/// Servers read the body as a stream and ignore it; a client reopens the POST before sending
/// this many bytes (a session's requests are a few KiB).
pub const POST_CONTENT_LENGTH: usize = 32767;

/// The longest answer head to a `GET` accepted.
pub const MAX_RESPONSE_HEAD: usize = 8192;

/// What both heads of one tunnel name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelTarget<'a> {
    /// The request target: the RTSP URL's path (with its query), e.g. `/demo`.
    pub path: &'a str,
    /// The `Host` header: the URL's authority, `host[:port]`.
    pub host: &'a str,
    /// The `x-sessioncookie` joining the two halves ([`cookie_from`]).
    pub cookie: &'a str,
    /// The `User-Agent` header.
    pub user_agent: &'a str,
}

/// A cookie from 16 random bytes: 22 characters of URL-safe base64, printable and unique
/// enough that no other client's tunnel can be joined by guessing.
pub fn cookie_from(random: [u8; 16]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

/// The request target of an `rtsp://` or `rtsps://` URL: its path and query, `/` when it has
/// none (userinfo, host and fragment are not sent).
pub fn request_target(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => &rest[i..],
        _ => "/",
    }
}

/// Appends the `GET` half's head, as QuickTime, ffmpeg and GStreamer send it.
pub fn write_get_head(target: &TunnelTarget<'_>, out: &mut Vec<u8>) {
    let TunnelTarget { path, host, cookie, user_agent } = target;
    out.extend_from_slice(
        format!(
            "GET {path} HTTP/1.0\r\n\
             User-Agent: {user_agent}\r\n\
             Host: {host}\r\n\
             x-sessioncookie: {cookie}\r\n\
             Accept: {CONTENT_TYPE}\r\n\
             Pragma: no-cache\r\n\
             Cache-Control: no-cache\r\n\r\n"
        )
        .as_bytes(),
    );
}

/// Appends the `POST` half's head; the body that follows is the requests' base64.
pub fn write_post_head(target: &TunnelTarget<'_>, out: &mut Vec<u8>) {
    let TunnelTarget { path, host, cookie, user_agent } = target;
    out.extend_from_slice(
        format!(
            "POST {path} HTTP/1.0\r\n\
             User-Agent: {user_agent}\r\n\
             Host: {host}\r\n\
             x-sessioncookie: {cookie}\r\n\
             Accept: {CONTENT_TYPE}\r\n\
             Content-Type: {CONTENT_TYPE}\r\n\
             Pragma: no-cache\r\n\
             Cache-Control: no-cache\r\n\
             Content-Length: {POST_CONTENT_LENGTH}\r\n\
             Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n"
        )
        .as_bytes(),
    );
}

/// Appends the base64 of one whole request (or interleaved frame), padded, as clients encode
/// each message on its own so that a server may decode it as soon as it ends.
pub fn encode_request(message: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + base64::encoded_len(message.len(), true).unwrap_or(0), 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(message, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// The server's answer to the `GET`: its status line and what the client checks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The `Content-Type` header, when there is one.
    pub content_type: Option<String>,
}

/// Why a tunnel did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelOpenError {
    /// The answer's head is larger than the limit.
    #[error("HTTP answer head larger than {0} bytes")]
    TooLarge(usize),
    /// Not an `HTTP/1.x NNN reason` status line, a header without a colon, or not UTF-8. An
    /// RTSP server that does not tunnel may answer `RTSP/1.0 ...`, which lands here too.
    #[error("the answer to the tunnel's GET is not HTTP: {0:?}")]
    NotHttp(String),
    /// The server answered the `GET` with another status than 200.
    #[error("the server refused the tunnel: HTTP {status} {reason}")]
    Refused {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// Parses the answer to the `GET` from the start of `buf`: `Ok(None)` until its blank line has
/// arrived, else the head and its length (what follows is RTSP). A 200 opens the tunnel; any
/// other status is [`TunnelOpenError::Refused`].
pub fn parse_response_head(
    buf: &[u8],
    max: usize,
) -> Result<Option<(ResponseHead, usize)>, TunnelOpenError> {
    let first_line = |b: &[u8]| {
        let line = b.split(|&c| c == b'\r' || c == b'\n').next().unwrap_or(b);
        String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned()
    };
    // An answer that does not start like HTTP is refused at once, not waited on.
    let prefix = &buf[..buf.len().min(5)];
    if !b"HTTP/".starts_with(prefix) {
        return Err(TunnelOpenError::NotHttp(first_line(buf)));
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= max { Err(TunnelOpenError::TooLarge(max)) } else { Ok(None) };
    };
    if end + 4 > max {
        return Err(TunnelOpenError::TooLarge(max));
    }
    let not_http = || TunnelOpenError::NotHttp(first_line(buf));
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| not_http())?;
    let mut lines = text.split("\r\n");
    let line = lines.next().ok_or_else(not_http)?;
    let (version, rest) = line.split_once(' ').ok_or_else(not_http)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || code.len() != 3 {
        return Err(not_http());
    }
    let status: u16 = code.parse().map_err(|_| not_http())?;
    let mut content_type = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(not_http)?;
        if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    if status != 200 {
        return Err(TunnelOpenError::Refused { status, reason: reason.to_owned() });
    }
    Ok(Some((ResponseHead { status, reason: reason.to_owned(), content_type }, end + 4)))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_head, Base64Stream, TunnelSide, GET_RESPONSE};
    use super::*;

    fn target() -> TunnelTarget<'static> {
        TunnelTarget {
            path: "/live/demo?x=1",
            host: "127.0.0.1:8554",
            cookie: "AAECAwQFBgcICQoLDA0ODw",
            user_agent: "manifold-load",
        }
    }

    #[test]
    fn heads_open_a_tunnel_on_our_server_parser() {
        let mut get = Vec::new();
        write_get_head(&target(), &mut get);
        let (head, used) = parse_head(&get, 8192).unwrap().unwrap();
        assert_eq!(used, get.len());
        assert_eq!(head.side, TunnelSide::Get);
        assert_eq!(head.path, "/live/demo");
        assert_eq!(head.cookie, "AAECAwQFBgcICQoLDA0ODw");
        let text = String::from_utf8(get).unwrap();
        assert!(text.contains("\r\nAccept: application/x-rtsp-tunnelled\r\n"));
        assert!(text.contains("\r\nCache-Control: no-cache\r\n"));
        assert!(text.contains("\r\nPragma: no-cache\r\n"));

        let mut post = Vec::new();
        write_post_head(&target(), &mut post);
        let a = b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let b = b"DESCRIBE rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\n\r\n";
        encode_request(a, &mut post);
        encode_request(b, &mut post);
        let (head, used) = parse_head(&post, 8192).unwrap().unwrap();
        assert_eq!(head.side, TunnelSide::Post);
        assert!(String::from_utf8_lossy(&post[..used])
            .contains("\r\nContent-Type: application/x-rtsp-tunnelled\r\n"));
        let mut decoded = Vec::new();
        Base64Stream::new().feed(&post[used..], &mut decoded).unwrap();
        assert_eq!(decoded, [&a[..], &b[..]].concat());
    }

    #[test]
    fn cookies_are_printable_and_differ() {
        let a = cookie_from([0; 16]);
        let b = cookie_from([1; 16]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn request_targets() {
        assert_eq!(request_target("rtsp://u:p@h:1/a/b?q=1#http"), "/a/b?q=1");
        assert_eq!(request_target("rtsps://h"), "/");
        assert_eq!(request_target("rtsp://h?x"), "/");
        assert_eq!(request_target("rtsp://[::1]:8554/demo"), "/demo");
    }

    #[test]
    fn reads_our_answer_at_every_split() {
        let mut bytes = GET_RESPONSE.to_vec();
        bytes.extend_from_slice(b"RTSP/1.0 200 OK\r\n");
        let end = GET_RESPONSE.len();
        for cut in 0..end {
            assert_eq!(parse_response_head(&bytes[..cut], MAX_RESPONSE_HEAD), Ok(None), "{cut}");
        }
        let (head, used) = parse_response_head(&bytes, MAX_RESPONSE_HEAD).unwrap().unwrap();
        assert_eq!(used, end);
        assert_eq!(head.status, 200);
        assert_eq!(head.content_type.as_deref(), Some(CONTENT_TYPE));
    }

    #[test]
    fn refusals_are_typed() {
        let cases: [(&[u8], TunnelOpenError); 5] = [
            (
                b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                TunnelOpenError::Refused { status: 404, reason: "Not Found".into() },
            ),
            (
                b"HTTP/1.1 505 HTTP Version not supported\r\n\r\n",
                TunnelOpenError::Refused {
                    status: 505,
                    reason: "HTTP Version not supported".into(),
                },
            ),
            (b"RTSP/1.0 505 RTSP Version not supported\r\n\r\n", {
                TunnelOpenError::NotHttp("RTSP/1.0 505 RTSP Version not supported".into())
            }),
            (b"HTTP/1.0 2000 OK\r\n\r\n", TunnelOpenError::NotHttp("HTTP/1.0 2000 OK".into())),
            (
                b"HTTP/1.0 200 OK\r\nbroken\r\n\r\n",
                TunnelOpenError::NotHttp("HTTP/1.0 200 OK".into()),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(parse_response_head(bytes, 8192), Err(want));
        }
        assert_eq!(
            parse_response_head(b"HTTP/1.0 200 OK\r\n", 10),
            Err(TunnelOpenError::TooLarge(10))
        );
        // A refusal that is still arriving is not a refusal yet.
        assert_eq!(parse_response_head(b"HTTP/1.0 404", 8192), Ok(None));
        assert_eq!(parse_response_head(b"HTT", 8192), Ok(None));
    }

    proptest::proptest! {
        #[test]
        fn any_answer_parses_the_same_whole_or_cut(
            status in 100u16..600,
            reason in "[A-Za-z ]{0,20}",
            headers in proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,30}"), 0..5),
            cut in 0usize..400,
        ) {
            let mut bytes = format!("HTTP/1.1 {status} {reason}\r\n");
            for (n, v) in &headers {
                bytes.push_str(&format!("{n}: {v}\r\n"));
            }
            bytes.push_str("\r\n");
            let bytes = bytes.into_bytes();
            let whole = parse_response_head(&bytes, 8192);
            match &whole {
                Ok(Some((head, used))) => {
                    proptest::prop_assert_eq!(status, 200);
                    proptest::prop_assert_eq!(head.status, 200);
                    proptest::prop_assert_eq!(*used, bytes.len());
                }
                Err(TunnelOpenError::Refused { status: s, .. }) => proptest::prop_assert_eq!(*s, status),
                other => proptest::prop_assert!(false, "{:?}", other),
            }
            let cut = cut.min(bytes.len() - 1);
            proptest::prop_assert_eq!(parse_response_head(&bytes[..cut], 8192), Ok(None));
        }

        #[test]
        fn encoded_requests_decode_across_any_split(
            messages in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 1..80), 1..5),
            cut in 0usize..600,
        ) {
            let mut body = Vec::new();
            for m in &messages {
                encode_request(m, &mut body);
            }
            let cut = cut.min(body.len());
            let mut d = Base64Stream::new();
            let mut out = Vec::new();
            d.feed(&body[..cut], &mut out).unwrap();
            d.feed(&body[cut..], &mut out).unwrap();
            proptest::prop_assert_eq!(out, messages.concat());
        }
    }
}
