//! `--auth-hook URL`: the question to an operator's HTTP endpoint, its cache key, and the
//! cache of its answers. The exchange's bytes are `hook_http`'s; moving them over a socket,
//! with a timeout, is the relay's.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use hmac::Mac as _;
use lru::LruCache;

use crate::config::Action;
use crate::hook_http::HookUrl;
use crate::nonce::NonceKey;
use crate::request::Protocol;

/// The JSON the hook receives: `{"user", "password", "path", "action", "ip", "protocol"}`.
/// `user` and `password` are empty for a client that gave no credentials (the hook may allow
/// anonymous access); `path` has no leading `/`; `action` is `read` or `publish`; `protocol` is
/// `rtsp`, `rtsps`, `rtmp` or `rtmps`.
#[derive(serde::Serialize)]
pub(crate) struct HookQuery<'a> {
    pub(crate) user: &'a str,
    pub(crate) password: &'a str,
    pub(crate) path: &'a str,
    pub(crate) action: Action,
    pub(crate) ip: IpAddr,
    pub(crate) protocol: Protocol,
}

impl HookQuery<'_> {
    /// The cache key: an HMAC of every field under the server secret, so the cache holds no
    /// password, not even its plain hash.
    pub(crate) fn key(&self, secret: &NonceKey) -> HookKey {
        let mut mac = secret.mac();
        mac.update(b"hook");
        for field in [self.user, self.password, self.path, self.action.as_str()] {
            // Length-prefixed, so ("ab","c") and ("a","bc") differ.
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac.update(self.ip.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(self.protocol.as_str().as_bytes());
        HookKey(mac.finalize().into_bytes().into())
    }
}

/// Which hook question an answer belongs to (see [`crate::Access::handle_hook_answer`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookKey([u8; 32]);

impl fmt::Debug for HookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookKey({:02x}{:02x}{:02x}{:02x}..)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// A question for the hook: POST [`HookCall::http_request`] to [`HookCall::url`], read the
/// status line with [`crate::hook_http::StatusParser`] within a timeout, and hand the result to
/// [`crate::Access::handle_hook_answer`] (a 2xx allows; an error, a timeout or any other
/// status denies). `Debug` hides the body (it holds the password).
#[derive(Clone)]
pub struct HookCall {
    /// Which question this is.
    pub key: HookKey,
    /// Where to send it.
    pub url: HookUrl,
    /// The JSON body.
    pub body: String,
}

impl fmt::Debug for HookCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookCall").field("key", &self.key).field("url", &self.url).finish()
    }
}

impl HookCall {
    /// The whole HTTP/1.1 request to write to the hook's socket.
    pub fn http_request(&self) -> Vec<u8> {
        crate::hook_http::post(&self.url, self.body.as_bytes())
    }
}

/// The hook's answers, each kept for `ttl`, at most `capacity` of them (least recent forgotten).
#[derive(Debug)]
pub(crate) struct HookCache {
    ttl: Duration,
    table: LruCache<HookKey, (bool, Instant)>,
}

impl HookCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        HookCache { ttl, table: LruCache::new(cap) }
    }

    /// The cached answer, if younger than the TTL (an expired one is dropped).
    pub(crate) fn answer(&mut self, now: Instant, key: &HookKey) -> Option<bool> {
        let (allowed, at) = *self.table.get(key)?;
        if now.saturating_duration_since(at) >= self.ttl {
            self.table.pop(key);
            return None;
        }
        Some(allowed)
    }

    pub(crate) fn insert(&mut self, now: Instant, key: HookKey, allowed: bool) {
        self.table.put(key, (allowed, now));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires_and_is_bounded() {
        let t0 = Instant::now();
        let mut c = HookCache::new(Duration::from_secs(5), 2);
        let k = |b: u8| HookKey([b; 32]);
        c.insert(t0, k(1), true);
        assert_eq!(c.answer(t0 + Duration::from_millis(4999), &k(1)), Some(true));
        assert_eq!(c.answer(t0 + Duration::from_secs(5), &k(1)), None);
        for i in 0..10 {
            c.insert(t0, k(i), i % 2 == 0);
            assert!(c.len() <= 2);
        }
        assert_eq!(c.answer(t0, &k(9)), Some(false));
        assert_eq!(c.answer(t0, &k(0)), None);
    }
}
