//! Receiver-side accounting of one track, sans-IO: every RTP packet comes in with its arrival
//! time (monotonic, and NTP for end-to-end latency), and the track's loss, duplicates,
//! reordering, jitter, gaps and latencies go into a [`Metrics`].
//!
//! Loss, duplicates and reordering are counted on the synthetic source's 64-bit packet counter
//! (header extension) when packets carry it, since a relay may rewrite RTP sequence numbers;
//! otherwise on the RTP sequence number through RFC 3550 [`ReceiverStats`]. Jitter always comes
//! from [`ReceiverStats`] (RTP timestamps against arrival times).
//!
//! A new SSRC mid-session (a server that restarted its source) is counted (`ssrc_changes`) and
//! starts new sequence statistics: the old source's counts are kept, and the jump between the
//! two sources' sequence numbers is never taken for loss. The first sequence number the server
//! announced in RTP-Info makes packets missing before the first one received count as lost.

use std::time::{Duration, Instant};

use manifold_rtp::codec::Codec;
use manifold_rtp::ntp::{NtpTime, SrMapping};
use manifold_rtp::packet::RtpPacket;
use manifold_rtp::rtcp::{Packet as RtcpPacket, ReportBlock};
use manifold_rtp::stats::{ReceiverStats, MAX_DROPOUT, MAX_MISORDER};
use manifold_rtp::track::PayloadTypes;
use manifold_rtp::{RtpTime, Ssrc};
use manifold_synth::{ExtensionIds, Stamps};

use crate::metrics::{Metric, Metrics};

/// Counter values remembered below the highest, for duplicate detection.
const WINDOW: u64 = 4096;

/// A packet counter this far from the highest seen, either way, is a new source's (a
/// republished stream: `manifold source` starts its counter at a random multiple of 2^30),
/// never a loss run or a late duplicate: 2^28 packets are 7 hours at 10,000 a second.
const COUNTER_RESTART: u64 = 1 << 28;

/// How long a track's media may come without a sender report before a session counts as
/// having none (`sessions.no_sender_report`): RFC 3550's 5 s minimum interval randomised up
/// to 7.5 s, and servers that send one every 10 s, with room to spare.
pub const SENDER_REPORT_WINDOW: Duration = Duration::from_secs(15);

/// Loss, duplicate and reordering accounting on the packet-counter extension.
#[derive(Debug, Clone)]
struct CounterTrack {
    base: u64,
    highest: u64,
    unique: u64,
    duplicates: u64,
    reordered: u64,
    seen: Vec<u64>,
}

impl CounterTrack {
    fn new(first: u64) -> CounterTrack {
        let mut t = CounterTrack {
            base: first,
            highest: first,
            unique: 1,
            duplicates: 0,
            reordered: 0,
            seen: vec![0; (WINDOW / 64) as usize],
        };
        t.mark(first);
        t
    }

    fn slot(c: u64) -> (usize, u64) {
        let i = c % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn mark(&mut self, c: u64) {
        let (w, m) = CounterTrack::slot(c);
        if let Some(word) = self.seen.get_mut(w) {
            *word |= m;
        }
    }

    fn is_marked(&self, c: u64) -> bool {
        let (w, m) = CounterTrack::slot(c);
        self.seen.get(w).is_some_and(|word| word & m != 0)
    }

    fn clear(&mut self, c: u64) {
        let (w, m) = CounterTrack::slot(c);
        if let Some(word) = self.seen.get_mut(w) {
            *word &= !m;
        }
    }

    fn handle(&mut self, c: u64) {
        if c > self.highest {
            let step = c - self.highest;
            if step >= WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for k in 1..=step {
                    self.clear(self.highest + k);
                }
            }
            self.highest = c;
            self.mark(c);
            self.unique += 1;
        } else if c < self.base {
            // Arrived late, before the first one we saw: it extends the expected range.
            self.base = c;
            self.unique += 1;
            self.reordered += 1;
        } else if self.highest - c < WINDOW && self.is_marked(c) {
            self.duplicates += 1;
        } else {
            self.mark(c);
            self.unique += 1;
            self.reordered += 1;
        }
    }

    fn lost(&self) -> u64 {
        (self.highest - self.base + 1).saturating_sub(self.unique)
    }

