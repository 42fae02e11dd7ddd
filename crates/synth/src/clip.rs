//! The clip: an H.264 Annex-B elementary stream split into NAL units and access units.

use std::ops::Range;

use crate::sdp::base64;
use crate::SynthError;

/// The embedded clip: 100 frames of 320x180 Constrained Baseline at 25 fps, an IDR every 25
/// frames with SPS/PPS before each (see `assets/README.md` for the exact ffmpeg command).
pub const EMBEDDED_CLIP: &[u8] = include_bytes!("../assets/clip.h264");

/// NAL unit types (ITU-T H.264 Table 7-1) this crate cares about.
pub(crate) mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub(crate) const SLICE: u8 = 1;
    /// Coded slice of an IDR picture.
    pub(crate) const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub(crate) const SEI: u8 = 6;
    /// Sequence parameter set.
    pub(crate) const SPS: u8 = 7;
    /// Picture parameter set.
    pub(crate) const PPS: u8 = 8;
    /// Access unit delimiter.
    pub(crate) const AUD: u8 = 9;
    /// End of sequence.
    pub(crate) const END_OF_SEQUENCE: u8 = 10;
    /// End of stream.
    pub(crate) const END_OF_STREAM: u8 = 11;
    /// Filler data: decoders discard it.
    pub(crate) const FILLER: u8 = 12;
}

/// The NAL unit type of a NAL unit's first byte.
pub(crate) fn nal_unit_type(header: u8) -> u8 {
    header & 0x1f
}

/// One access unit (one coded picture and the parameter sets before it) of a [`Clip`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct AccessUnit {
    /// Ranges of the clip's NAL bytes, in decode order.
    nals: Range<usize>,
    /// The picture is an IDR.
    keyframe: bool,
}

/// An H.264 clip ready to be looped: NAL units without start codes, grouped into access units
/// (frames), plus the first SPS and PPS for the SDP.
///
/// Filler-data, end-of-sequence and end-of-stream NAL units in the input are dropped (they
/// would break the loop or distort the bitrate); everything else is kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// All kept NAL units, concatenated, without start codes.
    bytes: Vec<u8>,
    /// Byte range of each NAL unit in `bytes`.
    nal_ranges: Vec<Range<usize>>,
    /// Access units, as ranges of `nal_ranges`.
    frames: Vec<AccessUnit>,
    /// Index (in `nal_ranges`) of the first SPS.
    sps: usize,
    /// Index (in `nal_ranges`) of the first PPS.
    pps: usize,
}

