//! FLV tag bodies as RTMP audio and video messages carry them (FLV 10.1 §E.4.2-3, and the
//! Enhanced RTMP extension for HEVC), and the codec configuration records inside them:
//! AVCDecoderConfigurationRecord (ISO 14496-15 §5.3.3.1), HEVCDecoderConfigurationRecord
//! (§8.3.3.1) and the AAC AudioSpecificConfig (ISO 14496-3 §1.6.2.1).

/// The video codecs this crate maps to RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 (legacy FLV codec id 7, or Enhanced RTMP `avc1`).
    H264,
    /// H.265 (Enhanced RTMP `hvc1`, or the widespread non-standard legacy codec id 12).
    H265,
}

/// A parsed video message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoTag<'a> {
    /// The decoder configuration record.
    SequenceHeader {
        /// Its codec.
        codec: VideoCodec,
        /// The record's bytes.
        record: &'a [u8],
    },
    /// One access unit as length-prefixed NAL units.
    Frame {
        /// Its codec.
        codec: VideoCodec,
        /// FLV frame type 1 (keyframe).
        keyframe: bool,
        /// Composition time offset in milliseconds (presentation minus decoding time).
        composition_offset: i32,
        /// The length-prefixed NAL units.
        data: &'a [u8],
    },
    /// End of sequence, a video info/command frame, or a codec this crate does not map.
    Ignored,
}

/// A parsed audio message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioTag<'a> {
    /// AAC AudioSpecificConfig.
    AacSequenceHeader(&'a [u8]),
    /// One raw AAC access unit.
    AacFrame(&'a [u8]),
    /// Another sound format (MP3, Speex, …), not mapped.
    Ignored,
}

/// Why an FLV body or a configuration record is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// The body or record ends early.
    #[error("{what} cut off at byte {at}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// The offset where bytes ran out.
        at: usize,
    },
    /// A NAL unit length prefix size other than 1, 2 or 4.
    #[error("NAL unit length size {0} is not 1, 2 or 4")]
    BadLengthSize(u8),
    /// A configuration record with no SPS (or, for HEVC, no VPS/SPS/PPS).
    #[error("{0} configuration record lacks parameter sets")]
    NoParameterSets(&'static str),
    /// An AudioSpecificConfig whose sampling frequency index is reserved.
    #[error("AAC sampling frequency index {0} is reserved")]
    BadSampleRateIndex(u8),
    /// An AudioSpecificConfig with channel configuration 0 (channels given in a program
    /// config element, which RFC 3640 readers cannot take from the SDP).
    #[error("AAC channel configuration 0 is not supported")]
    NoChannelConfig,
}

fn truncated(what: &'static str, at: usize) -> FlvError {
    FlvError::Truncated { what, at }
}

/// Reads a video message body.
pub fn parse_video(body: &[u8]) -> Result<VideoTag<'_>, FlvError> {
    let Some(&first) = body.first() else { return Err(truncated("video tag", 0)) };
    if first & 0x80 != 0 {
        // Enhanced RTMP: IsExHeader, FrameType (3 bits), PacketType (4 bits), FourCC.
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let fourcc = body.get(1..5).ok_or(truncated("enhanced video header", 1))?;
        let codec = match fourcc {
            b"hvc1" => VideoCodec::H265,
            b"avc1" => VideoCodec::H264,
            _ => return Ok(VideoTag::Ignored),
        };
        return Ok(match packet_type {
            0 => VideoTag::SequenceHeader { codec, record: &body[5..] },
            1 => {
                let cts = body.get(5..8).ok_or(truncated("composition time", 5))?;
                VideoTag::Frame {
                    codec,
                    keyframe: frame_type == 1,
                    composition_offset: si24(cts),
                    data: &body[8..],
                }
            }
            // CodedFramesX: composition time zero, no field.
            3 => VideoTag::Frame {
                codec,
                keyframe: frame_type == 1,
                composition_offset: 0,
                data: &body[5..],
            },
            _ => VideoTag::Ignored,
        });
    }
    let frame_type = first >> 4;
    let codec = match first & 0x0f {
        7 => VideoCodec::H264,
        12 => VideoCodec::H265,
        _ => return Ok(VideoTag::Ignored),
    };
    if frame_type == 5 {
        return Ok(VideoTag::Ignored);
    }
    let header = body.get(1..5).ok_or(truncated("AVC video header", 1))?;
    Ok(match header[0] {
        0 => VideoTag::SequenceHeader { codec, record: &body[5..] },
        1 => VideoTag::Frame {
            codec,
            keyframe: frame_type == 1,
            composition_offset: si24(&header[1..4]),
            data: &body[5..],
        },
        _ => VideoTag::Ignored,
    })
}

