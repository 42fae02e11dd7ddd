//! NTP time as RTCP carries it (RFC 3550 §4): the 64-bit timestamp in sender reports, its
//! middle-32-bit "compact" form in report blocks (LSR, DLSR), and the mapping between RTP
//! media time and wall-clock time that a sender report establishes.

use std::time::{Duration, SystemTime};

use crate::RtpTime;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const UNIX_OFFSET_SECS: u64 = 2_208_988_800;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A 64-bit NTP timestamp: seconds since 1900-01-01 in the high 32 bits, the fraction of a
/// second in the low 32 bits (units of 2^-32 s, about 233 ps).
///
/// The seconds field wraps in 2036 (era 1). Conversions to wall-clock time follow RFC 4330
/// §3: a seconds value with the top bit clear is read as era 1, so the type covers 1968-2104.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: NtpTime = NtpTime(UNIX_OFFSET_SECS << 32);

    /// From the two 32-bit words as they appear on the wire.
    pub fn new(seconds: u32, fraction: u32) -> NtpTime {
        NtpTime((u64::from(seconds) << 32) | u64::from(fraction))
    }

    /// Whole seconds since the start of the NTP era.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second, in units of 2^-32 s.
    pub fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// The time `since_unix_epoch` after 1970-01-01, rounded to the nearest 2^-32 s.
    /// Wraps modulo the NTP era (2^32 s).
    pub fn from_unix(since_unix_epoch: Duration) -> NtpTime {
        let secs = since_unix_epoch.as_secs().wrapping_add(UNIX_OFFSET_SECS);
        // Round to nearest so that Duration -> NtpTime -> Duration is exact to the nanosecond.
        let frac = ((u128::from(since_unix_epoch.subsec_nanos()) << 32) + NANOS_PER_SEC / 2)
            / NANOS_PER_SEC;
        NtpTime((secs << 32).wrapping_add(frac as u64))
    }

    /// Time since the Unix epoch, rounded to the nearest nanosecond; `None` for the few years
    /// of era 0 before 1970 (the type's range is 1968-2104, see the type's docs).
    pub fn to_unix(self) -> Option<Duration> {
        let secs = self.era_seconds().checked_sub(UNIX_OFFSET_SECS)?;
        let nanos = (u128::from(self.fraction()) * NANOS_PER_SEC + (1 << 31)) >> 32;
        // `nanos` may round up to a full second; `Duration::new` carries it.
        Some(Duration::new(secs, nanos as u32))
    }

    /// From wall-clock time (times before 1970 included, down to the 1900 epoch).
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => NtpTime::from_unix(after),
            Err(before) => {
                let before = before.duration();
                let unix_epoch = u128::from(UNIX_OFFSET_SECS) * NANOS_PER_SEC;
                let nanos = unix_epoch.saturating_sub(before.as_nanos());
                let secs = (nanos / NANOS_PER_SEC) as u64;
                let sub = Duration::from_nanos((nanos % NANOS_PER_SEC) as u64);
                let frac = NtpTime::from_unix(sub).fraction();
                NtpTime((secs << 32) | u64::from(frac))
            }
        }
    }

    /// To wall-clock time, reading the seconds with the RFC 4330 era rule.
    pub fn to_system_time(self) -> SystemTime {
        match self.to_unix() {
            Some(after) => SystemTime::UNIX_EPOCH + after,
            None => {
                let ntp_nanos = (u128::from(self.era_seconds()) * NANOS_PER_SEC)
                    + ((u128::from(self.fraction()) * NANOS_PER_SEC + (1 << 31)) >> 32);
                let before = u128::from(UNIX_OFFSET_SECS) * NANOS_PER_SEC - ntp_nanos;
                SystemTime::UNIX_EPOCH - Duration::from_nanos(before as u64)
            }
        }
    }

    /// The middle 32 bits (16.16 fixed point), as report blocks carry it in LSR.
    pub fn compact(self) -> CompactNtp {
        CompactNtp((self.0 >> 16) as u32)
    }

    /// Seconds since 1900 with the RFC 4330 era rule applied: top bit clear means era 1.
    fn era_seconds(self) -> u64 {
        let secs = u64::from(self.seconds());
        if secs & 0x8000_0000 == 0 {
            secs + (1 << 32)
        } else {
            secs
        }
    }
}

/// The middle 32 bits of an NTP timestamp: seconds and fraction in 16.16 fixed point. Report
/// blocks carry a timestamp in this form (LSR) and a duration in the same units (DLSR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CompactNtp(pub u32);

