//! Metrics: per-stream, per-reader and per-shard counters, gathered without touching the
//! packet path, and rendered as Prometheus text (`/metrics`) and JSON (`/api/v1/streams`).
//!
//! How counters travel: every counter lives on its shard in a plain `Cell` (hub, fan-out,
//! reader, connection), bumped with no lock and no atomic. Once a second each shard walks its
//! own hubs and fan-outs and publishes a [`ShardSnapshot`] into its slot of the process-wide
//! [`Board`] (a mutex taken once per shard per second, never per packet). A scrape, served on
//! shard 0, renders the latest snapshot of every shard. We chose this over asking each shard
//! on demand through the channel mesh because the mesh's queues carry packets: a snapshot
//! request would wait behind (or be dropped with) media, and answering it would need a
//! second reply path; and over `Arc<[AtomicU64]>` slots because the JSON needs variable-size,
//! per-reader detail (peer, session, RTCP feedback) that does not fit in fixed atomics. The
//! price is that figures are up to one publish period ([`PUBLISH_PERIOD`]) old.
//!
//! Counters of readers that left are folded into per-stream "retired" totals so that the
//! `_total` series never go backwards while a stream lives.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::limits::Limits;
use crate::plane::reader::{Reader, Totals};
use crate::plane::rtcp_feedback::ticks_to_ms;

/// How often each shard publishes its snapshot.
pub(crate) const PUBLISH_PERIOD: Duration = Duration::from_secs(1);

/// The latest snapshot of every shard, process-wide.
#[derive(Debug)]
pub(crate) struct Board {
    shards: Mutex<Vec<Option<ShardSnapshot>>>,
}

impl Board {
    /// An empty board for `shards` shards.
    pub(crate) fn new(shards: usize) -> Board {
        Board { shards: Mutex::new(vec![None; shards]) }
    }

    pub(crate) fn publish(&self, snapshot: ShardSnapshot) {
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if shards.len() <= snapshot.shard {
            shards.resize(snapshot.shard + 1, None);
        }
        let at = snapshot.shard;
        shards[at] = Some(snapshot);
    }

    fn latest(&self) -> Vec<ShardSnapshot> {
        self.shards.lock().unwrap_or_else(|e| e.into_inner()).iter().flatten().cloned().collect()
    }
}

/// Where a stream's packets come from, as the metrics show it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// `publisher`, `synthetic`, `pull`, `rtp`…
    pub(crate) kind: &'static str,
    /// The upstream's address, when it has one.
    pub(crate) peer: Option<SocketAddr>,
    /// The publisher's connection on the owning shard (closed when another publisher
    /// replaces it).
    pub(crate) conn: Option<u64>,
}

/// Per-shard observability state: upstream descriptions, mesh counters, retired readers'
/// totals and the executor's busy time.
#[derive(Debug)]
pub(crate) struct ShardObs {
    upstreams: RefCell<HashMap<u64, Upstream>>,
    /// Packets queued to each shard.
    mesh_sent: Vec<Cell<u64>>,
    /// Packets received from each shard.
    mesh_received: Vec<Cell<u64>>,
    /// Totals of readers that left, by stream.
    retired: RefCell<HashMap<u64, Totals>>,
    /// RTCP reports from readers (compound packets with report blocks).
    pub(crate) rtcp_reports: Cell<u64>,
    busy_mark: Cell<Option<Instant>>,
}

impl ShardObs {
    /// State for one of `shards` shards.
    pub(crate) fn new(shards: usize) -> ShardObs {
        ShardObs {
            upstreams: RefCell::default(),
            mesh_sent: (0..shards).map(|_| Cell::new(0)).collect(),
            mesh_received: (0..shards).map(|_| Cell::new(0)).collect(),
            retired: RefCell::default(),
            rtcp_reports: Cell::new(0),
            busy_mark: Cell::new(None),
        }
    }

    /// Describes the upstream of a stream this shard owns.
    pub(crate) fn set_upstream(&self, stream: u64, upstream: Upstream) {
        self.upstreams.borrow_mut().insert(stream, upstream);
    }

    /// The upstream of `stream`, if this shard owns it.
    pub(crate) fn upstream(&self, stream: u64) -> Option<Upstream> {
        self.upstreams.borrow().get(&stream).cloned()
    }

    /// Forgets a stream that ended.
    pub(crate) fn forget(&self, stream: u64) {
        self.upstreams.borrow_mut().remove(&stream);
        self.retired.borrow_mut().remove(&stream);
    }

