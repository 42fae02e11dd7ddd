//! One RTSP connection, plain or over TLS (the handshake first, within the request timeout;
//! [`Socket`] is the one place the two differ): a reader task that decodes requests and interleaved frames from the
//! socket (manifold-rtsp's streaming `Decoder` over a per-connection buffer) and hands them to
//! the connection's [`Control`], and a writer task that writes responses and the media of its
//! TCP readers. What each request *means* lives in `control`; this module only moves bytes.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer;
use manifold_rtsp::codec::{interleaved_header, Decoder, Item, Limits};
use manifold_rtsp::{ChannelId, Response};
use manifold_tls::futures_rustls::server::TlsStream;
use manifold_tls::futures_rustls::TlsAcceptor;
use manifold_tls::rustls::ServerConfig;

use crate::control::{Control, Route};
use crate::outbox::ConnOut;
use crate::plane::reader::TcpFrame;
use crate::shard::Shard;
use crate::tunnel::TunnelFailure;
use manifold_rtsp::tunnel::TunnelSide;
use std::net::SocketAddr;

/// Bytes a connection reads per call at first, and keeps between requests. RTSP requests are
/// small and a reader's connection idles for hours, so this is most of what an idle session
/// costs (a 64 KiB buffer per connection was 85% of it: 74 KiB per idle session, 10 KiB without it).
const READ_CHUNK_MIN: usize = 2 * 1024;
/// Largest read per call, reached by doubling while reads fill the chunk (a publisher's
/// interleaved media, a burst of pipelined requests).
const READ_CHUNK_MAX: usize = 64 * 1024;
/// Most bytes buffered for an incomplete item (the codec limits heads and bodies itself; an
/// interleaved frame is at most 64 KiB).
const MAX_BUFFERED: usize = 1 << 20;
/// Bytes of media gathered per socket write.
const WRITE_BATCH: usize = 256 * 1024;
/// How long a closing TLS connection's writer waits to send its close_notify.
const CLOSE_NOTIFY_WAIT: Duration = Duration::from_secs(1);
/// Frames per gathered write (two slices each at most, within `IOV_MAX`).
const MAX_FRAMES: usize = (crate::sys::IOV_MAX - 1) / 2;

/// The connection's socket: plain TCP, or TLS over it once the handshake is done. The one
/// seam between the two: reads, writes and shutdown go through [`SharedStream`], and a
/// batch of media through [`write_gathered`], which keeps plain TCP's zero-copy `sendmsg`.
#[derive(Debug)]
enum Socket {
    Plain(TcpStream),
    Tls(Box<TlsStream<GatheringTcp>>),
}

impl Socket {
    /// The TCP socket under it.
    fn tcp(&self) -> &TcpStream {
        match self {
            Socket::Plain(s) => s,
            Socket::Tls(s) => &s.get_ref().0 .0,
        }
    }
}

/// The TCP socket under TLS: glommio's stream, except that a vectored write is one gathering
/// `sendmsg` (rustls hands over its queued records as one slice each: a batch's records leave
/// in one syscall, not one per record). When the socket is full it falls back to glommio's
/// write, which waits for room.
#[derive(Debug)]
pub(crate) struct GatheringTcp(TcpStream);

/// A TLS connection as the relay serves it (RTSPS, RTMPS).
pub(crate) type TlsConn = TlsStream<GatheringTcp>;

impl AsyncRead for GatheringTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatheringTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match crate::sys::send_vectored(crate::sys::fd_of(&self.0), bufs) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
                Pin::new(&mut self.0).poll_write(cx, first)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            done => Poll::Ready(done),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

/// The socket, shared by the reader and writer tasks of one connection. Each side borrows it
/// only inside one `poll_*` call, never across an `.await`, and glommio keeps separate
/// readiness sources for reading and writing, so the two tasks never conflict. (Over TLS the
/// reader writes only a fatal alert, and the writer never reads.)
#[derive(Debug, Clone)]
struct SharedStream(Rc<RefCell<Socket>>);

impl SharedStream {
    fn new(socket: Socket) -> SharedStream {
        SharedStream(Rc::new(RefCell::new(socket)))
    }

    /// Whether the connection is TLS.
    fn is_tls(&self) -> bool {
        matches!(*self.0.borrow(), Socket::Tls(_))
    }