    /// Whether counter `c` belongs to another source than the one counted so far.
    fn is_another_source(&self, c: u64) -> bool {
        c.abs_diff(self.highest) >= COUNTER_RESTART
    }
}

/// One track's receiver: feed it every RTP packet with [`handle_packet`](Self::handle_packet),
/// then call [`finish`](Self::finish) once at the end of the session.
#[derive(Debug, Clone)]
pub struct TrackReceiver {
    clock_rate: u32,
    codec: Option<Codec>,
    /// The payload types the SDP gave the track; packets of others are dropped, as players do.
    payload_types: PayloadTypes,
    ids: ExtensionIds,
    /// The current source's sequence statistics.
    stats: Option<ReceiverStats>,
    /// The source before the last SSRC change, kept for its late packets.
    previous: Option<ReceiverStats>,
    /// Loss, duplicates and reordering of sources no longer current.
    retired: SequenceTotals,
    ssrc_changes: u64,
    /// `seq` of the track's RTP-Info entry: the first packet the server will send.
    announced_seq: Option<u16>,
    /// The lowest sequence number of the first source: packets between `announced_seq` and it
    /// were sent and never arrived. (Packets may come before PLAY's answer tells the
    /// announcement, so it is compared at the end.)
    first_source_lowest: Option<u16>,
    /// The session's media deadline passed with nothing from this track.
    deadline_missed: bool,
    counter: Option<CounterTrack>,
    /// Loss, duplicates and reordering of the counters of sources no longer current.
    counter_retired: SequenceTotals,
    last_arrival: Option<Instant>,
    first_packet: Option<Instant>,
    first_keyframe: Option<Instant>,
    longest_gap: Duration,
    packets: u64,
    /// RTCP sender reports received about the track.
    sender_reports: u64,
    /// The latest packet with a capture-time stamp: its source, RTP time and capture time.
    last_stamped: Option<(Ssrc, RtpTime, NtpTime)>,
    finished: bool,
    /// Wall time PLAY was sent: packets captured earlier are replayed history.
    play_sent: Option<NtpTime>,
}

impl TrackReceiver {
    /// A receiver for a track with this media clock rate, codec (for keyframe detection) and
    /// stamp extension ids.
    pub fn new(clock_rate: u32, codec: Option<Codec>, ids: ExtensionIds) -> TrackReceiver {
        TrackReceiver {
            clock_rate: clock_rate.max(1),
            codec,
            payload_types: PayloadTypes::ANY,
            ids,
            stats: None,
            previous: None,
            retired: SequenceTotals::default(),
            ssrc_changes: 0,
            announced_seq: None,
            first_source_lowest: None,
            deadline_missed: false,
            counter: None,
            counter_retired: SequenceTotals::default(),
            last_arrival: None,
            first_packet: None,
            first_keyframe: None,
            longest_gap: Duration::ZERO,
            packets: 0,
            sender_reports: 0,
            last_stamped: None,
            finished: false,
            play_sent: None,
        }
    }

    /// Takes only packets of these payload types (by default any): players drop the others
    /// (ffmpeg, live555 and GStreamer alike), so they are counted as `wrong_payload_type`
    /// and are not media.
    pub fn with_payload_types(mut self, payload_types: PayloadTypes) -> TrackReceiver {
        self.payload_types = payload_types;
        self
    }

    /// Records the wall time PLAY was sent. End-to-end latency of packets captured before it
    /// (a server's GOP cache replaying the latest keyframe) goes to `e2e_cached`, not `e2e`.
    pub fn play_sent(&mut self, at: NtpTime) {
        self.play_sent.get_or_insert(at);
    }