impl CompactNtp {
    /// A duration in 1/65536 s units, rounded to nearest; saturates at about 18.2 hours.
    pub fn from_duration(duration: Duration) -> CompactNtp {
        let units = (duration.as_nanos() * 65_536 + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        CompactNtp(u32::try_from(units).unwrap_or(u32::MAX))
    }

    /// The value read as a duration (for DLSR, or the difference of two compact times).
    pub fn to_duration(self) -> Duration {
        let nanos = (u128::from(self.0) * NANOS_PER_SEC + (1 << 15)) >> 16;
        Duration::from_nanos(nanos as u64)
    }

    /// `self - earlier`, wrapping: the compact form of the time between two compact times.
    pub fn wrapping_sub(self, earlier: CompactNtp) -> CompactNtp {
        CompactNtp(self.0.wrapping_sub(earlier.0))
    }

    /// Round-trip time from a report block (RFC 3550 §6.4.1): `arrival - LSR - DLSR`, where
    /// `self` is the arrival time of the report. `None` when the block holds no LSR (zero) or
    /// the result is negative (clock trouble at the far end).
    pub fn round_trip(
        self,
        last_sr: CompactNtp,
        delay_since_last_sr: CompactNtp,
    ) -> Option<Duration> {
        if last_sr.0 == 0 {
            return None;
        }
        let rtt = self.wrapping_sub(last_sr).0.checked_sub(delay_since_last_sr.0)?;
        // A "negative" result shows up as a huge positive one after the wrapping subtraction.
        (rtt < 0x8000_0000).then(|| CompactNtp(rtt).to_duration())
    }
}

/// The correspondence between a stream's RTP timestamps and wall-clock (NTP) time that one
/// sender report establishes: `rtp` was the media time at wall-clock `ntp`.
///
/// Conversions take the shorter way round the 32-bit RTP wrap, so they are exact for media
/// times within 2^31 ticks of the report (about 6.6 hours at 90 kHz, 12.4 hours at 48 kHz).
/// A `clock_rate` of 0 maps everything to the reference point itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrMapping {
    /// Wall-clock time of the report.
    pub ntp: NtpTime,
    /// Media time at that wall-clock time.
    pub rtp: RtpTime,
    /// Media clock ticks per second (e.g. 90 000 for video).
    pub clock_rate: u32,
}

impl SrMapping {
    /// The wall-clock time of media time `rtp`, to the nearest 2^-32 s.
    pub fn rtp_to_ntp(&self, rtp: RtpTime) -> NtpTime {
        if self.clock_rate == 0 {
            return self.ntp;
        }
        let ticks = i128::from(rtp.since(self.rtp));
        let offset = div_round(ticks << 32, i128::from(self.clock_rate));
        NtpTime(self.ntp.0.wrapping_add_signed(offset as i64))
    }

    /// The media time at wall-clock time `ntp`, to the nearest tick (wrapping at 2^32 ticks).
    pub fn ntp_to_rtp(&self, ntp: NtpTime) -> RtpTime {
        // The difference as signed 32.32 fixed point: exact within ±68 years of the report.
        let diff = i128::from(ntp.0.wrapping_sub(self.ntp.0) as i64);
        let ticks = div_round(diff * i128::from(self.clock_rate), 1 << 32);
        RtpTime(self.rtp.0.wrapping_add(ticks as u32))
    }
}

