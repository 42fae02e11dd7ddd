//! Log lines a client can trigger at will (refused connections and sessions, failed accepts)
//! are rate-limited, so that a flood of bad requests cannot turn into a flood of log writes
//! that stalls the shard.

use std::time::{Duration, Instant};

/// At most one log line a second, counting the ones it held back.
#[derive(Debug, Default)]
pub(crate) struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// Whether to log at `now`: `Some(lines held back since the last one)`, or `None`.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_the_count_of_the_rest() {
        let t0 = Instant::now();
        let mut log = RateLimitedLog::default();
        assert_eq!(log.allow(t0), Some(0));
        for ms in 1..1000 {
            assert_eq!(log.allow(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(log.allow(t0 + Duration::from_millis(1000)), Some(999));
        assert_eq!(log.allow(t0 + Duration::from_millis(1500)), None);
        assert_eq!(log.allow(t0 + Duration::from_millis(2000)), Some(1));
    }
}
