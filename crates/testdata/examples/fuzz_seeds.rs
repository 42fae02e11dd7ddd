//! Writes fuzz seed corpora from the recorded captures: `fuzz_seeds OUT_DIR`.
//!
//! * `OUT_DIR/rtsp_codec/`: every transcript segment and every reassembled TCP stream;
//! * `OUT_DIR/sdp/`: every SDP body found in them;
//! * `OUT_DIR/rtp/` and `OUT_DIR/rtcp/`: every UDP payload, split by RTCP packet type;
//! * `OUT_DIR/rtsp_headers/`: every header value in the transcripts;
//! * `OUT_DIR/rtmp/`: the RTMP transcripts' byte streams, whole (from the handshake) and from
//!   the first chunk on, cut to 16 KiB, and each client segment after the handshake;
//! * `OUT_DIR/digest_verify/`: `Authorization` values (RFC 7616's examples, what ffmpeg and
//!   GStreamer send, Basic) and every `Authorization` value in the transcripts;
//! * `OUT_DIR/access_hook_http/`: HTTP status lines (the first byte is the split point);
//! * `OUT_DIR/rtsp_tunnel/`: the HTTP heads (and POST bodies) ffmpeg and GStreamer open an
//!   RTSP-over-HTTP tunnel with.
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
                if let Some((name, value)) = line.split_once(':') {
                    put("rtsp_headers", format!("{stem}-{i}-{j}"), value.trim().as_bytes());
                    if name.eq_ignore_ascii_case("Authorization") {
                        put("digest_verify", format!("{stem}-{i}-{j}"), value.trim().as_bytes());
                    }
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
    for (i, seed) in AUTHORIZATION_SEEDS.iter().enumerate() {
        put("digest_verify", format!("auth-{i}"), seed.as_bytes());
    }
    for (i, seed) in HOOK_ANSWER_SEEDS.iter().enumerate() {
        put("access_hook_http", format!("status-{i}"), seed);
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
    let tunnel = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rtsp-tunnel");
    for entry in std::fs::read_dir(&tunnel).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "bin") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            put("rtsp_tunnel", name, &std::fs::read(&path).unwrap());
        }
    }
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
}

/// Authorization values of each kind the relay meets.
const AUTHORIZATION_SEEDS: &[&str] = &[
    r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
    r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
    r#"Digest username="user", realm="manifold", nonce="AAAAAAAAA-gAAAABn4dWl4R5xH2l3p4_v2u7Ag", uri="rtsp://127.0.0.1:8554/x", response="2582560301b4c7da5485c95f22f95d13", algorithm="MD5", qop="auth", cnonce="bf631462b5d9dcfb", nc=00000001"#,
    r#"Digest username="user", realm="manifold", nonce="AAAAAAAAA-gAAAABn4dWl4R5xH2l3p4_v2u7Ag", uri="rtsp://127.0.0.1:8554/x", response="ea97b4e3a99a3f13afefa8972e34a8f4""#,
    r#"Digest username="488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec", realm="r", nonce="n", uri="/", response="0", algorithm=SHA-256-sess, userhash=true, qop=auth, nc=1, cnonce="c""#,
    "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "Basic aGFzaGVkOnRlc3Q=",
];

/// Hook answers: the first byte is where the fuzz target splits the rest.
const HOOK_ANSWER_SEEDS: &[&[u8]] = &[
    b"\x05HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"\x0cHTTP/1.0 204 No Content\r\n\r\n",
    b"\x00HTTP/1.1 401 Unauthorized\r\n\r\n",
    b"\x09HTTP/1.1 500\n",
];

fn stem(name: &str) -> &str {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.split('.').next().unwrap_or(file)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
