//! Failed attempts per client address: a token bucket per address (IPv6 per /64, which one
//! host usually owns whole) in a bounded LRU table. Each failure takes a token; an address
//! with none left is refused until one comes back. Per shard: the relay's shards each keep
//! their own table, so a client spread over N shards gets up to N times the burst.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;

/// How many failures an address may make, and how fast it earns them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Failures allowed in a burst (at least 1).
    pub burst: u32,
    /// One failure comes back per this interval.
    pub refill_every: Duration,
    /// Addresses remembered (at least 1); the least recently seen is forgotten first.
    pub table: usize,
}

impl Default for RateLimit {
    /// 10 failures, then one every 6 s (10 a minute), 4096 addresses.
    fn default() -> Self {
        RateLimit { burst: 10, refill_every: Duration::from_secs(6), table: 4096 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the last token came back (or the bucket was made).
    since: Instant,
}

/// The table of buckets.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    limit: RateLimit,
    table: LruCache<IpAddr, Bucket>,
}

/// The key an address is limited under.
fn key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(a) => {
            let s = a.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl FailureLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let limit = RateLimit { burst: limit.burst.max(1), ..limit };
        let cap = NonZeroUsize::new(limit.table).unwrap_or(NonZeroUsize::MIN);
        FailureLimiter { limit, table: LruCache::new(cap) }
    }

    /// Brings a bucket up to date: whole intervals since `since` return tokens.
    fn refill(&self, b: &mut Bucket, now: Instant) {
        let every = self.limit.refill_every;
        if b.tokens >= self.limit.burst || every.is_zero() {
            b.tokens = self.limit.burst;
            b.since = now;
            return;
        }
        let elapsed = now.saturating_duration_since(b.since);
        let earned = elapsed.as_nanos() / every.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            b.tokens = b.tokens.saturating_add(earned).min(self.limit.burst);
            // Keep the part of an interval already served.
            b.since += every * earned.min(self.limit.burst);
            if b.tokens == self.limit.burst {
                b.since = now;
            }
        }
    }

    /// `Some(wait)` when `peer` has no failure left: refuse it for that long.
    pub(crate) fn blocked(&mut self, now: Instant, peer: IpAddr) -> Option<Duration> {
        let k = key(peer);
        let mut b = *self.table.peek(&k)?;
        self.refill(&mut b, now);
        self.table.put(k, b);
        (b.tokens == 0).then(|| (b.since + self.limit.refill_every).saturating_duration_since(now))
    }

    /// Takes one token from `peer`'s bucket.
    pub(crate) fn record_failure(&mut self, now: Instant, peer: IpAddr) {
        let k = key(peer);
        let mut b =
            self.table.peek(&k).copied().unwrap_or(Bucket { tokens: self.limit.burst, since: now });
        self.refill(&mut b, now);
        b.tokens = b.tokens.saturating_sub(1);
        self.table.put(k, b);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill_on_virtual_time() {
        let t0 = Instant::now();
        let limit = RateLimit { burst: 3, refill_every: Duration::from_secs(6), table: 8 };
        let mut l = FailureLimiter::new(limit);
        let a = ip("198.51.100.1");
        assert_eq!(l.blocked(t0, a), None);
        for _ in 0..3 {
            assert_eq!(l.blocked(t0, a), None);
            l.record_failure(t0, a);
        }
        assert_eq!(l.blocked(t0, a), Some(Duration::from_secs(6)));
        assert_eq!(l.blocked(t0 + Duration::from_secs(4), a), Some(Duration::from_secs(2)));
        assert_eq!(l.blocked(t0, ip("198.51.100.2")), None, "another address is not limited");
        // One token back after 6 s, spent at once.
        let t6 = t0 + Duration::from_secs(6);
        assert_eq!(l.blocked(t6, a), None);
        l.record_failure(t6, a);
        assert!(l.blocked(t6, a).is_some());
        // A long quiet time fills the bucket to the burst, no more.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..3 {
            assert_eq!(l.blocked(later, a), None);
            l.record_failure(later, a);
        }
        assert!(l.blocked(later, a).is_some());
    }

    #[test]
    fn ipv6_limited_per_64_and_mapped_v4_is_v4() {
        let t0 = Instant::now();
        let limit = RateLimit { burst: 1, refill_every: Duration::from_secs(60), table: 8 };
        let mut l = FailureLimiter::new(limit);
        l.record_failure(t0, ip("2001:db8:1:2::1"));
        assert!(l.blocked(t0, ip("2001:db8:1:2:ffff::9")).is_some(), "same /64");
        assert!(l.blocked(t0, ip("2001:db8:1:3::1")).is_none(), "next /64");
        l.record_failure(t0, ip("::ffff:203.0.113.5"));
        assert!(l.blocked(t0, ip("203.0.113.5")).is_some());
    }

    #[test]
    fn table_is_bounded_and_forgets_the_least_recent() {
        let t0 = Instant::now();
        let limit = RateLimit { burst: 1, refill_every: Duration::from_secs(60), table: 4 };
        let mut l = FailureLimiter::new(limit);
        for i in 0..100u8 {
            l.record_failure(t0, IpAddr::from([10, 0, 0, i]));
            assert!(l.len() <= 4);
        }
        assert!(l.blocked(t0, IpAddr::from([10, 0, 0, 99])).is_some());
        assert!(l.blocked(t0, IpAddr::from([10, 0, 0, 0])).is_none(), "forgotten");
    }
}