/// A signed 24-bit big-endian integer.
fn si24(b: &[u8]) -> i32 {
    (i32::from_be_bytes([b[0], b[1], b[2], 0])) >> 8
}

/// Reads an audio message body.
pub fn parse_audio(body: &[u8]) -> Result<AudioTag<'_>, FlvError> {
    let Some(&first) = body.first() else { return Err(truncated("audio tag", 0)) };
    if first >> 4 != 10 {
        return Ok(AudioTag::Ignored);
    }
    match body.get(1) {
        Some(0) => Ok(AudioTag::AacSequenceHeader(&body[2..])),
        Some(1) => Ok(AudioTag::AacFrame(&body[2..])),
        Some(_) => Ok(AudioTag::Ignored),
        None => Err(truncated("AAC packet type", 1)),
    }
}

/// Splits length-prefixed NAL units; empty units are skipped.
pub fn nal_units(mut data: &[u8], length_size: u8) -> Result<Vec<&[u8]>, FlvError> {
    let size = usize::from(length_size);
    let mut out = Vec::new();
    let mut at = 0;
    while !data.is_empty() {
        let prefix = data.get(..size).ok_or(truncated("NAL unit length", at))?;
        let len = prefix.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        let nal = data.get(size..size + len).ok_or(truncated("NAL unit", at + size))?;
        if !nal.is_empty() {
            out.push(nal);
        }
        data = &data[size + len..];
        at += size + len;
    }
    Ok(out)
}

/// A video decoder configuration: its parameter sets and NAL length size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// The codec.
    pub codec: VideoCodec,
    /// Bytes in each NAL unit's length prefix.
    pub length_size: u8,
    /// H.265 video parameter sets (empty for H.264).
    pub vps: Vec<Vec<u8>>,
    /// Sequence parameter sets.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets.
    pub pps: Vec<Vec<u8>>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FlvError> {
        let bytes = self.buf.get(self.pos..self.pos + n).ok_or(truncated(self.what, self.pos))?;
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, FlvError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FlvError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A 16-bit length and that many bytes.
    fn sized(&mut self) -> Result<Vec<u8>, FlvError> {
        let len = self.u16()?;
        Ok(self.take(usize::from(len))?.to_vec())
    }
}

fn length_size(bits: u8) -> Result<u8, FlvError> {
    match (bits & 0x03) + 1 {
        3 => Err(FlvError::BadLengthSize(3)),
        n => Ok(n),
    }
}

impl VideoConfig {
    /// Reads an AVCDecoderConfigurationRecord or HEVCDecoderConfigurationRecord.
    pub fn parse(codec: VideoCodec, record: &[u8]) -> Result<VideoConfig, FlvError> {
        match codec {
            VideoCodec::H264 => Self::parse_avc(record),
            VideoCodec::H265 => Self::parse_hevc(record),
        }
    }

    fn parse_avc(record: &[u8]) -> Result<VideoConfig, FlvError> {
        let mut c = Cursor { buf: record, pos: 0, what: "AVC configuration record" };
        let _version_profile_compat_level = c.take(4)?;
        let length_size = length_size(c.u8()?)?;
        let sps_count = c.u8()? & 0x1f;
        let sps = (0..sps_count).map(|_| c.sized()).collect::<Result<Vec<_>, _>>()?;
        let pps_count = c.u8()?;
        let pps = (0..pps_count).map(|_| c.sized()).collect::<Result<Vec<_>, _>>()?;
        if sps.iter().all(|s| s.len() < 4) || pps.is_empty() {
            return Err(FlvError::NoParameterSets("AVC"));
        }
        Ok(VideoConfig { codec: VideoCodec::H264, length_size, vps: Vec::new(), sps, pps })
    }

    fn parse_hevc(record: &[u8]) -> Result<VideoConfig, FlvError> {
        let mut c = Cursor { buf: record, pos: 0, what: "HEVC configuration record" };
        let fixed = c.take(22)?;
        let length_size = length_size(fixed[21])?;
        let arrays = c.u8()?;
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..arrays {
            let kind = c.u8()? & 0x3f;
            let count = c.u16()?;
            for _ in 0..count {
                let nal = c.sized()?;
                match kind {
                    32 => vps.push(nal),
                    33 => sps.push(nal),
                    34 => pps.push(nal),
                    _ => {}
                }
            }
        }
        if vps.is_empty() || sps.is_empty() || pps.is_empty() {
            return Err(FlvError::NoParameterSets("HEVC"));
        }
        Ok(VideoConfig { codec: VideoCodec::H265, length_size, vps, sps, pps })
    }

