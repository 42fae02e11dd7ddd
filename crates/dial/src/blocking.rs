//! [`conn`](crate::conn)'s blocking twin, for callers on plain threads (the generator's probe
//! DESCRIBE before a run, `manifold source`): the same TCP, TLS and tunnel, opened as a
//! reader half and a writer half that may live on different threads.
//!
//! A TLS connection is one rustls state for both directions: the halves share it behind a
//! mutex held only to hand bytes to or take them from rustls, never across a socket read.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use manifold_rtsp::tunnel::client::{
    cookie_from, encode_request, parse_response_head, write_get_head, write_post_head,
    TunnelTarget, MAX_RESPONSE_HEAD, POST_CONTENT_LENGTH,
};
use manifold_tls::rustls::ClientConnection;

use crate::conn::{Dialer, OpenError, TunnelAt};

/// A connection opened for blocking use.
pub struct BlockingConn {
    /// What the server sends.
    pub reader: Box<dyn Read + Send>,
    /// What goes to the server: whole messages, one `write_all` each.
    pub writer: Box<dyn Write + Send>,
    /// The receiving socket (read timeouts, the local address).
    pub socket: TcpStream,
}

impl Dialer {
    /// Opens a connection, each phase within `limit`; the read timeout is left at `limit`.
    pub fn open_blocking(&self, limit: Duration) -> Result<BlockingConn, OpenError> {
        let (socket, mut reader, writer) = self.half(limit)?;
        let Some(at) = &self.tunnel else { return Ok(BlockingConn { reader, writer, socket }) };
        let mut random = [0u8; 16];
        manifold_sys::fill_random(&mut random);
        let cookie = cookie_from(random);
        let mut get = writer;
        let mut head = Vec::new();
        write_get_head(&target(at, &cookie), &mut head);
        get.write_all(&head).and_then(|()| get.flush()).map_err(OpenError::TunnelIo)?;
        let early = read_answer(&mut reader, limit)?;
        let (_, _, post) = self.half(limit)?;
        let mut post = PostWriter { stream: post, sent: 0, cookie, dialer: self.clone(), limit };
        post.head().map_err(OpenError::TunnelIo)?;
        // The GET half stays open (its writer unused) for as long as the reader lives.
        let reader = Box::new(io::Cursor::new(early).chain(KeepAlive { reader, _get: get }));
        Ok(BlockingConn { reader, writer: Box::new(post), socket })
    }

    /// One connection, TLS'd for `rtsps://`: its socket, reader and writer.
    #[allow(clippy::type_complexity)] // three parts of one connection, named at the call
    fn half(
        &self,
        limit: Duration,
    ) -> Result<(TcpStream, Box<dyn Read + Send>, Box<dyn Write + Send>), OpenError> {
        let tcp = TcpStream::connect_timeout(&self.addr, limit).map_err(OpenError::Connect)?;
        let setup = |tcp: &TcpStream| {
            tcp.set_nodelay(true)?;
            tcp.set_read_timeout(Some(limit))?;
            tcp.set_write_timeout(Some(limit))?;
            tcp.try_clone()
        };
        let socket = setup(&tcp).map_err(OpenError::Connect)?;
        let writer_socket = tcp.try_clone().map_err(OpenError::Connect)?;
        let Some(tls) = &self.tls else {
            return Ok((socket, Box::new(tcp), Box::new(writer_socket)));
        };
        let mut conn = ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(|e| OpenError::Tls(io::Error::other(e)))?;
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| OpenError::Tls(silent(e, limit)))?;
        }
        let shared = Arc::new(Mutex::new(conn));
        let reader = TlsReader { tcp, shared: shared.clone(), raw: vec![0; 16 * 1024] };
        let writer = TlsWriter { tcp: writer_socket, shared };
        Ok((socket, Box::new(reader), Box::new(writer)))
    }
}

fn target<'a>(at: &'a TunnelAt, cookie: &'a str) -> TunnelTarget<'a> {
    TunnelTarget { path: &at.path, host: &at.host, cookie, user_agent: &at.user_agent }
}

/// A socket read that ran into its timeout says so (the OS says "Resource temporarily
/// unavailable").
fn silent(e: io::Error, limit: Duration) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the server sent nothing for {:.1}s", limit.as_secs_f64()),
        ),
        _ => e,
    }
}

