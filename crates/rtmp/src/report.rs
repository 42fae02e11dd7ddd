//! RTCP sender reports for the publisher's tracks.
//!
//! RTMP stamps audio and video on one millisecond timeline. Mapping that timeline onto the
//! wall clock once, at the first media, gives every track's sender report the same NTP
//! reference: that is how RTSP readers (GStreamer's rtpbin, live555, VLC) line audio up with
//! video. Without reports a reader can only sync the tracks by arrival, and the burst of
//! video a relay's GOP cache sends a new reader puts them hundreds of milliseconds apart.

use std::time::{Duration, Instant, SystemTime};

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::rtcp::{SdesItem, SdesKind, SenderInfo, Writer};
use manifold_rtp::Ssrc;

use crate::media::MediaPacket;

/// Time between a track's reports after its first (RFC 3550's minimum interval for a sender).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// The RTP header the session writes (no CSRC, no extension): what a packet's payload follows.
const RTP_HEADER_LEN: usize = 12;
/// A sender report without report blocks (28 bytes), and a source description with one
/// CNAME of at most 255 bytes.
const REPORT_LEN: usize = 28 + 8 + 2 + 255 + 3;

/// One track's sender state.
#[derive(Debug, Clone)]
struct Track {
    ssrc: Ssrc,
    packets: u32,
    octets: u32,
    next_due: Instant,
}

/// Counts each track's packets and says when a sender report is due. See the [module
/// docs](self).
#[derive(Debug, Clone)]
pub struct SenderReports {
    started: Instant,
    wall_at_start: SystemTime,
    /// The RTMP time of the first media and its wall-clock time: the one mapping of the
    /// publisher's timeline onto the wall clock, shared by every track.
    anchor: Option<(i64, SystemTime)>,
    /// One canonical name for every track: what tells a reader they belong together.
    cname: String,
    tracks: Vec<Option<Track>>,
}

impl SenderReports {
    /// Reports for a session started at `started`, when the wall clock read `wall_at_start`,
    /// naming its tracks' source `cname` (cut to 255 bytes).
    pub fn new(started: Instant, wall_at_start: SystemTime, cname: &str) -> SenderReports {
        let mut end = cname.len().min(255);
        while !cname.is_char_boundary(end) {
            end -= 1;
        }
        let cname = cname[..end].to_owned();
        SenderReports { started, wall_at_start, anchor: None, cname, tracks: Vec::new() }
    }

