//! The continuity rewriter: maps an upstream's SSRC, sequence numbers and timestamps onto an
//! outgoing stream that stays continuous when the upstream changes (a publisher reconnects
//! with a new SSRC, a camera restarts its counters), so subscribers never see a jump back.
//!
//! Within one upstream the mapping is a fixed offset, so the upstream's loss and reordering
//! show through unchanged. When the upstream changes, the mapping is rebased: the next
//! outgoing sequence number is the highest sent + 1, and the outgoing timestamp advances from
//! the highest sent by the wall time since the previous packet.

use std::time::{Duration, Instant};

use crate::stats::{MAX_DROPOUT, MAX_MISORDER};
use crate::{RtpTime, SeqNo, Ssrc};

/// Why the mapping was rebased at a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The first packet the rewriter saw: the mapping starts as the identity.
    First,
    /// [`Rewriter::reset`] was called (the caller saw the upstream reconnect).
    Reset,
    /// The upstream SSRC differs from the current one.
    Ssrc,
    /// The sequence number jumped forward by more than the dropout limit, or back by more than
    /// the misorder limit.
    Sequence,
    /// The timestamp moved away from the wall clock by more than the timestamp-jump limit.
    Timestamp,
}

/// Where one packet goes in the outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rewritten {
    /// Outgoing sequence number, extended; the header carries [`SeqNo::wire`].
    pub seq: SeqNo,
    /// Outgoing timestamp.
    pub timestamp: RtpTime,
    /// Set when this packet rebased the mapping.
    pub change: Option<Change>,
}

/// The mapping from the current upstream to the outgoing stream.
#[derive(Debug, Clone)]
struct Upstream {
    ssrc: Ssrc,
    /// Highest upstream sequence number seen, extended from the first one.
    highest_seq: SeqNo,
    /// Outgoing = upstream + offset, both wrapping.
    seq_offset: u64,
    ts_offset: u32,
    /// Timestamp and arrival of the in-order packet last seen, to spot timestamp jumps.
    anchor_ts: RtpTime,
    anchor_now: Instant,
    /// Highest outgoing sequence number of the previous upstreams: nothing may map at or below it.
    floor: Option<SeqNo>,
}

/// What has gone out so far.
#[derive(Debug, Clone)]
struct Sent {
    highest_seq: SeqNo,
    highest_ts: RtpTime,
    last_now: Instant,
}

/// Rewrites one upstream after another onto one outgoing stream with a fixed SSRC.
///
/// Feed every upstream packet to [`rewrite`](Self::rewrite) in arrival order and write the
/// returned sequence number and timestamp (and [`ssrc`](Self::ssrc)) into its header. The
/// mapping is rebased, keeping the output continuous, when:
///
/// * the upstream SSRC differs from the current upstream's;
/// * the sequence number jumps forward by more than `max_dropout` (default [`MAX_DROPOUT`],
///   3000) or back by more than `max_misorder` (default [`MAX_MISORDER`], 100) from the highest
///   seen;
/// * the timestamp differs by more than `max_timestamp_jump` (default 10 s) from where the
///   wall clock says it should be, judged from the last in-order packet;
/// * or the caller called [`reset`](Self::reset), e.g. when the upstream reconnected (an
///   upstream that reconnects keeping its SSRC and counters is otherwise invisible).
///
/// A packet of a new upstream that arrives after, but belongs before, the packet that rebased
/// the mapping would collide with what was already sent; `rewrite` returns `None` for it and
/// it should be dropped.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: Ssrc,
    clock_rate: u32,
    max_dropout: u16,
    max_misorder: u16,
    max_timestamp_jump: Duration,
    upstream: Option<Upstream>,
    sent: Option<Sent>,
    reset_pending: bool,
}

impl Rewriter {
    /// A rewriter onto outgoing SSRC `ssrc`, for a media clock of `clock_rate` ticks per second.
    pub fn new(ssrc: Ssrc, clock_rate: u32) -> Rewriter {
        Rewriter {
            ssrc,
            clock_rate,
            max_dropout: MAX_DROPOUT,
            max_misorder: MAX_MISORDER,
            max_timestamp_jump: Duration::from_secs(10),
            upstream: None,
            sent: None,
            reset_pending: false,
        }
    }

    /// Sets the sequence jumps (forward, backward) beyond which the upstream counts as changed.
    pub fn with_sequence_limits(mut self, max_dropout: u16, max_misorder: u16) -> Rewriter {
        self.max_dropout = max_dropout;
        self.max_misorder = max_misorder;
        self
    }

