//! RTSP over HTTP on the RTSP port (the QuickTime tunnel, as ffmpeg's `-rtsp_transport http`,
//! GStreamer's `rtsph://`, VLC and live555's `openRTSP -T` speak it). A connection whose first
//! bytes are `GET ` or `POST` is a tunnel half (`manifold_rtsp::tunnel` parses its head):
//!
//! - the GET half is an ordinary RTSP connection (`conn.rs`: its `Control`, its writer, the
//!   same shared buffers and gathering writes for interleaved media, the same slow-reader
//!   policy) whose input is not its socket but an [`Inbox`] the POST halves fill
//!   ([`TunnelInput`]); it registers its `x-sessioncookie` in the process-wide table
//!   (`registry::Tunnels`) with the client's address ([`GetHalf`]);
//! - a POST half ([`pump_post`]) finds the GET by cookie, only from the same client address,
//!   decodes its base64 body as it arrives and hands the bytes to the GET's shard: straight
//!   into the inbox on the same shard, over the channel mesh (`ShardMsg::TunnelInput`) on
//!   another. Clients open several POSTs over a session; each is pumped the same way.
//!
//! A GET whose POST never comes is closed by its connection's idle deadline (the request
//! timeout, for a tunnel); an inbox that overflows (a client sending faster than its requests
//! are answered) closes the tunnel.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt};
use glommio::timer;
use manifold_rtsp::tunnel::{parse_head, Base64Stream, TunnelError, TunnelHead};

use crate::inbox::Inbox;
use crate::registry::TunnelEnd;
use crate::shard::{Shard, ShardMsg};

/// The largest HTTP head of a tunnel half.
const MAX_HEAD: usize = 8 * 1024;
/// Bytes of decoded requests a GET half may have waiting.
const INBOX_BYTES: usize = 256 * 1024;
/// Bytes read from a POST per call.
const POST_CHUNK: usize = 16 * 1024;

/// Why a tunnel half could not be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelFailure {
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The head, or a POST body, is not what a tunnel sends (answered with its status).
    #[error("{0}")]
    Http(#[from] TunnelError),
    /// Nothing complete within the deadline.
    #[error("no complete HTTP head within {} s", .0.as_secs())]
    Timeout(Duration),
    /// A POST names a tunnel that is not open, or is another client's.
    #[error("no tunnel {cookie:?} for this client")]
    UnknownCookie {
        /// The cookie.
        cookie: String,
    },
    /// The GET half went away, or could not take more.
    #[error("the tunnel's GET half is gone or full")]
    GetGone,
}

