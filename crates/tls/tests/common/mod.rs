//! Test pieces: generated certificates, a client config trusting them, and an in-memory
//! duplex byte pipe (with wake-ups) for futures-rustls to run over without sockets.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_lite::{AsyncRead, AsyncWrite};
use manifold_tls::rustls;
use rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate for `localhost` written as PEM into `dir` (`cert.pem`,
/// `key.pem`), and its DER for a client's trust store.
pub fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), generated.key_pair.serialize_pem()).unwrap();
    generated.cert.der().clone()
}

/// A fresh directory for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A client config trusting exactly `cert`, limited to `versions`.
pub fn client_config(
    cert: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

pub fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// One direction of the pipe: what is waiting to be read, everything ever written, and the
/// reader to wake.
#[derive(Default)]
pub struct Direction {
    pub waiting: VecDeque<u8>,
    pub log: Vec<u8>,
    reader: Option<Waker>,
    /// The writing end is gone: the reader sees end of stream.
    closed: bool,
}

/// One end of an in-memory duplex connection.
pub struct End {
    pub rx: Rc<RefCell<Direction>>,
    pub tx: Rc<RefCell<Direction>>,
}

/// Two connected ends.
pub fn duplex() -> (End, End) {
    let (a, b) = (Rc::new(RefCell::default()), Rc::new(RefCell::default()));
    (End { rx: a.clone(), tx: b.clone() }, End { rx: b, tx: a })
}

impl Drop for End {
    /// A failed handshake drops its end: the other side reads end of stream instead of
    /// waiting forever.
    fn drop(&mut self) {
        let mut tx = self.tx.borrow_mut();
        tx.closed = true;
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
    }
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut rx = self.rx.borrow_mut();
        if rx.waiting.is_empty() && rx.closed {
            return Poll::Ready(Ok(0));
        }
        if rx.waiting.is_empty() {
            rx.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(rx.waiting.len());
        for (slot, b) in buf.iter_mut().zip(rx.waiting.drain(..n)) {
            *slot = b;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut tx = self.tx.borrow_mut();
        tx.waiting.extend(buf);
        tx.log.extend_from_slice(buf);
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The TLS records in `bytes` (which must hold whole records): each one's content type and
/// length.
pub fn records(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert!(at + 5 <= bytes.len(), "a record header cut off at {at}");
        let len = usize::from(u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]));
        assert_eq!(&bytes[at + 1..at + 3], &[3, 3], "record version at {at}");
        out.push((bytes[at], len));
        at += 5 + len;
    }
    assert_eq!(at, bytes.len(), "the last record is cut off");
    out
}