    /// Sets how far timestamps may stray from the wall clock before the upstream counts as
    /// changed.
    pub fn with_max_timestamp_jump(mut self, max: Duration) -> Rewriter {
        self.max_timestamp_jump = max;
        self
    }

    /// The outgoing SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Makes the next packet rebase the mapping, whatever it looks like. Call it when the
    /// upstream reconnects.
    pub fn reset(&mut self) {
        self.reset_pending = true;
    }

    /// Maps one upstream packet that arrived at `now`; `None` means drop it (see the type docs).
    pub fn rewrite(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        sequence: u16,
        timestamp: RtpTime,
    ) -> Option<Rewritten> {
        let change = self.change(now, ssrc, sequence, timestamp);
        let up = match (change, self.upstream.as_mut()) {
            (None, Some(up)) => up,
            _ => self.rebase(now, ssrc, sequence, timestamp),
        };
        let in_seq = up.highest_seq.extend(sequence);
        let seq = SeqNo(in_seq.0.wrapping_add(up.seq_offset));
        if up.floor.is_some_and(|floor| seq <= floor) {
            return None;
        }
        if in_seq > up.highest_seq {
            up.highest_seq = in_seq;
            up.anchor_ts = timestamp;
            up.anchor_now = now;
        }
        let timestamp = timestamp.add(up.ts_offset);
        let sent = self.sent.get_or_insert(Sent {
            highest_seq: seq,
            highest_ts: timestamp,
            last_now: now,
        });
        if seq > sent.highest_seq {
            sent.highest_seq = seq;
        }
        if timestamp.since(sent.highest_ts) > 0 {
            sent.highest_ts = timestamp;
        }
        sent.last_now = now;
        Some(Rewritten { seq, timestamp, change })
    }

    /// Decides whether this packet starts a new mapping, and why.
    fn change(
        &self,
        now: Instant,
        ssrc: Ssrc,
        sequence: u16,
        timestamp: RtpTime,
    ) -> Option<Change> {
        let Some(up) = &self.upstream else { return Some(Change::First) };
        if self.reset_pending {
            return Some(Change::Reset);
        }
        if ssrc != up.ssrc {
            return Some(Change::Ssrc);
        }
        let step = up.highest_seq.extend(sequence).0.wrapping_sub(up.highest_seq.0) as i64;
        if step > i64::from(self.max_dropout) || step < -i64::from(self.max_misorder) {
            return Some(Change::Sequence);
        }
        // Where the timestamp should be if it follows the wall clock since the anchor.
        let elapsed = self.ticks(now.saturating_duration_since(up.anchor_now));
        let predicted = up.anchor_ts.add(elapsed as u32);
        let limit = self.ticks(self.max_timestamp_jump);
        if u64::from(timestamp.since(predicted).unsigned_abs()) > limit {
            return Some(Change::Timestamp);
        }
        None
    }

    /// Starts a new mapping at this packet and returns it.
    fn rebase(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        sequence: u16,
        timestamp: RtpTime,
    ) -> &mut Upstream {
        // Upstream numbering starts at cycle 1 so that reordered packets just before the first
        // one do not wrap below zero.
        let in_seq = SeqNo((1 << 16) | u64::from(sequence));
        let (out_seq, out_ts, floor) = match &self.sent {
            None => (in_seq, timestamp, None),
            Some(sent) => {
                // At least one tick: the new upstream's first frame is not the old one's last.
                let elapsed = self.ticks(now.saturating_duration_since(sent.last_now));
                let elapsed = elapsed.clamp(1, i32::MAX as u64) as u32;
                (
                    SeqNo(sent.highest_seq.0 + 1),
                    sent.highest_ts.add(elapsed),
                    Some(sent.highest_seq),
                )
            }
        };
        self.reset_pending = false;
        self.upstream.insert(Upstream {
            ssrc,
            highest_seq: in_seq,
            seq_offset: out_seq.0.wrapping_sub(in_seq.0),
            ts_offset: out_ts.0.wrapping_sub(timestamp.0),
            anchor_ts: timestamp,
            anchor_now: now,
            floor,
        })
    }

