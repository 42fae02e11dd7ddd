//! Per-source receiver statistics (RFC 3550 appendix A): sequence validation with probation
//! (A.1), expected and lost packet counts (A.3), interarrival jitter (A.8), plus duplicate and
//! reordering counts, and the report block an RTCP receiver report carries for the source.
//!
//! Time comes in as an argument: the caller passes each packet's arrival `Instant`, which is
//! converted to media clock units against the first arrival; nothing here reads a clock.

use std::time::Instant;

use crate::ntp::{CompactNtp, NtpTime};
use crate::rtcp::ReportBlock;
use crate::{RtpTime, SeqNo, Ssrc};

/// Packets that must arrive in sequence before a source counts as valid (RFC 3550 A.1).
pub const MIN_SEQUENTIAL: u8 = 2;
/// Largest forward jump still taken as loss rather than a restart (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step still taken as reordering rather than a restart (RFC 3550 A.1).
pub const MAX_MISORDER: u16 = 100;

/// How many recent sequence numbers are remembered for duplicate detection.
const WINDOW_BITS: u64 = 1024;

/// Range of the 24-bit signed cumulative-lost field of a report block.
const LOST_MIN: i64 = -0x80_0000;
const LOST_MAX: i64 = 0x7f_ffff;

/// What one packet's sequence number turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrival {
    /// The source is still on probation (fewer than [`MIN_SEQUENTIAL`] packets in sequence);
    /// the packet is not counted.
    Probation,
    /// The new highest sequence number (possibly after a gap, which counts as loss).
    InOrder(SeqNo),
    /// Below the highest sequence number and not seen before: counted, and in the reordered count.
    Reordered(SeqNo),
    /// Seen before: counted as received (as RFC 3550 does, so cumulative loss can go negative)
    /// and in the duplicate count; it does not update the jitter.
    Duplicate(SeqNo),
    /// A jump too large for loss or reordering. Not counted; if the next packet continues from
    /// here, statistics restart at it (the sender restarted, RFC 3550 A.1 `bad_seq`).
    Jump,
    /// This packet confirmed a jump: the statistics restarted from it.
    Restarted(SeqNo),
}

/// The sequence-number state of a validated-or-probationary source (RFC 3550 A.1 `source`).
#[derive(Debug, Clone)]
struct Sequence {
    probation: u8,
    /// Highest sequence number seen, extended; its cycles start at 0 at (re)initialisation.
    max: SeqNo,
    base: SeqNo,
    /// The sequence number that would confirm a jump, if one is pending.
    bad_seq: Option<u16>,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit `s % WINDOW_BITS` is set when extended sequence `s` (within the window below `max`)
    /// has been received.
    seen: [u64; (WINDOW_BITS / 64) as usize],
}

impl Sequence {
    fn probation(seq: u16) -> Sequence {
        let mut s = Sequence::valid(seq);
        s.max = SeqNo(u64::from(seq.wrapping_sub(1)));
        s.probation = MIN_SEQUENTIAL;
        s
    }

    /// RFC 3550 `init_seq`, plus marking `seq` as seen.
    fn valid(seq: u16) -> Sequence {
        let mut s = Sequence {
            probation: 0,
            max: SeqNo(u64::from(seq)),
            base: SeqNo(u64::from(seq)),
            bad_seq: None,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            seen: [0; (WINDOW_BITS / 64) as usize],
        };
        s.mark(s.max);
        s
    }

