//! `--segment I/N` and `--start-at`: one run's schedule spread over N generator machines.
//!
//! Segment `I` of `N` runs the arrivals of the *full* schedule (the one `--clients`, `--rate`,
//! `--duration`, `--hold`, `--transport` and `--seed` make on one machine) whose index is
//! `I` modulo `N`, with the arrival times, holds and transports they have in it; a session's
//! identity is its index in that schedule. So the N segments together run every session of
//! the run exactly once, and `manifold merge` of their `--hlog` files is the run's report.
//! Modulo rather than contiguous blocks: every segment then ramps up, holds and ramps down
//! like the whole run, scaled by 1/N, instead of segment 0 taking all the early arrivals.
//! (`--processes` splits a host's share the same way.)
//!
//! `--start-at` is the wall-clock instant the schedule's time 0 maps to on every machine, so
//! that the segments' arrivals interleave as in one run (their clocks are meant to be
//! NTP-synchronised). A start more than [`PAST_SLACK`] in the past is an error (the
//! segments would not overlap as planned); one a little in the past starts at once, its first
//! arrivals counted behind schedule.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How far in the past `--start-at` may be (the time to start a pod, say) before it is
/// refused.
pub const PAST_SLACK: Duration = Duration::from_secs(5);

/// Why `--segment` or `--start-at` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// Not `I/N` with `0 <= I < N`.
    #[error("--segment {text:?}: expected I/N with 0 <= I < N, e.g. 0/4")]
    Syntax {
        /// The value.
        text: String,
    },
    /// Neither RFC 3339 nor Unix seconds.
    #[error(
        "--start-at {text:?}: expected an RFC 3339 time (2026-12-07T05:00:00Z) or Unix seconds \
         (1796619600)"
    )]
    StartSyntax {
        /// The value.
        text: String,
    },
    /// The start lies further in the past than [`PAST_SLACK`].
    #[error(
        "--start-at {text}: {late:.1?} in the past (more than {PAST_SLACK:?}); pick a time \
         that leaves every segment time to start"
    )]
    StartPassed {
        /// The value given.
        text: String,
        /// How far past it is.
        late: Duration,
    },
    /// Combined with `--processes` (a segment runs in one process).
    #[error("--segment runs in one process: give each machine one segment, not --processes")]
    WithProcesses,
}

/// This machine's slice of the schedule: arrivals whose index is `index` modulo `parts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// This segment, from 0 (a Job's completion index).
    pub index: u64,
    /// How many segments the run has.
    pub parts: u64,
}

impl Segment {
    /// Whether the session with this index in the full schedule is this segment's.
    pub fn owns(self, index: u64) -> bool {
        index % self.parts == self.index
    }

    /// How many of the first `clients` arrivals (the lanes the ramp-up opens, which is the
    /// most sessions the segment holds at once) are this segment's.
    pub fn share(self, clients: u32) -> u64 {
        let clients = u64::from(clients);
        clients / self.parts + u64::from(clients % self.parts > self.index)
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    fn from_str(s: &str) -> Result<Segment, SegmentError> {
        let bad = || SegmentError::Syntax { text: s.to_owned() };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let parts: u64 = n.trim().parse().map_err(|_| bad())?;
        if parts == 0 || index >= parts {
            return Err(bad());
        }
        Ok(Segment { index, parts })
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.parts)
    }
}

/// A wall-clock start (`--start-at`), with the text it was given as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAt {
    /// The instant.
    pub at: SystemTime,
    text: String,
}

impl FromStr for StartAt {
    type Err = SegmentError;

    /// RFC 3339 (any offset, fractions allowed) or Unix seconds (fractions allowed).
    fn from_str(s: &str) -> Result<StartAt, SegmentError> {
        let bad = || SegmentError::StartSyntax { text: s.to_owned() };
        let t = s.trim();
        let at = if let Ok(secs) = t.parse::<f64>() {
            let since = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
            UNIX_EPOCH.checked_add(since).ok_or_else(bad)?
        } else {
            let when = OffsetDateTime::parse(t, &Rfc3339).map_err(|_| bad())?;
            let nanos = u64::try_from(when.unix_timestamp_nanos()).map_err(|_| bad())?;
            UNIX_EPOCH + Duration::from_nanos(nanos)
        };
        Ok(StartAt { at, text: t.to_owned() })
    }
}