    /// Takes one datagram (or interleaved payload) that arrived at `arrival` (monotonic) and
    /// `arrival_ntp` (wall clock, for end-to-end latency against the capture-time stamp).
    /// Returns `false` when it is not an RTP packet (counted as malformed) or not of the
    /// track's payload types (counted as `wrong_payload_type`).
    pub fn handle_packet(
        &mut self,
        arrival: Instant,
        arrival_ntp: NtpTime,
        datagram: &[u8],
        metrics: &mut Metrics,
    ) -> bool {
        let Ok(packet) = RtpPacket::parse(datagram) else {
            metrics.counts.malformed += 1;
            return false;
        };
        if !self.payload_types.contains(packet.payload_type()) {
            metrics.counts.wrong_payload_type += 1;
            return false;
        }
        metrics.counts.packets += 1;
        metrics.counts.bytes += datagram.len() as u64;
        self.packets += 1;
        self.first_packet.get_or_insert(arrival);
        if let Some(last) = self.last_arrival {
            let gap = arrival.saturating_duration_since(last);
            self.longest_gap = self.longest_gap.max(gap);
            metrics.record(Metric::Gap, gap);
        }
        self.last_arrival = Some(self.last_arrival.map_or(arrival, |l| l.max(arrival)));

        if self.first_keyframe.is_none() {
            if let Some(codec) = self.codec {
                if codec.starts_keyframe(packet.payload()).unwrap_or(false) {
                    self.first_keyframe = Some(arrival);
                }
            }
        }

        let stamps = Stamps::from_packet(&packet, self.ids);
        if let Some(capture) = stamps.capture_time {
            // Q32.32 seconds; a capture time after the arrival (clock step) records as 0.
            let delta = arrival_ntp.0.saturating_sub(capture.0);
            let us = (u128::from(delta) * 1_000_000) >> 32;
            let live = self.play_sent.is_none_or(|play| capture.0 >= play.0);
            let metric = if live { Metric::E2e } else { Metric::E2eCached };
            metrics.record_us(metric, u64::try_from(us).unwrap_or(u64::MAX));
            self.last_stamped = Some((packet.ssrc(), packet.timestamp(), capture));
        }
        let stats = self.stats_for(packet.ssrc(), metrics);
        stats.handle_packet(arrival, packet.sequence(), packet.timestamp());
        if self.ssrc_changes == 0 {
            let seq = packet.sequence();
            let lowest = self.first_source_lowest.get_or_insert(seq);
            if lowest.wrapping_sub(seq) < MAX_MISORDER {
                *lowest = seq;
            }
        }
        if let Some(c) = stamps.counter {
            metrics.counts.counted_by_counter += 1;
            match &mut self.counter {
                Some(t) if t.is_another_source(c) => {
                    // Restarted behind a relay that kept the stream going: the new source's
                    // counters are its own, not duplicates of the old one's.
                    self.counter_retired.add_counter(t);
                    *t = CounterTrack::new(c);
                }
                Some(t) => t.handle(c),
                None => self.counter = Some(CounterTrack::new(c)),
            }
        }
        true
    }

    /// Takes one RTCP compound packet from the server's RTCP port or channel of this track,
    /// arrived at `arrival`. Its sender reports are counted, and each goes to the statistics
    /// of the source it describes, so that the next receiver report gives LSR and DLSR as
    /// players' do (and the server can tell its round-trip time). Returns `false` when it
    /// does not parse as RTCP (counted as malformed).
    pub fn handle_rtcp(
        &mut self,
        arrival: Instant,
        compound: &[u8],
        metrics: &mut Metrics,
    ) -> bool {
        for packet in manifold_rtp::rtcp::packets(compound) {
            match packet {
                Err(_) => {
                    metrics.counts.malformed += 1;
                    return false;
                }
                Ok(RtcpPacket::SenderReport(sr)) => {
                    self.sender_reports += 1;
                    metrics.counts.sender_reports += 1;
                    let info = sr.sender_info();
                    // A report about a source not seen yet (it came before the media) is
                    // counted, and the next one will be of use.
                    for s in self.stats.iter_mut().chain(self.previous.iter_mut()) {
                        if s.ssrc() == sr.ssrc() {
                            s.handle_sender_report(arrival, info.ntp);
                        }
                    }
                    if let Some((_, rtp, capture)) =
                        self.last_stamped.filter(|(ssrc, ..)| *ssrc == sr.ssrc())
                    {
                        // Where the report puts the packet on the wall clock, against when
                        // the source says it was captured (Q32.32 seconds, either side).
                        let placed = SrMapping::from_sender_info(&info, self.clock_rate);
                        let apart = placed.rtp_to_ntp(rtp).0.wrapping_sub(capture.0) as i64;
                        let us = (u128::from(apart.unsigned_abs()) * 1_000_000) >> 32;
                        metrics.record_us(Metric::SrOffset, u64::try_from(us).unwrap_or(u64::MAX));
                    }
                }
                Ok(_) => {}
            }
        }
        true
    }