    fn bit(seq: SeqNo) -> (usize, u64) {
        let i = seq.0 % WINDOW_BITS;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn mark(&mut self, seq: SeqNo) {
        let (word, mask) = Sequence::bit(seq);
        self.seen[word] |= mask;
    }

    fn is_marked(&self, seq: SeqNo) -> bool {
        let (word, mask) = Sequence::bit(seq);
        self.seen[word] & mask != 0
    }

    /// Moves the highest sequence number forward, forgetting the window slots it passes.
    fn advance(&mut self, to: SeqNo) {
        let step = to.0.wrapping_sub(self.max.0);
        if step >= WINDOW_BITS {
            self.seen = [0; (WINDOW_BITS / 64) as usize];
        } else {
            for k in 1..=step {
                let (word, mask) = Sequence::bit(SeqNo(self.max.0.wrapping_add(k)));
                self.seen[word] &= !mask;
            }
        }
        self.max = to;
        self.mark(to);
    }

    fn expected(&self) -> u64 {
        self.max.0.wrapping_sub(self.base.0).wrapping_add(1)
    }

    /// Expected packets never received, given the `duplicates` among those counted received
    /// (RFC 3550 counts a duplicate as received; it does not make up for a loss).
    fn never_received(&self, duplicates: u64) -> u64 {
        self.expected().saturating_sub(self.received.saturating_sub(duplicates))
    }
}

/// Receiver statistics for one RTP source, per RFC 3550 appendix A.
///
/// Feed every RTP packet of the source to [`handle_packet`](Self::handle_packet) and every
/// sender report to [`handle_sender_report`](Self::handle_sender_report); call
/// [`report_block`](Self::report_block) when sending a receiver report (it starts a new
/// interval for the fraction lost).
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    ssrc: Ssrc,
    clock_rate: u32,
    seq: Option<Sequence>,
    duplicates: u64,
    reordered: u64,
    /// What the numberings before the last restart lost (RFC 3550 A.1 forgets it).
    lost_before_restart: u64,
    /// `duplicates` when the current numbering began.
    duplicates_at_restart: u64,
    /// Arrival times are measured in media ticks from this instant (the first arrival).
    epoch: Option<Instant>,
    /// Relative transit time (arrival - timestamp, in ticks) of the previous packet.
    transit: Option<u32>,
    /// Interarrival jitter in ticks, scaled by 16 (RFC 3550 A.8, integer form).
    jitter16: u64,
    /// Middle 32 bits of the last sender report's NTP time, and when it arrived.
    last_sr: Option<(CompactNtp, Instant)>,
}

impl ReceiverStats {
    /// Statistics for source `ssrc`, whose media clock runs at `clock_rate` ticks per second.
    pub fn new(ssrc: Ssrc, clock_rate: u32) -> ReceiverStats {
        ReceiverStats {
            ssrc,
            clock_rate,
            seq: None,
            duplicates: 0,
            reordered: 0,
            lost_before_restart: 0,
            duplicates_at_restart: 0,
            epoch: None,
            transit: None,
            jitter16: 0,
            last_sr: None,
        }
    }

    /// Takes one RTP packet of this source that arrived at `arrival`.
    pub fn handle_packet(
        &mut self,
        arrival: Instant,
        sequence: u16,
        timestamp: RtpTime,
    ) -> Arrival {
        let verdict = self.update_sequence(sequence);
        match verdict {
            Arrival::Restarted(_) => {
                // A restarted sender has a new timestamp base: start the transit afresh.
                self.transit = None;
                self.update_jitter(arrival, timestamp);
            }
            Arrival::InOrder(_) | Arrival::Reordered(_) => self.update_jitter(arrival, timestamp),
            Arrival::Probation | Arrival::Jump | Arrival::Duplicate(_) => {}
        }
        verdict
    }

    /// Takes a sender report from this source that arrived at `arrival` (for LSR and DLSR).
    pub fn handle_sender_report(&mut self, arrival: Instant, ntp: NtpTime) {
        self.last_sr = Some((ntp.compact(), arrival));
    }

