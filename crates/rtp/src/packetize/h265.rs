//! RFC 7798 packetization without DONL (`sprop-max-don-diff` 0): single NAL unit packets and
//! fragmentation units (FU, type 49). Aggregation packets are not produced.

use crate::codec::h265::NalType;

/// FU header start bit.
const FU_START: u8 = 0x80;
/// FU header end bit.
const FU_END: u8 = 0x40;
/// The smallest payload budget that still lets an FU carry a byte of NAL data per packet
/// (2-byte payload header, 1-byte FU header).
pub const MIN_PAYLOAD: usize = 4;

/// Splits one access unit's NAL units into RTP payloads: a NAL unit that fits `max_payload`
/// goes alone in a single NAL unit packet, a larger one is cut into FUs, every fragment full
/// except the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packetizer {
    /// The largest RTP payload (bytes after the RTP header).
    max_payload: usize,
}

impl Packetizer {
    /// A packetizer for payloads of at most `max_payload` bytes (raised to [`MIN_PAYLOAD`]
    /// if smaller).
    pub fn new(max_payload: usize) -> Packetizer {
        Packetizer { max_payload: max_payload.max(MIN_PAYLOAD) }
    }

    /// The largest payload this packetizer produces.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Appends the payloads for one access unit to `out`, in transmission order. The caller
    /// sets the RTP marker on the last one. NAL units shorter than their 2-byte header are
    /// skipped.
    pub fn packetize<'a>(&self, nals: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<Vec<u8>>) {
        for nal in nals {
            if nal.len() < 2 {
                continue;
            }
            if nal.len() <= self.max_payload {
                out.push(nal.to_vec());
                continue;
            }
            // The payload header copies F, LayerId and TID and carries type 49.
            let header = [(nal[0] & 0x81) | (NalType::FU.0 << 1), nal[1]];
            let kind = NalType::of_header(nal[0]).0;
            let body = &nal[2..];
            let chunk = self.max_payload - 3;
            let last = body.len().div_ceil(chunk) - 1;
            for (i, part) in body.chunks(chunk).enumerate() {
                let mut fu_header = kind;
                if i == 0 {
                    fu_header |= FU_START;
                }
                if i == last {
                    fu_header |= FU_END;
                }
                let mut payload = Vec::with_capacity(3 + part.len());
                payload.extend_from_slice(&[header[0], header[1], fu_header]);
                payload.extend_from_slice(part);
                out.push(payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::h265::Payload;
    use crate::codec::Fragment;

    /// Payloads back to NAL units through the crate's own payload parser.
    fn depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut fragment: Option<Vec<u8>> = None;
        for p in payloads {
            let parsed = Payload::parse(p).unwrap();
            for unit in parsed.nal_units() {
                match unit.fragment {
                    Fragment::Whole => out.push(unit.data.to_vec()),
                    Fragment::Start => {
                        let mut nal = vec![(p[0] & 0x81) | (unit.nal_type.0 << 1), p[1]];
                        nal.extend_from_slice(unit.data);
                        fragment = Some(nal);
                    }
                    Fragment::Middle | Fragment::End => {
                        fragment.as_mut().unwrap().extend_from_slice(unit.data);
                        if unit.fragment == Fragment::End {
                            out.push(fragment.take().unwrap());
                        }
                    }
                }
            }
        }
        assert!(fragment.is_none());
        out
    }

    #[test]
    fn single_and_fragments() {
        let vps = vec![0x40, 0x01, 0x0c];
        let idr: Vec<u8> = [0x26, 0x01].into_iter().chain((0..3000).map(|i| i as u8)).collect();
        let nals = vec![vps.clone(), idr.clone()];
        let mut payloads = Vec::new();
        Packetizer::new(1000).packetize(nals.iter().map(Vec::as_slice), &mut payloads);
        assert_eq!(payloads[0], vps);
        assert_eq!(payloads[1][..3], [0x62, 0x01, 0x80 | 19]);
        assert_eq!(payloads.last().unwrap()[2], 0x40 | 19);
        assert!(payloads.iter().all(|p| p.len() <= 1000));
        assert_eq!(depacketize(&payloads), nals);
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_sizes(
            sizes in proptest::collection::vec((2usize..4000, 0u8..48), 1..8),
            max_payload in 4usize..1500,
        ) {
            let nals: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &(len, kind))| {
                    [kind << 1, 1].into_iter().chain((2..len).map(|j| (i + j) as u8)).collect()
                })
                .collect();
            let mut payloads = Vec::new();
            Packetizer::new(max_payload).packetize(nals.iter().map(Vec::as_slice), &mut payloads);
            proptest::prop_assert!(payloads.iter().all(|p| p.len() <= max_payload));
            proptest::prop_assert_eq!(depacketize(&payloads), nals);
        }
    }
}
