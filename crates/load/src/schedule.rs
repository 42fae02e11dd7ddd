//! The open-model arrival schedule, sans-IO: when each session is *meant* to start, how long it
//! holds and which transport it uses, all fixed in advance from the flags and a seed, so that
//! a slow server (or a slow generator) can never slow the arrivals down.
//!
//! The first `clients` sessions arrive evenly at `rate` (the ramp); every later arrival replaces
//! a session at that session's *intended* end (its intended start plus its hold), so the
//! intended concurrency stays at `clients` (Little's law: arrivals/s = clients / mean hold).
//! Arrivals stop at `duration`; holds are cut at `duration`.
//!
//! [`Pacer`] counts starts that happen behind their intended time: latencies are measured from
//! the intended start (coordinated omission), and starts that fall behind are reported.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::args::parse_duration;

/// A hold-time distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    /// Every session holds this long.
    Fixed(Duration),
    /// Uniform between the two bounds.
    Uniform(Duration, Duration),
    /// Exponential with this mean.
    Exponential(Duration),
}

impl Hold {
    /// A draw from the distribution, given `u` uniform in [0, 1).
    pub fn sample(self, u: f64) -> Duration {
        match self {
            Hold::Fixed(d) => d,
            Hold::Uniform(a, b) => a + (b.saturating_sub(a)).mul_f64(u),
            // Inverse CDF; 1 - u is in (0, 1], so the log is finite.
            Hold::Exponential(mean) => mean.mul_f64(-(1.0 - u).ln()),
        }
    }
}

impl FromStr for Hold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Some(range) = t.strip_prefix("uniform:") {
            let (a, b) =
                range.split_once('-').ok_or_else(|| format!("hold `{s}`: expected uniform:A-B"))?;
            let (a, b) = (parse_duration(a)?, parse_duration(b)?);
            if b < a {
                return Err(format!("hold `{s}`: upper bound below lower bound"));
            }
            Ok(Hold::Uniform(a, b))
        } else if let Some(mean) = t.strip_prefix("exp:") {
            Ok(Hold::Exponential(parse_duration(mean)?))
        } else {
            Ok(Hold::Fixed(parse_duration(t.strip_prefix("fixed:").unwrap_or(t))?))
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Fixed(d) => write!(f, "{d:?}"),
            Hold::Uniform(a, b) => write!(f, "uniform:{a:?}-{b:?}"),
            Hold::Exponential(m) => write!(f, "exp:{m:?}"),
        }
    }
}

/// SplitMix64: a small, good, seedable generator (no RNG crate needed for draws like these).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the schedule is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Intended concurrency.
    pub clients: u32,
    /// Arrivals per second during the ramp.
    pub rate: f64,
    /// When arrivals stop and sessions end.
    pub duration: Duration,
    /// Hold-time distribution.
    pub hold: Hold,
    /// Share of sessions over UDP, 0.0-1.0.
    pub udp_share: f64,
    /// Seed of the draws.
    pub seed: u64,
}

/// One intended session start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// The session's number, from 0, in order of intended start.
    pub index: u64,
    /// Intended start, from the start of the run.
    pub at: Duration,
    /// How long it plays (already cut at the end of the run).
    pub hold: Duration,
    /// UDP (else interleaved).
    pub udp: bool,
}

/// The whole run's arrivals, in order of intended start.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: ScheduleConfig,
}

impl Schedule {
    /// A schedule; a non-positive or non-finite rate is treated as "all at once".
    pub fn new(config: ScheduleConfig) -> Schedule {
        Schedule { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// Every arrival, in order of intended start.
    pub fn arrivals(&self) -> Arrivals {
        let c = &self.config;
        let mut pending = BinaryHeap::with_capacity(c.clients as usize);
        for i in 0..u64::from(c.clients) {
            let at = if c.rate > 0.0 && c.rate.is_finite() {
                Duration::try_from_secs_f64(i as f64 / c.rate).unwrap_or(Duration::MAX)
            } else {
                Duration::ZERO
            };
            if at < c.duration {
                pending.push(Reverse((at, i)));
            }
        }
        Arrivals {
            pending,
            next_tiebreak: u64::from(c.clients),
            index: 0,
            rng: SplitMix::new(c.seed),
            config: c.clone(),
        }
    }

    /// The most sessions meant to be in progress at once.
    pub fn peak_concurrency(&self) -> u64 {
        u64::from(self.config.clients)
    }
}

/// Iterator over a [`Schedule`]'s arrivals.
#[derive(Debug, Clone)]
pub struct Arrivals {
    /// Intended starts not yet handed out, with a tiebreak that keeps equal times in order.
    pending: BinaryHeap<Reverse<(Duration, u64)>>,
    next_tiebreak: u64,
    index: u64,
    rng: SplitMix,
    config: ScheduleConfig,
}

impl Iterator for Arrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let Reverse((at, _)) = self.pending.pop()?;
        let drawn = self.config.hold.sample(self.rng.next_f64());
        let udp = self.rng.next_f64() < self.config.udp_share;
        // A zero hold would replace itself forever at the same instant.
        let drawn = drawn.max(Duration::from_millis(1));
        let end = at.saturating_add(drawn);
        if end < self.config.duration {
            self.pending.push(Reverse((end, self.next_tiebreak)));
            self.next_tiebreak += 1;
        }
        let index = self.index;
        self.index += 1;
        Some(Arrival { index, at, hold: end.min(self.config.duration) - at, udp })
    }
}

/// Counts starts against their intended times; it never delays one.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    tolerance: Duration,
    started: u64,
    behind: u64,
    worst: Duration,
}

impl Pacer {
    /// A pacer that counts a start as behind when it is more than `tolerance` late.
    pub fn new(tolerance: Duration) -> Pacer {
        Pacer { tolerance, ..Pacer::default() }
    }

    /// A session meant to start at `intended` starts at `now` (both from the run's start);
    /// returns how late it is.
    pub fn start(&mut self, intended: Duration, now: Duration) -> Duration {
        let lag = now.saturating_sub(intended);
        self.started += 1;
        if lag > self.tolerance {
            self.behind += 1;
        }
        self.worst = self.worst.max(lag);
        lag
    }

    /// Starts so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Starts more than the tolerance behind schedule.
    pub fn behind(&self) -> u64 {
        self.behind
    }

    /// The latest start so far.
    pub fn worst(&self) -> Duration {
        self.worst
    }
}
