//! Replays the RTCP and RTP of the recorded UDP session (`testdata/rtsp/ffmpeg-play-udp-media.pcap`:
//! GStreamer's RTSP server sending H.264 to ffmpeg) through the RTCP parser, the A.2 check,
//! the receiver statistics and the sender-report time mapping.
//!
//! Expected counts were cross-checked with
//! `tshark -r FILE -d udp.port==57720,rtp -d udp.port==57721,rtcp -q -z rtp,streams`:
//! one RR (ffmpeg, 7581 -> 57721), one SR + SDES (server, 57721 -> 7581), and 249 RTP
//! packets of SSRC 0xEC3EC35D with no loss.
#![allow(clippy::unwrap_used, clippy::expect_used)] // the fixtures are ours; a bad one should fail loudly

use std::time::{Duration, Instant};

use manifold_rtp::ntp::{NtpTime, SrMapping};
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rtcp::{self, Packet};
use manifold_rtp::stats::{Arrival, ReceiverStats};
use manifold_rtp::Ssrc;
use manifold_testdata::{tcp_client_port, tcp_stream, udp_payloads, Captured};

const MEDIA: &str = "rtsp/ffmpeg-play-udp-media.pcap";
const SERVER_SSRC: Ssrc = Ssrc(0xec3e_c35d);

/// RTCP by the second byte (RFC 5761 §4: packet types 200..=204), or by the odd port of the
/// RTP/RTCP pair.
fn is_rtcp(c: &Captured) -> bool {
    c.payload.get(1).is_some_and(|pt| (200..=204).contains(pt)) || c.dst_port % 2 == 1
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    sr: usize,
    rr: usize,
    sdes: usize,
    bye: usize,
    other: usize,
}

fn count_rtcp(datagrams: &[Captured]) -> Counts {
    let mut counts = Counts::default();
    for c in datagrams.iter().filter(|c| is_rtcp(c)) {
        let n = rtcp::validate_compound(&c.payload)
            .unwrap_or_else(|e| panic!("record {}: {e}", c.index));
        let packets: Vec<Packet<'_>> = rtcp::packets(&c.payload).collect::<Result<_, _>>().unwrap();
        assert_eq!(packets.len(), n);
        for p in packets {
            match p {
                Packet::SenderReport(_) => counts.sr += 1,
                Packet::ReceiverReport(_) => counts.rr += 1,
                Packet::Sdes(_) => counts.sdes += 1,
                Packet::Bye(_) => counts.bye += 1,
                _ => counts.other += 1,
            }
        }
    }
    counts
}

#[test]
fn every_rtcp_packet_parses_and_is_valid() {
    let datagrams = udp_payloads(MEDIA);
    assert_eq!(count_rtcp(&datagrams), Counts { sr: 1, rr: 1, sdes: 1, bye: 0, other: 0 });

    let sr = datagrams.iter().find(|c| c.payload.get(1) == Some(&200)).unwrap();
    let [Packet::SenderReport(report), Packet::Sdes(sdes)] =
        rtcp::packets(&sr.payload).collect::<Result<Vec<_>, _>>().unwrap()[..]
    else {
        panic!("expected SR + SDES");
    };
    assert_eq!(report.ssrc(), SERVER_SSRC);
    assert_eq!(report.sender_info().packet_count, 209);
    let chunk = sdes.chunks().next().unwrap();
    assert_eq!(chunk.ssrc(), SERVER_SSRC);
    assert_eq!(chunk.cname(), Some(&b"user948178175@host-1826ae87"[..]));
}

/// The `$`-framed packets on odd (RTCP) channels of an interleaved RTSP byte stream; RTSP
/// messages between them are skipped by their headers and Content-Length.
fn interleaved_rtcp(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        if stream[pos] == b'$' {
            let channel = stream[pos + 1];
            let len = usize::from(u16::from_be_bytes([stream[pos + 2], stream[pos + 3]]));
            if channel % 2 == 1 {
                out.push(stream[pos + 4..pos + 4 + len].to_vec());
            }
            pos += 4 + len;
        } else {
            let head = stream[pos..].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let text = String::from_utf8_lossy(&stream[pos..pos + head]).to_ascii_lowercase();
            let body = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            pos += head + body;
        }
    }
    out
}

