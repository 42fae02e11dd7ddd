//! RTP micro-benchmarks: parsing a header (`RtpPacket::parse`) of a small H.264 slice packet
//! from GStreamer's server and of a ~1400-byte FU-A packet from the ffmpeg publisher, the FU-A
//! one again carrying the two RFC 8285 elements our synthetic source stamps (abs-capture-time
//! and a packet counter: no captured peer sends an extension); the in-place header rewrite
//! (`FixedHeaderMut`) alone and behind the continuity `Rewriter`; building a packet.
//!
//! Inputs are real packets from `testdata/rtsp/`; see `manifold_benches`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches over our own fixtures

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_main, Criterion, Throughput};
use manifold_benches::{is_rtcp, media_datagram, publisher_frame};
use manifold_rtp::ext::{AbsCaptureTime, Element};
use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::{FixedHeaderMut, RtpBuilder, RtpPacket};
use manifold_rtp::rewrite::Rewriter;
use manifold_rtp::{RtpTime, Ssrc};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

/// The extmap ids our synthetic source uses by default (abs-capture-time, packet counter).
const CAPTURE_TIME_ID: u8 = 1;
const COUNTER_ID: u8 = 2;

/// A first non-IDR H.264 slice (NAL type 1) packet from GStreamer's server.
fn small_packet() -> Vec<u8> {
    media_datagram(|d| !is_rtcp(d) && d.len() > 13 && d[0] == 0x80 && d[12] & 0x1f == 1)
}

/// The FU-A packet again, with the synthetic source's extension block (24 bytes) added.
fn with_extension(packet: &RtpPacket<'_>) -> Vec<u8> {
    let mut scratch = [0u8; 16];
    let capture = AbsCaptureTime {
        capture_time: NtpTime::new(3_972_000_000, 1 << 31),
        estimated_clock_offset: None,
    };
    let counter = 123_456u64.to_be_bytes();
    let elements = [
        Element { id: CAPTURE_TIME_ID, data: capture.encode(&mut scratch) },
        Element { id: COUNTER_ID, data: &counter },
    ];
    let mut out = Vec::new();
    RtpBuilder::new(packet.payload_type(), packet.sequence(), packet.timestamp(), packet.ssrc())
        .marker(packet.marker())
        .extension_elements(&elements)
        .payload(packet.payload())
        .write_to_vec(&mut out)
        .unwrap();
    out
}

/// What a subscriber reads from the synthetic source's extension: capture time and counter.
fn read_stamps(packet: &RtpPacket<'_>) -> (Option<NtpTime>, Option<u64>) {
    let mut stamps = (None, None);
    if let Some(ext) = packet.extension() {
        if let Ok(elements) = ext.elements() {
            for element in elements.map_while(Result::ok) {
                if element.id == CAPTURE_TIME_ID {
                    stamps.0 = AbsCaptureTime::decode(element.data).ok().map(|t| t.capture_time);
                } else if element.id == COUNTER_ID {
                    stamps.1 =
                        Some(element.data.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)));
                }
            }
        }
    }
    stamps
}

fn parse(c: &mut Criterion) {
    let small = small_packet();
    let fu_a = publisher_frame(1400, 28).payload().to_vec();
    let ext = with_extension(&RtpPacket::parse(&fu_a).unwrap());
    let parsed = RtpPacket::parse(&ext).unwrap();
    assert!(parsed.extension().is_some());
    assert_eq!(read_stamps(&parsed).1, Some(123_456));

    // Parsing reads the header (and the padding byte), not the payload: count packets.
    let mut g = c.benchmark_group("rtp/parse");
    g.throughput(Throughput::Elements(1));
    for (name, packet) in [("small", &small), ("fu_a", &fu_a), ("fu_a_ext", &ext)] {
        g.bench_function(name, |b| b.iter(|| RtpPacket::parse(black_box(packet))));
    }
    g.bench_function("fu_a_ext_read_stamps", |b| {
        b.iter(|| RtpPacket::parse(black_box(&ext)).map(|p| read_stamps(&p)))
    });
    g.finish();
}

fn rewrite(c: &mut Criterion) {
    let mut packet = publisher_frame(1400, 28).payload().to_vec();
    let mut g = c.benchmark_group("rtp/rewrite");
    g.throughput(Throughput::Elements(1));

    // The header rewrite alone: three fields written in place.
    let mut seq = 0u16;
    g.bench_function("fixed_header", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let mut header = FixedHeaderMut::new(black_box(&mut packet[..])).unwrap();
            header.set_sequence(seq);
            header.set_timestamp(RtpTime(u32::from(seq).wrapping_mul(3000)));
            header.set_ssrc(Ssrc(0x1234_5678));
        })
    });

    // The hub's per-packet continuity work: map the upstream seq/timestamp, write them back.
    // One upstream, in-order packets, eight per frame at 25 fps (90 kHz clock).
    let start = Instant::now();
    let upstream = Ssrc(0xdead_beef);
    let mut rewriter = Rewriter::new(Ssrc(0x1234_5678), 90_000);
    let mut n = 0u64;
    // Packets that rebased the mapping or were dropped: only the first should.
    let mut unexpected = 0u64;
    g.bench_function("rewriter_and_fixed_header", |b| {
        b.iter(|| {
            n += 1;
            let frame = n / 8;
            let now = start + Duration::from_millis(frame * 40);
            let ts = RtpTime((frame * 3600) as u32);
            let mut header = FixedHeaderMut::new(black_box(&mut packet[..])).unwrap();
            match rewriter.rewrite(now, black_box(upstream), n as u16, ts) {
                Some(out) => {
                    unexpected += u64::from(out.change.is_some());
                    header.set_sequence(out.seq.wire());
                    header.set_timestamp(out.timestamp);
                    header.set_ssrc(rewriter.ssrc());
                }
                None => unexpected += 1,
            }
        })
    });
    g.finish();
    assert_eq!(unexpected, 1, "one upstream, in order: only the first packet rebases");
}

fn build(c: &mut Criterion) {
    let fu_a = publisher_frame(1400, 28).payload().to_vec();
    let source = RtpPacket::parse(&fu_a).unwrap();
    let payload = source.payload();
    let mut out = [0u8; 1500];

    let mut scratch = [0u8; 16];
    let capture = AbsCaptureTime {
        capture_time: NtpTime::new(3_972_000_000, 1 << 31),
        estimated_clock_offset: None,
    };
    let capture = capture.encode(&mut scratch);
    let counter = 123_456u64.to_be_bytes();
    let elements = [
        Element { id: CAPTURE_TIME_ID, data: capture },
        Element { id: COUNTER_ID, data: &counter },
    ];

    let mut g = c.benchmark_group("rtp/build");
    g.throughput(Throughput::Bytes(fu_a.len() as u64));
    g.bench_function("fu_a", |b| {
        b.iter(|| {
            RtpBuilder::new(96, black_box(7), RtpTime(90_000), Ssrc(0x1234_5678))
                .payload(black_box(payload))
                .write(black_box(&mut out[..]))
        })
    });
    g.throughput(Throughput::Bytes(fu_a.len() as u64 + 24));
    g.bench_function("fu_a_ext", |b| {
        b.iter(|| {
            RtpBuilder::new(96, black_box(7), RtpTime(90_000), Ssrc(0x1234_5678))
                .extension_elements(black_box(&elements))
                .payload(black_box(payload))
                .write(black_box(&mut out[..]))
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
        targets = super::parse, super::rewrite, super::build
    }
}
criterion_main!(group::benches);
