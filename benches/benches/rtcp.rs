//! RTCP micro-benchmarks: building an SR with one report block plus an SDES CNAME (the
//! compound a relay sends per stream), an RR with 1 and with 31 report blocks, and parsing the
//! SR + SDES compound GStreamer's server sent (with and without the RFC 3550 A.2 check).
//!
//! The parsed compound is a real datagram from `testdata/rtsp/`; see `manifold_benches`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benches over our own fixtures

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, Criterion, Throughput};
use manifold_benches::{is_rtcp, media_datagram};
use manifold_rtp::ntp::{CompactNtp, NtpTime};
use manifold_rtp::rtcp::{
    self, Packet, ReportBlock, SdesItem, SdesKind, SenderInfo, Writer, MAX_COUNT,
};
use manifold_rtp::{RtpTime, SeqNo, Ssrc};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

const SENDER: Ssrc = Ssrc(0x1234_5678);
/// A CNAME as long as the one GStreamer's server sends.
const CNAME: &[u8] = b"user2427424828@host-200bc0ff";

fn block(i: u32) -> ReportBlock {
    ReportBlock {
        ssrc: Ssrc(0xdead_0000 + i),
        fraction_lost: 3,
        cumulative_lost: 17,
        highest_seq: SeqNo(0x1_2345 + u64::from(i)),
        jitter: 42,
        last_sr: CompactNtp(0x8765_4321),
        delay_since_last_sr: CompactNtp(0x0001_8000),
    }
}

fn build(c: &mut Criterion) {
    let info = SenderInfo {
        ntp: NtpTime::new(3_972_000_000, 1 << 31),
        rtp: RtpTime(90_000),
        packet_count: 12_345,
        octet_count: 9_876_543,
    };
    let one = [block(0)];
    let many: Vec<ReportBlock> = (0..MAX_COUNT as u32).map(block).collect();
    let cname = [SdesItem { kind: SdesKind::CNAME, value: CNAME }];
    let mut buf = [0u8; 1500];

    let sr_len = {
        let mut w = Writer::new(&mut buf);
        w.sender_report(SENDER, &info, &one).unwrap();
        w.sdes(&[(SENDER, &cname[..])]).unwrap();
        w.len()
    };
    assert_eq!(rtcp::validate_compound(&buf[..sr_len]), Ok(2));

    let mut g = c.benchmark_group("rtcp/build");
    g.throughput(Throughput::Bytes(sr_len as u64));
    g.bench_function("sr_1_block_sdes_cname", |b| {
        b.iter(|| {
            let mut w = Writer::new(black_box(&mut buf[..]));
            w.sender_report(SENDER, black_box(&info), black_box(&one)).unwrap();
            w.sdes(&[(SENDER, black_box(&cname[..]))]).unwrap();
            w.len()
        })
    });
    for (name, blocks) in [("rr_1_block", &one[..]), ("rr_31_blocks", &many[..])] {
        g.throughput(Throughput::Elements(blocks.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut w = Writer::new(black_box(&mut buf[..]));
                w.receiver_report(SENDER, black_box(blocks)).unwrap();
                w.len()
            })
        });
    }
    g.finish();
}

/// What a sender's RTCP is read for: the SR's NTP/RTP mapping and counts, and the CNAME.
fn read_compound(buf: &[u8]) -> Result<(Option<SenderInfo>, usize), rtcp::ParseError> {
    let mut info = None;
    let mut cname_len = 0;
    for packet in rtcp::packets(buf) {
        match packet? {
            Packet::SenderReport(sr) => {
                info = Some(sr.sender_info());
                for block in sr.report_blocks() {
                    black_box(block);
                }
            }
            Packet::Sdes(sdes) => {
                for chunk in sdes.chunks() {
                    cname_len += chunk.cname().map_or(0, <[u8]>::len);
                }
            }
            _ => {}
        }
    }
    Ok((info, cname_len))
}

fn parse(c: &mut Criterion) {
    let compound = media_datagram(|d| is_rtcp(d) && d[1] == 200);
    assert_eq!(rtcp::validate_compound(&compound), Ok(2), "SR + SDES");
    let (info, cname_len) = read_compound(&compound).unwrap();
    assert!(info.is_some() && cname_len > 0);

    let mut g = c.benchmark_group("rtcp/parse");
    g.throughput(Throughput::Bytes(compound.len() as u64));
    g.bench_function("sr_sdes", |b| b.iter(|| read_compound(black_box(&compound))));
    g.bench_function("sr_sdes_validated", |b| {
        b.iter(|| {
            let buf = black_box(&compound[..]);
            rtcp::validate_compound(buf).and_then(|_| read_compound(buf))
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
        targets = super::build, super::parse
    }
}
criterion_main!(group::benches);
