//! A shard: one glommio executor pinned to one core, and the only owner of its I/O: its RTSP
//! listener (same port on every shard, `SO_REUSEPORT`), its RTP/RTCP server ports, its end of
//! the channel mesh, its timers. It feeds the data plane ([`crate::plane`]: the hubs of the
//! streams whose upstream it owns, the fan-outs of the streams its readers play) and carries
//! out what the plane returns: UDP sends through [`crate::egress`], packets to other shards,
//! wake-ups of TCP readers' writers.
//!
//! Shards talk through a full mesh of bounded single-producer queues (one per shard pair,
//! glommio's `channel_mesh`): packets for readers, and the subscribe/snapshot handshake a
//! reader's PLAY does with the stream's owner. [`run`] starts a shard's tasks.

mod observe;
mod run;

pub(crate) use run::run;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::Senders;
use glommio::{spawn_local, timer};
use rustc_hash::FxHashMap;

use crate::config::ServeConfig;
use crate::egress::UdpEgress;
use crate::notify::Notify;
use crate::outbox::ConnOut;
use crate::plane::fanout::Fanout;
use crate::plane::hub::{Hub, HubStats};
use crate::plane::packet::{Packet, SharedPacket};
use crate::plane::reader::{Reader, ReaderTrack, TcpFrame};
use crate::plane::Egress;
use crate::registry::{Registry, StreamInfo};
use crate::udp::ServerPorts;

/// How long a PLAY waits for the owning shard's snapshot.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A message between shards.
#[derive(Debug)]
pub(crate) enum ShardMsg {
    /// A packet of `stream` for the readers on the receiving shard.
    Packet { stream: u64, packet: SharedPacket },
    /// Shard `from` wants `stream` for its new reader `reader`: answer with a snapshot (the
    /// cached GOP when `gop`, else empty: the reader starts at the next keyframe).
    Subscribe { stream: u64, from: usize, reader: u64, gop: bool },
    /// The owner's answer: the GOP for reader `reader`, or `None` when the stream is gone.
    /// Packets sent after this one follow the snapshot without a gap.
    Snapshot { stream: u64, reader: u64, packets: Option<Vec<SharedPacket>> },
    /// Shard `from` has no readers of `stream` left.
    Unsubscribe { stream: u64, from: usize },
    /// The stream's upstream is gone.
    Ended { stream: u64 },
    /// Another publisher took the stream's path over: close its publisher.
    Evict { stream: u64 },
    /// A publisher on shard `from` forwards a packet of `stream` (RTP, or RTCP when the
    /// handle says so) to the hub on the receiving shard: a republish that landed there.
    Ingest { stream: u64, packet: SharedPacket },
    /// A publisher (`peer`) on another shard continues `stream` after its publisher left:
    /// the hub rebases its outgoing stream. Sent before that publisher's first packet.
    Republished { stream: u64, peer: SocketAddr },
    /// The forwarding publisher of `stream` left: wait for a republish, or (`end`) end it.
    PublisherGone { stream: u64, end: bool },
    /// A multicast reader of `stream` started (`delta` 1) or stopped (-1) on another shard.
    Multicast { stream: u64, group: std::net::SocketAddrV4, delta: i64 },
    /// Requests a POST half of an HTTP tunnel decoded, for the GET half (connection `conn`)
    /// on the receiving shard.
    TunnelInput { conn: u64, bytes: Vec<u8> },
}

/// A publisher on this shard of a stream whose hub is on another shard (a republish that
/// landed here): each packet goes, as one shared handle, to the owner over the shard pair's
/// bounded queue (a full queue drops the packet: the owner's readers resume at the next
/// keyframe).
#[derive(Debug)]
pub(crate) struct Forward {
    /// The stream, owned by another shard.
    pub(crate) info: Arc<StreamInfo>,
    /// The publisher's peer, for logs.
    pub(crate) peer: SocketAddr,
    /// The publisher-side counters.
    pub(crate) stats: Cell<HubStats>,
}

