//! Kernel randomness.

use std::hash::{BuildHasher, Hasher};

/// Fills `buf` from the kernel's CSPRNG (`getrandom(2)`), for SSRCs, session ids and nonces.
/// Falls back to hashing the clock if the call fails, which it does not on any supported
/// kernel: these values need to differ, and a run must not stop because they cannot be secret.
pub fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid, exclusively borrowed buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        filled += n as usize;
    }
    for b in &mut buf[filled..] {
        // RandomState is seeded per instance from the process's keys plus a counter.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *b = h.finish() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_byte_and_differs() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill_random(&mut a);
        fill_random(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 64]);
        fill_random(&mut []);
    }
}
