//! The process-wide tables of streams: which path is published, by which shard, with what SDP
//! ([`Registry`]); which on-demand pulls readers asked for ([`Demand`]); which streams lost
//! their publisher and wait for a republish ([`Orphans`]).
//!
//! Touched only on the control path (ANNOUNCE, DESCRIBE, SETUP, publisher gone), never per
//! packet, so a mutex is fine here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use manifold_rtp::codec::Codec;
use manifold_rtp::track::{PayloadTypes, TrackFormat};
use manifold_sdp::Sdp;

/// The SDP readers get: the upstream's, with the aggregate control `*` and each media's
/// control `trackID=N` (so SETUP URLs are `<path>/trackID=N`); everything else kept.
pub(crate) fn relay_sdp(mut sdp: Sdp) -> String {
    sdp.set_control("*");
    for (i, m) in sdp.media_mut().iter_mut().enumerate() {
        m.set_control(&format!("trackID={i}"));
    }
    sdp.to_string()
}

/// Readers' demand for on-demand pulls: when each path was last asked for.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    wanted: Mutex<HashMap<String, Instant>>,
    /// The paths an edge pulls from its origin (`--origin`), each by one shard.
    from_origin: Mutex<std::collections::HashSet<String>>,
}

impl Demand {
    /// A reader asks for `path` at `now`.
    pub(crate) fn want(&self, path: &str, now: Instant) {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner()).insert(path.to_owned(), now);
    }

    /// When `path` was last asked for.
    pub(crate) fn wanted_at(&self, path: &str) -> Option<Instant> {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner()).get(path).copied()
    }

    /// Takes the pull of `path` from the origin for the caller's shard: false when another
    /// shard pulls it already, or `max` paths are pulled.
    pub(crate) fn claim_origin(&self, path: &str, max: usize) -> bool {
        let mut set = self.from_origin.lock().unwrap_or_else(|e| e.into_inner());
        set.len() < max && set.insert(path.to_owned())
    }

    /// Whether some shard pulls `path` from the origin.
    pub(crate) fn pulled_from_origin(&self, path: &str) -> bool {
        self.from_origin.lock().unwrap_or_else(|e| e.into_inner()).contains(path)
    }

    /// The pull of `path` from the origin stopped.
    pub(crate) fn release_origin(&self, path: &str) {
        self.from_origin.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
    }
}

/// Streams whose publisher left, by path: (stream id, generation).
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    by_path: Mutex<HashMap<String, (u64, u64)>>,
    generation: AtomicU64,
}

impl Orphans {
    /// The table, locked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, (u64, u64)>> {
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A generation number not handed out before.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed)
    }
}

/// The open HTTP tunnels, by `x-sessioncookie`: where each one's GET connection is (shard,
/// connection), and the client address only its POSTs may come from.
#[derive(Debug, Default)]
pub(crate) struct Tunnels {
    by_cookie: Mutex<HashMap<String, TunnelEnd>>,
}

/// Where a tunnel's GET half is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TunnelEnd {
    /// Its shard.
    pub(crate) shard: usize,
    /// Its connection id on that shard.
    pub(crate) conn: u64,
    /// The client's address.
    pub(crate) ip: std::net::IpAddr,
}

impl Tunnels {
    fn table(&self) -> MutexGuard<'_, HashMap<String, TunnelEnd>> {
        self.by_cookie.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the tunnel `cookie` at `end`; false when the cookie is taken (or the table
    /// holds `max` tunnels already).
    pub(crate) fn open(&self, cookie: &str, end: TunnelEnd, max: usize) -> bool {
        let mut table = self.table();
        if table.contains_key(cookie) || table.len() >= max {
            return false;
        }
        table.insert(cookie.to_owned(), end);
        true
    }

    /// The GET half of tunnel `cookie`, for a POST from `ip`: `None` when there is no such
    /// tunnel or it belongs to another client.
    pub(crate) fn find(&self, cookie: &str, ip: std::net::IpAddr) -> Option<TunnelEnd> {
        self.table().get(cookie).copied().filter(|e| e.ip == ip)
    }

    /// Closes tunnel `cookie`, if it is still the one at `end`.
    pub(crate) fn close(&self, cookie: &str, end: TunnelEnd) {
        let mut table = self.table();
        if table.get(cookie) == Some(&end) {
            table.remove(cookie);
        }
    }
}

/// What a reader needs to know about one track of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackInfo {
    /// The codec whose keyframes the hub can find (H.264/H.265), if any.
    pub(crate) codec: Option<Codec>,
    /// The RTP clock rate (90000 when the SDP does not say).
    pub(crate) clock_rate: u32,
    /// The payload types the SDP gives the track; readers drop packets of others.
    pub(crate) payload_types: PayloadTypes,
}