    /// RTCP sender reports received about the track.
    pub fn sender_reports(&self) -> u64 {
        self.sender_reports
    }

    /// Whether media came for [`SENDER_REPORT_WINDOW`] or longer without one sender report.
    pub fn lacks_sender_reports(&self) -> bool {
        let span = match (self.first_packet, self.last_arrival) {
            (Some(first), Some(last)) => last.saturating_duration_since(first),
            _ => Duration::ZERO,
        };
        self.sender_reports == 0 && span >= SENDER_REPORT_WINDOW
    }

    /// The statistics of source `ssrc`: the current one, the one before it (a late packet), or
    /// new ones when the source changed.
    fn stats_for(&mut self, ssrc: Ssrc, metrics: &mut Metrics) -> &mut ReceiverStats {
        let clock_rate = self.clock_rate;
        let changed = self.stats.as_ref().is_some_and(|c| c.ssrc() != ssrc);
        let late = changed && self.previous.as_ref().is_some_and(|p| p.ssrc() == ssrc);
        let slot = if late {
            // A late packet of the source before: its own statistics take it.
            &mut self.previous
        } else {
            if changed {
                metrics.counts.ssrc_changes += 1;
                self.ssrc_changes += 1;
                if let Some(old) = self.previous.take() {
                    self.retired.retire(&old, clock_rate, metrics);
                }
                self.previous = self.stats.take();
            }
            &mut self.stats
        };
        slot.get_or_insert_with(|| ReceiverStats::new(ssrc, clock_rate))
    }

    /// The `seq` the server announced in RTP-Info for this track: the first packet it sends.
    pub fn rtp_info(&mut self, seq: u16) {
        self.announced_seq.get_or_insert(seq);
    }

    /// The session's media deadline passed: with nothing received, the packet RTP-Info
    /// announced (the one loss that is known) counts as lost.
    pub fn deadline_missed(&mut self) {
        self.deadline_missed = true;
    }

    /// Times the SSRC changed.
    pub fn ssrc_changes(&self) -> u64 {
        self.ssrc_changes
    }

    /// Packets RTP-Info says were sent before the first one received (or the announced one,
    /// when nothing came by the media deadline).
    fn lost_before_first(&self) -> u64 {
        let Some(announced) = self.announced_seq else { return 0 };
        match self.first_source_lowest {
            // Farther than a dropout ahead is not a loss but a server that numbers otherwise.
            Some(lowest) => Some(lowest.wrapping_sub(announced))
                .filter(|ahead| *ahead < MAX_DROPOUT)
                .map_or(0, u64::from),
            None => u64::from(self.deadline_missed),
        }
    }

    /// When the latest packet arrived.
    pub fn last_packet(&self) -> Option<Instant> {
        self.last_arrival
    }

    /// When the first packet arrived.
    pub fn first_packet(&self) -> Option<Instant> {
        self.first_packet
    }

    /// Whether keyframes of this track's codec can be seen (H.264, H.265).
    pub fn sees_keyframes(&self) -> bool {
        self.codec.is_some()
    }

    /// When the first packet starting a keyframe arrived.
    pub fn first_keyframe(&self) -> Option<Instant> {
        self.first_keyframe
    }

    /// The longest time between two packets so far.
    pub fn longest_gap(&self) -> Duration {
        self.longest_gap
    }

    /// Packets received.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The sequence totals of every source so far: retired, previous and current.
    fn sequence_totals(&self) -> SequenceTotals {
        let mut t = self.retired;
        for s in self.previous.iter().chain(&self.stats) {
            t.add(s);
        }
        t
    }

    /// Lost packets so far (counter-based when the stamps are there), with those RTP-Info
    /// says were sent before the first one received.
    pub fn lost(&self) -> u64 {
        let after_first = match &self.counter {
            Some(c) => c.lost() + self.counter_retired.lost,
            None => self.sequence_totals().lost,
        };
        after_first + self.lost_before_first()
    }

