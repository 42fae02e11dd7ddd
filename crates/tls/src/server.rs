//! The server side of RTSPS: the rustls config the relay's TLS port accepts with, and its
//! certificate ([`ReloadableCert`]), read from PEM files and swapped on reload for the
//! handshakes that follow; a connection keeps the keys it agreed on, so a reload never touches
//! live connections. A reload that cannot read or use the files keeps the old certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Why a certificate or its key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The certificate file is missing, unreadable, or not PEM.
    #[error("cannot read the certificate chain from {path}")]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file is missing, unreadable, not PEM, or holds no private key.
    #[error("cannot read a private key from {path}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls::pki_types::pem::Error,
    },
    /// The key is of a kind the crypto provider cannot sign with, or is not the
    /// certificate's.
    #[error("the key in {key} does not serve the certificate in {cert}")]
    Unusable {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the configuration (no protocol version in common with the provider).
    #[error("TLS configuration")]
    Config(#[source] rustls::Error),
}

/// The crypto the relay uses: ring (AES-GCM on the CPU's AES instructions, no C build).
// rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange; the other
// provider (aws-lc-rs) needs a C/CMake build this project does without.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8, PKCS#1 or SEC1)
/// and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, CertError> {
    let read_cert = |source| CertError::ReadCert { path: cert.to_owned(), source };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(read_cert)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_cert)?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate { path: cert.to_owned() });
    }
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|source| CertError::ReadKey { path: key.to_owned(), source })?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|source| CertError::Unusable {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// A certificate read from two PEM files, which [`reload`](Self::reload) reads again. As the
/// config's certificate resolver it hands each new handshake the certificate of the moment.
pub struct ReloadableCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

impl ReloadableCert {
    /// Loads the certificate chain at `cert` and the key at `key`.
    pub fn load(cert: &Path, key: &Path) -> Result<ReloadableCert, CertError> {
        let current = load_certified_key(cert, key)?;
        Ok(ReloadableCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again and serves what they hold to the handshakes from now on. On an
    /// error the certificate served so far stays.
    pub fn reload(&self) -> Result<(), CertError> {
        let fresh = Arc::new(load_certified_key(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// The certificate chain's file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server config of the relay's TLS port: TLS 1.2 and 1.3 on ring, no client
/// certificates, the certificate from `cert` at each handshake.
pub fn server_config(cert: Arc<ReloadableCert>) -> Result<Arc<ServerConfig>, CertError> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(CertError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(Arc::new(config))
}
