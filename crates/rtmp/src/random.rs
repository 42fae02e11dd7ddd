//! Filler randomness from a seed (xorshift64*): handshake bytes, SSRCs, first sequence
//! numbers and timestamp offsets only need to differ between sessions, not to be secret, and a
//! seed keeps tests reproducible.

/// The next 32 random bits from `seed` (which must not be zero).
pub(crate) fn next(seed: &mut u64) -> u32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
}