/// Splits an Annex-B byte stream at its start codes (`00 00 01` or `00 00 00 01`) and yields
/// `(offset, nal)` for each NAL unit, with trailing zero bytes removed.
fn split_annex_b(stream: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = find_start_code(stream, 0).map(|(_, after)| after);
    std::iter::from_fn(move || {
        let start = pos?;
        let (end, next) = match find_start_code(stream, start) {
            Some((at, after)) => (at, Some(after)),
            None => (stream.len(), None),
        };
        pos = next;
        let mut nal = &stream[start..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        Some((start, nal))
    })
}

/// Finds the next `00 00 01` at or after `from`: returns (its offset, offset just past it).
fn find_start_code(stream: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = stream.get(from..)?;
    tail.windows(3).position(|w| w == [0, 0, 1]).map(|i| (from + i, from + i + 3))
}

impl Clip {
    /// The embedded clip ([`EMBEDDED_CLIP`]). Its unit tests guarantee this succeeds.
    pub fn embedded() -> Result<Clip, SynthError> {
        Clip::parse(EMBEDDED_CLIP)
    }

    /// Parses an Annex-B H.264 elementary stream. The clip must start with an IDR access
    /// unit and carry an SPS and a PPS before it, so that it can be looped and described in
    /// SDP. One or more slices per picture are fine; access unit boundaries follow
    /// ITU-T H.264 §7.4.1.2.3 (AUD, SEI, SPS, PPS, or a slice with `first_mb_in_slice == 0`
    /// after a picture has started).
    pub fn parse(annex_b: &[u8]) -> Result<Clip, SynthError> {
        let mut bytes = Vec::with_capacity(annex_b.len());
        let mut nal_ranges = Vec::new();
        let mut frames = Vec::new();
        // NAL index where the access unit being collected starts, whether it has a picture.
        let mut au_start = 0;
        let mut au_has_picture = false;
        let mut au_keyframe = false;
        let mut sps = None;
        let mut pps = None;
        for (offset, nal) in split_annex_b(annex_b) {
            let Some(&header) = nal.first() else {
                // `00 00 01` followed directly by another start code: nothing to keep.
                continue;
            };
            if header & 0x80 != 0 {
                return Err(SynthError::MalformedNal { offset });
            }
            let kind = nal_unit_type(header);
            if matches!(
                kind,
                nal_type::FILLER | nal_type::END_OF_SEQUENCE | nal_type::END_OF_STREAM
            ) {
                continue;
            }
            let is_slice = matches!(kind, nal_type::SLICE | nal_type::IDR);
            // first_mb_in_slice is ue(v) and comes first: it is 0 iff the first bit is 1.
            let first_slice_of_picture = is_slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
            let starts_new_au = matches!(
                kind,
                nal_type::AUD | nal_type::SEI | nal_type::SPS | nal_type::PPS | 14..=18
            ) || first_slice_of_picture;
            if au_has_picture && starts_new_au {
                frames.push(AccessUnit { nals: au_start..nal_ranges.len(), keyframe: au_keyframe });
                au_start = nal_ranges.len();
                au_has_picture = false;
                au_keyframe = false;
            }
            if is_slice {
                au_has_picture = true;
                au_keyframe |= kind == nal_type::IDR;
            }
            if kind == nal_type::SPS && sps.is_none() && frames.is_empty() {
                sps = Some(nal_ranges.len());
            }
            if kind == nal_type::PPS && pps.is_none() && frames.is_empty() {
                pps = Some(nal_ranges.len());
            }
            let start = bytes.len();
            bytes.extend_from_slice(nal);
            nal_ranges.push(start..bytes.len());
        }
        if au_has_picture {
            frames.push(AccessUnit { nals: au_start..nal_ranges.len(), keyframe: au_keyframe });
        }
        // Non-picture NAL units after the last picture belong to no frame; drop them.
        let first = frames.first().ok_or(SynthError::EmptyClip)?;
        if !first.keyframe {
            return Err(SynthError::NoKeyframeAtStart);
        }
        let sps = sps.ok_or(SynthError::MissingParameterSet("SPS"))?;
        let pps = pps.ok_or(SynthError::MissingParameterSet("PPS"))?;
        if bytes[nal_ranges[sps].clone()].len() < 4 {
            return Err(SynthError::MalformedNal { offset: 0 });
        }
        Ok(Clip { bytes, nal_ranges, frames, sps, pps })
    }

    /// Number of access units (frames) in one pass of the clip.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Whether frame `index` (0-based, within one pass) is an IDR picture. `false` when out
    /// of range.
    pub fn is_keyframe(&self, index: usize) -> bool {
        self.frames.get(index).is_some_and(|f| f.keyframe)
    }

    /// Indices of the IDR frames within one pass.
    pub fn keyframes(&self) -> impl Iterator<Item = usize> + '_ {
        self.frames.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i)
    }

    /// The NAL units (without start codes) of frame `index`, in decode order; empty when out
    /// of range.
    pub fn frame_nals(&self, index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let range = self.frames.get(index).map_or(0..0, |f| f.nals.clone());
        self.nal_ranges[range].iter().map(|r| &self.bytes[r.clone()])
    }

    /// The first sequence parameter set NAL unit (header byte included, emulation
    /// prevention bytes kept, as in `sprop-parameter-sets`).
    pub fn sps(&self) -> &[u8] {
        &self.bytes[self.nal_ranges[self.sps].clone()]
    }

    /// The first picture parameter set NAL unit.
    pub fn pps(&self) -> &[u8] {
        &self.bytes[self.nal_ranges[self.pps].clone()]
    }

    /// The RFC 6184 `profile-level-id`: the SPS's profile_idc, constraint flags and
    /// level_idc as six lowercase hex digits (e.g. `42c00c`).
    pub fn profile_level_id(&self) -> String {
        let sps = self.sps();
        sps[1..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The RFC 6184 `sprop-parameter-sets`: base64 SPS, a comma, base64 PPS.
    pub fn sprop_parameter_sets(&self) -> String {
        format!("{},{}", base64(self.sps()), base64(self.pps()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annex_b(nals: &[&[u8]], long_start_codes: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(if long_start_codes { &[0, 0, 0, 1] } else { &[0, 0, 1] });
            out.extend_from_slice(nal);
        }
        out
    }

    #[test]
    fn embedded_clip_shape() {
        let clip = Clip::embedded().unwrap();
        assert_eq!(clip.frame_count(), 100);
        assert_eq!(clip.keyframes().collect::<Vec<_>>(), vec![0, 25, 50, 75]);
        for i in 0..clip.frame_count() {
            let kinds: Vec<u8> = clip.frame_nals(i).map(|n| nal_unit_type(n[0])).collect();
            if i % 25 == 0 {
                assert_eq!(kinds, vec![7, 8, 5], "frame {i}");
            } else {
                assert_eq!(kinds, vec![1], "frame {i}");
            }
        }
        // Everything but start codes is kept: 108 NAL units, 3- or 4-byte start codes.
        let nal_bytes: usize = (0..100).flat_map(|i| clip.frame_nals(i)).map(<[u8]>::len).sum();
        assert!(nal_bytes + 108 * 3 <= EMBEDDED_CLIP.len());
        assert!(nal_bytes + 108 * 4 >= EMBEDDED_CLIP.len());
    }

    #[test]
    fn embedded_clip_parameter_sets() {
        let clip = Clip::embedded().unwrap();
        // As printed by `ffmpeg -i assets/clip.h264 -c copy -f rtp rtp://127.0.0.1:9
        // -sdp_file /dev/stdout`.
        assert_eq!(clip.profile_level_id(), "42c00c");
        assert_eq!(clip.sprop_parameter_sets(), "Z0LADNkBQZ+fARAAAAMAEAAAAwMg8UKkgA==,aMuBEsg=");
        assert_eq!(nal_unit_type(clip.sps()[0]), 7);
        assert_eq!(nal_unit_type(clip.pps()[0]), 8);
    }

    #[test]
    fn groups_multi_slice_pictures_and_aud() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x0c, 0xd9];
        let pps: &[u8] = &[0x68, 0xcb];
        let idr_a: &[u8] = &[0x65, 0x88, 1]; // first_mb_in_slice = 0
        let idr_b: &[u8] = &[0x65, 0x40, 2]; // first_mb_in_slice = 1
        let aud: &[u8] = &[0x09, 0xf0];
        let p_a: &[u8] = &[0x41, 0x9a, 3];
        let p_b: &[u8] = &[0x41, 0x20, 4]; // first_mb_in_slice = 3
        let p2: &[u8] = &[0x41, 0x9a, 5];
        let eos: &[u8] = &[0x0b];
        for long in [false, true] {
            let stream = annex_b(&[sps, pps, idr_a, idr_b, aud, p_a, p_b, p2, eos], long);
            let clip = Clip::parse(&stream).unwrap();
            assert_eq!(clip.frame_count(), 3);
            assert_eq!(clip.frame_nals(0).collect::<Vec<_>>(), vec![sps, pps, idr_a, idr_b]);
            assert_eq!(clip.frame_nals(1).collect::<Vec<_>>(), vec![aud, p_a, p_b]);
            assert_eq!(clip.frame_nals(2).collect::<Vec<_>>(), vec![p2]);
            assert!(clip.is_keyframe(0) && !clip.is_keyframe(1) && !clip.is_keyframe(2));
            assert_eq!(clip.sps(), sps);
            assert_eq!(clip.pps(), pps);
        }
    }

    #[test]
    fn rejects_unloopable_clips() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x0c];
        let pps: &[u8] = &[0x68, 0xcb];
        assert_eq!(Clip::parse(&[]), Err(SynthError::EmptyClip));
        assert_eq!(Clip::parse(&annex_b(&[sps, pps], false)), Err(SynthError::EmptyClip));
        assert_eq!(
            Clip::parse(&annex_b(&[sps, pps, &[0x41, 0x88]], false)),
            Err(SynthError::NoKeyframeAtStart)
        );
        assert_eq!(
            Clip::parse(&annex_b(&[pps, &[0x65, 0x88]], false)),
            Err(SynthError::MissingParameterSet("SPS"))
        );
        assert!(matches!(
            Clip::parse(&annex_b(&[&[0xe5, 0x88]], false)),
            Err(SynthError::MalformedNal { offset: 3 })
        ));
    }
}
