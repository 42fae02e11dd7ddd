//! A publisher's grace (`publish_grace_secs`, default 10 s): when an RTSP publisher goes away,
//! its stream stays published and its readers stay attached for the grace. A new ANNOUNCE of
//! the same path with a compatible SDP (same media count and encodings) that lands on the
//! shard owning the stream continues the same outgoing stream (the hub's continuity rewriters
//! are reset, readers keep their sessions and see a continuous sequence). An incompatible
//! SDP, or an ANNOUNCE on another shard (the hub and its readers' subscriptions live on the
//! owner), ends the old stream at once (its readers get BYE) and publishes a new one; so does
//! the end of the grace.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use glommio::{spawn_local, timer};
use manifold_sdp::Sdp;

use crate::hub::Hub;
use crate::shard::Shard;

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

/// An ANNOUNCE of `path` with `sdp`: the orphaned stream it continues, if there is one on
/// this shard with a compatible SDP. Any other orphan of `path` is unpublished (its own
/// shard then ends it, and its readers get BYE) so the ANNOUNCE can publish anew.
pub(crate) fn adopt(shard: &Shard, path: &str, sdp: &Sdp) -> Option<Rc<Hub>> {
    let (id, _) = shard.shared.orphans.lock().remove(path)?;
    let hub = shard.hub(id);
    let compatible = hub.as_ref().is_some_and(|h| {
        Sdp::parse(h.info().sdp.as_bytes())
            .is_ok_and(|old| crate::pull::signature(&old) == crate::pull::signature(sdp))
    });
    match hub {
        Some(hub) if compatible => {
            hub.upstream_restarted();
            tracing::info!(%path, stream = id, side = "upstream",
                "republished: readers continue the same stream");
            Some(hub)
        }
        _ => {
            tracing::info!(%path, stream = id, side = "upstream", same_shard = hub.is_some(),
                "republish cannot continue the stream: its readers are closed");
            shard.registry().remove(path, id);
            None
        }
    }
}
