//! RFC 6184 packetization, mode 1 (non-interleaved): single NAL unit packets, STAP-A
//! aggregates of parameter sets, and FU-A fragments.

use crate::codec::h264::NalType;

/// The NAL unit type in a header byte's low five bits.
fn nal_unit_type(header: u8) -> u8 {
    NalType::of_header(header).0
}

/// NAL unit type of a single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// NAL unit type of a fragmentation unit without DON (RFC 6184 §5.8).
pub const FU_A: u8 = 28;
/// FU header start bit.
const FU_START: u8 = 0x80;
/// FU header end bit.
const FU_END: u8 = 0x40;
/// The smallest payload budget that still lets FU-A carry a byte of NAL data per packet.
pub const MIN_PAYLOAD: usize = 3;

/// Splits one access unit's NAL units into RTP payloads (RFC 6184 packetization-mode=1).
///
/// A NAL unit that fits `max_payload` goes alone in a single NAL unit packet; a larger one is
/// cut into FU-A fragments, every fragment full except the last. With
/// `aggregate_parameter_sets`, consecutive SPS/PPS/SEI/AUD NAL units that fit together go in
/// one STAP-A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packetizer {
    /// The largest RTP payload (bytes after the RTP header and its extensions).
    max_payload: usize,
    /// Put parameter sets in STAP-A packets.
    aggregate_parameter_sets: bool,
}

impl Packetizer {
    /// A packetizer for payloads of at most `max_payload` bytes (raised to [`MIN_PAYLOAD`]
    /// if smaller).
    pub fn new(max_payload: usize, aggregate_parameter_sets: bool) -> Packetizer {
        Packetizer { max_payload: max_payload.max(MIN_PAYLOAD), aggregate_parameter_sets }
    }

    /// The largest payload this packetizer produces.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Appends the payloads for one access unit to `out`, in transmission order. The caller
    /// sets the RTP marker on the last one. Empty NAL units are skipped.
    pub fn packetize<'a>(&self, nals: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<Vec<u8>>) {
        let mut pending: Vec<&[u8]> = Vec::new();
        for nal in nals {
            let Some(&header) = nal.first() else { continue };
            // A STAP-A length field is 16 bits.
            let fits_stap = nal.len() <= usize::from(u16::MAX);
            if self.aggregate_parameter_sets && is_aggregatable(header) && fits_stap {
                let size = 1 + pending.iter().chain([&nal]).map(|n| 2 + n.len()).sum::<usize>();
                if size <= self.max_payload {
                    pending.push(nal);
                    continue;
                }
                self.flush(&mut pending, out);
                if 3 + nal.len() <= self.max_payload {
                    pending.push(nal);
                    continue;
                }
            }
            self.flush(&mut pending, out);
            self.single_or_fragments(nal, out);
        }
        self.flush(&mut pending, out);
    }

    /// Emits the aggregated NAL units: as a STAP-A if there are several, alone if one.
    fn flush(&self, pending: &mut Vec<&[u8]>, out: &mut Vec<Vec<u8>>) {
        match pending.as_slice() {
            [] => {}
            [one] => out.push(one.to_vec()),
            many => {
                // F is the OR of the F bits (always 0 here), NRI the maximum NRI.
                let nri = many.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                let mut payload = vec![nri | STAP_A];
                for nal in many {
                    // Only NAL units of at most 65535 bytes are aggregated.
                    payload.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                    payload.extend_from_slice(nal);
                }
                out.push(payload);
            }
        }
        pending.clear();
    }

    /// One single NAL unit packet if `nal` fits, FU-A fragments otherwise.
    fn single_or_fragments(&self, nal: &[u8], out: &mut Vec<Vec<u8>>) {
        if nal.len() <= self.max_payload {
            out.push(nal.to_vec());
            return;
        }
        let header = nal[0];
        let indicator = (header & 0xe0) | FU_A;
        let body = &nal[1..];
        let chunk = self.max_payload - 2;
        let last = body.len().div_ceil(chunk) - 1;
        for (i, part) in body.chunks(chunk).enumerate() {
            let mut fu_header = nal_unit_type(header);
            if i == 0 {
                fu_header |= FU_START;
            }
            if i == last {
                fu_header |= FU_END;
            }
            let mut payload = Vec::with_capacity(2 + part.len());
            payload.extend_from_slice(&[indicator, fu_header]);
            payload.extend_from_slice(part);
            out.push(payload);
        }
    }
}

