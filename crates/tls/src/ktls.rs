//! Kernel TLS detection. With the kernel's "tls" upper-layer protocol, the record encryption of
//! an established connection moves into the kernel and the relay's TLS readers would be written
//! like plain TCP readers (one gathered `sendmsg` straight from the shared packet buffers). How
//! it plugs in (ARCHITECTURE.md, "RTSPS"): after the rustls handshake, take the traffic secrets
//! (`ServerConfig::enable_secret_extraction`, `ServerConnection::dangerous_extract_secrets`),
//! `setsockopt(TCP_ULP, "tls")`, then `SOL_TLS` `TLS_TX` / `TLS_RX` with the AES-GCM key, IV and
//! sequence numbers; the connection's socket is then plain again for the writer. This module
//! only tells whether the running kernel offers it; the user-space path is the one used.

use std::io;

/// Where the kernel lists the TCP upper-layer protocols it can attach.
pub const AVAILABLE_ULP: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// Whether the kernel offers the "tls" ULP (the `tls` module loaded or built in).
pub fn available() -> io::Result<bool> {
    Ok(lists_tls(&std::fs::read_to_string(AVAILABLE_ULP)?))
}

/// Whether a `tcp_available_ulp` listing (names separated by blanks) names "tls".
pub fn lists_tls(listing: &str) -> bool {
    listing.split_whitespace().any(|ulp| ulp == "tls")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_read_by_name() {
        assert!(!lists_tls("mptcp\n"));
        assert!(lists_tls("mptcp tls\n"));
        assert!(lists_tls("tls"));
        assert!(!lists_tls("ktls espintcp"));
        assert!(!lists_tls(""));
    }

    #[test]
    fn the_running_kernel_answers() {
        // Whatever it offers, the file exists on any kernel with TCP ULPs (4.13+).
        assert!(available().is_ok());
    }
}
