//! H.264 RTP payloads (RFC 6184): single NAL unit, STAP-A/B, MTAP16/24 and FU-A/B packets.

use super::{header, CodecError, Fragment, NalTypeSet, RawUnit, Summary, Units};

/// An H.264 NAL unit type (the low 5 bits of the NAL header), or an RFC 6184 packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NalType(pub u8);

impl NalType {
    /// Coded slice of a non-IDR picture.
    pub const NON_IDR_SLICE: NalType = NalType(1);
    /// Coded slice of an IDR picture: random access.
    pub const IDR: NalType = NalType(5);
    /// Supplemental enhancement information.
    pub const SEI: NalType = NalType(6);
    /// Sequence parameter set.
    pub const SPS: NalType = NalType(7);
    /// Picture parameter set.
    pub const PPS: NalType = NalType(8);
    /// Access unit delimiter.
    pub const AUD: NalType = NalType(9);
    /// Single-time aggregation packet without DON.
    pub const STAP_A: NalType = NalType(24);
    /// Single-time aggregation packet with DON.
    pub const STAP_B: NalType = NalType(25);
    /// Multi-time aggregation packet, 16-bit timestamp offsets.
    pub const MTAP16: NalType = NalType(26);
    /// Multi-time aggregation packet, 24-bit timestamp offsets.
    pub const MTAP24: NalType = NalType(27);
    /// Fragmentation unit without DON.
    pub const FU_A: NalType = NalType(28);
    /// Fragmentation unit with DON.
    pub const FU_B: NalType = NalType(29);

    /// The type in a NAL unit header (or FU header) byte.
    pub fn of_header(byte: u8) -> NalType {
        NalType(byte & 0x1f)
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
    /// For [`Fragment::Whole`], the complete NAL unit including its header byte; for
    /// fragments, the fragment's bytes after the FU indicator, FU header and DON.
    pub data: &'a [u8],
}

/// A validated H.264 RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<'a> {
    payload: &'a [u8],
    summary: Summary,
}

impl<'a> Payload<'a> {
    /// Validates an RTP payload (every aggregation unit's size is checked). Reserved packet
    /// types (0, 30, 31) parse as carrying no NAL units, as RFC 6184 says to ignore them.
    pub fn parse(payload: &'a [u8]) -> Result<Self, CodecError> {
        let summary = Summary::of(units(payload)?, |u| type_of(u).0)?;
        Ok(Payload { payload, summary })
    }

    /// The packet type: the NAL type itself (1..=23) for a single NAL unit packet, else one of
    /// the RFC 6184 types ([`NalType::STAP_A`], [`NalType::FU_A`], …).
    pub fn packet_type(&self) -> NalType {
        // parse() rejected an empty payload.
        NalType::of_header(self.payload.first().copied().unwrap_or(0))
    }

    /// The NAL units (or the fragment) in the payload, in order.
    pub fn nal_units(&self) -> impl Iterator<Item = NalUnit<'a>> + 'a {
        // Validated in parse(), so neither step can fail now.
        units(self.payload).into_iter().flatten().filter_map(Result::ok).map(|u| NalUnit {
            nal_type: type_of(&u),
            fragment: u.fragment,
            data: u.data,
        })
    }

    /// The types of all NAL units and fragments present.
    pub fn nal_types(&self) -> NalTypeSet {
        self.summary.present
    }

    /// Whether the packet holds the first byte of an IDR slice.
    pub fn contains_idr(&self) -> bool {
        self.summary.starts.contains(NalType::IDR)
    }

    /// Whether the packet holds the first byte of an IDR slice or of an SPS (see the
    /// [module docs](super) for why the SPS counts).
    pub fn starts_keyframe(&self) -> bool {
        self.contains_idr() || self.summary.starts.contains(NalType::SPS)
    }

    /// The complete SPS and PPS NAL units in the packet (header byte included), in order.
    /// Fragmented parameter sets are not reassembled.
    pub fn parameter_sets(&self) -> impl Iterator<Item = NalUnit<'a>> + 'a {
        self.nal_units().filter(|u| {
            u.fragment == Fragment::Whole && matches!(u.nal_type, NalType::SPS | NalType::PPS)
        })
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
        _ => NalType::of_header(unit.fu_type),
    }
}

