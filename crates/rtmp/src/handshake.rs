//! The RTMP handshake (RTMP 1.0 §5.2), server side, in both forms clients send:
//!
//! * plain: C1's version field is zero; S1 is random and S2 echoes C1;
//! * digest (the Flash Player / Flash Media Server form, which ffmpeg and OBS send): C1 carries
//!   an HMAC-SHA256 digest at an offset derived from its own bytes, keyed with the Flash Player
//!   key; the server answers with a digest in S1 keyed with the Media Server key, and S2 signed
//!   with a key derived from C1's digest, so the client can check it talks to a real server.
//!
//! A C1 with a non-zero version but no valid digest is answered the plain way, as nginx-rtmp
//! and SRS do. The random bytes come from a caller's seed: they only need to differ between
//! connections, not to be secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::random;

/// C0/S0: the protocol version byte.
pub const VERSION: u8 = 3;
/// The size of C1, S1, C2 and S2.
pub const PACKET_SIZE: usize = 1536;
/// The Flash Player key; its first 30 bytes sign C1.
const CLIENT_KEY: &[u8] = b"Genuine Adobe Flash Player 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
/// The Flash Media Server key; its first 36 bytes sign S1, all 68 derive S2's key.
const SERVER_KEY: &[u8] = b"Genuine Adobe Flash Media Server 001\
\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
/// The version a digest-form S1 advertises (Flash Media Server 4.5).
const SERVER_VERSION: [u8; 4] = [4, 5, 0, 1];
const DIGEST_LEN: usize = 32;

/// Why a handshake cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// C0 asked for a version other than 3 (6 is encrypted RTMPE, not supported).
    #[error("unsupported RTMP version {0} in C0")]
    UnsupportedVersion(u8),
}

/// Which form the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// No digest.
    Plain,
    /// A digest at the offset found from the 4 bytes at `base` (8 or 772).
    Digest {
        /// Where the offset bytes are in C1.
        base: usize,
    },
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // An HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Where the digest sits in a 1536-byte packet for the scheme at `base`.
fn digest_offset(packet: &[u8], base: usize) -> usize {
    let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
    sum % 728 + base + 4
}

/// The digest of `packet` with the 32 bytes at `at` left out.
fn digest_of(packet: &[u8], at: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&packet[..at], &packet[at + DIGEST_LEN..]])
}

/// Finds a valid digest in a C1 or S1: the scheme's base and the digest's offset.
fn find_digest(packet: &[u8], key: &[u8]) -> Option<(usize, usize)> {
    [772, 8].into_iter().find_map(|base| {
        let at = digest_offset(packet, base);
        (digest_of(packet, at, key) == packet[at..at + DIGEST_LEN]).then_some((base, at))
    })
}

/// Filler bytes from the seed.
fn fill(bytes: &mut [u8], seed: &mut u64) {
    for b in bytes {
        *b = (random::next(seed) >> 24) as u8;
    }
}

/// Answers C0 + C1 (`c0c1`, exactly 1537 bytes) with S0 + S1 + S2 (3073 bytes). `time` is
/// the server's epoch for S1's time field; `seed` makes the random bytes (any non-zero value).
pub fn respond(
    c0c1: &[u8; 1 + PACKET_SIZE],
    time: u32,
    seed: u64,
) -> Result<(Vec<u8>, Form), HandshakeError> {
    if c0c1[0] != VERSION {
        return Err(HandshakeError::UnsupportedVersion(c0c1[0]));
    }
    let c1 = &c0c1[1..];
    let mut seed = seed | 1;
    let mut out = vec![0u8; 1 + 2 * PACKET_SIZE];
    out[0] = VERSION;
    let (s1, s2) = out[1..].split_at_mut(PACKET_SIZE);
    s1[..4].copy_from_slice(&time.to_be_bytes());
    fill(&mut s1[8..], &mut seed);
    let client_digest = (c1[4..8] != [0; 4]).then(|| find_digest(c1, &CLIENT_KEY[..30])).flatten();
    let Some((base, at)) = client_digest else {
        // Plain: S1's version stays zero, S2 echoes C1.
        s2.copy_from_slice(c1);
        return Ok((out, Form::Plain));
    };
    s1[4..8].copy_from_slice(&SERVER_VERSION);
    let s1_at = digest_offset(s1, base);
    let digest = digest_of(s1, s1_at, &SERVER_KEY[..36]);
    s1[s1_at..s1_at + DIGEST_LEN].copy_from_slice(&digest);
    fill(s2, &mut seed);
    let key = hmac(SERVER_KEY, &[&c1[at..at + DIGEST_LEN]]);
    let signature = hmac(&key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]);
    s2[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&signature);
    Ok((out, Form::Digest { base }))
}

