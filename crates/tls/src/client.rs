//! The client side of TLS: which servers a client trusts ([`Trust`]), the rustls
//! configuration built from that ([`client_config`]), and the server name a certificate is
//! checked against ([`server_name`]). The generator, the source and the relay's pull client
//! all connect through these, so they cannot disagree about what is trusted.
//!
//! Async streams over glommio's sockets are `futures_rustls::TlsConnector::from(config)`
//! (glommio implements the futures-io traits); blocking ones are `rustls::StreamOwned`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which server certificates a client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Those that chain to the system's roots (the platform's store, e.g. /etc/ssl/certs).
    System,
    /// Those that chain to the certificates in this PEM file (a private CA, or a self-signed
    /// server certificate itself).
    CaFile(PathBuf),
    /// Any certificate, unchecked: for tests and labs only. The connection is encrypted but
    /// anyone in the path can read it; a warning says so when the configuration is built.
    InsecureAnyCertificate,
}

/// Why a client configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsClientError {
    /// The CA file could not be read or holds no PEM certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The system's store gave no usable root certificate.
    #[error("no usable root certificate in the system's store ({0})")]
    NoSystemRoots(String),
    /// rustls refused the configuration (e.g. no protocol version the provider supports).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The host is neither a DNS name nor an IP address.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// The ring provider: the one this workspace builds rustls with.
// rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; ring is
// chosen here to keep aws-lc's C build out, and RTSP peers offer no post-quantum groups.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `trust`.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, TlsClientError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        Trust::System => builder.with_root_certificates(system_roots()?).with_no_client_auth(),
        Trust::CaFile(path) => {
            builder.with_root_certificates(roots_from(path)?).with_no_client_auth()
        }
        Trust::InsecureAnyCertificate => {
            tracing::warn!(
                "TLS server certificates are NOT checked (insecure mode): anyone in the path can \
                 impersonate the server"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// The name a server's certificate is checked against: the URL's host, a DNS name or an IP
/// address (an IPv6 literal without brackets).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsClientError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsClientError::ServerName(host.to_owned()))
}

/// The certificates of a PEM file as trust anchors.
fn roots_from(path: &Path) -> Result<RootCertStore, TlsClientError> {
    let bad = |reason: String| TlsClientError::CaFile { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad(format!("none of its {ignored} certificates is usable")));
    }
    Ok(roots)
}

/// The platform's trust store, through rustls-native-certs (which reads what OpenSSL would:
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's bundle).
fn system_roots() -> Result<RootCertStore, TlsClientError> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!("system trust store: {e}");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map_or_else(|| "empty".to_owned(), ToString::to_string);
        return Err(TlsClientError::NoSystemRoots(why));
    }
    Ok(roots)
}

/// Accepts any server certificate ([`Trust::InsecureAnyCertificate`]). The handshake's
/// signatures are still verified, so the peer holds the key of the certificate it sent; who
/// that peer is, is not checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ClientConnection, ServerConfig, ServerConnection};

    /// A self-signed certificate for `localhost` and 127.0.0.1, and a server config with it.
    fn server(names: &[&str]) -> (String, Arc<ServerConfig>) {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let key = rcgen::generate_simple_self_signed(names).unwrap();
        let pem = key.cert.pem();
        let der = key.cert.der().clone();
        let private = PrivateKeyDer::try_from(key.key_pair.serialize_der()).unwrap();
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], private)
            .unwrap();
        (pem, Arc::new(config))
    }

    /// Runs a handshake in memory, no sockets: the client's first error, or none.
    fn handshake(
        client: Arc<ClientConfig>,
        name: &str,
        server: Arc<ServerConfig>,
    ) -> Result<(), rustls::Error> {
        let mut c = ClientConnection::new(client, server_name(name).unwrap())?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut wire.as_slice()).unwrap();
            // The server's own error shows up as the alert the client reads next.
            let _ = s.process_new_packets();
            let mut back = Vec::new();
            s.write_tls(&mut back).unwrap();
            c.read_tls(&mut back.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    fn ca_file(name: &str, pem: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("manifold-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }

    #[test]
    fn a_ca_file_trusts_its_server_and_no_other() {
        let (pem, good) = server(&["localhost", "127.0.0.1"]);
        let (_, other) = server(&["localhost"]);
        let config = client_config(&Trust::CaFile(ca_file("good.pem", &pem))).unwrap();
        handshake(config.clone(), "localhost", good.clone()).unwrap();
        handshake(config.clone(), "127.0.0.1", good.clone()).unwrap();
        // Right certificate, wrong name; and a certificate the file does not hold.
        assert!(handshake(config.clone(), "example.com", good).is_err());
        assert!(handshake(config, "localhost", other).is_err());
    }

    #[test]
    fn insecure_mode_accepts_any_certificate() {
        let (_, any) = server(&["somewhere.invalid"]);
        let config = client_config(&Trust::InsecureAnyCertificate).unwrap();
        handshake(config, "localhost", any).unwrap();
    }

    #[test]
    fn bad_ca_files_are_named() {
        let missing = client_config(&Trust::CaFile("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/ca.pem"), "{missing}");
        let empty = ca_file("empty.pem", "not a certificate at all");
        let err = client_config(&Trust::CaFile(empty)).unwrap_err();
        assert!(matches!(err, TlsClientError::CaFile { .. }), "{err}");
        assert!(server_name("bad name!").is_err());
        assert!(server_name("::1").is_ok());
    }
}
