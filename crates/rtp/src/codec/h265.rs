//! H.265 RTP payloads (RFC 7798): single NAL unit, aggregation (48) and fragmentation (49)
//! packets. PACI packets (50) are recognised and reported as carrying no NAL units.

use super::{header, CodecError, Fragment, NalTypeSet, RawUnit, Summary, Units};

/// An H.265 NAL unit type (6 bits of the 2-byte NAL header), or an RFC 7798 packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NalType(pub u8);

impl NalType {
    /// Trailing picture, non-reference.
    pub const TRAIL_N: NalType = NalType(0);
    /// Trailing picture, reference.
    pub const TRAIL_R: NalType = NalType(1);
    /// First IRAP type: broken link access with leading pictures.
    pub const BLA_W_LP: NalType = NalType(16);
    /// IDR that may have RADL leading pictures.
    pub const IDR_W_RADL: NalType = NalType(19);
    /// IDR without leading pictures.
    pub const IDR_N_LP: NalType = NalType(20);
    /// Clean random access; the last IRAP type.
    pub const CRA: NalType = NalType(21);
    /// Video parameter set.
    pub const VPS: NalType = NalType(32);
    /// Sequence parameter set.
    pub const SPS: NalType = NalType(33);
    /// Picture parameter set.
    pub const PPS: NalType = NalType(34);
    /// Access unit delimiter.
    pub const AUD: NalType = NalType(35);
    /// Aggregation packet.
    pub const AP: NalType = NalType(48);
    /// Fragmentation unit.
    pub const FU: NalType = NalType(49);
    /// Payload content information (PACI) packet.
    pub const PACI: NalType = NalType(50);

    /// The type in the first byte of a NAL unit header.
    pub fn of_header(first_byte: u8) -> NalType {
        NalType((first_byte >> 1) & 0x3f)
    }

    /// Whether this is an intra random access point slice (BLA, IDR or CRA, 16..=21).
    pub fn is_irap(self) -> bool {
        (16..=21).contains(&self.0)
    }
}

impl From<NalType> for u8 {
    fn from(t: NalType) -> u8 {
        t.0
    }
}

/// A NAL unit, or a fragment of one, found in a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalUnit<'a> {
    /// The NAL unit's type (for fragments, from the FU header).
    pub nal_type: NalType,
    /// Whether this is the whole unit or which fragment.
    pub fragment: Fragment,
    /// For [`Fragment::Whole`], the complete NAL unit including its 2-byte header; for
    /// fragments, the fragment's bytes after the payload header, FU header and DONL.
    pub data: &'a [u8],
}

/// A validated H.265 RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    payload: &'a [u8],
    donl: bool,
    summary: Summary,
}

impl<'a> Payload<'a> {
    /// Validates an RTP payload of a stream without DON fields (`sprop-max-don-diff` absent or
    /// 0, the usual case).
    pub fn parse(payload: &'a [u8]) -> Result<Self, CodecError> {
        Payload::parse_with_donl(payload, false)
    }

    /// Validates an RTP payload; `donl` says whether the stream carries DONL/DOND fields
    /// (`sprop-max-don-diff` > 0 in SDP).
    pub fn parse_with_donl(payload: &'a [u8], donl: bool) -> Result<Self, CodecError> {
        let summary = Summary::of(units(payload, donl)?, |u| type_of(u).0)?;
        Ok(Payload { payload, donl, summary })
    }

    /// The packet type: the NAL type itself (0..=47) for a single NAL unit packet, else
    /// [`NalType::AP`], [`NalType::FU`], [`NalType::PACI`] or an unspecified type.
    pub fn packet_type(&self) -> NalType {
        // parse() rejected payloads shorter than 2 bytes.
        NalType::of_header(self.payload.first().copied().unwrap_or(0))
    }

