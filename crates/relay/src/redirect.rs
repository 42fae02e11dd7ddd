//! An origin that sends readers to its edges (`--redirect-to`): a reader's DESCRIBE is
//! answered `302 Moved Temporarily` with a `Location` on the least-loaded healthy edge, while
//! publishers (they ANNOUNCE) and the edges themselves (their pulls say so in their
//! User-Agent) are served here. Each edge's load is its session count, read from its metrics
//! endpoint every [`POLL`] by a task on shard 0; an edge whose metrics do not answer is
//! unhealthy and gets nobody. Redirects given since the last poll count as load, so a burst
//! of readers spreads instead of all landing on the edge that was emptiest a moment ago.
//!
//! A `--redirect-to` whose host name resolves to several addresses (a Kubernetes headless
//! Service over the edge pods, a DNS round robin) is one edge per address, resolved again at
//! every poll, so edges that an autoscaler adds or removes are followed; readers are sent to
//! the address itself, not to the name (which would pick one at random).

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::timer;

use crate::config::EdgeTarget;

/// The User-Agent of the relay's pull client: an edge pulling from its origin says so (on
/// loopback or behind NAT its address does not tell). The redirect is no security boundary:
/// a client that avoids it only loads the origin, where access control applies alike.
pub(crate) const PULL_USER_AGENT: &str = concat!("manifold-pull/", env!("CARGO_PKG_VERSION"));

/// How often the edges' metrics are read.
const POLL: Duration = Duration::from_secs(2);
/// How long one edge's metrics may take to answer.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// The most edges one `--redirect-to` name stands for.
const MAX_ADDRESSES: usize = 256;
/// The most bytes of an edge's JSON read.
const MAX_JSON: usize = 4 << 20;

/// What the origin knows of one edge.
#[derive(Debug, Clone)]
struct EdgeState {
    /// The `--redirect-to` it comes from.
    target: usize,
    /// Where its readers are sent (no path).
    location: String,
    healthy: bool,
    /// Sessions on the edge at the last poll.
    sessions: u64,
    /// Readers sent there since.
    sent: u64,
}

/// The edges and what the last polls said, shared by the shards.
#[derive(Debug)]
pub(crate) struct Edges {
    targets: Vec<EdgeTarget>,
    state: Mutex<Vec<EdgeState>>,
}