/// The walk over `payload`'s NAL units, after checking the packet header fits.
fn units(payload: &[u8]) -> Result<Units<'_>, CodecError> {
    let &first = payload.first().ok_or(CodecError::HeaderTruncated { len: 0, needed: 1 })?;
    let aggregate = |don: usize, inner: usize| -> Result<Units<'_>, CodecError> {
        header(payload, 1 + don)?;
        Ok(Units::Aggregate {
            payload,
            pos: 1 + don,
            first: true,
            lead_first: 0,
            lead_rest: 0,
            inner,
            nal_header: 1,
        })
    };
    let fragment = |don: usize| -> Result<Units<'_>, CodecError> {
        let data = header(payload, 2 + don)?;
        let fu_header = payload[1];
        Ok(Units::One(RawUnit {
            fragment: Fragment::of_fu_header(fu_header),
            fu_type: fu_header,
            data,
        }))
    };
    match NalType::of_header(first) {
        NalType(1..=23) => {
            Ok(Units::One(RawUnit { fragment: Fragment::Whole, fu_type: 0, data: payload }))
        }
        NalType::STAP_A => aggregate(0, 0),
        NalType::STAP_B => aggregate(2, 0),
        // MTAP units: size covers a 1-byte DOND and a 2- or 3-byte timestamp offset.
        NalType::MTAP16 => aggregate(2, 3),
        NalType::MTAP24 => aggregate(2, 4),
        NalType::FU_A => fragment(0),
        NalType::FU_B => fragment(2),
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

    #[test]
    fn single_nal_units() {
        let idr = [0x65, 0x88, 0x84];
        let p = Payload::parse(&idr).unwrap();
        assert_eq!(p.packet_type(), NalType::IDR);
        assert!(p.contains_idr() && p.starts_keyframe());
        assert_eq!(types(&p), [(5, Fragment::Whole, 3)]);
        let sps = [0x67, 0x42, 0xc0, 0x1e];
        let p = Payload::parse(&sps).unwrap();
        assert!(!p.contains_idr() && p.starts_keyframe());
        assert_eq!(p.sps(), Some(&sps[..]));
        assert_eq!(p.pps(), None);
        let slice = [0x41, 0x9a];
        let p = Payload::parse(&slice).unwrap();
        assert!(!p.starts_keyframe());
        assert!(p.nal_types().contains(NalType::NON_IDR_SLICE));
    }

    #[test]
    fn stap_a_with_parameter_sets_and_idr() {
        let stap = [0x78, 0, 3, 0x67, 0x42, 0x00, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88];
        let p = Payload::parse(&stap).unwrap();
        assert_eq!(p.packet_type(), NalType::STAP_A);
        assert_eq!(
            types(&p),
            [(7, Fragment::Whole, 3), (8, Fragment::Whole, 2), (5, Fragment::Whole, 2)]
        );
        assert!(p.contains_idr());
        assert_eq!(p.sps(), Some(&[0x67, 0x42, 0x00][..]));
        assert_eq!(p.pps(), Some(&[0x68, 0xce][..]));
        assert_eq!(p.parameter_sets().count(), 2);
        assert_eq!(p.nal_types().iter().collect::<Vec<_>>(), [5, 7, 8]);
    }

    #[test]
    fn stap_errors() {
        assert_eq!(Payload::parse(&[0x78, 0]), Err(CodecError::SizeTruncated { offset: 1 }));
        assert_eq!(
            Payload::parse(&[0x78, 0, 0]),
            Err(CodecError::UnitTooShort { offset: 1, size: 0 })
        );
        assert_eq!(
            Payload::parse(&[0x78, 0, 3, 0x67, 0x42]),
            Err(CodecError::UnitOverrun { offset: 1, size: 3 })
        );
        assert_eq!(
            Payload::parse(&[0x79, 0]),
            Err(CodecError::HeaderTruncated { len: 2, needed: 3 })
        );
        assert_eq!(Payload::parse(&[]), Err(CodecError::HeaderTruncated { len: 0, needed: 1 }));
    }

    #[test]
    fn stap_b_and_mtaps() {
        let stap_b = [0x79, 0, 7, 0, 1, 0x65];
        let p = Payload::parse(&stap_b).unwrap();
        assert_eq!(types(&p), [(5, Fragment::Whole, 1)]);
        // MTAP16: DON base, then size 5 = DOND + 2-byte TS offset + 2-byte NAL unit.
        let mtap16 = [0x7a, 0, 1, 0, 5, 9, 0, 10, 0x67, 0x42];
        let p = Payload::parse(&mtap16).unwrap();
        assert_eq!(types(&p), [(7, Fragment::Whole, 2)]);
        assert_eq!(p.sps(), Some(&[0x67, 0x42][..]));
        let mtap24 = [0x7b, 0, 1, 0, 5, 9, 0, 0, 10, 0x65];
        assert!(Payload::parse(&mtap24).unwrap().contains_idr());
        assert_eq!(
            Payload::parse(&[0x7b, 0, 1, 0, 4, 9, 0, 0, 10]),
            Err(CodecError::UnitTooShort { offset: 3, size: 4 })
        );
    }

    #[test]
    fn fu_a_and_fu_b() {
        let start = [0x7c, 0x85, 0x88, 0x84];
        let p = Payload::parse(&start).unwrap();
        assert_eq!(types(&p), [(5, Fragment::Start, 2)]);
        assert!(p.contains_idr() && p.starts_keyframe());
        let middle = [0x7c, 0x05, 1];
        let p = Payload::parse(&middle).unwrap();
        assert_eq!(types(&p), [(5, Fragment::Middle, 1)]);
        assert!(!p.starts_keyframe());
        assert!(p.nal_types().contains(NalType::IDR));
        let end = [0x7c, 0x45];
        assert_eq!(types(&Payload::parse(&end).unwrap()), [(5, Fragment::End, 0)]);
        // A fragmented SPS starts a keyframe but is not captured.
        let sps_start = [0x7c, 0x87, 0x42];
        let p = Payload::parse(&sps_start).unwrap();
        assert!(p.starts_keyframe());
        assert_eq!(p.sps(), None);
        assert_eq!(Payload::parse(&[0x7c]), Err(CodecError::HeaderTruncated { len: 1, needed: 2 }));
        let fu_b = [0x7d, 0x85, 0, 1, 0x88];
        assert_eq!(types(&Payload::parse(&fu_b).unwrap()), [(5, Fragment::Start, 1)]);
        assert_eq!(
            Payload::parse(&[0x7d, 0x85, 0]),
            Err(CodecError::HeaderTruncated { len: 3, needed: 4 })
        );
    }

    #[test]
    fn reserved_types_carry_nothing() {
        for b in [0x00, 0x1e, 0x1f] {
            let bytes = [b, 1, 2];
            let p = Payload::parse(&bytes).unwrap();
            assert!(p.nal_types().is_empty() && !p.starts_keyframe());
            assert_eq!(p.nal_units().count(), 0);
        }
    }

    /// Random NAL units (type 1..=23, 1..40 bytes).
    fn nal_units_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(
            (1u8..=23, prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(t, rest)| std::iter::once(0x60 | t).chain(rest).collect()),
            1..6,
        )
    }

    proptest! {
        #[test]
        fn stap_a_round_trip(nals in nal_units_strategy()) {
            let mut stap = vec![0x78];
            for nal in &nals {
                stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                stap.extend_from_slice(nal);
            }
            let p = Payload::parse(&stap).unwrap();
            let got: Vec<&[u8]> = p.nal_units().map(|u| u.data).collect();
            prop_assert_eq!(got, nals.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let idr = nals.iter().any(|n| n[0] & 0x1f == 5);
            let sps = nals.iter().any(|n| n[0] & 0x1f == 7);
            prop_assert_eq!(p.contains_idr(), idr);
            prop_assert_eq!(p.starts_keyframe(), idr || sps);
        }

        #[test]
        fn fu_a_reassembles(nals in nal_units_strategy(), chunk in 1usize..16) {
            let nal = &nals[0];
            let body = &nal[1..];
            let pieces: Vec<&[u8]> =
                if body.is_empty() { vec![&[][..]] } else { body.chunks(chunk).collect() };
            let mut rebuilt = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                let s = if i == 0 { 0x80 } else { 0 };
                let e = if i + 1 == pieces.len() { 0x40 } else { 0 };
                let mut fu = vec![(nal[0] & 0xe0) | 28, s | e | (nal[0] & 0x1f)];
                fu.extend_from_slice(piece);
                let p = Payload::parse(&fu).unwrap();
                let unit = p.nal_units().next().unwrap();
                prop_assert_eq!(unit.nal_type, NalType::of_header(nal[0]));
                prop_assert_eq!(unit.fragment.is_start(), i == 0);
                if i == 0 {
                    rebuilt.push(fu[0] & 0xe0 | fu[1] & 0x1f);
                }
                rebuilt.extend_from_slice(unit.data);
            }
            prop_assert_eq!(&rebuilt, nal);
        }
    }

    #[test]
    fn prefixes_and_garbage_never_panic() {
        let stap = [0x78, 0, 3, 0x67, 0x42, 0x00, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88];
        for end in 0..=stap.len() {
            let _ = Payload::parse(&stap[..end]).map(|p| p.nal_units().count());
        }
        for first in 0..=255u8 {
            for len in 0..6 {
                let bytes: Vec<u8> =
                    std::iter::once(first).chain((0..len).map(|i| i * 37)).collect();
                let _ = Payload::parse(&bytes).map(|p| (p.nal_units().count(), p.sps()));
            }
        }
    }
}
