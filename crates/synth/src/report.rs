//! The synthetic stream's RTCP sender reports, as a real sender sends them: one after the
//! first frame, then one about every second, each mapping the frame just sent to its capture
//! time (so players can place the stream on the wall clock), with the packet and payload
//! octet counts so far (RFC 3550 §6.4.1) and, when there is a CNAME, the SDES a compound
//! packet needs (§6.1). Sans-IO: the sender says what it sent and writes what this returns.

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rtcp::{SdesItem, SdesKind, SenderInfo, Writer};
use manifold_rtp::Ssrc;

use crate::stream::PacketInfo;

/// Bytes that hold a sender report and an SDES with a CNAME of up to 255 bytes.
pub const SENDER_REPORT_MAX: usize = 320;

/// When a synthetic stream's sender reports are due, and what they say.
#[derive(Debug, Clone)]
pub struct SenderReports {
    ssrc: Ssrc,
    /// Frames between two reports (the frame rate: about once a second).
    every: u64,
    cname: Option<String>,
    /// The frame from which the next report is due.
    next_frame: u64,
    packets: u32,
    /// RTP payload octets sent; RFC 3550's counts wrap.
    octets: u32,
}

impl SenderReports {
    /// Reports about source `ssrc` of a stream of `fps` frames a second, with an SDES CNAME
    /// when `cname` is given.
    pub fn new(ssrc: Ssrc, fps: u32, cname: Option<String>) -> SenderReports {
        SenderReports {
            ssrc,
            every: u64::from(fps.max(1)),
            cname,
            next_frame: 0,
            packets: 0,
            octets: 0,
        }
    }

    /// Counts one RTP packet sent (a packet that does not parse counts no octets).
    pub fn sent(&mut self, packet: &[u8]) {
        let payload = RtpPacket::parse(packet).map_or(0, |p| p.payload().len());
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload as u32);
    }

    /// After the packets of a frame, the last of them `last`, captured at `capture`: writes
    /// the report into `out` when one is due and returns its length. `None` when none is due,
    /// or `out` is shorter than the report ([`SENDER_REPORT_MAX`] always holds it).
    pub fn after_frame(
        &mut self,
        last: &PacketInfo,
        capture: NtpTime,
        out: &mut [u8],
    ) -> Option<usize> {
        if last.frame < self.next_frame {
            return None;
        }
        let sender = SenderInfo {
            ntp: capture,
            rtp: last.rtp_time,
            packet_count: self.packets,
            octet_count: self.octets,
        };
        let mut w = Writer::new(out);
        w.sender_report(self.ssrc, &sender, &[]).ok()?;
        if let Some(cname) = &self.cname {
            let items = [SdesItem { kind: SdesKind::CNAME, value: cname.as_bytes() }];
            w.sdes(&[(self.ssrc, &items)]).ok()?;
        }
        self.next_frame = last.frame + self.every;
        Some(w.written().len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use manifold_rtp::rtcp::{packets, Packet};

    use super::*;
    use crate::{StreamConfig, SyntheticStream};

    #[test]
    fn one_after_the_first_frame_then_one_a_second_with_the_counts_so_far() {
        let config = StreamConfig { fps: 25, ..StreamConfig::default() };
        let ssrc = config.ssrc;
        let mut stream = SyntheticStream::new(config).unwrap();
        let mut reports = SenderReports::new(ssrc, 25, Some("me@host".into()));
        let (mut buf, mut out) = (Vec::new(), [0u8; SENDER_REPORT_MAX]);
        let mut seen = Vec::new();
        let mut payload_octets = 0u32;
        // Three seconds of frames, 40 ms apart.
        for n in 0..75u64 {
            let now = Duration::from_millis(40 * n);
            let capture = NtpTime::from_unix(Duration::from_secs(1_700_000_000) + now);
            let mut last = None;
            while let Some(info) = stream.poll_packet(now, capture, &mut buf) {
                reports.sent(&buf[..info.len]);
                payload_octets +=
                    RtpPacket::parse(&buf[..info.len]).unwrap().payload().len() as u32;
                last = Some(info);
            }
            let last = last.unwrap();
            if let Some(len) = reports.after_frame(&last, capture, &mut out) {
                let mut parsed = packets(&out[..len]);
                let Some(Ok(Packet::SenderReport(sr))) = parsed.next() else { panic!() };
                assert!(matches!(parsed.next(), Some(Ok(Packet::Sdes(_)))), "with its CNAME");
                let info = sr.sender_info();
                assert_eq!((sr.ssrc(), info.ntp, info.rtp), (ssrc, capture, last.rtp_time));
                assert_eq!(info.octet_count, payload_octets);
                assert_eq!(u64::from(info.packet_count), stream.packets_sent());
                seen.push(last.frame);
            }
        }
        assert_eq!(seen, [0, 25, 50]);
    }

    #[test]
    fn without_a_cname_the_report_stands_alone_and_a_short_buffer_gets_none() {
        let ssrc = Ssrc(7);
        let mut reports = SenderReports::new(ssrc, 30, None);
        let mut stream = SyntheticStream::new(StreamConfig::default()).unwrap();
        let mut buf = Vec::new();
        let capture = NtpTime::from_unix(Duration::from_secs(1));
        let mut last = None;
        while let Some(info) = stream.poll_packet(Duration::ZERO, capture, &mut buf) {
            last = Some(info);
        }
        let last = last.unwrap();
        assert_eq!(reports.after_frame(&last, capture, &mut [0u8; 10]), None);
        let mut out = [0u8; SENDER_REPORT_MAX];
        let len = reports.after_frame(&last, capture, &mut out).unwrap();
        assert_eq!(len, 28, "header, SSRC and sender info");
        assert_eq!(reports.after_frame(&last, capture, &mut out), None, "not due again yet");
    }
}
