//! FLV media onto RTP: H.264 (RFC 6184), H.265 (RFC 7798) and AAC (RFC 3640 `AAC-hbr`), with
//! RTMP's millisecond clock mapped onto 90 kHz and the audio sampling rate.

use manifold_rtp::codec::{h264, h265};
use manifold_rtp::ext::{AbsCaptureTime, Element};
use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::{BuildError, RtpBuilder};
use manifold_rtp::packetize;
use manifold_rtp::{RtpTime, Ssrc};

use crate::clock::{self, FrameClock, Unwrapper};
use crate::flv::{self, AacConfig, FlvError, VideoCodec, VideoConfig};
use crate::{random, sei};

/// The RTP header this crate writes: 12 bytes, no CSRC, no extension.
const RTP_HEADER_LEN: usize = 12;
/// RFC 3640 AAC-hbr: a 16-bit AU-headers-length and one 16-bit AU header (13-bit size,
/// 3-bit index).
const AU_HEADER_SECTION_LEN: usize = 4;
/// The largest AU a 13-bit size field can describe.
const MAX_AU_SIZE: usize = (1 << 13) - 1;
/// Samples per AAC frame (at the AudioSpecificConfig's rate, SBR or not).
const AAC_FRAME_SAMPLES: u32 = 1024;
/// The RTP payload type of the video track.
pub const VIDEO_PAYLOAD_TYPE: u8 = 96;
/// The RTP payload type of the audio track.
pub const AUDIO_PAYLOAD_TYPE: u8 = 97;
/// The extmap id of abs-capture-time on the video track (announced in the SDP; stamped on
/// the packets of access units that carried a capture-time SEI, see [`crate::sei`]).
pub const CAPTURE_TIME_EXT_ID: u8 = 1;
/// What the abs-capture-time element adds to a packet: the 4-byte extension header and one
/// one-byte-form element of 8 bytes, padded to 12.
const CAPTURE_TIME_EXT_LEN: usize = 4 + 12;

/// One RTP packet made from the publisher's media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    /// The track: the index of its media section in the SDP.
    pub track: usize,
    /// The whole RTP packet (12-byte header and payload).
    pub packet: Vec<u8>,
    /// The packet starts a keyframe (its access unit's parameter sets or IDR/IRAP): a GOP
    /// cache may begin here. Set on the first packet of a keyframe's access unit only.
    pub starts_keyframe: bool,
    /// The RTP timestamp (also in the packet): the presentation time.
    pub timestamp: RtpTime,
    /// The decoding instant `rtmp_time_ms` on the track's RTP clock (the timestamp less the
    /// composition offset): the RTP side of a sender report's mapping.
    pub sync_timestamp: RtpTime,
    /// The RTMP timestamp it came from, in extended milliseconds (decoding time).
    pub rtmp_time_ms: i64,
}

