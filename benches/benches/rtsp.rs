//! RTSP codec micro-benchmarks: decoding the SETUP and PLAY requests ffmpeg sent, the 200
//! response GStreamer's server gave to that SETUP, and one interleaved `$` frame carrying a
//! ~1400-byte RTP packet (the relay's per-packet path on TCP); writing a response and a request.
//!
//! Every input is a real message from `testdata/rtsp/`; see `manifold_benches`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches over our own fixtures

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use manifold_benches::{publisher_frame, response_to, segment, FFMPEG_PLAY};
use manifold_rtsp::codec::{self, Decoder, Item, Limits};
use manifold_rtsp::{Request, Response};
use manifold_testdata::Direction;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// Benches `Decoder::feed` on `input`, which must hold exactly one complete item.
fn bench_feed(c: &mut Criterion, name: &str, input: &[u8], throughput: Throughput) {
    let mut decoder = Decoder::new(Limits::default());
    let (_, consumed) = decoder.feed(input).unwrap().expect("a complete item");
    assert_eq!(consumed, input.len(), "{name}: the fixture holds one item");
    let mut g = c.benchmark_group("rtsp/decode");
    g.throughput(throughput);
    g.bench_function(name, |b| {
        // The decoded item (its allocations for a message) is dropped inside the timing.
        b.iter(|| decoder.feed(black_box(input)))
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let setup = segment(FFMPEG_PLAY, Direction::ClientToServer, b"SETUP ");
    let play = segment(FFMPEG_PLAY, Direction::ClientToServer, b"PLAY ");
    let setup_reply = response_to(FFMPEG_PLAY, b"SETUP ");
    let frame = publisher_frame(1400, 28);

    // Messages are read whole: bytes per second mean something. A frame is not (the decoder
    // reads its 4-byte header and borrows the payload): count frames.
    bench_feed(c, "setup_request", &setup, Throughput::Bytes(setup.len() as u64));
    bench_feed(c, "play_request", &play, Throughput::Bytes(play.len() as u64));
    bench_feed(c, "setup_response", &setup_reply, Throughput::Bytes(setup_reply.len() as u64));
    bench_feed(c, "interleaved_rtp", &frame.wire, Throughput::Elements(1));
}

fn write(c: &mut Criterion) {
    let limits = Limits::default();
    let setup = segment(FFMPEG_PLAY, Direction::ClientToServer, b"SETUP ");
    let Some((Item::Request(request), _)) = codec::decode(&setup, &limits).unwrap() else {
        panic!("SETUP is a request");
    };
    let reply = response_to(FFMPEG_PLAY, b"SETUP ");
    let Some((Item::Response(response), _)) = codec::decode(&reply, &limits).unwrap() else {
        panic!("the SETUP reply is a response");
    };

    let mut out = Vec::with_capacity(1024);
    codec::write_response(&response, &mut out);
    assert_eq!(out, reply, "the response round-trips byte for byte");
    out.clear();
    codec::write_request(&request, &mut out);
    assert_eq!(out, setup, "the request round-trips byte for byte");

    let mut g = c.benchmark_group("rtsp/write");
    g.throughput(Throughput::Bytes(reply.len() as u64));
    g.bench_function("setup_response", |b| {
        b.iter(|| {
            out.clear();
            codec::write_response(black_box::<&Response>(&response), &mut out);
            black_box(out.len())
        })
    });
    g.throughput(Throughput::Bytes(setup.len() as u64));
    g.bench_function("setup_request", |b| {
        b.iter(|| {
            out.clear();
            codec::write_request(black_box::<&Request>(&request), &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

/// The entry points, in a module of their own because `criterion_group!` generates a `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)] // the undocumented `pub fn benches` of criterion_group!
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = super::config();
        targets = super::decode, super::write
    }
}
criterion_main!(group::benches);
