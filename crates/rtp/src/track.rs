//! What an SDP media section says about the RTP stream it describes: its payload type (and
//! every one it may carry), encoding, clock rate and, for H.264/H.265, the [`Codec`] whose
//! keyframes can be found.
//!
//! The relay (publishers, pulls, raw RTP ingest) and the load generator all turn a described
//! presentation into tracks; they read each media section here, so that the relay's GOP cache
//! and the generator's keyframe and jitter accounting cannot pick different formats for the
//! same track.
//!
//! # The rule
//!
//! A media section's format is the **first payload type of its `m=` line** (RFC 8866 §5.14: the
//! formats are listed in order of preference, and an RTSP server sends the first). Its
//! `a=rtpmap` gives the encoding and clock rate; without one, a static payload type takes
//! RFC 3551's table (PT 0 is PCMU at 8 kHz); otherwise the encoding is unknown and the clock
//! is 90 kHz, the video clock, which is what an unannotated RTSP stream almost always is. The
//! order of the `a=rtpmap` lines plays no part, except when the `m=` line lists no payload
//! type at all (some cameras omit them): then the first `a=rtpmap` is the format.

use manifold_sdp::{Media, Sdp};

use crate::codec::Codec;

/// The clock rate assumed when the SDP gives none.
pub const DEFAULT_CLOCK_RATE: u32 = 90_000;

/// The RTP format of one SDP media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFormat {
    /// The first payload type of the `m=` line (or of the first `a=rtpmap` when the line has
    /// none).
    pub payload_type: Option<u8>,
    /// The encoding name as written in its `a=rtpmap` (or RFC 3551's name for a static
    /// payload type without one); `None` when unknown.
    pub encoding: Option<String>,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The codec whose keyframes [`crate::codec`] can find, if the encoding is one.
    pub codec: Option<Codec>,
    /// Every payload type the section lists: its `m=` line's and its `a=rtpmap`s' (a sender
    /// may switch among them). Players drop packets of any other (ffmpeg, live555 and
    /// GStreamer alike); any is allowed when the section names none.
    pub payload_types: PayloadTypes,
}

/// A set of RTP payload types (0–127).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadTypes(u128);

impl PayloadTypes {
    /// Every payload type.
    pub const ANY: PayloadTypes = PayloadTypes(u128::MAX);

    /// These payload types (values of 128 and above are not payload types and are left out);
    /// [`PayloadTypes::ANY`] when there are none.
    pub fn of(types: impl IntoIterator<Item = u8>) -> PayloadTypes {
        let bits = types.into_iter().filter(|pt| *pt < 128).fold(0u128, |b, pt| b | 1 << pt);
        if bits == 0 {
            PayloadTypes::ANY
        } else {
            PayloadTypes(bits)
        }
    }

    /// Whether `payload_type` is in the set.
    pub fn contains(self, payload_type: u8) -> bool {
        payload_type < 128 && self.0 & 1 << payload_type != 0
    }
}

impl Default for PayloadTypes {
    fn default() -> PayloadTypes {
        PayloadTypes::ANY
    }
}

impl TrackFormat {
    /// The format of `media` (see the [module docs](self) for the rule).
    pub fn of(media: &Media) -> TrackFormat {
        // Some cameras list no format on the m= line; their only rtpmap is the format then.
        let payload_type = media
            .media_line()
            .payload_types()
            .next()
            .or_else(|| media.rtpmaps().next().map(|r| r.payload_type));
        let (encoding, clock_rate) = match payload_type {
            Some(pt) => match media.rtpmap(pt) {
                Some(r) => (Some(r.encoding), r.clock_rate),
                None => match static_payload_type(pt) {
                    Some((name, rate)) => (Some(name.to_owned()), rate),
                    None => (None, DEFAULT_CLOCK_RATE),
                },
            },
            None => (None, DEFAULT_CLOCK_RATE),
        };
        let codec = encoding.as_deref().and_then(Codec::from_encoding_name);
        let listed =
            media.media_line().payload_types().chain(media.rtpmaps().map(|r| r.payload_type));
        TrackFormat {
            payload_type,
            encoding,
            clock_rate,
            codec,
            payload_types: PayloadTypes::of(listed),
        }
    }

    /// The formats of every media section of `sdp`, in order.
    pub fn all_of(sdp: &Sdp) -> Vec<TrackFormat> {
        sdp.media().iter().map(TrackFormat::of).collect()
    }
}

