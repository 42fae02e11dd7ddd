//! A publisher's grace (`publish_grace_secs`, default 10 s): when an RTSP publisher goes away,
//! its stream stays published and its readers stay attached for the grace. A new ANNOUNCE of
//! the same path with a compatible SDP (same media count and encodings) continues the same
//! outgoing stream (the hub's continuity rewriters are reset, readers keep their sessions and
//! see a continuous sequence). When the ANNOUNCE lands on another shard than the one owning
//! the hub, that shard forwards the publisher's packets to the owner ([`Forward`]: one
//! `ShardMsg::Ingest` per packet on the shard pair's queue), and the owner's hub takes them in
//! as if they were local. An incompatible SDP ends the old stream at once (its readers get
//! BYE) and publishes a new one; so does the end of the grace.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::{spawn_local, timer};
use manifold_sdp::Sdp;

use crate::hub::{Hub, HubStats};
use crate::packet::Packet;
use crate::registry::StreamInfo;
use crate::shard::{Shard, ShardMsg};

/// How often an orphaned stream looks whether it was adopted or replaced.
const POLL: Duration = Duration::from_millis(100);

/// Streams whose publisher left, by path: (stream id, generation). Process-wide, control
/// path only.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    by_path: Mutex<HashMap<String, (u64, u64)>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Orphans {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, u64)>> {
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The publisher of `hub` went away: keep the stream for the grace, or end it now.
pub(crate) fn publisher_gone(shard: &Rc<Shard>, hub: &Rc<Hub>) {
    let grace = Duration::from_secs(shard.config().publish_grace_secs);
    let info = hub.info().clone();
    let still_ours = shard.registry().lookup(&info.path).is_some_and(|s| s.id == info.id);
    if grace.is_zero() || !still_ours {
        shard.end_stream(hub);
        return;
    }
    let orphans = shard.shared.orphans.clone();
    let generation = orphans.generation.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    orphans.lock().insert(info.path.clone(), (info.id, generation));
    tracing::info!(path = %info.path, stream = info.id, grace_secs = grace.as_secs(),
        side = "upstream", "publisher gone: readers kept while waiting for a republish");
    let (shard, hub) = (shard.clone(), hub.clone());
    spawn_local(async move {
        let deadline = Instant::now() + grace;
        loop {
            timer::sleep(POLL).await;
            let mine = orphans.lock().get(&info.path) == Some(&(info.id, generation));
            if !mine {
                // Adopted (the registry still names this stream) or replaced (it does not).
                if shard.registry().lookup(&info.path).is_none_or(|s| s.id != info.id) {
                    shard.end_stream(&hub);
                }
                return;
            }
            if Instant::now() >= deadline {
                orphans.lock().remove(&info.path);
                tracing::info!(path = %info.path, stream = info.id, side = "upstream",
                    "no republish within the grace: stream ended");
                shard.end_stream(&hub);
                return;
            }
        }
    })
    .detach();
}

/// Where a publisher's media goes: the hub on this shard, or the owner of a stream adopted
/// from another shard.
#[derive(Debug)]
pub(crate) enum Upstream {
    /// The stream's hub is on this shard.
    Hub(Rc<Hub>),
    /// The stream's hub is on another shard: packets are forwarded to it.
    Forward(Rc<Forward>),
}

impl Upstream {
    /// The stream.
    pub(crate) fn info(&self) -> &Arc<StreamInfo> {
        match self {
            Upstream::Hub(h) => h.info(),
            Upstream::Forward(f) => &f.info,
        }
    }

    /// The publisher-side counters (packets in, last packet).
    pub(crate) fn stats(&self) -> &HubStats {
        match self {
            Upstream::Hub(h) => &h.stats,
            Upstream::Forward(f) => &f.stats,
        }
    }

    /// Takes in one RTP packet of `track` from the publisher.
    pub(crate) fn ingest(&self, shard: &Shard, track: usize, rtp: &[u8]) {
        match self {
            Upstream::Hub(h) => h.ingest(shard, track, rtp),
            Upstream::Forward(f) => f.forward(shard, Packet::new(track, rtp, false)),
        }
    }

    /// Takes in one RTCP compound packet of `track` from the publisher.
    pub(crate) fn ingest_rtcp(&self, shard: &Shard, track: usize, rtcp: &[u8]) {
        match self {
            Upstream::Hub(h) => h.ingest_rtcp(shard, track, rtcp),
            Upstream::Forward(f) => f.forward(shard, Packet::rtcp(track, rtcp)),
        }
    }

    /// The publisher went away: the stream waits for a republish (or ends).
    pub(crate) fn gone(&self, shard: &Rc<Shard>) {
        match self {
            Upstream::Hub(h) => publisher_gone(shard, h),
            Upstream::Forward(f) => f.stop(shard, false),
        }
    }

