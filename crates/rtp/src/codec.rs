//! Inspection of H.264 (RFC 6184) and H.265 (RFC 7798) RTP payloads: which NAL units a packet
//! carries, whether it starts a keyframe, and the parameter sets it holds, all borrowed from
//! the payload without copying. The end of a frame is the RTP marker bit
//! ([`crate::packet::RtpPacket::marker`]), not something this module decides.
//!
//! # What "starts a keyframe" means
//!
//! A packet *starts a keyframe* when it carries the first byte of a random-access slice
//! (H.264 IDR, type 5; H.265 IRAP, types 16..=21) or of a sequence-level parameter set
//! (H.264 SPS; H.265 VPS or SPS). Parameter sets count because encoders send them right
//! before the IDR and a decoder joining there needs them: a GOP cache should begin at the SPS,
//! not at the slice. One access unit (one RTP timestamp) often has several such packets
//! (ffmpeg and GStreamer repeat SPS/PPS, and slices come in several NAL units), so a cache must
//! restart only at the *first* of them per access unit: [`GopStart`] does exactly that.
//!
//! The one false positive is an SPS repeated mid-GOP without an IDR after it; no stateless
//! per-packet test can rule it out, and [`h264::Payload::contains_idr`] (or
//! [`h265::Payload::contains_irap`]) tells a caller that wants to confirm.

use crate::RtpTime;

pub mod h264;
pub mod h265;

/// Why an RTP payload is not a well-formed H.264 or H.265 payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload is shorter than its payload header (1 byte for H.264, 2 for H.265).
    #[error("payload of {len} bytes is shorter than its {needed}-byte header")]
    HeaderTruncated {
        /// The payload's length.
        len: usize,
        /// Bytes the payload header needs (including FU header, DON or DONL).
        needed: usize,
    },
    /// An aggregation unit's size field (or the DON fields before it) is cut off.
    #[error("aggregation unit at offset {offset}: size field cut off")]
    SizeTruncated {
        /// Offset of the unit in the payload.
        offset: usize,
    },
    /// An aggregation unit is too small to hold its NAL unit header.
    #[error("aggregation unit at offset {offset} has size {size}, too small for a NAL unit")]
    UnitTooShort {
        /// Offset of the unit in the payload.
        offset: usize,
        /// Its size field.
        size: usize,
    },
    /// An aggregation unit runs past the end of the payload.
    #[error("aggregation unit at offset {offset} of size {size} runs past the payload end")]
    UnitOverrun {
        /// Offset of the unit in the payload.
        offset: usize,
        /// Its size field.
        size: usize,
    },
}

/// The codecs this module inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC, RFC 6184.
    H264,
    /// H.265 / HEVC, RFC 7798 (without DONL fields, i.e. `sprop-max-don-diff` 0).
    H265,
}

impl Codec {
    /// The codec for an SDP `a=rtpmap` encoding name (`H264`, `H265`; case-insensitive).
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("H264") {
            Some(Codec::H264)
        } else if name.eq_ignore_ascii_case("H265") {
            Some(Codec::H265)
        } else {
            None
        }
    }

    /// Whether `payload` starts a keyframe (see the [module docs](self)).
    pub fn starts_keyframe(self, payload: &[u8]) -> Result<bool, CodecError> {
        Ok(match self {
            Codec::H264 => h264::Payload::parse(payload)?.starts_keyframe(),
            Codec::H265 => h265::Payload::parse(payload)?.starts_keyframe(),
        })
    }
}

/// Which part of a NAL unit a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// The complete NAL unit, header included.
    Whole,
    /// The first fragment (FU with the S bit; tolerated with E also set).
    Start,
    /// A fragment that is neither first nor last.
    Middle,
    /// The last fragment (FU with the E bit).
    End,
}

impl Fragment {
    /// Whether this holds the NAL unit's first byte.
    pub fn is_start(self) -> bool {
        matches!(self, Fragment::Whole | Fragment::Start)
    }

    fn of_fu_header(fu_header: u8) -> Fragment {
        match (fu_header & 0x80 != 0, fu_header & 0x40 != 0) {
            (true, _) => Fragment::Start,
            (false, true) => Fragment::End,
            (false, false) => Fragment::Middle,
        }
    }
}

/// A set of NAL unit types (0..=63, enough for both codecs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NalTypeSet(u64);

impl NalTypeSet {
    /// Whether `nal_type` (an [`h264::NalType`], [`h265::NalType`] or raw value) is in the set.
    pub fn contains(self, nal_type: impl Into<u8>) -> bool {
        let t = nal_type.into();
        t < 64 && self.0 & (1 << t) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw values in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..64u8).filter(move |&t| self.0 & (1 << t) != 0)
    }

    fn insert(&mut self, t: u8) {
        self.0 |= 1 << (t & 63);
    }
}

/// Finds where a GOP cache should restart: the first packet of each access unit (RTP
/// timestamp) that starts a keyframe, so that repeated parameter sets and multi-slice IDRs in
/// the same access unit do not restart it again.
///
/// ```
/// use manifold_rtp::codec::GopStart;
/// use manifold_rtp::RtpTime;
///
/// let mut gop = GopStart::default();
/// assert!(gop.observe(RtpTime(3000), true)); // SPS: restart here
/// assert!(!gop.observe(RtpTime(3000), true)); // the IDR slice of the same frame
/// assert!(!gop.observe(RtpTime(6000), false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GopStart {
    last: Option<RtpTime>,
}