    /// Shuts the socket down both ways, waking a task blocked reading it. Only through the
    /// owning stream: once it is dropped its descriptor number may be another connection's.
    fn shutdown(&self) {
        crate::sys::shutdown_socket(crate::sys::fd_of(self.0.borrow().tcp()));
    }

    /// One non-blocking gathering `sendmsg` on the TCP socket (see
    /// [`crate::sys::send_vectored`]); plain connections only: under TLS the bytes must go
    /// through rustls.
    fn send_vectored(&self, iov: &[IoSlice<'_>]) -> io::Result<usize> {
        crate::sys::send_vectored(crate::sys::fd_of(self.0.borrow().tcp()), iov)
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            // All the slices to rustls at once: they share records.
            Socket::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self.0.borrow_mut() {
            Socket::Plain(s) => Pin::new(s).poll_close(cx),
            Socket::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    /// The TLS handshake did not complete within the request timeout.
    #[error("TLS handshake not complete within {} s", .0.as_secs())]
    HandshakeTimeout(Duration),
    /// The TLS handshake failed (not TLS, no cipher in common, an alert from the client).
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The peer started an item (a request head, a frame) and did not finish it in time.
    #[error("request not complete within {} s", .0.as_secs())]
    RequestTimeout(Duration),
    /// The peer held no session and sent nothing for the idle timeout.
    #[error("idle without a session for {} s", .0.as_secs())]
    Idle(Duration),
    /// The peer read none of its responses for the stall limit while more were queued.
    #[error("responses not read for {} s", .0.as_secs())]
    NotReading(Duration),
    /// Every session the connection held expired.
    #[error("all sessions expired")]
    SessionsExpired,
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The peer sent bytes the stream cannot be resynchronised after.
    #[error("unrecoverable malformed input: {0}")]
    Malformed(manifold_rtsp::ParseError),
    /// The peer buffered more than the limit without completing an item.
    #[error("more than {MAX_BUFFERED} bytes without a complete message")]
    Oversized,
}

/// What the reader task woke up for.
enum Wake {
    Read(io::Result<usize>),
    Timeout,
}

/// Items (requests, frames) handled in a row before the reader task lets the shard's other
/// tasks run: a client flooding requests or frames cannot starve the others.
const ITEMS_PER_TURN: usize = 64;

/// The connection's read deadlines: a started item must complete within the request timeout,
/// a connection without a session must not stay silent past the idle timeout.
#[derive(Debug)]
struct Deadlines {
    request: Duration,
    idle: Duration,
    /// Since when an item has been incomplete in the buffer with no item completing.
    partial_since: Option<Instant>,
    /// When the peer last sent anything.
    last_read: Instant,
}

impl Deadlines {
    /// The earliest deadline of the two at this point, and what breaking it means.
    fn next(&self, holds_session: bool) -> Option<(Instant, ConnError)> {
        let request =
            self.partial_since.map(|t| (t + self.request, ConnError::RequestTimeout(self.request)));
        let idle =
            (!holds_session).then(|| (self.last_read + self.idle, ConnError::Idle(self.idle)));
        match (request, idle) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// Serves one accepted connection until it closes: RTSP or an HTTP tunnel half, over TLS
/// with `tls` (after the handshake).
pub(crate) async fn run(shard: Rc<Shard>, stream: TcpStream, tls: Option<Arc<ServerConfig>>) {
    let peer = match stream.peer_addr() {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "connection gone before it was served");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    tracing::debug!(%peer, shard = shard.id(), tls = tls.is_some(), "connection accepted");
    let request_timeout = shard.config().request_timeout();
    let socket = match tls {
        None => Socket::Plain(stream),
        Some(config) => match handshake(stream, config, request_timeout).await {
            Ok(tls) => Socket::Tls(Box::new(tls)),
            Err(e) => {
                tracing::info!(%peer, side = "downstream", error = %e, "connection closed");
                return;
            }
        },
    };
    let mut stream = SharedStream::new(socket);
    // RTSP, or HTTP opening a tunnel: the first bytes tell.
    let idle_timeout = shard.config().idle_timeout();
    let first = match first_bytes(&mut stream, idle_timeout, request_timeout).await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(e) => {
            tracing::info!(%peer, side = "downstream", error = %e, "connection closed");
            stream.shutdown();
            return;
        }
    };
    if manifold_rtsp::tunnel::is_http(&first) != Some(true) {
        let input = stream.clone();
        serve_rtsp(&shard, stream, peer, Input { reader: input, first, preamble: None }).await;
        return;
    }
    let (head, body) = match crate::tunnel::read_head(&mut stream, first, request_timeout).await {
        Ok(h) => h,
        Err(e) => {
            tracing::info!(%peer, side = "downstream", error = %e, "HTTP tunnel refused");
            if let TunnelFailure::Http(http) = &e {
                answer_and_forget(&mut stream, &http.response(), request_timeout).await;
            }
            stream.shutdown();
            return;
        }
    };
    match head.side {
        TunnelSide::Get => {
            let id = shard.next_id();
            let Some(half) = crate::tunnel::GetHalf::open(&shard, &head, peer, id) else {
                tracing::info!(%peer, cookie = %head.cookie, side = "downstream", "HTTP tunnel refused: cookie in use");
                let refused =
                    b"HTTP/1.0 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
                answer_and_forget(&mut stream, refused, request_timeout).await;
                stream.shutdown();
                return;
            };
            tracing::debug!(%peer, cookie = %head.cookie, path = %head.path, "HTTP tunnel opened");
            let reader = crate::tunnel::TunnelInput::new(half.inbox.clone(), stream.clone());
            let preamble = Some(manifold_rtsp::tunnel::GET_RESPONSE);
            serve_rtsp(&shard, stream, peer, Input { reader, first: Vec::new(), preamble }).await;
            drop(half);
        }
        TunnelSide::Post => {
            let idle = shard.config().session_timeout() * 2;
            match crate::tunnel::pump_post(&shard, peer, &head, body, &mut stream, idle).await {
                Ok(()) => tracing::debug!(%peer, cookie = %head.cookie, "HTTP tunnel POST closed"),
                Err(e) => {
                    tracing::info!(%peer, side = "downstream", error = %e, "HTTP tunnel POST closed");
                    if let TunnelFailure::Http(http) = &e {
                        answer_and_forget(&mut stream, &http.response(), request_timeout).await;
                    }
                }
            }
            stream.shutdown();
        }
    }
}

/// The server side of a TLS handshake on `stream`, within `deadline` (a client that stalls
/// or sends what is not TLS is closed, after an alert where rustls has one to send).
pub(crate) async fn handshake(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    deadline: Duration,
) -> Result<TlsConn, ConnError> {
    let accept = TlsAcceptor::from(config).accept(GatheringTcp(stream));
    match timer::timeout(deadline, async { Ok(accept.into_fallible().await) }).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err((e, tcp))) => {
            crate::sys::shutdown_socket(crate::sys::fd_of(&tcp.0));
            Err(ConnError::Handshake(e))
        }
        // The socket went with the handshake's future (closed on drop).
        Err(_) => Err(ConnError::HandshakeTimeout(deadline)),
    }
}

/// Writes a last answer before closing, within `deadline`; a peer that does not take it is
/// closed anyway.
async fn answer_and_forget(stream: &mut SharedStream, answer: &[u8], deadline: Duration) {
    let write = async {
        stream.write_all(answer).await?;
        stream.flush().await
    };
    let _ = timer::timeout(deadline, async { Ok(write.await) }).await;
}

/// The first bytes of a connection (at least four, or all it sent before closing: `None`
/// when it sent nothing): the first within the idle timeout (a silent connection is idle), the
/// rest of the four within the request timeout (a request has started).
async fn first_bytes(
    stream: &mut SharedStream,
    idle: Duration,
    request: Duration,
) -> Result<Option<Vec<u8>>, ConnError> {
    let mut buf = vec![0u8; READ_CHUNK_MIN];
    let mut len = 0;
    while len < 4 {
        let (deadline, broken) = match len {
            0 => (idle, ConnError::Idle(idle)),
            _ => (request, ConnError::RequestTimeout(request)),
        };
        let read = timer::timeout(deadline, async { Ok(stream.read(&mut buf[len..]).await) });
        match read.await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => len += n,
            Ok(Err(e)) => return Err(ConnError::Io(e)),
            Err(_) => return Err(broken),
        }
    }
    buf.truncate(len);
    Ok((!buf.is_empty()).then_some(buf))
}

/// Where an RTSP connection's requests come from: its socket, or a tunnel's POST halves.
struct Input<R> {
    reader: R,
    /// What was read before the connection was known to be RTSP.
    first: Vec<u8>,
    /// Written before any response (a tunnel GET's HTTP answer).
    preamble: Option<&'static [u8]>,
}

/// Serves one RTSP connection (plain, or a tunnel's GET half) until it closes: its writer
/// task, its `Control`, and its read loop over `input`.
async fn serve_rtsp<R: AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    stream: SharedStream,
    peer: SocketAddr,
    input: Input<R>,
) {
    let id = shard.next_id();
    let over_tls = stream.is_tls();
    let out = Rc::new(ConnOut::new(id, peer));
    shard.add_conn(out.clone());
    if let Some(preamble) = input.preamble {
        out.send_control(preamble);
    }
    // The writer sends media: it runs in the shard's media queue, not this task's.
    let writer = glommio::spawn_local_into(
        write_loop(shard.clone(), stream, out.clone(), shard.config().reader_stall()),
        shard.queues.media,
    );
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "connection writer not started");
            shard.remove_conn(id);
            return;
        }
    };
    let limits = Limits {
        max_head: shard.config().max_request_head,
        max_body: shard.config().max_request_body,
        ..Limits::default()
    };
    // A tunnel's GET half that no POST feeds is closed after the request timeout.
    let idle = match input.preamble {
        Some(_) => shard.config().request_timeout().min(shard.config().idle_timeout()),
        None => shard.config().idle_timeout(),
    };
    let mut control = Control::new(shard.clone(), peer, out.clone(), over_tls);
    let read = read_loop(shard, &mut control, &out, input.reader, input.first, limits, idle);
    match read.await {
        Ok(()) => tracing::debug!(%peer, "connection closed by peer"),
        Err(e) => tracing::info!(%peer, side = "downstream", error = %e, "connection closed"),
    }
    control.release_all();
    out.close();
    // The writer shuts the socket down as it ends; both tasks' handles are gone after this,
    // and with them the socket.
    writer.await;
    shard.remove_conn(id);
}

