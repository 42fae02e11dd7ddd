//! RTP and RTCP for manifold, sans-IO: packet views and builders, RFC 8285 header extensions,
//! RFC 3550 receiver statistics, NTP time, H.264/H.265 inspection, and the continuity rewriter.
//!
//! Nothing here does I/O or reads a clock: bytes come in as slices, output goes into buffers
//! the caller owns, and time is passed in as an argument.
#![forbid(unsafe_code)]

pub mod codec;
pub mod ext;
pub mod ntp;
pub mod packet;
pub mod rewrite;
pub mod rtcp;
pub mod stats;
mod types;

pub use types::{RtpTime, SeqNo, Ssrc};