#[test]
fn interleaved_rtcp_from_the_publisher_is_valid() {
    // tshark -d tcp.port==18555,rtsp: two SRs from ffmpeg, interleaved on the RTSP connection.
    let pcap = "rtsp/ffmpeg-publish-tcp.pcap";
    let client = tcp_client_port(pcap, 18555).unwrap();
    let frames = interleaved_rtcp(&tcp_stream(pcap, client, 18555));
    let mut srs = 0;
    for f in &frames {
        rtcp::validate_compound(f).unwrap();
        for p in rtcp::packets(f) {
            srs += usize::from(matches!(p.unwrap(), Packet::SenderReport(_)));
        }
    }
    assert_eq!(srs, 2);
}

/// Every strict prefix of each captured RTCP datagram fails cleanly or parses fewer packets.
#[test]
fn captured_rtcp_split_at_every_byte() {
    for c in udp_payloads(MEDIA).iter().filter(|c| is_rtcp(c)) {
        let whole = rtcp::packets(&c.payload).count();
        for cut in 0..c.payload.len() {
            let prefix = &c.payload[..cut];
            let ok = rtcp::packets(prefix).filter(Result::is_ok).count();
            assert!(ok < whole, "record {} cut at {cut}", c.index);
            let _ = rtcp::validate_compound(prefix);
        }
    }
}

#[test]
fn rtp_stream_statistics() {
    let datagrams = udp_payloads(MEDIA);
    let base = Instant::now();
    let first_us = datagrams[0].time_us;
    let at = |c: &Captured| base + Duration::from_micros(c.time_us - first_us);
    let mut stats = ReceiverStats::new(SERVER_SSRC, 90_000);
    let mut packets = 0;
    let mut mapping = None;
    let mut worst_skew = Duration::ZERO;
    for c in &datagrams {
        if is_rtcp(c) {
            for p in rtcp::packets(&c.payload) {
                if let Ok(Packet::SenderReport(sr)) = p {
                    let info = sr.sender_info();
                    stats.handle_sender_report(at(c), info.ntp);
                    mapping = Some(SrMapping::from_sender_info(&info, 90_000));
                }
            }
            continue;
        }
        let rtp = RtpPacket::parse(&c.payload).unwrap();
        if rtp.ssrc() != SERVER_SSRC {
            continue; // ffmpeg's hole-punching packet towards the server
        }
        let verdict = stats.handle_packet(at(c), rtp.sequence(), rtp.timestamp());
        assert!(
            matches!(verdict, Arrival::InOrder(_) | Arrival::Probation),
            "seq {}: {verdict:?}",
            rtp.sequence()
        );
        packets += 1;
        // After the SR, its mapping puts each packet's media time near its capture time.
        if let Some(m) = mapping {
            let wall = m.rtp_to_ntp(rtp.timestamp()).to_unix().unwrap();
            let captured = Duration::from_micros(c.time_us);
            worst_skew = worst_skew.max(wall.abs_diff(captured));
        }
    }
    assert_eq!(packets, 249);
    // The first packet is spent on probation (RFC 3550 A.1).
    assert_eq!((stats.received(), stats.expected(), stats.cumulative_lost()), (248, 248, 0));
    assert_eq!((stats.duplicates(), stats.reordered()), (0, 0));
    assert_eq!(stats.highest().map(|s| s.wire()), Some(30_046 + 248));
    // Loopback, paced frames: jitter below 10 ms (900 ticks) but not zero (packets of one
    // frame share a timestamp and arrive a few microseconds apart).
    let jitter = stats.jitter();
    assert!(jitter > 0 && jitter < 900, "jitter {jitter} ticks");
    assert!(mapping.is_some());
    assert!(worst_skew < Duration::from_millis(100), "SR mapping off by {worst_skew:?}");

    let last = at(datagrams.last().unwrap());
    let block = stats.report_block(last).unwrap();
    assert_eq!(block.ssrc, SERVER_SSRC);
    assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 0));
    assert_eq!(block.jitter, jitter);
    assert_eq!(block.last_sr, NtpTime::new(0xeeac_d15a, 0x06ea_8544).compact());
    assert!(block.delay_since_last_sr.to_duration() < Duration::from_secs(1));
}