    /// The NAL units (or the fragment) in the payload, in order.
    pub fn nal_units(&self) -> impl Iterator<Item = NalUnit<'a>> + 'a {
        // Validated in parse(), so neither step can fail now.
        units(self.payload, self.donl)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|u| NalUnit { nal_type: type_of(&u), fragment: u.fragment, data: u.data })
    }

    /// The types of all NAL units and fragments present.
    pub fn nal_types(&self) -> NalTypeSet {
        self.summary.present
    }

    /// Whether the packet holds the first byte of an IRAP slice (BLA, IDR or CRA).
    pub fn contains_irap(&self) -> bool {
        (16..=21u8).any(|t| self.summary.starts.contains(t))
    }

    /// Whether the packet holds the first byte of an IRAP slice, a VPS or an SPS (see the
    /// [module docs](super)).
    pub fn starts_keyframe(&self) -> bool {
        self.contains_irap()
            || self.summary.starts.contains(NalType::VPS)
            || self.summary.starts.contains(NalType::SPS)
    }

    /// The complete VPS, SPS and PPS NAL units in the packet (2-byte header included), in
    /// order. Fragmented parameter sets are not reassembled.
    pub fn parameter_sets(&self) -> impl Iterator<Item = NalUnit<'a>> + 'a {
        self.nal_units().filter(|u| {
            u.fragment == Fragment::Whole
                && matches!(u.nal_type, NalType::VPS | NalType::SPS | NalType::PPS)
        })
    }

    /// The first complete VPS in the packet.
    pub fn vps(&self) -> Option<&'a [u8]> {
        self.parameter_sets().find(|u| u.nal_type == NalType::VPS).map(|u| u.data)
    }

    /// The first complete SPS in the packet.
    pub fn sps(&self) -> Option<&'a [u8]> {
        self.parameter_sets().find(|u| u.nal_type == NalType::SPS).map(|u| u.data)
    }

    /// The first complete PPS in the packet.
    pub fn pps(&self) -> Option<&'a [u8]> {
        self.parameter_sets().find(|u| u.nal_type == NalType::PPS).map(|u| u.data)
    }
}

fn type_of(unit: &RawUnit<'_>) -> NalType {
    match unit.fragment {
        Fragment::Whole => NalType::of_header(unit.data.first().copied().unwrap_or(0)),
        _ => NalType(unit.fu_type & 0x3f),
    }
}

