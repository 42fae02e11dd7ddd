//! Writes fuzz seed corpora from the recorded captures: `fuzz_seeds OUT_DIR`.
//!
//! * `OUT_DIR/rtsp_codec/`: every transcript segment and every reassembled TCP stream;
//! * `OUT_DIR/sdp/`: every SDP body found in them;
//! * `OUT_DIR/rtp/` and `OUT_DIR/rtcp/`: every UDP payload, split by RTCP packet type;
//! * `OUT_DIR/rtsp_headers/`: every header value in the transcripts;
//! * `OUT_DIR/rtmp/`: the RTMP transcripts' byte streams, whole (from the handshake) and from
//!   the first chunk on, cut to 16 KiB, and each client segment after the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a developer tool over our own fixtures

use std::path::Path;

fn main() {
    let out = std::env::args().nth(1).expect("usage: fuzz_seeds OUT_DIR");
    let out = Path::new(&out);
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut put = |target: &'static str, name: String, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        *counts.entry(target).or_default() += 1;
    };

    let mut streams: Vec<(String, Vec<u8>)> = Vec::new();
    for name in manifold_testdata::TRANSCRIPTS {
        let stem = stem(name);
        let mut both = Vec::new();
        for (i, seg) in manifold_testdata::transcript(name).iter().enumerate() {
            streams.push((format!("{stem}-{i}"), seg.bytes.clone()));
            let text = String::from_utf8_lossy(&seg.bytes);
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            for (j, line) in head.lines().skip(1).enumerate() {
                if let Some((_, value)) = line.split_once(':') {
                    put("rtsp_headers", format!("{stem}-{i}-{j}"), value.trim().as_bytes());
                }
            }
            both.extend_from_slice(&seg.bytes);
        }
        streams.push((format!("{stem}-all"), both));
    }
    for name in manifold_testdata::PCAPS {
        let stem = stem(name);
        for port in [18554, 18555] {
            if let Some(client) = manifold_testdata::tcp_client_port(name, port) {
                let c2s = manifold_testdata::tcp_stream(name, client, port);
                let s2c = manifold_testdata::tcp_stream(name, port, client);
                // Long streams are cut: libFuzzer's default max_len makes the tail useless.
                streams.push((format!("{stem}-c2s"), c2s[..c2s.len().min(16 << 10)].to_vec()));
                streams.push((format!("{stem}-s2c"), s2c[..s2c.len().min(16 << 10)].to_vec()));
            }
        }
        for (i, c) in manifold_testdata::udp_payloads(name).iter().enumerate() {
            let rtcp = c.payload.len() > 1 && (200..=204).contains(&c.payload[1]);
            put(if rtcp { "rtcp" } else { "rtp" }, format!("{stem}-{i}"), &c.payload);
        }
    }
    for (name, bytes) in &streams {
        put("rtsp_codec", name.clone(), bytes);
        if let Some(at) = find(bytes, b"\r\n\r\nv=0") {
            put("sdp", name.clone(), &bytes[at + 4..]);
        }
    }
    for name in manifold_testdata::RTMP_TRANSCRIPTS {
        use manifold_testdata::Direction;
        let stem = stem(name);
        // C0 + C1 + C2 (and S0 + S1 + S2) are 3073 bytes.
        const HANDSHAKE: usize = 3073;
        for (side, direction) in
            [("c2s", Direction::ClientToServer), ("s2c", Direction::ServerToClient)]
        {
            let stream = manifold_testdata::transcript_stream(name, direction);
            put("rtmp", format!("{stem}-{side}"), &stream[..stream.len().min(16 << 10)]);
            let chunks = &stream[HANDSHAKE.min(stream.len())..];
            put("rtmp", format!("{stem}-{side}-chunks"), &chunks[..chunks.len().min(16 << 10)]);
        }
        let mut at = 0;
        for (i, seg) in manifold_testdata::transcript(name).iter().enumerate() {
            if seg.direction == Direction::ClientToServer {
                if at >= HANDSHAKE {
                    put("rtmp", format!("{stem}-{i}"), &seg.bytes);
                }
                at += seg.bytes.len();
            }
        }
    }
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
}

fn stem(name: &str) -> &str {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.split('.').next().unwrap_or(file)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
