//! Readers' RTCP receiver reports, sans-IO: what each reader says it lost and how much jitter
//! it saw, per track, from the report blocks of its RRs (and SRs) parsed with
//! `manifold_rtp::rtcp`, and the round-trip time to it from their LSR and DLSR against when
//! the relay sent it that sender report ([`SentReports`]). Fed from the shard's RTCP server
//! port (UDP readers) and from interleaved odd channels (TCP readers); read by the metrics
//! snapshot.

use std::time::{Duration, Instant};

use manifold_rtp::ntp::CompactNtp;
use manifold_rtp::rtcp::{packets, Packet};

/// Sender reports remembered per reader and track: a receiver report names the latest one
/// its sender had (RFC 3550 §6.4.1), which may be a few behind the latest sent.
const REMEMBERED: usize = 4;

/// When the relay sent one reader the latest few sender reports of one track, by the
/// middle 32 bits of their NTP time (what a receiver report's LSR gives back). Per reader,
/// since a new reader gets the latest report when it joins, later than the others did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SentReports {
    sent: [Option<(CompactNtp, Instant)>; REMEMBERED],
    next: usize,
}

impl SentReports {
    /// The sender report of time `report` went to the reader at `now`.
    pub(crate) fn sent(&mut self, now: Instant, report: CompactNtp) {
        self.sent[self.next] = Some((report, now));
        self.next = (self.next + 1) % REMEMBERED;
    }

    /// When the report whose time was `lsr` was sent (the latest, if sent twice).
    fn when(&self, lsr: CompactNtp) -> Option<Instant> {
        self.sent.iter().flatten().filter(|(t, _)| *t == lsr).map(|(_, at)| *at).max()
    }
}

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
    /// Round-trip time from the latest report that named a sender report we sent.
    pub(crate) rtt: Option<Duration>,
    /// The longest such round-trip time.
    pub(crate) max_rtt: Option<Duration>,
}

/// Folds the report blocks of one RTCP compound packet into `track`'s feedback, with the
/// round-trip time of a block whose LSR names one of the sender reports in `sent` (RFC 3550
/// §6.4.1: arrival − when that report was sent − DLSR). Returns how many blocks it held;
/// malformed input counts what parsed before the error.
pub(crate) fn absorb(
    feedback: &mut TrackFeedback,
    compound: &[u8],
    now: Instant,
    sent: &SentReports,
) -> usize {
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
            let rtt =
                (block.last_sr.0 != 0).then(|| sent.when(block.last_sr)).flatten().and_then(|at| {
                    now.saturating_duration_since(at)
                        .checked_sub(block.delay_since_last_sr.to_duration())
                });
            if let Some(rtt) = rtt {
                feedback.rtt = Some(rtt);
                feedback.max_rtt = Some(feedback.max_rtt.map_or(rtt, |m| m.max(rtt)));
            }
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
    use manifold_rtp::ntp::NtpTime;
    use manifold_rtp::rtcp::{ReportBlock, SenderInfo, Writer};
    use manifold_rtp::{RtpTime, SeqNo, Ssrc};

    use super::*;

    fn rr(fraction_lost: u8, cumulative_lost: i32, jitter: u32) -> Vec<u8> {
        rr_after(fraction_lost, cumulative_lost, jitter, CompactNtp(0), CompactNtp(0))
    }

    fn rr_after(
        fraction_lost: u8,
        cumulative_lost: i32,
        jitter: u32,
        last_sr: CompactNtp,
        delay_since_last_sr: CompactNtp,
    ) -> Vec<u8> {
        let block = ReportBlock {
            ssrc: Ssrc(7),
            fraction_lost,
            cumulative_lost,
            highest_seq: SeqNo(100),
            jitter,
            last_sr,
            delay_since_last_sr,
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
        let none = SentReports::default();
        assert_eq!(absorb(&mut f, &rr(64, 10, 900), now, &none), 1);
        assert_eq!(f.fraction_lost, 0.25);
        assert_eq!(f.cumulative_lost, 10);
        assert_eq!(ticks_to_ms(f.jitter_ticks, 90_000), 10.0);
        assert_eq!(absorb(&mut f, &rr(0, 10, 90), now, &none), 1);
        assert_eq!(f.fraction_lost, 0.0);
        assert_eq!(f.max_fraction_lost, 0.25);
        assert_eq!(f.max_jitter_ticks, 900);
        assert_eq!(f.reports, 2);
        assert_eq!(f.rtt, None, "no LSR, no round trip");
    }

    /// A sender report whose NTP time's middle 32 bits are `lsr`.
    fn sr(lsr: u32) -> Vec<u8> {
        let info = SenderInfo {
            ntp: NtpTime((u64::from(lsr) << 16) | 0xabcd),
            rtp: RtpTime(0),
            packet_count: 0,
            octet_count: 0,
        };
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        w.sender_report(Ssrc(7), &info, &[]).unwrap();
        w.written().to_vec()
    }

    /// `compound` sent at `at`, as a reader's packet would note it (the packet reads its
    /// sender report's time).
    fn remember(sent: &mut SentReports, at: Instant, compound: &[u8]) {
        let packet = crate::plane::packet::Packet::rtcp(0, compound).unwrap();
        if let Some(report) = packet.sender_report() {
            sent.sent(at, report);
        }
    }

    #[test]
    fn a_report_naming_a_sender_report_we_sent_gives_the_round_trip() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut sent = SentReports::default();
        // Six reports a second apart: the first two are forgotten.
        for i in 0..6u32 {
            remember(&mut sent, t0 + Duration::from_secs(u64::from(i)), &sr(0x1000 + i));
        }
        remember(&mut sent, t0, &rr(0, 0, 0)); // not a sender report: not remembered
        let mut f = TrackFeedback::default();
        // The reader had report 4 (sent at 4 s), held it 250 ms (DLSR in 1/65536 s), and its
        // report arrived at 4.3 s: 50 ms there and back.
        let dlsr = CompactNtp(65_536 / 4);
        absorb(&mut f, &rr_after(0, 0, 0, CompactNtp(0x1004), dlsr), t0 + ms(4_300), &sent);
        assert_eq!(f.rtt, Some(ms(50)));
        // Report 2, 100 ms after it went, held 20 ms: 80 ms, the longest so far.
        let dlsr = CompactNtp(65_536 / 50);
        absorb(&mut f, &rr_after(0, 0, 0, CompactNtp(0x1002), dlsr), t0 + ms(2_100), &sent);
        assert!(f.rtt.unwrap().abs_diff(ms(80)) < ms(1), "{:?}", f.rtt);
        // A forgotten report, one never sent, or a DLSR longer than the time since: no new
        // figure, the last one stands.
        let last = f.rtt;
        for (lsr, at) in [(0x1000, ms(900)), (0x2000, ms(5_000)), (0x1005, ms(5_000))] {
            let dlsr = CompactNtp(65_536);
            absorb(&mut f, &rr_after(0, 0, 0, CompactNtp(lsr), dlsr), t0 + at, &sent);
        }
        assert_eq!(f.rtt, last);
        assert_eq!(f.max_rtt, last);
        assert_eq!(f.reports, 5);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut f = TrackFeedback::default();
        let none = SentReports::default();
        assert_eq!(absorb(&mut f, &[0xff; 40], Instant::now(), &none), 0);
        assert_eq!(absorb(&mut f, &[], Instant::now(), &none), 0);
        let mut cut = rr(1, 1, 1);
        cut.truncate(20);
        assert_eq!(absorb(&mut f, &cut, Instant::now(), &none), 0);
        assert_eq!(f, TrackFeedback::default());
    }
}
