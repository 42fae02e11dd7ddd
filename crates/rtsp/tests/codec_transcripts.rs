//! The codec against real traffic and generated messages: every message of the recorded
//! transcripts and TCP captures decodes (split at every byte, and byte by byte) and writes back
//! byte for byte; generated messages and frames round-trip; arbitrary bytes never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns; a panic is a failed test

use manifold_rtsp::codec::{
    decode, write_interleaved, write_request, write_response, Decoder, Item, Limits,
};
use manifold_rtsp::{ChannelId, Headers, Method, ParseError, Request, Response, StatusCode};
use manifold_testdata::Direction;
use proptest::prelude::*;

/// An item with its payload owned, or an error the decoder reported.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Request(Request),
    Response(Response),
    Frame(u8, Vec<u8>),
    Error(ParseError),
}

/// Feeds `chunks` in turn into a growing buffer, draining every complete item and skipping
/// recoverable errors; stops at an unrecoverable one. Returns the events, each with the exact
/// bytes it consumed, and the bytes left over (0 after an unrecoverable error).
fn run<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (Vec<(Event, Vec<u8>)>, usize) {
    let mut decoder = Decoder::default();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.feed(&buf) {
                Ok(None) => break,
                Ok(Some((item, consumed))) => {
                    let event = match item {
                        Item::Request(r) => Event::Request(r),
                        Item::Response(r) => Event::Response(r),
                        Item::Interleaved { channel, payload } => {
                            Event::Frame(channel.0, payload.to_vec())
                        }
                    };
                    events.push((event, buf.drain(..consumed).collect()));
                }
                Err(e) => match e.resume_at() {
                    Some(skip) => events.push((Event::Error(e), buf.drain(..skip).collect())),
                    None => {
                        events.push((Event::Error(e), Vec::new()));
                        return (events, 0);
                    }
                },
            }
        }
    }
    (events, buf.len())
}

/// Decodes `input` whole, split in two at `at`, and byte by byte, asserting the same result.
fn decode_split_at(input: &[u8], at: usize) -> (Vec<(Event, Vec<u8>)>, usize) {
    let whole = run([input]);
    let (a, b) = input.split_at(at.min(input.len()));
    assert_eq!(run([a, b]), whole, "split at byte {at}");
    assert_eq!(run(input.chunks(1)), whole, "byte by byte");
    whole
}

/// Decodes `input` whole, split at every byte, and byte by byte, asserting the same result.
fn decode_everywhere(input: &[u8]) -> (Vec<(Event, Vec<u8>)>, usize) {
    let whole = run([input]);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(run([a, b]), whole, "split at byte {at}");
    }
    assert_eq!(run(input.chunks(1)), whole, "byte by byte");
    whole
}

/// Writes a decoded event back to the wire.
fn write(event: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    match event {
        Event::Request(r) => write_request(r, &mut out),
        Event::Response(r) => write_response(r, &mut out),
        Event::Frame(channel, payload) => {
            write_interleaved(ChannelId(*channel), payload, &mut out).unwrap()
        }
        Event::Error(e) => panic!("no error expected: {e}"),
    }
    out
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    requests: usize,
    responses: usize,
    frames: usize,
}

/// Checks a decoded stream: nothing left over, no errors, each item written back equals the
/// bytes it was decoded from (the fixtures use CRLF and `Name: value`), and decodes to itself.
fn check_stream(events: &[(Event, Vec<u8>)], left: usize) -> Counts {
    assert_eq!(left, 0, "undecoded tail");
    let mut counts = Counts::default();
    for (event, raw) in events {
        match event {
            Event::Request(_) => counts.requests += 1,
            Event::Response(_) => counts.responses += 1,
            Event::Frame(..) => counts.frames += 1,
            Event::Error(e) => panic!("{e}"),
        }
        let written = write(event);
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(raw),
            "writes back byte for byte"
        );
        let (again, consumed) = decode(&written, &Limits::default()).unwrap().unwrap();
        assert_eq!(consumed, written.len());
        assert_eq!(run([&written[..]]).0[0].0, *event, "decode(write(x)) == x: {again:?}");
    }
    counts
}

fn transcript_streams(name: &str) -> (Vec<u8>, Vec<u8>) {
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    for segment in manifold_testdata::transcript(name) {
        match segment.direction {
            Direction::ClientToServer => c2s.extend_from_slice(&segment.bytes),
            Direction::ServerToClient => s2c.extend_from_slice(&segment.bytes),
        }
    }
    (c2s, s2c)
}