    /// RFC 3550 A.1 `update_seq`, with duplicate and reordering classification.
    fn update_sequence(&mut self, seq: u16) -> Arrival {
        let s = self.seq.get_or_insert_with(|| Sequence::probation(seq));
        let udelta = seq.wrapping_sub(s.max.wire());
        if s.probation > 0 {
            if udelta == 1 {
                s.probation -= 1;
                s.max = SeqNo(u64::from(seq));
                if s.probation == 0 {
                    *s = Sequence::valid(seq);
                    s.received += 1;
                    self.transit = None;
                    return Arrival::InOrder(s.max);
                }
            } else {
                s.probation = MIN_SEQUENTIAL - 1;
                s.max = SeqNo(u64::from(seq));
            }
            return Arrival::Probation;
        }
        if udelta < MAX_DROPOUT {
            s.received += 1;
            if udelta == 0 {
                self.duplicates += 1;
                return Arrival::Duplicate(s.max);
            }
            s.advance(SeqNo(s.max.0 + u64::from(udelta)));
            return Arrival::InOrder(s.max);
        }
        if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // 2^16 - MAX_MISORDER, as in RFC 3550 A.1.
            if s.bad_seq == Some(seq) {
                self.lost_before_restart +=
                    s.never_received(self.duplicates - self.duplicates_at_restart);
                self.duplicates_at_restart = self.duplicates;
                *s = Sequence::valid(seq);
                s.received += 1;
                return Arrival::Restarted(s.max);
            }
            s.bad_seq = Some(seq.wrapping_add(1));
            return Arrival::Jump;
        }
        // Within MAX_MISORDER below the highest: late or duplicated.
        s.received += 1;
        let ext = s.max.extend(seq);
        if s.is_marked(ext) {
            self.duplicates += 1;
            Arrival::Duplicate(ext)
        } else {
            s.mark(ext);
            self.reordered += 1;
            Arrival::Reordered(ext)
        }
    }

    /// RFC 3550 A.8: `J += (|D| - J) / 16`, in integers scaled by 16.
    fn update_jitter(&mut self, arrival: Instant, timestamp: RtpTime) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let nanos = arrival.saturating_duration_since(epoch).as_nanos();
        // Truncating to 32 bits wraps like an RTP timestamp; only differences matter.
        let arrival_ticks = (nanos * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival_ticks.wrapping_sub(timestamp.0);
        if let Some(previous) = self.transit {
            let d = u64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
            // Never underflows: (j + 8) >> 4 <= j for j >= 1, and is 0 for j == 0.
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// The source this is about.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Whether the source has passed probation (RFC 3550 A.1).
    pub fn is_valid(&self) -> bool {
        self.seq.as_ref().is_some_and(|s| s.probation == 0)
    }

    /// The highest sequence number received, extended (cycles count from 0); `None` on probation.
    pub fn highest(&self) -> Option<SeqNo> {
        self.seq.as_ref().filter(|s| s.probation == 0).map(|s| s.max)
    }

    /// Packets counted since the source became valid (or restarted), duplicates included.
    pub fn received(&self) -> u64 {
        self.valid_seq().map_or(0, |s| s.received)
    }

    /// Packets expected since the source became valid: highest - base + 1 (RFC 3550 A.3).
    pub fn expected(&self) -> u64 {
        self.valid_seq().map_or(0, Sequence::expected)
    }

    /// Expected minus received: negative when duplicates outnumber losses (RFC 3550 A.3).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received() as i64
    }

    /// Packets of this source never received, over every numbering it has had: unlike
    /// [`cumulative_lost`](Self::cumulative_lost), a restart keeps what was lost before it,
    /// and a duplicate does not make up for a loss.
    pub fn lost(&self) -> u64 {
        let current = self
            .valid_seq()
            .map_or(0, |s| s.never_received(self.duplicates - self.duplicates_at_restart));
        self.lost_before_restart + current
    }

    /// Packets received more than once (within the last 1024 sequence numbers).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after a higher sequence number and were not duplicates.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Interarrival jitter in media clock ticks (RFC 3550 A.8), rounded to nearest.
    pub fn jitter(&self) -> u32 {
        u32::try_from((self.jitter16 + 8) >> 4).unwrap_or(u32::MAX)
    }

    fn valid_seq(&self) -> Option<&Sequence> {
        self.seq.as_ref().filter(|s| s.probation == 0)
    }

    /// The report block for this source at time `now`, or `None` while on probation.
    ///
    /// This closes the reporting interval: the fraction lost covers the packets since the
    /// previous call (RFC 3550 A.3), and the next call starts from here.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let jitter = self.jitter();
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((ntp, at)) => (ntp, CompactNtp::from_duration(now.saturating_duration_since(at))),
            None => (CompactNtp(0), CompactNtp(0)),
        };
        let s = self.seq.as_mut().filter(|s| s.probation == 0)?;
        let expected = s.expected();
        let expected_interval = expected.wrapping_sub(s.expected_prior);
        let received_interval = s.received - s.received_prior;
        s.expected_prior = expected;
        s.received_prior = s.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // At most 255: lost_interval <= expected_interval.
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let lost = expected as i64 - s.received as i64;
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: clamp_lost(lost),
            highest_seq: SeqNo(s.max.0 & 0xffff_ffff),
            jitter,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// Clamps a cumulative loss to the 24-bit signed report-block field.
