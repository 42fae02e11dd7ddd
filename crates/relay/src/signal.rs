//! Signals, without signal handlers: SIGINT/SIGTERM → graceful shutdown, SIGHUP → reload the
//! TLS certificate (for the handshakes that follow; live connections keep theirs). The signals
//! are blocked in every thread (the mask is set before the shards are spawned, and inherited),
//! and one dedicated thread takes them with `sigwait`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::RelayError;
use manifold_sys::signal;
use manifold_tls::server::ReloadableCert;

/// Blocks the relay's signals in this thread (call before spawning any other thread) and
/// starts the thread that turns shutdown signals into `flag` and SIGHUP into a reload of
/// `cert` (when the relay serves TLS).
pub(crate) fn install(
    flag: Arc<AtomicBool>,
    cert: Option<Arc<ReloadableCert>>,
) -> Result<(), RelayError> {
    signal::block_signals(&signal::SERVER_SIGNALS).map_err(RelayError::Signal)?;
    std::thread::Builder::new()
        .name("manifold-signals".into())
        .spawn(move || loop {
            match signal::wait_signal(&signal::SERVER_SIGNALS) {
                Ok(signal::RELOAD_SIGNAL) => reload(cert.as_deref()),
                Ok(sig) => {
                    tracing::info!(signal = signal::name(sig), "shutting down");
                    flag.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "sigwait failed; signals will not stop the relay");
                    return;
                }
            }
        })
        .map_err(RelayError::Signal)?;
    Ok(())
}

/// SIGHUP: reads the certificate files again; on failure the certificate served so far stays.
fn reload(cert: Option<&ReloadableCert>) {
    let Some(cert) = cert else {
        tracing::info!(
            "SIGHUP: no TLS certificate to reload (no --rtsps-listen or --rtmps-listen)"
        );
        return;
    };
    match cert.reload() {
        Ok(()) => tracing::info!(cert = %cert.cert_path().display(),
            "SIGHUP: TLS certificate reloaded; new handshakes use it"),
        Err(e) => tracing::warn!(error = %crate::error::chain(&e),
            "SIGHUP: TLS certificate not reloaded; keeping the previous one"),
    }
}
