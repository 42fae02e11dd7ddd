//! How often a shard reads each of its UDP sockets when `--udp-read-interval` is `auto` (not
//! the default: on the server's own host, deeper queues in the generator's sockets cost the
//! server more per packet; perf/RESULTS.md, "Reading less often").
//!
//! Every read of a socket costs a system call and a failed receive at its end, whatever it
//! finds, so at thousands of sockets of one packet a frame the reads, not the packets, are
//! most of the generator's cost: 200 ms between reads took 11–27% less generator CPU than
//! 50 ms at 5,000 readers of 200 kbit/s. But a socket read too seldom overflows its receive
//! buffer and the kernel drops datagrams, which the report would count as loss. So the pace
//! starts at every tick of the shard's grid and halves how
//! often a socket is read only while the fullest buffer of the last [`GROW_AFTER`] stayed under
//! [`GROW_BELOW`] of its size (at twice the interval it would then stay under a quarter); it
//! doubles it again as soon as a buffer passes [`SHRINK_ABOVE`] or the kernel dropped a
//! datagram. A socket is read on one tick in `every`, in turn, so each tick still reads about
//! as much as before and holds the shard no longer.
//!
//! Sans-IO: the shard's reading task reports each tick with [`ReadPace::handle_tick`] and asks
//! [`ReadPace::every`] which sockets the next tick reads.

use std::time::{Duration, Instant};

/// How long the buffers must stay calm before sockets are read half as often. Long enough to
/// take in a keyframe or two of a usual stream (a GOP of 1–2 s).
pub(crate) const GROW_AFTER: Duration = Duration::from_secs(4);
/// The fullest buffer, as a share of its size, under which reading half as often is safe.
pub(crate) const GROW_BELOW: f64 = 0.125;
/// The fullest buffer, as a share of its size, over which sockets are read twice as often.
pub(crate) const SHRINK_ABOVE: f64 = 0.5;

/// What one tick's reads found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TickReading {
    /// The most any socket read this tick held, as a share of its receive buffer (at most: the
    /// kernel's charge is estimated from above, [`manifold_udp::Message::buffer_charge`]).
    /// Zero when no socket read had datagrams: a datagram is never charged nothing.
    pub(crate) fullest: f64,
    /// Whether the kernel dropped a datagram for want of buffer since the last tick.
    pub(crate) dropped: bool,
}

/// How often each socket is read: on one tick of the grid in [`every`](Self::every).
#[derive(Debug)]
pub(crate) struct ReadPace {
    every: u32,
    most: u32,
    /// Since when every tick that found data found the buffers under [`GROW_BELOW`].
    calm_since: Option<Instant>,
}

impl ReadPace {
    /// Reads every socket at every tick, and at most one tick in `most` (1: never less often;
    /// rounded down to a power of two).
    pub(crate) fn new(most: u32) -> Self {
        let most = if most <= 1 { 1 } else { 1 << most.ilog2() };
        ReadPace { every: 1, most, calm_since: None }
    }

    /// A socket is read on one tick in this many.
    pub(crate) fn every(&self) -> u32 {
        self.every
    }

    /// Whether the socket with `key` is read at grid tick `tick`.
    pub(crate) fn reads(&self, key: u64, tick: u64) -> bool {
        let every = u64::from(self.every);
        key % every == tick % every
    }