impl StartAt {
    /// The monotonic instant of the start, given the wall clock and the monotonic clock read
    /// together (`now_wall`, `now`); an error when it passed more than [`PAST_SLACK`] ago.
    pub fn instant(&self, now_wall: SystemTime, now: Instant) -> Result<Instant, SegmentError> {
        match self.at.duration_since(now_wall) {
            Ok(ahead) => Ok(now + ahead),
            Err(past) => {
                let late = past.duration();
                if late > PAST_SLACK {
                    return Err(SegmentError::StartPassed { text: self.text.clone(), late });
                }
                // The schedule keeps its wall-clock origin: the first arrivals start late.
                Ok(now.checked_sub(late).unwrap_or(now))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{ArrivalProcess, Hold, Schedule, ScheduleConfig};

    #[test]
    fn segments_parse_and_refuse_what_is_not_a_slice() {
        assert_eq!("1/4".parse::<Segment>(), Ok(Segment { index: 1, parts: 4 }));
        assert_eq!("0/1".parse::<Segment>().unwrap().to_string(), "0/1");
        for bad in ["", "1", "4/4", "0/0", "-1/2", "a/2", "1/2/3", "1/"] {
            assert!(bad.parse::<Segment>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn segments_together_are_the_whole_schedule_once() {
        let schedule = Schedule::new(ScheduleConfig {
            clients: 37,
            rate: 50.0,
            duration: Duration::from_secs(20),
            ramp_down: Duration::from_secs(4),
            process: ArrivalProcess::Poisson,
            hold: Hold::Exponential(Duration::from_secs(3)),
            udp_share: 0.5,
            seed: 9,
        });
        let whole: Vec<_> = schedule.arrivals().collect();
        for parts in 1..=5u64 {
            let mut union = Vec::new();
            let mut shares = 0;
            for index in 0..parts {
                let seg = Segment { index, parts };
                // Each segment sees the full schedule's arrivals, not a rescaled schedule.
                union.extend(schedule.arrivals().filter(|a| seg.owns(a.index)));
                shares += seg.share(37);
                assert!(seg.share(37).abs_diff(37 / parts) <= 1);
            }
            union.sort_by_key(|a| a.index);
            assert_eq!(union, whole, "{parts} segments");
            assert_eq!(shares, 37);
        }
    }

    #[test]
    fn start_at_reads_rfc3339_and_unix_seconds() {
        let unix = |s: &str| s.parse::<StartAt>().unwrap().at.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(unix("1796619600"), Duration::from_secs(1_796_619_600));
        assert_eq!(unix("1796619600.25"), Duration::from_millis(1_796_619_600_250));
        assert_eq!(unix("2026-12-07T05:00:00Z"), Duration::from_secs(1_796_619_600));
        assert_eq!(unix("2026-12-07T06:00:00.5+01:00"), Duration::from_millis(1_796_619_600_500));
        for bad in ["", "soon", "2026-12-07", "2026-12-07 05:00:00", "-5", "NaN"] {
            assert!(bad.parse::<StartAt>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn a_start_in_the_future_waits_a_little_past_starts_now_a_long_past_fails() {
        let (wall, now) = (UNIX_EPOCH + Duration::from_secs(1000), Instant::now());
        let start = |secs: u64| StartAt {
            at: UNIX_EPOCH + Duration::from_secs(secs),
            text: secs.to_string(),
        };
        assert_eq!(start(1010).instant(wall, now), Ok(now + Duration::from_secs(10)));
        assert_eq!(start(1000).instant(wall, now), Ok(now));
        let late = start(997).instant(wall, now).unwrap();
        assert_eq!(now.duration_since(late), Duration::from_secs(3));
        let err = start(990).instant(wall, now).unwrap_err();
        assert!(
            matches!(err, SegmentError::StartPassed { late, .. } if late == Duration::from_secs(10))
        );
        assert!(err.to_string().contains("in the past"), "{err}");
    }
}
