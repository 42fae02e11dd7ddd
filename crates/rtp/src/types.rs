//! Newtypes for RTP wire identities, so bare integers never cross module boundaries.

use std::fmt;

/// A synchronisation source identifier (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}", self.0)
    }
}

/// An RTP sequence number extended to 64 bits (RFC 3550 A.1): the low 16 bits are the wire
/// value, the rest count wraparounds (cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit value carried on the wire.
    pub fn wire(self) -> u16 {
        (self.0 & 0xffff) as u16
    }

    /// Extends a 16-bit wire value to the 64-bit sequence closest to `self` (the reference,
    /// usually the highest sequence seen so far). Works across wraparound in either direction.
    pub fn extend(self, wire: u16) -> SeqNo {
        let delta = wire.wrapping_sub(self.wire()) as i16;
        SeqNo(self.0.wrapping_add_signed(i64::from(delta)))
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 32-bit RTP media timestamp (RFC 3550 §5.1), in the stream's clock rate. Arithmetic wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RtpTime(pub u32);

impl RtpTime {
    /// Signed distance from `earlier` to `self`, taking the shorter way round the wrap.
    pub fn since(self, earlier: RtpTime) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// This timestamp advanced by `ticks` (wrapping).
    // Not `std::ops::Add`: that would promise ordinary overflow semantics; this always wraps.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, ticks: u32) -> RtpTime {
        RtpTime(self.0.wrapping_add(ticks))
    }
}

impl fmt::Display for RtpTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extend_across_wrap() {
        assert_eq!(SeqNo(65535).extend(0), SeqNo(65536));
        assert_eq!(SeqNo(65536).extend(65535), SeqNo(65535));
        assert_eq!(SeqNo(10).extend(12), SeqNo(12));
    }

    proptest! {
        #[test]
        fn extend_recovers_nearby_values(base in 40_000u64..u64::MAX / 2, delta in -32_000i64..32_000) {
            let target = SeqNo(base.wrapping_add_signed(delta));
            prop_assert_eq!(SeqNo(base).extend(target.wire()), target);
        }

        #[test]
        fn rtp_time_since_inverts_add(start: u32, ticks in 0u32..0x7fff_ffff) {
            let t = RtpTime(start);
            prop_assert_eq!(t.add(ticks).since(t), ticks as i32);
        }
    }
}