    /// Counts `packet`, sent at `now`, and returns a sender report for its track when one is
    /// due (a compound packet: the report and the CNAME): with the track's first packet (so
    /// readers can sync from the start), then every
    /// [`REPORT_INTERVAL`]. A track whose SSRC changes (new tracks after new codec
    /// parameters) starts counting again.
    pub fn on_packet(&mut self, now: Instant, packet: &MediaPacket) -> Option<Vec<u8>> {
        let ssrc = Ssrc(u32::from_be_bytes(packet.packet.get(8..12)?.try_into().ok()?));
        let wall_now = self.wall_at_start + now.saturating_duration_since(self.started);
        let (anchor_ms, anchor_wall) = *self.anchor.get_or_insert((packet.rtmp_time_ms, wall_now));
        if self.tracks.len() <= packet.track {
            self.tracks.resize(packet.track + 1, None);
        }
        let slot = &mut self.tracks[packet.track];
        let track = match slot {
            Some(t) if t.ssrc == ssrc => t,
            _ => slot.insert(Track { ssrc, packets: 0, octets: 0, next_due: now }),
        };
        track.packets = track.packets.wrapping_add(1);
        let payload = packet.packet.len().saturating_sub(RTP_HEADER_LEN);
        track.octets = track.octets.wrapping_add(payload as u32);
        if now < track.next_due {
            return None;
        }
        track.next_due = now + REPORT_INTERVAL;
        // The packet's decoding instant, on the wall clock and on the track's RTP clock.
        let since_anchor = packet.rtmp_time_ms - anchor_ms;
        let magnitude = Duration::from_millis(since_anchor.unsigned_abs());
        let wall = match since_anchor >= 0 {
            true => anchor_wall + magnitude,
            false => anchor_wall.checked_sub(magnitude).unwrap_or(anchor_wall),
        };
        let info = SenderInfo {
            ntp: NtpTime::from_system_time(wall),
            rtp: packet.sync_timestamp,
            packet_count: track.packets,
            octet_count: track.octets,
        };
        let mut report = [0u8; REPORT_LEN];
        let mut writer = Writer::new(&mut report);
        writer.sender_report(ssrc, &info, &[]).ok()?;
        let cname = SdesItem { kind: SdesKind::CNAME, value: self.cname.as_bytes() };
        writer.sdes(&[(ssrc, &[cname])]).ok()?;
        Some(writer.written().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifold_rtp::rtcp::{packets, Packet};
    use manifold_rtp::RtpTime;

    fn packet(track: usize, ssrc: u32, ms: i64, sync: u32, len: usize) -> MediaPacket {
        let mut bytes = vec![0x80, 96, 0, 1, 0, 0, 0, 0];
        bytes.extend_from_slice(&ssrc.to_be_bytes());
        bytes.resize(len, 0);
        MediaPacket {
            track,
            packet: bytes,
            starts_keyframe: false,
            timestamp: RtpTime(sync),
            sync_timestamp: RtpTime(sync),
            rtmp_time_ms: ms,
        }
    }

    /// The report's sender and mapping; its CNAME must be the session's.
    fn info(report: &[u8]) -> (Ssrc, SenderInfo) {
        let mut compound = packets(report);
        let (ssrc, info) = match compound.next() {
            Some(Ok(Packet::SenderReport(sr))) => (sr.ssrc(), sr.sender_info()),
            other => panic!("not a sender report: {other:?}"),
        };
        match compound.next() {
            Some(Ok(Packet::Sdes(sdes))) => {
                let chunk = sdes.chunks().next().unwrap();
                assert_eq!(chunk.ssrc(), ssrc);
                assert_eq!(chunk.cname(), Some(&b"cam@test"[..]));
            }
            other => panic!("no source description: {other:?}"),
        }
        (ssrc, info)
    }

    #[test]
    fn both_tracks_report_at_once_on_one_wall_clock_then_every_interval() {
        let t0 = Instant::now();
        let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut reports = SenderReports::new(t0, wall0, "cam@test");
        // Video at RTMP 1000 ms arrives 2 s after the connection; audio at 1020 ms just after.
        let video = reports.on_packet(t0 + Duration::from_secs(2), &packet(0, 7, 1000, 500, 112));
        let audio = reports.on_packet(t0 + Duration::from_secs(2), &packet(1, 9, 1020, 800, 40));
        let (ssrc, v) = info(&video.expect("the first video packet is reported"));
        assert_eq!(ssrc, Ssrc(7));
        assert_eq!((v.rtp, v.packet_count, v.octet_count), (RtpTime(500), 1, 100));
        let (_, a) = info(&audio.expect("the first audio packet is reported"));
        // The audio instant is 20 ms after the video one on the publisher's timeline, so on
        // the wall clock too, whenever the packets arrived.
        let v_wall = v.ntp.to_system_time();
        let a_wall = a.ntp.to_system_time();
        assert_eq!(v_wall, wall0 + Duration::from_secs(2));
        assert_eq!(a_wall.duration_since(v_wall).unwrap(), Duration::from_millis(20));
        // Nothing more until the interval has passed; the counts go on meanwhile.
        let t1 = t0 + Duration::from_secs(2) + REPORT_INTERVAL - Duration::from_millis(1);
        assert_eq!(reports.on_packet(t1, &packet(0, 7, 5999, 600, 112)), None);
        let t2 = t0 + Duration::from_secs(2) + REPORT_INTERVAL;
        let (_, later) = info(&reports.on_packet(t2, &packet(0, 7, 6000, 700, 112)).unwrap());
        assert_eq!((later.packet_count, later.octet_count), (3, 300));
        assert_eq!(later.ntp.to_system_time(), v_wall + Duration::from_millis(5000));
    }

    #[test]
    fn a_new_ssrc_on_a_track_reports_at_once_and_counts_from_zero() {
        let t0 = Instant::now();
        let mut reports = SenderReports::new(t0, SystemTime::UNIX_EPOCH, "cam@test");
        assert!(reports.on_packet(t0, &packet(0, 1, 0, 0, 20)).is_some());
        assert!(reports.on_packet(t0, &packet(0, 1, 40, 3600, 20)).is_none());
        let (ssrc, i) = info(&reports.on_packet(t0, &packet(0, 2, 80, 0, 20)).unwrap());
        assert_eq!((ssrc, i.packet_count), (Ssrc(2), 1));
    }

    #[test]
    fn media_before_the_anchor_maps_before_it() {
        let t0 = Instant::now();
        let wall0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let mut reports = SenderReports::new(t0, wall0, "cam@test");
        reports.on_packet(t0, &packet(0, 1, 1000, 0, 20)).unwrap();
        // Audio stamped 40 ms earlier than the first video (interleaving of the encoder).
        let (_, a) = info(&reports.on_packet(t0, &packet(1, 2, 960, 0, 20)).unwrap());
        assert_eq!(a.ntp.to_system_time(), wall0 - Duration::from_millis(40));
    }
}
