//! What the test servers of this crate's integration tests share: reading RTSP requests from a
//! blocking connection, and the OPTIONS and DESCRIBE answers. Each test file is its own crate and uses what it needs.

use std::io::Read;

use manifold_rtsp::codec::{Decoder, Item};
use manifold_rtsp::{Request, Response};

/// The methods the test servers answer, for `Public`.
pub(crate) const PUBLIC: &str = "DESCRIBE, SETUP, PLAY, TEARDOWN";

/// Fills `resp` as the answer to DESCRIBE `req` with `sdp` (its base the request's URL).
pub(crate) fn describe(resp: &mut Response, req: &Request, sdp: &str) {
    resp.headers.append("Content-Base", format!("{}/", req.uri));
    resp.headers.append("Content-Type", "application/sdp");
    resp.body = sdp.as_bytes().to_vec();
}

/// The requests arriving on one connection, decoded as bytes come.
#[derive(Default)]
pub(crate) struct Requests {
    buf: Vec<u8>,
    decoder: Decoder,
}

impl Requests {
    /// The next request from `conn`, reading as needed; `None` once the peer closed or failed,
    /// or sent bytes that are not RTSP. Responses and interleaved frames are skipped.
    pub(crate) fn next(&mut self, conn: &mut impl Read) -> Option<Request> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.decoder.feed(&self.buf) {
                Ok(Some((Item::Request(r), used))) => {
                    self.buf.drain(..used);
                    return Some(r);
                }
                Ok(Some((_, used))) => {
                    self.buf.drain(..used);
                    continue;
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
