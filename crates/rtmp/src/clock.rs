//! RTMP timestamps (32-bit milliseconds, wrapping after 49.7 days) onto RTP clocks.

use manifold_rtp::RtpTime;

/// Extends 32-bit RTMP timestamps to 64 bits. A step is read as the shortest way round the
/// 32-bit circle, so the extended time stays monotonic across the wrap and a small step back
/// (audio and video interleaved slightly out of order) stays small.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwrapper {
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    /// The extended value of `ts`, in milliseconds.
    pub fn extend(&mut self, ts: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(ts),
            Some((last, ext)) => ext + i64::from(ts.wrapping_sub(last) as i32),
        };
        self.last = Some((ts, extended));
        extended
    }
}

/// The RTP timestamp of `ms` (extended milliseconds) on a `rate` Hz clock starting at
/// `offset`. Computed on the extended time, so it is continuous when RTMP's clock wraps
/// whatever the rate.
pub fn rtp_time(ms: i64, rate: u32, offset: u32) -> RtpTime {
    let ticks = (i128::from(ms) * i128::from(rate)).div_euclid(1000);
    // Reduction modulo 2^32 is the RTP timestamp's own wrap.
    RtpTime((ticks as u32).wrapping_add(offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_forward_and_steps_back() {
        let mut u = Unwrapper::default();
        assert_eq!(u.extend(u32::MAX - 10), i64::from(u32::MAX) - 10);
        assert_eq!(u.extend(5), i64::from(u32::MAX) + 6);
        assert_eq!(u.extend(2), i64::from(u32::MAX) + 3);
        assert_eq!(rtp_time(1000, 90_000, 0), RtpTime(90_000));
        assert_eq!(rtp_time(1000, 44_100, 10), RtpTime(44_110));
        assert_eq!(rtp_time(-1, 90_000, 0), RtpTime(0u32.wrapping_sub(90)));
    }

    proptest! {
        /// Steps forward of any size below 2^31 ms give RTP times that advance by exactly the
        /// step's ticks, across the 32-bit RTMP wrap, at the video and common audio rates.
        #[test]
        fn rtp_time_is_continuous_across_the_wrap(
            start in any::<u32>(),
            steps in prop::collection::vec(0u32..100_000, 1..50),
            rate in prop_oneof![Just(90_000u32), Just(44_100), Just(48_000), Just(8_000)],
            offset: u32,
        ) {
            let mut u = Unwrapper::default();
            let mut ts = start;
            let mut prev = u.extend(ts);
            for step in steps {
                ts = ts.wrapping_add(step);
                let ext = u.extend(ts);
                prop_assert_eq!(ext - prev, i64::from(step));
                let a = rtp_time(prev, rate, offset).0;
                let b = rtp_time(ext, rate, offset).0;
                let expect = ((i128::from(ext) * i128::from(rate)).div_euclid(1000)
                    - (i128::from(prev) * i128::from(rate)).div_euclid(1000)) as u32;
                prop_assert_eq!(b.wrapping_sub(a), expect);
                prev = ext;
            }
        }
    }
}