impl GopStart {
    /// Feeds one packet in arrival order; returns `true` if the cache should restart at it.
    pub fn observe(&mut self, timestamp: RtpTime, starts_keyframe: bool) -> bool {
        if starts_keyframe && self.last != Some(timestamp) {
            self.last = Some(timestamp);
            true
        } else {
            false
        }
    }
}

/// A NAL unit (or fragment of one) found by [`Units`], before the codec names its type.
#[derive(Debug, Clone, Copy)]
struct RawUnit<'a> {
    fragment: Fragment,
    /// For fragments, the FU header's type; for whole units, unused (the type is in `data`).
    fu_type: u8,
    data: &'a [u8],
}

/// The shared walk over a payload's NAL units, for both codecs.
#[derive(Debug, Clone)]
enum Units<'a> {
    Done,
    One(RawUnit<'a>),
    Aggregate {
        /// The whole payload, so offsets in errors are payload offsets.
        payload: &'a [u8],
        /// Where the next unit starts.
        pos: usize,
        /// Whether the next unit is the first.
        first: bool,
        /// DON bytes before the first unit's size field (H.265 DONL).
        lead_first: usize,
        /// DON bytes before every later unit's size field (H.265 DOND).
        lead_rest: usize,
        /// Bytes between the size field and the NAL unit (H.264 MTAP DOND + TS offset),
        /// counted in the size.
        inner: usize,
        /// The NAL unit header length.
        nal_header: usize,
    },
}

impl<'a> Iterator for Units<'a> {
    type Item = Result<RawUnit<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        match std::mem::replace(self, Units::Done) {
            Units::Done => None,
            Units::One(unit) => Some(Ok(unit)),
            Units::Aggregate { payload, pos, first, lead_first, lead_rest, inner, nal_header } => {
                if pos == payload.len() {
                    return None;
                }
                let lead = if first { lead_first } else { lead_rest };
                let size_at = pos + lead;
                let Some(size) = payload.get(size_at..size_at + 2) else {
                    return Some(Err(CodecError::SizeTruncated { offset: pos }));
                };
                let size = usize::from(u16::from_be_bytes([size[0], size[1]]));
                if size < inner + nal_header {
                    return Some(Err(CodecError::UnitTooShort { offset: pos, size }));
                }
                let end = size_at + 2 + size;
                if end > payload.len() {
                    return Some(Err(CodecError::UnitOverrun { offset: pos, size }));
                }
                *self = Units::Aggregate {
                    payload,
                    pos: end,
                    first: false,
                    lead_first,
                    lead_rest,
                    inner,
                    nal_header,
                };
                let data = &payload[size_at + 2 + inner..end];
                Some(Ok(RawUnit { fragment: Fragment::Whole, fu_type: 0, data }))
            }
        }
    }
}

/// Splits off the first `needed` bytes of a payload, or reports it too short.
fn header(payload: &[u8], needed: usize) -> Result<&[u8], CodecError> {
    payload.get(needed..).ok_or(CodecError::HeaderTruncated { len: payload.len(), needed })
}

/// What a validated payload carries, summarised once at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Summary {
    /// Types of every NAL unit or fragment present.
    present: NalTypeSet,
    /// Types whose first byte is in the packet.
    starts: NalTypeSet,
}

impl Summary {
    /// Walks `units` to the end, failing on the first malformed one.
    fn of(units: Units<'_>, type_of: impl Fn(&RawUnit<'_>) -> u8) -> Result<Summary, CodecError> {
        let mut summary = Summary::default();
        for unit in units {
            let unit = unit?;
            let t = type_of(&unit);
            summary.present.insert(t);
            if unit.fragment.is_start() {
                summary.starts.insert(t);
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names() {
        assert_eq!(Codec::from_encoding_name("h264"), Some(Codec::H264));
        assert_eq!(Codec::from_encoding_name("H265"), Some(Codec::H265));
        assert_eq!(Codec::from_encoding_name("VP8"), None);
        assert_eq!(Codec::H264.starts_keyframe(&[0x67, 0x42]), Ok(true));
        assert_eq!(Codec::H264.starts_keyframe(&[0x41, 0x9a]), Ok(false));
        assert_eq!(Codec::H265.starts_keyframe(&[0x40, 0x01, 0x0c]), Ok(true));
        assert!(Codec::H265.starts_keyframe(&[0x40]).is_err());
    }

    #[test]
    fn nal_type_set() {
        let mut s = NalTypeSet::default();
        assert!(s.is_empty());
        s.insert(5);
        s.insert(63);
        assert!(s.contains(5u8) && s.contains(63u8) && !s.contains(7u8) && !s.contains(64u8));
        assert_eq!(s.iter().collect::<Vec<_>>(), [5, 63]);
    }

    #[test]
    fn gop_start_once_per_access_unit() {
        let mut g = GopStart::default();
        let seen: Vec<bool> = [(1, false), (1, true), (1, true), (2, false), (3, true), (3, true)]
            .into_iter()
            .map(|(ts, k)| g.observe(RtpTime(ts), k))
            .collect();
        assert_eq!(seen, [false, true, false, false, true, false]);
    }
}