/// Reads a tunnel half's HTTP head, `first` being what was read already: the head, and the
/// bytes after it (the start of a POST's body).
pub(crate) async fn read_head<R: AsyncRead + Unpin>(
    socket: &mut R,
    mut buf: Vec<u8>,
    deadline: Duration,
) -> Result<(TunnelHead, Vec<u8>), TunnelFailure> {
    let read = async {
        loop {
            if let Some((head, used)) = parse_head(&buf, MAX_HEAD)? {
                buf.drain(..used);
                return Ok((head, buf));
            }
            let len = buf.len();
            buf.resize(len + 1024, 0);
            let n = socket.read(&mut buf[len..]).await?;
            buf.truncate(len + n);
            if n == 0 {
                return Err(TunnelFailure::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    };
    match timer::timeout(deadline, async { Ok(read.await) }).await {
        Ok(r) => r,
        Err(_) => Err(TunnelFailure::Timeout(deadline)),
    }
}

/// A registered GET half: its cookie in the process-wide table and its inbox on this shard,
/// both removed when it is dropped.
#[derive(Debug)]
pub(crate) struct GetHalf {
    shard: Rc<Shard>,
    cookie: String,
    end: TunnelEnd,
    /// What its POSTs decoded.
    pub(crate) inbox: Rc<Inbox>,
}

impl GetHalf {
    /// Registers connection `conn` from `peer` as the GET half of `head`'s tunnel; `None`
    /// when the cookie is taken.
    pub(crate) fn open(
        shard: &Rc<Shard>,
        head: &TunnelHead,
        peer: SocketAddr,
        conn: u64,
    ) -> Option<GetHalf> {
        let end = TunnelEnd { shard: shard.id(), conn, ip: peer.ip() };
        let max = shard.shared.limits.bounds().connections;
        if !shard.shared.tunnels.open(&head.cookie, end, max) {
            return None;
        }
        let inbox = Rc::new(Inbox::new(INBOX_BYTES));
        shard.add_tunnel(conn, inbox.clone());
        Some(GetHalf { shard: shard.clone(), cookie: head.cookie.clone(), end, inbox })
    }
}

impl Drop for GetHalf {
    fn drop(&mut self) {
        self.shard.shared.tunnels.close(&self.cookie, self.end);
        self.shard.remove_tunnel(self.end.conn);
    }
}

/// The input of a GET half's RTSP connection: what its POSTs decoded. Its own socket is
/// watched only for the client closing it (anything else the client sends on it is
/// dropped: the GET half carries nothing upstream).
#[derive(Debug)]
pub(crate) struct TunnelInput<R> {
    inbox: Rc<Inbox>,
    socket: R,
    scratch: Box<[u8]>,
}

impl<R> TunnelInput<R> {
    /// The input of the GET half whose inbox is `inbox` and whose socket is `socket`.
    pub(crate) fn new(inbox: Rc<Inbox>, socket: R) -> Self {
        TunnelInput { inbox, socket, scratch: vec![0u8; 512].into_boxed_slice() }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TunnelInput<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.inbox.take(buf) {
            None => return Poll::Ready(Err(io::Error::other("tunnel input overflowed"))),
            Some(n) if n > 0 => return Poll::Ready(Ok(n)),
            Some(_) => this.inbox.wait(cx.waker()),
        }
        loop {
            match Pin::new(&mut this.socket).poll_read(cx, &mut this.scratch) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Serves a POST half from `peer` (its head read, `body` the bytes already read after it)
/// until the client closes it: base64 decoded and handed to the tunnel's GET half. A POST
/// silent for `idle` is closed (the client opens another when it has more to say).
pub(crate) async fn pump_post<R: AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    peer: SocketAddr,
    head: &TunnelHead,
    body: Vec<u8>,
    socket: &mut R,
    idle: Duration,
) -> Result<(), TunnelFailure> {
    let Some(end) = shard.shared.tunnels.find(&head.cookie, peer.ip()) else {
        return Err(TunnelFailure::UnknownCookie { cookie: head.cookie.clone() });
    };
    let mut decoder = Base64Stream::new();
    let mut decoded = Vec::new();
    let mut buf = body;
    loop {
        decoded.clear();
        decoder.feed(&buf, &mut decoded)?;
        if !decoded.is_empty() {
            deliver(shard, end, &decoded).await?;
        }
        buf.resize(POST_CHUNK, 0);
        // A read that finds bytes waiting does not yield (ARCHITECTURE.md, Connections).
        glommio::yield_if_needed().await;
        let n = match timer::timeout(idle, async { Ok(socket.read(&mut buf).await) }).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
    }
}

/// Hands decoded bytes to the GET half at `end`: on this shard straight into its inbox,
/// else over the mesh (waiting while that shard's queue is full).
async fn deliver(shard: &Rc<Shard>, end: TunnelEnd, bytes: &[u8]) -> Result<(), TunnelFailure> {
    if end.shard == shard.id() {
        return match shard.tunnel_input(end.conn, bytes) {
            true => Ok(()),
            false => Err(TunnelFailure::GetGone),
        };
    }
    let msg = ShardMsg::TunnelInput { conn: end.conn, bytes: bytes.to_vec() };
    match shard.send_to(end.shard, msg).await {
        true => Ok(()),
        false => Err(TunnelFailure::GetGone),
    }
}
