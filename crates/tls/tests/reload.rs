//! The reloadable certificate: a reload serves new handshakes the new certificate while a
//! connection made before it keeps working; a reload from bad or missing files keeps the old
//! one and says why; a key that is not the certificate's is refused at load.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use std::sync::Arc;

use futures_lite::future::{block_on, zip};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use manifold_tls::futures_rustls::{TlsAcceptor, TlsConnector};
use manifold_tls::rustls;
use manifold_tls::server::{server_config, CertError, ReloadableCert};
use rustls::pki_types::CertificateDer;

use common::*;

/// A handshake with a client trusting `trusted`: whether it succeeded, and on success the
/// streams after one byte went each way.
fn connect(
    acceptor: &TlsAcceptor,
    trusted: &CertificateDer<'static>,
) -> Option<(
    manifold_tls::futures_rustls::server::TlsStream<End>,
    manifold_tls::futures_rustls::client::TlsStream<End>,
)> {
    let connector = TlsConnector::from(client_config(trusted, &[&rustls::version::TLS13]));
    let (s, c) = duplex();
    block_on(async {
        let (server, client) = zip(acceptor.accept(s), connector.connect(localhost(), c)).await;
        let (mut server, mut client) = (server.ok()?, client.ok()?);
        exchange(&mut server, &mut client).await;
        Some((server, client))
    })
}

/// One byte each way over an established connection.
async fn exchange(
    server: &mut manifold_tls::futures_rustls::server::TlsStream<End>,
    client: &mut manifold_tls::futures_rustls::client::TlsStream<End>,
) {
    let mut b = [0u8; 1];
    server.write_all(b"s").await.unwrap();
    server.flush().await.unwrap();
    client.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"s");
    client.write_all(b"c").await.unwrap();
    client.flush().await.unwrap();
    server.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"c");
}

#[test]
fn a_reload_serves_new_handshakes_and_keeps_live_connections() {
    let dir = test_dir("reload-swap");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let first = write_cert(&dir);
    let reloadable = Arc::new(ReloadableCert::load(&cert, &key).unwrap());
    let acceptor = TlsAcceptor::from(server_config(reloadable.clone()).unwrap());
    let (mut old_server, mut old_client) = connect(&acceptor, &first).expect("first cert served");

    let second = write_cert(&dir);
    assert!(connect(&acceptor, &second).is_none(), "no reload yet: the first cert is served");
    reloadable.reload().unwrap();
    assert!(connect(&acceptor, &second).is_some(), "the new cert is served after the reload");
    assert!(connect(&acceptor, &first).is_none(), "and the old one no longer");
    // The connection made before the reload keeps its keys.
    block_on(exchange(&mut old_server, &mut old_client));
}

#[test]
fn a_failed_reload_keeps_the_old_certificate() {
    let dir = test_dir("reload-bad");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let first = write_cert(&dir);
    let reloadable = Arc::new(ReloadableCert::load(&cert, &key).unwrap());
    let acceptor = TlsAcceptor::from(server_config(reloadable.clone()).unwrap());

    std::fs::write(&cert, "not a certificate\n").unwrap();
    let e = reloadable.reload().unwrap_err();
    assert!(matches!(e, CertError::NoCertificate { .. }), "{e:?}");
    assert!(e.to_string().contains("cert.pem"), "{e}");

    std::fs::remove_file(&key).unwrap();
    write_cert(&dir);
    std::fs::remove_file(&key).unwrap();
    let e = reloadable.reload().unwrap_err();
    assert!(matches!(e, CertError::ReadKey { .. }), "{e:?}");
    assert!(e.to_string().contains("key.pem"), "{e}");

    assert!(connect(&acceptor, &first).is_some(), "the first cert is still served");
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let (a, b) = (test_dir("mismatch-a"), test_dir("mismatch-b"));
    write_cert(&a);
    write_cert(&b);
    let e = ReloadableCert::load(&a.join("cert.pem"), &b.join("key.pem")).unwrap_err();
    assert!(matches!(e, CertError::Unusable { .. }), "{e:?}");
    let e = ReloadableCert::load(&a.join("missing.pem"), &a.join("key.pem")).unwrap_err();
    assert!(matches!(e, CertError::ReadCert { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.pem"), "{e}");
}
