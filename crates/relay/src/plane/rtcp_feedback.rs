//! Readers' RTCP receiver reports, sans-IO: what each reader says it lost and how much jitter
//! it saw, per track, from the report blocks of its RRs (and SRs) parsed with
//! `manifold_rtp::rtcp`. Fed from the shard's RTCP server port (UDP readers) and from
//! interleaved odd channels (TCP readers); read by the metrics snapshot.

use std::time::Instant;

use manifold_rtp::rtcp::{packets, Packet};

/// What one reader reported about one track.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TrackFeedback {
    /// Report blocks received.
    pub(crate) reports: u64,
    /// Fraction lost in the latest report (0.0–1.0).
    pub(crate) fraction_lost: f64,
    /// Highest fraction lost any report gave.
    pub(crate) max_fraction_lost: f64,
    /// Cumulative packets lost, as the latest report says.
    pub(crate) cumulative_lost: i64,
    /// Interarrival jitter of the latest report, in media clock ticks.
    pub(crate) jitter_ticks: u32,
    /// Highest jitter any report gave, in ticks.
    pub(crate) max_jitter_ticks: u32,
    /// When the latest report arrived.
    pub(crate) at: Option<Instant>,
}

/// Folds the report blocks of one RTCP compound packet into `track`'s feedback. Returns how
/// many blocks it held; malformed input counts what parsed before the error.
pub(crate) fn absorb(feedback: &mut TrackFeedback, compound: &[u8], now: Instant) -> usize {
    let mut blocks = 0;
    for packet in packets(compound) {
        let Ok(packet) = packet else { break };
        let reports = match packet {
            Packet::ReceiverReport(rr) => rr.report_blocks(),
            Packet::SenderReport(sr) => sr.report_blocks(),
            _ => continue,
        };
        for block in reports {
            let fraction = f64::from(block.fraction_lost) / 256.0;
            feedback.reports += 1;
            feedback.fraction_lost = fraction;
            feedback.max_fraction_lost = feedback.max_fraction_lost.max(fraction);
            feedback.cumulative_lost = i64::from(block.cumulative_lost);
            feedback.jitter_ticks = block.jitter;
            feedback.max_jitter_ticks = feedback.max_jitter_ticks.max(block.jitter);
            feedback.at = Some(now);
            blocks += 1;
        }
    }
    blocks
}

/// Jitter in milliseconds for a track of `clock_rate` Hz (0 when the rate is unknown).
pub(crate) fn ticks_to_ms(ticks: u32, clock_rate: u32) -> f64 {
    if clock_rate == 0 {
        return 0.0;
    }
    f64::from(ticks) * 1000.0 / f64::from(clock_rate)
}

#[cfg(test)]
mod tests {
    use manifold_rtp::ntp::CompactNtp;
    use manifold_rtp::rtcp::{ReportBlock, Writer};
    use manifold_rtp::{SeqNo, Ssrc};

    use super::*;

    fn rr(fraction_lost: u8, cumulative_lost: i32, jitter: u32) -> Vec<u8> {
        let block = ReportBlock {
            ssrc: Ssrc(7),
            fraction_lost,
            cumulative_lost,
            highest_seq: SeqNo(100),
            jitter,
            last_sr: CompactNtp(0),
            delay_since_last_sr: CompactNtp(0),
        };
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        w.receiver_report(Ssrc(1), &[block]).unwrap();
        w.written().to_vec()
    }

    #[test]
    fn receiver_reports_become_loss_and_jitter() {
        let mut f = TrackFeedback::default();
        let now = Instant::now();
        assert_eq!(absorb(&mut f, &rr(64, 10, 900), now), 1);
        assert_eq!(f.fraction_lost, 0.25);
        assert_eq!(f.cumulative_lost, 10);
        assert_eq!(ticks_to_ms(f.jitter_ticks, 90_000), 10.0);
        assert_eq!(absorb(&mut f, &rr(0, 10, 90), now), 1);
        assert_eq!(f.fraction_lost, 0.0);
        assert_eq!(f.max_fraction_lost, 0.25);
        assert_eq!(f.max_jitter_ticks, 900);
        assert_eq!(f.reports, 2);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut f = TrackFeedback::default();
        assert_eq!(absorb(&mut f, &[0xff; 40], Instant::now()), 0);
        assert_eq!(absorb(&mut f, &[], Instant::now()), 0);
        let mut cut = rr(1, 1, 1);
        cut.truncate(20);
        assert_eq!(absorb(&mut f, &cut, Instant::now()), 0);
        assert_eq!(f, TrackFeedback::default());
    }
}
