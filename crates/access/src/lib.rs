//! Who may read and publish what on the relay, sans-IO: the `[[user]]` tables of the config
//! ([`AccessConfig`] → [`Policy`]), RFC 7616 Digest and Basic checks on the protocol crate's
//! `auth` module, stateless server-bound nonces ([`NonceKey`]), a per-address limit on failed
//! attempts, the `--auth-hook` question and its cache ([`HookCall`], [`hook_http`]), and the
//! metrics endpoint's bearer token ([`BearerToken`]).
//!
//! No sockets, no clock, no randomness inside: the relay passes `now`, the server secret, and
//! moves the hook's bytes. See [`Access`] for the rules and the calling contract.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use manifold_access::{Access, AccessConfig, Action, Decision, Limits, NonceKey, Presented, Protocol, Request};
//! use manifold_rtsp::Method;
//!
//! // Once per process: the config's tables, and a secret (the relay draws it with
//! // `manifold_sys::fill_random`) with the epoch every shard counts nonce time from.
//! let config: AccessConfig = toml::from_str(r#"
//!     [[user]]
//!     name = "cam"
//!     password = "s3cret"
//!     actions = ["publish"]
//!     paths = ["cam/*"]
//! "#).unwrap();
//! let policy = Arc::new(config.compile().unwrap());
//! let key = NonceKey::new([7; 32], Instant::now());
//! // Once per shard.
//! let mut access = Access::new(policy, key, Limits::default());
//!
//! // Per request: an ANNOUNCE without credentials gets a 401.
//! let announce = Request {
//!     peer: "192.0.2.10".parse().unwrap(),
//!     path: "/cam/door",
//!     action: Action::Publish,
//!     protocol: Protocol::Rtsp,
//!     over_tls: false,
//!     credentials: Presented::Nothing,
//! };
//! let Decision::Challenge(unauthorized) = access.check(Instant::now(), &announce) else { panic!() };
//! let response = unauthorized.response(); // add CSeq, send
//! assert_eq!(response.headers.get_all("WWW-Authenticate").count(), 2); // SHA-256, MD5
//!
//! // The retry carries `Authorization`, with the method and Request-URI it signs.
//! # let challenges = manifold_rtsp::auth::Challenge::from_response(&response);
//! # let mut client = manifold_rtsp::auth::ClientAuth::new(
//! #     &challenges, manifold_rtsp::auth::Credentials::new("cam", "s3cret"), false).unwrap();
//! # let header = client.authorize(Method::Announce, "rtsp://relay/cam/door", "cn").unwrap();
//! let retry = Request {
//!     credentials: Presented::Header { value: &header, method: Method::Announce, uri: "rtsp://relay/cam/door" },
//!     ..announce
//! };
//! assert!(matches!(access.check(Instant::now(), &retry), Decision::Allowed { user: Some(u) } if u == "cam"));
//! ```
//!
//! # What real clients answer (checked by `tests/real_clients.rs`)
//!
//! A 401 offers Digest `SHA-256`, then Digest `MD5`, then Basic (when allowed), one
//! `WWW-Authenticate` header each, all with the same nonce.
//!
//! * ffmpeg 5.1 (libavformat 59) knows Digest MD5 and MD5-sess only: it keeps the *last*
//!   Digest challenge of a response, so it answers the MD5 one (`algorithm="MD5"`,
//!   `qop="auth"`, `nc`, `cnonce`); offered SHA-256 alone, it sends no credentials at all.
//!   It authenticates from its first request (OPTIONS) on.
//! * GStreamer 1.22 (`rtspsrc user-id/user-pw`) answers Digest with MD5 whatever algorithm is
//!   offered, without `algorithm` and without `qop` (RFC 2069 style), so it works only because
//!   MD5 is offered and legacy answers are accepted.
//!
//! Neither uses SHA-256; it is offered first for clients that do (RFC 7616 §3.7 order).
#![forbid(unsafe_code)]

mod access;
mod bearer;
mod config;
mod decision;
mod hook;
pub mod hook_http;
mod limit;
mod nonce;
mod request;

pub use access::{Access, Limits};
pub use bearer::{BearerError, BearerToken};
pub use config::{AccessConfig, Action, ConfigError, Policy, UserConfig, ANONYMOUS, DEFAULT_REALM};
pub use decision::{Decision, FailedAttempt, Reason, Refusal, Unauthorized};
pub use hook::{HookCall, HookKey};
pub use hook_http::{HookUrl, HookUrlError};
pub use limit::RateLimit;
pub use nonce::NonceKey;
pub use request::{Presented, Protocol, Request};

#[cfg(test)]
mod tests;
