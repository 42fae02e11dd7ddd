//! The open-model arrival schedule, sans-IO: when each session is *meant* to start, how long it
//! holds and which transport it uses, all fixed in advance from the flags and a seed, so that
//! a slow server (or a slow generator) can never slow the arrivals down.
//!
//! The first `clients` sessions arrive at `rate` (the ramp-up: evenly, or with exponential
//! gaps for [`ArrivalProcess::Poisson`]); every later arrival replaces a session at that
//! session's *intended* end (its intended start plus its hold), so the intended concurrency
//! stays at `clients` (Little's law: arrivals/s = clients / mean hold). Each of the first
//! arrivals starts a *lane*: the chain of sessions that replace one another.
//!
//! The ramp-down is the last `ramp_down` of the run: nothing arrives in it, and the sessions
//! still playing when it begins (the last session of every lane) end one by one, evenly
//! spread over it: with `n` of them, the `k`-th to have started ends at
//! `duration - ramp_down + ramp_down * (k + 1) / n`, so the intended concurrency falls
//! linearly to 0 at `duration`. Their holds are stretched or cut to those slots (the one that
//! started first leaves first, which leaves every session as long a hold as the slots allow).
//! With no ramp-down every session still playing ends at `duration`.
//!
//! [`Pacer`] counts starts that happen behind their intended time: latencies are measured from
//! the intended start (coordinated omission), and starts that fall behind are reported.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use manifold_rtp::random::SplitMix;

use crate::quantity::parse_duration;

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

/// How the first `clients` arrivals (the ramp-up) are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArrivalProcess {
    /// Evenly: arrival `i` at `i / rate`.
    #[default]
    Uniform,
    /// A Poisson process at `rate`: the first at the start, then exponential gaps with mean
    /// `1 / rate`, drawn from the seed.
    Poisson,
}

impl FromStr for ArrivalProcess {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "uniform" => Ok(ArrivalProcess::Uniform),
            "poisson" => Ok(ArrivalProcess::Poisson),
            _ => Err(format!("arrivals `{s}`: expected uniform or poisson")),
        }
    }
}

impl fmt::Display for ArrivalProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArrivalProcess::Uniform => "uniform",
            ArrivalProcess::Poisson => "poisson",
        })
    }
}

/// Mixed into the seed for the Poisson gaps, so they do not repeat the hold draws.
const POISSON_STREAM: u64 = 0x5851_F42D_4C95_7F2D;

/// What the schedule is made from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Intended concurrency.
    pub clients: u32,
    /// Arrivals per second during the ramp-up.
    pub rate: f64,
    /// The run's length: every session has ended by then.
    pub duration: Duration,
    /// The last stretch of the run: no arrivals, the sessions still playing end evenly spread
    /// over it (zero: they all end at `duration`).
    pub ramp_down: Duration,
    /// How the ramp-up's arrivals are spaced.
    pub process: ArrivalProcess,
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
    /// How long it is meant to last: the drawn hold, or for the last session of its lane the
    /// time to its ramp-down slot (the end of the run without a ramp-down).
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
        let cut = self.ramp_down_start();
        let paced = c.rate > 0.0 && c.rate.is_finite();
        let mut gaps = SplitMix::new(c.seed ^ POISSON_STREAM);
        let mut poisson_at = 0.0f64;
        let mut pending = BinaryHeap::with_capacity(c.clients as usize);
        for i in 0..u64::from(c.clients) {
            let secs = match (paced, c.process) {
                (false, _) => 0.0,
                (true, ArrivalProcess::Uniform) => i as f64 / c.rate,
                (true, ArrivalProcess::Poisson) => {
                    let at = poisson_at;
                    // Inverse CDF; 1 - u is in (0, 1], so the log is finite.
                    poisson_at += -(1.0 - gaps.next_f64()).ln() / c.rate;
                    at
                }
            };
            let at = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
            // Starts never decrease: nothing later arrives before the ramp-down either.
            if at >= cut {
                break;
            }
            pending.push(Reverse((at, i)));
        }
        Arrivals {
            lanes: pending.len() as u64,
            pending,
            next_tiebreak: u64::from(c.clients),
            index: 0,
            finals: 0,
            cut,
            rng: SplitMix::new(c.seed),
            config: c.clone(),
        }
    }

    /// When the ramp-down begins (the end of the run without one), from the run's start.
    pub fn ramp_down_start(&self) -> Duration {
        self.config.duration.saturating_sub(self.config.ramp_down)
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
    /// Lanes: first arrivals before the ramp-down, each ending in one ramp-down slot.
    lanes: u64,
    /// Lanes whose last session has been handed out (the next free slot).
    finals: u64,
    /// When the ramp-down begins.
    cut: Duration,
    rng: SplitMix,
    config: ScheduleConfig,
}

