//! SDP (RFC 8866) for manifold, sans-IO. (being written)
#![forbid(unsafe_code)]
