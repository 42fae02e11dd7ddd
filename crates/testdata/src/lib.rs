//! Test-only access to the recorded captures in the repository's `testdata/` folder.
//!
//! Two kinds of fixtures live there (see `testdata/rtsp/README.md` and `testdata/rtmp/README.md`):
//!
//! * transcripts (`*.txt`): the TCP byte stream of an RTSP or RTMP session, each segment under a
//!   `### C->S (N bytes)` or `### S->C (N bytes)` line, the bytes exact (CRLF kept);
//! * classic libpcap captures (`*.pcap`, link type Ethernet) of loopback traffic.
//!
//! This crate reads both with no dependencies. It is for tests, benches and fuzz seeds only:
//! it panics on a malformed fixture because a broken fixture is a broken test.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // fixtures are ours; a bad one should fail loudly

use std::path::PathBuf;

/// The repository's `testdata/` directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Reads a fixture by its path relative to `testdata/`, e.g. `rtsp/ffmpeg-play-udp.txt`.
pub fn read(relative: &str) -> Vec<u8> {
    let path = dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// Which way a transcript segment or TCP payload travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// One segment of a transcript: the exact bytes one side wrote.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Who sent it.
    pub direction: Direction,
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
}

/// The transcript fixtures (`rtsp/*.txt`), by name relative to `testdata/`.
pub const TRANSCRIPTS: &[&str] =
    &["rtsp/ffmpeg-play-udp.txt", "rtsp/gst-play-udp.txt", "rtsp/ffmpeg-publish-udp.txt"];

/// The RTMP transcript fixtures (`rtmp/*.txt`, same format as the RTSP ones): real publishers
/// talking to a real RTMP server, see `testdata/rtmp/README.md`.
pub const RTMP_TRANSCRIPTS: &[&str] = &["rtmp/ffmpeg-publish-h264-aac.txt"];

/// The bytes one side of a transcript sent, concatenated in order.
pub fn transcript_stream(relative: &str, direction: Direction) -> Vec<u8> {
    transcript(relative)
        .into_iter()
        .filter(|s| s.direction == direction)
        .flat_map(|s| s.bytes)
        .collect()
}

/// The pcap fixtures (`rtsp/*.pcap`), by name relative to `testdata/`.
pub const PCAPS: &[&str] = &[
    "rtsp/ffmpeg-play-tcp.pcap",
    "rtsp/ffmpeg-play-udp-media.pcap",
    "rtsp/ffmpeg-play-udp.pcap",
    "rtsp/ffmpeg-publish-tcp.pcap",
    "rtsp/ffmpeg-publish-udp.pcap",
    "rtsp/gst-play-tcp.pcap",
    "rtsp/gst-play-udp.pcap",
];

/// Parses a transcript fixture into its segments, in order.
pub fn transcript(relative: &str) -> Vec<Segment> {
    let raw = read(relative);
    let mut segments = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let line_end =
            raw[pos..].iter().position(|&b| b == b'\n').map_or(raw.len(), |i| pos + i + 1);
        let line = std::str::from_utf8(&raw[pos..line_end]).expect("marker line is UTF-8");
        let line = line.trim_end();
        if line.is_empty() {
            pos = line_end;
            continue;
        }
        let direction = if line.starts_with("### C->S") {
            Direction::ClientToServer
        } else if line.starts_with("### S->C") {
            Direction::ServerToClient
        } else {
            panic!("{relative}: expected a ### marker at byte {pos}, found {line:?}");
        };
        let open = line.find('(').expect("marker has a byte count");
        let count: usize = line[open + 1..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("marker byte count is a number");
        let start = line_end;
        let end = start + count;
        assert!(end <= raw.len(), "{relative}: segment at {start} runs past the end");
        segments.push(Segment { direction, bytes: raw[start..end].to_vec() });
        pos = end;
    }
    segments
}

/// A transport-layer payload captured in a pcap.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Index of the record in the capture (0-based).
    pub index: usize,
    /// Capture timestamp in microseconds since the Unix epoch.
    pub time_us: u64,
    /// `true` for TCP, `false` for UDP.
    pub tcp: bool,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// TCP sequence number of the first payload byte (0 for UDP).
    pub tcp_seq: u32,
    /// The transport payload (UDP datagram body or TCP segment data); never empty.
    pub payload: Vec<u8>,
}