    /// Takes in what the tick at `now` found; returns whether the pace changed.
    pub(crate) fn handle_tick(&mut self, now: Instant, found: TickReading) -> bool {
        let before = self.every;
        if found.dropped || found.fullest > SHRINK_ABOVE {
            self.every = (self.every / 2).max(1);
            self.calm_since = None;
        } else if found.fullest >= GROW_BELOW {
            self.calm_since = None;
        } else if found.fullest > 0.0 {
            // Ticks without data neither start nor end a calm spell: they tell nothing.
            let since = *self.calm_since.get_or_insert(now);
            if self.every < self.most && now.saturating_duration_since(since) >= GROW_AFTER {
                self.every *= 2;
                // The buffers must now prove calm at the new pace.
                self.calm_since = None;
            }
        }
        self.every != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn calm() -> TickReading {
        TickReading { fullest: 0.05, dropped: false }
    }

    /// Ticks every 50 ms from `*now` for `span` with `found`; returns the pace after.
    fn run(pace: &mut ReadPace, now: &mut Instant, span: Duration, found: TickReading) -> u32 {
        let end = *now + span;
        while *now < end {
            *now += ms(50);
            pace.handle_tick(*now, found);
        }
        pace.every()
    }

    #[test]
    fn calm_buffers_are_read_half_as_often_after_each_calm_spell_up_to_the_most() {
        let (mut pace, mut now) = (ReadPace::new(4), Instant::now());
        assert_eq!(pace.every(), 1);
        assert_eq!(run(&mut pace, &mut now, GROW_AFTER, calm()), 1, "one tick short of a spell");
        assert_eq!(run(&mut pace, &mut now, ms(50), calm()), 2);
        assert_eq!(run(&mut pace, &mut now, GROW_AFTER, calm()), 2);
        assert_eq!(run(&mut pace, &mut now, ms(50), calm()), 4);
        assert_eq!(run(&mut pace, &mut now, ms(60_000), calm()), 4, "never beyond the most");
    }

    #[test]
    fn a_full_buffer_or_a_drop_doubles_the_reads_at_once() {
        let (mut pace, mut now) = (ReadPace::new(4), Instant::now());
        run(&mut pace, &mut now, ms(20_000), calm());
        assert_eq!(pace.every(), 4);
        let full = TickReading { fullest: 0.6, ..calm() };
        assert!(pace.handle_tick(now + ms(50), full));
        assert_eq!(pace.every(), 2);
        let dropped = TickReading { dropped: true, ..calm() };
        assert!(pace.handle_tick(now + ms(100), dropped));
        assert_eq!(pace.every(), 1);
        assert!(!pace.handle_tick(now + ms(150), dropped), "every tick is the most there is");
        assert_eq!(pace.every(), 1);
    }

    #[test]
    fn a_buffer_between_the_marks_holds_the_pace_and_restarts_the_calm_spell() {
        let (mut pace, mut now) = (ReadPace::new(4), Instant::now());
        run(&mut pace, &mut now, GROW_AFTER - ms(100), calm());
        let middling = TickReading { fullest: 0.3, ..calm() };
        assert!(!pace.handle_tick(now + ms(50), middling));
        now += ms(50);
        // The spell starts again from the next calm tick: a whole one is needed.
        assert_eq!(run(&mut pace, &mut now, GROW_AFTER, calm()), 1);
        assert_eq!(run(&mut pace, &mut now, ms(50), calm()), 2);
        assert_eq!(run(&mut pace, &mut now, ms(60_000), middling), 2);
    }

    #[test]
    fn ticks_without_data_prove_nothing() {
        let (mut pace, mut now) = (ReadPace::new(4), Instant::now());
        let empty = TickReading::default();
        assert_eq!(run(&mut pace, &mut now, ms(60_000), empty), 1);
        // Data starts: the calm spell starts with it.
        assert_eq!(run(&mut pace, &mut now, ms(3_000), calm()), 1);
        assert_eq!(run(&mut pace, &mut now, ms(1_050), calm()), 2);
    }

    #[test]
    fn a_fixed_pace_never_moves_and_most_is_a_power_of_two() {
        let (mut pace, mut now) = (ReadPace::new(1), Instant::now());
        assert_eq!(run(&mut pace, &mut now, ms(60_000), calm()), 1);
        assert_eq!(ReadPace::new(0).most, 1);
        assert_eq!(ReadPace::new(5).most, 4);
        assert_eq!(ReadPace::new(8).most, 8);
    }

    #[test]
    fn each_socket_is_read_on_one_tick_in_every_in_turn() {
        let (mut pace, mut now) = (ReadPace::new(4), Instant::now());
        run(&mut pace, &mut now, ms(20_000), calm());
        assert_eq!(pace.every(), 4);
        for key in 0..16u64 {
            let read_at: Vec<u64> = (100..112).filter(|&t| pace.reads(key, t)).collect();
            assert_eq!(read_at.len(), 3, "key {key}");
            assert!(read_at.windows(2).all(|w| w[1] - w[0] == 4), "key {key}: {read_at:?}");
        }
        // Every tick reads a quarter of the sockets.
        for tick in 100..104 {
            assert_eq!((0..16).filter(|&k| pace.reads(k, tick)).count(), 4);
        }
    }
}