/// The walk over `payload`'s NAL units, after checking the packet header fits.
fn units(payload: &[u8], donl: bool) -> Result<Units<'_>, CodecError> {
    header(payload, 2)?;
    let don = if donl { 2 } else { 0 };
    match NalType::of_header(payload[0]) {
        NalType(0..=47) => {
            Ok(Units::One(RawUnit { fragment: Fragment::Whole, fu_type: 0, data: payload }))
        }
        NalType::AP => Ok(Units::Aggregate {
            payload,
            pos: 2,
            first: true,
            // With DON: a 16-bit DONL before the first unit, an 8-bit DOND before the rest.
            lead_first: don,
            lead_rest: don / 2,
            inner: 0,
            nal_header: 2,
        }),
        NalType::FU => {
            let fu_header = *payload
                .get(2)
                .ok_or(CodecError::HeaderTruncated { len: payload.len(), needed: 3 })?;
            let fragment = Fragment::of_fu_header(fu_header);
            // DONL is only in the first fragment.
            let data = header(payload, if fragment == Fragment::Start { 3 + don } else { 3 })?;
            Ok(Units::One(RawUnit { fragment, fu_type: fu_header, data }))
        }
        _ => Ok(Units::Done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn types(p: &Payload<'_>) -> Vec<(u8, Fragment, usize)> {
        p.nal_units().map(|u| (u.nal_type.0, u.fragment, u.data.len())).collect()
    }

    /// A 2-byte NAL header for `t` (layer 0, TID 1).
    fn hdr(t: u8) -> [u8; 2] {
        [t << 1, 1]
    }

    #[test]
    fn single_nal_units() {
        let idr = [hdr(19)[0], 1, 0xaf];
        let p = Payload::parse(&idr).unwrap();
        assert_eq!(p.packet_type(), NalType::IDR_W_RADL);
        assert!(p.contains_irap() && p.starts_keyframe());
        let vps = [hdr(32)[0], 1, 0x0c];
        let p = Payload::parse(&vps).unwrap();
        assert!(!p.contains_irap() && p.starts_keyframe());
        assert_eq!(p.vps(), Some(&vps[..]));
        let trail = [hdr(1)[0], 1, 0xd0];
        assert!(!Payload::parse(&trail).unwrap().starts_keyframe());
        let pps = [hdr(34)[0], 1, 0xc1];
        let p = Payload::parse(&pps).unwrap();
        assert!(!p.starts_keyframe());
        assert_eq!(p.pps(), Some(&pps[..]));
        assert_eq!(Payload::parse(&[0x26]), Err(CodecError::HeaderTruncated { len: 1, needed: 2 }));
    }

    #[test]
    fn aggregation_packet() {
        let mut ap = hdr(48).to_vec();
        for unit in [&[hdr(32)[0], 1, 0xaa][..], &[hdr(33)[0], 1, 0xbb, 0xcc], &[hdr(34)[0], 1]] {
            ap.extend_from_slice(&(unit.len() as u16).to_be_bytes());
            ap.extend_from_slice(unit);
        }
        let p = Payload::parse(&ap).unwrap();
        assert_eq!(p.packet_type(), NalType::AP);
        assert_eq!(
            types(&p),
            [(32, Fragment::Whole, 3), (33, Fragment::Whole, 4), (34, Fragment::Whole, 2)]
        );
        assert!(p.starts_keyframe() && !p.contains_irap());
        assert_eq!(p.sps(), Some(&[hdr(33)[0], 1, 0xbb, 0xcc][..]));
        assert_eq!(p.pps(), Some(&hdr(34)[..]));
        assert_eq!(p.parameter_sets().count(), 3);
    }

    #[test]
    fn aggregation_errors() {
        let ap = hdr(48);
        assert_eq!(
            Payload::parse(&[ap[0], ap[1], 0]),
            Err(CodecError::SizeTruncated { offset: 2 })
        );
        assert_eq!(
            Payload::parse(&[ap[0], ap[1], 0, 1, 0x40]),
            Err(CodecError::UnitTooShort { offset: 2, size: 1 })
        );
        assert_eq!(
            Payload::parse(&[ap[0], ap[1], 0, 3, 0x40, 1]),
            Err(CodecError::UnitOverrun { offset: 2, size: 3 })
        );
    }

    #[test]
    fn aggregation_with_don() {
        let ap = hdr(48);
        // DONL, unit 1 (IDR), DOND, unit 2 (trail).
        let bytes = [ap[0], ap[1], 0, 7, 0, 2, hdr(19)[0], 1, 1, 0, 2, hdr(1)[0], 1];
        let p = Payload::parse_with_donl(&bytes, true).unwrap();
        assert_eq!(types(&p), [(19, Fragment::Whole, 2), (1, Fragment::Whole, 2)]);
        assert!(Payload::parse(&bytes).is_err());
    }

    #[test]
    fn fragmentation_units() {
        let fu = hdr(49);
        let start = [fu[0], fu[1], 0x80 | 19, 0xaf, 0x01];
        let p = Payload::parse(&start).unwrap();
        assert_eq!(types(&p), [(19, Fragment::Start, 2)]);
        assert!(p.contains_irap());
        let middle = [fu[0], fu[1], 19, 1];
        let p = Payload::parse(&middle).unwrap();
        assert_eq!(types(&p), [(19, Fragment::Middle, 1)]);
        assert!(!p.starts_keyframe());
        let end = [fu[0], fu[1], 0x40 | 1];
        assert_eq!(types(&Payload::parse(&end).unwrap()), [(1, Fragment::End, 0)]);
        assert_eq!(Payload::parse(&fu), Err(CodecError::HeaderTruncated { len: 2, needed: 3 }));
        // With DONL, only the first fragment carries it.
        assert_eq!(
            Payload::parse_with_donl(&start[..4], true),
            Err(CodecError::HeaderTruncated { len: 4, needed: 5 })
        );
        let p = Payload::parse_with_donl(&middle, true).unwrap();
        assert_eq!(types(&p), [(19, Fragment::Middle, 1)]);
    }

    #[test]
    fn paci_and_unspecified_carry_nothing() {
        for t in [50, 51, 63] {
            let bytes = [hdr(t)[0], 1, 2, 3];
            let p = Payload::parse(&bytes).unwrap();
            assert_eq!(p.packet_type(), NalType(t));
            assert!(p.nal_types().is_empty());
        }
    }

    proptest! {
        #[test]
        fn aggregation_round_trip(
            nals in prop::collection::vec(
                (0u8..=47, prop::collection::vec(any::<u8>(), 0..30))
                    .prop_map(|(t, rest)| [t << 1, 1].into_iter().chain(rest).collect::<Vec<u8>>()),
                1..6,
            )
        ) {
            let mut ap = hdr(48).to_vec();
            for nal in &nals {
                ap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                ap.extend_from_slice(nal);
            }
            let p = Payload::parse(&ap).unwrap();
            let got: Vec<&[u8]> = p.nal_units().map(|u| u.data).collect();
            prop_assert_eq!(got, nals.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let irap = nals.iter().any(|n| NalType::of_header(n[0]).is_irap());
            prop_assert_eq!(p.contains_irap(), irap);
        }
    }

    #[test]
    fn garbage_never_panics() {
        for first in 0..=255u8 {
            for len in 0..7 {
                let bytes: Vec<u8> =
                    std::iter::once(first).chain((0..len).map(|i| i * 41)).collect();
                for donl in [false, true] {
                    let _ = Payload::parse_with_donl(&bytes, donl).map(|p| p.nal_units().count());
                }
            }
        }
    }
}