#[test]
fn ffmpeg_play_udp_transcript() {
    let (c2s, s2c) = transcript_streams("rtsp/ffmpeg-play-udp.txt");
    let (events, left) = decode_everywhere(&c2s);
    assert_eq!(check_stream(&events, left), Counts { requests: 5, ..Counts::default() });
    let methods: Vec<_> = events
        .iter()
        .map(|(e, _)| match e {
            Event::Request(r) => r.method,
            _ => unreachable!(),
        })
        .collect();
    use Method::*;
    assert_eq!(methods, [Options, Describe, Setup, Play, Teardown]);
    let (events, left) = decode_everywhere(&s2c);
    assert_eq!(check_stream(&events, left), Counts { responses: 5, ..Counts::default() });
    let Event::Response(describe) = &events[1].0 else { panic!() };
    assert_eq!(describe.body.len(), 529);
    assert!(describe.body.starts_with(b"v=0\r\n"));
}

#[test]
fn gst_play_udp_transcript() {
    let (c2s, s2c) = transcript_streams("rtsp/gst-play-udp.txt");
    let (events, left) = decode_everywhere(&c2s);
    assert_eq!(check_stream(&events, left), Counts { requests: 6, ..Counts::default() });
    let Event::Request(options) = &events[0].0 else { panic!() };
    assert_eq!(options.headers.get_all("user-agent").count(), 2, "repeated header kept");
    let (events, left) = decode_everywhere(&s2c);
    assert_eq!(check_stream(&events, left), Counts { responses: 6, ..Counts::default() });
}

#[test]
fn ffmpeg_publish_udp_transcript() {
    let (c2s, s2c) = transcript_streams("rtsp/ffmpeg-publish-udp.txt");
    let (events, left) = decode_everywhere(&c2s);
    assert_eq!(check_stream(&events, left), Counts { requests: 6, ..Counts::default() });
    let Event::Request(announce) = &events[1].0 else { panic!() };
    assert_eq!((announce.method, announce.body.len()), (Method::Announce, 509));
    let (events, left) = decode_everywhere(&s2c);
    assert_eq!(check_stream(&events, left), Counts { responses: 6, ..Counts::default() });
}

/// A capture's two directions, decoded whole, byte by byte and in chunks of several sizes,
/// and each item's bytes split at every byte (the split points of the whole stream, item by
/// item: splitting inside one item cannot change how the items before it decode).
fn check_capture(name: &str, server_port: u16) -> (Counts, Counts) {
    let client = manifold_testdata::tcp_client_port(name, server_port).unwrap();
    let mut counts = Vec::new();
    for (src, dst) in [(client, server_port), (server_port, client)] {
        let stream = manifold_testdata::tcp_stream(name, src, dst);
        let whole = run([&stream[..]]);
        assert_eq!(run(stream.chunks(1)), whole, "{name} byte by byte");
        for size in [2, 3, 7, 100, 1447, 4096] {
            assert_eq!(run(stream.chunks(size)), whole, "{name} in chunks of {size}");
        }
        for (event, raw) in &whole.0 {
            let (events, left) = decode_everywhere(raw);
            assert_eq!((events.len(), left), (1, 0));
            assert_eq!(&events[0].0, event);
        }
        counts.push(check_stream(&whole.0, whole.1));
    }
    let s2c = counts.pop().unwrap();
    (counts.pop().unwrap(), s2c)
}

#[test]
fn ffmpeg_play_tcp_capture() {
    let (c2s, s2c) = check_capture("rtsp/ffmpeg-play-tcp.pcap", 18554);
    assert_eq!(c2s, Counts { requests: 5, responses: 0, frames: 0 });
    // The capture ends before the TEARDOWN answer; RTP arrives on channel 0.
    assert_eq!(s2c, Counts { requests: 0, responses: 4, frames: 95 });
}

#[test]
fn gst_play_tcp_capture() {
    let (c2s, s2c) = check_capture("rtsp/gst-play-tcp.pcap", 18554);
    assert_eq!(c2s, Counts { requests: 5, responses: 0, frames: 0 });
    assert_eq!(s2c, Counts { requests: 0, responses: 5, frames: 32 });
}

#[test]
fn ffmpeg_publish_tcp_capture() {
    let (c2s, s2c) = check_capture("rtsp/ffmpeg-publish-tcp.pcap", 18555);
    // Two tracks: RTP on channels 0 and 2, RTCP on 1 and 3, between SETUP/RECORD and TEARDOWN.
    assert_eq!(c2s, Counts { requests: 6, responses: 0, frames: 253 });
    assert_eq!(s2c, Counts { requests: 0, responses: 6, frames: 0 });
}

