//! Inputs for the criterion micro-benchmarks in `benches/*.rs`: real messages and packets cut
//! out of the recorded captures in `testdata/rtsp/` (see `manifold-testdata`), so every bench
//! measures bytes a real ffmpeg or GStreamer peer sent.
//!
//! Everything here runs once, before measuring; a fixture that is missing or malformed panics,
//! as a broken fixture is a broken bench.
//!
//! Run with `cargo bench -p manifold-benches` (add `-- --save-baseline NAME` to keep a run);
//! `cargo test -p manifold-benches --benches` runs each bench once as a smoke test.
//! `results/medians.py` tabulates saved runs; figures and conditions are in `perf/RESULTS.md`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches over our own fixtures

use manifold_rtsp::codec::{self, Item, Limits};
use manifold_testdata::Direction;

/// The ffmpeg player's transcript against GStreamer's RTSP server, RTP over UDP.
pub const FFMPEG_PLAY: &str = "rtsp/ffmpeg-play-udp.txt";
/// The ffmpeg publisher's transcript (ANNOUNCE/SETUP/RECORD), RTP over UDP.
pub const FFMPEG_PUBLISH: &str = "rtsp/ffmpeg-publish-udp.txt";
/// A UDP session with RTP (H.264) and RTCP (SR + SDES, RR) from GStreamer's server to ffmpeg.
pub const MEDIA_PCAP: &str = "rtsp/ffmpeg-play-udp-media.pcap";
/// ffmpeg publishing H.264 + AAC interleaved (`$` frames) on its RTSP connection.
pub const PUBLISH_TCP_PCAP: &str = "rtsp/ffmpeg-publish-tcp.pcap";
/// The RTSP port of the server in [`PUBLISH_TCP_PCAP`].
pub const PUBLISH_TCP_PORT: u16 = 18555;

/// The first transcript segment sent in `direction` whose bytes start with `prefix`.
pub fn segment(transcript: &str, direction: Direction, prefix: &[u8]) -> Vec<u8> {
    manifold_testdata::transcript(transcript)
        .into_iter()
        .find(|s| s.direction == direction && s.bytes.starts_with(prefix))
        .unwrap_or_else(|| panic!("{transcript}: no segment starting with {prefix:?}"))
        .bytes
}

/// The segment that answers the first request starting with `request_prefix`: the next
/// server-to-client segment after it.
pub fn response_to(transcript: &str, request_prefix: &[u8]) -> Vec<u8> {
    let segments = manifold_testdata::transcript(transcript);
    let at = segments
        .iter()
        .position(|s| {
            s.direction == Direction::ClientToServer && s.bytes.starts_with(request_prefix)
        })
        .unwrap_or_else(|| panic!("{transcript}: no request starting with {request_prefix:?}"));
    segments[at + 1..]
        .iter()
        .find(|s| s.direction == Direction::ServerToClient)
        .unwrap_or_else(|| panic!("{transcript}: no response after {request_prefix:?}"))
        .bytes
        .clone()
}

/// The whole byte stream one side of a transcript wrote, segments joined in order.
pub fn stream(transcript: &str, direction: Direction) -> Vec<u8> {
    manifold_testdata::transcript(transcript)
        .into_iter()
        .filter(|s| s.direction == direction)
        .flat_map(|s| s.bytes)
        .collect()
}

/// The body of the first message in `stream` (decoded with the RTSP codec, so the body is
/// exactly `Content-Length` bytes) that `pick` accepts.
pub fn body_of(stream: &[u8], mut pick: impl FnMut(&Item<'_>) -> bool) -> Vec<u8> {
    let mut rest = stream;
    while let Some((item, consumed)) = codec::decode(rest, &Limits::default()).unwrap() {
        if pick(&item) {
            return match item {
                Item::Request(r) => r.body,
                Item::Response(r) => r.body,
                Item::Interleaved { payload, .. } => payload.to_vec(),
            };
        }
        rest = &rest[consumed..];
    }
    panic!("no message matched");
}

/// One interleaved frame of the ffmpeg publisher's TCP stream: the exact wire bytes (`$`,
/// channel, length, RTP packet) and where the RTP packet starts in them.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `$`, the channel, the 16-bit length, then the payload.
    pub wire: Vec<u8>,
}

impl Frame {
    /// The RTP packet inside the frame.
    pub fn payload(&self) -> &[u8] {
        &self.wire[4..]
    }
}

/// The first interleaved RTP frame the ffmpeg publisher sent whose payload is at least
/// `min_len` bytes and whose first payload byte after the fixed RTP header (no CSRCs, no
/// extension in these captures) has NAL unit type `nal_type` (28: FU-A).
pub fn publisher_frame(min_len: usize, nal_type: u8) -> Frame {
    let client = manifold_testdata::tcp_client_port(PUBLISH_TCP_PCAP, PUBLISH_TCP_PORT)
        .expect("publisher connection");
    let stream = manifold_testdata::tcp_stream(PUBLISH_TCP_PCAP, client, PUBLISH_TCP_PORT);
    let mut rest = &stream[..];
    while let Some((item, consumed)) = codec::decode(rest, &Limits::default()).unwrap() {
        if let Item::Interleaved { payload, .. } = item {
            let is_rtp = payload.len() > 12 && payload[0] >> 6 == 2 && payload[0] & 0x1f == 0;
            let is_rtcp = payload.len() > 1 && (200..=206).contains(&payload[1]);
            if is_rtp && !is_rtcp && payload.len() >= min_len && payload[12] & 0x1f == nal_type {
                let start = consumed - payload.len() - 4;
                return Frame { wire: rest[start..consumed].to_vec() };
            }
        }
        rest = &rest[consumed..];
    }
    panic!("{PUBLISH_TCP_PCAP}: no RTP frame of NAL type {nal_type} with >= {min_len} bytes");
}

/// The first UDP payload of [`MEDIA_PCAP`] that `pick` accepts.
pub fn media_datagram(mut pick: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    manifold_testdata::udp_payloads(MEDIA_PCAP)
        .into_iter()
        .find(|c| pick(&c.payload))
        .unwrap_or_else(|| panic!("{MEDIA_PCAP}: no datagram matched"))
        .payload
}

/// Whether a datagram looks like RTCP (version 2, packet type 200..=206).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 4 && datagram[0] >> 6 == 2 && (200..=206).contains(&datagram[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_found() {
        assert!(segment(FFMPEG_PLAY, Direction::ClientToServer, b"SETUP ").len() > 100);
        assert!(response_to(FFMPEG_PLAY, b"SETUP ").starts_with(b"RTSP/1.0 200"));
        let frame = publisher_frame(1400, 28);
        assert_eq!(frame.wire[0], b'$');
        assert_eq!(
            usize::from(u16::from_be_bytes([frame.wire[2], frame.wire[3]])),
            frame.payload().len()
        );
        assert!(is_rtcp(&media_datagram(|d| is_rtcp(d) && d[1] == 200)));
    }
}
