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
//!   RTSP-over-HTTP tunnel with;
//! * `OUT_DIR/rtsp_tunnel_client/`: answers to a tunnel's GET (ours, GStreamer's, refusals,
//!   an RTSP server's answer to HTTP), each followed by the first RTSP bytes;
//! * `OUT_DIR/rtsp_server_session/`: each client's side of the transcripts and of the TCP
//!   captures (cut to 16 KiB), behind a script of runtime answers and time steps (an empty
//!   one, and a few that expire sessions, refuse requests or drop connections);
//! * `OUT_DIR/relay_sdp/`: every SDP body, as for `sdp`;
//! * `OUT_DIR/relay_request_parts/`: every Request-URI in the transcripts, and interleaved
//!   channel choices (flag, asked pair, taken channels);
//! * `OUT_DIR/rtcp_feedback/`: every RTCP payload, as for `rtcp`;
//! * `OUT_DIR/metrics_http/`: metrics scrapes as Prometheus, curl and a browser send them, and
//!   one with a head just over the endpoint's size bound.
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
            if seg.direction == manifold_testdata::Direction::ClientToServer {
                if let Some(uri) = head.split(' ').nth(1) {
                    put("relay_request_parts", format!("{stem}-{i}"), uri.as_bytes());
                }
            }
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
        let client = manifold_testdata::transcript_stream(
            name,
            manifold_testdata::Direction::ClientToServer,
        );
        for (i, script) in SESSION_SCRIPTS.iter().enumerate() {
            put("rtsp_server_session", format!("{stem}-{i}"), &scripted(script, &client));
        }
    }
    for name in manifold_testdata::PCAPS {
        let stem = stem(name);
        for port in [18554, 18555] {
            if let Some(client) = manifold_testdata::tcp_client_port(name, port) {
                let c2s = manifold_testdata::tcp_stream(name, client, port);
                let s2c = manifold_testdata::tcp_stream(name, port, client);
                // Long streams are cut: libFuzzer's default max_len makes the tail useless.
                streams.push((format!("{stem}-c2s"), c2s[..c2s.len().min(16 << 10)].to_vec()));
                let cut = &c2s[..c2s.len().min(16 << 10)];
                put("rtsp_server_session", format!("{stem}-c2s"), &scripted(&[], cut));
                for (side, stream) in [("c2s", &c2s), ("s2c", &s2c)] {
                    let rtcp = interleaved_frames(stream)
                        .into_iter()
                        .filter(|(channel, payload)| channel % 2 == 1 && is_rtcp(payload));
                    for (i, (_, payload)) in rtcp.take(16).enumerate() {
                        put("rtcp_feedback", format!("{stem}-{side}-{i}"), payload);
                    }
                }
                streams.push((format!("{stem}-s2c"), s2c[..s2c.len().min(16 << 10)].to_vec()));
            }
        }
        for (i, c) in manifold_testdata::udp_payloads(name).iter().enumerate() {
            let rtcp = is_rtcp(&c.payload);
            put(if rtcp { "rtcp" } else { "rtp" }, format!("{stem}-{i}"), &c.payload);
            if rtcp {
                put("rtcp_feedback", format!("{stem}-{i}"), &c.payload);
            }
        }
    }
    for (i, seed) in AUTHORIZATION_SEEDS.iter().enumerate() {
        put("digest_verify", format!("auth-{i}"), seed.as_bytes());
    }
    for (i, seed) in HOOK_ANSWER_SEEDS.iter().enumerate() {
        put("access_hook_http", format!("status-{i}"), seed);
    }
    for (i, seed) in REPORT_SEEDS.iter().enumerate() {
        put("rtcp_feedback", format!("report-{i}"), seed);
    }
    for (i, seed) in METRICS_REQUEST_SEEDS.iter().enumerate() {
        put("metrics_http", format!("get-{i}"), seed);
    }
    // A head around the endpoint's 8 KiB bound (which also lifts libFuzzer's length limit).
    let mut big = b"GET /metrics HTTP/1.1\r\nCookie: ".to_vec();
    big.resize(8190, b'c');
    big.extend_from_slice(b"\r\n\r\n");
    put("metrics_http", "big".into(), &big);
    for (i, seed) in CHANNEL_SEEDS.iter().enumerate() {
        put("relay_request_parts", format!("channels-{i}"), seed);
    }
    for (name, bytes) in &streams {
        put("rtsp_codec", name.clone(), bytes);
        if let Some(at) = find(bytes, b"\r\n\r\nv=0") {
            put("sdp", name.clone(), &bytes[at + 4..]);
            put("relay_sdp", name.clone(), &bytes[at + 4..]);
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
            if direction == Direction::ServerToClient {
                // What a publishing client reads: a server's answers.
                put("rtmp_client", stem.to_string(), &stream[..stream.len().min(16 << 10)]);
            }
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
    for (i, seed) in RTMPT_SEEDS.iter().enumerate() {
        put("rtmpt", format!("request-{i}"), seed);
    }
    for (i, seed) in SEI_SEEDS.iter().enumerate() {
        put("rtmp_sei", format!("sei-{i}"), seed);
    }
    let tunnel = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rtsp-tunnel");
    for entry in std::fs::read_dir(&tunnel).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "bin") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            put("rtsp_tunnel", name, &std::fs::read(&path).unwrap());
        }
    }
    for (name, answer) in [
        ("manifold", "HTTP/1.0 200 OK\r\nServer: manifold\r\nConnection: close\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n"),
        ("gstreamer", "HTTP/1.0 200 OK\r\nServer: GStreamer RTSP Server\r\nConnection: close\r\nCache-Control: no-store\r\nPragma: no-cache\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n"),
        ("not-found", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        ("rtsp-505", "RTSP/1.0 505 RTSP Version not supported\r\nCSeq: 0\r\n\r\n"),
    ] {
        let bytes = format!("{answer}RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n");
        put("rtsp_tunnel_client", name.to_owned(), bytes.as_bytes());
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

/// RTMPT requests as ffmpeg sends them.
const RTMPT_SEEDS: &[&[u8]] = &[
    b"POST /open/1 HTTP/1.1\r\nAccept: */*\r\nConnection: keep-alive\r\nHost: 127.0.0.1:19361\r\nContent-Length: 1\r\nIcy-MetaData: 1\r\nCache-Control: no-cache\r\nContent-type: application/x-fcs\r\nUser-Agent: Shockwave Flash\r\n\r\n\x00",
    b"POST /send/0123456789abcdef/3 HTTP/1.1\r\nContent-Length: 5\r\n\r\n\x03\x00\x00\x00\x00POST /idle/0123456789abcdef/4 HTTP/1.1\r\nContent-Length: 1\r\n\r\n\x00",
    b"POST /close/0123456789abcdef/5 HTTP/1.0\r\nConnection: close\r\nContent-Length: 0\r\n\r\nPOST /fcs/ident2 HTTP/1.1\r\nContent-Length: 1\r\n\r\n\x00",
];

/// SEI NAL units: manifold's capture-time SEI (UUID ab63863a-…, time 0x0000_0001_0000_0000
/// with its emulation prevention bytes), and an x264-style user_data_unregistered before it.
const SEI_SEEDS: &[&[u8]] = &[
    b"\x06\x05\x18\xab\x63\x86\x3a\xbb\xbc\x4d\x28\x91\x73\xd6\x2a\x6e\x07\x94\x2c\x00\x00\x03\x00\x01\x00\x00\x03\x00\x00\x80",
    b"\x06\x05\x14\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdcx264\x05\x18\xab\x63\x86\x3a\xbb\xbc\x4d\x28\x91\x73\xd6\x2a\x6e\x07\x94\x2c\x12\x34\x56\x78\x9a\xbc\xde\xf0\x80",
];

/// Hook answers: the first byte is where the fuzz target splits the rest.
const HOOK_ANSWER_SEEDS: &[&[u8]] = &[
    b"\x05HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"\x0cHTTP/1.0 204 No Content\r\n\r\n",
    b"\x00HTTP/1.1 401 Unauthorized\r\n\r\n",
    b"\x09HTTP/1.1 500\n",
];

/// Scripts for `rtsp_server_session`, three bytes per request: the answer (an index into the
/// target's status list; 0x80 leaves the transport out of a SETUP answer), seconds passing
/// before the request (below 128), and an extra step (5 client media, 6 a connection drops,
/// 7 timers fire before the answer).
const SESSION_SCRIPTS: &[&[u8]] = &[
    &[],
    &[0, 70, 0],                    // every request after the session expired
    &[0, 0, 0, 0, 40, 5, 0, 40, 5], // kept alive by media between requests
    &[0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 7, 0, 0], // a 404 and a 454 from the runtime among 200s
    &[0, 0, 0, 0, 0, 6],            // the connection drops
    &[0, 0, 0, 0, 66, 7],           // the session expires while the answer is made
    &[0x84, 1, 0, 0x84, 1, 0, 9, 1, 0], // SETUP answered without a transport, a 500
];

/// `[script length][script][stream]`, the `rtsp_server_session` input.
fn scripted(script: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::try_from(script.len()).unwrap()];
    out.extend_from_slice(script);
    out.extend_from_slice(stream);
    out
}

/// RTCP with report blocks (the recorded RTCP has none): an RR of one block (a quarter lost)
/// with an SDES, as a player sends it; an SR of two blocks (all lost, jitter at its maximum;
/// nothing lost).
const REPORT_SEEDS: &[&[u8]] = &[
    b"\x81\xc9\x00\x07\x11\x22\x33\x44\xec\x3e\xc3\x5d\x40\x00\x00\x0a\x00\x01\x6e\x71\x00\x00\x03\x84\xc3\x5d\x1c\x7d\x00\x01\x00\x00\x81\xca\x00\x03\x11\x22\x33\x44\x01\x02\x61\x62\x00\x00\x00\x00",
    b"\x82\xc8\x00\x12\xec\x3e\xc3\x5d\xee\xac\xd1\x5a\x06\xea\x85\x44\x1c\x7d\x50\x22\x00\x00\x00\xd1\x00\x00\x6e\x71\x11\x22\x33\x44\xff\x7f\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x55\x66\x77\x88\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
];

/// Metrics scrapes: Prometheus, curl with a token, a browser, HTTP/1.0 with a query.
const METRICS_REQUEST_SEEDS: &[&[u8]] = &[
    b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUser-Agent: Prometheus/2.53.0\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
    b"GET /api/v1/streams HTTP/1.1\r\nHost: localhost:9090\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nAuthorization: Bearer s3cret\r\n\r\n",
    b"GET /favicon.ico HTTP/1.1\r\nHost: localhost:9090\r\nConnection: keep-alive\r\nAccept: image/avif,image/webp,*/*\r\n\r\n",
    b"GET /metrics?name[]=x#top HTTP/1.0\r\n\r\n",
    b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
];

/// Interleaved channel choices: `[flag (1: a pair is asked for), first, last, taken...]`.
const CHANNEL_SEEDS: &[&[u8]] =
    &[&[1, 0, 1], &[0, 0, 0, 0, 2], &[1, 2, 3, 2], &[1, 254, 255], &[0, 0, 0]];

/// Whether a payload is RTCP rather than RTP (the packet type byte, RFC 5761 §4).
fn is_rtcp(payload: &[u8]) -> bool {
    payload.len() > 1 && (200..=204).contains(&payload[1])
}

/// The `$` frames of an RTSP-over-TCP stream, stepping over the RTSP messages between them.
fn interleaved_frames(stream: &[u8]) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        if stream[at] == b'$' {
            let Some(&[_, channel, hi, lo]) = stream.get(at..at + 4) else { break };
            let end = at + 4 + usize::from(u16::from_be_bytes([hi, lo]));
            let Some(payload) = stream.get(at + 4..end) else { break };
            frames.push((channel, payload));
            at = end;
        } else {
            let Some(head) = find(&stream[at..], b"\r\n\r\n") else { break };
            let text = String::from_utf8_lossy(&stream[at..at + head]);
            let body = text
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            at += head + 4 + body;
        }
    }
    frames
}

fn stem(name: &str) -> &str {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.split('.').next().unwrap_or(file)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
