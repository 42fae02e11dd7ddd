//! The upstream's loss and jitter as the hub sees them, sans-IO: RFC 3550 sequence and jitter
//! statistics per track, on the upstream's own numbering (before continuity rewrites it). With
//! them an operator can tell loss on the way in (network, the relay's socket buffers, a full
//! queue to the owning shard) from loss on the way out, which only readers' reports show.
//!
//! A new SSRC or a new upstream starts new statistics, and what the old ones counted is kept;
//! so does a sequence restart (RFC 3550 A.1: two in order after a jump), inside
//! [`ReceiverStats::lost`]. So the count only grows.
//!
//! The same statistics make the report blocks of the receiver reports the relay sends to an
//! upstream it pulls from ([`UpstreamLoss::report_blocks`]), with the upstream's sender reports
//! taken in for their round-trip fields.

use std::cell::Cell;
use std::time::{Duration, Instant};

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rtcp::ReportBlock;
use manifold_rtp::stats::ReceiverStats;
use manifold_rtp::Ssrc;

/// Per track: the upstream source's statistics.
#[derive(Debug)]
pub(crate) struct UpstreamLoss {
    tracks: Vec<Track>,
    /// Losses counted by statistics since replaced (a new source or upstream).
    retired: u64,
    /// The highest count reported: a packet that arrives late, after its loss was reported,
    /// does not take the count back down (it is a counter).
    reported: Cell<u64>,
}

#[derive(Debug)]
struct Track {
    clock_rate: u32,
    stats: Option<ReceiverStats>,
}

impl UpstreamLoss {
    /// Statistics for tracks with these media clock rates.
    pub(crate) fn new(clock_rates: impl IntoIterator<Item = u32>) -> UpstreamLoss {
        let tracks =
            clock_rates.into_iter().map(|r| Track { clock_rate: r.max(1), stats: None }).collect();
        UpstreamLoss { tracks, retired: 0, reported: Cell::new(0) }
    }

    /// Takes one RTP packet of `track` that arrived at `now`.
    pub(crate) fn handle_packet(&mut self, now: Instant, track: usize, packet: &RtpPacket<'_>) {
        let Some(t) = self.tracks.get_mut(track) else { return };
        let ssrc = packet.ssrc();
        if let Some(old) = t.stats.take_if(|s| s.ssrc() != ssrc) {
            // A late packet of the source before would start over again here: it can only
            // make the count smaller (a new source is on probation), never larger.
            self.retired += old.lost();
        }
        let stats = t.stats.get_or_insert_with(|| ReceiverStats::new(ssrc, t.clock_rate));
        stats.handle_packet(now, packet.sequence(), packet.timestamp());
    }

    /// Takes a sender report of `track`'s source `ssrc` (RFC 3550: the next report block says
    /// when it came, for the sender's round-trip time). A report of another source is ignored.
    pub(crate) fn handle_sender_report(
        &mut self,
        now: Instant,
        track: usize,
        ssrc: Ssrc,
        ntp: NtpTime,
    ) {
        let stats = self.tracks.get_mut(track).and_then(|t| t.stats.as_mut());
        if let Some(stats) = stats.filter(|s| s.ssrc() == ssrc) {
            stats.handle_sender_report(now, ntp);
        }
    }

