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

/// `ms` (extended milliseconds) in ticks of a `rate` Hz clock, rounded down.
pub fn ticks(ms: i64, rate: u32) -> i64 {
    (i128::from(ms) * i128::from(rate)).div_euclid(1000) as i64
}

/// The RTP timestamp `ticks` after `offset`. Computed from extended time, so it is
/// continuous when RTMP's clock wraps, whatever the rate.
pub fn at_ticks(ticks: i64, offset: u32) -> RtpTime {
    // Reduction modulo 2^32 is the RTP timestamp's own wrap.
    RtpTime((ticks as u32).wrapping_add(offset))
}

/// The RTP timestamp of `ms` (extended milliseconds) on a `rate` Hz clock starting at
/// `offset`.
pub fn rtp_time(ms: i64, rate: u32, offset: u32) -> RtpTime {
    at_ticks(ticks(ms, rate), offset)
}

/// Stamps audio frames of a fixed sample count. RTMP rounds their times to milliseconds
/// (an AAC frame at 44.1 kHz is 23.22 ms, stamped 23 or 24), which would make the RTP
/// timestamps jitter by up to a millisecond's worth of samples; a frame that arrives within
/// 2 ms of where the previous one plus one frame puts it is stamped exactly there instead.
/// Anything further off (a gap, a jump) takes its own time, so nothing drifts.
#[derive(Debug, Clone, Copy)]
pub struct FrameClock {
    rate: u32,
    frame: i64,
    last: Option<i64>,
}

impl FrameClock {
    /// A clock for frames of `samples_per_frame` samples at `rate` Hz.
    pub fn new(rate: u32, samples_per_frame: u32) -> FrameClock {
        FrameClock { rate, frame: i64::from(samples_per_frame), last: None }
    }

    /// The ticks of the frame stamped `ms` (extended milliseconds).
    pub fn ticks(&mut self, ms: i64) -> i64 {
        let measured = ticks(ms, self.rate);
        let tolerance = i64::from(self.rate / 500);
        let t = match self.last {
            Some(last) if (measured - (last + self.frame)).abs() <= tolerance => last + self.frame,
            _ => measured,
        };
        self.last = Some(t);
        t
    }
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

    #[test]
    fn frame_clock_snaps_rounded_stamps_and_follows_gaps() {
        let mut c = FrameClock::new(44_100, 1024);
        // Exact frame times rounded to ms: 0, 23, 46, 70, 93, ...
        let stamps: Vec<i64> = (0..100).map(|i| (i * 1024 * 1000 + 22_050) / 44_100).collect();
        let ticks: Vec<i64> = stamps.iter().map(|&ms| c.ticks(ms)).collect();
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 1024), "{ticks:?}");
        // A lost frame: the next takes its own time.
        let after_gap = stamps[99] + 2 * 23;
        assert_eq!(c.ticks(after_gap), super::ticks(after_gap, 44_100));
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
