//! A publisher's grace (`publish_grace_secs`, default 10 s): when an RTSP publisher goes away,
//! its stream stays published and its readers stay attached for the grace. A new ANNOUNCE of
//! the same path with a compatible SDP (same media count and encodings) continues the same
//! outgoing stream (the hub's continuity rewriters are reset, readers keep their sessions and
//! see a continuous sequence). When the ANNOUNCE lands on another shard than the one owning
//! the hub, that shard forwards the publisher's packets to the owner ([`Forward`]: one
//! `ShardMsg::Ingest` per packet on the shard pair's queue), and the owner's hub takes them in
//! as if they were local. An incompatible SDP ends the old stream at once (its readers get
//! BYE) and publishes a new one; so does the end of the grace.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{spawn_local, timer};
use manifold_sdp::Sdp;

use crate::plane::hub::HubStats;
use crate::registry::StreamInfo;
use crate::shard::{Forward, Shard, ShardMsg};

/// How often an orphaned stream looks whether it was adopted or replaced.
const POLL: Duration = Duration::from_millis(100);

/// The publisher of `stream` (owned here) went away: keep the stream for the grace, or end
/// it now.
pub(crate) fn publisher_gone(shard: &Rc<Shard>, stream: u64) {
    let grace = Duration::from_secs(shard.config().publish_grace_secs);
    let info = shard.hub_info(stream);
    let still_ours =
        |i: &Arc<StreamInfo>| shard.registry().lookup(&i.path).is_some_and(|s| s.id == i.id);
    let Some(info) = info.filter(|i| !grace.is_zero() && still_ours(i)) else {
        shard.end_stream(stream);
        return;
    };
    let orphans = shard.shared.orphans.clone();
    let generation = orphans.next_generation();
    orphans.lock().insert(info.path.clone(), (info.id, generation));
    tracing::info!(path = %info.path, stream = info.id, grace_secs = grace.as_secs(),
        side = "upstream", "publisher gone: readers kept while waiting for a republish");
    let shard = shard.clone();
    spawn_local(async move {
        let deadline = Instant::now() + grace;
        loop {
            timer::sleep(POLL).await;
            let mine = orphans.lock().get(&info.path) == Some(&(info.id, generation));
            if !mine {
                // Adopted (the registry still names this stream) or replaced (it does not).
                if shard.registry().lookup(&info.path).is_none_or(|s| s.id != info.id) {
                    shard.end_stream(info.id);
                }
                return;
            }
            if Instant::now() >= deadline {
                orphans.lock().remove(&info.path);
                tracing::info!(path = %info.path, stream = info.id, side = "upstream",
                    "no republish within the grace: stream ended");
                shard.end_stream(info.id);
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
    Local(Arc<StreamInfo>),
    /// The stream's hub is on another shard: packets are forwarded to it.
    Forward(Rc<Forward>),
}

impl Upstream {
    /// The stream.
    pub(crate) fn info(&self) -> &Arc<StreamInfo> {
        match self {
            Upstream::Local(info) => info,
            Upstream::Forward(f) => &f.info,
        }
    }

    /// The publisher-side counters (packets in, last packet).
    pub(crate) fn stats(&self, shard: &Shard) -> HubStats {
        match self {
            Upstream::Local(info) => shard.hub_stats(info.id).unwrap_or_default(),
            Upstream::Forward(f) => f.stats.get(),
        }
    }

    /// The publisher went away: the stream waits for a republish (or ends).
    pub(crate) fn gone(&self, shard: &Rc<Shard>) {
        match self {
            Upstream::Local(info) => publisher_gone(shard, info.id),
            Upstream::Forward(f) => stop_forward(f, shard, false),
        }
    }

    /// The publisher announced something else: the stream ends now.
    pub(crate) fn end(&self, shard: &Rc<Shard>) {
        match self {
            Upstream::Local(info) => shard.end_stream(info.id),
            Upstream::Forward(f) => stop_forward(f, shard, true),
        }
    }
}

/// The publisher of a [`Forward`] (a republish that landed on another shard than the owner's)
/// left (`end`: or announced anew): this shard stops routing its UDP, and the owner orphans
/// the stream again (or ends it).
fn stop_forward(forward: &Forward, shard: &Rc<Shard>, end: bool) {
    let info = &forward.info;
    shard.remove_forward(info.id);
    tracing::info!(peer = %forward.peer, path = %info.path, stream = info.id, owner = info.owner,
        end, side = "upstream", "forwarded publisher gone");
    let (stream, owner) = (info.id, info.owner);
    let shard = shard.clone();
    spawn_local(async move {
        let _ = shard.send_to(owner, ShardMsg::PublisherGone { stream, end }).await;
    })
    .detach();
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
            let forward = Rc::new(Forward { info, peer, stats: Cell::default() });
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
        (Some(info), true) => {
            if !shard.upstream_restarted(id) {
                return None;
            }
            tracing::info!(%peer, %path, stream = id, side = "upstream",
                "republished: readers continue the same stream");
            Some(Upstream::Local(info))
        }
        _ => {
            tracing::info!(%peer, %path, stream = id, side = "upstream",
                "republish cannot continue the stream: its readers are closed");
            shard.registry().remove(path, id);
            None
        }
    }
}