impl Forward {
    /// The stream it forwards.
    pub(crate) fn stream(&self) -> u64 {
        self.info.id
    }

    /// Sends one packet of `track` from the publisher to the owner's hub.
    pub(crate) fn forward(
        &self,
        shard: &Shard,
        now: Instant,
        track: usize,
        bytes: &[u8],
        media: Media,
    ) {
        let mut stats = self.stats.get();
        let packet = match media {
            Media::Rtp => Packet::new(track, bytes, false),
            Media::Rtcp => Packet::rtcp(track, bytes),
        };
        let Some(packet) = packet else {
            stats.malformed += 1;
            self.stats.set(stats);
            return;
        };
        if media == Media::Rtp {
            stats.count_in(now, bytes.len());
        }
        let msg = ShardMsg::Ingest { stream: self.info.id, packet: Arc::new(packet) };
        if !shard.try_send(self.info.owner, msg) {
            let drops = stats.remote_drops;
            if drops == 0 {
                tracing::warn!(peer = %self.peer, path = %self.info.path, stream = self.info.id,
                    owner = self.info.owner, side = "upstream",
                    "queue to the owning shard full: publisher packets dropped");
            }
            stats.remote_drops += 1;
        }
        self.stats.set(stats);
    }
}

/// What an upstream packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    /// An RTP packet.
    Rtp,
    /// An RTCP compound packet.
    Rtcp,
}

/// A PLAY waiting for the owner's snapshot.
#[derive(Debug)]
struct Join {
    /// The reader, until the snapshot puts it in the fan-out.
    reader: RefCell<Option<Reader>>,
    stream: u64,
    outcome: Cell<Option<bool>>,
    notify: Notify,
}

/// The shard's task queues: media (writers, ingests, the mesh; the executor's default queue)
/// and RTSP request handling, which the executor preempts for media.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskQueues {
    /// The default queue: where the shard starts, and where writers go.
    pub(crate) media: glommio::TaskQueueHandle,
    /// Connections' reader tasks (requests, and a publisher's interleaved media).
    pub(crate) control: glommio::TaskQueueHandle,
}

/// Everything a shard shares with the process.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<ServeConfig>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) shutdown: Arc<AtomicBool>,
    pub(crate) listen: SocketAddr,
    /// Where RTMP publishers connect (the port resolved), when RTMP is on.
    pub(crate) rtmp_listen: Option<SocketAddr>,
    /// Where RTMPT publishers connect (the port resolved), when RTMPT is on; shard 0 alone
    /// accepts there, so one table holds every tunnel's session.
    pub(crate) rtmpt_listen: Option<SocketAddr>,
    /// The extra RTSP-over-HTTP port (resolved), when asked for.
    pub(crate) http_tunnel_listen: Option<SocketAddr>,
    /// The RTSPS port (resolved) and its TLS config (whose certificate SIGHUP reloads), when
    /// asked for.
    pub(crate) rtsps: Option<(SocketAddr, Arc<manifold_tls::rustls::ServerConfig>)>,
    /// The RTMPS port and its TLS server config (the same certificate as RTSPS), when asked for.
    pub(crate) rtmps: Option<(SocketAddr, Arc<manifold_tls::rustls::ServerConfig>)>,
    /// Every shard's latest metrics snapshot.
    pub(crate) board: Arc<crate::metrics::Board>,
    /// Connection and session limits.
    pub(crate) limits: Arc<crate::limits::Limits>,
    /// Where multicast groups come from, when multicast is on.
    pub(crate) multicast: Option<crate::plane::multicast::MulticastPlan>,
    /// The bearer token of the metrics endpoint, if one is set.
    pub(crate) metrics_token: Option<manifold_access::BearerToken>,
    /// Who may read and publish what, and the secret every shard's nonces are bound to.
    pub(crate) access: (Arc<manifold_access::Policy>, manifold_access::NonceKey),
    /// Readers' demand for on-demand pulls.
    pub(crate) pulls: Arc<crate::registry::Demand>,
    /// Streams whose publisher left, waiting for a republish.
    pub(crate) orphans: Arc<crate::registry::Orphans>,
    /// Open HTTP tunnels, by cookie.
    pub(crate) tunnels: Arc<crate::registry::Tunnels>,
    /// The edges readers are sent to (`--redirect-to`), when this relay is an origin.
    pub(crate) edges: Option<Arc<crate::redirect::Edges>>,
}

