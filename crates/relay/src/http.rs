//! The metrics endpoint's HTTP/1.1, by hand: one GET per connection, answered with
//! `Content-Length` and `Connection: close`. Requests are bounded in size and time; anything
//! but GET is 405, an unknown path 404, a malformed or oversized request 400/431.
//!
//! The server runs on shard 0 and only reads the snapshots the shards publish (see
//! `metrics`), so a scrape never touches another shard's packet path.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::{spawn_local, timer};

use crate::error::ShardError;
use crate::metrics::Scrape;

/// Largest request head accepted.
pub(crate) const MAX_REQUEST: usize = 8 * 1024;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpRequest<'a> {
    /// The method, e.g. `GET`.
    pub(crate) method: &'a str,
    /// The path, without any query.
    pub(crate) path: &'a str,
    /// The `Authorization` header's value, if any.
    pub(crate) authorization: Option<&'a str>,
}

/// Why a request cannot be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    /// Not an HTTP/1.x request.
    #[error("malformed request")]
    Malformed,
    /// The head is larger than [`MAX_REQUEST`].
    #[error("request head larger than {MAX_REQUEST} bytes")]
    TooLarge,
}

/// Parses a request head from the bytes received so far: `Ok(None)` until the blank line
/// that ends it has arrived. The body (a GET has none) and the headers are ignored.
pub(crate) fn parse_request(buf: &[u8]) -> Result<Option<HttpRequest<'_>>, HttpError> {
    // A request line that is already wrong need not wait for the rest. It is refused whatever
    // follows it (an oversized head too), as it is when the line arrives first: the answer
    // must not depend on how the bytes are split. A line that does not fit the bound is
    // never checked on its own, for the same reason.
    let line_end = buf.windows(2).position(|w| w == b"\r\n");
    if let Some(line_end) = line_end.filter(|&e| e + 2 < MAX_REQUEST) {
        request_line(&buf[..line_end])?;
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() >= MAX_REQUEST {
            return Err(HttpError::TooLarge);
        }
        return Ok(None);
    };
    if end + 4 > MAX_REQUEST {
        return Err(HttpError::TooLarge);
    }
    let line_end = line_end.unwrap_or(end);
    let mut request = request_line(&buf[..line_end])?;
    let headers = std::str::from_utf8(&buf[line_end..end]).map_err(|_| HttpError::Malformed)?;
    request.authorization = headers.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| value.trim())
    });
    Ok(Some(request))
}

fn request_line(line: &[u8]) -> Result<HttpRequest<'_>, HttpError> {
    let line = std::str::from_utf8(line).map_err(|_| HttpError::Malformed)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed);
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return Err(HttpError::Malformed);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Ok(HttpRequest { method, path, authorization: None })
}

/// A complete response: status line, `Content-Type`, `Content-Length`, `Connection: close`.
pub(crate) fn response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nServer: manifold\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// What a request gets: status, content type, body.
pub(crate) fn route(request: Result<HttpRequest<'_>, HttpError>, scrape: &Scrape) -> Vec<u8> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match request {
        Err(HttpError::TooLarge) => {
            response("431 Request Header Fields Too Large", TEXT, b"request too large\n")
        }
        Err(HttpError::Malformed) => response("400 Bad Request", TEXT, b"bad request\n"),
        Ok(r) if r.method != "GET" => response("405 Method Not Allowed", TEXT, b"GET only\n"),
        Ok(r) => match (r.path, scrape.admits(r.authorization)) {
            ("/metrics" | "/api/v1/streams", None) => {
                let mut out = response("401 Unauthorized", TEXT, b"bearer token required\n");
                let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 2;
                out.splice(
                    at..at,
                    b"WWW-Authenticate: Bearer realm=\"manifold\"\r\n".iter().copied(),
                );
                out
            }
            ("/metrics", _) => response(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                scrape.prometheus().as_bytes(),
            ),
            ("/api/v1/streams", Some(authenticated)) => {
                response("200 OK", "application/json", scrape.json(authenticated).as_bytes())
            }
            _ => response("404 Not Found", TEXT, b"not found: try /metrics or /api/v1/streams\n"),
        },
    }
}

/// Binds the metrics listener (on the calling shard only: no `SO_REUSEPORT` sharing needed,
/// but glommio sets it anyway).
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, ShardError> {
    TcpListener::bind(addr).map_err(|e| ShardError::Metrics { addr, source: e.into() })
}

