//! An origin that sends readers to its edges (`--redirect-to`): a reader's DESCRIBE is
//! answered `302 Moved Temporarily` with a `Location` on the least-loaded healthy edge, while
//! publishers (they ANNOUNCE) and the edges themselves (their pulls say so in their
//! User-Agent) are served here. Each edge's load is its session count, read from its metrics
//! endpoint every [`POLL`] by a task on shard 0; an edge whose metrics do not answer is
//! unhealthy and gets nobody. Redirects given since the last poll count as load, so a burst
//! of readers spreads instead of all landing on the edge that was emptiest a moment ago.

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
/// The most bytes of an edge's JSON read.
const MAX_JSON: usize = 4 << 20;

/// What the origin knows of one edge.
#[derive(Debug, Clone)]
struct EdgeState {
    target: EdgeTarget,
    healthy: bool,
    /// Sessions on the edge at the last poll.
    sessions: u64,
    /// Readers sent there since.
    sent: u64,
}

/// The edges and what the last polls said, shared by the shards.
#[derive(Debug)]
pub(crate) struct Edges {
    state: Mutex<Vec<EdgeState>>,
}

impl Edges {
    /// The configured edges, none known healthy yet.
    pub(crate) fn new(targets: &[EdgeTarget]) -> Edges {
        let state = targets
            .iter()
            .map(|t| EdgeState { target: t.clone(), healthy: false, sessions: 0, sent: 0 })
            .collect();
        Edges { state: Mutex::new(state) }
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
        Some(format!("{}{path}", best.target.rtsp))
    }

    /// A poll's result for edge `i`.
    fn update(&self, i: usize, sessions: Option<u64>) {
        if let Some(e) = self.lock().get_mut(i) {
            e.healthy = sessions.is_some();
            e.sessions = sessions.unwrap_or(0);
            e.sent = 0;
        }
    }

    fn targets(&self) -> Vec<EdgeTarget> {
        self.lock().iter().map(|e| e.target.clone()).collect()
    }
}

/// Polls every edge's metrics every [`POLL`], until the relay stops.
pub(crate) async fn watch(edges: std::sync::Arc<Edges>) {
    loop {
        for (i, target) in edges.targets().into_iter().enumerate() {
            let sessions = match crate::resolve::resolve(&target.host, target.metrics_port).await {
                Ok(Some(addr)) => sessions_of(addr).await,
                _ => None,
            };
            if sessions.is_none() {
                tracing::debug!(edge = %target.rtsp, "edge metrics unreachable: not sending readers there");
            }
            edges.update(i, sessions);
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
        edges.update(0, Some(100));
        edges.update(1, Some(40));
        edges.update(2, None);
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
    fn reads_the_session_count() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"streams\":[],\"sessions\":7}";
        assert_eq!(sessions_in(ok), Some(7));
        assert_eq!(sessions_in(b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"sessions\":7}"), None);
        assert_eq!(sessions_in(b"HTTP/1.1 200 OK\r\n\r\nnot json"), None);
    }
}
