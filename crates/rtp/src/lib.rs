//! RTP and RTCP for manifold, sans-IO: packet views and builders, RFC 8285 header extensions,
//! RFC 3550 receiver statistics and report timing, NTP time, H.264/H.265 inspection, the continuity rewriter, and
//! the one rule that reads an SDP media section as an RTP format (`track`).
//!
//! Nothing here does I/O or reads a clock: bytes come in as slices, output goes into buffers
//! the caller owns, and time is passed in as an argument.
#![forbid(unsafe_code)]

pub mod codec;
pub mod ext;
pub mod ntp;
pub mod packet;
pub mod packetize;
pub mod random;
pub mod report;
pub mod rewrite;
pub mod rtcp;
pub mod stats;
pub mod track;
mod types;

pub use types::{RtpTime, SeqNo, Ssrc};