    /// Packets queued to each shard.
    pub(crate) fn mesh_sent(&self) -> Vec<u64> {
        self.mesh_sent.iter().map(Cell::get).collect()
    }

    /// Packets received from each shard.
    pub(crate) fn mesh_received(&self) -> Vec<u64> {
        self.mesh_received.iter().map(Cell::get).collect()
    }

    /// Totals of the readers that left, by stream.
    pub(crate) fn retired(&self) -> Vec<(u64, Totals)> {
        self.retired.borrow().iter().map(|(id, t)| (*id, *t)).collect()
    }

    /// Counts a packet queued to shard `to`.
    pub(crate) fn count_mesh_sent(&self, to: usize) {
        if let Some(c) = self.mesh_sent.get(to) {
            c.set(c.get() + 1);
        }
    }

    /// Counts a packet received from shard `from`.
    pub(crate) fn count_mesh_received(&self, from: usize) {
        if let Some(c) = self.mesh_received.get(from) {
            c.set(c.get() + 1);
        }
    }

    /// Keeps the totals of the readers that left a fan-out of `stream` that is going away.
    pub(crate) fn retire_fanout(&self, stream: u64, retired: Totals) {
        self.retired.borrow_mut().entry(stream).or_default().add(&retired);
    }

    /// The fraction of wall time the executor ran tasks since the previous call. glommio's
    /// `executor_stats()` hands out the time accumulated since it was last asked (it resets
    /// the counters), so this must be the only caller on the shard.
    pub(crate) fn busy(&self) -> f64 {
        let now = Instant::now();
        let ran = glommio::executor().executor_stats().executor_runtime();
        match self.busy_mark.replace(Some(now)) {
            Some(then) => {
                let wall = now.saturating_duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    (ran.as_secs_f64() / wall).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }
}

/// What one shard knows, published once a period.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ShardSnapshot {
    /// The shard.
    pub(crate) shard: usize,
    /// Fraction of the last period the executor spent running tasks.
    pub(crate) busy: f64,
    /// RTSP connections open on this shard.
    pub(crate) connections: u64,
    /// UDP datagrams the kernel refused (send buffer full).
    pub(crate) udp_send_drops: u64,
    /// RTCP reports received from readers.
    pub(crate) rtcp_reports: u64,
    /// Packets queued to each shard.
    pub(crate) mesh_sent: Vec<u64>,
    /// Packets received from each shard.
    pub(crate) mesh_received: Vec<u64>,
    /// The streams this shard owns or has readers of.
    pub(crate) streams: Vec<StreamPart>,
}

/// One shard's part of one stream.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct StreamPart {
    /// The stream's id.
    pub(crate) id: u64,
    /// Its path.
    pub(crate) path: String,
    /// The upstream, on the owning shard.
    pub(crate) upstream: Option<UpstreamSnapshot>,
    /// Readers on this shard.
    pub(crate) readers: Vec<ReaderSnapshot>,
    /// Totals of readers that left.
    pub(crate) retired: Totals,
}

/// The upstream of a stream.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct UpstreamSnapshot {
    /// What kind of upstream.
    pub(crate) kind: String,
    /// Its address.
    pub(crate) peer: Option<String>,
    /// Packets received.
    pub(crate) packets_in: u64,
    /// Bytes received.
    pub(crate) bytes_in: u64,
    /// Packets that were not valid RTP.
    pub(crate) malformed: u64,
    /// Packets not handed to another shard (its queue was full, or it was resyncing).
    pub(crate) shard_queue_drops: u64,
    /// Packets the upstream sent that never reached the stream's hub: gaps in its RTP
    /// sequence numbers (the network, the relay's socket buffers, a full queue to the
    /// owning shard).
    pub(crate) lost: u64,
    /// The upstream's interarrival jitter (RFC 3550), its worst track's, in ms.
    pub(crate) jitter_ms: f64,
    /// Packets of a payload type the SDP did not give their track (forwarded; players drop
    /// them).
    pub(crate) wrong_payload_type: u64,
    /// RTP packets sent to the stream's multicast group (once each, for all its multicast
    /// readers), while it has some.
    pub(crate) multicast_packets: Option<u64>,
}