impl Arrivals {
    /// The end of ramp-down slot `k` (from 0): `cut + ramp_down * (k + 1) / lanes`.
    fn slot_end(&self, k: u64) -> Duration {
        let share =
            self.config.ramp_down.as_nanos() * u128::from(k + 1) / u128::from(self.lanes.max(1));
        let share = Duration::from_nanos(u64::try_from(share).unwrap_or(u64::MAX));
        self.cut.saturating_add(share).min(self.config.duration)
    }
}

impl Iterator for Arrivals {
    type Item = Arrival;

    fn next(&mut self) -> Option<Arrival> {
        let Reverse((at, _)) = self.pending.pop()?;
        let drawn = self.config.hold.sample(self.rng.next_f64());
        let udp = self.rng.next_f64() < self.config.udp_share;
        // A zero hold would replace itself forever at the same instant.
        let drawn = drawn.max(Duration::from_millis(1));
        let natural = at.saturating_add(drawn);
        let end = if natural < self.cut {
            self.pending.push(Reverse((natural, self.next_tiebreak)));
            self.next_tiebreak += 1;
            natural
        } else {
            // The last session of its lane, still playing when the ramp-down begins: it ends
            // in the next slot. Lasts are handed out in order of start, so the one that
            // started first leaves first.
            let slot = self.finals;
            self.finals += 1;
            self.slot_end(slot)
        };
        let index = self.index;
        self.index += 1;
        Some(Arrival { index, at, hold: end.saturating_sub(at), udp })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn schedule(clients: u32, rate: f64, duration: u64, hold: Hold, ramp_down: u64) -> Schedule {
        Schedule::new(ScheduleConfig {
            clients,
            rate,
            duration: ms(duration),
            ramp_down: ms(ramp_down),
            process: ArrivalProcess::Uniform,
            hold,
            udp_share: 1.0,
            seed: 3,
        })
    }

    /// Intended sessions in progress at `t`.
    fn live(arrivals: &[Arrival], t: Duration) -> usize {
        arrivals.iter().filter(|a| a.at <= t && t < a.at + a.hold).count()
    }

    #[test]
    fn ramp_down_slots_with_fixed_holds() {
        // 4 lanes starting 0, 0.5, 1, 1.5 s with 3 s holds; the ramp-down is 6-10 s. The
        // second session of each lane (3, 3.5, 4, 4.5 s) would end at or after 6 s: they are
        // the ones still playing, and end at 7, 8, 9 and 10 s, in the order they started.
        let s = schedule(4, 2.0, 10_000, Hold::Fixed(ms(3000)), 4000);
        let a: Vec<Arrival> = s.arrivals().collect();
        let starts: Vec<u128> = a.iter().map(|a| a.at.as_millis()).collect();
        let ends: Vec<u128> = a.iter().map(|a| (a.at + a.hold).as_millis()).collect();
        assert_eq!(starts, [0, 500, 1000, 1500, 3000, 3500, 4000, 4500]);
        assert_eq!(ends, [3000, 3500, 4000, 4500, 7000, 8000, 9000, 10_000]);
        assert_eq!(s.ramp_down_start(), ms(6000));
    }

    #[test]
    fn concurrency_falls_linearly_over_the_ramp_down() {
        // 200 clients over a 1 s ramp, 20 s run, the last 8 s ramping down; exponential holds
        // so that the sessions still playing at 12 s are of every age, some cut and some
        // stretched to their slot.
        let (clients, duration, down) = (200u32, 20_000u64, 8_000u64);
        let s = schedule(clients, 200.0, duration, Hold::Exponential(ms(3000)), down);
        let a: Vec<Arrival> = s.arrivals().collect();
        let cut = ms(duration - down);
        assert!(a.iter().all(|x| x.at < cut), "nothing arrives in the ramp-down");
        assert!(a.iter().all(|x| x.at + x.hold <= ms(duration)));
        // Full concurrency from the end of the ramp-up to the start of the ramp-down.
        for t in (1000..duration - down).step_by(250) {
            assert_eq!(live(&a, ms(t)), clients as usize, "at {t} ms");
        }
        // Then linear to 0: at every point within one session of clients * (1 - x).
        for step in 0..=160u64 {
            let t = cut + ms(down * step / 160);
            let expected = f64::from(clients) * (1.0 - (step as f64 / 160.0));
            let n = live(&a, t) as f64;
            assert!((n - expected).abs() <= 1.0, "{n} live at {t:?}, expected {expected}");
        }
        assert_eq!(live(&a, ms(duration) - Duration::from_nanos(1)), 1);
        assert_eq!(live(&a, ms(duration)), 0);
        // Every session still playing at the cut got its own slot.
        let mut ends: Vec<Duration> =
            a.iter().map(|x| x.at + x.hold).filter(|&e| e > cut).collect();
        ends.sort();
        ends.dedup();
        assert_eq!(ends.len(), clients as usize);
        // Repeatable.
        assert_eq!(a, s.arrivals().collect::<Vec<_>>());
    }

    #[test]
    fn without_a_ramp_down_everything_still_playing_ends_at_the_end() {
        let s = schedule(50, 100.0, 5_000, Hold::Exponential(ms(2000)), 0);
        let a: Vec<Arrival> = s.arrivals().collect();
        for t in (500..5000).step_by(100) {
            assert_eq!(live(&a, ms(t)), 50, "at {t} ms");
        }
        assert_eq!(live(&a, ms(5000) - Duration::from_nanos(1)), 50);
        assert_eq!(a.iter().filter(|x| x.at + x.hold == ms(5000)).count(), 50);
    }

    #[test]
    fn a_ramp_up_cut_by_the_ramp_down_has_fewer_lanes() {
        // 10 clients at 1/s, ramp-down from 4 s: only the 4 that arrive before it start lanes,
        // and they end at 5, 6, 7 and 8 s.
        let s = schedule(10, 1.0, 8_000, Hold::Fixed(ms(60_000)), 4000);
        let a: Vec<Arrival> = s.arrivals().collect();
        let ends: Vec<u128> = a.iter().map(|a| (a.at + a.hold).as_millis()).collect();
        assert_eq!(ends, [5000, 6000, 7000, 8000]);
    }

    #[test]
    fn poisson_arrivals_keep_the_mean_rate() {
        let mut config = schedule(5000, 100.0, 3_600_000, Hold::Fixed(ms(3_600_000)), 0).config;
        config.process = ArrivalProcess::Poisson;
        let a: Vec<Arrival> = Schedule::new(config.clone()).arrivals().collect();
        assert_eq!(a.len(), 5000);
        assert_eq!(a[0].at, Duration::ZERO);
        // 4999 gaps of mean 10 ms: about 50 s (within 5%).
        let last = a[4999].at.as_secs_f64();
        assert!((47.5..52.5).contains(&last), "last arrival at {last} s");
        // Exponential gaps: their standard deviation is about their mean (uniform: 0).
        let gaps: Vec<f64> = a.windows(2).map(|w| (w[1].at - w[0].at).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((0.9..1.1).contains(&(sd / mean)), "sd/mean {}", sd / mean);
        // Seeded.
        assert_eq!(a, Schedule::new(config.clone()).arrivals().collect::<Vec<_>>());
        config.seed += 1;
        assert_ne!(a, Schedule::new(config).arrivals().collect::<Vec<_>>());
        assert_eq!("Poisson".parse::<ArrivalProcess>(), Ok(ArrivalProcess::Poisson));
        assert!("bursty".parse::<ArrivalProcess>().is_err());
    }
}