/// Serves metrics requests until the task is dropped.
pub(crate) async fn serve(scrape: Rc<Scrape>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                spawn_local(answer(scrape.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer(scrape: Rc<Scrape>, mut stream: TcpStream) {
    let peer = stream.peer_addr().ok();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = timer::timeout(REQUEST_TIMEOUT, async {
        loop {
            match parse_request(&buf) {
                Ok(Some(_)) | Err(_) => return Ok(true),
                Ok(None) => {}
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(false);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    match read {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::debug!(?peer, error = %e, "metrics request not read");
            return;
        }
    }
    let answer = route(parse_request(&buf).and_then(|r| r.ok_or(HttpError::Malformed)), &scrape);
    let written = timer::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.close().await?;
        Ok(())
    })
    .await;
    if let Err(e) = written {
        tracing::debug!(?peer, error = %e, "metrics answer not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get_at_every_split() {
        let req = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse_request(&req[..cut]), Ok(None), "cut at {cut}");
        }
        let want = HttpRequest { method: "GET", path: "/metrics", authorization: None };
        assert_eq!(parse_request(req), Ok(Some(want)));
        let req = b"GET /metrics HTTP/1.1\r\nauthorization:  Bearer t0k \r\n\r\n";
        let got = parse_request(req).unwrap().unwrap();
        assert_eq!(got.authorization, Some("Bearer t0k"));
    }

    fn scrape(token: Option<&str>) -> Scrape {
        let bounds = crate::limits::Bounds {
            connections: 1,
            connections_per_ip: 1,
            sessions: 1,
            sessions_per_ip: 1,
            limit_loopback: false,
        };
        Scrape {
            board: std::sync::Arc::new(crate::metrics::Board::new(1)),
            limits: std::sync::Arc::new(crate::limits::Limits::new(bounds)),
            token: token.map(|t| manifold_access::BearerToken::new(t).unwrap()),
        }
    }

    #[test]
    fn a_token_guards_both_endpoints() {
        let get = |path, authorization| {
            let r =
                route(Ok(HttpRequest { method: "GET", path, authorization }), &scrape(Some("s3")));
            String::from_utf8(r).unwrap()
        };
        for path in ["/metrics", "/api/v1/streams"] {
            let refused = get(path, None);
            assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
            assert!(refused.contains("\r\nWWW-Authenticate: Bearer realm=\"manifold\"\r\n"));
            assert!(get(path, Some("Bearer nope")).starts_with("HTTP/1.1 401 "));
            assert!(get(path, Some("Bearer s3")).starts_with("HTTP/1.1 200 "), "{path}");
        }
        let open = route(
            Ok(HttpRequest { method: "GET", path: "/metrics", authorization: None }),
            &scrape(None),
        );
        assert!(open.starts_with(b"HTTP/1.1 200 "), "no token: open");
    }

    #[test]
    fn refuses_malformed_and_oversized_requests() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Err(HttpError::Malformed), "{bad:?}");
        }
        assert_eq!(parse_request(b"BAD LINE\r\n"), Err(HttpError::Malformed), "early");
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST, b'a');
        assert_eq!(parse_request(&big), Err(HttpError::TooLarge));
    }

    /// What the connection loop answers: the first result over the growing buffer that is
    /// not "need more", fed `step` bytes at a time.
    fn answer_when_fed(req: &[u8], step: usize) -> Result<Option<HttpRequest<'_>>, HttpError> {
        let mut end = 0;
        loop {
            end = (end + step).min(req.len());
            match parse_request(&req[..end]) {
                Ok(None) if end < req.len() => {}
                answer => return answer,
            }
        }
    }

    #[test]
    fn an_oversized_head_gets_the_same_answer_however_it_arrives() {
        // Found by the metrics_http fuzz target: a wrong request line followed by a head over
        // the bound was a 431 when read at once but a 400 when the line came first.
        let mut bad_line = b"GET /metrics HTTP/2.1\r\nCookie: ".to_vec();
        bad_line.resize(MAX_REQUEST, b'c');
        bad_line.extend_from_slice(b"\r\n\r\n");
        // A request line longer than the bound, wrong or not, is too large however it arrives.
        let mut long_line = b"GET /".to_vec();
        long_line.resize(MAX_REQUEST + 10, b'a');
        long_line.extend_from_slice(b" HTTP/2\r\n\r\n");
        // A line that is fine, then too many header bytes.
        let mut long_head = b"GET /metrics HTTP/1.1\r\nCookie: ".to_vec();
        long_head.resize(MAX_REQUEST - 1, b'c');
        long_head.extend_from_slice(b"\r\n\r\n");
        for (req, want) in [
            (&bad_line, HttpError::Malformed),
            (&long_line, HttpError::TooLarge),
            (&long_head, HttpError::TooLarge),
        ] {
            for step in [1, 7, 1024, req.len()] {
                assert_eq!(answer_when_fed(req, step), Err(want), "{step} bytes at a time");
            }
        }
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = response("200 OK", "text/plain", b"hello");
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("\r\nContent-Length: 5\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nhello"));
    }
}