/// One reader.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ReaderSnapshot {
    /// The shard it is on.
    pub(crate) shard: usize,
    /// `udp` or `tcp`.
    pub(crate) transport: &'static str,
    /// Its RTSP connection's address.
    pub(crate) peer: String,
    /// The RTSP session.
    pub(crate) session: String,
    /// Packets queued for it right now.
    pub(crate) queued: usize,
    /// Its counters.
    #[serde(flatten)]
    pub(crate) totals: Totals,
    /// What its RTCP receiver reports said, per track that reported.
    pub(crate) rtcp: Vec<RtcpSnapshot>,
}

/// A reader's RTCP feedback about one track.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RtcpSnapshot {
    /// The track.
    pub(crate) track: usize,
    /// Report blocks received.
    pub(crate) reports: u64,
    /// Fraction lost in the latest report (0–1).
    pub(crate) fraction_lost: f64,
    /// Highest fraction lost reported.
    pub(crate) max_fraction_lost: f64,
    /// Cumulative packets lost, per the latest report.
    pub(crate) cumulative_lost: i64,
    /// Interarrival jitter of the latest report, in ms.
    pub(crate) jitter_ms: f64,
    /// Highest jitter reported, in ms.
    pub(crate) max_jitter_ms: f64,
    /// Round-trip time to the reader from the latest report whose LSR named a sender report
    /// it was sent (RFC 3550 §6.4.1), in ms; `null` until one did.
    pub(crate) rtt_ms: Option<f64>,
    /// The longest such round-trip time, in ms.
    pub(crate) max_rtt_ms: Option<f64>,
    /// Seconds since the latest report.
    pub(crate) age_secs: f64,
}

/// One reader's part of a snapshot: its counters (`totals`, from its fan-out) and what its
/// RTCP reports said.
pub(crate) fn reader_snapshot(
    shard: usize,
    r: &Reader,
    totals: Totals,
    clock_rates: &[u32],
    now: Instant,
) -> ReaderSnapshot {
    let rtcp = r
        .obs
        .feedback
        .iter()
        .enumerate()
        .filter(|(_, f)| f.reports > 0)
        .map(|(track, f)| {
            let rate = clock_rates.get(track).copied().unwrap_or(90_000);
            RtcpSnapshot {
                track,
                reports: f.reports,
                fraction_lost: f.fraction_lost,
                max_fraction_lost: f.max_fraction_lost,
                cumulative_lost: f.cumulative_lost,
                jitter_ms: ticks_to_ms(f.jitter_ticks, rate),
                max_jitter_ms: ticks_to_ms(f.max_jitter_ticks, rate),
                rtt_ms: f.rtt.map(|d| d.as_secs_f64() * 1000.0),
                max_rtt_ms: f.max_rtt.map(|d| d.as_secs_f64() * 1000.0),
                age_secs: f.at.map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64()),
            }
        })
        .collect();
    ReaderSnapshot {
        shard,
        transport: match (r.is_udp(), r.multicast_group()) {
            (true, _) => "udp",
            (false, Some(_)) => "multicast",
            (false, None) => "tcp",
        },
        peer: r.peer.to_string(),
        session: r.session.0.clone(),
        queued: r.queue.len(),
        totals,
        rtcp,
    }
}

/// One stream summed over shards.
#[derive(Debug, Clone, Default, Serialize)]
struct StreamView {
    path: String,
    ids: Vec<u64>,
    upstream: Option<UpstreamSnapshot>,
    readers: Vec<ReaderSnapshot>,
    #[serde(flatten)]
    out: Totals,
}

impl StreamView {
    fn packets_in(&self) -> u64 {
        self.upstream.as_ref().map_or(0, |u| u.packets_in)
    }

    fn bytes_in(&self) -> u64 {
        self.upstream.as_ref().map_or(0, |u| u.bytes_in)
    }

    /// Latest reports of every reader and track: (fraction lost, jitter ms).
    fn feedback(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.readers.iter().flat_map(|r| r.rtcp.iter().map(|f| (f.fraction_lost, f.jitter_ms)))
    }

    /// The latest round-trip time of every reader and track that has one, ms.
    fn round_trips(&self) -> impl Iterator<Item = f64> + '_ {
        self.readers.iter().flat_map(|r| r.rtcp.iter().filter_map(|f| f.rtt_ms))
    }
}