/// `n / d` rounded half away from zero; `d` must be positive.
fn div_round(n: i128, d: i128) -> i128 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unix_epoch_offset() {
        assert_eq!(NtpTime::from_unix(Duration::ZERO), NtpTime::UNIX_EPOCH);
        assert_eq!(NtpTime::UNIX_EPOCH.to_unix(), Some(Duration::ZERO));
        assert_eq!(NtpTime::from_system_time(SystemTime::UNIX_EPOCH), NtpTime::UNIX_EPOCH);
        assert_eq!(NtpTime::new(0x83aa_7e80, 0), NtpTime::UNIX_EPOCH);
    }

    #[test]
    fn half_second_is_half_the_fraction_range() {
        let t = NtpTime::from_unix(Duration::from_millis(1500));
        assert_eq!(t.seconds(), 2_208_988_801);
        assert_eq!(t.fraction(), 0x8000_0000);
    }

    #[test]
    fn sender_report_from_the_capture_decodes_to_its_date() {
        // tshark: MSW 0xeeacd15a, LSW 0x06ea8544 = Nov 22, 2026 02:26:34.027015999 UTC.
        let t = NtpTime::new(0xeeac_d15a, 0x06ea_8544);
        let unix = t.to_unix().unwrap();
        assert_eq!(unix.as_secs(), 1_795_314_394);
        // 0x06ea8544 / 2^32 s = 27 015 999.7 ns, rounded to nearest.
        assert_eq!(unix.subsec_nanos(), 27_016_000);
    }

    #[test]
    fn era_one_follows_2036() {
        // 2036-02-07T06:28:16Z is NTP second 2^32, i.e. era 1 second 0.
        let t = NtpTime::new(0, 0);
        assert_eq!(t.to_unix(), Some(Duration::from_secs((1 << 32) - UNIX_OFFSET_SECS)));
        assert_eq!(NtpTime::from_unix(t.to_unix().unwrap()), t);
    }

    #[test]
    fn before_1970() {
        let t = NtpTime::new(0x83aa_7e80 - 10, 0x4000_0000); // 1969-12-31T23:59:50.25Z
        assert_eq!(t.to_unix(), None);
        let wall = t.to_system_time();
        assert_eq!(
            SystemTime::UNIX_EPOCH.duration_since(wall).unwrap(),
            Duration::from_millis(9_750)
        );
        assert_eq!(NtpTime::from_system_time(wall), t);
    }

    #[test]
    fn compact_takes_the_middle_bits() {
        assert_eq!(NtpTime(0x1234_5678_9abc_def0).compact(), CompactNtp(0x5678_9abc));
        assert_eq!(CompactNtp::from_duration(Duration::from_millis(500)), CompactNtp(0x8000));
        assert_eq!(CompactNtp(0x0001_8000).to_duration(), Duration::from_millis(1500));
        assert_eq!(CompactNtp::from_duration(Duration::from_secs(1 << 20)), CompactNtp(u32::MAX));
    }

    #[test]
    fn round_trip_time_per_rfc_example() {
        // RFC 3550 §6.4.1 example: A = 0xb710:8000, LSR = 0xb705:2000, DLSR = 0x0005:4000.
        let rtt =
            CompactNtp(0xb710_8000).round_trip(CompactNtp(0xb705_2000), CompactNtp(0x0005_4000));
        assert_eq!(rtt, Some(Duration::from_millis(6125)));
        assert_eq!(CompactNtp(5).round_trip(CompactNtp(0), CompactNtp(0)), None);
        assert_eq!(CompactNtp(5).round_trip(CompactNtp(4), CompactNtp(2)), None);
    }

    #[test]
    fn mapping_converts_both_ways() {
        let m = SrMapping { ntp: NtpTime::new(1000, 0), rtp: RtpTime(90_000), clock_rate: 90_000 };
        assert_eq!(m.rtp_to_ntp(RtpTime(180_000)), NtpTime::new(1001, 0));
        assert_eq!(m.rtp_to_ntp(RtpTime(45_000)), NtpTime::new(999, 0x8000_0000));
        assert_eq!(m.ntp_to_rtp(NtpTime::new(1002, 0)), RtpTime(270_000));
        assert_eq!(m.ntp_to_rtp(NtpTime::new(999, 0)), RtpTime(0));
        assert_eq!(m.ntp_to_rtp(NtpTime::new(998, 0)), RtpTime(0u32.wrapping_sub(90_000)));
    }

    #[test]
    fn mapping_across_rtp_wrap() {
        let m = SrMapping {
            ntp: NtpTime::new(50, 0),
            rtp: RtpTime(u32::MAX - 44_999),
            clock_rate: 90_000,
        };
        // 90 000 ticks later is past the wrap: 45 000.
        assert_eq!(m.ntp_to_rtp(NtpTime::new(51, 0)), RtpTime(45_000));
        assert_eq!(m.rtp_to_ntp(RtpTime(45_000)), NtpTime::new(51, 0));
    }

    #[test]
    fn zero_clock_rate_does_not_divide() {
        let m = SrMapping { ntp: NtpTime::new(7, 0), rtp: RtpTime(9), clock_rate: 0 };
        assert_eq!(m.rtp_to_ntp(RtpTime(100)), m.ntp);
        assert_eq!(m.ntp_to_rtp(NtpTime::new(100, 0)), m.rtp);
    }

    proptest! {
        #[test]
        fn unix_round_trip_is_exact(secs in 0u64..(1 << 32) + (1 << 31) - UNIX_OFFSET_SECS, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(NtpTime::from_unix(d).to_unix(), Some(d));
            let wall = SystemTime::UNIX_EPOCH + d;
            prop_assert_eq!(NtpTime::from_system_time(wall).to_system_time(), wall);
        }

        #[test]
        fn ntp_round_trip_within_half_a_nanosecond(raw in (UNIX_OFFSET_SECS << 32)..u64::MAX) {
            let t = NtpTime(raw);
            let back = NtpTime::from_unix(t.to_unix().unwrap());
            // One nanosecond is about 4.3 fraction units.
            prop_assert!(back.0.abs_diff(t.0) <= 3, "{t:?} -> {back:?}");
        }

        #[test]
        fn mapping_round_trips_ticks(ntp: u64, rtp: u32, rate in 1u32..200_000, ticks in -0x7fff_0000i32..0x7fff_0000) {
            let m = SrMapping { ntp: NtpTime(ntp), rtp: RtpTime(rtp), clock_rate: rate };
            let t = RtpTime(rtp.wrapping_add_signed(ticks));
            prop_assert_eq!(m.ntp_to_rtp(m.rtp_to_ntp(t)), t);
        }

        #[test]
        fn compact_duration_round_trip(units: u32) {
            prop_assert_eq!(CompactNtp::from_duration(CompactNtp(units).to_duration()), CompactNtp(units));
        }
    }
}
