//! The relay's receiver-report folding over arbitrary RTCP compounds, truncated or with
//! lying length fields: never panics, counts exactly the report blocks it reports, keeps the
//! loss fractions within 0–1 and the maxima at least the latest, only grows its count, and
//! a truncated compound never yields more blocks than the whole one. Every datagram is also
//! taken as sent to the reader (a sender report is remembered), so a later one may name it:
//! a round trip is never longer than the time since the first was sent.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use manifold_relay::fuzzing::Feedback;

/// The size of a report block: whatever parses, at most this many blocks fit.
const BLOCK: usize = 24;

fn check(f: &Feedback) {
    for x in [f.fraction_lost(), f.max_fraction_lost()] {
        assert!((0.0..=1.0).contains(&x), "fraction {x}");
    }
    assert!(f.max_fraction_lost() >= f.fraction_lost());
    assert!(f.max_jitter_ticks() >= f.jitter_ticks());
    assert!(f.max_rtt() >= f.rtt());
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut f = Feedback::default();
    // The input is one or more datagrams, split where it holds the marker.
    let mut absorbed = 0u64;
    for (i, datagram) in data.split(|&b| b == 0xfe).enumerate() {
        let before = f.clone();
        let now = t0 + Duration::from_millis(i as u64);
        let n = f.absorb(datagram, now);
        assert!(n <= datagram.len() / BLOCK, "{n} blocks in {} bytes", datagram.len());
        absorbed += n as u64;
        assert_eq!(f.reports(), before.reports() + n as u64);
        assert!(f.max_fraction_lost() >= before.max_fraction_lost());
        assert!(f.max_jitter_ticks() >= before.max_jitter_ticks());
        if n == 0 {
            assert_eq!(f, before, "a datagram without report blocks changed the feedback");
        } else {
            assert_eq!(f.at(), Some(now));
        }
        check(&f);
        assert!(f.rtt().is_none_or(|rtt| rtt <= now - t0), "{:?}", f.rtt());
        f.sent(datagram, now);
        // A cut datagram (a lying length field, as the receiver sees it) holds no more.
        let cut = &datagram[..datagram.len() / 2];
        let mut g = Feedback::default();
        assert!(g.absorb(cut, now) <= n, "the first half held more blocks than the whole");
        check(&g);
    }
    assert_eq!(f.reports(), absorbed);
});