/// Every stream by path (a path republished while the old stream drains is summed).
fn streams(snapshots: &[ShardSnapshot]) -> Vec<StreamView> {
    let mut by_path: BTreeMap<String, StreamView> = BTreeMap::new();
    for s in snapshots {
        for part in &s.streams {
            let v = by_path.entry(part.path.clone()).or_default();
            v.path = part.path.clone();
            if !v.ids.contains(&part.id) {
                v.ids.push(part.id);
            }
            if let Some(u) = &part.upstream {
                // The newest stream's upstream is the one that matters.
                if v.upstream.is_none() || v.ids.iter().all(|&i| i <= part.id) {
                    v.upstream = Some(u.clone());
                }
            }
            v.out.add(&part.retired);
            for r in &part.readers {
                v.out.add(&r.totals);
                v.readers.push(r.clone());
            }
        }
    }
    by_path.into_values().collect()
}

/// Prometheus text exposition (format 0.0.4): one `# HELP` and `# TYPE` per family, then its
/// samples.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family.
    pub(crate) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// The text.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Escapes a label value: backslash, double quote and line feed.
pub(crate) fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Process-wide figures that are not per shard.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Process {
    /// Sessions open.
    pub(crate) sessions: usize,
    /// Connections refused by the per-IP limit.
    pub(crate) refused_connections: u64,
    /// SETUPs refused by the session limit.
    pub(crate) refused_sessions: u64,
}