/// RFC 3551 §6's static payload types: encoding name and clock rate.
fn static_payload_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(media: &str) -> Vec<TrackFormat> {
        let text = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=t\r\nt=0 0\r\n{media}");
        TrackFormat::all_of(&Sdp::parse(text.as_bytes()).unwrap())
    }

    #[test]
    fn h264_and_h265() {
        let f = formats(
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             m=video 0 RTP/AVP 97\r\na=rtpmap:97 h265/90000\r\n",
        );
        assert_eq!(f[0].codec, Some(Codec::H264));
        assert_eq!(f[0].payload_type, Some(96));
        assert_eq!(f[1].codec, Some(Codec::H265));
        assert_eq!(f[1].encoding.as_deref(), Some("h265"));
    }

    #[test]
    fn audio_has_its_clock_and_no_codec() {
        let f = formats("m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n");
        assert_eq!(f[0].clock_rate, 48000);
        assert_eq!(f[0].codec, None);
    }

    /// The old copies disagreed here: the relay took the m= line's first payload type (97,
    /// H.265), the generator the first `a=rtpmap` line (96, H.264).
    #[test]
    fn the_m_line_order_decides_not_the_rtpmap_order() {
        let f = formats(
            "m=video 0 RTP/AVP 97 96\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 H265/90000\r\n",
        );
        assert_eq!(f[0].payload_type, Some(97));
        assert_eq!(f[0].codec, Some(Codec::H265));
    }

    /// The old copies disagreed here too, and both were wrong: the relay found no rtpmap for
    /// PT 0 and assumed 90 kHz, the generator took opus's 48 kHz from the only rtpmap. PT 0 is
    /// PCMU at 8 kHz.
    #[test]
    fn a_static_payload_type_without_rtpmap_takes_rfc_3551() {
        let f = formats("m=audio 0 RTP/AVP 0 111\r\na=rtpmap:111 opus/48000/2\r\n");
        assert_eq!(f[0].payload_type, Some(0));
        assert_eq!(f[0].encoding.as_deref(), Some("PCMU"));
        assert_eq!(f[0].clock_rate, 8000);
        assert_eq!(f[0].codec, None);
    }

    #[test]
    fn an_rtpmap_overrides_the_static_table() {
        let f = formats("m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/12345\r\n");
        assert_eq!(f[0].clock_rate, 12345);
    }

    #[test]
    fn unknown_formats_default_to_90khz() {
        // A dynamic payload type without rtpmap, and an m= line without RTP formats.
        let f = formats("m=video 0 RTP/AVP 96\r\nm=application 0 TCP/WSS *\r\n");
        assert_eq!(
            f[0],
            TrackFormat {
                payload_type: Some(96),
                encoding: None,
                clock_rate: 90_000,
                codec: None,
                payload_types: PayloadTypes::of([96]),
            }
        );
        assert_eq!(f[1].payload_type, None);
        assert_eq!(f[1].clock_rate, 90_000);
    }

    #[test]
    fn the_payload_types_a_section_may_carry_are_its_m_lines_and_rtpmaps() {
        let f = formats(
            "m=audio 0 RTP/AVP 97 101\r\na=rtpmap:97 opus/48000/2\r\n\
             a=rtpmap:101 telephone-event/48000\r\nm=video 0 RTP/AVP\r\na=rtpmap:96 H264/90000\r\n\
             m=video 0 RTP/AVP\r\n",
        );
        let pts = f[0].payload_types;
        assert!(pts.contains(97) && pts.contains(101));
        assert!(!pts.contains(96) && !pts.contains(0) && !pts.contains(127) && !pts.contains(200));
        assert_eq!(f[1].payload_types, PayloadTypes::of([96]), "the rtpmap's, without an m= list");
        assert_eq!(f[2].payload_types, PayloadTypes::ANY, "a section naming none allows any");
        assert!((0..128).all(|pt| PayloadTypes::ANY.contains(pt)));
        assert_eq!(PayloadTypes::of([200]), PayloadTypes::ANY, "not a payload type");
    }

    #[test]
    fn an_m_line_without_formats_takes_the_first_rtpmap() {
        let f = formats("m=video 0 RTP/AVP\r\na=rtpmap:96 H264/90000\r\n");
        assert_eq!(f[0].payload_type, Some(96));
        assert_eq!(f[0].codec, Some(Codec::H264));
    }
}
