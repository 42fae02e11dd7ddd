//! A receiver's RTCP receiver reports, sans-IO: when the next one is due ([`ReportClock`]) and
//! what it holds ([`receiver_report`]). The load generator's clients send them, as ffmpeg and
//! VLC do, so a server sees the feedback real players give it; the relay sends them to the
//! upstreams it pulls from, some of which stop streaming to a client that sends none.
//!
//! Intervals follow RFC 3550 §6.3.1 for a receiver in a small session: the deterministic
//! interval is the 5 s minimum (halved before the first report, §6.2), randomised by a factor
//! uniform in [0.5, 1.5] and divided by e − 3/2 to compensate for timer reconsideration, so
//! thousands of clients started together do not report in lockstep.

use std::time::{Duration, Instant};

use crate::random::SplitMix;
use crate::rtcp::{BuildError, ReportBlock, SdesItem, SdesKind, Writer};
use crate::Ssrc;

/// RFC 3550 §6.2: the minimum deterministic interval between RTCP reports.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// RFC 3550 §6.3.1: e − 3/2, the compensation for timer reconsideration.
const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// When a session's next receiver report is due.
///
/// Drain contract: arm a timer for [`poll_timeout`](Self::poll_timeout); whenever it has
/// passed, call [`handle_timeout`](Self::handle_timeout), which says whether to send a report
/// now and schedules the next one.
#[derive(Debug, Clone)]
pub struct ReportClock {
    interval: Duration,
    next: Instant,
    rng: SplitMix,
}

impl ReportClock {
    /// Starts reporting at `now` (media begins): the first report after a randomised half
    /// interval, then every randomised `interval` (at least [`MIN_INTERVAL`]).
    pub fn start(now: Instant, interval: Duration, seed: u64) -> ReportClock {
        let mut clock = ReportClock {
            interval: interval.max(MIN_INTERVAL),
            next: now,
            rng: SplitMix::new(seed),
        };
        clock.next = now + clock.randomised(clock.interval / 2);
        clock
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next
    }

    /// Whether a report is due at `now`; when it is, the next one is scheduled from `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.randomised(self.interval);
        true
    }

    /// `td` × a factor uniform in [0.5, 1.5], ÷ (e − 3/2) (RFC 3550 §6.3.1).
    fn randomised(&mut self, td: Duration) -> Duration {
        td.mul_f64((0.5 + self.rng.next_f64()) / COMPENSATION)
    }
}

/// Writes into `buf` the compound a receiver sends: an RR from `ssrc` with `block` (none
/// before the track's source is known, as RFC 3550 allows), then an SDES with its CNAME,
/// which every compound must carry. Returns the bytes written.
pub fn receiver_report(
    buf: &mut [u8],
    ssrc: Ssrc,
    cname: &str,
    block: Option<ReportBlock>,
) -> Result<usize, BuildError> {
    let mut w = Writer::new(buf);
    let blocks: &[ReportBlock] = match &block {
        Some(b) => std::slice::from_ref(b),
        None => &[],
    };
    w.receiver_report(ssrc, blocks)?;
    w.sdes(&[(ssrc, &[SdesItem { kind: SdesKind::CNAME, value: cname.as_bytes() }])])?;
    Ok(w.len())
}

#[cfg(test)]
mod tests {
    use crate::ntp::CompactNtp;
    use crate::rtcp::{packets, validate_compound, Packet};
    use crate::SeqNo;

    use super::*;

    /// Runs a clock over `span` of virtual time, waking exactly at each deadline, and returns
    /// the offsets from `t0` of the reports it asked for.
    fn reports_over(clock: &mut ReportClock, t0: Instant, span: Duration) -> Vec<Duration> {
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + span {
            // A wake before the deadline asks for nothing.
            let due = clock.poll_timeout();
            assert!(!clock.handle_timeout(due - Duration::from_millis(1)));
            now = due;
            if clock.handle_timeout(now) {
                sent.push(now - t0);
            }
        }
        sent
    }

