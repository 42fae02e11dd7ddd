//! Access control on a shard ([`Gate`]): the access crate's sans-IO machine
//! (`manifold_access::Access`, one per shard, all built from one policy and one nonce secret so
//! a nonce issued on one shard verifies on any other), the requests it is asked about, the
//! refusals it answers and logs, and the `--auth-hook` exchange it needs (one HTTP POST over
//! TCP, bounded by a timeout; no answer denies).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use manifold_access::hook_http::StatusParser;
use manifold_access::{Access, Action, Decision, HookCall, Policy, Presented, Protocol};
use manifold_rtsp::{Request, Response, StatusCode};

use crate::ratelog::RateLimitedLog;

/// How long the auth hook has to answer (connect, request, status line).
const HOOK_TIMEOUT: Duration = Duration::from_secs(3);
/// The most bytes read from the hook before its status line must have come.
const HOOK_MAX_READ: usize = 16 * 1024;

/// One shard's access control.
#[derive(Debug)]
pub(crate) struct Gate {
    access: RefCell<Access>,
    /// Refusals past the per-address failure limit are logged at most once a second.
    limited_log: RefCell<RateLimitedLog>,
}

impl Gate {
    /// The gate of one shard, applying `policy` with the process's nonce `key`.
    pub(crate) fn new(policy: Arc<Policy>, key: manifold_access::NonceKey) -> Gate {
        Gate {
            access: RefCell::new(Access::new(policy, key, manifold_access::Limits::default())),
            limited_log: RefCell::default(),
        }
    }

    /// Whether an RTSP request `req` (from `peer`, over TLS or not, to `action` the stream at
    /// `path`) may go on: `Ok(user)`, or the response that refuses it (401 with challenges,
    /// 403, or 503 with `Retry-After` when the address failed too often).
    pub(crate) async fn authorize(
        &self,
        peer: SocketAddr,
        over_tls: bool,
        req: &Request,
        path: &str,
        action: Action,
    ) -> Result<Option<String>, Response> {
        let credentials = match req.headers.get("Authorization") {
            Some(value) => Presented::Header { value, method: req.method, uri: &req.uri },
            None => Presented::Nothing,
        };
        let protocol = if over_tls { Protocol::Rtsps } else { Protocol::Rtsp };
        self.decide(peer, path, action, protocol, credentials).await.map_err(|r| match r {
            Refused::Unauthorized(response) => response,
            Refused::Forbidden => Response::new(StatusCode::FORBIDDEN),
            Refused::RateLimited(retry_after) => {
                let mut r = Response::new(StatusCode::SERVICE_UNAVAILABLE);
                r.headers.set("Retry-After", retry_after.as_secs().max(1).to_string());
                r
            }
        })
    }

    /// Whether `peer` may `action` the stream at `path` over `protocol` with `credentials`:
    /// `Ok(user)`, or why not (logged here). Asks the auth hook when the policy says so.
    pub(crate) async fn decide(
        &self,
        peer: SocketAddr,
        path: &str,
        action: Action,
        protocol: Protocol,
        credentials: Presented<'_>,
    ) -> Result<Option<String>, Refused> {
        let request = manifold_access::Request {
            peer: peer.ip(),
            path,
            action,
            protocol,
            over_tls: matches!(protocol, Protocol::Rtsps | Protocol::Rtmps),
            credentials,
        };
        // The hook is asked at most once per request: its answer is cached for the re-check.
        let mut asked = false;
        loop {
            let now = Instant::now();
            let decision = self.access.borrow_mut().check(now, &request);
            match decision {
                Decision::Allowed { user } => return Ok(user),
                Decision::Challenge(unauthorized) => {
                    if let Some(failed) = &unauthorized.failure {
                        tracing::warn!(%peer, "{failed}");
                    }
                    return Err(Refused::Unauthorized(unauthorized.response()));
                }
                Decision::Forbidden(refusal) => {
                    tracing::warn!(%peer, "{}", refusal.attempt);
                    return Err(Refused::Forbidden);
                }
                Decision::RateLimited { retry_after, attempt } => {
                    if let Some(suppressed) = self.limited_log.borrow_mut().allow(now) {
                        tracing::warn!(%peer, suppressed, "{attempt}");
                    }
                    return Err(Refused::RateLimited(retry_after));
                }
                Decision::NeedsHook(call) if !asked => {
                    asked = true;
                    let allowed = match ask_hook(&call).await {
                        Ok(status) => StatusParser::allows(status),
                        Err(e) => {
                            tracing::warn!(%peer, url = ?call.url, error = %e,
                                "auth hook failed: request denied");
                            false
                        }
                    };
                    self.access.borrow_mut().handle_hook_answer(Instant::now(), call.key, allowed);
                }
                Decision::NeedsHook(_) => {
                    // The cache did not keep the answer just given (it cannot happen with a
                    // non-zero TTL); deny rather than ask forever.
                    return Err(Refused::Forbidden);
                }
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Credentials could help: the 401 that asks for them.
    Unauthorized(Response),
    /// They could not.
    Forbidden,
    /// The address failed too often: it may try again after this.
    RateLimited(Duration),
}

/// Why the auth hook gave no status.
#[derive(Debug, thiserror::Error)]
enum HookError {
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {} s", HOOK_TIMEOUT.as_secs())]
    Timeout,
    #[error("{0}")]
    Http(#[from] manifold_access::hook_http::HookHttpError),
    #[error("closed before its status line")]
    Closed,
    #[error("more than {HOOK_MAX_READ} bytes without a status line")]
    TooLong,
}

/// POSTs the hook's question and returns the status of its answer, within [`HOOK_TIMEOUT`].
/// The name is resolved off the shard thread.
async fn ask_hook(call: &HookCall) -> Result<u16, HookError> {
    let exchange = async {
        let resolved = crate::resolve::resolve(&call.url.host, call.url.port).await;
        let addr = match resolved {
            Ok(Some(a)) => a,
            _ => return Err(HookError::Resolve(format!("{}:{}", call.url.host, call.url.port))),
        };
        let mut stream =
            glommio::net::TcpStream::connect(addr).await.map_err(std::io::Error::from)?;
        stream.write_all(&call.http_request()).await?;
        let mut parser = StatusParser::new();
        let mut buf = [0u8; 1024];
        let mut read = 0;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(HookError::Closed);
            }
            read += n;
            if let Some(status) = parser.feed(&buf[..n])? {
                return Ok(status);
            }
            if read > HOOK_MAX_READ {
                return Err(HookError::TooLong);
            }
        }
    };
    glommio::timer::timeout(HOOK_TIMEOUT, async { Ok(exchange.await) })
        .await
        .map_err(|_| HookError::Timeout)?
}
