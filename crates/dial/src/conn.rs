//! A client's connection on a glommio executor: one TCP connection (`rtsp://`), TLS over it
//! (`rtsps://`), or a QuickTime tunnel of two (the GET half receives responses and interleaved
//! media, the POST half carries the requests in base64), each half over TLS for `rtsps://`.
//! The protocol's pieces (heads, base64, the GET's answer) are
//! `manifold_rtsp::tunnel::client`'s, the trust rules `manifold_tls`'s; this module only moves
//! bytes and times the phases.
//!
//! The plain path costs what it did before: [`Conn::read`] reads straight into the caller's
//! buffer through one `match`.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use manifold_rtsp::tunnel::client::{
    cookie_from, encode_request, parse_response_head, write_get_head, write_post_head,
    TunnelOpenError, TunnelTarget, MAX_RESPONSE_HEAD, POST_CONTENT_LENGTH,
};
use manifold_tls::futures_rustls::client::TlsStream;
use manifold_tls::futures_rustls::TlsConnector;
use manifold_tls::rustls::pki_types::ServerName;
use manifold_tls::rustls::ClientConfig as TlsConfig;

/// TLS toward the server: whom to trust and the name its certificate must carry.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    /// Whom to trust.
    pub config: Arc<TlsConfig>,
    /// The name the server's certificate must carry.
    pub name: ServerName<'static>,
}

/// What both heads of a tunnel name.
#[derive(Debug, Clone)]
pub struct TunnelAt {
    /// The URL's path and query.
    pub path: String,
    /// The URL's authority, for `Host`.
    pub host: String,
    /// The heads' `User-Agent`.
    pub user_agent: String,
}

/// How to open a connection to the server (built once, shared by the connections opened).
#[derive(Debug, Clone)]
pub struct Dialer {
    /// The server's address.
    pub addr: SocketAddr,
    /// TLS over every connection (`rtsps://`).
    pub tls: Option<TlsTarget>,
    /// Through an HTTP tunnel.
    pub tunnel: Option<TunnelAt>,
}

/// Why a connection could not be opened; each names its phase.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The TCP connect failed or timed out.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The TLS handshake failed (a certificate not trusted, a server that does not speak
    /// TLS) or did not end in time.
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
    /// Sending the tunnel's heads, or reading the GET's answer, failed or timed out.
    #[error("opening the HTTP tunnel: {0}")]
    TunnelIo(io::Error),
    /// The server answered the tunnel's GET with something other than 200.
    #[error(transparent)]
    Tunnel(#[from] TunnelOpenError),
}

/// When each phase of opening ended, for the histograms.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// The (first) TCP connection established.
    pub connected: Instant,
    /// How long the TLS handshake(s) took: the GET half's, for a tunnel.
    pub tls: Option<Duration>,
    /// How long the tunnel took from the GET's head sent to the POST half open.
    pub tunnel: Option<Duration>,
}

/// One byte stream to the server, plain or TLS.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                // Records rustls holds are on the wire only once flushed.
                s.flush().await
            }
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

/// A tunnel's POST half: requests go out on it in base64; reopened (same cookie) before it
/// carries more than the length its head announced.
struct Post {
    stream: Stream,
    sent: usize,
    cookie: String,
    dialer: Rc<Dialer>,
    encoded: Vec<u8>,
    limit: Duration,
}

/// A client's connection: what it reads from and writes to the server, however it travels.
pub struct Conn {
    /// The connection (the GET half, for a tunnel).
    rx: Stream,
    /// The POST half of a tunnel.
    post: Option<Post>,
    /// Bytes that came after the GET's answer head, handed out by the first reads.
    early: Vec<u8>,
}

impl Conn {
    /// Reads what the server sent into `buf` (0: closed).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.len());
            buf[..n].copy_from_slice(&self.early[..n]);
            self.early.drain(..n);
            return Ok(n);
        }
        self.rx.read(buf).await
    }

    /// Writes `bytes` (whole RTSP messages or interleaved frames) to the server.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(post) = &mut self.post else { return self.rx.write_all(bytes).await };
        post.encoded.clear();
        encode_request(bytes, &mut post.encoded);
        if post.sent + post.encoded.len() > POST_CONTENT_LENGTH {
            let (stream, _) = post.dialer.post_half(&post.cookie, post.limit).await?;
            post.stream = stream;
            post.sent = 0;
        }
        post.sent += post.encoded.len();
        post.stream.write_all(&post.encoded).await
    }

    /// The local address of the (receiving) connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rx.tcp().local_addr().map_err(io::Error::from)
    }
}

/// `fut`, or `TimedOut` after `limit`.
async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(limit).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} not done in {limit:?}")))
    })
    .await
}

