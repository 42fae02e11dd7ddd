//! Client and server RTSP session state machines, sans-IO.
//!
//! * [`server::ServerSessions`] keeps every RTSP session a server knows (RFC 2326 Appendix A.2
//!   states, per-track transports, timeouts) and decides protocol answers (454, 455, 460, ...);
//!   the runtime decides media (which stream, which ports) and hands its answer back.
//! * [`client::ClientSession`] drives one client through OPTIONS, DESCRIBE/ANNOUNCE, SETUP of
//!   each track, PLAY/RECORD, keep-alives, authentication and TEARDOWN.
//!
//! Both take time as an [`std::time::Instant`] argument and draw randomness (session ids,
//! client nonces) only from what the caller gives them.

pub mod client;
pub mod server;

/// A source of random bytes, supplied by the runtime (nothing here owns an RNG). Any
/// `FnMut(&mut [u8])` is one, e.g. `|buf: &mut [u8]| rng.fill_bytes(buf)`.
pub trait RandomSource {
    /// Fills `buf` with unpredictable bytes.
    fn fill_bytes(&mut self, buf: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill_bytes(&mut self, buf: &mut [u8]) {
        self(buf)
    }
}

/// Characters of generated session ids and nonces: RFC 2326 §3.4 `ALPHA | DIGIT | safe`.
const ID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `len` characters drawn from `random`, 6 bits of entropy each.
pub(crate) fn random_token(random: &mut dyn RandomSource, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    random.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ID_ALPHABET[usize::from(b & 63)] as char).collect()
}

/// Compares two request URIs for "same resource": exact, or equal but for one trailing `/`
/// (clients send the aggregate URL both as `rtsp://h/live` and `rtsp://h/live/`).
pub(crate) fn same_uri(a: &str, b: &str) -> bool {
    a.strip_suffix('/').unwrap_or(a) == b.strip_suffix('/').unwrap_or(b)
}