/// One shard's state.
#[derive(Debug)]
pub(crate) struct Shard {
    id: usize,
    shards: usize,
    pub(crate) shared: Shared,
    mesh: Senders<ShardMsg>,
    /// By stream (looked up per packet, and per writer wake-up: a cheap hash).
    hubs: RefCell<FxHashMap<u64, Hub>>,
    fanouts: RefCell<FxHashMap<u64, Fanout>>,
    joins: RefCell<HashMap<u64, Rc<Join>>>,
    pub(crate) udp: ServerPorts,
    egress: UdpEgress,
    /// The plane's sends for the packet in hand (reused, never shrinks).
    actions: RefCell<Vec<Egress>>,
    /// The other shards the packet in hand goes to (reused).
    targets: RefCell<Vec<usize>>,
    udp_sources: RefCell<HashMap<SocketAddr, (u64, usize)>>,
    /// Readers' RTCP ports: (stream, reader).
    rtcp_sources: RefCell<HashMap<SocketAddr, (u64, u64)>>,
    /// UDP publishers' RTCP ports: (stream, track).
    rtcp_ingest: RefCell<HashMap<SocketAddr, (u64, usize)>>,
    /// Publishers on this shard of streams owned by another shard, by stream.
    forwards: RefCell<HashMap<u64, Rc<Forward>>>,
    next_id: Cell<u64>,
    conns: RefCell<HashMap<u64, Rc<ConnOut>>>,
    /// The inboxes of the GET halves of HTTP tunnels on this shard, by connection.
    tunnels: RefCell<HashMap<u64, Rc<crate::inbox::Inbox>>>,
    /// Metrics state.
    pub(crate) obs: crate::metrics::ShardObs,
    /// The multicast groups of the streams this shard owns, and their sender.
    groups: RefCell<crate::plane::multicast::MulticastGroups>,
    mcast: crate::egress::MulticastEgress,
    /// Its task queues.
    pub(crate) queues: TaskQueues,
    /// Its access control.
    pub(crate) gate: crate::gate::Gate,
}

