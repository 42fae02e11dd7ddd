//! Replays the RTP in the recorded captures (`testdata/rtsp/*.pcap`) through the packet view
//! and the H.264 inspector. Expected counts were cross-checked with tshark.
#![allow(clippy::unwrap_used, clippy::expect_used)] // the fixtures are ours; a bad one should fail loudly

use manifold_rtp::codec::{h264, GopStart};
use manifold_rtp::packet::{RtpBuilder, RtpPacket};
use manifold_testdata::{tcp_client_port, tcp_stream, udp_payloads};

/// RTP/RTCP demultiplexing by the second byte (RFC 5761 §4): RTCP packet types 200..=204.
fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|pt| (200..=204).contains(pt))
}

/// What the H.264 packets of one stream add up to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Keyframes {
    /// Packets holding the first byte of an IDR slice.
    idr: usize,
    /// Packets starting a keyframe (IDR or SPS).
    starts: usize,
    /// Where a GOP cache restarts (first keyframe-starting packet per access unit).
    gops: usize,
    /// Complete SPS and PPS NAL units captured.
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
}

fn inspect_h264(packets: &[RtpPacket<'_>], payload_type: u8) -> Keyframes {
    let mut k = Keyframes::default();
    let mut gop = GopStart::default();
    for p in packets.iter().filter(|p| p.payload_type() == payload_type) {
        let payload = h264::Payload::parse(p.payload())
            .unwrap_or_else(|e| panic!("seq {}: {e}", p.sequence()));
        k.idr += usize::from(payload.contains_idr());
        k.starts += usize::from(payload.starts_keyframe());
        k.gops += usize::from(gop.observe(p.timestamp(), payload.starts_keyframe()));
        k.sps.extend(payload.sps().map(<[u8]>::to_vec));
        k.pps.extend(payload.pps().map(<[u8]>::to_vec));
    }
    k
}

/// A real packet rebuilt from its parsed fields comes out byte for byte the same; every strict
/// prefix of it either fails cleanly or parses consistently, and so does every prefix of its
/// H.264 payload.
fn check_packet(packet: &RtpPacket<'_>) {
    let bytes = packet.as_bytes();
    let csrcs: Vec<_> = packet.csrcs().collect();
    let mut builder = RtpBuilder::new(
        packet.payload_type(),
        packet.sequence(),
        packet.timestamp(),
        packet.ssrc(),
    )
    .marker(packet.marker())
    .csrcs(&csrcs)
    .payload(packet.payload());
    if let Some(ext) = packet.extension() {
        builder = builder.extension(ext.profile, ext.data);
    }
    let mut rebuilt = Vec::new();
    builder.padding(packet.padding()).write_to_vec(&mut rebuilt).unwrap();
    if packet.padding() == 0 {
        assert_eq!(rebuilt, bytes);
    } else {
        // The builder zeroes padding; the sender may not have.
        assert_eq!(rebuilt.len(), bytes.len());
    }

    for end in 0..bytes.len() {
        if let Ok(p) = RtpPacket::parse(&bytes[..end]) {
            assert_eq!(p.header_len() + p.payload().len() + usize::from(p.padding()), end);
        }
    }
    let payload = packet.payload();
    for end in 0..payload.len() {
        if let Ok(p) = h264::Payload::parse(&payload[..end]) {
            let _ = p.nal_units().count();
        }
    }
}

#[test]
fn udp_media_capture() {
    let datagrams = udp_payloads("rtsp/ffmpeg-play-udp-media.pcap");
    let (rtcp, rtp): (Vec<_>, Vec<_>) = datagrams.iter().partition(|d| is_rtcp(&d.payload));
    // The other demultiplexing rule agrees: RTCP travels on the odd ports.
    assert!(rtcp.iter().all(|d| d.dst_port % 2 == 1));
    assert!(rtp.iter().all(|d| d.dst_port % 2 == 0));
    assert_eq!(rtcp.len(), 2);
    let packets: Vec<RtpPacket<'_>> = rtp
        .iter()
        .map(|d| RtpPacket::parse(&d.payload).unwrap_or_else(|e| panic!("record {}: {e}", d.index)))
        .collect();
    // 249 media packets from the server plus ffmpeg's 12-byte NAT punch packet.
    assert_eq!(packets.len(), 250);
    let punch: Vec<_> = packets.iter().filter(|p| p.payload().is_empty()).collect();
    assert_eq!(punch.len(), 1);
    assert_eq!(punch[0].payload_type(), 0);

    let media: Vec<_> = packets.iter().copied().filter(|p| p.payload_type() == 96).collect();
    assert_eq!(media.len(), 249);
    assert!(media.windows(2).all(|w| w[1].sequence() == w[0].sequence().wrapping_add(1)));
    assert!(media.iter().all(|p| p.ssrc() == media[0].ssrc() && p.extension().is_none()));
    for p in &packets {
        check_packet(p);
    }

    // Two keyframes. gst-rtsp-server sends each as AUD, SPS, PPS, SEI, SPS, PPS and two IDR
    // slices, one NAL unit per packet.
    let k = inspect_h264(&media, 96);
    assert_eq!(k.idr, 4);
    assert_eq!(k.starts, 8);
    assert_eq!(k.gops, 2);
    assert_eq!((k.sps.len(), k.pps.len()), (4, 4));
    assert!(k.sps.iter().all(|s| s.len() == 28 && s[0] & 0x1f == 7 && *s == k.sps[0]));
    assert!(k.pps.iter().all(|s| s.len() == 4 && s[0] & 0x1f == 8 && *s == k.pps[0]));
    // 80 access units: the marker ends each one.
    assert_eq!(media.iter().filter(|p| p.marker()).count(), 80);
}

/// The `$`-framed packets of an RTSP byte stream, as (channel, bytes). RTSP messages between
/// them are skipped using their Content-Length; a frame cut off by the end of the capture is
/// dropped.
fn interleaved(stream: &[u8]) -> Vec<(u8, &[u8])> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        if stream[pos] == b'$' {
            let Some(head) = stream.get(pos..pos + 4) else { break };
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let Some(frame) = stream.get(pos + 4..pos + 4 + len) else { break };
            frames.push((head[1], frame));
            pos += 4 + len;
            continue;
        }
        let rest = &stream[pos..];
        let Some(head_len) = rest.windows(4).position(|w| w == b"\r\n\r\n") else { break };
        let head = std::str::from_utf8(&rest[..head_len]).expect("RTSP head is UTF-8");
        assert!(head.starts_with("RTSP/1.0") || head.contains(" RTSP/1.0"), "{head:?}");
        let body: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse().expect("Content-Length is a number"));
        pos += head_len + 4 + body;
    }
    frames
}