    /// Duplicates so far.
    pub fn duplicates(&self) -> u64 {
        match &self.counter {
            Some(c) => c.duplicates + self.counter_retired.duplicates,
            None => self.sequence_totals().duplicates,
        }
    }

    /// Reordered packets so far.
    pub fn reordered(&self) -> u64 {
        match &self.counter {
            Some(c) => c.reordered + self.counter_retired.reordered,
            None => self.sequence_totals().reordered,
        }
    }

    /// RFC 3550 interarrival jitter so far.
    pub fn jitter(&self) -> Duration {
        self.stats.as_ref().map_or(Duration::ZERO, |s| jitter_of(s, self.clock_rate))
    }

    /// The RFC 3550 report block about the track's current source at `now`, for a receiver
    /// report: fraction lost since the previous call, cumulative lost, extended highest
    /// sequence number and interarrival jitter. `None` before a source has passed probation.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        self.stats.as_mut().and_then(|s| s.report_block(now))
    }

    /// Adds the track's loss, duplicates, reordering and jitter to `metrics` (once; later
    /// calls do nothing).
    pub fn finish(&mut self, metrics: &mut Metrics) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        metrics.counts.lost += self.lost();
        metrics.counts.duplicates += self.duplicates();
        metrics.counts.reordered += self.reordered();
        // One jitter per source: the one before the last SSRC change, and the current one.
        for s in self.previous.iter().chain(&self.stats).filter(|s| s.is_valid()) {
            metrics.record(Metric::Jitter, jitter_of(s, self.clock_rate));
        }
    }
}

/// A source's RFC 3550 interarrival jitter as a duration.
fn jitter_of(s: &ReceiverStats, clock_rate: u32) -> Duration {
    Duration::from_secs_f64(f64::from(s.jitter()) / f64::from(clock_rate.max(1)))
}

/// Sequence-number loss, duplicates and reordering summed over sources.
#[derive(Debug, Clone, Copy, Default)]
struct SequenceTotals {
    lost: u64,
    duplicates: u64,
    reordered: u64,
}

impl SequenceTotals {
    fn add(&mut self, s: &ReceiverStats) {
        // Not RFC 3550's cumulative lost: a duplicate does not make up for a loss, and a
        // sequence restart does not forget one.
        self.lost += s.lost();
        self.duplicates += s.duplicates();
        self.reordered += s.reordered();
    }

    fn add_counter(&mut self, c: &CounterTrack) {
        self.lost += c.lost();
        self.duplicates += c.duplicates;
        self.reordered += c.reordered;
    }

    /// Adds a source that will not come back, and records its jitter.
    fn retire(&mut self, s: &ReceiverStats, clock_rate: u32, metrics: &mut Metrics) {
        self.add(s);
        if s.is_valid() {
            metrics.record(Metric::Jitter, jitter_of(s, clock_rate));
        }
    }
}

#[cfg(test)]
mod tests {
    use manifold_rtp::packet::RtpBuilder;
    use manifold_synth::{StreamConfig, SyntheticStream};

    use super::*;

    fn packet(seq: u16, timestamp: u32) -> Vec<u8> {
        let mut buf = Vec::new();
        let written = RtpBuilder::new(96, seq, RtpTime(timestamp), Ssrc(0x1234))
            .payload(&[0u8; 20])
            .write_to_vec(&mut buf);
        assert!(written.is_ok());
        buf
    }