/// The next read size: double while reads fill the chunk, halve while they use under a
/// quarter of it.
fn next_chunk(chunk: usize, got: usize) -> usize {
    if got >= chunk {
        (chunk * 2).min(READ_CHUNK_MAX)
    } else if got < chunk / 4 {
        (chunk / 2).max(READ_CHUNK_MIN)
    } else {
        chunk
    }
}

/// Decodes the connection's bytes until the peer closes, the connection is closed, or its
/// input cannot be resynchronised: requests to `control`, interleaved frames where `control`
/// routes them (straight to the shard: a publisher's packet does not pass through the
/// session machine); wakes `control` at its sessions' deadlines.
async fn read_loop<R: AsyncRead + Unpin>(
    shard: &Shard,
    control: &mut Control,
    out: &ConnOut,
    mut rd: R,
    first: Vec<u8>,
    limits: Limits,
    idle: Duration,
) -> Result<(), ConnError> {
    let config = shard.config();
    let (max_queued, stall) = (config.max_response_queue, config.reader_stall());
    let mut deadlines = Deadlines {
        request: config.request_timeout(),
        idle,
        partial_since: None,
        last_read: Instant::now(),
    };
    let mut buf: Vec<u8> = first;
    let mut chunk = READ_CHUNK_MIN;
    let mut decoder = Decoder::new(limits);
    loop {
        let mut start = 0;
        let mut items = 0;
        loop {
            if control.closed() {
                return Ok(());
            }
            if out.queued_control() >= max_queued {
                // The peer reads nothing of what it asked for: read nothing more of it until
                // it does, and give up on it after the stall limit.
                let drained = timer::timeout(stall, async {
                    out.drained.wait().await;
                    Ok(())
                });
                if drained.await.is_err() && out.queued_control() >= max_queued {
                    return Err(ConnError::NotReading(stall));
                }
                continue;
            }
            if items >= ITEMS_PER_TURN {
                items = 0;
                glommio::yield_if_needed().await;
            }
            match decoder.feed(&buf[start..]) {
                Ok(None) => break,
                Ok(Some((Item::Request(req), used))) => {
                    start += used;
                    items += 1;
                    deadlines.partial_since = None;
                    tracing::debug!(peer = %control.peer(), method = %req.method, uri = %req.uri, "request");
                    let (resp, after) = control.handle(req).await;
                    control.send(&resp);
                    if let Some(after) = after {
                        control.after_response(after);
                    }
                }
                Ok(Some((Item::Response(resp), used))) => {
                    start += used;
                    items += 1;
                    deadlines.partial_since = None;
                    tracing::debug!(peer = %control.peer(), status = %resp.status, "unexpected response from client ignored");
                }
                Ok(Some((Item::Interleaved { channel, payload }, used))) => {
                    let now = Instant::now();
                    match control.route(channel) {
                        Route::Ingest { stream, track, media } => {
                            shard.ingest_publisher(now, stream, track, payload, media)
                        }
                        Route::ReaderRtcp { reader } => {
                            shard.reader_rtcp_interleaved(now, reader, channel.0, payload)
                        }
                        Route::Drop => {}
                    }
                    start += used;
                    items += 1;
                    deadlines.partial_since = None;
                }
                Err(e) => {
                    let mut resp = Response::new(e.status());
                    if let Some(cseq) = e.cseq() {
                        resp.headers.set("CSeq", cseq.to_string());
                    }
                    control.send(&resp);
                    match e.resume_at() {
                        Some(n) => {
                            tracing::info!(peer = %control.peer(), error = %e, side = "downstream", "malformed request answered");
                            start += n;
                        }
                        None => return Err(ConnError::Malformed(e)),
                    }
                }
            }
        }
        if start > 0 {
            buf.drain(..start);
            decoder.reset();
        }
        if buf.is_empty() {
            deadlines.partial_since = None;
        } else if deadlines.partial_since.is_none() {
            deadlines.partial_since = Some(Instant::now());
        }
        if buf.is_empty() && chunk == READ_CHUNK_MIN && buf.capacity() > 2 * READ_CHUNK_MIN {
            // A burst is over: give its memory back while the connection idles.
            buf.shrink_to(READ_CHUNK_MIN);
        }
        if buf.len() >= MAX_BUFFERED {
            return Err(ConnError::Oversized);
        }
        let len = buf.len();
        buf.resize(len + chunk, 0);
        let own = deadlines.next(control.holds_session());
        let wake_at = match (control.poll_timeout(), own.as_ref().map(|(at, _)| *at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let woke = match wake_at {
            None => Wake::Read(rd.read(&mut buf[len..]).await),
            Some(at) => {
                let read = async { Wake::Read(rd.read(&mut buf[len..]).await) };
                let expire = async {
                    timer::sleep(at.saturating_duration_since(Instant::now())).await;
                    Wake::Timeout
                };
                futures_lite::future::or(read, expire).await
            }
        };
        match woke {
            Wake::Read(n) => {
                let got = *n.as_ref().unwrap_or(&0);
                buf.truncate(len + got);
                if n? == 0 {
                    return Ok(());
                }
                deadlines.last_read = Instant::now();
                chunk = next_chunk(chunk, got);
            }
            Wake::Timeout => {
                buf.truncate(len);
                let now = Instant::now();
                if let Some((at, broken)) = own {
                    if now >= at {
                        return Err(broken);
                    }
                }
                if control.expire_sessions() {
                    return Err(ConnError::SessionsExpired);
                }
            }
        }
    }
}

/// Writes responses, then the media of live TCP readers, until the connection closes. Media
/// is written with one gathering `sendmsg` per batch, straight from the shared packet buffers;
/// when the socket is full the rest of the batch waits for it (bounded by `stall`, past which
/// the connection closes) while the hub keeps queueing into the reader's bounded queue.
async fn write_loop(
    shard: Rc<Shard>,
    mut wr: SharedStream,
    out: Rc<ConnOut>,
    stall: std::time::Duration,
) {
    let mut control: Vec<u8> = Vec::new();
    let mut frames: Vec<TcpFrame> = Vec::new();
    // Per frame: a `$` header of our own, when the packet's headroom holds another channel.
    let mut headers: Vec<Option<[u8; 4]>> = Vec::new();
    loop {
        control.clear();
        control.append(&mut out.control.borrow_mut());
        if !control.is_empty() {
            out.drained.notify();
        }
        frames.clear();
        let mut bytes = 0;
        let now = Instant::now();
        for &reader in out.readers.borrow().iter() {
            if bytes >= WRITE_BATCH || frames.len() >= MAX_FRAMES {
                break;
            }
            let room = MAX_FRAMES - frames.len();
            bytes += shard.drain_reader(now, reader, WRITE_BATCH - bytes, room, &mut frames);
        }
        headers.clear();
        headers.extend(frames.iter().map(|f| match f.packet.framed_for(f.channel) {
            Some(_) => None,
            None => {
                let len = u16::try_from(f.packet.len()).unwrap_or(u16::MAX);
                Some(interleaved_header(ChannelId(f.channel), len))
            }
        }));
        if control.is_empty() && frames.is_empty() {
            if out.closed.get() {
                break;
            }
            out.wake.wait().await;
            continue;
        }
        let mut iov: Vec<IoSlice<'_>> = Vec::with_capacity(1 + 2 * frames.len());
        if !control.is_empty() {
            iov.push(IoSlice::new(&control));
        }
        for (f, header) in frames.iter().zip(&headers) {
            match header {
                None => iov.push(IoSlice::new(f.packet.framed_for(f.channel).unwrap_or_default())),
                Some(h) => {
                    iov.push(IoSlice::new(h));
                    iov.push(IoSlice::new(f.packet.rtp()));
                }
            }
        }
        if let Err(e) = write_gathered(&mut wr, &iov, stall).await {
            tracing::info!(peer = %out.peer, side = "downstream", error = %e, "write failed, closing");
            break;
        }
        // Within the budget, every queue was drained empty, which ended its wake-up: whatever
        // came since (media, a response) has woken the writer again, so wait for that rather
        // than look through the queues once more for nothing.
        if bytes < WRITE_BATCH && frames.len() < MAX_FRAMES && !out.closed.get() {
            drop(iov);
            out.wake.wait().await;
        }
    }
    out.closed.set(true);
    if wr.is_tls() {
        // TLS ends with close_notify, if the peer takes it at once.
        let close = wr.close();
        let _ = timer::timeout(CLOSE_NOTIFY_WAIT, async { Ok(close.await) }).await;
    }
    // Wake the reader task if it is blocked in `read`.
    wr.shutdown();
}

/// Writes every slice. Plain TCP: one gathering `sendmsg` first, then whatever the kernel did
/// not take slice by slice through glommio (which waits for the socket to drain), each within
/// `stall`. TLS: the whole batch to rustls in vectored writes (the packets share records of up
/// to 16 KiB), flushed, all within `stall`.
async fn write_gathered(
    wr: &mut SharedStream,
    iov: &[IoSlice<'_>],
    stall: std::time::Duration,
) -> io::Result<()> {
    if wr.is_tls() {
        let write = manifold_tls::write::write_gathered(wr, iov);
        return match timer::timeout(stall, async { Ok(write.await) }).await {
            Ok(r) => r,
            Err(_) => Err(stalled(stall)),
        };
    }
    let mut skip = match wr.send_vectored(iov) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return Err(e),
    };
    for slice in iov {
        if skip >= slice.len() {
            skip -= slice.len();
            continue;
        }
        let rest = &slice[skip..];
        skip = 0;
        match timer::timeout(stall, async { Ok(wr.write_all(rest).await) }).await {
            Ok(r) => r?,
            Err(_) => return Err(stalled(stall)),
        }
    }
    Ok(())
}

/// A writer that could not hand its bytes to the socket for `stall`.
fn stalled(stall: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("reader stalled: socket full for {} s", stall.as_secs()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_under_a_stream_and_shrink_back_when_idle() {
        let mut chunk = READ_CHUNK_MIN;
        for _ in 0..10 {
            chunk = next_chunk(chunk, chunk);
        }
        assert_eq!(chunk, READ_CHUNK_MAX);
        // A request of a few hundred bytes at a time walks it back down.
        for _ in 0..10 {
            chunk = next_chunk(chunk, 300);
        }
        assert_eq!(chunk, READ_CHUNK_MIN);
        assert_eq!(next_chunk(8192, 4096), 8192);
    }
}