fn clamp_lost(lost: i64) -> i32 {
    lost.clamp(LOST_MIN, LOST_MAX) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    const RATE: u32 = 90_000;

    /// A receiver fed packets `(seq, timestamp, arrival offset)` from a fixed base instant.
    struct Feed {
        stats: ReceiverStats,
        base: Instant,
    }

    impl Feed {
        fn new() -> Feed {
            Feed { stats: ReceiverStats::new(Ssrc(7), RATE), base: Instant::now() }
        }

        fn packet(&mut self, seq: u16, ts: u32, at: Duration) -> Arrival {
            self.stats.handle_packet(self.base + at, seq, RtpTime(ts))
        }

        /// Packets of a 25 fps stream, one per frame, arriving exactly on time.
        fn steady(&mut self, seqs: impl IntoIterator<Item = u16>) {
            for (i, seq) in seqs.into_iter().enumerate() {
                self.packet(seq, i as u32 * 3600, Duration::from_millis(i as u64 * 40));
            }
        }
    }

    #[test]
    fn probation_needs_two_in_sequence() {
        let mut f = Feed::new();
        assert_eq!(f.packet(100, 0, Duration::ZERO), Arrival::Probation);
        assert!(!f.stats.is_valid());
        assert_eq!(f.stats.report_block(f.base), None);
        assert_eq!(f.packet(105, 0, Duration::ZERO), Arrival::Probation);
        assert_eq!(f.packet(106, 0, Duration::ZERO), Arrival::InOrder(SeqNo(106)));
        assert!(f.stats.is_valid());
        assert_eq!((f.stats.received(), f.stats.expected()), (1, 1));
        assert_eq!(f.packet(107, 0, Duration::ZERO), Arrival::InOrder(SeqNo(107)));
        assert_eq!(f.stats.highest(), Some(SeqNo(107)));
    }

    #[test]
    fn probation_across_the_wrap() {
        let mut f = Feed::new();
        assert_eq!(f.packet(65535, 0, Duration::ZERO), Arrival::Probation);
        assert_eq!(f.packet(0, 0, Duration::ZERO), Arrival::InOrder(SeqNo(0)));
        assert_eq!(f.packet(1, 0, Duration::ZERO), Arrival::InOrder(SeqNo(1)));
    }

    #[test]
    fn one_percent_loss() {
        let mut f = Feed::new();
        // 10 000 packets, every 100th (seq % 100 == 50) lost; seq 0 is spent on probation.
        f.steady((0..10_000u16).filter(|s| s % 100 != 50));
        let block = f.stats.report_block(f.base).unwrap();
        assert_eq!(f.stats.expected(), 9999);
        assert_eq!(f.stats.received(), 9899);
        assert_eq!(block.cumulative_lost, 100);
        assert_eq!(block.fraction_lost, 2); // 100 * 256 / 9999 = 2.56
        assert_eq!(block.highest_seq, SeqNo(9999));
        assert_eq!(block.jitter, 0);
        assert_eq!(block.ssrc, Ssrc(7));

        // The next interval: 1000 more with 50 lost: fraction 50 * 256 / 1000 = 12.8.
        for seq in 10_000u16..11_000 {
            if seq % 20 != 0 {
                f.packet(seq, 0, Duration::ZERO);
            }
        }
        let block = f.stats.report_block(f.base).unwrap();
        assert_eq!(block.fraction_lost, 12);
        assert_eq!(block.cumulative_lost, 150);
        // An empty interval reports no loss.
        assert_eq!(f.stats.report_block(f.base).unwrap().fraction_lost, 0);
    }

    #[test]
    fn duplicates_and_reordering() {
        let mut f = Feed::new();
        f.steady([1, 2, 3]);
        assert_eq!(f.packet(3, 0, Duration::ZERO), Arrival::Duplicate(SeqNo(3)));
        assert_eq!(f.packet(5, 0, Duration::ZERO), Arrival::InOrder(SeqNo(5)));
        assert_eq!(f.packet(4, 0, Duration::ZERO), Arrival::Reordered(SeqNo(4)));
        assert_eq!(f.packet(4, 0, Duration::ZERO), Arrival::Duplicate(SeqNo(4)));
        assert_eq!(f.packet(2, 0, Duration::ZERO), Arrival::Duplicate(SeqNo(2)));
        assert_eq!((f.stats.duplicates(), f.stats.reordered()), (3, 1));
        // Expected 2..=5 = 4, received 2,3,3,5,4,4,2 = 7: the RFC lets loss go negative.
        assert_eq!(f.stats.cumulative_lost(), -3);
        assert_eq!(f.stats.report_block(f.base).unwrap().cumulative_lost, -3);
    }

    #[test]
    fn a_gap_forgets_the_window() {
        let mut f = Feed::new();
        f.steady([1, 2, 3]);
        // 3 + 2048 has the same window slot as 3; it must not read as a duplicate.
        assert_eq!(f.packet(2051, 0, Duration::ZERO), Arrival::InOrder(SeqNo(2051)));
        assert_eq!(f.packet(2050, 0, Duration::ZERO), Arrival::Reordered(SeqNo(2050)));
        assert_eq!(f.stats.cumulative_lost(), 2051 - 2 + 1 - 4);
    }

    #[test]
    fn late_beyond_misorder_is_a_jump() {
        let mut f = Feed::new();
        f.steady(1..=300);
        assert_eq!(f.packet(150, 0, Duration::ZERO), Arrival::Jump);
        assert_eq!(f.stats.received(), 299);
        assert_eq!(f.packet(301, 0, Duration::ZERO), Arrival::InOrder(SeqNo(301)));
    }

    #[test]
    fn a_confirmed_jump_restarts() {
        let mut f = Feed::new();
        f.steady(1..=10);
        assert_eq!(f.packet(40_000, 0, Duration::ZERO), Arrival::Jump);
        assert_eq!(f.packet(40_000, 0, Duration::ZERO), Arrival::Jump, "bad_seq wants 40 001");
        assert_eq!(f.packet(40_001, 0, Duration::ZERO), Arrival::Restarted(SeqNo(40_001)));
        assert_eq!((f.stats.received(), f.stats.expected()), (1, 1));
        assert_eq!(f.packet(40_002, 0, Duration::ZERO), Arrival::InOrder(SeqNo(40_002)));
        assert_eq!(f.stats.cumulative_lost(), 0);
    }

    #[test]
    fn lost_keeps_what_a_numbering_lost_before_its_restart() {
        let mut f = Feed::new();
        // 1 to 10 without 5, and 7 twice: one lost (the duplicate makes up for nothing).
        f.steady((1..=10).filter(|&s| s != 5));
        assert_eq!(f.packet(7, 0, Duration::ZERO), Arrival::Duplicate(SeqNo(7)));
        assert_eq!((f.stats.cumulative_lost(), f.stats.lost()), (0, 1));
        f.packet(40_000, 0, Duration::ZERO);
        assert_eq!(f.packet(40_001, 0, Duration::ZERO), Arrival::Restarted(SeqNo(40_001)));
        assert_eq!(f.stats.lost(), 1, "the restart keeps it");
        f.packet(40_003, 0, Duration::ZERO);
        assert_eq!((f.stats.cumulative_lost(), f.stats.lost()), (1, 2), "RFC 3550 forgets");
    }

    #[test]
    fn constant_transit_has_no_jitter() {
        let mut f = Feed::new();
        for i in 0..500u32 {
            // 12.5 ms per packet at 90 kHz is 1125 ticks, with a fixed 3 ms network delay.
            let at = Duration::from_micros(u64::from(i) * 12_500 + 3_000);
            f.packet(i as u16, 1_000_000 + i * 1125, at);
        }
        assert_eq!(f.stats.jitter(), 0);
    }

    #[test]
    fn alternating_transit_converges_to_the_difference() {
        let mut f = Feed::new();
        let mut expected = 0.0f64;
        let mut previous: Option<f64> = None;
        for i in 0..400u32 {
            // Transit alternates between 0 and 10 ms (900 ticks).
            let extra = if i % 2 == 0 { 0 } else { 10 };
            let at = Duration::from_millis(u64::from(i) * 40 + extra);
            f.packet(i as u16, i * 3600, at);
            // The RFC's floating-point formula, over the packets the stats counted (from #1).
            if i >= 1 {
                let transit = extra as f64 * 90.0;
                if let Some(p) = previous {
                    expected += ((transit - p).abs() - expected) / 16.0;
                }
                previous = Some(transit);
            }
            assert!((f64::from(f.stats.jitter()) - expected).abs() <= 1.0, "packet {i}");
        }
        assert_eq!(f.stats.jitter(), 900);
    }

    #[test]
    fn jitter_after_one_step_is_a_sixteenth() {
        let mut f = Feed::new();
        f.packet(0, 0, Duration::ZERO);
        f.packet(1, 3600, Duration::from_millis(40));
        f.packet(2, 7200, Duration::from_millis(80 + 16)); // 16 ms late: 1440 ticks
        assert_eq!(f.stats.jitter(), 90);
    }

    #[test]
    fn report_carries_lsr_and_dlsr() {
        let mut f = Feed::new();
        f.steady([1, 2]);
        let ntp = NtpTime::new(0x1234_5678, 0x9abc_0000);
        f.stats.handle_sender_report(f.base, ntp);
        let block = f.stats.report_block(f.base + Duration::from_millis(1500)).unwrap();
        assert_eq!(block.last_sr, CompactNtp(0x5678_9abc));
        assert_eq!(block.delay_since_last_sr, CompactNtp(0x0001_8000));
    }

    #[test]
    fn lost_clamps_to_24_bits() {
        assert_eq!(clamp_lost(0x80_0000), 0x7f_ffff);
        assert_eq!(clamp_lost(-0x80_0001), -0x80_0000);
        assert_eq!(clamp_lost(-5), -5);
    }

    proptest! {
        #[test]
        fn wraparound_counts_cycles_without_false_loss(start in 60_000u16..=65_535, len in 10u32..20_000) {
            let mut f = Feed::new();
            f.steady((0..len).map(|i| start.wrapping_add(i as u16)));
            // The probation packet is not counted; extension starts at the second one (cycle 0).
            let highest = u64::from(start.wrapping_add(1)) + u64::from(len) - 2;
            prop_assert_eq!(f.stats.highest(), Some(SeqNo(highest)));
            prop_assert_eq!(f.stats.highest().unwrap().wire(), start.wrapping_add(len as u16 - 1));
            prop_assert_eq!(f.stats.cumulative_lost(), 0);
            prop_assert_eq!(f.stats.expected(), u64::from(len) - 1);
            let block = f.stats.report_block(f.base).unwrap();
            prop_assert_eq!(block.fraction_lost, 0);
            prop_assert_eq!(block.cumulative_lost, 0);
            prop_assert_eq!(block.jitter, 0);
        }

        #[test]
        fn loss_is_exact_across_the_wrap(start: u16, drops in proptest::collection::btree_set(2u32..5_000, 0..200)) {
            let mut f = Feed::new();
            f.steady((0..5_000u32).filter(|i| !drops.contains(i)).map(|i| start.wrapping_add(i as u16)));
            // Expected runs from the second packet to the last one received.
            let last = (0..5_000u32).rev().find(|i| !drops.contains(i)).unwrap();
            let lost = drops.iter().filter(|&&d| d < last).count() as i64;
            prop_assert_eq!(f.stats.cumulative_lost(), lost);
            prop_assert_eq!(f.stats.expected(), u64::from(last));
        }

        #[test]
        fn never_panics_on_any_sequence(seqs in proptest::collection::vec(any::<u16>(), 0..300)) {
            let mut f = Feed::new();
            for (i, s) in seqs.iter().enumerate() {
                f.packet(*s, i as u32 * 100, Duration::from_millis(i as u64));
                let _ = f.stats.report_block(f.base + Duration::from_millis(i as u64));
            }
        }
    }
}
