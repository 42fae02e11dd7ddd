//! RTMP publishers (`--rtmp-listen`): each connection is a `manifold_rtmp::PublisherSession`
//! (sans-IO: handshake, chunks, commands, FLV to RTP) whose bytes this task moves. A publish of
//! `rtmp://host/APP/STREAM` asks the relay's access control for the publish permission of
//! `/APP/STREAM` (credentials from the URL's query, `?user=U&pass=P`, or a stream key
//! `STREAM?PASSWORD` for the user named `STREAM`), then takes the path
//! like an RTSP publisher (`publish::take_path`: one publisher per path, the republish grace
//! and continuity) once its tracks are known, and hands every RTP packet to the shard.
//!
//! The bytes travel over a [`Wire`]: a TCP connection here, or an RTMPT tunnel's HTTP
//! requests (`rtmpt.rs`); the session handling is this module's either way.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer;
use manifold_access::{Action, Presented, Protocol};
use manifold_rtmp::{Event, PublisherSession, Rejection};

use crate::republish::Upstream;
use crate::shard::{Media, Shard};

/// How long a write to the publisher (handshake, answers, acknowledgements) may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per call.
const READ_CHUNK: usize = 64 * 1024;
/// The largest RTP packet made from the publisher's media (the relay's interleave and UDP
/// budget, as for the synthetic stream).
const MAX_RTP_PACKET: usize = 1400;

/// Why an RTMP connection ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RtmpConnError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("write not taken within {} s", WRITE_TIMEOUT.as_secs())]
    WriteTimeout,
    /// An RTMPT client that does not poll for what the server has for it.
    #[error("more than {0} bytes waiting for the tunnel's next poll")]
    TunnelBacklog(usize),
}

/// Where an RTMP session's bytes come from and go.
pub(crate) trait Wire {
    /// Reads bytes into `buf`; `Ok(0)` at the end of the stream.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Sends all of `bytes`, within a bounded time or space.
    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), RtmpConnError>;
    /// Whether the bytes travel over TLS (RTMPS): credentials in clear are then acceptable.
    fn is_tls(&self) -> bool {
        false
    }
}

/// A plain RTMP connection.
struct Tcp<'a>(&'a mut TcpStream);

impl Wire for Tcp<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), RtmpConnError> {
        match timer::timeout(WRITE_TIMEOUT, async { Ok(self.0.write_all(bytes).await) }).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RtmpConnError::WriteTimeout),
        }
    }
}

/// An RTMPS connection.
struct Tls(crate::conn::TlsConn);

impl Wire for Tls {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).await
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), RtmpConnError> {
        let write = async {
            self.0.write_all(bytes).await?;
            Ok(self.0.flush().await)
        };
        match timer::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RtmpConnError::WriteTimeout),
        }
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// Serves one accepted RTMPS connection: the TLS handshake within the request timeout (one
/// that stalls or is not TLS is closed and logged), then the RTMP session over it.
pub(crate) async fn serve_tls(
    shard: Rc<Shard>,
    stream: TcpStream,
    tls: std::sync::Arc<manifold_tls::rustls::ServerConfig>,
) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    let deadline = shard.config().request_timeout();
    let mut wire = match crate::conn::handshake(stream, tls, deadline).await {
        Ok(tls) => Tls(tls),
        Err(e) => {
            tracing::info!(%peer, side = "upstream", error = %e, "rtmps connection closed");
            return;
        }
    };
    serve_session(shard, peer, &mut wire).await;
    let _ = wire.0.close().await;
}

/// Serves one accepted RTMP connection until it closes.
pub(crate) async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.set_nodelay(true);
    serve_session(shard, peer, &mut Tcp(&mut stream)).await;
    let _ = stream.close().await;
}

/// Runs one publisher's RTMP session from `peer` over `wire` until it ends, and lets its
/// stream go (to the republish grace) afterwards.
pub(crate) async fn serve_session(shard: Rc<Shard>, peer: SocketAddr, wire: &mut impl Wire) {
    let mut seed = [0u8; 8];
    manifold_sys::fill_random(&mut seed);
    let config = manifold_rtmp::Config {
        seed: u64::from_le_bytes(seed),
        max_packet_size: MAX_RTP_PACKET,
        // Sender reports put audio and video on one wall clock, so readers can sync them.
        wall_clock_at_start: Some(std::time::SystemTime::now()),
        ..manifold_rtmp::Config::default()
    };
    let mut session = PublisherSession::new(Instant::now(), config);
    let protocol = if wire.is_tls() { Protocol::Rtmps } else { Protocol::Rtmp };
    let mut publisher =
        Publisher { shard: shard.clone(), peer, protocol, path: None, upstream: None };
    match drive(&mut session, &mut publisher, wire).await {
        Ok(()) => tracing::debug!(%peer, "rtmp connection closed"),
        Err(e) => tracing::info!(%peer, side = "upstream", error = %e, "rtmp connection closed"),
    }
    publisher.gone();
}