    /// The H.264 `profile-level-id`: the three bytes after the first SPS's NAL header.
    pub fn profile_level_id(&self) -> Option<[u8; 3]> {
        let s = self.sps.first()?;
        Some([*s.get(1)?, *s.get(2)?, *s.get(3)?])
    }

    /// The parameter sets in decoding order (VPS, SPS, PPS).
    pub fn parameter_sets(&self) -> impl Iterator<Item = &[u8]> {
        self.vps.iter().chain(&self.sps).chain(&self.pps).map(Vec::as_slice)
    }
}

/// An AAC AudioSpecificConfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The audio object type (2 for AAC LC).
    pub object_type: u8,
    /// The sampling rate in Hz (the RTP clock rate).
    pub sample_rate: u32,
    /// The channel count.
    pub channels: u8,
    /// The config's bytes, for the SDP's `config=`.
    pub raw: Vec<u8>,
}

const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

impl AacConfig {
    /// Reads an AudioSpecificConfig (object type, frequency, channel configuration).
    pub fn parse(raw: &[u8]) -> Result<AacConfig, FlvError> {
        let mut bits = Bits { buf: raw, pos: 0 };
        let mut object_type = bits.read(5)? as u8;
        if object_type == 31 {
            object_type = 32 + bits.read(6)? as u8;
        }
        let index = bits.read(4)? as u8;
        let sample_rate = match index {
            15 => bits.read(24)?,
            i => *SAMPLE_RATES.get(usize::from(i)).ok_or(FlvError::BadSampleRateIndex(i))?,
        };
        let channels = match bits.read(4)? as u8 {
            0 => return Err(FlvError::NoChannelConfig),
            7 => 8,
            n => n,
        };
        if sample_rate == 0 {
            return Err(FlvError::BadSampleRateIndex(index));
        }
        Ok(AacConfig { object_type, sample_rate, channels, raw: raw.to_vec() })
    }
}

/// The video tag body of an H.264 sequence header (legacy FLV, codec id 7): an
/// AVCDecoderConfigurationRecord with one SPS and one PPS and 4-byte NAL unit lengths, the
/// form [`parse_video`] and [`VideoConfig::parse`] read. `None` when the SPS is shorter than
/// its 4-byte header or a parameter set does not fit a 16-bit length.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let profile = sps.get(1..4)?;
    let (sps_len, pps_len) = (u16::try_from(sps.len()).ok()?, u16::try_from(pps.len()).ok()?);
    let mut body = vec![0x17, 0, 0, 0, 0, 1];
    body.extend_from_slice(profile);
    // lengthSizeMinusOne 3 and one SPS, reserved bits set.
    body.extend_from_slice(&[0xff, 0xe1]);
    body.extend_from_slice(&sps_len.to_be_bytes());
    body.extend_from_slice(sps);
    body.push(1);
    body.extend_from_slice(&pps_len.to_be_bytes());
    body.extend_from_slice(pps);
    Some(body)
}

/// The video tag body of one H.264 access unit (legacy FLV): frame type 1 for a keyframe
/// or 2, composition time `composition_offset` ms, then each NAL unit behind its 4-byte
/// length. Empty NAL units are left out.
pub fn avc_frame<'a>(
    keyframe: bool,
    composition_offset: i32,
    nals: impl IntoIterator<Item = &'a [u8]>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.push(if keyframe { 0x17 } else { 0x27 });
    out.push(1);
    out.extend_from_slice(&composition_offset.to_be_bytes()[1..]);
    for nal in nals.into_iter().filter(|n| !n.is_empty()) {
        // An RTMP message is at most 2^24 bytes, so a NAL unit's length fits 32 bits.
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
}

struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Result<u32, FlvError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte =
                self.buf.get(self.pos / 8).ok_or(truncated("AudioSpecificConfig", self.pos / 8))?;
            v = v << 1 | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_tags() {
        let seq = [
            0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0,
            2, 0x68, 0xce,
        ];
        let VideoTag::SequenceHeader { codec, record } = parse_video(&seq).unwrap() else {
            panic!()
        };
        let config = VideoConfig::parse(codec, record).unwrap();
        assert_eq!(config.length_size, 4);
        assert_eq!(config.sps, [vec![0x67, 0x42, 0xc0, 0x1e]]);
        assert_eq!(config.pps, [vec![0x68, 0xce]]);
        assert_eq!(config.profile_level_id(), Some([0x42, 0xc0, 0x1e]));
        // An inter frame with composition offset -40 ms.
        let frame = [0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 2, 0x41, 0x9a, 0, 0, 0, 1, 0x06];
        let tag = parse_video(&frame).unwrap();
        let VideoTag::Frame { keyframe: false, composition_offset: -40, data, .. } = tag else {
            panic!("{tag:?}")
        };
        assert_eq!(nal_units(data, 4).unwrap(), [&[0x41, 0x9a][..], &[0x06][..]]);
        assert!(matches!(nal_units(&data[..7], 4), Err(FlvError::Truncated { .. })));
        assert!(matches!(parse_video(&[0x17, 1]), Err(FlvError::Truncated { .. })));
        assert_eq!(parse_video(&[0x22, 0]).unwrap(), VideoTag::Ignored);
    }

    #[test]
    fn avc_writers_read_back() {
        let (sps, pps) = ([0x67, 0x42, 0xc0, 0x1e, 0xd9], [0x68, 0xce, 0x3c, 0x80]);
        let seq = avc_sequence_header(&sps, &pps).unwrap();
        let VideoTag::SequenceHeader { codec: VideoCodec::H264, record } =
            parse_video(&seq).unwrap()
        else {
            panic!("{seq:02x?}")
        };
        let config = VideoConfig::parse(VideoCodec::H264, record).unwrap();
        assert_eq!(
            (config.length_size, &config.sps[..], &config.pps[..]),
            (4, &[sps.to_vec()][..], &[pps.to_vec()][..])
        );
        assert_eq!(avc_sequence_header(&[0x67, 1], &pps), None);
        let mut body = Vec::new();
        let (idr, sei): (&[u8], &[u8]) = (&[0x65, 1, 2, 3], &[0x06, 5, 0]);
        avc_frame(true, -40, [sei, &[][..], idr], &mut body);
        let tag = parse_video(&body).unwrap();
        let VideoTag::Frame {
            codec: VideoCodec::H264,
            keyframe: true,
            composition_offset: -40,
            data,
        } = tag
        else {
            panic!("{tag:?}")
        };
        assert_eq!(nal_units(data, 4).unwrap(), [sei, idr]);
        avc_frame(false, 0, [idr], &mut body);
        assert!(matches!(parse_video(&body).unwrap(), VideoTag::Frame { keyframe: false, .. }));
    }

    #[test]
    fn enhanced_hevc_tags() {
        let mut record = vec![1; 22];
        record[21] = 0x03;
        record.push(3);
        for (kind, nal) in [(32u8, [0x40, 1]), (33, [0x42, 1]), (34, [0x44, 1])] {
            record.extend_from_slice(&[0x80 | kind, 0, 1, 0, 2]);
            record.extend_from_slice(&nal);
        }
        let mut seq = vec![0x90];
        seq.extend_from_slice(b"hvc1");
        seq.extend_from_slice(&record);
        let VideoTag::SequenceHeader { codec: VideoCodec::H265, record } =
            parse_video(&seq).unwrap()
        else {
            panic!()
        };
        let config = VideoConfig::parse(VideoCodec::H265, record).unwrap();
        assert_eq!(config.parameter_sets().count(), 3);
        assert_eq!(config.vps, [vec![0x40, 1]]);
        let mut frame = vec![0x91];
        frame.extend_from_slice(b"hvc1");
        frame.extend_from_slice(&[0, 0, 40, 0, 0, 0, 1, 0x26]);
        let tag = parse_video(&frame).unwrap();
        assert!(matches!(tag, VideoTag::Frame { keyframe: true, composition_offset: 40, .. }));
        let mut framex = vec![0xa3];
        framex.extend_from_slice(b"hvc1");
        assert!(matches!(
            parse_video(&framex).unwrap(),
            VideoTag::Frame { keyframe: false, composition_offset: 0, .. }
        ));
    }

    #[test]
    fn audio_specific_config() {
        let lc = AacConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!((lc.object_type, lc.sample_rate, lc.channels), (2, 44100, 2));
        let mono48 = AacConfig::parse(&[0x11, 0x88]).unwrap();
        assert_eq!((mono48.sample_rate, mono48.channels), (48000, 1));
        assert_eq!(AacConfig::parse(&[0x17, 0x10]), Err(FlvError::BadSampleRateIndex(14)));
        assert_eq!(AacConfig::parse(&[0x12, 0x00]), Err(FlvError::NoChannelConfig));
        assert!(matches!(AacConfig::parse(&[0x12]), Err(FlvError::Truncated { .. })));
        assert_eq!(parse_audio(&[0xaf, 1, 0x21]).unwrap(), AudioTag::AacFrame(&[0x21]));
        assert_eq!(parse_audio(&[0x2f, 1]).unwrap(), AudioTag::Ignored);
    }
}