    /// Each track's report block at `now`, for a receiver report to the upstream (none for a
    /// track whose source is unknown or still on probation). Starts a new interval for each
    /// block's fraction lost.
    pub(crate) fn report_blocks(&mut self, now: Instant) -> Vec<(usize, ReportBlock)> {
        self.tracks
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| Some((i, t.stats.as_mut()?.report_block(now)?)))
            .collect()
    }

    /// The upstream changed (a reconnect, a new publisher): its numbering starts afresh.
    pub(crate) fn upstream_restarted(&mut self) {
        for t in &mut self.tracks {
            if let Some(old) = t.stats.take() {
                self.retired += old.lost();
            }
        }
    }

    /// Packets the upstream sent that never reached the hub, over every source so far.
    pub(crate) fn lost(&self) -> u64 {
        let now = self.retired
            + self
                .tracks
                .iter()
                .filter_map(|t| t.stats.as_ref())
                .map(ReceiverStats::lost)
                .sum::<u64>();
        let count = self.reported.get().max(now);
        self.reported.set(count);
        count
    }

    /// The highest interarrival jitter of the current sources' tracks (RFC 3550 A.8).
    pub(crate) fn jitter(&self) -> Duration {
        self.tracks
            .iter()
            .filter_map(|t| {
                let s = t.stats.as_ref().filter(|s| s.is_valid())?;
                Some(Duration::from_secs_f64(f64::from(s.jitter()) / f64::from(t.clock_rate)))
            })
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet: version 2, payload type 96, no CSRC or extension.
    fn rtp(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0; 20]);
        p
    }

    /// Feeds `seqs` of `ssrc` on track 0, 20 ms apart from `start` ms, timestamps at 90 kHz in
    /// step with the arrivals.
    fn feed(
        loss: &mut UpstreamLoss,
        t0: Instant,
        ssrc: u32,
        seqs: impl IntoIterator<Item = u16>,
        start: u64,
    ) -> u64 {
        let mut at = start;
        for seq in seqs {
            let bytes = rtp(ssrc, seq, (at * 90) as u32);
            let packet = RtpPacket::parse(&bytes).unwrap();
            loss.handle_packet(t0 + Duration::from_millis(at), 0, &packet);
            at += 20;
        }
        at
    }

    #[test]
    fn counts_the_gaps_of_the_upstreams_numbering() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000]);
        feed(&mut loss, t0, 7, (100..200).filter(|s| s % 10 != 3), 0);
        assert_eq!(loss.lost(), 10);
        assert_eq!(loss.jitter(), Duration::ZERO, "arrivals in step with the timestamps");
    }

    #[test]
    fn a_late_packet_does_not_take_a_reported_loss_back() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000]);
        let at = feed(&mut loss, t0, 7, (0..50).filter(|&s| s != 40), 0);
        assert_eq!(loss.lost(), 1);
        feed(&mut loss, t0, 7, [40], at);
        assert_eq!(loss.lost(), 1, "a counter never goes down");
        feed(&mut loss, t0, 7, 50..60, at + 20);
        feed(&mut loss, t0, 7, [58], at + 400);
        assert_eq!(loss.lost(), 1, "a duplicate is no loss of its own, and makes up for none");
    }

    #[test]
    fn losses_survive_a_new_source_a_restart_and_a_new_upstream() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000]);
        let at = feed(&mut loss, t0, 7, (0..30).filter(|&s| s != 10), 0);
        // A new SSRC: the jump between the two numberings is no loss.
        let at = feed(&mut loss, t0, 8, (5000..5030).filter(|&s| s != 5010), at);
        assert_eq!(loss.lost(), 2);
        // The same SSRC restarting its numbering (RFC 3550 A.1: two in order after a jump).
        let at = feed(&mut loss, t0, 8, (20_000..20_030).filter(|&s| s != 20_020), at);
        assert_eq!(loss.lost(), 3);
        loss.upstream_restarted();
        feed(&mut loss, t0, 8, (0..30).filter(|&s| s != 15), at);
        assert_eq!(loss.lost(), 4);
    }

    #[test]
    fn a_duplicate_before_a_restart_is_no_loss_twice() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000]);
        let at = feed(&mut loss, t0, 7, (0..30).filter(|&s| s != 20), 0);
        let at = feed(&mut loss, t0, 7, [10], at);
        assert_eq!(loss.lost(), 1, "a duplicate makes up for no loss");
        // The same SSRC restarts its numbering, and loses one more.
        feed(&mut loss, t0, 7, (20_000..20_030).filter(|&s| s != 20_020), at);
        assert_eq!(loss.lost(), 2);
    }

    #[test]
    fn report_blocks_say_what_was_lost_and_when_the_last_sender_report_came() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000, 48_000]);
        assert!(loss.report_blocks(t0).is_empty(), "nothing known yet");
        let at = feed(&mut loss, t0, 7, (0..100).filter(|s| s % 10 != 5), 0);
        let sr_at = t0 + Duration::from_millis(at);
        let ntp = NtpTime(0x0001_2345_6789_0000);
        loss.handle_sender_report(sr_at, 0, Ssrc(99), NtpTime(1));
        loss.handle_sender_report(sr_at, 0, Ssrc(7), ntp);
        let now = sr_at + Duration::from_millis(500);
        let blocks = loss.report_blocks(now);
        assert_eq!(blocks.len(), 1, "track 1 has had no packet: {blocks:?}");
        let (track, block) = blocks[0];
        assert_eq!(track, 0);
        assert_eq!(block.ssrc, Ssrc(7));
        assert_eq!(block.cumulative_lost, 10, "seq 5 to 95 in steps of ten");
        assert_eq!(block.last_sr, ntp.compact(), "the source's own report, not another's");
        assert_eq!(block.delay_since_last_sr.0, 0x8000, "half a second in 1/65536 s");
        // A new interval: nothing lost since the last block.
        let at = feed(&mut loss, t0, 7, 100..120, at);
        let blocks = loss.report_blocks(t0 + Duration::from_millis(at));
        assert_eq!(blocks[0].1.fraction_lost, 0);
        assert_eq!(blocks[0].1.cumulative_lost, 10);
    }

    #[test]
    fn jitter_is_the_worst_tracks() {
        let t0 = Instant::now();
        let mut loss = UpstreamLoss::new([90_000, 48_000]);
        // Track 0 arrives 0 or 10 ms late, alternately; track 1 on time.
        for i in 0..400u32 {
            let late = if i % 2 == 0 { 0 } else { 10 };
            let at = u64::from(i) * 20;
            let video = rtp(1, i as u16, i * 1800);
            let audio = rtp(2, i as u16, i * 960);
            let arrive = t0 + Duration::from_millis(at + late);
            loss.handle_packet(arrive, 0, &RtpPacket::parse(&video).unwrap());
            loss.handle_packet(
                t0 + Duration::from_millis(at),
                1,
                &RtpPacket::parse(&audio).unwrap(),
            );
        }
        let ms = loss.jitter().as_secs_f64() * 1000.0;
        assert!((9.0..=11.0).contains(&ms), "jitter {ms} ms: |D| is 10 ms every packet");
        assert_eq!(loss.lost(), 0);
    }

    proptest::proptest! {
        /// Whatever an upstream sends (sources, jumps, late packets, duplicates, restarts),
        /// the count never goes down.
        #[test]
        fn the_count_only_grows(
            steps in proptest::collection::vec((0u32..3, 0u16..400, 0u8..20), 1..300),
        ) {
            let t0 = Instant::now();
            let mut loss = UpstreamLoss::new([90_000]);
            let mut last = 0;
            for (i, (ssrc, seq, what)) in steps.into_iter().enumerate() {
                if what == 0 {
                    loss.upstream_restarted();
                } else {
                    let bytes = rtp(ssrc, seq.wrapping_mul(7), 0);
                    let packet = RtpPacket::parse(&bytes).unwrap();
                    loss.handle_packet(t0 + Duration::from_millis(i as u64), 0, &packet);
                }
                let now = loss.lost();
                proptest::prop_assert!(now >= last, "{now} after {last}");
                last = now;
            }
        }

        /// One source in order: the count is exactly the packets left out (after the first
        /// two, RFC 3550's probation).
        #[test]
        fn in_order_the_count_is_what_was_left_out(
            kept in proptest::collection::vec(proptest::bool::weighted(0.9), 2..500),
        ) {
            let t0 = Instant::now();
            let mut loss = UpstreamLoss::new([90_000]);
            let mut last_kept = 0;
            for (i, keep) in kept.iter().enumerate() {
                // The first two always come; what is left out after the last kept is unseen.
                if *keep || i < 2 {
                    let bytes = rtp(9, 60_000u16.wrapping_add(i as u16), 0);
                    let packet = RtpPacket::parse(&bytes).unwrap();
                    loss.handle_packet(t0, 0, &packet);
                    last_kept = i;
                }
            }
            let between = kept.get(2..last_kept).unwrap_or_default();
            let left_out = between.iter().filter(|k| !**k).count() as u64;
            proptest::prop_assert_eq!(loss.lost(), left_out);
        }
    }
}
