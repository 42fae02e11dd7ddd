//! What the generator measures: one [`Metrics`] per shard (HdrHistograms in microseconds and
//! counters), merged into one with [`Metrics::merge`] (histograms with `add`: percentiles are
//! never averaged).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use manifold_rtsp::Method;

/// Highest value a histogram tracks, in microseconds (one hour); larger values are clamped.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits every histogram keeps.
pub const SIGFIG: u8 = 3;

/// A latency (or duration-valued) metric, recorded in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// TCP connect, from the session's intended start (coordinated omission corrected).
    Connect,
    /// The TLS handshake (`rtsps://`), from the TCP connection to its end.
    Tls,
    /// Opening an HTTP tunnel (`--transport http`): from the GET's head sent to the POST
    /// half open (the GET answered 200 in between).
    Tunnel,
    /// OPTIONS round trip (also keep-alives sent as OPTIONS).
    RttOptions,
    /// DESCRIBE round trip.
    RttDescribe,
    /// SETUP round trip (each track).
    RttSetup,
    /// PLAY round trip.
    RttPlay,
    /// TEARDOWN round trip.
    RttTeardown,
    /// Any other request's round trip (GET_PARAMETER keep-alives).
    RttOther,
    /// Intended start to PLAY answered: the whole setup as the user sees it.
    Setup,
    /// PLAY sent to the first RTP packet.
    FirstRtp,
    /// PLAY sent to the first packet that starts a keyframe.
    FirstKeyframe,
    /// Capture time (header extension) to arrival, per packet captured after PLAY was sent:
    /// the live path through the server.
    E2e,
    /// The same for packets captured before PLAY was sent: history the server replayed (a GOP
    /// cache), whose age is not delivery delay and would otherwise inflate `e2e`'s tail.
    E2eCached,
    /// Per sender report: how far its wall-clock mapping places the latest packet of its
    /// source that carries a capture-time stamp from that stamp. The synthetic source maps
    /// each frame to its capture time, so a server that passes its reports on, or makes its
    /// own from when the media came, keeps this within its delivery delay; one that rewrites
    /// RTP times and not its reports (or the other way round) puts players' audio and video
    /// out of step by this much.
    SrOffset,
    /// RFC 3550 interarrival jitter, per track at the end of its session.
    Jitter,
    /// Time between consecutive packets of a track, per packet.
    Gap,
    /// How late each session started against its intended time.
    StartLag,
    /// How late the shard's 10 ms health timer fired (generator self-health).
    TimerLag,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 19] = [
        Metric::Connect,
        Metric::Tls,
        Metric::Tunnel,
        Metric::RttOptions,
        Metric::RttDescribe,
        Metric::RttSetup,
        Metric::RttPlay,
        Metric::RttTeardown,
        Metric::RttOther,
        Metric::Setup,
        Metric::FirstRtp,
        Metric::FirstKeyframe,
        Metric::E2e,
        Metric::E2eCached,
        Metric::SrOffset,
        Metric::Jitter,
        Metric::Gap,
        Metric::StartLag,
        Metric::TimerLag,
    ];

    /// The name in reports and thresholds.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::Tls => "tls",
            Metric::Tunnel => "tunnel",
            Metric::RttOptions => "rtt.options",
            Metric::RttDescribe => "rtt.describe",
            Metric::RttSetup => "rtt.setup",
            Metric::RttPlay => "rtt.play",
            Metric::RttTeardown => "rtt.teardown",
            Metric::RttOther => "rtt.other",
            Metric::Setup => "setup",
            Metric::FirstRtp => "first_rtp",
            Metric::FirstKeyframe => "first_keyframe",
            Metric::E2e => "e2e",
            Metric::E2eCached => "e2e_cached",
            Metric::SrOffset => "sr_offset",
            Metric::Jitter => "jitter",
            Metric::Gap => "gap",
            Metric::StartLag => "start_lag",
            Metric::TimerLag => "timer_lag",
        }
    }

    /// The metric named `name`.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The round-trip metric of a request method.
    pub fn rtt_of(method: Method) -> Metric {
        match method {
            Method::Options => Metric::RttOptions,
            Method::Describe => Metric::RttDescribe,
            Method::Setup => Metric::RttSetup,
            Method::Play => Metric::RttPlay,
            Method::Teardown => Metric::RttTeardown,
            _ => Metric::RttOther,
        }
    }
}