    /// A duration in media clock ticks (saturating).
    fn ticks(&self, d: Duration) -> u64 {
        let ticks = d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUT: Ssrc = Ssrc(0x1234);
    const A: Ssrc = Ssrc(0xaaaa);
    const B: Ssrc = Ssrc(0xbbbb);

    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn setup() -> (Rewriter, Clock) {
        (Rewriter::new(OUT, 90_000), Clock(Instant::now()))
    }

    #[test]
    fn first_upstream_passes_through() {
        let (mut r, c) = setup();
        let out = r.rewrite(c.at(0), A, 500, RtpTime(1000)).unwrap();
        assert_eq!(out.change, Some(Change::First));
        assert_eq!((out.seq.wire(), out.timestamp), (500, RtpTime(1000)));
        let out = r.rewrite(c.at(40), A, 501, RtpTime(4600)).unwrap();
        assert_eq!((out.seq.wire(), out.timestamp, out.change), (501, RtpTime(4600), None));
        assert_eq!(r.ssrc(), OUT);
    }

    #[test]
    fn loss_and_reordering_show_through() {
        let (mut r, c) = setup();
        let wires: Vec<u16> = [10u16, 11, 13, 12, 16, 15]
            .iter()
            .map(|&s| {
                r.rewrite(c.at(u64::from(s)), A, s, RtpTime(u32::from(s) * 90)).unwrap().seq.wire()
            })
            .collect();
        assert_eq!(wires, [10, 11, 13, 12, 16, 15]);
    }

    #[test]
    fn new_ssrc_continues_sequence_and_advances_by_wall_time() {
        let (mut r, c) = setup();
        r.rewrite(c.at(0), A, 100, RtpTime(0)).unwrap();
        r.rewrite(c.at(40), A, 101, RtpTime(3600)).unwrap();
        // The publisher reconnects 2 s later with new everything.
        let out = r.rewrite(c.at(2040), B, 7, RtpTime(999_999)).unwrap();
        assert_eq!(out.change, Some(Change::Ssrc));
        assert_eq!(out.seq.wire(), 102);
        assert_eq!(out.timestamp, RtpTime(3600 + 180_000));
        // Then a fixed offset again.
        let out = r.rewrite(c.at(2080), B, 8, RtpTime(999_999 + 3600)).unwrap();
        assert_eq!((out.seq.wire(), out.timestamp, out.change), (103, RtpTime(187_200), None));
    }

    #[test]
    fn reset_rebases_even_an_identical_looking_upstream() {
        let (mut r, c) = setup();
        r.rewrite(c.at(0), A, 100, RtpTime(0)).unwrap();
        r.reset();
        let out = r.rewrite(c.at(1000), A, 50, RtpTime(0)).unwrap();
        assert_eq!(
            (out.seq.wire(), out.timestamp, out.change),
            (101, RtpTime(90_000), Some(Change::Reset))
        );
        let out = r.rewrite(c.at(1040), A, 51, RtpTime(3600)).unwrap();
        assert_eq!(out.change, None, "reset applies once");
    }

    #[test]
    fn sequence_jumps_rebase() {
        let (mut r, c) = setup();
        r.rewrite(c.at(0), A, 100, RtpTime(0)).unwrap();
        let out = r.rewrite(c.at(40), A, 100 + MAX_DROPOUT + 1, RtpTime(3600)).unwrap();
        assert_eq!((out.seq.wire(), out.change), (101, Some(Change::Sequence)));
        assert_eq!(out.timestamp, RtpTime(3600));
        // Within the limits: a gap of MAX_DROPOUT shows through.
        let out = r.rewrite(c.at(80), A, 100 + 2 * MAX_DROPOUT + 1, RtpTime(7200)).unwrap();
        assert_eq!((out.seq.wire(), out.change), (101 + MAX_DROPOUT, None));
        // Back by more than MAX_MISORDER rebases too.
        let back = 100 + 2 * MAX_DROPOUT + 1 - MAX_MISORDER - 1;
        let out = r.rewrite(c.at(120), A, back, RtpTime(10_800)).unwrap();
        assert_eq!((out.seq.wire(), out.change), (102 + MAX_DROPOUT, Some(Change::Sequence)));
    }

    #[test]
    fn timestamp_jumps_rebase() {
        let (mut r, c) = setup();
        r.rewrite(c.at(0), A, 1, RtpTime(0)).unwrap();
        // An hour's worth of ticks in 40 ms: the upstream restarted its clock.
        let out = r.rewrite(c.at(40), A, 2, RtpTime(3600 * 90_000)).unwrap();
        assert_eq!(out.change, Some(Change::Timestamp));
        assert_eq!(out.timestamp, RtpTime(3600));
        // A 30 s pause whose timestamps follow the wall clock is no jump.
        let out = r.rewrite(c.at(30_040), A, 3, RtpTime(3600 * 90_000 + 30 * 90_000)).unwrap();
        assert_eq!((out.change, out.timestamp), (None, RtpTime(3600 + 30 * 90_000)));
    }

    #[test]
    fn stragglers_before_the_rebase_point_are_dropped() {
        let (mut r, c) = setup();
        r.rewrite(c.at(0), A, 100, RtpTime(0)).unwrap();
        assert_eq!(r.rewrite(c.at(500), B, 11, RtpTime(0)).unwrap().seq.wire(), 101);
        assert_eq!(r.rewrite(c.at(501), B, 10, RtpTime(0)), None);
        assert_eq!(r.rewrite(c.at(502), B, 12, RtpTime(0)).unwrap().seq.wire(), 102);
    }

    #[test]
    fn time_going_backwards_still_advances_one_tick() {
        let (mut r, c) = setup();
        r.rewrite(c.at(100), A, 1, RtpTime(500)).unwrap();
        let out = r.rewrite(c.at(0), B, 9, RtpTime(0)).unwrap();
        assert_eq!((out.seq.wire(), out.timestamp), (2, RtpTime(501)));
    }

    #[derive(Debug, Clone)]
    struct Segment {
        ssrc: u32,
        seq: u16,
        ts: u32,
        packets: u16,
        gap_ms: u64,
        reset: bool,
    }

    fn segment() -> impl Strategy<Value = Segment> {
        (any::<u32>(), any::<u16>(), any::<u32>(), 1u16..400, 0u64..100_000, any::<bool>())
            .prop_map(|(ssrc, seq, ts, packets, gap_ms, reset)| Segment {
                ssrc,
                seq,
                ts,
                packets,
                gap_ms,
                reset,
            })
    }

    proptest! {
        #[test]
        fn output_stays_continuous_across_upstreams(segments in proptest::collection::vec(segment(), 1..8)) {
            let (mut r, c) = setup();
            let mut last_at = 0u64;
            let mut prev: Option<Rewritten> = None;
            for seg in &segments {
                let start = last_at + seg.gap_ms;
                // A reconnect shows as a new SSRC (random here), and sometimes also as a reset.
                if seg.reset {
                    r.reset();
                }
                for i in 0..seg.packets {
                    // 3 packets per 40 ms frame, crossing the upstream's seq/timestamp wraps.
                    let ts = RtpTime(seg.ts).add(u32::from(i / 3) * 3600);
                    let at = start + u64::from(i / 3) * 40;
                    let out = r.rewrite(c.at(at), Ssrc(seg.ssrc), seg.seq.wrapping_add(i), ts).unwrap();
                    if let Some(p) = prev {
                        prop_assert_eq!(out.seq, SeqNo(p.seq.0 + 1));
                        prop_assert_eq!(out.seq.wire(), p.seq.wire().wrapping_add(1));
                        let step = out.timestamp.since(p.timestamp);
                        if i == 0 {
                            prop_assert!(out.change.is_some());
                            // Advanced by the wall time since the last packet, at least a tick.
                            prop_assert_eq!(step as u64, (seg.gap_ms * 90).max(1));
                        } else {
                            prop_assert_eq!(out.change, None);
                            prop_assert_eq!(step, if i % 3 == 0 { 3600 } else { 0 });
                        }
                    }
                    prev = Some(out);
                    last_at = at;
                }
            }
        }

        #[test]
        fn steady_upstream_is_a_fixed_offset(start_seq: u16, start_ts: u32, steps in proptest::collection::vec((-50i32..60, 0u32..10_000), 1..500)) {
            let (mut r, c) = setup();
            let first = r.rewrite(c.at(0), A, start_seq, RtpTime(start_ts)).unwrap();
            let (mut seq, mut ts) = (i64::from(start_seq), start_ts);
            let mut highest = seq;
            for (i, (dseq, dts)) in steps.into_iter().enumerate() {
                // Reordering within MAX_MISORDER of the highest, loss within MAX_DROPOUT.
                seq = (seq + i64::from(dseq)).max(highest - 90);
                highest = highest.max(seq);
                ts = ts.wrapping_add(dts);
                let at = c.at(u64::from(ts.wrapping_sub(start_ts)) / 90);
                let out = r.rewrite(at, A, seq as u16, RtpTime(ts)).unwrap();
                prop_assert_eq!(out.change, None, "step {}", i);
                prop_assert_eq!(out.seq.wire(), first.seq.wire().wrapping_add((seq - i64::from(start_seq)) as u16));
                prop_assert_eq!(out.timestamp, RtpTime(ts));
            }
        }
    }
}