/// Reads every IPv4 TCP/UDP record with a non-empty payload from a classic pcap fixture.
pub fn pcap(relative: &str) -> Vec<Captured> {
    let raw = read(relative);
    assert!(raw.len() >= 24, "{relative}: too short for a pcap header");
    let magic = u32::from_le_bytes(raw[0..4].try_into().unwrap());
    let (little, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        other => panic!("{relative}: not a classic pcap (magic {other:#x})"),
    };
    let u32_at = |b: &[u8], at: usize| {
        let a: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link_type = u32_at(&raw, 20);
    assert_eq!(link_type, 1, "{relative}: only Ethernet link type is supported");
    let mut out = Vec::new();
    let mut pos = 24;
    let mut index = 0;
    while pos + 16 <= raw.len() {
        let secs = u64::from(u32_at(&raw, pos));
        let frac = u64::from(u32_at(&raw, pos + 4));
        let incl = u32_at(&raw, pos + 8) as usize;
        let frame = &raw[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        let time_us = secs * 1_000_000 + if nanos { frac / 1000 } else { frac };
        if let Some(c) = transport(frame, index, time_us) {
            out.push(c);
        }
        index += 1;
    }
    out
}

fn transport(frame: &[u8], index: usize, time_us: u64) -> Option<Captured> {
    // Ethernet II, IPv4 only (the fixtures are loopback captures over 127.0.0.1).
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let proto = ip[9];
    let l4 = &ip[ihl..total];
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let (tcp, header_len, tcp_seq) = match proto {
        17 if l4.len() >= 8 => (false, 8, 0),
        6 if l4.len() >= 20 => {
            (true, usize::from(l4[12] >> 4) * 4, u32::from_be_bytes(l4[4..8].try_into().ok()?))
        }
        _ => return None,
    };
    let payload = l4.get(header_len..)?;
    if payload.is_empty() {
        return None;
    }
    Some(Captured {
        index,
        time_us,
        tcp,
        src_port: be16(l4, 0),
        dst_port: be16(l4, 2),
        tcp_seq,
        payload: payload.to_vec(),
    })
}

/// The TCP byte stream from `src_port` to `dst_port` in a pcap, reassembled in sequence order
/// (retransmitted bytes are taken once).
pub fn tcp_stream(relative: &str, src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut segs: Vec<Captured> = pcap(relative)
        .into_iter()
        .filter(|c| c.tcp && c.src_port == src_port && c.dst_port == dst_port)
        .collect();
    let Some(first) = segs.first().map(|c| c.tcp_seq) else { return Vec::new() };
    segs.sort_by_key(|c| c.tcp_seq.wrapping_sub(first));
    let mut out = Vec::new();
    for s in segs {
        let offset = s.tcp_seq.wrapping_sub(first) as usize;
        if offset + s.payload.len() <= out.len() {
            continue;
        }
        let skip = out.len().saturating_sub(offset);
        out.extend_from_slice(&s.payload[skip..]);
    }
    out
}

/// The UDP payloads of a pcap, in capture order.
pub fn udp_payloads(relative: &str) -> Vec<Captured> {
    pcap(relative).into_iter().filter(|c| !c.tcp).collect()
}

/// The (client port, server port) pair of the first TCP connection to `server_port` in a pcap.
pub fn tcp_client_port(relative: &str, server_port: u16) -> Option<u16> {
    pcap(relative).iter().find(|c| c.tcp && c.dst_port == server_port).map(|c| c.src_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_parse_into_alternating_segments() {
        for name in TRANSCRIPTS {
            let segs = transcript(name);
            assert!(segs.len() >= 4, "{name}");
            assert_eq!(segs[0].direction, Direction::ClientToServer);
            assert!(segs.iter().all(|s| !s.bytes.is_empty()));
        }
    }

    #[test]
    fn rtmp_transcripts_start_with_the_handshake() {
        for name in RTMP_TRANSCRIPTS {
            let c2s = transcript_stream(name, Direction::ClientToServer);
            let s2c = transcript_stream(name, Direction::ServerToClient);
            assert_eq!(c2s[0], 3, "{name}: C0");
            assert_eq!(s2c[0], 3, "{name}: S0");
            assert!(c2s.len() > 10_000, "{name}");
        }
    }

    #[test]
    fn pcaps_have_transport_payloads() {
        for name in PCAPS {
            assert!(!pcap(name).is_empty(), "{name}");
        }
        let media = udp_payloads("rtsp/ffmpeg-play-udp-media.pcap");
        assert!(media.len() > 50);
    }

    #[test]
    fn tcp_streams_reassemble() {
        let client = tcp_client_port("rtsp/ffmpeg-play-tcp.pcap", 18554).unwrap();
        let c2s = tcp_stream("rtsp/ffmpeg-play-tcp.pcap", client, 18554);
        assert!(c2s.starts_with(b"OPTIONS "));
        let s2c = tcp_stream("rtsp/ffmpeg-play-tcp.pcap", 18554, client);
        assert!(s2c.starts_with(b"RTSP/1.0 200"));
    }
}
