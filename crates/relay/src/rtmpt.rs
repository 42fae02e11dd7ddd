//! RTMPT publishers (`--rtmpt-listen`): RTMP carried in HTTP POSTs
//! (`manifold_rtmp::rtmpt` parses them and builds the answers). A session is opened by
//! `/open/1` and lives across requests, and across HTTP connections, so shard 0 alone
//! accepts on this port and keeps the one table of sessions ([`Tunnels`]).
//!
//! Each session is a task running `rtmp_ingest::serve_session` (the same publisher handling
//! as `rtmp://`: access control, one publisher per path, the republish grace) over a
//! [`TunnelWire`]: a `/send` body is what the session reads; what it writes waits for the
//! answer to that request, or to the next `/idle` poll. Bounded: sessions in number
//! ([`MAX_SESSIONS`]), request heads and bodies (`rtmpt::Limits`), bytes waiting for a poll
//! ([`MAX_BACKLOG`]); timed: a session no request reaches for [`IDLE_TIMEOUT`] ends, a
//! connection's request must arrive within [`REQUEST_TIMEOUT`], and its answer within
//! [`ANSWER_TIMEOUT`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::timer;
use manifold_rtmp::rtmpt::{self, Command, Polling, Request};

use crate::rtmp_ingest::{self, RtmpConnError, Wire};
use crate::shard::Shard;

/// Open sessions at once (each holds one publisher).
pub(crate) const MAX_SESSIONS: usize = 256;
/// How long a session may go without a request before it ends (clients poll every second
/// or so while idle).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection may take to send a whole request (or wait between keep-alive
/// requests).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a request may wait for its session's answer (the publish decision may ask the
/// auth hook, 3 s at most).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a write of an answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes the server may hold for a client that does not poll.
pub(crate) const MAX_BACKLOG: usize = 1 << 20;
/// Bytes read per call.
const READ_CHUNK: usize = 64 * 1024;

/// A request handed to a session: what it asks, and where its answer goes (the interval
/// byte and the bytes for the client).
struct ToSession {
    body: Option<Vec<u8>>,
    close: bool,
    answer: LocalSender<(u8, Vec<u8>)>,
}

/// The open sessions, by id (shard 0's).
#[derive(Default)]
pub(crate) struct Tunnels {
    sessions: RefCell<HashMap<String, Rc<LocalSender<ToSession>>>>,
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnels").field("sessions", &self.sessions.borrow().len()).finish()
    }
}

/// Why an RTMPT connection ended early.
#[derive(Debug, thiserror::Error)]
enum TunnelConnError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no whole request within {} s", REQUEST_TIMEOUT.as_secs())]
    RequestTimeout,
    #[error("answer not taken within {} s", WRITE_TIMEOUT.as_secs())]
    WriteTimeout,
    #[error("bad request: {0}")]
    Request(#[from] rtmpt::RtmptError),
}

/// Serves one HTTP connection's requests until it closes.
pub(crate) async fn serve(shard: Rc<Shard>, mut stream: TcpStream, tunnels: Rc<Tunnels>) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    match requests(&shard, peer, &mut stream, &tunnels).await {
        Ok(()) => tracing::debug!(%peer, "rtmpt connection closed"),
        Err(e) => tracing::info!(%peer, side = "upstream", error = %e, "rtmpt connection closed"),
    }
    let _ = stream.close().await;
}

async fn requests(
    shard: &Rc<Shard>,
    peer: SocketAddr,
    stream: &mut TcpStream,
    tunnels: &Rc<Tunnels>,
) -> Result<(), TunnelConnError> {
    let limits = rtmpt::Limits::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let request = match rtmpt::parse_request(&buf, limits) {
            Ok(Some((request, used))) => {
                buf.drain(..used);
                request
            }
            Ok(None) => {
                let read =
                    timer::timeout(REQUEST_TIMEOUT, async { Ok(stream.read(&mut chunk).await) });
                match read.await {
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => return Err(TunnelConnError::RequestTimeout),
                }
                continue;
            }
            Err(e) => {
                write(stream, &rtmpt::refusal(e.status(), false)).await?;
                return Err(e.into());
            }
        };
        let keep_alive = request.keep_alive;
        let answer = tunnels.answer(shard, peer, request).await;
        write(stream, &answer).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), TunnelConnError> {
    match timer::timeout(WRITE_TIMEOUT, async { Ok(stream.write_all(bytes).await) }).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(TunnelConnError::WriteTimeout),
    }
}

