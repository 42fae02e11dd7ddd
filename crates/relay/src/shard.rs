//! A shard: one glommio executor pinned to one core, with its own RTSP listener (same port on
//! every shard, `SO_REUSEPORT`), its own RTP/RTCP server ports, the hubs of the streams whose
//! upstream it owns, and the fan-outs of the streams its readers play.
//!
//! Shards talk through a full mesh of bounded single-producer queues (one per shard pair,
//! glommio's `channel_mesh`): packets for readers, and the subscribe/snapshot handshake a
//! reader's PLAY does with the stream's owner.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{spawn_local, timer};
use manifold_udp::{MmsgSender, RawAddr};

use crate::config::ServeConfig;
use crate::egress::{ConnOut, Fanout, Reader, ReaderTrack};
use crate::hub::Hub;
use crate::notify::Notify;
use crate::packet::SharedPacket;
use crate::registry::Registry;
use crate::udp::ServerPorts;

/// How often a shard looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// How long a PLAY waits for the owning shard's snapshot.
const JOIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Datagrams per `sendmmsg`.
const MMSG_BATCH: usize = 256;

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
}

/// A PLAY waiting for the owner's snapshot.
#[derive(Debug)]
struct Join {
    reader: Rc<Reader>,
    stream: u64,
    outcome: Cell<Option<bool>>,
    notify: Notify,
}

/// Everything a shard shares with the process.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<ServeConfig>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) shutdown: Arc<AtomicBool>,
    pub(crate) listen: SocketAddr,
    /// Every shard's latest metrics snapshot.
    pub(crate) board: Arc<crate::metrics::Board>,
    /// Connection and session limits.
    pub(crate) limits: Arc<crate::limits::Limits>,
    /// Where multicast groups come from, when multicast is on.
    pub(crate) multicast: Option<crate::multicast::MulticastPlan>,
    /// Readers' demand for on-demand pulls.
    pub(crate) pulls: Arc<crate::pull::Demand>,
    /// Streams whose publisher left, waiting for a republish.
    pub(crate) orphans: Arc<crate::republish::Orphans>,
}