impl Shard {
    /// This shard's index.
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// How many shards the relay runs.
    pub(crate) fn shards(&self) -> usize {
        self.shards
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &ServeConfig {
        &self.shared.config
    }

    /// The process-wide stream table.
    pub(crate) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// A number unique on this shard (reader and connection ids).
    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    /// Sends to shard `to` without waiting; false when its queue is full or closed.
    pub(crate) fn try_send(&self, to: usize, msg: ShardMsg) -> bool {
        let packet = matches!(msg, ShardMsg::Packet { .. });
        let sent = self.mesh.try_send_to(to, msg).is_ok();
        if sent && packet {
            self.obs.count_mesh_sent(to);
        }
        sent
    }

    /// Sends to shard `to`, waiting while its queue is full; false when it is closed.
    pub(crate) async fn send_to(&self, to: usize, msg: ShardMsg) -> bool {
        self.mesh.send_to(to, msg).await.is_ok()
    }

    /// Sends to shard `to` from a task of its own (control messages that must not be lost
    /// and must not hold up the caller).
    fn send_later(self: &Rc<Self>, to: usize, msg: ShardMsg) {
        let shard = self.clone();
        spawn_local(async move {
            let _ = shard.mesh.send_to(to, msg).await;
        })
        .detach();
    }

    /// Takes in one packet of `track` of `stream` from its upstream at `now`: through the
    /// stream's hub to the other shards with readers, the stream's multicast group and this
    /// shard's readers. False when this shard has no hub for `stream` (it ended).
    pub(crate) fn ingest(
        &self,
        now: Instant,
        stream: u64,
        track: usize,
        bytes: &[u8],
        media: Media,
    ) -> bool {
        let packet = {
            let mut hubs = self.hubs.borrow_mut();
            let Some(hub) = hubs.get_mut(&stream) else { return false };
            let packet = match media {
                Media::Rtp => hub.handle_rtp(now, track, bytes),
                Media::Rtcp => hub.handle_rtcp(now, track, bytes),
            };
            let Some(packet) = packet else { return true };
            let mut targets = self.targets.borrow_mut();
            hub.forward_targets(self.id, &packet, &mut targets);
            for &to in targets.iter() {
                let queued = self.try_send(to, ShardMsg::Packet { stream, packet: packet.clone() });
                hub.forwarded(to, queued);
            }
            packet
        };
        // Multicast readers, wherever they are: one send to the stream's group.
        let group = self.groups.borrow_mut().destination(stream, &packet);
        if let Some(to) = group {
            self.mcast.send(packet.rtp(), to);
        }
        self.deliver(now, stream, &packet);
        true
    }

    /// Hands a packet of `stream` to this shard's readers at `now` and carries out the sends.
    fn deliver(&self, now: Instant, stream: u64, packet: &SharedPacket) {
        let mut actions = self.actions.borrow_mut();
        {
            let mut fanouts = self.fanouts.borrow_mut();
            let Some(fanout) = fanouts.get_mut(&stream) else { return };
            fanout.deliver(now, packet, &mut actions);
        }
        self.carry_out(&mut actions);
    }

    fn carry_out(&self, actions: &mut Vec<Egress>) {
        for action in actions.drain(..) {
            self.egress.carry_out(&self.udp, &action);
        }
    }

    /// Routes the UDP media of a forwarding publisher's stream (owned by another shard).
    pub(crate) fn add_forward(&self, forward: Rc<Forward>) {
        self.forwards.borrow_mut().insert(forward.stream(), forward);
    }

    /// Stops routing a forwarding publisher's media (it left).
    pub(crate) fn remove_forward(&self, stream: u64) {
        self.forwards.borrow_mut().remove(&stream);
        self.udp_sources.borrow_mut().retain(|_, (s, _)| *s != stream);
        self.rtcp_ingest.borrow_mut().retain(|_, (s, _)| *s != stream);
    }

    /// Takes in a publisher's packet of `track` of `stream` (interleaved on its connection, or
    /// on a server port) at `now`: into the hub on this shard, or forwarded to the owner.
    pub(crate) fn ingest_publisher(
        &self,
        now: Instant,
        stream: u64,
        track: usize,
        bytes: &[u8],
        media: Media,
    ) {
        if self.ingest(now, stream, track, bytes, media) {
            return;
        }
        let forward = self.forwards.borrow().get(&stream).cloned();
        if let Some(f) = forward {
            f.forward(self, now, track, bytes, media);
        }
    }

    /// Counts a multicast reader of `stream` (owned by `owner`) in (`delta` 1) or out (-1):
    /// the owner sends the stream to `group` while the count is above zero.
    pub(crate) fn multicast_readers(
        self: &Rc<Self>,
        stream: u64,
        owner: usize,
        group: std::net::SocketAddrV4,
        delta: i64,
    ) {
        if owner != self.id {
            self.send_later(owner, ShardMsg::Multicast { stream, group, delta });
            return;
        }
        let Some(plan) = &self.shared.multicast else { return };
        if let Err(e) = self.mcast.open(plan.ttl(), self.shared.listen.ip()) {
            tracing::warn!(stream, %group, error = %e, "multicast socket unavailable");
            return;
        }
        self.groups.borrow_mut().adjust(stream, group, delta);
    }

    /// Registers the hub of a stream this shard owns.
    pub(crate) fn add_hub(&self, hub: Hub) {
        self.hubs.borrow_mut().insert(hub.info().id, hub);
    }

    /// Whether this shard owns the hub of `stream`.
    pub(crate) fn has_hub(&self, stream: u64) -> bool {
        self.hubs.borrow().contains_key(&stream)
    }

    /// The stream of `stream`'s hub, if this shard owns it.
    pub(crate) fn hub_info(&self, stream: u64) -> Option<Arc<StreamInfo>> {
        self.hubs.borrow().get(&stream).map(|h| h.info().clone())
    }

    /// The upstream counters of `stream`'s hub, if this shard owns it.
    pub(crate) fn hub_stats(&self, stream: u64) -> Option<HubStats> {
        self.hubs.borrow().get(&stream).map(Hub::stats)
    }

    /// The report blocks of a receiver report to `stream`'s upstream at `now`, by track (none
    /// when this shard does not own the stream's hub).
    pub(crate) fn upstream_report_blocks(
        &self,
        stream: u64,
        now: Instant,
    ) -> Vec<(usize, manifold_rtp::rtcp::ReportBlock)> {
        self.hubs
            .borrow_mut()
            .get_mut(&stream)
            .map_or_else(Vec::new, |h| h.upstream_report_blocks(now))
    }

    /// The upstream of `stream` reconnected (or was republished): its hub rebases the
    /// outgoing stream. False when this shard has no such hub.
    pub(crate) fn upstream_restarted(&self, stream: u64) -> bool {
        self.hubs.borrow_mut().get_mut(&stream).map(Hub::upstream_restarted).is_some()
    }

    /// Whether `stream` (owned here) has readers on any shard.
    pub(crate) fn has_readers(&self, stream: u64) -> bool {
        self.has_fanout(stream)
            || self.hubs.borrow().get(&stream).is_some_and(|h| !h.subscribed_shards().is_empty())
    }

    /// RTSP connections open on this shard.
    pub(crate) fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// Closes the publisher of `stream` (owned by `owner`): another publisher took its path.
    pub(crate) fn evict(self: &Rc<Self>, stream: u64, owner: usize) {
        if owner != self.id {
            self.send_later(owner, ShardMsg::Evict { stream });
            return;
        }
        let upstream = self.obs.upstream(stream);
        let conn = upstream.as_ref().and_then(|u| u.conn).and_then(|c| self.conn(c));
        match conn {
            Some(conn) => {
                tracing::info!(peer = ?upstream.and_then(|u| u.peer), stream, side = "upstream",
                    "publisher replaced: closing it");
                conn.close();
            }
            // No connection to close (e.g. a built-in source): end the stream itself.
            None => self.end_stream(stream),
        }
    }

    /// Whether this shard has readers of `stream`.
    pub(crate) fn has_fanout(&self, stream: u64) -> bool {
        self.fanouts.borrow().contains_key(&stream)
    }

    /// Adds `reader` to this shard's readers of `stream`.
    fn add_reader(&self, stream: u64, reader: Reader) {
        self.fanouts.borrow_mut().entry(stream).or_default().add(reader);
    }

    /// Reads reader `id` of `stream`, if it is still here.
    pub(crate) fn with_reader<T>(
        &self,
        stream: u64,
        id: u64,
        f: impl FnOnce(&Reader) -> T,
    ) -> Option<T> {
        self.fanouts.borrow().get(&stream).and_then(|fo| fo.get(id)).map(f)
    }

    /// Hands the writer of TCP reader `id` of `stream` up to `max_bytes` and `max_frames`
    /// frames of its queue at `now` (the drain contract of [`Fanout`]); returns the bytes.
    pub(crate) fn drain_reader(
        &self,
        now: Instant,
        (stream, id): (u64, u64),
        max_bytes: usize,
        max_frames: usize,
        out: &mut Vec<TcpFrame>,
    ) -> usize {
        let mut fanouts = self.fanouts.borrow_mut();
        fanouts.get_mut(&stream).map_or(0, |f| f.drain(now, id, max_bytes, max_frames, out))
    }

    /// Stops sending `track` to reader `id` of `stream` (a TEARDOWN of the track while
    /// playing); returns whether it was being sent.
    pub(crate) fn tear_down_track(&self, stream: u64, id: u64, track: usize) -> bool {
        let mut fanouts = self.fanouts.borrow_mut();
        fanouts.get_mut(&stream).is_some_and(|f| f.tear_down_track(id, track))
    }

    /// An interleaved RTCP packet at `now` from reader `id` of `stream`, on `channel`:
    /// liveness and loss/jitter feedback.
    pub(crate) fn reader_rtcp_interleaved(
        &self,
        now: Instant,
        (stream, id): (u64, u64),
        channel: u8,
        bytes: &[u8],
    ) {
        let mut fanouts = self.fanouts.borrow_mut();
        let Some(r) = fanouts.get_mut(&stream).and_then(|f| f.get_mut(id)) else { return };
        let track = r.track_of_rtcp_channel(channel);
        if r.absorb_rtcp(now, track, bytes) {
            self.obs.rtcp_reports.set(self.obs.rtcp_reports.get() + 1);
        }
    }

    /// Closes the connections of readers whose writers left their packets waiting for the
    /// stall limit or longer at `now` (they read nothing; the others are not held up).
    pub(crate) fn close_stalled(&self, now: Instant) {
        let limit = self.config().reader_stall();
        let mut stalled = Vec::new();
        for f in self.fanouts.borrow().values() {
            f.stalled(now, limit, &mut stalled);
        }
        for (reader, conn) in stalled {
            if let Some(out) = self.conn(conn) {
                if !out.closed.get() {
                    tracing::info!(peer = %out.peer, reader, side = "downstream",
                        stall_secs = limit.as_secs(), "reader stalled: closing its connection");
                    out.close();
                }
            }
        }
    }

    /// The upstream of `stream` (owned here) is gone: unpublish, tell the other shards, close
    /// local readers.
    pub(crate) fn end_stream(self: &Rc<Self>, stream: u64) {
        let Some(hub) = self.hubs.borrow_mut().remove(&stream) else { return };
        let info = hub.info();
        self.registry().remove(&info.path, info.id);
        self.udp_sources.borrow_mut().retain(|_, (s, _)| *s != info.id);
        self.rtcp_ingest.borrow_mut().retain(|_, (s, _)| *s != info.id);
        for to in hub.subscribed_shards() {
            if to != self.id {
                self.send_later(to, ShardMsg::Ended { stream });
            }
        }
        self.close_fanout(info.id);
        self.obs.forget(info.id);
        self.groups.borrow_mut().forget(info.id);
        tracing::info!(path = %info.path, stream = info.id, "stream ended");
    }

    fn close_fanout(&self, stream: u64) {
        let fanout = self.fanouts.borrow_mut().remove(&stream);
        self.obs.forget(stream);
        if let Some(f) = fanout {
            for r in f.readers() {
                tracing::info!(peer = %r.peer, session = %r.session, path = %r.path,
                    "closing reader: stream ended");
                self.send_byes(&f, r.id, None, "stream ended");
                if let Some(conn) = self.conn(r.conn) {
                    conn.close();
                }
            }
        }
    }

    /// Routes RTCP from `source` to track `track` of `stream` (a UDP publisher's RTCP port).
    pub(crate) fn add_rtcp_source(&self, source: SocketAddr, stream: u64, track: usize) {
        self.rtcp_ingest.borrow_mut().insert(source, (stream, track));
    }

    /// Routes UDP datagrams from `source` to track `track` of `stream` (a UDP publisher).
    pub(crate) fn add_udp_source(&self, source: SocketAddr, stream: u64, track: usize) {
        self.udp_sources.borrow_mut().insert(source, (stream, track));
    }

    /// Adds `reader` to `stream` (owned by shard `owner`) starting at the cached GOP (when
    /// `gop`; else at the next keyframe), which is queued in the reader before this returns.
    /// Returns false when the stream is gone.
    pub(crate) async fn join(
        self: &Rc<Self>,
        stream: u64,
        owner: usize,
        mut reader: Reader,
        gop: bool,
    ) -> bool {
        let id = reader.id;
        if owner == self.id {
            let Some(snapshot) = self.hubs.borrow().get(&stream).map(Hub::snapshot) else {
                return false;
            };
            if gop {
                reader.preload(Instant::now(), &snapshot);
            }
            self.add_reader(stream, reader);
            return true;
        }
        let join = Rc::new(Join {
            reader: RefCell::new(Some(reader)),
            stream,
            outcome: Cell::new(None),
            notify: Notify::default(),
        });
        self.joins.borrow_mut().insert(id, join.clone());
        let msg = ShardMsg::Subscribe { stream, from: self.id, reader: id, gop };
        if self.mesh.send_to(owner, msg).await.is_err() {
            self.joins.borrow_mut().remove(&id);
            return false;
        }
        let waited = timer::timeout(JOIN_TIMEOUT, async {
            join.notify.wait().await;
            Ok(())
        })
        .await;
        self.joins.borrow_mut().remove(&id);
        waited.is_ok() && join.outcome.get() == Some(true)
    }

    /// Starts sending to joined reader `id` of `stream`, whose PLAY was answered. A TCP
    /// reader's writer is woken; a UDP reader is switched to the fan-out's batched sends once
    /// its queue holds its starting keyframe (until then packets keep queueing and skipping).
    pub(crate) fn go_live(self: &Rc<Self>, stream: u64, id: u64) {
        let Some((group, rtcp_from)) = self.with_reader(stream, id, |r| {
            let rtcp_from: Vec<SocketAddr> = r
                .tracks
                .iter()
                .flatten()
                .filter_map(|t| match t {
                    ReaderTrack::Udp { rtcp: Some(from), .. } => Some(*from),
                    _ => None,
                })
                .collect();
            (r.multicast_group(), rtcp_from)
        }) else {
            return;
        };
        if let Some(group) = group {
            let path = self.with_reader(stream, id, |r| r.path.clone()).unwrap_or_default();
            let owner = self.registry().lookup(&path).filter(|s| s.id == stream);
            if let Some(owner) = owner.map(|s| s.owner) {
                self.multicast_readers(stream, owner, group, 1);
            }
        }
        for from in rtcp_from {
            self.rtcp_sources.borrow_mut().insert(from, (stream, id));
        }
        let mut actions = self.actions.borrow_mut();
        if let Some(f) = self.fanouts.borrow_mut().get_mut(&stream) {
            f.release(Instant::now(), id, &mut actions);
        }
        self.carry_out(&mut actions);
    }

    /// Sends reader `id` of `stream` an RTCP BYE (an empty RR and a BYE) for `track`, or for
    /// each of its tracks: on the RTCP channel of its connection, or to its RTCP port from the
    /// shard's RTCP socket.
    pub(crate) fn send_bye(&self, stream: u64, id: u64, track: Option<usize>, reason: &str) {
        if let Some(fanout) = self.fanouts.borrow().get(&stream) {
            self.send_byes(fanout, id, track, reason);
        }
    }

    fn send_byes(&self, fanout: &Fanout, id: u64, track: Option<usize>, reason: &str) {
        let Some(conn_id) = fanout.get(id).map(|r| r.conn) else { return };
        for bye in fanout.byes(id, track, reason) {
            match bye.track {
                ReaderTrack::Tcp { channel } => {
                    let Some(conn) = self.conn(conn_id) else { continue };
                    let mut frame = Vec::with_capacity(4 + bye.rtcp.len());
                    let len = u16::try_from(bye.rtcp.len()).unwrap_or(0);
                    frame.extend_from_slice(&manifold_rtsp::codec::interleaved_header(
                        manifold_rtsp::ChannelId(channel.saturating_add(1)),
                        len,
                    ));
                    frame.extend_from_slice(&bye.rtcp);
                    conn.send_control(&frame);
                }
                ReaderTrack::Udp { rtcp: Some(to), .. } => {
                    self.egress.send_rtcp(&self.udp, &bye.rtcp, to);
                }
                ReaderTrack::Udp { rtcp: None, .. } | ReaderTrack::Multicast { .. } => {}
            }
        }
    }

    /// Removes a reader from `stream` (owned by `owner`); the last one on a non-owner shard
    /// unsubscribes it from the owner.
    pub(crate) fn leave(self: &Rc<Self>, stream: u64, owner: usize, reader: u64) {
        self.rtcp_sources.borrow_mut().retain(|_, (s, r)| (*s, *r) != (stream, reader));
        let group = self.with_reader(stream, reader, Reader::multicast_group).flatten();
        if let Some(group) = group {
            self.multicast_readers(stream, owner, group, -1);
        }
        let retired = {
            let mut fanouts = self.fanouts.borrow_mut();
            let Some(f) = fanouts.get_mut(&stream) else { return };
            if !f.remove(reader) {
                return;
            }
            fanouts.remove(&stream).map(|f| f.retired()).unwrap_or_default()
        };
        self.obs.retire_fanout(stream, retired);
        if owner != self.id {
            self.send_later(owner, ShardMsg::Unsubscribe { stream, from: self.id });
        }
    }

    /// Remembers a connection, to close it at shutdown and to reach it by id.
    pub(crate) fn add_conn(&self, out: Rc<ConnOut>) {
        self.conns.borrow_mut().insert(out.id, out);
    }

    /// Forgets a closed connection.
    pub(crate) fn remove_conn(&self, id: u64) {
        self.conns.borrow_mut().remove(&id);
    }

    /// Routes tunnel input for connection `conn` (a tunnel's GET half) to `inbox`.
    pub(crate) fn add_tunnel(&self, conn: u64, inbox: Rc<crate::inbox::Inbox>) {
        self.tunnels.borrow_mut().insert(conn, inbox);
    }

    /// Stops routing tunnel input to connection `conn`.
    pub(crate) fn remove_tunnel(&self, conn: u64) {
        self.tunnels.borrow_mut().remove(&conn);
    }

    /// Bytes a tunnel's POST half decoded, for the GET half `conn` on this shard; false when
    /// it is gone or its inbox overflowed (the tunnel then closes).
    pub(crate) fn tunnel_input(&self, conn: u64, bytes: &[u8]) -> bool {
        let inbox = self.tunnels.borrow().get(&conn).cloned();
        inbox.is_some_and(|i| i.push(bytes))
    }

    /// Connection `id`, while it is open.
    fn conn(&self, id: u64) -> Option<Rc<ConnOut>> {
        self.conns.borrow().get(&id).cloned()
    }

    /// A reader's RTCP from UDP `from` at `now`: liveness and loss/jitter feedback. False
    /// when `from` is no reader's RTCP port.
    fn reader_rtcp(&self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        let Some((stream, id)) = self.rtcp_sources.borrow().get(&from).copied() else {
            return false;
        };
        let mut fanouts = self.fanouts.borrow_mut();
        let Some(r) = fanouts.get_mut(&stream).and_then(|f| f.get_mut(id)) else { return false };
        let track = r.track_of_rtcp_source(from);
        if r.absorb_rtcp(now, track, bytes) {
            self.obs.rtcp_reports.set(self.obs.rtcp_reports.get() + 1);
        }
        true
    }

    /// The hubs this shard owns: each stream and its upstream counters.
    fn hub_views(&self) -> Vec<(Arc<StreamInfo>, HubStats)> {
        self.hubs.borrow().values().map(|h| (h.info().clone(), h.stats())).collect()
    }

    /// Reads the fan-outs of the streams this shard has readers of, by stream.
    fn with_fanouts<T>(&self, f: impl FnOnce(&FxHashMap<u64, Fanout>) -> T) -> T {
        f(&self.fanouts.borrow())
    }
}