/// The relay's side of one RTMP publisher: the path it was allowed, and where its media go.
struct Publisher {
    shard: Rc<Shard>,
    peer: SocketAddr,
    /// RTMP or RTMPS, for the access decision (a password in clear is Basic).
    protocol: Protocol,
    /// The path the publish was allowed for.
    path: Option<String>,
    /// Its stream, once the tracks were known and the path taken.
    upstream: Option<Upstream>,
}

impl Publisher {
    /// Answers a publish request: the publish permission, and a path nobody publishes.
    async fn requested(
        &mut self,
        session: &mut PublisherSession,
        req: manifold_rtmp::PublishRequest,
    ) {
        let path = req.path();
        let credentials = match req.credentials() {
            Some((user, password)) => Presented::Password { user, password },
            None => Presented::Nothing,
        };
        let allowed = self
            .shard
            .gate
            .decide(self.peer, &path, Action::Publish, self.protocol, credentials)
            .await;
        if allowed.is_err() {
            session.reject_publish(Rejection::Denied);
            return;
        }
        let live = self.shard.registry().lookup(&path).is_some();
        let orphaned = self.shard.shared.orphans.lock().contains_key(&path);
        if live && !orphaned && !self.shard.config().publish_replace {
            tracing::info!(peer = %self.peer, %path, side = "upstream",
                "rtmp publish refused: the path has a live publisher");
            session.reject_publish(Rejection::BadName);
            return;
        }
        tracing::info!(peer = %self.peer, %path, app = %req.app, "rtmp publish accepted");
        session.accept_publish(Instant::now());
        self.path = Some(path);
    }

    /// The tracks are known: take the path (once; later changes of codec parameters keep the
    /// stream). False when the path cannot be taken.
    fn tracks(&mut self, sdp: manifold_sdp::Sdp) -> bool {
        if self.upstream.is_some() {
            tracing::debug!(peer = %self.peer, "rtmp tracks changed: the stream goes on");
            return true;
        }
        let Some(path) = self.path.clone() else { return false };
        let from = crate::publish::From { peer: self.peer, conn: None, kind: "rtmp" };
        self.upstream = crate::publish::take_path(&self.shard, &path, sdp, from);
        self.upstream.is_some()
    }

    /// One RTP or RTCP packet of `track`.
    fn packet(&self, now: Instant, track: usize, bytes: &[u8], kind: Media) {
        if let Some(up) = &self.upstream {
            self.shard.ingest_publisher(now, up.info().id, track, bytes, kind);
        }
    }

    /// The publisher left: its stream waits for a republish (the grace), or ends.
    fn gone(&mut self) {
        if let Some(up) = self.upstream.take() {
            tracing::info!(peer = %self.peer, path = %up.info().path, side = "upstream", "rtmp publisher gone");
            up.gone(&self.shard);
        }
    }
}

/// Moves bytes between the socket and the session, and carries out its events, until the
/// session closes.
async fn drive(
    session: &mut PublisherSession,
    publisher: &mut Publisher,
    stream: &mut impl Wire,
) -> Result<(), RtmpConnError> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        // Drain both until neither has anything: an event's answer (accepting a publish) puts
        // bytes to send that the publisher waits for before it sends more.
        let mut closed = false;
        let mut progressed = true;
        while progressed && !closed {
            progressed = false;
            while let Some(bytes) = session.poll_transmit() {
                progressed = true;
                stream.write_all(&bytes).await?;
            }
            while let Some(event) = session.poll_event() {
                progressed = true;
                if !matches!(event, Event::Packet(_)) {
                    tracing::debug!(peer = %publisher.peer, ?event, "rtmp event");
                }
                match event {
                    Event::PublishRequested(req) => publisher.requested(session, req).await,
                    Event::Tracks(sdp) => {
                        if !publisher.tracks(sdp) {
                            closed = true;
                        }
                    }
                    Event::Packet(p) => {
                        publisher.packet(Instant::now(), p.track, &p.packet, Media::Rtp)
                    }
                    Event::SenderReport { track, report } => {
                        publisher.packet(Instant::now(), track, &report, Media::Rtcp)
                    }
                    Event::Closed(reason) => {
                        tracing::info!(peer = %publisher.peer, ?reason, "rtmp session closed");
                        closed = true;
                    }
                }
            }
        }
        if closed {
            // What the session still has to say (an error answer), then the end.
            while let Some(bytes) = session.poll_transmit() {
                let _ = stream.write_all(&bytes).await;
            }
            return Ok(());
        }
        // A read that finds bytes waiting does not yield (ARCHITECTURE.md, Connections).
        glommio::yield_if_needed().await;
        let read = async { Some(stream.read(&mut buf).await) };
        let woke = match session.poll_timeout() {
            None => read.await,
            Some(at) => {
                let expire = async {
                    timer::sleep(at.saturating_duration_since(Instant::now())).await;
                    None
                };
                futures_lite::future::or(read, expire).await
            }
        };
        match woke {
            Some(Ok(0)) => session.handle_peer_closed(),
            Some(Ok(n)) => session.handle_input(Instant::now(), &buf[..n]),
            Some(Err(e)) => return Err(e.into()),
            None => session.handle_timeout(Instant::now()),
        }
    }
}
