//! A publisher takes a path (an RTSP ANNOUNCE, an RTMP publish): it continues the orphaned
//! stream of the path when its media match (the republish grace), takes the path over from a
//! live publisher with `--publish-replace`, or publishes a new stream with its hub on this
//! shard. One home for the rule, whatever protocol the publisher speaks.

use std::net::SocketAddr;
use std::rc::Rc;

use manifold_sdp::Sdp;

use crate::plane::hub::Hub;
use crate::registry::{relay_sdp, TrackInfo};
use crate::republish::Upstream;
use crate::shard::Shard;

/// Who publishes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct From {
    /// The publisher's address.
    pub(crate) peer: SocketAddr,
    /// Its RTSP connection on this shard, if it has one (so `--publish-replace` can close it).
    pub(crate) conn: Option<u64>,
    /// What it is, for the metrics (`publisher`, `rtmp`).
    pub(crate) kind: &'static str,
}

/// Publishes `sdp` at `path` for `from`: where its media go, or `None` when the path is
/// taken (logged).
pub(crate) fn take_path(shard: &Rc<Shard>, path: &str, sdp: Sdp, from: From) -> Option<Upstream> {
    let upstream =
        crate::metrics::Upstream { kind: from.kind, peer: Some(from.peer), conn: from.conn };
    // A republish within the grace continues the stream its readers still play.
    if let Some(hub) = crate::republish::adopt(shard, path, &sdp, from.peer) {
        if let Upstream::Local(info) = &hub {
            shard.obs.set_upstream(info.id, upstream);
        }
        tracing::info!(peer = %from.peer, %path, stream = hub.info().id, "published again");
        return Some(hub);
    }
    let tracks = TrackInfo::all_of(&sdp);
    let relay_sdp = relay_sdp(sdp);
    let registry = shard.registry();
    let owner = shard.id();
    let published = match registry.publish(path, owner, relay_sdp.clone(), tracks.clone()) {
        Err(_) if shard.config().publish_replace => {
            // Take the path over: unpublish the old stream, close its publisher.
            if let Some(old) = registry.take(path) {
                tracing::info!(peer = %from.peer, %path, old_stream = old.id, side = "upstream",
                    "publish replaces the live publisher");
                shard.evict(old.id, old.owner);
            }
            registry.publish(path, owner, relay_sdp, tracks)
        }
        other => other,
    };
    let info = match published {
        Ok(info) => info,
        Err(e) => {
            tracing::info!(peer = %from.peer, %path, side = "upstream", "publish refused: {e}");
            return None;
        }
    };
    let mut hub = Hub::new(info.clone(), shard.shards(), shard.config().gop_cache);
    if shard.config().publish_grace_secs > 0 {
        // A republish may continue this stream: rewrite it onto one continuous stream.
        hub = hub.with_continuity(crate::sys::random_u32);
    }
    shard.add_hub(hub);
    shard.obs.set_upstream(info.id, upstream);
    tracing::info!(peer = %from.peer, %path, stream = info.id, tracks = info.tracks.len(), kind = from.kind,
        "published");
    Some(Upstream::Local(info))
}
