//! A shard's one time grid, from the run's start: UDP reads fall on its ticks, and so do the
//! sessions' own deadlines (rounded up to [`TIMER_STEP`]), so that one wake-up of the shard's
//! executor serves them all. Thousands of sessions with deadlines of their own woke the
//! executor thousands of times a second, each wake-up an `io_uring_enter`, a timeout armed
//! and one cancelled (perf/RESULTS.md, "Generator cost beside the relay's").

use std::time::{Duration, Instant};

/// The grid's step for session deadlines (keep-alives, receiver reports, media and request
/// timeouts) and the health timer: fine enough for each of them, coarse enough that one
/// wake-up serves many sessions. UDP read intervals are multiples of it by default.
pub(crate) const TIMER_STEP: Duration = Duration::from_millis(10);

/// The first point of the grid of `step`s from `anchor` strictly after `now`.
pub(crate) fn next_tick(anchor: Instant, step: Duration, now: Instant) -> Instant {
    let since = now.saturating_duration_since(anchor).as_nanos();
    point_at_or_after(anchor, step, since + 1)
}

/// The first point of the grid of `step`s from `anchor` at or after `at`: a deadline moved
/// onto the grid, never earlier.
pub(crate) fn round_up(anchor: Instant, step: Duration, at: Instant) -> Instant {
    if at <= anchor {
        return at;
    }
    point_at_or_after(anchor, step, (at - anchor).as_nanos())
}

/// The first point of the grid at or after `since_ns` nanoseconds from `anchor`.
fn point_at_or_after(anchor: Instant, step: Duration, since_ns: u128) -> Instant {
    let ticks = since_ns.div_ceil(step.as_nanos().max(1));
    anchor + step.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
}

/// Sleeps until `at` (at once if it is past).
pub(crate) async fn sleep_until(at: Instant) {
    glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ticks_fall_on_one_grid() {
        let t0 = Instant::now();
        assert_eq!(next_tick(t0, ms(50), t0), t0 + ms(50));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(49)), t0 + ms(50));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(50)), t0 + ms(100));
        assert_eq!(next_tick(t0, ms(50), t0 + ms(1234)), t0 + ms(1250));
        // Before the anchor (sessions start after it, but the clock may say otherwise).
        assert_eq!(next_tick(t0 + ms(10), ms(50), t0), t0 + ms(60));
    }

    #[test]
    fn deadlines_move_up_to_the_grid_and_never_earlier() {
        let t0 = Instant::now();
        assert_eq!(round_up(t0, ms(10), t0 + ms(20)), t0 + ms(20));
        assert_eq!(round_up(t0, ms(10), t0 + ms(21)), t0 + ms(30));
        assert_eq!(round_up(t0, ms(10), t0 + Duration::from_micros(29_999)), t0 + ms(30));
        // Before the grid starts: left as it is.
        assert_eq!(round_up(t0 + ms(10), ms(10), t0), t0);
        // The 50 ms UDP ticks are points of the 10 ms grid: one wake-up serves both.
        let tick = next_tick(t0, ms(50), t0 + ms(1234));
        assert_eq!(round_up(t0, TIMER_STEP, tick), tick);
    }
}
