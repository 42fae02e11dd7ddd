//! SDP micro-benchmarks: parsing the SDP GStreamer's RTSP server answered DESCRIBE with (one
//! H.264 track) and the SDP ffmpeg sent in ANNOUNCE (H.264 + AAC), writing one back, and
//! resolving the media control URLs for SETUP.
//!
//! Both bodies are cut from the transcripts in `testdata/rtsp/` with the RTSP codec (the body
//! is exactly `Content-Length` bytes); see `manifold_benches`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches over our own fixtures

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use manifold_benches::{body_of, stream, FFMPEG_PLAY, FFMPEG_PUBLISH};
use manifold_rtsp::codec::Item;
use manifold_rtsp::Method;
use manifold_sdp::Sdp;
use manifold_testdata::Direction;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// The base URL of the GStreamer DESCRIBE answer (its `Content-Base`).
const GST_BASE: &str = "rtsp://127.0.0.1:18554/live/";
/// The base URL of ffmpeg's ANNOUNCE (its request URI).
const FFMPEG_BASE: &str = "rtsp://127.0.0.1:18555/pub";

/// The DESCRIBE answer's SDP: the first server-to-client message with a body.
fn gstreamer_sdp() -> Vec<u8> {
    let answers = stream(FFMPEG_PLAY, Direction::ServerToClient);
    body_of(&answers, |item| matches!(item, Item::Response(r) if !r.body.is_empty()))
}

/// The ANNOUNCE request's SDP.
fn ffmpeg_sdp() -> Vec<u8> {
    let requests = stream(FFMPEG_PUBLISH, Direction::ClientToServer);
    body_of(&requests, |item| matches!(item, Item::Request(r) if r.method == Method::Announce))
}

fn parse(c: &mut Criterion) {
    let gst = gstreamer_sdp();
    let ffmpeg = ffmpeg_sdp();
    assert!(gst.starts_with(b"v=0") && ffmpeg.starts_with(b"v=0"));

    let mut g = c.benchmark_group("sdp/parse");
    for (name, body) in [("gstreamer_describe", &gst), ("ffmpeg_announce", &ffmpeg)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| Sdp::parse(black_box(body))));
    }
    g.finish();
}

fn write(c: &mut Criterion) {
    let ffmpeg = ffmpeg_sdp();
    let sdp = Sdp::parse(&ffmpeg).unwrap();
    let mut out = Vec::with_capacity(1024);
    sdp.write(&mut out);
    assert_eq!(out, ffmpeg, "the SDP round-trips byte for byte");

    let mut g = c.benchmark_group("sdp/write");
    g.throughput(Throughput::Bytes(ffmpeg.len() as u64));
    g.bench_function("ffmpeg_announce", |b| {
        b.iter(|| {
            out.clear();
            black_box(&sdp).write(&mut out);
            out.len()
        })
    });
    g.finish();
}

fn media_urls(c: &mut Criterion) {
    let gst = Sdp::parse(&gstreamer_sdp()).unwrap();
    let ffmpeg = Sdp::parse(&ffmpeg_sdp()).unwrap();
    assert_eq!(gst.media_urls(GST_BASE), ["rtsp://127.0.0.1:18554/live/stream=0"]);
    assert_eq!(
        ffmpeg.media_urls(FFMPEG_BASE),
        ["rtsp://127.0.0.1:18555/pub/streamid=0", "rtsp://127.0.0.1:18555/pub/streamid=1"]
    );

    let mut g = c.benchmark_group("sdp/media_urls");
    for (name, sdp, base) in
        [("gstreamer_describe", &gst, GST_BASE), ("ffmpeg_announce", &ffmpeg, FFMPEG_BASE)]
    {
        g.throughput(Throughput::Elements(sdp.media().len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(sdp).media_urls(black_box(base))));
    }
    g.finish();
}

/// The entry points, in a module of their own because `criterion_group!` generates a `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)] // the undocumented `pub fn benches` of criterion_group!
    use criterion::criterion_group;

    criterion_group! {
        name = benches;
        config = super::config();
        targets = super::parse, super::write, super::media_urls
    }
}
criterion_main!(group::benches);