    /// The publisher announced something else: the stream ends now.
    pub(crate) fn end(&self, shard: &Rc<Shard>) {
        match self {
            Upstream::Hub(h) => shard.end_stream(h),
            Upstream::Forward(f) => f.stop(shard, true),
        }
    }
}

/// A publisher on this shard of a stream whose hub is on another shard (a republish that
/// landed here): each packet goes, as one shared handle, to the owner over the shard pair's
/// bounded queue (a full queue drops the packet: the owner's readers resume at the next
/// keyframe).
#[derive(Debug)]
pub(crate) struct Forward {
    info: Arc<StreamInfo>,
    /// The publisher's peer, for logs.
    peer: SocketAddr,
    stats: HubStats,
}

impl Forward {
    /// The stream it forwards.
    pub(crate) fn stream(&self) -> u64 {
        self.info.id
    }

    fn forward(&self, shard: &Shard, packet: Option<Packet>) {
        let Some(packet) = packet else {
            self.stats.malformed.set(self.stats.malformed.get() + 1);
            return;
        };
        if !packet.is_rtcp() {
            self.stats.packets_in.set(self.stats.packets_in.get() + 1);
            self.stats.bytes_in.set(self.stats.bytes_in.get() + packet.rtp().len() as u64);
            self.stats.last_packet.set(Some(Instant::now()));
        }
        let msg = ShardMsg::Ingest { stream: self.info.id, packet: Arc::new(packet) };
        if !shard.try_send(self.info.owner, msg) {
            let drops = self.stats.remote_drops.get();
            if drops == 0 {
                tracing::warn!(peer = %self.peer, path = %self.info.path, stream = self.info.id,
                    owner = self.info.owner, side = "upstream",
                    "queue to the owning shard full: publisher packets dropped");
            }
            self.stats.remote_drops.set(drops + 1);
        }
    }

    /// The publisher left (`end`: or announced anew): this shard stops routing its UDP, and
    /// the owner orphans the stream again (or ends it).
    fn stop(&self, shard: &Rc<Shard>, end: bool) {
        shard.remove_forward(self.info.id);
        tracing::info!(peer = %self.peer, path = %self.info.path, stream = self.info.id,
            owner = self.info.owner, end, side = "upstream", "forwarded publisher gone");
        let (stream, owner) = (self.info.id, self.info.owner);
        let shard = shard.clone();
        spawn_local(async move {
            let _ = shard.send_to(owner, ShardMsg::PublisherGone { stream, end }).await;
        })
        .detach();
    }
}

/// An ANNOUNCE of `path` with `sdp` by `peer`: the orphaned stream it continues, if there is
/// one with a compatible SDP, on this shard or (forwarded) on another. Any other orphan of
/// `path` is unpublished (its own shard then ends it, and its readers get BYE) so the
/// ANNOUNCE can publish anew.
pub(crate) fn adopt(
    shard: &Rc<Shard>,
    path: &str,
    sdp: &Sdp,
    peer: SocketAddr,
) -> Option<Upstream> {
    let (id, _) = shard.shared.orphans.lock().remove(path)?;
    let info = shard.registry().lookup(path).filter(|s| s.id == id);
    let compatible = info.as_ref().is_some_and(|i| {
        Sdp::parse(i.sdp.as_bytes())
            .is_ok_and(|old| crate::pull::signature(&old) == crate::pull::signature(sdp))
    });
    let local = info.as_ref().is_some_and(|i| i.owner == shard.id());
    match (info, compatible) {
        (Some(info), true) if !local => {
            let owner = info.owner;
            let forward = Rc::new(Forward { info, peer, stats: HubStats::default() });
            shard.add_forward(forward.clone());
            // Before any packet of the new publisher: same queue, so in order.
            if !shard.try_send(owner, ShardMsg::Republished { stream: id, peer }) {
                let shard = shard.clone();
                spawn_local(async move {
                    let msg = ShardMsg::Republished { stream: id, peer };
                    let _ = shard.send_to(owner, msg).await;
                })
                .detach();
            }
            tracing::info!(%peer, %path, stream = id, owner, side = "upstream",
                "republished on another shard: packets forwarded to the owner");
            Some(Upstream::Forward(forward))
        }
        (Some(_), true) => {
            let hub = shard.hub(id)?;
            hub.upstream_restarted();
            tracing::info!(%peer, %path, stream = id, side = "upstream",
                "republished: readers continue the same stream");
            Some(Upstream::Hub(hub))
        }
        _ => {
            tracing::info!(%peer, %path, stream = id, side = "upstream",
                "republish cannot continue the stream: its readers are closed");
            shard.registry().remove(path, id);
            None
        }
    }
}