/// Why media could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The FLV body or a configuration record is malformed.
    #[error(transparent)]
    Flv(#[from] FlvError),
    /// An AAC access unit larger than AAC-hbr's 13-bit size field.
    #[error("AAC access unit of {0} bytes exceeds 8191")]
    AacFrameTooLarge(usize),
    /// The RTP packet could not be built.
    #[error("building an RTP packet: {0}")]
    Build(#[from] BuildError),
}

/// Per-track RTP state: identity, sequence and clock.
#[derive(Debug, Clone)]
struct RtpState {
    track: usize,
    payload_type: u8,
    ssrc: Ssrc,
    sequence: u16,
    offset: u32,
    clock: Unwrapper,
}

impl RtpState {
    fn new(track: usize, payload_type: u8, seed: &mut u64) -> RtpState {
        RtpState {
            track,
            payload_type,
            ssrc: Ssrc(random::next(seed)),
            sequence: random::next(seed) as u16,
            offset: random::next(seed),
            clock: Unwrapper::default(),
        }
    }

    /// Appends packets for `payloads` (one access unit, marker on the last), each stamped
    /// with the unit's capture time as abs-capture-time when it has one.
    fn push(
        &mut self,
        payloads: &[Vec<u8>],
        unit: Unit,
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), MediaError> {
        let Unit { timestamp, sync_timestamp, rtmp_time_ms, keyframe, capture } = unit;
        let mut scratch = [0u8; 16];
        let stamp = capture.map(|t| {
            let data = AbsCaptureTime { capture_time: t, estimated_clock_offset: None }
                .encode(&mut scratch);
            [Element { id: CAPTURE_TIME_EXT_ID, data }]
        });
        let elements: &[Element<'_>] = stamp.as_ref().map_or(&[], |e| &e[..]);
        for (i, payload) in payloads.iter().enumerate() {
            let mut packet = Vec::with_capacity(RTP_HEADER_LEN + payload.len());
            RtpBuilder::new(self.payload_type, self.sequence, timestamp, self.ssrc)
                .extension_elements(elements)
                .marker(i + 1 == payloads.len())
                .payload(payload)
                .write_to_vec(&mut packet)?;
            self.sequence = self.sequence.wrapping_add(1);
            out.push(MediaPacket {
                track: self.track,
                packet,
                starts_keyframe: keyframe && i == 0,
                timestamp,
                sync_timestamp,
                rtmp_time_ms,
            });
        }
        Ok(())
    }
}

/// What the packets of one access unit share.
#[derive(Debug, Clone, Copy)]
struct Unit {
    /// The presentation time.
    timestamp: RtpTime,
    /// The decoding time on the same clock (see [`MediaPacket::sync_timestamp`]).
    sync_timestamp: RtpTime,
    /// The RTMP timestamp, extended.
    rtmp_time_ms: i64,
    /// It starts a keyframe.
    keyframe: bool,
    /// Its capture time, from a capture-time SEI.
    capture: Option<NtpTime>,
}

/// The video track: its configuration and RTP state.
#[derive(Debug, Clone)]
pub struct VideoTrack {
    /// The decoder configuration from the sequence header.
    pub config: VideoConfig,
    rtp: RtpState,
}

/// The audio track.
#[derive(Debug, Clone)]
pub struct AudioTrack {
    /// The AudioSpecificConfig.
    pub config: AacConfig,
    rtp: RtpState,
    frames: FrameClock,
}

/// The publisher's tracks as announced: video first (track 0) when there is one, then audio.
#[derive(Debug, Clone)]
pub struct Tracks {
    /// The video track.
    pub video: Option<VideoTrack>,
    /// The audio track.
    pub audio: Option<AudioTrack>,
    max_payload: usize,
}

impl Tracks {
    /// Tracks for the given configurations, RTP packets at most `max_packet` bytes.
    pub fn new(
        video: Option<VideoConfig>,
        audio: Option<AacConfig>,
        max_packet: usize,
        seed: &mut u64,
    ) -> Tracks {
        let video = video
            .map(|config| VideoTrack { rtp: RtpState::new(0, VIDEO_PAYLOAD_TYPE, seed), config });
        let audio_track = usize::from(video.is_some());
        let audio = audio.map(|config| AudioTrack {
            rtp: RtpState::new(audio_track, AUDIO_PAYLOAD_TYPE, seed),
            frames: FrameClock::new(config.sample_rate, AAC_FRAME_SAMPLES),
            config,
        });
        Tracks { video, audio, max_payload: max_packet.saturating_sub(RTP_HEADER_LEN) }
    }

    /// The track count.
    pub fn len(&self) -> usize {
        usize::from(self.video.is_some()) + usize::from(self.audio.is_some())
    }

    /// Whether there are no tracks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maps one video frame (length-prefixed NAL units) at RTMP time `dts` with composition
    /// offset `cts` onto RTP packets. A frame of another codec than the track's is dropped.
    /// A keyframe without in-band parameter sets gets the configuration's in front, so a
    /// reader joining there (and the relay's GOP cache) can decode. An H.264 capture-time
    /// SEI ([`crate::sei`]) is taken out and its time stamped on the frame's packets as
    /// abs-capture-time.
    pub fn video_frame(
        &mut self,
        dts: u32,
        cts: i32,
        keyframe: bool,
        codec: VideoCodec,
        data: &[u8],
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), MediaError> {
        let Some(track) = self.video.as_mut() else { return Ok(()) };
        if track.config.codec != codec {
            return Ok(());
        }
        let mut nals = flv::nal_units(data, track.config.length_size)?;
        let mut capture = None;
        if codec == VideoCodec::H264 {
            // Only manifold's own SEI NAL unit, byte for byte, is removed; any other SEI
            // (or one that also carries other messages) goes on to readers untouched.
            nals.retain(|nal| {
                if !sei::is_sei(nal) {
                    return true;
                }
                match sei::parse_capture_time(nal) {
                    Ok(Some(t)) => {
                        capture = Some(t);
                        *nal != sei::capture_time_nal(t)
                    }
                    _ => true,
                }
            });
        }
        let (random_access, has_parameter_sets) = match codec {
            VideoCodec::H264 => (
                nals.iter().any(|n| h264::NalType::of_header(n[0]) == h264::NalType::IDR),
                nals.iter().any(|n| h264::NalType::of_header(n[0]) == h264::NalType::SPS),
            ),
            VideoCodec::H265 => (
                nals.iter().any(|n| h265::NalType::of_header(n[0]).is_irap()),
                nals.iter().any(|n| h265::NalType::of_header(n[0]) == h265::NalType::SPS),
            ),
        };
        let keyframe = keyframe || random_access;
        let prefix: Vec<&[u8]> = if keyframe && !has_parameter_sets {
            track.config.parameter_sets().collect()
        } else {
            Vec::new()
        };
        let mut payloads = Vec::new();
        let all = prefix.into_iter().chain(nals);
        let room = match capture {
            Some(_) => self.max_payload.saturating_sub(CAPTURE_TIME_EXT_LEN),
            None => self.max_payload,
        };
        match codec {
            VideoCodec::H264 => {
                packetize::h264::Packetizer::new(room, false).packetize(all, &mut payloads)
            }
            VideoCodec::H265 => {
                packetize::h265::Packetizer::new(room).packetize(all, &mut payloads)
            }
        }
        let ms = track.rtp.clock.extend(dts);
        let timestamp = clock::rtp_time(ms + i64::from(cts), 90_000, track.rtp.offset);
        let sync = clock::rtp_time(ms, 90_000, track.rtp.offset);
        let unit = Unit { timestamp, sync_timestamp: sync, rtmp_time_ms: ms, keyframe, capture };
        track.rtp.push(&payloads, unit, out)
    }

    /// Maps one raw AAC access unit at RTMP time `dts` onto RTP (RFC 3640 AAC-hbr, one AU
    /// per packet, fragmented over several packets when it does not fit one).
    pub fn audio_frame(
        &mut self,
        dts: u32,
        frame: &[u8],
        out: &mut Vec<MediaPacket>,
    ) -> Result<(), MediaError> {
        let Some(track) = self.audio.as_mut() else { return Ok(()) };
        if frame.is_empty() {
            return Ok(());
        }
        if frame.len() > MAX_AU_SIZE {
            return Err(MediaError::AacFrameTooLarge(frame.len()));
        }
        // Every fragment repeats the AU header with the whole AU's size (RFC 3640 §3.2.3).
        let mut header = [0u8; AU_HEADER_SECTION_LEN];
        header[..2].copy_from_slice(&16u16.to_be_bytes());
        header[2..].copy_from_slice(&((frame.len() as u16) << 3).to_be_bytes());
        let room = self.max_payload.saturating_sub(AU_HEADER_SECTION_LEN).max(1);
        let payloads: Vec<Vec<u8>> =
            frame.chunks(room).map(|part| header.iter().chain(part).copied().collect()).collect();
        let ms = track.rtp.clock.extend(dts);
        let timestamp = clock::at_ticks(track.frames.ticks(ms), track.rtp.offset);
        let unit = Unit {
            timestamp,
            sync_timestamp: timestamp,
            rtmp_time_ms: ms,
            keyframe: false,
            capture: None,
        };
        track.rtp.push(&payloads, unit, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264_config() -> VideoConfig {
        VideoConfig {
            codec: VideoCodec::H264,
            length_size: 4,
            vps: Vec::new(),
            sps: vec![vec![0x67, 0x42, 0xc0, 0x1e]],
            pps: vec![vec![0x68, 0xce]],
        }
    }

    fn prefixed(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| (n.len() as u32).to_be_bytes().into_iter().chain(n.iter().copied()))
            .collect()
    }

    #[test]
    fn keyframes_get_parameter_sets_and_the_flag() {
        let mut seed = 5;
        let mut tracks = Tracks::new(Some(h264_config()), None, 1200, &mut seed);
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..3000).map(|i| i as u8)).collect();
        let mut out = Vec::new();
        tracks.video_frame(1000, 80, true, VideoCodec::H264, &prefixed(&[&idr]), &mut out).unwrap();
        // SPS, PPS, then three FU-A fragments of the IDR.
        assert_eq!(out.len(), 5);
        assert!(out[0].starts_keyframe && out[1..].iter().all(|p| !p.starts_keyframe));
        assert_eq!(out[0].packet[12], 0x67);
        assert!(out.iter().all(|p| p.packet.len() <= 1200));
        let marker = |p: &MediaPacket| p.packet[1] & 0x80 != 0;
        assert!(marker(&out[4]) && !out[..4].iter().any(marker));
        let offset = tracks.video.as_ref().unwrap().rtp.offset;
        assert_eq!(out[0].timestamp.0, offset.wrapping_add(1080 * 90));
        let seqs: Vec<u16> =
            out.iter().map(|p| u16::from_be_bytes([p.packet[2], p.packet[3]])).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        // An inter frame: no flag, no parameter sets.
        out.clear();
        tracks
            .video_frame(1040, 0, false, VideoCodec::H264, &prefixed(&[&[0x41, 1]]), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(!out[0].starts_keyframe);
    }

    #[test]
    fn capture_time_sei_becomes_abs_capture_time() {
        let mut seed = 5;
        let mut tracks = Tracks::new(Some(h264_config()), None, 1200, &mut seed);
        let time = NtpTime(0xe8a0_0000_0000_0001);
        let ours = sei::capture_time_nal(time);
        let other_sei = [0x06, 0x05, 0x01, 0x00, 0x80];
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..3000).map(|i| i as u8)).collect();
        let mut out = Vec::new();
        let data = prefixed(&[&ours, &other_sei, &idr]);
        tracks.video_frame(1000, 0, true, VideoCodec::H264, &data, &mut out).unwrap();
        // SPS, PPS, the other SEI, then FU-A fragments of the IDR; ours is gone.
        assert!(out.iter().all(|p| p.packet.len() <= 1200));
        let mut nal_types = Vec::new();
        for p in &out {
            let rtp = manifold_rtp::packet::RtpPacket::parse(&p.packet).unwrap();
            let stamp = rtp.extension().unwrap().element(CAPTURE_TIME_EXT_ID).unwrap().unwrap();
            assert_eq!(AbsCaptureTime::decode(stamp).unwrap().capture_time, time);
            nal_types.push(rtp.payload()[0] & 0x1f);
            assert_ne!(rtp.payload(), &ours[..]);
        }
        assert_eq!(&nal_types[..3], &[7, 8, 6]);
        assert!(nal_types[3..].iter().all(|&t| t == 28), "{nal_types:?}");
        // A frame without the SEI has no extension.
        out.clear();
        tracks
            .video_frame(1040, 0, false, VideoCodec::H264, &prefixed(&[&[0x41, 1]]), &mut out)
            .unwrap();
        let rtp = manifold_rtp::packet::RtpPacket::parse(&out[0].packet).unwrap();
        assert!(rtp.extension().is_none());
    }

    #[test]
    fn rtp_time_runs_on_across_the_rtmp_wrap() {
        let mut seed = 5;
        let audio = AacConfig::parse(&[0x11, 0x88]).unwrap(); // 48 kHz
        let mut tracks = Tracks::new(Some(h264_config()), Some(audio), 1200, &mut seed);
        let mut out = Vec::new();
        // 40 ms video frames and ~21 ms audio frames from 1 s before the 32-bit wrap to 1 s after.
        let start = u32::MAX - 999;
        for i in 0..50u32 {
            let dts = start.wrapping_add(i * 40);
            tracks
                .video_frame(dts, 0, false, VideoCodec::H264, &prefixed(&[&[0x41, 1]]), &mut out)
                .unwrap();
            tracks.audio_frame(dts, &[0x21; 10], &mut out).unwrap();
        }
        let video: Vec<u32> = out.iter().filter(|p| p.track == 0).map(|p| p.timestamp.0).collect();
        let audio: Vec<u32> = out.iter().filter(|p| p.track == 1).map(|p| p.timestamp.0).collect();
        assert!(video.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 3600), "{video:?}");
        assert!(audio.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 1920), "{audio:?}");
        let ms: Vec<i64> = out.iter().filter(|p| p.track == 0).map(|p| p.rtmp_time_ms).collect();
        assert_eq!(ms[49] - ms[0], 49 * 40);
        assert!(ms[49] > i64::from(u32::MAX));
    }

    #[test]
    fn aac_frames_carry_au_headers_and_fragment() {
        let mut seed = 5;
        let config = AacConfig::parse(&[0x12, 0x10]).unwrap();
        let mut tracks = Tracks::new(None, Some(config), 200, &mut seed);
        let mut out = Vec::new();
        tracks.audio_frame(1000, &[0x21; 100], &mut out).unwrap();
        assert_eq!(out[0].track, 0);
        assert_eq!(&out[0].packet[12..16], &[0, 16, (100 >> 5) as u8, (100 << 3) as u8]);
        assert_eq!(out[0].packet.len(), 12 + 4 + 100);
        out.clear();
        tracks.audio_frame(1023, &[0x21; 500], &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.packet[14..16] == [(500 >> 5) as u8, (500 << 3) as u8]));
        assert_eq!(out.iter().map(|p| p.packet.len() - 16).sum::<usize>(), 500);
        assert_eq!(
            tracks.audio_frame(0, &[0; 9000], &mut out),
            Err(MediaError::AacFrameTooLarge(9000))
        );
    }
}
