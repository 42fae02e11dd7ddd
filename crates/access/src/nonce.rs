//! Digest nonces that need no table: each nonce carries its issue time and an HMAC over that
//! time and the client's address, keyed by the server secret. Every shard holding the same
//! [`NonceKey`] verifies a nonce any other shard issued; a nonce from another process (another
//! secret) or for another client address does not verify.
//!
//! Wire form: base64url (no padding) of `issued_ms (u64 BE) | serial (u32 BE) | HMAC[..16]`,
//! 38 characters. `issued_ms` counts from the key's epoch, which all shards share.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

const STAMP_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The server secret and time base behind nonces (and hook cache keys). Make one per process
/// (`secret` from `manifold_sys::fill_random`, `epoch` = `Instant::now()` at start) and give a
/// copy to every shard's [`crate::Access`]. `Debug` does not print the secret.
#[derive(Clone)]
pub struct NonceKey {
    secret: [u8; 32],
    epoch: Instant,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey").field("epoch", &self.epoch).finish_non_exhaustive()
    }
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// Ours, for this client, younger than the lifetime.
    Fresh,
    /// Ours and for this client, but older than the lifetime: answer `stale=true`.
    Expired,
    /// Not ours: another secret (a restarted server), another client address, or garbage.
    Foreign,
}

impl NonceKey {
    /// A key from a secret and the time all shards count from.
    pub fn new(secret: [u8; 32], epoch: Instant) -> Self {
        NonceKey { secret, epoch }
    }

    /// An HMAC-SHA256 instance keyed by the secret (also used for hook cache keys).
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot fail.
        #[allow(clippy::expect_used, reason = "HMAC accepts every key length")]
        <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.secret).expect("HMAC key of any length")
    }

    fn tag(&self, stamp: &[u8; STAMP_LEN], peer: IpAddr) -> [u8; TAG_LEN] {
        let mut mac = self.mac();
        mac.update(b"nonce");
        mac.update(stamp);
        // The canonical 16-byte form, so an IPv4 peer seen as ::ffff:a.b.c.d gets the same tag.
        let v6 = match peer.to_canonical() {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        mac.update(&v6.octets());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// A fresh nonce for `peer`. `serial` only makes nonces issued in the same millisecond
    /// differ (each shard counts its own).
    pub(crate) fn issue(&self, now: Instant, peer: IpAddr, serial: u32) -> String {
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        let mut raw = [0u8; STAMP_LEN + TAG_LEN];
        raw[..8].copy_from_slice(&ms.to_be_bytes());
        raw[8..STAMP_LEN].copy_from_slice(&serial.to_be_bytes());
        let mut stamp = [0u8; STAMP_LEN];
        stamp.copy_from_slice(&raw[..STAMP_LEN]);
        raw[STAMP_LEN..].copy_from_slice(&self.tag(&stamp, peer));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce a client sent back.
    pub(crate) fn check(
        &self,
        now: Instant,
        peer: IpAddr,
        nonce: &str,
        lifetime: Duration,
    ) -> NonceCheck {
        let mut raw = [0u8; STAMP_LEN + TAG_LEN];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(n) if n == raw.len() => {}
            _ => return NonceCheck::Foreign,
        }
        let mut stamp = [0u8; STAMP_LEN];
        stamp.copy_from_slice(&raw[..STAMP_LEN]);
        let tag = self.tag(&stamp, peer);
        if !manifold_rtsp::auth::constant_time_eq(&tag, &raw[STAMP_LEN..]) {
            return NonceCheck::Foreign;
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&raw[..8]);
        let issued = Duration::from_millis(u64::from_be_bytes(ms));
        // A shard whose `now` was read a moment before another's issue time sees a nonce from
        // its future: age zero.
        let age = now.saturating_duration_since(self.epoch).saturating_sub(issued);
        if age > lifetime {
            NonceCheck::Expired
        } else {
            NonceCheck::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: Duration = Duration::from_secs(300);

    #[test]
    fn fresh_then_expired_and_bound_to_secret_and_peer() {
        let t0 = Instant::now();
        let key = NonceKey::new([7; 32], t0);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let n = key.issue(t0 + Duration::from_secs(1), peer, 0);
        assert_eq!(n.len(), 38);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(key.check(at(1), peer, &n, LIFE), NonceCheck::Fresh);
        assert_eq!(key.check(at(301), peer, &n, LIFE), NonceCheck::Fresh);
        assert_eq!(key.check(at(302), peer, &n, LIFE), NonceCheck::Expired);
        // Another shard: same key, its own serial; checks the first shard's nonce.
        let shard2 = key.clone();
        assert_eq!(shard2.check(at(2), peer, &n, LIFE), NonceCheck::Fresh);
        assert_ne!(shard2.issue(at(1), peer, 1), n);
        // The mapped form of the same IPv4 address is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(key.check(at(2), mapped, &n, LIFE), NonceCheck::Fresh);
        let other_peer: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(key.check(at(2), other_peer, &n, LIFE), NonceCheck::Foreign);
        let restarted = NonceKey::new([8; 32], t0);
        assert_eq!(restarted.check(at(2), peer, &n, LIFE), NonceCheck::Foreign);
        for bad in ["", "abc", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", &n[..37]] {
            assert_eq!(key.check(at(2), peer, bad, LIFE), NonceCheck::Foreign, "{bad}");
        }
        let mut flipped = n.clone().into_bytes();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(key.check(at(2), peer, &flipped, LIFE), NonceCheck::Foreign);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_foreign_or_checked_without_panic(s in "\\PC{0,60}") {
            let key = NonceKey::new([1; 32], Instant::now());
            let peer: IpAddr = "::1".parse().unwrap();
            proptest::prop_assert_eq!(key.check(Instant::now(), peer, &s, LIFE), NonceCheck::Foreign);
        }
    }
}