/// Whether a NAL unit may go into a STAP-A with its neighbours: parameter sets, SEI, AUD.
fn is_aggregatable(header: u8) -> bool {
    matches!(NalType::of_header(header), NalType::SPS | NalType::PPS | NalType::SEI | NalType::AUD)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test-side depacketizer: RTP payloads back to NAL units (single, STAP-A, FU-A).
    #[derive(Default)]
    pub(crate) struct Depacketizer {
        fragment: Option<Vec<u8>>,
    }

    impl Depacketizer {
        pub(crate) fn push(&mut self, payload: &[u8], out: &mut Vec<Vec<u8>>) {
            match nal_unit_type(payload[0]) {
                STAP_A => {
                    let mut rest = &payload[1..];
                    while !rest.is_empty() {
                        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                        out.push(rest[2..2 + len].to_vec());
                        rest = &rest[2 + len..];
                    }
                }
                FU_A => {
                    let fu = payload[1];
                    if fu & FU_START != 0 {
                        assert!(self.fragment.is_none(), "FU-A start inside a fragment");
                        self.fragment = Some(vec![(payload[0] & 0xe0) | (fu & 0x1f)]);
                    }
                    let buf = self.fragment.as_mut().expect("FU-A continuation without start");
                    buf.extend_from_slice(&payload[2..]);
                    if fu & FU_END != 0 {
                        out.push(self.fragment.take().unwrap());
                    }
                }
                1..=23 => {
                    assert!(self.fragment.is_none(), "single NAL inside a fragment");
                    out.push(payload.to_vec());
                }
                other => panic!("unexpected payload type {other}"),
            }
        }
    }

    fn round_trip(nals: &[Vec<u8>], max_payload: usize, aggregate: bool) -> Vec<Vec<u8>> {
        let mut payloads = Vec::new();
        Packetizer::new(max_payload, aggregate)
            .packetize(nals.iter().map(Vec::as_slice), &mut payloads);
        assert!(payloads.iter().all(|p| p.len() <= max_payload.max(MIN_PAYLOAD)));
        let mut depay = Depacketizer::default();
        let mut back = Vec::new();
        for p in &payloads {
            depay.push(p, &mut back);
        }
        assert!(depay.fragment.is_none());
        back
    }

    #[test]
    fn single_fu_a_and_stap_a() {
        let sps = vec![0x67, 1, 2, 3];
        let pps = vec![0x68, 4];
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..3000).map(|i| i as u8)).collect();
        let nals = vec![sps.clone(), pps.clone(), idr.clone()];
        let mut payloads = Vec::new();
        Packetizer::new(1000, true).packetize(nals.iter().map(Vec::as_slice), &mut payloads);
        assert_eq!(payloads[0], [0x78, 0, 4, 0x67, 1, 2, 3, 0, 2, 0x68, 4]);
        assert_eq!(payloads.len(), 1 + 3000usize.div_ceil(998));
        assert_eq!(payloads[1][..2], [0x7c, 0x85]);
        assert_eq!(payloads[4][..2], [0x7c, 0x45]);
        assert!(payloads[1..4].iter().all(|p| p.len() == 1000));
        for aggregate in [false, true] {
            assert_eq!(round_trip(&nals, 1000, aggregate), nals);
            assert_eq!(round_trip(&nals, 5, aggregate), nals);
            assert_eq!(round_trip(&nals, 0, aggregate), nals);
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_sizes(
            sizes in proptest::collection::vec((1usize..4000, 0u8..24), 1..8),
            max_payload in 3usize..1500,
            aggregate: bool,
        ) {
            let nals: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &(len, kind))| {
                    let kind = kind.max(1);
                    std::iter::once(0x60 | kind).chain((1..len).map(|j| (i + j) as u8)).collect()
                })
                .collect();
            proptest::prop_assert_eq!(round_trip(&nals, max_payload, aggregate), nals);
        }
    }
}