// ---- generated messages ----

fn token() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}"
}

/// A header value as the decoder yields it: no CR/LF, no surrounding spaces or tabs.
/// A header value: free of control characters but tab (the decoder rejects them, RFC 2326
/// §15.1).
fn value() -> impl Strategy<Value = String> {
    "[^\x00-\x08\x0a-\x1f\x7f]{0,24}".prop_map(|v| v.trim_matches([' ', '\t']).to_owned())
}

/// A reason phrase: like a header value, but free of control characters (the decoder rejects
/// them in a start line).
fn reason() -> impl Strategy<Value = String> {
    "[^\x00-\x1f\x7f]{0,24}".prop_map(|v| v.trim_matches([' ', '\t']).to_owned())
}

/// Headers other than CSeq and Content-Length, which the generators place themselves.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((token(), value()), 0..12).prop_map(|hs| {
        hs.into_iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("cseq") && !n.eq_ignore_ascii_case("content-length")
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 0..300)]
}

/// Assembles headers with the CSeq at `cseq_at` and a Content-Length matching `body`.
fn assemble(
    mut list: Vec<(String, String)>,
    cseq: Option<(usize, String)>,
    body: &[u8],
) -> Headers {
    if let Some((at, value)) = cseq {
        list.insert(at % (list.len() + 1), ("CSeq".to_owned(), value));
    }
    let mut headers = Headers::new();
    for (n, v) in list {
        headers.append(n, v);
    }
    if !body.is_empty() {
        headers.append("Content-Length", body.len().to_string());
    }
    headers
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(Method::ALL.to_vec()),
        // No spaces, tabs or other control characters: the decoder rejects those in a URI.
        "[^\x00-\x20\x7f]{1,40}",
        headers(),
        any::<(usize, u32)>(),
        body(),
    )
        .prop_map(|(method, uri, list, (at, cseq), body)| {
            let headers = assemble(list, Some((at, cseq.to_string())), &body);
            Request { headers, body, ..Request::new(method, uri) }
        })
}

fn response() -> impl Strategy<Value = Response> {
    (100u16..=999, reason(), headers(), any::<Option<(usize, u32)>>(), body()).prop_map(
        |(code, reason, list, cseq, body)| {
            let cseq = cseq.map(|(at, n)| (at, n.to_string()));
            let headers = assemble(list, cseq, &body);
            Response { reason, headers, body, ..Response::new(StatusCode(code)) }
        },
    )
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        request().prop_map(Event::Request),
        response().prop_map(Event::Response),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..1500))
            .prop_map(|(c, p)| Event::Frame(c, p)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// decode(write(x)) == x for a stream of requests, responses and frames, with CRLF
    /// keep-alives between some of them, fed whole, split anywhere and byte by byte.
    #[test]
    fn written_streams_round_trip(
        items in prop::collection::vec((event(), 0usize..3), 1..6),
        split in any::<prop::sample::Index>(),
    ) {
        let mut wire = Vec::new();
        for (event, blank_lines) in &items {
            wire.extend(b"\r\n".repeat(*blank_lines));
            wire.extend(write(event));
        }
        let (decoded, left) = decode_split_at(&wire, split.index(wire.len() + 1));
        prop_assert_eq!(left, 0);
        let decoded: Vec<_> = decoded.into_iter().map(|(e, _)| e).collect();
        let expected: Vec<_> = items.into_iter().map(|(e, _)| e).collect();
        prop_assert_eq!(decoded, expected);
    }

    /// Arbitrary bytes: never a panic, and the same outcome however they are split.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        split in any::<prop::sample::Index>(),
    ) {
        decode_split_at(&bytes, split.index(bytes.len() + 1));
    }

    /// Valid messages with bytes overwritten: errors, not panics, consistently across splits.
    #[test]
    fn mutated_messages_never_panic(
        event in event(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        split in any::<prop::sample::Index>(),
    ) {
        let mut wire = write(&event);
        for (at, byte) in edits {
            let at = at.index(wire.len());
            wire[at] = byte;
        }
        decode_split_at(&wire, split.index(wire.len() + 1));
    }
}

#[test]
fn small_limits_never_panic() {
    let (c2s, _) = transcript_streams("rtsp/ffmpeg-publish-udp.txt");
    for max in 0..64 {
        let limits = Limits { max_head: max, max_headers: max / 8, max_body: max };
        let mut decoder = Decoder::new(limits);
        for end in 0..=c2s.len() {
            let _ = decoder.feed(&c2s[..end]);
        }
    }
}
