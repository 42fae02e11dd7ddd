//! The gathered TLS write, without sockets: a batch of small packets handed to
//! `write_gathered` through futures-rustls' server stream takes a few 16 KiB records, not one
//! record per packet (and the client decrypts exactly the batch).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_lite::future::{block_on, zip};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use manifold_tls::futures_rustls::{TlsAcceptor, TlsConnector};
use manifold_tls::rustls;
use manifold_tls::server::{server_config, ReloadableCert};

use common::*;

/// Interleaved frames as the relay's writer gathers them: a 4-byte `$` header and an RTP
/// packet of 60-1,200 bytes, each its own slice.
fn frames(n: usize) -> (Vec<[u8; 4]>, Vec<Vec<u8>>) {
    let packets: Vec<Vec<u8>> =
        (0..n).map(|i| vec![(i % 251) as u8; 60 + (i * 37) % 1140]).collect();
    let headers = packets
        .iter()
        .map(|p| {
            let len = (p.len() as u16).to_be_bytes();
            [b'$', 0, len[0], len[1]]
        })
        .collect();
    (headers, packets)
}

/// Runs a handshake over an in-memory pipe, then `write` on the server stream: the records
/// the server sent for it and the plaintext the client read.
fn records_of(
    version: &'static rustls::SupportedProtocolVersion,
    expected: usize,
    write: impl AsyncFnOnceWrite,
) -> (Vec<(u8, usize)>, Vec<u8>) {
    // A directory per call: the tests run in parallel, and test_dir empties what it is given.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = test_dir(&format!("records-{:?}-{call}", version.version));
    let der = write_cert(&dir);
    let cert = ReloadableCert::load(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
    let acceptor = TlsAcceptor::from(server_config(Arc::new(cert)).unwrap());
    let connector = TlsConnector::from(client_config(&der, &[version]));
    let (server_end, client_end) = duplex();
    let to_client = server_end.tx.clone();
    block_on(async move {
        let (server, client) =
            zip(acceptor.accept(server_end), connector.connect(localhost(), client_end)).await;
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        // Whatever the handshake left queued (TLS 1.3 session tickets) goes out first.
        server.flush().await.unwrap();
        let mark = to_client.borrow().log.len();
        write.run(&mut server).await;
        let sent = to_client.borrow().log[mark..].to_vec();
        let mut plain = vec![0u8; expected];
        client.read_exact(&mut plain).await.unwrap();
        (records(&sent), plain)
    })
}

/// A write of the batch through the server stream (a trait: async closures taking a
/// borrowed stream are not expressible on this toolchain's MSRV).
trait AsyncFnOnceWrite {
    async fn run(self, server: &mut manifold_tls::futures_rustls::server::TlsStream<End>);
}

struct Gathered<'a>(&'a [IoSlice<'a>]);

impl AsyncFnOnceWrite for Gathered<'_> {
    async fn run(self, server: &mut manifold_tls::futures_rustls::server::TlsStream<End>) {
        manifold_tls::write::write_gathered(server, self.0).await.unwrap();
    }
}

struct OneByOne<'a>(&'a [IoSlice<'a>]);

impl AsyncFnOnceWrite for OneByOne<'_> {
    async fn run(self, server: &mut manifold_tls::futures_rustls::server::TlsStream<End>) {
        for slice in self.0 {
            server.write_all(slice).await.unwrap();
            server.flush().await.unwrap();
        }
    }
}

fn batch<'a>(headers: &'a [[u8; 4]], packets: &'a [Vec<u8>]) -> (Vec<IoSlice<'a>>, Vec<u8>) {
    let iov: Vec<IoSlice<'a>> =
        headers.iter().zip(packets).flat_map(|(h, p)| [IoSlice::new(h), IoSlice::new(p)]).collect();
    let plain = iov.iter().flat_map(|s| s.iter().copied()).collect();
    (iov, plain)
}

#[test]
fn a_gathered_batch_shares_records() {
    let (headers, packets) = frames(300);
    let (iov, plain) = batch(&headers, &packets);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (records, got) = records_of(version, plain.len(), Gathered(&iov));
        assert_eq!(got, plain, "{version:?}: the client reads the batch as written");
        assert!(records.iter().all(|&(typ, _)| typ == 23), "{version:?}: {records:?}");
        // ~190 KB of frames in 16 KiB records: 12 of them, where one per packet would be 300.
        let full = plain.len().div_ceil(16 * 1024);
        assert!(
            records.len() <= full + 4,
            "{version:?}: {} records for {} bytes in {} packets",
            records.len(),
            plain.len(),
            packets.len()
        );
    }
}

#[test]
fn writing_packet_by_packet_takes_a_record_each() {
    // The contrast the gathered write avoids (and a check that the record count sees it).
    let (headers, packets) = frames(50);
    let (iov, plain) = batch(&headers, &packets);
    let (records, got) = records_of(&rustls::version::TLS13, plain.len(), OneByOne(&iov));
    assert_eq!(got, plain);
    assert_eq!(records.len(), iov.len());
}