impl Tunnels {
    /// The answer to one request.
    async fn answer(self: &Rc<Self>, shard: &Rc<Shard>, peer: SocketAddr, req: Request) -> Vec<u8> {
        let keep = req.keep_alive;
        let (session, body, close) = match req.command {
            // No identity to give, as Flash Media Server without one.
            Command::Ident => return rtmpt::refusal("404 Not Found", keep),
            Command::Open => return self.open(shard, peer, keep),
            Command::Send { session, .. } => (session, Some(req.body), false),
            Command::Idle { session, .. } => (session, None, false),
            Command::Close { session, .. } => (session, None, true),
        };
        let Some(to) = self.sessions.borrow().get(&session).cloned() else {
            return rtmpt::refusal("404 Not Found", keep);
        };
        let (answer, answered) = local_channel::new_bounded(1);
        let asked = async {
            to.send(ToSession { body, close, answer }).await.ok()?;
            answered.recv().await
        };
        match timer::timeout(ANSWER_TIMEOUT, async { Ok(asked.await) }).await {
            Ok(Some((interval, data))) => rtmpt::answer(interval, &data, keep),
            // The session ended before answering.
            Ok(None) => rtmpt::refusal("404 Not Found", keep),
            Err(_) => rtmpt::refusal("503 Service Unavailable", false),
        }
    }

    /// Opens a session for `peer`: its task, and the id the client uses from now on.
    fn open(self: &Rc<Self>, shard: &Rc<Shard>, peer: SocketAddr, keep: bool) -> Vec<u8> {
        if self.sessions.borrow().len() >= MAX_SESSIONS {
            tracing::warn!(%peer, max = MAX_SESSIONS, "rtmpt session refused: too many sessions");
            return rtmpt::refusal("503 Service Unavailable", false);
        }
        let mut bytes = [0u8; 8];
        manifold_sys::fill_random(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let (to, requests) = local_channel::new_bounded(4);
        self.sessions.borrow_mut().insert(id.clone(), Rc::new(to));
        let (tunnels, shard, task_id) = (self.clone(), shard.clone(), id.clone());
        glommio::spawn_local(async move {
            let mut wire = TunnelWire {
                requests,
                waiting: None,
                input: Vec::new(),
                read_at: 0,
                backlog: Vec::new(),
                polling: Polling::default(),
            };
            rtmp_ingest::serve_session(shard, peer, &mut wire).await;
            wire.answer();
            tunnels.sessions.borrow_mut().remove(&task_id);
            tracing::debug!(%peer, session = %task_id, "rtmpt session ended");
        })
        .detach();
        tracing::debug!(%peer, session = %id, "rtmpt session opened");
        rtmpt::open_answer(&id, keep)
    }
}

/// One session's side of the tunnel: the RTMP bytes of `/send` bodies in, the session's
/// output to the answer of the request being served.
struct TunnelWire {
    requests: LocalReceiver<ToSession>,
    /// The request whose answer waits for the session's output.
    waiting: Option<LocalSender<(u8, Vec<u8>)>>,
    /// The body being read, from `read_at`.
    input: Vec<u8>,
    read_at: usize,
    /// What the session wrote for the client since the last answer.
    backlog: Vec<u8>,
    polling: Polling,
}

impl TunnelWire {
    /// Answers the waiting request with the backlog.
    fn answer(&mut self) {
        if let Some(to) = self.waiting.take() {
            let data = std::mem::take(&mut self.backlog);
            let interval = self.polling.next(data.len());
            // The request's connection may have given up (its timeout): nothing to do.
            let _ = to.try_send((interval, data));
        }
    }
}

impl Wire for TunnelWire {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.read_at < self.input.len() {
                let n = buf.len().min(self.input.len() - self.read_at);
                buf[..n].copy_from_slice(&self.input[self.read_at..self.read_at + n]);
                self.read_at += n;
                return Ok(n);
            }
            // The session has taken in all of the last body and written what it answers:
            // that goes back now.
            self.answer();
            let next = timer::timeout(IDLE_TIMEOUT, async { Ok(self.requests.recv().await) });
            let Ok(Some(request)) = next.await else {
                // No request for too long, or the table let go of the session: its end.
                return Ok(0);
            };
            self.waiting = Some(request.answer);
            if request.close {
                self.answer();
                return Ok(0);
            }
            self.input = request.body.unwrap_or_default();
            self.read_at = 0;
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), RtmpConnError> {
        if self.backlog.len() + bytes.len() > MAX_BACKLOG {
            return Err(RtmpConnError::TunnelBacklog(MAX_BACKLOG));
        }
        self.backlog.extend_from_slice(bytes);
        Ok(())
    }
}