/// Reads the GET's answer head; returns what followed it.
fn read_answer(reader: &mut Box<dyn Read + Send>, limit: Duration) -> Result<Vec<u8>, OpenError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = reader.read(&mut chunk).map_err(|e| OpenError::TunnelIo(silent(e, limit)))?;
        if n == 0 {
            return Err(OpenError::TunnelIo(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the tunnel's GET without an answer",
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((_, used)) = parse_response_head(&buf, MAX_RESPONSE_HEAD)? {
            return Ok(buf.split_off(used));
        }
    }
}

/// The GET half's reader, holding its writer so the connection stays whole.
struct KeepAlive {
    reader: Box<dyn Read + Send>,
    _get: Box<dyn Write + Send>,
}

impl Read for KeepAlive {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

/// A tunnel's POST half: each write is one message, sent as its own base64; a new POST
/// (same cookie) is opened before one carries more than its head announced.
struct PostWriter {
    stream: Box<dyn Write + Send>,
    sent: usize,
    cookie: String,
    dialer: Dialer,
    limit: Duration,
}

impl PostWriter {
    fn head(&mut self) -> io::Result<()> {
        let Some(at) = &self.dialer.tunnel else { return Ok(()) };
        let mut head = Vec::new();
        write_post_head(&target(at, &self.cookie), &mut head);
        self.stream.write_all(&head)?;
        self.stream.flush()
    }
}

impl Write for PostWriter {
    fn write(&mut self, message: &[u8]) -> io::Result<usize> {
        let mut encoded = Vec::with_capacity(message.len() * 4 / 3 + 4);
        encode_request(message, &mut encoded);
        if self.sent + encoded.len() > POST_CONTENT_LENGTH {
            let (_, _, stream) = self.dialer.half(self.limit).map_err(io::Error::other)?;
            self.stream = stream;
            self.sent = 0;
            self.head()?;
        }
        self.sent += encoded.len();
        self.stream.write_all(&encoded)?;
        self.stream.flush()?;
        Ok(message.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// The reading half of a TLS connection: socket reads outside the lock, rustls inside it.
struct TlsReader {
    tcp: TcpStream,
    shared: Arc<Mutex<ClientConnection>>,
    raw: Vec<u8>,
}

fn poisoned() -> io::Error {
    io::Error::other("TLS state poisoned by a panicked thread")
}

impl Read for TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = self.shared.lock().map_err(|_| poisoned())?;
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            let n = self.tcp.read(&mut self.raw)?;
            let mut conn = self.shared.lock().map_err(|_| poisoned())?;
            if n == 0 {
                // No close_notify: an unclean end, as rustls' reader would report it.
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "TLS connection closed"));
            }
            let mut raw = &self.raw[..n];
            while !raw.is_empty() {
                conn.read_tls(&mut raw)?;
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            // Whatever rustls wants to answer (alerts, key updates) goes out now.
            while conn.wants_write() {
                conn.write_tls(&mut self.tcp)?;
            }
        }
    }
}

/// The writing half of a TLS connection.
struct TlsWriter {
    tcp: TcpStream,
    shared: Arc<Mutex<ClientConnection>>,
}

impl Write for TlsWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut conn = self.shared.lock().map_err(|_| poisoned())?;
        conn.writer().write_all(bytes)?;
        while conn.wants_write() {
            conn.write_tls(&mut self.tcp)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};
    use std::net::TcpListener;

    use manifold_rtsp::tunnel::client::TunnelOpenError;
    use manifold_rtsp::tunnel::{parse_head, Base64Stream, TunnelSide, GET_RESPONSE};

    use super::*;

    fn dialer(addr: std::net::SocketAddr) -> Dialer {
        let tunnel = TunnelAt { path: "/x".into(), host: addr.to_string(), user_agent: "t".into() };
        Dialer::new(addr, "127.0.0.1", None, Some(tunnel)).unwrap()
    }

    /// Reads one HTTP head (and what came with it) from `s`.
    fn head(s: &mut TcpStream) -> (TunnelSide, String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before the head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some((h, used)) = parse_head(&buf, 8192).unwrap() {
                return (h.side, h.cookie, buf[used..].to_vec());
            }
        }
    }

    #[test]
    fn a_tunnel_opens_and_carries_requests_in_base64_on_its_post() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut get, _) = listener.accept().unwrap();
            let (side, cookie, _) = head(&mut get);
            assert_eq!(side, TunnelSide::Get);
            get.write_all(GET_RESPONSE).unwrap();
            get.write_all(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n").unwrap();
            let (mut post, _) = listener.accept().unwrap();
            post.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let (side, post_cookie, mut body) = head(&mut post);
            assert_eq!((side, post_cookie), (TunnelSide::Post, cookie));
            let want = b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n";
            let mut decoded = Vec::new();
            let mut d = Base64Stream::new();
            loop {
                d.feed(&body, &mut decoded).unwrap();
                body.clear();
                if decoded.len() >= want.len() {
                    break;
                }
                let mut chunk = [0u8; 256];
                let n = post.read(&mut chunk).unwrap();
                assert!(n > 0, "POST closed early");
                body.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(decoded, want);
        });
        let mut conn = dialer(addr).open_blocking(Duration::from_secs(10)).unwrap();
        conn.writer.write_all(b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n\r\n").unwrap();
        // What came right behind the GET's answer is RTSP, handed out first.
        let answer = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n";
        let mut got = vec![0u8; answer.len()];
        conn.reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, answer);
        server.join().unwrap();
    }

    #[test]
    fn a_refused_get_is_a_typed_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut get, _) = listener.accept().unwrap();
            head(&mut get);
            get.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap();
        });
        let err = dialer(addr).open_blocking(Duration::from_secs(10)).err().expect("refused");
        server.join().unwrap();
        assert!(
            matches!(err, OpenError::Tunnel(TunnelOpenError::Refused { status: 404, .. })),
            "{err}"
        );
    }

    #[test]
    fn a_silent_server_times_out_by_name() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let err = dialer(addr).open_blocking(Duration::from_millis(200)).err().expect("timeout");
        drop(listener);
        assert!(matches!(&err, OpenError::TunnelIo(e) if e.kind() == io::ErrorKind::TimedOut));
        assert!(err.to_string().contains("sent nothing for 0.2s"), "{err}");
    }
}