impl TrackInfo {
    /// The tracks of a presentation, in SDP media order, by the one rule of
    /// [`manifold_rtp::track`] (which the load generator follows too).
    pub(crate) fn all_of(sdp: &manifold_sdp::Sdp) -> Vec<TrackInfo> {
        TrackFormat::all_of(sdp)
            .into_iter()
            .map(|f| TrackInfo {
                codec: f.codec,
                clock_rate: f.clock_rate,
                payload_types: f.payload_types,
            })
            .collect()
    }
}

/// One published stream.
#[derive(Debug)]
pub(crate) struct StreamInfo {
    /// Unique for the process's lifetime: a path published again gets a new id.
    pub(crate) id: u64,
    /// The path, e.g. `/cam`.
    pub(crate) path: String,
    /// The shard that owns the upstream and the hub.
    pub(crate) owner: usize,
    /// The SDP readers get from DESCRIBE: the upstream's, with control URLs `trackID=N`.
    pub(crate) sdp: String,
    /// The tracks, in SDP media order.
    pub(crate) tracks: Vec<TrackInfo>,
}

/// Why a path could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path} already has a live publisher")]
#[non_exhaustive]
pub struct PathBusy {
    /// The path.
    pub path: String,
}

/// Every published stream, by path.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    streams: Mutex<HashMap<String, Arc<StreamInfo>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// Publishes `path`, owned by shard `owner`; refused when it is already published.
    pub(crate) fn publish(
        &self,
        path: &str,
        owner: usize,
        sdp: String,
        tracks: Vec<TrackInfo>,
    ) -> Result<Arc<StreamInfo>, PathBusy> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(path) {
            return Err(PathBusy { path: path.to_owned() });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(StreamInfo { id, path: path.to_owned(), owner, sdp, tracks });
        streams.insert(path.to_owned(), info.clone());
        Ok(info)
    }

    /// The stream published at `path`, if any.
    pub(crate) fn lookup(&self, path: &str) -> Option<Arc<StreamInfo>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(path).cloned()
    }

    /// Unpublishes `path` whatever stream it is, returning that stream (publish replace).
    pub(crate) fn take(&self, path: &str) -> Option<Arc<StreamInfo>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(path)
    }

    /// Unpublishes `path` if it is still stream `id`.
    pub(crate) fn remove(&self, path: &str, id: u64) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.get(path).is_some_and(|s| s.id == id) {
            streams.remove(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_lookup_remove() {
        let r = Registry::default();
        let a = r.publish("/cam", 0, String::new(), vec![]).unwrap();
        assert!(r.publish("/cam", 1, String::new(), vec![]).is_err());
        assert_eq!(r.lookup("/cam").map(|s| s.id), Some(a.id));
        r.remove("/cam", a.id + 1);
        assert!(r.lookup("/cam").is_some());
        r.remove("/cam", a.id);
        assert!(r.lookup("/cam").is_none());
        let b = r.publish("/cam", 1, String::new(), vec![]).unwrap();
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn a_tunnel_is_joined_only_by_its_own_client_and_closed_only_by_its_get() {
        let t = Tunnels::default();
        let ip = "10.0.0.1".parse().unwrap();
        let end = TunnelEnd { shard: 1, conn: 7, ip };
        assert!(t.open("c", end, 10));
        assert!(!t.open("c", TunnelEnd { conn: 8, ..end }, 10), "a cookie is taken once");
        assert_eq!(t.find("c", ip), Some(end));
        assert_eq!(t.find("c", "10.0.0.2".parse().unwrap()), None, "another client's POST");
        assert_eq!(t.find("other", ip), None);
        t.close("c", TunnelEnd { conn: 8, ..end });
        assert_eq!(t.find("c", ip), Some(end), "only its own GET closes it");
        t.close("c", end);
        assert_eq!(t.find("c", ip), None);
        assert!(t.open("a", end, 1) && !t.open("b", end, 1), "bounded");
    }
}