/// Why a session failed, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The server answered an error status (see the by-status counts).
    Status,
    /// No TCP connection or no response in time.
    Timeout,
    /// The connection was reset or closed by the server mid-session.
    Reset,
    /// The TCP connection was refused.
    Refused,
    /// Authentication failed.
    Auth,
    /// The TLS handshake failed or timed out (an untrusted certificate, a server that does
    /// not speak TLS).
    Tls,
    /// The server did not open the HTTP tunnel (its GET answered with another status than
    /// 200, or not HTTP at all).
    Tunnel,
    /// The server spoke something the client could not understand.
    Protocol,
    /// Another I/O error (socket setup, send).
    Io,
    /// The generator could not start the session (no file descriptors left).
    Generator,
    /// PLAY was answered but no media arrived within `--media-timeout`.
    NoMedia,
    /// Media arrived, then stopped for longer than `--media-timeout` before the session's end.
    Stalled,
    /// Still not finished at the run's overall deadline (the run's end plus the response
    /// timeout plus a grace): the server stopped answering, typically a TEARDOWN.
    Stuck,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Status,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Refused,
        ErrorKind::Auth,
        ErrorKind::Tls,
        ErrorKind::Tunnel,
        ErrorKind::Protocol,
        ErrorKind::Io,
        ErrorKind::Generator,
        ErrorKind::NoMedia,
        ErrorKind::Stalled,
        ErrorKind::Stuck,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Status => "status",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Refused => "refused",
            ErrorKind::Auth => "auth",
            ErrorKind::Tls => "tls",
            ErrorKind::Tunnel => "tunnel",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
            ErrorKind::Generator => "generator",
            ErrorKind::NoMedia => "no_media",
            ErrorKind::Stalled => "stalled",
            ErrorKind::Stuck => "stuck",
        }
    }
}