    /// A sender report of source 0x1234 at wall time `ntp`.
    fn sender_report(ntp: NtpTime) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let mut w = manifold_rtp::rtcp::Writer::new(&mut buf);
        let info = manifold_rtp::rtcp::SenderInfo {
            ntp,
            rtp: RtpTime(0),
            packet_count: 0,
            octet_count: 0,
        };
        assert!(w.sender_report(Ssrc(0x1234), &info, &[]).is_ok());
        w.written().to_vec()
    }

    #[test]
    fn a_sender_report_gives_the_next_report_block_its_lsr_and_dlsr() {
        let t0 = Instant::now();
        let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
        let mut m = Metrics::new();
        for seq in 0u16..10 {
            rx.handle_packet(t0, ntp, &packet(seq, 900 * u32::from(seq)), &mut m);
        }
        let before = rx.report_block(t0).unwrap();
        assert_eq!((before.last_sr.0, before.delay_since_last_sr.0), (0, 0), "no SR yet");
        let sr_ntp = NtpTime::from_unix(Duration::from_millis(1_700_000_000_250));
        assert!(rx.handle_rtcp(t0 + Duration::from_secs(1), &sender_report(sr_ntp), &mut m));
        assert_eq!((rx.sender_reports(), m.counts.sender_reports), (1, 1));
        // Reported 1.5 s after it arrived: DLSR is 1.5 s in 1/65536 s units.
        let block = rx.report_block(t0 + Duration::from_millis(2_500)).unwrap();
        assert_eq!(block.last_sr, sr_ntp.compact());
        assert_eq!(block.delay_since_last_sr.0, 3 * 65_536 / 2);
    }

    #[test]
    fn a_sender_report_is_held_to_the_capture_times_of_its_source() {
        // The synthetic stream's packets, stamped with their frame's capture time.
        let config = StreamConfig::default();
        let ssrc = config.ssrc;
        let mut stream = SyntheticStream::new(config).unwrap();
        let t0 = Instant::now();
        let capture = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        let (mut rx, mut m) =
            (TrackReceiver::new(90_000, None, ExtensionIds::default()), Metrics::new());
        let mut buf = Vec::new();
        let mut rtp = None;
        while let Some(info) = stream.poll_packet(Duration::ZERO, capture, &mut buf) {
            rx.handle_packet(t0, capture, &buf[..info.len], &mut m);
            rtp = Some(info.rtp_time);
        }
        let rtp = rtp.unwrap();
        let report = |ssrc: Ssrc, rtp: RtpTime| {
            let mut out = [0u8; 64];
            let mut w = manifold_rtp::rtcp::Writer::new(&mut out);
            let info = manifold_rtp::rtcp::SenderInfo {
                ntp: capture,
                rtp,
                packet_count: 0,
                octet_count: 0,
            };
            w.sender_report(ssrc, &info, &[]).unwrap();
            w.written().to_vec()
        };
        // Mapping the frame to its capture time: no offset. Mapping a time 100 ms (9,000
        // ticks) later to it, or earlier: 100 ms either way. Another source's: not judged.
        rx.handle_rtcp(t0, &report(ssrc, rtp), &mut m);
        rx.handle_rtcp(t0, &report(ssrc, RtpTime(rtp.0.wrapping_add(9_000))), &mut m);
        rx.handle_rtcp(t0, &report(ssrc, RtpTime(rtp.0.wrapping_sub(9_000))), &mut m);
        rx.handle_rtcp(t0, &report(Ssrc(ssrc.0 ^ 1), rtp), &mut m);
        let h = m.histogram(Metric::SrOffset);
        assert_eq!(h.len(), 3);
        assert_eq!(h.min(), 0);
        assert!(h.equivalent(h.max(), 100_000), "max {} us", h.max());
        assert!(h.equivalent(h.value_at_quantile(0.5), 100_000));
        assert_eq!(m.counts.sender_reports, 4);
    }

    #[test]
    fn a_restarted_source_behind_a_relay_is_counted_on_its_own_counters() {
        // A relay that keeps the readers' stream going across a republish: same SSRC, the
        // sequence numbers and RTP times continued, but the new source's packet counters
        // start from its own random base. Before, they were taken for duplicates.
        let (mut rx, mut m) =
            (TrackReceiver::new(90_000, None, ExtensionIds::default()), Metrics::new());
        let t0 = Instant::now();
        let capture = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        let mut seq = 0u16;
        for (base, skip) in [(5u64 << 30, 37u64), (2 << 30, 55), (9 << 30, u64::MAX)] {
            let config = StreamConfig { initial_counter: base, ..StreamConfig::default() };
            let mut stream = SyntheticStream::new(config).unwrap();
            let (mut buf, mut n, mut frame) = (Vec::new(), 0u64, 0u64);
            while n < 200 {
                let now = Duration::from_millis(40 * frame);
                while let Some(info) = stream.poll_packet(now, capture, &mut buf) {
                    assert_eq!(info.counter, base + n);
                    // The relay's continued numbering.
                    buf[2..4].copy_from_slice(&seq.to_be_bytes());
                    seq = seq.wrapping_add(1);
                    if n != skip {
                        rx.handle_packet(t0, capture, &buf[..info.len], &mut m);
                    }
                    n += 1;
                }
                frame += 1;
            }
        }
        assert_eq!((rx.lost(), rx.duplicates(), rx.reordered()), (2, 0, 0));
        assert_eq!(rx.ssrc_changes(), 0);
    }

    #[test]
    fn rtcp_that_does_not_parse_is_malformed_and_gives_no_report() {
        let t0 = Instant::now();
        let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
        let mut m = Metrics::new();
        assert!(!rx.handle_rtcp(t0, &[0x80, 200, 0, 40, 1, 2], &mut m));
        assert_eq!((rx.sender_reports(), m.counts.malformed), (0, 1));
    }

    #[test]
    fn media_for_the_window_without_a_sender_report_lacks_them() {
        let t0 = Instant::now();
        let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        // One packet a second: 15 of them span 14 s, 16 span the window.
        let play = |seconds: u16, with_report: bool| {
            let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
            let mut m = Metrics::new();
            for s in 0..seconds {
                let at = t0 + Duration::from_secs(u64::from(s));
                rx.handle_packet(at, ntp, &packet(s, 90_000 * u32::from(s)), &mut m);
                if with_report && s == 10 {
                    rx.handle_rtcp(at, &sender_report(ntp), &mut m);
                }
            }
            rx.lacks_sender_reports()
        };
        assert!(!play(15, false), "14 s of media is not judged");
        assert!(play(16, false), "15 s of media and no report");
        assert!(!play(16, true), "one report is enough");
        let silent = TrackReceiver::new(90_000, None, ExtensionIds::default());
        assert!(!silent.lacks_sender_reports(), "no media, nothing to judge");
    }

    #[test]
    fn report_blocks_carry_the_interval_loss_the_total_loss_and_the_jitter() {
        let t0 = Instant::now();
        let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
        let mut m = Metrics::new();
        assert!(rx.report_block(t0).is_none(), "nothing to report on yet");
        // 100 packets 10 ms apart (900 ticks), every 10th lost, arrivals 1 ms late on odd ones.
        for seq in 0u16..100 {
            let late = if seq % 2 == 1 { Duration::from_millis(1) } else { Duration::ZERO };
            let at = t0 + Duration::from_millis(10 * u64::from(seq)) + late;
            if seq % 10 != 5 {
                rx.handle_packet(at, ntp, &packet(seq, 900 * u32::from(seq)), &mut m);
            }
        }
        let block = rx.report_block(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(block.ssrc, Ssrc(0x1234));
        assert_eq!(block.highest_seq.0, 99);
        assert_eq!(block.cumulative_lost, 10);
        assert!(block.fraction_lost > 0, "{block:?}");
        assert!(block.jitter > 0, "1 ms of arrival jitter: {block:?}");
        // Nothing lost since: the next interval's fraction is 0, the total stays.
        for seq in 100u16..150 {
            let at = t0 + Duration::from_millis(10 * u64::from(seq));
            rx.handle_packet(at, ntp, &packet(seq, 900 * u32::from(seq)), &mut m);
        }
        let next = rx.report_block(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(next.fraction_lost, 0);
        assert_eq!(next.cumulative_lost, 10);
        assert_eq!(next.highest_seq.0, 149);
    }

    #[test]
    fn a_sequence_restart_keeps_the_loss_before_it() {
        let t0 = Instant::now();
        let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
        let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
        let mut m = Metrics::new();
        let mut at = t0;
        // 0 to 49 without 25; then the same source jumps and numbers from 30,000 (RFC 3550
        // A.1: two in order after a jump restart the statistics), without 30,010.
        let seqs = (0u16..50).filter(|&s| s != 25).chain((30_000..30_050).filter(|&s| s != 30_010));
        for seq in seqs {
            at += Duration::from_millis(10);
            rx.handle_packet(at, ntp, &packet(seq, 900 * u32::from(seq)), &mut m);
        }
        assert_eq!(rx.lost(), 2, "one lost before the restart, one after");
    }
}