/// Renders the snapshots as Prometheus text.
pub(crate) fn render_prometheus(snapshots: &[ShardSnapshot], process: Process) -> String {
    let mut e = Exposition::default();
    let views = streams(snapshots);
    type Stat = fn(&StreamView) -> f64;
    let per_stream: [(&str, &str, &str, Stat); 10] = [
        ("manifold_stream_readers", "gauge", "Readers playing the stream.", |v| {
            v.readers.len() as f64
        }),
        ("manifold_stream_packets_in_total", "counter", "RTP packets from the upstream.", |v| {
            v.packets_in() as f64
        }),
        ("manifold_stream_bytes_in_total", "counter", "RTP bytes from the upstream.", |v| {
            v.bytes_in() as f64
        }),
        ("manifold_stream_packets_out_total", "counter", "Packets sent to readers.", |v| {
            v.out.packets as f64
        }),
        ("manifold_stream_bytes_out_total", "counter", "Bytes sent to readers.", |v| {
            v.out.bytes as f64
        }),
        (
            "manifold_stream_keyframe_skips_total",
            "counter",
            "Times a reader fell behind and skipped to the next keyframe.",
            |v| v.out.keyframe_skips as f64,
        ),
        (
            "manifold_stream_malformed_total",
            "counter",
            "Upstream packets that were not valid RTP.",
            |v| v.upstream.as_ref().map_or(0, |u| u.malformed) as f64,
        ),
        (
            "manifold_stream_upstream_lost_total",
            "counter",
            "Packets the upstream sent that never reached the relay's hub (RTP sequence gaps).",
            |v| v.upstream.as_ref().map_or(0, |u| u.lost) as f64,
        ),
        (
            "manifold_stream_upstream_jitter_ms",
            "gauge",
            "The upstream's interarrival jitter (RFC 3550), its worst track's, ms.",
            |v| v.upstream.as_ref().map_or(0.0, |u| u.jitter_ms),
        ),
        (
            "manifold_stream_upstream_wrong_payload_type_total",
            "counter",
            "Upstream packets of a payload type the SDP does not give their track (readers drop \
             them).",
            |v| v.upstream.as_ref().map_or(0, |u| u.wrong_payload_type) as f64,
        ),
    ];
    for (name, kind, help, stat) in per_stream {
        e.family(name, kind, help);
        for v in &views {
            e.sample(name, &[("path", &v.path)], stat(v));
        }
    }
    let name = "manifold_stream_drops_total";
    e.family(name, "counter", "Packets dropped: by readers' queues, or not queued to a shard.");
    for v in &views {
        e.sample(name, &[("path", &v.path), ("where", "reader_queue")], v.out.dropped as f64);
        let shard_drops = v.upstream.as_ref().map_or(0, |u| u.shard_queue_drops);
        e.sample(name, &[("path", &v.path), ("where", "shard_queue")], shard_drops as f64);
    }
    let name = "manifold_stream_multicast_packets_total";
    e.family(name, "counter", "RTP packets sent to the stream's multicast group, once each.");
    for v in &views {
        let sent = v.upstream.as_ref().and_then(|u| u.multicast_packets).unwrap_or(0);
        e.sample(name, &[("path", &v.path)], sent as f64);
    }
    let name = "manifold_stream_rtcp_fraction_lost";
    e.family(name, "gauge", "Fraction lost in readers' latest RTCP receiver reports (0-1).");
    for v in &views {
        let (max, avg) = summary(v.feedback().map(|f| f.0));
        e.sample(name, &[("path", &v.path), ("stat", "max")], max);
        e.sample(name, &[("path", &v.path), ("stat", "avg")], avg);
    }
    let name = "manifold_stream_rtcp_jitter_ms";
    e.family(name, "gauge", "Interarrival jitter in readers' latest RTCP receiver reports, ms.");
    for v in &views {
        let (max, avg) = summary(v.feedback().map(|f| f.1));
        e.sample(name, &[("path", &v.path), ("stat", "max")], max);
        e.sample(name, &[("path", &v.path), ("stat", "avg")], avg);
    }
    let name = "manifold_stream_rtcp_rtt_ms";
    e.family(
        name,
        "gauge",
        "Round-trip time to readers from their latest RTCP receiver reports (LSR, DLSR), ms.",
    );
    for v in &views {
        let (max, avg) = summary(v.round_trips());
        e.sample(name, &[("path", &v.path), ("stat", "max")], max);
        e.sample(name, &[("path", &v.path), ("stat", "avg")], avg);
    }
    let name = "manifold_stream_rtcp_reporting_readers";
    e.family(name, "gauge", "Readers that sent at least one RTCP receiver report.");
    for v in &views {
        let n = v.readers.iter().filter(|r| !r.rtcp.is_empty()).count();
        e.sample(name, &[("path", &v.path)], n as f64);
    }

    type ShardStat = fn(&ShardSnapshot) -> f64;
    let per_shard: [(&str, &str, &str, ShardStat); 4] = [
        (
            "manifold_shard_busy_ratio",
            "gauge",
            "Fraction of wall time the shard's executor ran tasks over the last period.",
            |s| s.busy,
        ),
        ("manifold_shard_connections", "gauge", "RTSP connections open on the shard.", |s| {
            s.connections as f64
        }),
        (
            "manifold_shard_udp_send_drops_total",
            "counter",
            "UDP datagrams to readers the kernel refused.",
            |s| s.udp_send_drops as f64,
        ),
        (
            "manifold_shard_rtcp_reports_total",
            "counter",
            "RTCP reports with report blocks received from readers.",
            |s| s.rtcp_reports as f64,
        ),
    ];
    for (name, kind, help, stat) in per_shard {
        e.family(name, kind, help);
        for s in snapshots {
            e.sample(name, &[("shard", &s.shard.to_string())], stat(s));
        }
    }
    let name = "manifold_shard_queue_depth";
    e.family(
        name,
        "gauge",
        "Packets in the cross-shard queue from one shard to another (sent minus received, \
         from snapshots up to a period apart).",
    );
    for from in snapshots {
        for to in snapshots {
            if from.shard == to.shard {
                continue;
            }
            let sent = from.mesh_sent.get(to.shard).copied().unwrap_or(0);
            let received = to.mesh_received.get(from.shard).copied().unwrap_or(0);
            let (f, t) = (from.shard.to_string(), to.shard.to_string());
            e.sample(name, &[("from", &f), ("to", &t)], sent.saturating_sub(received) as f64);
        }
    }
    e.family("manifold_sessions", "gauge", "RTSP sessions open (publishing and playing).");
    e.sample("manifold_sessions", &[], process.sessions as f64);
    let name = "manifold_refused_total";
    e.family(name, "counter", "Connections and sessions refused by the configured limits.");
    e.sample(name, &[("what", "connection")], process.refused_connections as f64);
    e.sample(name, &[("what", "session")], process.refused_sessions as f64);
    e.finish()
}

/// (max, average) of some values; (0, 0) when there are none.
fn summary(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut max, mut sum, mut n) = (0.0f64, 0.0, 0usize);
    for v in values {
        max = max.max(v);
        sum += v;
        n += 1;
    }
    (max, if n == 0 { 0.0 } else { sum / n as f64 })
}