/// Parses every interleaved frame of one direction of a capture; returns the RTP packets and
/// the number of RTCP frames.
fn interleaved_rtp(stream: &[u8]) -> (Vec<RtpPacket<'_>>, usize) {
    let frames = interleaved(stream);
    let mut rtp = Vec::new();
    let mut rtcp = 0;
    for (channel, frame) in frames {
        // Channels pair up as RTP (even) and RTCP (odd); the byte rule must agree.
        assert_eq!(channel % 2 == 1, is_rtcp(frame), "channel {channel}");
        if channel % 2 == 1 {
            rtcp += 1;
            continue;
        }
        let p = RtpPacket::parse(frame).unwrap_or_else(|e| panic!("channel {channel}: {e}"));
        check_packet(&p);
        rtp.push(p);
    }
    (rtp, rtcp)
}

#[test]
fn ffmpeg_play_tcp() {
    let name = "rtsp/ffmpeg-play-tcp.pcap";
    let client = tcp_client_port(name, 18554).unwrap();
    let s2c = tcp_stream(name, 18554, client);
    let (rtp, _) = interleaved_rtp(&s2c);
    assert_eq!(rtp.len(), 95);
    let k = inspect_h264(&rtp, 96);
    assert_eq!((k.idr, k.starts, k.gops), (2, 4, 1));
    assert_eq!((k.sps.len(), k.pps.len()), (2, 2));
    // The client only sends RTCP receiver reports.
    let c2s = tcp_stream(name, client, 18554);
    let (rtp, _) = interleaved_rtp(&c2s);
    assert!(rtp.is_empty());
}

#[test]
fn gst_play_tcp() {
    let name = "rtsp/gst-play-tcp.pcap";
    let client = tcp_client_port(name, 18554).unwrap();
    let s2c = tcp_stream(name, 18554, client);
    let (rtp, _) = interleaved_rtp(&s2c);
    assert_eq!(rtp.len(), 32);
    let k = inspect_h264(&rtp, 96);
    assert_eq!((k.idr, k.starts, k.gops), (2, 4, 1));
    assert_eq!((k.sps.len(), k.pps.len()), (2, 2));
}

#[test]
fn ffmpeg_publish_tcp() {
    let name = "rtsp/ffmpeg-publish-tcp.pcap";
    let client = tcp_client_port(name, 18555).unwrap();
    let c2s = tcp_stream(name, client, 18555);
    let (rtp, rtcp) = interleaved_rtp(&c2s);
    assert_eq!(rtp.len(), 251);
    assert_eq!(rtp.iter().filter(|p| p.payload_type() == 96).count(), 232);
    assert_eq!(rtp.iter().filter(|p| p.payload_type() == 97).count(), 19);
    assert_eq!(rtcp, 2);
    // ffmpeg publishing from MP4 sends SPS/PPS only in the SDP, and fragments the IDRs (FU-A).
    let k = inspect_h264(&rtp, 96);
    assert_eq!((k.idr, k.starts, k.gops), (2, 2, 2));
    assert!(k.sps.is_empty() && k.pps.is_empty());
}