impl Edges {
    /// The configured edges, none known healthy yet.
    pub(crate) fn new(targets: &[EdgeTarget]) -> Edges {
        let state = targets
            .iter()
            .enumerate()
            .map(|(target, t)| EdgeState {
                target,
                location: t.rtsp.clone(),
                healthy: false,
                sessions: 0,
                sent: 0,
            })
            .collect();
        Edges { targets: targets.to_vec(), state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EdgeState>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a client saying `user_agent` is an edge pulling (it is served, not
    /// redirected).
    pub(crate) fn is_edge(user_agent: Option<&str>) -> bool {
        user_agent.is_some_and(|ua| ua == PULL_USER_AGENT)
    }

    /// Where to send a reader of `path`: the healthy edge with the least load, counted as
    /// one more; `None` when no edge is healthy (the origin serves it).
    pub(crate) fn pick(&self, path: &str) -> Option<String> {
        let mut edges = self.lock();
        let best = edges.iter_mut().filter(|e| e.healthy).min_by_key(|e| e.sessions + e.sent)?;
        best.sent += 1;
        Some(format!("{}{path}", best.location))
    }

    /// A poll's result for target `target`: each of its edges (where readers go) and its
    /// session count, `None` when its metrics did not answer.
    fn update(&self, target: usize, polled: Vec<(String, Option<u64>)>) {
        let mut edges = self.lock();
        edges.retain(|e| e.target != target);
        edges.extend(polled.into_iter().map(|(location, sessions)| EdgeState {
            target,
            location,
            healthy: sessions.is_some(),
            sessions: sessions.unwrap_or(0),
            sent: 0,
        }));
    }
}

/// Polls every edge's metrics every [`POLL`], until the relay stops.
pub(crate) async fn watch(edges: std::sync::Arc<Edges>) {
    loop {
        for (i, target) in edges.targets.iter().enumerate() {
            let addrs =
                crate::resolve::resolve_all(&target.host, target.metrics_port, MAX_ADDRESSES)
                    .await
                    .unwrap_or_default();
            let mut ips: Vec<std::net::IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            ips.sort_unstable();
            ips.dedup();
            let polled = if ips.len() <= 1 {
                // One edge: readers go to the name as configured.
                let sessions = match addrs.first() {
                    Some(a) => sessions_of(*a).await,
                    None => None,
                };
                vec![(target.rtsp.clone(), sessions)]
            } else {
                // Several: all asked at once, readers sent to each address.
                let asks: Vec<_> = ips
                    .iter()
                    .map(|ip| {
                        glommio::spawn_local(sessions_of(SocketAddr::new(*ip, target.metrics_port)))
                    })
                    .collect();
                let mut polled = Vec::with_capacity(ips.len());
                for (ip, ask) in ips.iter().zip(asks) {
                    polled.push((target.at(*ip), ask.await));
                }
                polled
            };
            for (location, sessions) in &polled {
                if sessions.is_none() {
                    tracing::debug!(edge = %location, "edge metrics unreachable: not sending readers there");
                }
            }
            edges.update(i, polled);
        }
        timer::sleep(POLL).await;
    }
}

/// The session count an edge's `/api/v1/streams` reports, `None` when it does not answer.
async fn sessions_of(metrics: SocketAddr) -> Option<u64> {
    let exchange = async {
        let mut s = glommio::net::TcpStream::connect(metrics).await.ok()?;
        s.write_all(b"GET /api/v1/streams HTTP/1.0\r\nConnection: close\r\n\r\n").await.ok()?;
        let mut body = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 || body.len() > MAX_JSON {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        sessions_in(&body)
    };
    timer::timeout(POLL_TIMEOUT, async { Ok(exchange.await) }).await.ok().flatten()
}

/// The `sessions` of an HTTP answer whose body is the metrics JSON.
fn sessions_in(answer: &[u8]) -> Option<u64> {
    let start = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    if !answer.starts_with(b"HTTP/1.1 200") && !answer.starts_with(b"HTTP/1.0 200") {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&answer[start..]).ok()?;
    json.get("sessions")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_go_to_the_least_loaded_healthy_edge_and_bursts_spread() {
        let targets: Vec<EdgeTarget> =
            ["rtsp://a:1#metrics=2", "rtsp://b:1#metrics=2", "rtsp://c:1#metrics=2"]
                .iter()
                .map(|t| EdgeTarget::parse(t).unwrap())
                .collect();
        let edges = Edges::new(&targets);
        assert_eq!(edges.pick("/x"), None, "nobody healthy yet");
        edges.update(0, vec![("rtsp://a:1".into(), Some(100))]);
        edges.update(1, vec![("rtsp://b:1".into(), Some(40))]);
        edges.update(2, vec![("rtsp://c:1".into(), None)]);
        let mut to = std::collections::HashMap::<String, u32>::new();
        for _ in 0..160 {
            *to.entry(edges.pick("/x").unwrap()).or_default() += 1;
        }
        // b takes the first 60, then they share: a 50, b 110.
        assert_eq!(to.get("rtsp://a:1/x"), Some(&50));
        assert_eq!(to.get("rtsp://b:1/x"), Some(&110));
        assert_eq!(to.get("rtsp://c:1/x"), None, "the unhealthy edge gets nobody");
        assert!(!Edges::is_edge(Some("Lavf/59.27.100")) && !Edges::is_edge(None));
        assert!(Edges::is_edge(Some(PULL_USER_AGENT)));
    }

    #[test]
    fn a_name_for_several_edges_is_one_edge_per_address_and_follows_them() {
        let target = EdgeTarget::parse("rtsp://edges.ns.svc:8554#metrics=9090").unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(target.at(ip("10.0.0.7")), "rtsp://10.0.0.7:8554");
        assert_eq!(target.at(ip("fd00::7")), "rtsp://[fd00::7]:8554");
        let edges = Edges::new(std::slice::from_ref(&target));
        edges.update(
            0,
            vec![(target.at(ip("10.0.0.1")), Some(5)), (target.at(ip("10.0.0.2")), Some(1))],
        );
        assert_eq!(edges.pick("/cam").as_deref(), Some("rtsp://10.0.0.2:8554/cam"));
        // The autoscaler removed .2 and added .3: the next poll says so.
        edges.update(
            0,
            vec![(target.at(ip("10.0.0.1")), Some(5)), (target.at(ip("10.0.0.3")), Some(0))],
        );
        let mut seen = std::collections::HashSet::new();
        for _ in 0..6 {
            seen.insert(edges.pick("/cam").unwrap());
        }
        assert!(!seen.contains("rtsp://10.0.0.2:8554/cam"), "{seen:?}");
        assert!(seen.contains("rtsp://10.0.0.3:8554/cam"), "{seen:?}");
    }

    #[test]
    fn reads_the_session_count() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"streams\":[],\"sessions\":7}";
        assert_eq!(sessions_in(ok), Some(7));
        assert_eq!(sessions_in(b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"sessions\":7}"), None);
        assert_eq!(sessions_in(b"HTTP/1.1 200 OK\r\n\r\nnot json"), None);
    }
}
