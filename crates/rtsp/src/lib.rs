//! RTSP 1.0 (RFC 2326) for manifold, sans-IO: a streaming codec for a byte stream that mixes
//! RTSP messages and `$` interleaved frames, typed headers, Basic/Digest authentication, and
//! client and server session state machines driven with virtual time.
//!
//! Nothing here does I/O or reads a clock: bytes come in as slices, output goes into buffers
//! the caller owns, and `now` is passed in as an argument.
#![forbid(unsafe_code)]

pub mod auth;
pub mod codec;
pub mod error;
pub mod header;
mod message;
pub mod session;
pub mod tunnel;
pub mod url;

pub use error::{ParseError, StatusCode};
pub use message::{ChannelId, Headers, Method, Request, Response, SessionId, Version};