/// A client's C0 + C1, in the digest form ffmpeg sends (scheme at offset 8) or plain. For
/// clients of this crate and for tests.
pub fn client_hello(digest: bool, seed: u64) -> Vec<u8> {
    let mut seed = seed | 1;
    let mut out = vec![0u8; 1 + PACKET_SIZE];
    out[0] = VERSION;
    let c1 = &mut out[1..];
    fill(&mut c1[8..], &mut seed);
    if digest {
        // ffmpeg's client version.
        c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
        let at = digest_offset(c1, 8);
        let d = digest_of(c1, at, &CLIENT_KEY[..30]);
        c1[at..at + DIGEST_LEN].copy_from_slice(&d);
    }
    out
}

/// Checks a digest-form server answer as ffmpeg does when it plays: S1 carries a valid
/// Media Server digest, and S2 is signed with the key derived from C1's digest.
pub fn verify_server(c1: &[u8], s1: &[u8], s2: &[u8]) -> bool {
    let (Some((_, c1_at)), Some(_)) =
        (find_digest(c1, &CLIENT_KEY[..30]), find_digest(s1, &SERVER_KEY[..36]))
    else {
        return false;
    };
    let key = hmac(SERVER_KEY, &[&c1[c1_at..c1_at + DIGEST_LEN]]);
    hmac(&key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]) == s2[PACKET_SIZE - DIGEST_LEN..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(digest: bool) -> [u8; 1 + PACKET_SIZE] {
        client_hello(digest, 42).try_into().unwrap()
    }

    #[test]
    fn digest_form_is_answered_with_a_verifiable_digest() {
        let c0c1 = hello(true);
        let (out, form) = respond(&c0c1, 0, 7).unwrap();
        assert_eq!(form, Form::Digest { base: 8 });
        assert_eq!(out.len(), 3073);
        let (s1, s2) = out[1..].split_at(PACKET_SIZE);
        assert!(verify_server(&c0c1[1..], s1, s2));
        // A different C1 does not verify against this answer.
        let other = client_hello(true, 44);
        assert!(!verify_server(&other[1..], s1, s2));
    }

    #[test]
    fn plain_form_echoes_c1() {
        let c0c1 = hello(false);
        let (out, form) = respond(&c0c1, 5, 7).unwrap();
        assert_eq!(form, Form::Plain);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..5], &5u32.to_be_bytes());
        assert_eq!(&out[5..9], &[0; 4]);
        assert_eq!(&out[1 + PACKET_SIZE..], &c0c1[1..]);
    }

    #[test]
    fn bad_digest_falls_back_to_plain_and_bad_version_is_an_error() {
        let mut c0c1 = hello(true);
        c0c1[100] ^= 0xff;
        c0c1[900] ^= 0xff;
        assert_eq!(respond(&c0c1, 0, 7).unwrap().1, Form::Plain);
        c0c1[0] = 6;
        assert_eq!(respond(&c0c1, 0, 7), Err(HandshakeError::UnsupportedVersion(6)));
    }
}
