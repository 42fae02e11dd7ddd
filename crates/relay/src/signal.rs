//! SIGINT/SIGTERM → graceful shutdown, without signal handlers: the signals are blocked in
//! every thread (the mask is set before the shards are spawned, and inherited), and one
//! dedicated thread takes them with `sigwait` and raises the shutdown flag the shards watch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::RelayError;
use manifold_sys::signal;

/// Blocks the shutdown signals in this thread (call before spawning any other thread) and
/// starts the thread that turns them into `flag`.
pub(crate) fn install(flag: Arc<AtomicBool>) -> Result<(), RelayError> {
    signal::block_shutdown_signals().map_err(RelayError::Signal)?;
    std::thread::Builder::new()
        .name("manifold-signals".into())
        .spawn(move || match signal::wait_shutdown_signal() {
            Ok(sig) => {
                tracing::info!(signal = signal::name(sig), "shutting down");
                flag.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "sigwait failed; signals will not stop the relay");
            }
        })
        .map_err(RelayError::Signal)?;
    Ok(())
}