/// The JSON of `/api/v1/streams`.
pub(crate) fn render_json(
    snapshots: &[ShardSnapshot],
    process: Process,
    show_sessions: bool,
) -> String {
    #[derive(Serialize)]
    struct ShardView {
        shard: usize,
        busy: f64,
        connections: u64,
        udp_send_drops: u64,
    }
    #[derive(Serialize)]
    struct Api {
        streams: Vec<StreamView>,
        shards: Vec<ShardView>,
        sessions: usize,
        refused_connections: u64,
        refused_sessions: u64,
    }
    let mut streams = streams(snapshots);
    if !show_sessions {
        // Session ids are bearer credentials for the session: only for authenticated callers.
        for r in streams.iter_mut().flat_map(|s| s.readers.iter_mut()) {
            r.session.clear();
        }
    }
    let api = Api {
        streams,
        shards: snapshots
            .iter()
            .map(|s| ShardView {
                shard: s.shard,
                busy: s.busy,
                connections: s.connections,
                udp_send_drops: s.udp_send_drops,
            })
            .collect(),
        sessions: process.sessions,
        refused_connections: process.refused_connections,
        refused_sessions: process.refused_sessions,
    };
    serde_json::to_string_pretty(&api).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// What a scrape reads: every shard's latest snapshot, and the process-wide limits'
/// counters. Never a shard's own state, so a scrape never touches a packet path.
#[derive(Debug, Clone)]
pub(crate) struct Scrape {
    /// The shards' snapshots.
    pub(crate) board: Arc<Board>,
    /// Connection and session limits.
    pub(crate) limits: Arc<Limits>,
    /// The bearer token callers must present (`metrics_token`); `None`: open, without
    /// session ids.
    pub(crate) token: Option<manifold_access::BearerToken>,
}

impl Scrape {
    fn process(&self) -> Process {
        Process {
            sessions: self.limits.sessions(),
            refused_connections: self.limits.refused_connections(),
            refused_sessions: self.limits.refused_sessions(),
        }
    }

    /// `/metrics` as of the latest snapshots.
    pub(crate) fn prometheus(&self) -> String {
        render_prometheus(&self.board.latest(), self.process())
    }

    /// `/api/v1/streams` as of the latest snapshots; session ids only when `authenticated`.
    pub(crate) fn json(&self, authenticated: bool) -> String {
        render_json(&self.board.latest(), self.process(), authenticated)
    }

    /// Whether a request with this `Authorization` value may scrape: `Some(authenticated)`,
    /// or `None` when a token is required and was not presented.
    pub(crate) fn admits(&self, authorization: Option<&str>) -> Option<bool> {
        match &self.token {
            None => Some(false),
            Some(t) => t.accepts(authorization).then_some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ShardSnapshot> {
        let reader = |shard, loss: f64, jitter: f64| ReaderSnapshot {
            shard,
            transport: "udp",
            peer: "127.0.0.1:5000".into(),
            session: "abc".into(),
            queued: 0,
            totals: Totals { packets: 10, bytes: 1000, dropped: 1, keyframe_skips: 1 },
            rtcp: vec![RtcpSnapshot {
                track: 0,
                reports: 1,
                fraction_lost: loss,
                jitter_ms: jitter,
                // One reader has had a round trip (10 ms), the other not yet.
                rtt_ms: (shard == 0).then_some(10.0),
                ..RtcpSnapshot::default()
            }],
        };
        vec![
            ShardSnapshot {
                shard: 0,
                busy: 0.25,
                connections: 2,
                mesh_sent: vec![0, 7],
                mesh_received: vec![0, 0],
                streams: vec![StreamPart {
                    id: 1,
                    path: "/cam \"a\"\\b\nc".into(),
                    upstream: Some(UpstreamSnapshot {
                        kind: "synthetic".into(),
                        packets_in: 100,
                        bytes_in: 12345,
                        lost: 4,
                        jitter_ms: 1.5,
                        wrong_payload_type: 3,
                        ..UpstreamSnapshot::default()
                    }),
                    readers: vec![reader(0, 0.5, 4.0)],
                    retired: Totals { packets: 5, ..Totals::default() },
                }],
                ..ShardSnapshot::default()
            },
            ShardSnapshot {
                shard: 1,
                mesh_sent: vec![0, 0],
                mesh_received: vec![4, 0],
                streams: vec![StreamPart {
                    id: 1,
                    path: "/cam \"a\"\\b\nc".into(),
                    readers: vec![reader(1, 0.0, 2.0)],
                    ..StreamPart::default()
                }],
                ..ShardSnapshot::default()
            },
        ]
    }

    /// Checks the text against the exposition format: every sample belongs to the family
    /// whose `# TYPE` precedes it, families are not repeated, label values are quoted with
    /// escapes, and values parse.
    fn check_exposition(text: &str) {
        let mut families = std::collections::HashSet::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                assert!(families.insert(name.to_owned()), "family {name} repeated");
                current = Some(name.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert_eq!(Some(name), current.as_deref(), "sample outside its family: {line}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            let mut rest = &line[name_end..];
            if rest.starts_with('{') {
                // Walk the labels: key="value" pairs, value with \\ \" \n escapes only.
                rest = &rest[1..];
                loop {
                    let eq = rest.find('=').unwrap();
                    assert!(rest[..eq].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    rest = &rest[eq + 1..];
                    assert!(rest.starts_with('"'), "{line}");
                    let mut chars = rest[1..].char_indices();
                    let end = loop {
                        match chars.next().unwrap() {
                            (_, '\\') => {
                                let (_, c) = chars.next().unwrap();
                                assert!(matches!(c, '\\' | '"' | 'n'), "bad escape in {line}");
                            }
                            (i, '"') => break i + 1,
                            (_, c) => assert_ne!(c, '\n'),
                        }
                    };
                    rest = &rest[end + 1..];
                    match rest.as_bytes()[0] {
                        b',' => rest = &rest[1..],
                        b'}' => {
                            rest = &rest[1..];
                            break;
                        }
                        _ => panic!("bad label list in {line}"),
                    }
                }
            }
            let value = rest.strip_prefix(' ').unwrap();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN", "{line}");
        }
    }

    #[test]
    fn prometheus_text_is_valid_exposition() {
        let text = render_prometheus(&sample(), Process { sessions: 3, ..Process::default() });
        check_exposition(&text);
        let path = r#"path="/cam \"a\"\\b\nc""#;
        assert!(text.contains(&format!("manifold_stream_readers{{{path}}} 2\n")), "{text}");
        assert!(text.contains(&format!("manifold_stream_packets_in_total{{{path}}} 100\n")));
        assert!(text.contains(&format!("manifold_stream_upstream_lost_total{{{path}}} 4\n")));
        assert!(text.contains(&format!("manifold_stream_upstream_jitter_ms{{{path}}} 1.5\n")));
        let wrong_pt = "manifold_stream_upstream_wrong_payload_type_total";
        assert!(text.contains(&format!("{wrong_pt}{{{path}}} 3\n")));
        assert!(text.contains(&format!("manifold_stream_packets_out_total{{{path}}} 25\n")));
        assert!(text
            .contains(&format!("manifold_stream_rtcp_fraction_lost{{{path},stat=\"max\"}} 0.5\n")));
        assert!(
            text.contains(&format!("manifold_stream_rtcp_jitter_ms{{{path},stat=\"avg\"}} 3\n"))
        );
        // Averaged over the readers that have a round trip, not over all of them.
        let rtt = "manifold_stream_rtcp_rtt_ms";
        assert!(text.contains(&format!("{rtt}{{{path},stat=\"avg\"}} 10\n")), "{text}");
        assert!(text.contains(&format!("{rtt}{{{path},stat=\"max\"}} 10\n")));
        assert!(text.contains("manifold_shard_busy_ratio{shard=\"0\"} 0.25\n"));
        assert!(text.contains("manifold_shard_queue_depth{from=\"0\",to=\"1\"} 3\n"));
        assert!(text.contains("manifold_sessions 3\n"));
        assert!(text.contains("# TYPE manifold_stream_packets_out_total counter\n"));
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label("/plain"), "/plain");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.125), "0.125");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn json_lists_streams_with_upstream_and_readers() {
        let text = render_json(&sample(), Process::default(), true);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let s = &v["streams"][0];
        assert_eq!(s["upstream"]["kind"], "synthetic");
        assert_eq!(s["upstream"]["wrong_payload_type"], 3);
        assert_eq!(s["readers"].as_array().unwrap().len(), 2);
        assert_eq!(s["readers"][0]["rtcp"][0]["fraction_lost"], 0.5);
        assert_eq!(s["packets"], 25);
        assert_eq!(v["shards"].as_array().unwrap().len(), 2);
        assert_eq!(s["readers"][0]["session"], "abc", "shown to an authenticated caller");
        let open = render_json(&sample(), Process::default(), false);
        assert!(!open.contains("\"abc\""), "no session ids for anyone else: {open}");
    }
}
