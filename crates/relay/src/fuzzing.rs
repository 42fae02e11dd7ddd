//! Thin public doors to pure pieces of the relay, for the fuzz targets in `fuzz/` only (the
//! relay has no other public API for them; the real items stay `pub(crate)`). Each wrapper
//! takes and returns plain types and does nothing but call through.

use std::time::Instant;

use manifold_rtsp::header::ChannelRange;
use manifold_rtsp::ChannelId;
use manifold_sdp::Sdp;

use crate::plane::rtcp_feedback::{self, TrackFeedback};

/// The SDP readers get for an upstream's (see `registry::relay_sdp`).
pub fn relay_sdp(sdp: Sdp) -> String {
    crate::registry::relay_sdp(sdp)
}

/// The interleaved channel pair a SETUP gets, as `(rtp, rtcp)`: the one `asked` for, or the
/// lowest free even pair; `taken` holds the RTP channels of the session's other tracks (see
/// `control::interleaved_pair`).
pub fn interleaved_pair(asked: Option<(u8, u8)>, taken: &[u8]) -> Option<(u8, u8)> {
    let asked =
        asked.map(|(first, last)| ChannelRange { first: ChannelId(first), last: ChannelId(last) });
    crate::control::interleaved_pair(asked, taken).map(|c| (c.first.0, c.last.0))
}

/// The stream path of an RTSP URL (see `control::url_path`).
pub fn url_path(uri: &str) -> String {
    crate::control::url_path(uri)
}

/// `<stream URL>/trackID=N` split into the stream URL and N (see `control::split_track`).
pub fn split_track(uri: &str) -> Option<(&str, usize)> {
    crate::control::split_track(uri)
}

/// One reader's receiver-report feedback about one track (see `plane::rtcp_feedback`), and
/// the sender reports it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback(TrackFeedback, rtcp_feedback::SentReports);

impl Feedback {
    /// Folds the report blocks of one RTCP compound in; returns how many it held.
    pub fn absorb(&mut self, compound: &[u8], now: Instant) -> usize {
        rtcp_feedback::absorb(&mut self.0, compound, now, &self.1)
    }

    /// `compound` was sent to the reader at `now` (remembered if a sender report, read as
    /// the relay reads the ones it passes on).
    pub fn sent(&mut self, compound: &[u8], now: Instant) {
        let report =
            crate::plane::packet::Packet::rtcp(0, compound).and_then(|p| p.sender_report());
        if let Some(report) = report {
            self.1.sent(now, report);
        }
    }

    /// The latest round-trip time.
    pub fn rtt(&self) -> Option<std::time::Duration> {
        self.0.rtt
    }

    /// The longest round-trip time.
    pub fn max_rtt(&self) -> Option<std::time::Duration> {
        self.0.max_rtt
    }

    /// Report blocks absorbed so far.
    pub fn reports(&self) -> u64 {
        self.0.reports
    }

    /// Fraction lost in the latest report.
    pub fn fraction_lost(&self) -> f64 {
        self.0.fraction_lost
    }

    /// Highest fraction lost any report gave.
    pub fn max_fraction_lost(&self) -> f64 {
        self.0.max_fraction_lost
    }

    /// Cumulative packets lost, as the latest report says.
    pub fn cumulative_lost(&self) -> i64 {
        self.0.cumulative_lost
    }

    /// Jitter of the latest report, in clock ticks.
    pub fn jitter_ticks(&self) -> u32 {
        self.0.jitter_ticks
    }

    /// Highest jitter any report gave, in clock ticks.
    pub fn max_jitter_ticks(&self) -> u32 {
        self.0.max_jitter_ticks
    }

    /// When the latest report arrived.
    pub fn at(&self) -> Option<Instant> {
        self.0.at
    }
}

/// A request head the metrics endpoint accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The path, without any query.
    pub path: &'a str,
    /// The `Authorization` header's value, if any.
    pub authorization: Option<&'a str>,
}

/// The metrics endpoint's request-head parser (see `http::parse_request`), over the bytes
/// received so far: `Ok(None)` until the head is complete, or the status the endpoint refuses
/// the request with (400 malformed, 431 too large).
pub fn metrics_http_request(buf: &[u8]) -> Result<Option<MetricsRequest<'_>>, u16> {
    match crate::http::parse_request(buf) {
        Ok(r) => Ok(r.map(|r| MetricsRequest {
            method: r.method,
            path: r.path,
            authorization: r.authorization,
        })),
        Err(crate::http::HttpError::Malformed) => Err(400),
        Err(crate::http::HttpError::TooLarge) => Err(431),
    }
}

/// The largest request head the metrics endpoint reads.
pub const METRICS_MAX_REQUEST: usize = crate::http::MAX_REQUEST;