/// One shard's state.
#[derive(Debug)]
pub(crate) struct Shard {
    id: usize,
    shards: usize,
    pub(crate) shared: Shared,
    mesh: Senders<ShardMsg>,
    hubs: RefCell<HashMap<u64, Rc<Hub>>>,
    fanouts: RefCell<HashMap<u64, Rc<Fanout>>>,
    joins: RefCell<HashMap<u64, Rc<Join>>>,
    pub(crate) udp: ServerPorts,
    udp_sources: RefCell<HashMap<SocketAddr, (u64, usize)>>,
    rtcp_sources: RefCell<HashMap<SocketAddr, Weak<Reader>>>,
    /// UDP publishers' RTCP ports: (stream, track).
    rtcp_ingest: RefCell<HashMap<SocketAddr, (u64, usize)>>,
    /// Publishers on this shard of streams owned by another shard, by stream.
    forwards: RefCell<HashMap<u64, Rc<crate::republish::Forward>>>,
    mmsg: RefCell<MmsgSender>,
    /// Whether the kernel does UDP GSO on the server-port socket.
    gso: bool,
    next_id: Cell<u64>,
    conns: RefCell<HashMap<u64, Rc<ConnOut>>>,
    udp_drops: Cell<u64>,
    /// Metrics state.
    pub(crate) obs: crate::metrics::ShardObs,
    /// Multicast sends of the streams this shard owns.
    pub(crate) mcast: crate::multicast::ShardMulticast,
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
            self.obs.mesh_sent(to);
        }
        sent
    }

    /// Sends to shard `to`, waiting while its queue is full; false when it is closed.
    pub(crate) async fn send_to(&self, to: usize, msg: ShardMsg) -> bool {
        self.mesh.send_to(to, msg).await.is_ok()
    }

    /// Routes the UDP media of a forwarding publisher's stream (owned by another shard).
    pub(crate) fn add_forward(&self, forward: Rc<crate::republish::Forward>) {
        self.forwards.borrow_mut().insert(forward.stream(), forward);
    }

    /// Stops routing a forwarding publisher's media (it left).
    pub(crate) fn remove_forward(&self, stream: u64) {
        self.forwards.borrow_mut().remove(&stream);
        self.udp_sources.borrow_mut().retain(|_, (s, _)| *s != stream);
        self.rtcp_ingest.borrow_mut().retain(|_, (s, _)| *s != stream);
    }

    /// Takes in a publisher's RTP (or `rtcp`) packet of `track` of `stream` that arrived on
    /// a server port: into the hub on this shard, or forwarded to the owner.
    fn ingest_udp(&self, stream: u64, track: usize, bytes: &[u8], rtcp: bool) {
        if let Some(hub) = self.hub(stream) {
            if rtcp {
                hub.ingest_rtcp(self, track, bytes);
            } else {
                hub.ingest(self, track, bytes);
            }
            return;
        }
        let forward = self.forwards.borrow().get(&stream).cloned();
        if let Some(f) = forward {
            let upstream = crate::republish::Upstream::Forward(f);
            if rtcp {
                upstream.ingest_rtcp(self, track, bytes);
            } else {
                upstream.ingest(self, track, bytes);
            }
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
            let shard = self.clone();
            spawn_local(async move {
                let msg = ShardMsg::Multicast { stream, group, delta };
                let _ = shard.mesh.send_to(owner, msg).await;
            })
            .detach();
            return;
        }
        let Some(plan) = &self.shared.multicast else { return };
        if let Err(e) = self.mcast.adjust(stream, group, delta, plan, self.shared.listen.ip()) {
            tracing::warn!(stream, %group, error = %e, "multicast egress unavailable");
        }
    }

    /// The hubs of the streams this shard owns.
    pub(crate) fn hubs(&self) -> Vec<Rc<Hub>> {
        self.hubs.borrow().values().cloned().collect()
    }

    /// The fan-outs of the streams this shard has readers of, by stream.
    pub(crate) fn fanouts(&self) -> Vec<(u64, Rc<Fanout>)> {
        self.fanouts.borrow().iter().map(|(id, f)| (*id, f.clone())).collect()
    }

    /// RTSP connections open on this shard.
    pub(crate) fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// UDP datagrams to readers the kernel refused so far.
    pub(crate) fn udp_drops(&self) -> u64 {
        self.udp_drops.get()
    }

    /// Closes the publisher of `stream` (owned by `owner`): another publisher took its path.
    pub(crate) fn evict(self: &Rc<Self>, stream: u64, owner: usize) {
        if owner != self.id {
            let shard = self.clone();
            spawn_local(async move {
                let _ = shard.mesh.send_to(owner, ShardMsg::Evict { stream }).await;
            })
            .detach();
            return;
        }
        match self.obs.upstream(stream) {
            Some(crate::metrics::Upstream { conn: Some(conn), peer, .. }) => {
                tracing::info!(?peer, stream, side = "upstream", "publisher replaced: closing it");
                conn.close();
            }
            _ => {
                // No connection to close (e.g. a built-in source): end the stream itself.
                if let Some(hub) = self.hub(stream) {
                    self.end_stream(&hub);
                }
            }
        }
    }

    /// The readers of `stream` on this shard, if any.
    pub(crate) fn fanout(&self, stream: u64) -> Option<Rc<Fanout>> {
        self.fanouts.borrow().get(&stream).cloned()
    }

    fn fanout_or_new(&self, stream: u64) -> Rc<Fanout> {
        self.fanouts.borrow_mut().entry(stream).or_insert_with(|| Rc::new(Fanout::new())).clone()
    }

    /// Registers the hub of a stream this shard owns.
    pub(crate) fn add_hub(&self, hub: Rc<Hub>) {
        self.hubs.borrow_mut().insert(hub.info().id, hub);
    }

    /// The hub of `stream`, if this shard owns it.
    pub(crate) fn hub(&self, stream: u64) -> Option<Rc<Hub>> {
        self.hubs.borrow().get(&stream).cloned()
    }

    /// The upstream of `hub` is gone: unpublish, tell the other shards, close local readers.
    pub(crate) fn end_stream(self: &Rc<Self>, hub: &Hub) {
        let info = hub.info();
        self.registry().remove(&info.path, info.id);
        self.hubs.borrow_mut().remove(&info.id);
        self.udp_sources.borrow_mut().retain(|_, (s, _)| *s != info.id);
        self.rtcp_ingest.borrow_mut().retain(|_, (s, _)| *s != info.id);
        for to in hub.subscribed_shards() {
            if to != self.id {
                let shard = self.clone();
                let stream = info.id;
                spawn_local(async move {
                    let _ = shard.mesh.send_to(to, ShardMsg::Ended { stream }).await;
                })
                .detach();
            }
        }
        self.close_fanout(info.id);
        self.obs.forget(info.id);
        self.mcast.forget(info.id);
        tracing::info!(path = %info.path, stream = info.id, "stream ended");
    }

    fn close_fanout(&self, stream: u64) {
        let fanout = self.fanouts.borrow_mut().remove(&stream);
        self.obs.forget(stream);
        if let Some(f) = fanout {
            for r in f.readers() {
                tracing::info!(peer = %r.out.peer, session = %r.session, path = %r.path,
                    "closing reader: stream ended");
                self.send_bye_with(&f, &r, "stream ended");
                r.out.close();
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

    /// Sends one RTP packet to many UDP readers with one `sendmmsg` per batch.
    pub(crate) fn send_udp_many(&self, payload: &[u8], dests: &[RawAddr]) {
        let iov = [IoSlice::new(payload)];
        match self.mmsg.borrow_mut().send_to_many(&self.udp.rtp_send, &iov, dests) {
            Ok(sent) => {
                let lost = dests.len() - sent.sent;
                if lost > 0 {
                    self.udp_drops.set(self.udp_drops.get() + lost as u64);
                }
            }
            Err(e) => {
                self.udp_drops.set(self.udp_drops.get() + dests.len() as u64);
                tracing::debug!(error = %e, side = "downstream", "UDP send failed");
            }
        }
    }

    /// Sends one frame's packets to many UDP readers: GSO-able runs as one `UDP_SEGMENT` send
    /// per reader, batched across readers; other packets one `sendmmsg` per packet.
    pub(crate) fn send_udp_frame(&self, frame: &[SharedPacket], dests: &[RawAddr]) {
        let segments: Vec<IoSlice<'_>> = frame.iter().map(|p| IoSlice::new(p.rtp())).collect();
        let max = if dests.first().is_some_and(RawAddr::is_ipv6) {
            manifold_udp::GSO_MAX_BYTES_V6
        } else {
            manifold_udp::GSO_MAX_BYTES_V4
        };
        for run in manifold_udp::gso_runs(&segments, max) {
            let part = &segments[run.range.clone()];
            if self.gso && part.len() > 1 && run.segment_size.is_some() {
                match self.mmsg.borrow_mut().send_gso_to_many(&self.udp.rtp_send, part, dests) {
                    Ok(sent) => {
                        let lost = (dests.len() - sent.sent) * part.len();
                        self.udp_drops.set(self.udp_drops.get() + lost as u64);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, side = "downstream", "UDP GSO send failed");
                        self.udp_drops
                            .set(self.udp_drops.get() + (dests.len() * part.len()) as u64);
                    }
                }
            } else {
                for s in part {
                    self.send_udp_many(s, dests);
                }
            }
        }
    }

    /// Sends one RTCP packet to a UDP reader's RTCP port, from the shard's RTCP port.
    pub(crate) fn send_rtcp(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.udp.rtcp_send.send_to(bytes, to) {
            tracing::debug!(error = %e, dest = %to, side = "downstream", "RTCP send failed");
        }
    }

    /// Sends one RTP packet to one UDP reader.
    pub(crate) fn send_udp(&self, payload: &[u8], dest: &RawAddr) {
        if let Err(e) = manifold_udp::send_to(&self.udp.rtp_send, payload, dest) {
            self.udp_drops.set(self.udp_drops.get() + 1);
            tracing::debug!(error = %e, dest = %dest, side = "downstream", "UDP send failed");
        }
    }

    /// Adds `reader` to `stream` (owned by shard `owner`) starting at the cached GOP (when
    /// `gop`; else at the next keyframe), which is queued in the reader before this returns.
    /// Returns false when the stream is gone.
    pub(crate) async fn join(
        self: &Rc<Self>,
        stream: u64,
        owner: usize,
        reader: Rc<Reader>,
        gop: bool,
    ) -> bool {
        if owner == self.id {
            let Some(hub) = self.hub(stream) else { return false };
            if gop {
                reader.preload(&hub.snapshot());
            }
            self.fanout_or_new(stream).add(reader);
            return true;
        }
        let join = Rc::new(Join {
            reader: reader.clone(),
            stream,
            outcome: Cell::new(None),
            notify: Notify::default(),
        });
        self.joins.borrow_mut().insert(reader.id, join.clone());
        let msg = ShardMsg::Subscribe { stream, from: self.id, reader: reader.id, gop };
        if self.mesh.send_to(owner, msg).await.is_err() {
            self.joins.borrow_mut().remove(&reader.id);
            return false;
        }
        let waited = timer::timeout(JOIN_TIMEOUT, async {
            join.notify.wait().await;
            Ok(())
        })
        .await;
        self.joins.borrow_mut().remove(&reader.id);
        waited.is_ok() && join.outcome.get() == Some(true)
    }

    /// Starts sending to a joined reader whose PLAY was answered. A TCP reader's writer is
    /// woken; a UDP reader is switched to the fan-out's batched sends once its queue holds
    /// its starting keyframe (until then packets keep queueing and skipping).
    pub(crate) fn go_live(self: &Rc<Self>, stream: u64, reader: &Rc<Reader>) {
        reader.released.set(true);
        if let Some(group) = reader.multicast_group() {
            let owner = self.registry().lookup(&reader.path).filter(|s| s.id == stream);
            if let Some(owner) = owner.map(|s| s.owner) {
                self.multicast_readers(stream, owner, group, 1);
            }
        }
        for t in reader.tracks.iter().flatten() {
            if let ReaderTrack::Udp { rtcp: Some(from), .. } = t {
                self.rtcp_sources.borrow_mut().insert(*from, Rc::downgrade(reader));
            }
        }
        if !reader.is_udp() {
            reader.live.set(true);
            reader.out.notify.notify();
            return;
        }
        if reader.queue.borrow().started() {
            if let Some(f) = self.fanout(stream) {
                self.activate_udp(&f, reader);
            }
        }
    }

    /// Sends a released UDP reader what it queued (from its keyframe on) and moves it to the
    /// fan-out's batched sends.
    pub(crate) fn activate_udp(&self, fanout: &Fanout, reader: &Rc<Reader>) {
        let mut q = reader.queue.borrow_mut();
        while let Some(p) = q.pop() {
            // Packets of the frame the fan-out is collecting reach the reader with it.
            if fanout.holds(&p) {
                continue;
            }
            match reader.track(p.track()) {
                Some(ReaderTrack::Udp { rtcp: Some(to), .. }) if p.is_rtcp() => {
                    self.send_rtcp(p.rtp(), to);
                }
                Some(ReaderTrack::Udp { rtp, .. }) if !p.is_rtcp() => {
                    self.send_udp(p.rtp(), &rtp);
                    reader.obs.count(p.len());
                }
                _ => {}
            }
        }
        drop(q);
        reader.obs.join_batches(fanout);
        reader.live.set(true);
        fanout.rebuild_udp();
    }

    /// Sends a reader an RTCP BYE (an empty RR and a BYE) for each of its tracks: on the
    /// RTCP channel of its connection, or to its RTCP port from the shard's RTCP socket.
    pub(crate) fn send_bye(&self, stream: u64, reader: &Reader, reason: &str) {
        if let Some(fanout) = self.fanout(stream) {
            self.send_bye_with(&fanout, reader, reason);
        }
    }

    /// Sends a reader an RTCP BYE for one track (a TEARDOWN of that track while playing).
    pub(crate) fn send_track_bye(&self, stream: u64, reader: &Reader, track: usize, reason: &str) {
        if let Some(fanout) = self.fanout(stream) {
            self.send_bye_tracks(&fanout, reader, track..track + 1, reason);
        }
    }

    fn send_bye_with(&self, fanout: &Fanout, reader: &Reader, reason: &str) {
        self.send_bye_tracks(fanout, reader, 0..reader.tracks.len(), reason);
    }

    fn send_bye_tracks(
        &self,
        fanout: &Fanout,
        reader: &Reader,
        tracks: std::ops::Range<usize>,
        reason: &str,
    ) {
        for track in tracks {
            let (Some(t), Some(ssrc)) = (reader.track(track), fanout.ssrc(track)) else {
                continue;
            };
            let mut buf = [0u8; 128];
            let mut w = manifold_rtp::rtcp::Writer::new(&mut buf);
            let ssrc = manifold_rtp::Ssrc(ssrc);
            if w.receiver_report(ssrc, &[]).is_err()
                || w.bye(&[ssrc], Some(reason.as_bytes())).is_err()
            {
                continue;
            }
            let bytes = w.written();
            match t {
                ReaderTrack::Tcp { channel } => {
                    let mut frame = Vec::with_capacity(4 + bytes.len());
                    let len = u16::try_from(bytes.len()).unwrap_or(0);
                    frame.extend_from_slice(&manifold_rtsp::codec::interleaved_header(
                        manifold_rtsp::ChannelId(channel.saturating_add(1)),
                        len,
                    ));
                    frame.extend_from_slice(bytes);
                    reader.out.send_control(&frame);
                }
                ReaderTrack::Udp { rtcp: Some(to), .. } => {
                    if let Err(e) = self.udp.rtcp_send.send_to(bytes, to) {
                        tracing::debug!(error = %e, dest = %to, "RTCP BYE not sent");
                    }
                }
                ReaderTrack::Udp { rtcp: None, .. } | ReaderTrack::Multicast { .. } => {}
            }
        }
    }

    /// Removes a reader from `stream` (owned by `owner`); the last one on a non-owner shard
    /// unsubscribes it from the owner.
    pub(crate) fn leave(self: &Rc<Self>, stream: u64, owner: usize, reader: u64) {
        self.rtcp_sources.borrow_mut().retain(|_, r| r.upgrade().is_some_and(|r| r.id != reader));
        let Some(f) = self.fanout(stream) else { return };
        let group = f.readers().iter().find(|r| r.id == reader).and_then(|r| r.multicast_group());
        if let Some(group) = group {
            self.multicast_readers(stream, owner, group, -1);
        }
        if f.remove(reader) {
            self.fanouts.borrow_mut().remove(&stream);
            self.obs.retire_fanout(stream, &f);
            if owner == self.id {
                return;
            }
            let shard = self.clone();
            spawn_local(async move {
                let _ = shard
                    .mesh
                    .send_to(owner, ShardMsg::Unsubscribe { stream, from: shard.id })
                    .await;
            })
            .detach();
        }
    }

    /// Remembers a connection, to close it at shutdown.
    pub(crate) fn add_conn(&self, id: u64, out: Rc<ConnOut>) {
        self.conns.borrow_mut().insert(id, out);
    }

    /// Forgets a closed connection.
    pub(crate) fn remove_conn(&self, id: u64) {
        self.conns.borrow_mut().remove(&id);
    }

    /// Answers shard `to`'s subscription for its reader with a snapshot of the GOP. The
    /// snapshot is taken and queued in one step (retrying while the queue is full), so the
    /// live packets that follow it in the queue continue it without a gap; and the receive
    /// loops never wait on a queue, so two shards flooding each other cannot deadlock.
    async fn answer_subscribe(self: Rc<Self>, stream: u64, to: usize, reader: u64, gop: bool) {
        let give_up = std::time::Instant::now() + JOIN_TIMEOUT;
        loop {
            let hub = self.hub(stream);
            let packets = hub.as_ref().map(|h| if gop { h.snapshot() } else { Vec::new() });
            match self.mesh.try_send_to(to, ShardMsg::Snapshot { stream, reader, packets }) {
                Ok(()) => {
                    if let Some(h) = hub {
                        h.set_subscribed(to, true);
                    }
                    return;
                }
                Err(_) if std::time::Instant::now() < give_up => {
                    timer::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => return,
            }
        }
    }

    fn handle_msg(self: &Rc<Self>, from: usize, msg: ShardMsg) {
        match msg {
            ShardMsg::Packet { stream, packet } => {
                self.obs.mesh_received(from);
                if let Some(f) = self.fanout(stream) {
                    f.deliver(self, &packet);
                }
            }
            ShardMsg::Subscribe { stream, from: to, reader, gop } => {
                spawn_local(self.clone().answer_subscribe(stream, to, reader, gop)).detach();
            }
            ShardMsg::Snapshot { stream, reader, packets } => {
                let join = self.joins.borrow_mut().remove(&reader);
                match (join, packets) {
                    (Some(join), Some(packets)) if join.stream == stream => {
                        join.reader.preload(&packets);
                        self.fanout_or_new(stream).add(join.reader.clone());
                        join.outcome.set(Some(true));
                        join.notify.notify();
                    }
                    (Some(join), _) => {
                        join.outcome.set(Some(false));
                        join.notify.notify();
                    }
                    // The PLAY gave up waiting; if this shard has no readers of the stream,
                    // tell the owner so it stops sending.
                    (None, _) => {
                        if self.fanout(stream).is_none() {
                            let shard = self.clone();
                            spawn_local(async move {
                                let msg = ShardMsg::Unsubscribe { stream, from: shard.id };
                                let _ = shard.mesh.send_to(from, msg).await;
                            })
                            .detach();
                        }
                    }
                }
            }
            ShardMsg::Unsubscribe { stream, from } => {
                if let Some(hub) = self.hub(stream) {
                    hub.set_subscribed(from, false);
                }
            }
            ShardMsg::Ingest { stream, packet } => {
                if let Some(hub) = self.hub(stream) {
                    if packet.is_rtcp() {
                        hub.ingest_rtcp(self, packet.track(), packet.rtp());
                    } else {
                        hub.ingest(self, packet.track(), packet.rtp());
                    }
                }
            }
            ShardMsg::Republished { stream, peer } => {
                if let Some(hub) = self.hub(stream) {
                    hub.upstream_restarted();
                    self.obs.set_upstream(
                        stream,
                        crate::metrics::Upstream {
                            kind: "publisher",
                            peer: Some(peer),
                            conn: None,
                        },
                    );
                    tracing::info!(%peer, path = %hub.info().path, stream, publisher_shard = from,
                        shard = self.id, side = "upstream",
                        "republished on another shard: readers continue the same stream");
                }
            }
            ShardMsg::PublisherGone { stream, end } => {
                if let Some(hub) = self.hub(stream) {
                    if end {
                        self.end_stream(&hub);
                    } else {
                        crate::republish::publisher_gone(self, &hub);
                    }
                }
            }
            ShardMsg::Ended { stream } => self.close_fanout(stream),
            ShardMsg::Evict { stream } => self.evict(stream, self.id),
            ShardMsg::Multicast { stream, group, delta } => {
                self.multicast_readers(stream, self.id, group, delta);
            }
        }
    }

    async fn udp_rtp_loop(self: Rc<Self>) {
        let mut buf = vec![0u8; 65536];
        loop {
            match self.udp.rtp.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let route = self.udp_sources.borrow().get(&from).copied();
                    if let Some((stream, track)) = route {
                        self.ingest_udp(stream, track, &buf[..n], false);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, shard = self.id, "RTP server port receive failed");
                    timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn udp_rtcp_loop(self: Rc<Self>) {
        let mut buf = vec![0u8; 65536];
        loop {
            // Readers' receiver reports count as liveness, and their report blocks become the
            // reader's loss and jitter (`rtcp_feedback`); publishers' sender reports go to
            // the hub.
            match self.udp.rtcp.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    let route = self.rtcp_ingest.borrow().get(&from).copied();
                    if let Some((stream, track)) = route {
                        self.ingest_udp(stream, track, &buf[..n], true);
                        continue;
                    }
                    let reader = self.rtcp_sources.borrow().get(&from).and_then(Weak::upgrade);
                    if let Some(r) = reader {
                        r.heard.set(std::time::Instant::now());
                        let track = r.tracks.iter().position(|t| {
                            matches!(t, Some(ReaderTrack::Udp { rtcp: Some(a), .. }) if *a == from)
                        });
                        if r.obs.absorb_rtcp(track.unwrap_or(0), &buf[..n]) > 0 {
                            self.obs.rtcp_reports.set(self.obs.rtcp_reports.get() + 1);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, shard = self.id, "RTCP server port receive failed");
                    timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// Runs one shard until shutdown: joins the mesh, binds, tells `ready`, serves.
pub(crate) async fn run(
    shared: Shared,
    mesh: glommio::channels::channel_mesh::MeshBuilder<
        ShardMsg,
        glommio::channels::channel_mesh::Full,
    >,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let shards = mesh.nr_peers();
    let (senders, receivers): (Senders<ShardMsg>, Receivers<ShardMsg>) = match mesh.join().await {
        Ok(joined) => joined,
        Err(e) => {
            let _ = ready.send(Err(format!("could not join the shard mesh: {e}")));
            return;
        }
    };
    let id = senders.peer_id();
    let listener = match TcpListener::bind(shared.listen) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {id}: cannot listen on {}: {e}", shared.listen)));
            return;
        }
    };
    let udp = match ServerPorts::bind(shared.listen.ip()) {
        Ok(u) => u,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {id}: cannot bind RTP/RTCP server ports: {e}")));
            return;
        }
    };
    let gso = manifold_udp::gso_supported(&udp.rtp_send);
    let shard = Rc::new(Shard {
        id,
        shards,
        shared: shared.clone(),
        mesh: senders,
        hubs: RefCell::default(),
        fanouts: RefCell::default(),
        joins: RefCell::default(),
        udp,
        udp_sources: RefCell::default(),
        rtcp_sources: RefCell::default(),
        rtcp_ingest: RefCell::default(),
        forwards: RefCell::default(),
        mmsg: RefCell::new(MmsgSender::new(MMSG_BATCH)),
        gso,
        next_id: Cell::new(0),
        conns: RefCell::default(),
        udp_drops: Cell::new(0),
        obs: crate::metrics::ShardObs::new(shards),
        mcast: crate::multicast::ShardMulticast::default(),
    });
    tracing::info!(shard = id, of = shard.shards, rtp_port = shard.udp.port, gso, "shard up");

    let mut receivers = receivers;
    for (from, rx) in receivers.streams() {
        let shard = shard.clone();
        spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                shard.handle_msg(from, msg);
            }
        })
        .detach();
    }
    spawn_local(shard.clone().udp_rtp_loop()).detach();
    spawn_local(shard.clone().udp_rtcp_loop()).detach();
    if shared.config.metrics.is_some() {
        spawn_local(crate::metrics::publish_loop(shard.clone())).detach();
    }
    if let (0, Some(addr)) = (id, shared.config.metrics) {
        match crate::http::bind(addr) {
            Ok(listener) => {
                tracing::info!(%addr, "metrics listening");
                spawn_local(crate::http::serve(shard.clone(), listener)).detach();
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    if id == 0 {
        for path in &shared.config.synthetic {
            if let Err(e) = crate::synthetic::start(&shard, path) {
                let _ = ready.send(Err(format!("synthetic source {path}: {e}")));
                return;
            }
        }
    }
    crate::pull::start_all(&shard);
    if let Err(e) = crate::rtp_ingest::start_all(&shard) {
        let _ = ready.send(Err(e));
        return;
    }
    let accept = {
        let shard = shard.clone();
        spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let Ok(peer) = stream.peer_addr() else { continue };
                        let Some(permit) = shard.shared.limits.admit_connection(peer.ip()) else {
                            tracing::warn!(%peer, shard = shard.id, limit =
                                shard.config().max_connections_per_ip,
                                "connection refused: too many from this address");
                            drop(stream);
                            continue;
                        };
                        let shard = shard.clone();
                        spawn_local(async move {
                            crate::conn::run(shard, stream).await;
                            drop(permit);
                        })
                        .detach();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, shard = shard.id, "accept failed");
                        timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    };
    let _ = ready.send(Ok(()));

    while !shared.shutdown.load(Ordering::Relaxed) {
        timer::sleep(SHUTDOWN_POLL).await;
    }
    accept.cancel().await;
    let fanouts: Vec<Rc<Fanout>> = shard.fanouts.borrow().values().cloned().collect();
    for f in &fanouts {
        for r in f.readers() {
            shard.send_bye_with(f, &r, "relay shutting down");
        }
    }
    let conns: Vec<Rc<ConnOut>> = shard.conns.borrow().values().cloned().collect();
    tracing::info!(shard = id, connections = conns.len(), "shutting down");
    for c in &conns {
        c.close();
    }
    // Let writers flush and connections close.
    timer::sleep(Duration::from_millis(100)).await;
}