impl Dialer {
    /// How to reach `addr`: TLS with `tls` (certificates checked against `host`) when given,
    /// and through a tunnel when `tunnel` is given.
    pub fn new(
        addr: SocketAddr,
        host: &str,
        tls: Option<Arc<TlsConfig>>,
        tunnel: Option<TunnelAt>,
    ) -> Result<Dialer, manifold_tls::client::TlsClientError> {
        let tls = match tls {
            Some(config) => {
                Some(TlsTarget { config, name: manifold_tls::client::server_name(host)? })
            }
            None => None,
        };
        Ok(Dialer { addr, tls, tunnel })
    }

    /// Opens a connection: TCP within `connect_limit`, then the TLS handshake and the tunnel
    /// each within `step_limit`.
    pub async fn open(
        self: &Rc<Self>,
        connect_limit: Duration,
        step_limit: Duration,
    ) -> Result<(Conn, Phases), OpenError> {
        let tcp = self.tcp(connect_limit).await.map_err(OpenError::Connect)?;
        let connected = Instant::now();
        let (mut rx, tls) = self.secure(tcp, step_limit).await.map_err(OpenError::Tls)?;
        let Some(at) = &self.tunnel else {
            return Ok((
                Conn { rx, post: None, early: Vec::new() },
                Phases { connected, tls, tunnel: None },
            ));
        };
        let began = Instant::now();
        let mut random = [0u8; 16];
        manifold_sys::fill_random(&mut random);
        let cookie = cookie_from(random);
        let mut head = Vec::with_capacity(256);
        write_get_head(&target(at, &cookie), &mut head);
        within(step_limit, "sending the tunnel's GET", rx.write_all(&head))
            .await
            .map_err(OpenError::TunnelIo)?;
        let early = within(step_limit, "the answer to the tunnel's GET", read_answer(&mut rx))
            .await
            .map_err(|e| match e.downcast::<TunnelOpenError>() {
                Ok(refused) => OpenError::Tunnel(refused),
                Err(e) => OpenError::TunnelIo(e),
            })?;
        let (stream, _) = self.post_half(&cookie, step_limit).await.map_err(OpenError::TunnelIo)?;
        let post = Post {
            stream,
            sent: 0,
            cookie,
            dialer: self.clone(),
            encoded: Vec::with_capacity(1024),
            limit: step_limit,
        };
        let tunnel = Some(began.elapsed());
        Ok((Conn { rx, post: Some(post), early }, Phases { connected, tls, tunnel }))
    }

    async fn tcp(&self, limit: Duration) -> io::Result<TcpStream> {
        let tcp = TcpStream::connect_timeout(self.addr, limit.max(Duration::from_millis(1)))
            .await
            .map_err(io::Error::from)?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// TLS over `tcp` when the URL is `rtsps://`, with how long the handshake took.
    async fn secure(
        &self,
        tcp: TcpStream,
        limit: Duration,
    ) -> io::Result<(Stream, Option<Duration>)> {
        let Some(tls) = &self.tls else { return Ok((Stream::Tcp(tcp), None)) };
        let began = Instant::now();
        let connector = TlsConnector::from(tls.config.clone());
        let stream =
            within(limit, "TLS handshake", connector.connect(tls.name.clone(), tcp)).await?;
        Ok((Stream::Tls(Box::new(stream)), Some(began.elapsed())))
    }

    /// Opens a POST half for `cookie`: connect, TLS, head.
    async fn post_half(
        &self,
        cookie: &str,
        limit: Duration,
    ) -> io::Result<(Stream, Option<Duration>)> {
        let Some(at) = &self.tunnel else {
            return Err(io::Error::other("no tunnel to post to"));
        };
        let tcp = self.tcp(limit).await?;
        let (mut stream, tls) = self.secure(tcp, limit).await?;
        let mut head = Vec::with_capacity(320);
        write_post_head(&target(at, cookie), &mut head);
        within(limit, "sending the tunnel's POST", stream.write_all(&head)).await?;
        Ok((stream, tls))
    }
}

fn target<'a>(at: &'a TunnelAt, cookie: &'a str) -> TunnelTarget<'a> {
    TunnelTarget { path: &at.path, host: &at.host, cookie, user_agent: &at.user_agent }
}

/// Reads the GET's answer head; returns what followed it. A refusal comes back as an
/// `io::Error` wrapping the [`TunnelOpenError`].
async fn read_answer(rx: &mut Stream) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).min(MAX_RESPONSE_HEAD + 1), 0);
        }
        let n = rx.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the tunnel's GET without an answer",
            ));
        }
        len += n;
        match parse_response_head(&buf[..len], MAX_RESPONSE_HEAD) {
            Ok(None) => {}
            Ok(Some((_, used))) => return Ok(buf[used..len].to_vec()),
            Err(e) => return Err(io::Error::other(e)),
        }
    }
}
