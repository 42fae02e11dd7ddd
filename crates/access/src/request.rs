//! What the relay tells [`crate::Access::check`] about a request: who asks (address, TLS,
//! credentials), for what (path, action) and over which protocol.

use std::fmt;
use std::net::IpAddr;

use manifold_rtsp::Method;

use crate::config::Action;

/// The protocol a request came in on (goes into the hook's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Protocol {
    /// RTSP over TCP.
    Rtsp,
    /// RTSP over TLS.
    Rtsps,
    /// RTMP.
    Rtmp,
    /// RTMP over TLS.
    Rtmps,
}

impl Protocol {
    /// The name in the hook's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtsp => "rtsp",
            Protocol::Rtsps => "rtsps",
            Protocol::Rtmp => "rtmp",
            Protocol::Rtmps => "rtmps",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// None.
    Nothing,
    /// An RTSP `Authorization` header (the first one: the header is not a list), with the
    /// request's method and Request-URI, which a Digest answer signs.
    Header {
        /// The header value.
        value: &'a str,
        /// The request's method.
        method: Method,
        /// The Request-URI exactly as on the request line.
        uri: &'a str,
    },
    /// A user and password given in clear by other means (an RTMP URL's query, a URL's
    /// userinfo). Treated like Basic: only over TLS unless `allow_basic`.
    Password {
        /// The user name.
        user: &'a str,
        /// The password.
        password: &'a str,
    },
}

/// One request to decide on.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The client's address (IPv4-mapped IPv6 addresses count as IPv4).
    pub peer: IpAddr,
    /// The stream path, with or without its leading `/`.
    pub path: &'a str,
    /// What the client wants to do.
    pub action: Action,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// Whether the connection is TLS (Basic is accepted there).
    pub over_tls: bool,
    /// Its credentials.
    pub credentials: Presented<'a>,
}