/// Plain counts; all merge by adding.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Sessions the schedule meant to start.
    pub scheduled: u64,
    /// Sessions started.
    pub started: u64,
    /// Sessions that played and were torn down (or cut at the end of the run) without error.
    pub ok: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// Sessions that reached PLAY.
    pub played: u64,
    /// Starts more than the tolerance behind their intended time.
    pub behind_schedule: u64,
    /// Sessions not started because the open-file limit had no room.
    pub clipped: u64,
    /// Sessions whose own hold time (or the run) ended before they reached PLAY while the server was
    /// answering within the response timeout: torn down by the generator, neither ok nor
    /// failed (a server that does not answer in time still fails them, as `timeout`).
    /// Absent from hlogs written before it existed.
    #[serde(default)]
    pub cut_by_hold: u64,
    /// Sessions that received media on a track whose keyframes can be seen (H.264, H.265)
    /// and not one keyframe: no player could have shown a picture. Not an error (a stream
    /// coded with intra refresh has none, and a hold shorter than the GOP may see none), and
    /// left out of `first_keyframe`, which is why it is counted. Absent from older hlogs.
    #[serde(default)]
    pub no_keyframe: u64,
    /// Sessions with an audio or video track that received media for
    /// [`SENDER_REPORT_WINDOW`](crate::receiver::SENDER_REPORT_WINDOW) or longer and not one
    /// RTCP sender report: players cannot place such a stream on the wall clock, nor line
    /// its audio up with its video. Not an error (shorter sessions are not judged). Absent
    /// from older hlogs.
    #[serde(default)]
    pub no_sender_report: u64,
    /// RTP packets received.
    pub packets: u64,
    /// RTP bytes received (datagram or interleaved payload sizes).
    pub bytes: u64,
    /// Packets expected but never received.
    pub lost: u64,
    /// Packets received more than once.
    pub duplicates: u64,
    /// Packets received after a later one.
    pub reordered: u64,
    /// Packets that did not parse as RTP (or, from the server's RTCP port or channel, as
    /// RTCP).
    pub malformed: u64,
    /// Packets the kernel dropped for want of receive buffer (`SO_RXQ_OVFL`).
    pub rxq_drops: u64,
    /// Packets whose loss accounting used the packet-counter extension (else RTP sequence).
    pub counted_by_counter: u64,
    /// UDP datagrams from another address or port than the server's announced ones: not
    /// counted as packets, not fed to the statistics. Absent from older hlogs.
    #[serde(default)]
    pub foreign: u64,
    /// Times a track's SSRC changed mid-session (statistics restart per SSRC; no false loss).
    /// Absent from older hlogs.
    #[serde(default)]
    pub ssrc_changes: u64,
    /// RTP packets of a payload type the SDP did not give their track: players drop them, so
    /// they are not counted as packets nor fed to the statistics. Absent from older hlogs.
    #[serde(default)]
    pub wrong_payload_type: u64,
    /// RTCP sender reports received from the server (UDP and interleaved). Absent from
    /// older hlogs.
    #[serde(default)]
    pub sender_reports: u64,
    /// The longest a shard's UDP sockets went between two reads, milliseconds: the grid's
    /// interval, or what `--udp-read-interval auto` reached. 0 when no socket was read on a
    /// grid. The most over the shards, not a sum. Absent from older hlogs.
    #[serde(default)]
    pub udp_read_interval_max_ms: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.scheduled += o.scheduled;
        self.started += o.started;
        self.ok += o.ok;
        self.failed += o.failed;
        self.played += o.played;
        self.behind_schedule += o.behind_schedule;
        self.clipped += o.clipped;
        self.cut_by_hold += o.cut_by_hold;
        self.no_keyframe += o.no_keyframe;
        self.no_sender_report += o.no_sender_report;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.malformed += o.malformed;
        self.rxq_drops += o.rxq_drops;
        self.counted_by_counter += o.counted_by_counter;
        self.foreign += o.foreign;
        self.ssrc_changes += o.ssrc_changes;
        self.wrong_payload_type += o.wrong_payload_type;
        self.sender_reports += o.sender_reports;
        self.udp_read_interval_max_ms =
            self.udp_read_interval_max_ms.max(o.udp_read_interval_max_ms);
    }
}

/// One shard's (or the merged run's) measurements.
#[derive(Debug, Clone)]
pub struct Metrics {
    histograms: Vec<Histogram<u64>>,
    /// Counts.
    pub counts: Counts,
    /// Failed sessions by the status code the server answered.
    pub errors_by_status: BTreeMap<u16, u64>,
    /// Failed sessions by kind.
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// The first few error messages, for the report.
    pub error_samples: Vec<String>,
}

/// Error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 10;

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[allow(clippy::expect_used, reason = "constant bounds, checked by the unit tests")]
fn empty_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIG).expect("1 us to 1 h at 3 digits is valid")
}

impl Metrics {
    /// Empty histograms and zero counts.
    pub fn new() -> Metrics {
        Metrics {
            histograms: Metric::ALL.iter().map(|_| empty_histogram()).collect(),
            counts: Counts::default(),
            errors_by_status: BTreeMap::new(),
            errors_by_kind: BTreeMap::new(),
            error_samples: Vec::new(),
        }
    }

