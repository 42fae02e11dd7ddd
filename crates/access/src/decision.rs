//! What [`crate::Access::check`] answers, and the log record of a refusal.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use manifold_rtsp::auth::{AuthError, Challenge};
use manifold_rtsp::{Response, StatusCode};

use crate::config::Action;
use crate::hook::HookCall;

/// The answer to one request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Serve it.
    Allowed {
        /// The authenticated user; `None` for anonymous access (an `any` user, the default
        /// policy, or a hook that allowed a request without credentials).
        user: Option<String>,
    },
    /// Answer 401 with these challenges (credentials could help).
    Challenge(Unauthorized),
    /// Answer 403: the client is known (or credentials cannot help) and may not do this.
    Forbidden(Refusal),
    /// Too many failures from this address: answer 503 with `Retry-After` (or close); do not
    /// look at its credentials.
    RateLimited {
        /// When the address may try again.
        retry_after: Duration,
        /// For the log.
        attempt: FailedAttempt,
    },
    /// Ask the auth hook, then call [`crate::Access::check`] again with the same request.
    NeedsHook(HookCall),
}

/// A 401: the challenges to offer and, when the request carried credentials that failed, what
/// to log.
#[derive(Debug, Clone)]
pub struct Unauthorized {
    /// Strongest first (Digest SHA-256, Digest MD5, Basic), each its own `WWW-Authenticate`.
    pub challenges: Vec<Challenge>,
    /// The failed attempt, `None` for a first request without credentials or a stale nonce
    /// (the normal Digest round trips, not worth a log line).
    pub failure: Option<FailedAttempt>,
}

impl Unauthorized {
    /// The response: 401 with one `WWW-Authenticate` per challenge (add `CSeq` and send).
    pub fn response(&self) -> Response {
        let mut r = Response::new(StatusCode::UNAUTHORIZED);
        Challenge::add_to(&self.challenges, &mut r);
        r
    }
}

/// A 403 and what to log.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The log record; its reason says how to allow more where that is the operator's call.
    pub attempt: FailedAttempt,
}

/// A refused or failed request, for the log: peer, path, user, reason. `Display` is the log
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The client's address.
    pub peer: IpAddr,
    /// The path asked for.
    pub path: String,
    /// What it asked to do.
    pub action: Action,
    /// The user name it gave, if any.
    pub user: Option<String>,
    /// Why it failed.
    pub reason: Reason,
}

impl fmt::Display for FailedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "access refused: peer {} {} {:?}", self.peer, self.action, self.path)?;
        match &self.user {
            Some(u) => write!(f, " user {u:?}")?,
            None => f.write_str(" no user")?,
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// No `[[user]]` is configured and the publisher is not on loopback.
    #[error(
        "no [[user]] is configured, so only loopback may publish; to allow publishing from \
         elsewhere add a [[user]] with actions = [\"publish\"] (name = \"any\" without a \
         password allows everyone) to the config, or use --auth-hook"
    )]
    DefaultPolicyPublish,
    /// No configured user may do this from this address, so credentials cannot help.
    #[error(
        "no [[user]] may {action} this path from this address (see its paths, actions and ips)"
    )]
    NoUserFits {
        /// The action.
        action: Action,
    },
    /// Every user who may do this has only a `sha256:` password, which needs Basic, and Basic
    /// is not allowed here.
    #[error(
        "the users who may do this have sha256: passwords, which only Basic can check, and Basic \
         needs TLS (or allow_basic = true); give them plain passwords for Digest"
    )]
    OnlyBasicCould,
    /// The `Authorization` header does not parse.
    #[error("malformed Authorization header: {0}")]
    Malformed(AuthError),
    /// Basic (or a password in clear) without TLS and without `allow_basic`.
    #[error("Basic credentials without TLS are refused (set allow_basic = true to accept them)")]
    BasicWithoutTls,
    /// The user is not configured.
    #[error("unknown user")]
    UnknownUser,
    /// The password (or Digest answer) is wrong.
    #[error("wrong password")]
    WrongPassword,
    /// A Digest answer for a user whose password is stored as `sha256:`.
    #[error("Digest credentials for a user with a sha256: password (only Basic can be checked)")]
    DigestForHashedPassword,
    /// A Digest nonce this server did not issue to this client (another process, another
    /// address, or forged).
    #[error("Digest nonce not issued by this server to this client")]
    ForeignNonce,
    /// Authenticated, but the user may not do this here.
    #[error("user may not {action} this path from this address")]
    NotPermitted {
        /// The action.
        action: Action,
    },
    /// Digest credentials while an auth hook decides (the hook needs the password).
    #[error("Digest credentials cannot be checked by the auth hook (it needs Basic)")]
    DigestWithHook,
    /// The auth hook said no (or failed, or timed out).
    #[error("the auth hook denied the request (or failed)")]
    HookDenied,
    /// The hook denied anonymous access and Basic is not allowed on this connection.
    #[error(
        "the auth hook denied anonymous access, and credentials need Basic, which needs TLS \
         (or allow_basic = true)"
    )]
    HookNeedsBasic,
    /// Too many failures from this address.
    #[error("too many failed attempts from this address")]
    RateLimited,
}