    #[test]
    fn first_report_after_a_randomised_half_interval_then_randomised_intervals() {
        let t0 = Instant::now();
        let lo = |td: Duration| td.mul_f64(0.5 / COMPENSATION);
        let hi = |td: Duration| td.mul_f64(1.5 / COMPENSATION);
        for seed in 0..200 {
            let mut clock = ReportClock::start(t0, MIN_INTERVAL, seed);
            let sent = reports_over(&mut clock, t0, Duration::from_secs(120));
            let first = sent[0];
            assert!(first >= lo(MIN_INTERVAL / 2) && first <= hi(MIN_INTERVAL / 2), "{first:?}");
            for pair in sent.windows(2) {
                let gap = pair[1] - pair[0];
                assert!(gap >= lo(MIN_INTERVAL) && gap <= hi(MIN_INTERVAL), "{gap:?}");
            }
        }
    }

    #[test]
    fn intervals_average_the_compensated_interval_and_differ_between_clients() {
        let t0 = Instant::now();
        let mut clock = ReportClock::start(t0, MIN_INTERVAL, 7);
        let sent = reports_over(&mut clock, t0, Duration::from_secs(3600));
        let gaps: Vec<f64> = sent.windows(2).map(|p| (p[1] - p[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let expected = MIN_INTERVAL.as_secs_f64() / COMPENSATION;
        assert!((mean - expected).abs() < 0.2, "mean {mean}, expected {expected}");
        let mut other = ReportClock::start(t0, MIN_INTERVAL, 8);
        assert_ne!(other.poll_timeout(), ReportClock::start(t0, MIN_INTERVAL, 7).poll_timeout());
        assert!(!other.handle_timeout(t0), "nothing is due at the start");
    }

    #[test]
    fn an_interval_below_the_minimum_is_raised_to_it() {
        let t0 = Instant::now();
        let mut clock = ReportClock::start(t0, Duration::from_millis(100), 1);
        let sent = reports_over(&mut clock, t0, Duration::from_secs(60));
        assert!(sent.windows(2).all(|p| p[1] - p[0] >= MIN_INTERVAL.mul_f64(0.5 / COMPENSATION)));
    }

    #[test]
    fn a_late_wake_sends_one_report_and_schedules_from_then() {
        let t0 = Instant::now();
        let mut clock = ReportClock::start(t0, MIN_INTERVAL, 3);
        let late = clock.poll_timeout() + Duration::from_secs(30);
        assert!(clock.handle_timeout(late));
        assert!(!clock.handle_timeout(late), "one report per wake");
        assert!(clock.poll_timeout() > late);
    }

    #[test]
    fn the_compound_is_a_valid_rr_with_its_block_and_a_cname() {
        let block = ReportBlock {
            ssrc: Ssrc(0xabcd),
            fraction_lost: 64,
            cumulative_lost: 12,
            highest_seq: SeqNo(70_000),
            jitter: 450,
            last_sr: CompactNtp(0),
            delay_since_last_sr: CompactNtp(0),
        };
        let mut buf = [0u8; 256];
        let n = receiver_report(&mut buf, Ssrc(99), "load-3@127.0.0.1", Some(block)).unwrap();
        assert_eq!(validate_compound(&buf[..n]), Ok(2));
        let parsed: Vec<_> = packets(&buf[..n]).map(Result::unwrap).collect();
        let Packet::ReceiverReport(rr) = parsed[0] else { panic!("{parsed:?}") };
        assert_eq!(rr.ssrc(), Ssrc(99));
        let blocks: Vec<_> = rr.report_blocks().collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].fraction_lost, 64);
        assert_eq!(blocks[0].cumulative_lost, 12);
        assert_eq!(blocks[0].highest_seq, SeqNo(70_000));
        assert_eq!(blocks[0].jitter, 450);
        let Packet::Sdes(sdes) = parsed[1] else { panic!("{parsed:?}") };
        let chunk = sdes.chunks().next().unwrap();
        let item = chunk.items().next().unwrap();
        assert_eq!(item.kind, SdesKind::CNAME);
        assert_eq!(item.value, b"load-3@127.0.0.1");

        let n = receiver_report(&mut buf, Ssrc(99), "x", None).unwrap();
        assert_eq!(validate_compound(&buf[..n]), Ok(2), "an empty RR before media is valid");
    }
}