    /// Records a duration.
    pub fn record(&mut self, metric: Metric, value: Duration) {
        self.record_us(metric, u64::try_from(value.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records a value in microseconds (clamped to [`HIGHEST_US`]).
    pub fn record_us(&mut self, metric: Metric, us: u64) {
        if let Some(h) = self.histograms.get_mut(metric as usize) {
            h.saturating_record(us);
        }
    }

    /// The histogram of `metric` (microseconds).
    pub fn histogram(&self, metric: Metric) -> &Histogram<u64> {
        // Every metric has a slot: `histograms` is built from `Metric::ALL` in order.
        &self.histograms[metric as usize]
    }

    /// Counts a failed session.
    pub fn error(
        &mut self,
        kind: ErrorKind,
        status: Option<u16>,
        message: impl FnOnce() -> String,
    ) {
        self.counts.failed += 1;
        *self.errors_by_kind.entry(kind).or_default() += 1;
        if let Some(s) = status {
            *self.errors_by_status.entry(s).or_default() += 1;
        }
        if self.error_samples.len() < MAX_ERROR_SAMPLES {
            self.error_samples.push(message());
        }
    }

    /// Failed sessions in all.
    pub fn errors(&self) -> u64 {
        self.errors_by_kind.values().sum()
    }

    /// Adds `other` into this: histograms with `add`, counts summed.
    pub fn merge(&mut self, other: &Metrics) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            if mine.add(theirs).is_err() {
                // Same bounds everywhere, so this cannot happen; never lose samples silently.
                for v in theirs.iter_recorded() {
                    mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                }
            }
        }
        self.counts.add(&other.counts);
        for (k, v) in &other.errors_by_status {
            *self.errors_by_status.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors_by_kind {
            *self.errors_by_kind.entry(*k).or_default() += v;
        }
        for s in &other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES {
                self.error_samples.push(s.clone());
            }
        }
    }
}

/// [`Metrics`] in a form that crosses a process boundary (JSON): what `--processes` workers
/// hand to their parent. Histograms are V2-serialized and hex-encoded, by metric name.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MetricsWire {
    /// Counts.
    pub counts: Counts,
    /// Failed sessions by status code.
    pub errors_by_status: BTreeMap<u16, u64>,
    /// Failed sessions by kind name.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Non-empty histograms by metric name.
    pub histograms: BTreeMap<String, String>,
}

/// Hex text of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of hex text; `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 != 0 {
        return None;
    }
    t.chunks(2)
        .map(|p| std::str::from_utf8(p).ok().and_then(|s| u8::from_str_radix(s, 16).ok()))
        .collect()
}

/// V2-serializes a histogram.
pub fn histogram_bytes(h: &Histogram<u64>) -> Vec<u8> {
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    let mut out = Vec::new();
    if V2Serializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Reads a V2-serialized histogram.
pub fn histogram_from_bytes(bytes: &[u8]) -> Option<Histogram<u64>> {
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut &bytes[..]).ok()
}

impl Metrics {
    /// The wire form.
    pub fn to_wire(&self) -> MetricsWire {
        MetricsWire {
            counts: self.counts.clone(),
            errors_by_status: self.errors_by_status.clone(),
            errors_by_kind: self
                .errors_by_kind
                .iter()
                .map(|(k, v)| (k.name().to_owned(), *v))
                .collect(),
            error_samples: self.error_samples.clone(),
            histograms: Metric::ALL
                .iter()
                .filter(|m| !self.histogram(**m).is_empty())
                .map(|m| (m.name().to_owned(), to_hex(&histogram_bytes(self.histogram(*m)))))
                .collect(),
        }
    }

    /// Back from the wire form; unknown names and undecodable histograms are skipped.
    pub fn from_wire(wire: &MetricsWire) -> Metrics {
        let mut m = Metrics::new();
        m.counts = wire.counts.clone();
        m.errors_by_status = wire.errors_by_status.clone();
        for (name, n) in &wire.errors_by_kind {
            if let Some(kind) = ErrorKind::ALL.into_iter().find(|k| k.name() == name) {
                *m.errors_by_kind.entry(kind).or_default() += n;
            }
        }
        m.error_samples = wire.error_samples.clone();
        for (name, hex) in &wire.histograms {
            let (Some(metric), Some(h)) =
                (Metric::from_name(name), from_hex(hex).as_deref().and_then(histogram_from_bytes))
            else {
                continue;
            };
            if let Some(slot) = m.histograms.get_mut(metric as usize) {
                if slot.add(&h).is_err() {
                    for v in h.iter_recorded() {
                        slot.saturating_record_n(v.value_iterated_to(), v.count_at_value());
                    }
                }
            }
        }
        m
    }
}
