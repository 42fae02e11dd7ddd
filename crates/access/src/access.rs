//! [`Access`]: the decision for one request, per shard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use manifold_rtsp::auth::{Authorization, Challenge, Secret, Verdict};

use crate::config::{Policy, Stored, User};
use crate::decision::{Decision, FailedAttempt, Reason, Refusal, Unauthorized};
use crate::hook::{HookCache, HookCall, HookKey, HookQuery};
use crate::limit::{FailureLimiter, RateLimit};
use crate::nonce::{NonceCheck, NonceKey};
use crate::request::{Presented, Request};

/// The tunables of [`Access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a Digest nonce is good for; an older one gets `stale=true` (default 5 min).
    pub nonce_lifetime: Duration,
    /// Failed attempts per address.
    pub failures: RateLimit,
    /// How long a hook answer is reused (default 5 s).
    pub hook_ttl: Duration,
    /// How many hook answers are kept (default 1024).
    pub hook_cache: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nonce_lifetime: Duration::from_secs(300),
            failures: RateLimit::default(),
            hook_ttl: Duration::from_secs(5),
            hook_cache: 1024,
        }
    }
}

/// Who may read and publish what, decided per request: the sans-IO access machine of one
/// shard.
///
/// Make one [`Policy`] (shared read-only in an `Arc`) and one [`NonceKey`] per process, and one
/// `Access` per shard with [`Access::new`]. Everything shards must agree on is derived from
/// those two: a nonce one shard issued verifies on every other shard, with no shared table.
/// What each shard keeps to itself is bounded: the failure table ([`RateLimit::table`]
/// addresses) and the hook cache ([`Limits::hook_cache`] answers).
///
/// Drive it with [`Access::check`] for every request that needs permission (RTSP: DESCRIBE
/// and PLAY for reading, ANNOUNCE and RECORD for publishing, SETUP for whichever the session
/// does; a republish and a `--publish-replace` as a publish). The answer is final except
/// [`Decision::NeedsHook`]: send the question, give the answer to
/// [`Access::handle_hook_answer`] (a failure or a timeout as `false`), then call `check` again
/// with the same request. There are no timers: expiry (nonces, buckets, cached answers) is
/// judged against the `now` each call brings.
///
/// # Rules, in order
///
/// 1. No users and no hook (the default policy): anyone may read; only loopback may publish
///    ([`Reason::DefaultPolicyPublish`] says how to allow more).
/// 2. An anonymous user (`any` without a password) whose paths, actions and ips fit allows
///    without credentials.
/// 3. An address with no failures left is [`Decision::RateLimited`], credentials unread.
/// 4. The users who fit the request decide what a 401 offers: Digest (SHA-256, then MD5) if
///    one has a plain password, Basic if Basic is allowed here (TLS or `allow_basic`). If
///    nothing can be offered the answer is 403.
/// 5. Credentials are checked against the named user (Basic: password, or SHA-256 of it;
///    Digest: our nonce for this address, not older than the lifetime, else `stale=true`);
///    a valid user who may not do this gets 403.
///
/// Every failed check (bad header, unknown user, wrong password, foreign nonce, Basic without
/// TLS, forbidden) costs the address one token and carries a [`FailedAttempt`] to log.
///
/// # Digest replays
///
/// Nonces are stateless, so `nc` is not tracked: within a nonce's lifetime the same answer
/// (same method and URI) can be sent again. The nonce is bound to the client's address,
/// which confines such a replay to that address (with TLS, to nobody who cannot read the
/// stream anyway). GStreamer 1.22 answers without `qop` (RFC 2069 style); that is accepted,
/// since refusing it would lock GStreamer out.
#[derive(Debug)]
pub struct Access {
    policy: Arc<Policy>,
    key: NonceKey,
    limits: Limits,
    failures: FailureLimiter,
    hook_answers: HookCache,
    serial: u32,
}

impl Access {
    /// One shard's machine.
    pub fn new(policy: Arc<Policy>, key: NonceKey, limits: Limits) -> Self {
        Access {
            failures: FailureLimiter::new(limits.failures),
            hook_answers: HookCache::new(limits.hook_ttl, limits.hook_cache),
            policy,
            key,
            limits,
            serial: 0,
        }
    }

    /// The policy this machine applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decides on one request.
    pub fn check(&mut self, now: Instant, request: &Request<'_>) -> Decision {
        let req = Request { peer: request.peer.to_canonical(), ..*request };
        let decision = if self.policy.is_default() {
            self.default_policy(&req)
        } else if self.policy.hook.is_some() {
            self.with_hook(now, &req)
        } else {
            self.with_users(now, &req)
        };
        let failed = match &decision {
            Decision::Challenge(u) => u.failure.is_some(),
            Decision::Forbidden(_) => true,
            _ => false,
        };
        if failed {
            self.failures.record_failure(now, req.peer);
        }
        decision
    }

    /// The hook's answer to the question with this key: `true` for a 2xx, `false` for any
    /// other status, a connection error, an unreadable answer or a timeout.
    pub fn handle_hook_answer(&mut self, now: Instant, key: HookKey, allowed: bool) {
        self.hook_answers.insert(now, key, allowed);
    }

    fn default_policy(&self, req: &Request<'_>) -> Decision {
        match req.action {
            crate::Action::Read => Decision::Allowed { user: None },
            crate::Action::Publish if req.peer.is_loopback() => Decision::Allowed { user: None },
            crate::Action::Publish => forbidden(req, None, Reason::DefaultPolicyPublish),
        }
    }

    fn basic_ok(&self, req: &Request<'_>) -> bool {
        req.over_tls || self.policy.allow_basic
    }

    fn rate_limited(&mut self, now: Instant, req: &Request<'_>) -> Option<Decision> {
        let retry_after = self.failures.blocked(now, req.peer)?;
        let attempt = attempt(req, presented_user(req), Reason::RateLimited);
        Some(Decision::RateLimited { retry_after, attempt })
    }

    fn with_users(&mut self, now: Instant, req: &Request<'_>) -> Decision {
        let fits = |u: &&User| u.permits(req.path, req.action, req.peer);
        if self.policy.users.iter().filter(fits).any(|u| u.password == Stored::Anonymous) {
            return Decision::Allowed { user: None };
        }
        if let Some(limited) = self.rate_limited(now, req) {
            return limited;
        }
        let mut candidates = self.policy.users.iter().filter(fits).peekable();
        let any_fits = candidates.peek().is_some();
        let offer = Offer {
            digest: candidates.any(|u| matches!(u.password, Stored::Plain(_))),
            basic: any_fits && self.basic_ok(req),
        };
        match req.credentials {
            Presented::Nothing => self.challenge_or_refuse(now, req, offer, None),
            Presented::Password { user, password } => {
                let auth =
                    Authorization::Basic { username: user.into(), password: password.into() };
                self.verify(now, req, offer, &auth, None)
            }
            Presented::Header { value, method, uri } => match Authorization::parse(value) {
                Err(e) => {
                    let failure = attempt(req, None, Reason::Malformed(e));
                    self.challenge_or_refuse(now, req, offer, Some(failure))
                }
                Ok(auth) => self.verify(now, req, offer, &auth, Some((method, uri))),
            },
        }
    }

    /// Checks credentials against the named user (Basic when `signed` is `None`).
    fn verify(
        &mut self,
        now: Instant,
        req: &Request<'_>,
        offer: Offer,
        auth: &Authorization,
        signed: Option<(manifold_rtsp::Method, &str)>,
    ) -> Decision {
        let name = auth.username().to_owned();
        let fail = |reason| Some(attempt(req, Some(name.clone()), reason));
        let policy = Arc::clone(&self.policy);
        let Some(user) = policy.user(&name) else {
            return self.challenge_or_refuse(now, req, offer, fail(Reason::UnknownUser));
        };
        let realm = policy.realm.as_str();
        let hash;
        let secret = match &user.password {
            Stored::Plain(p) => Secret::Password(p),
            Stored::Sha256(h) => {
                hash = *h;
                Secret::PasswordSha256(&hash)
            }
            Stored::Anonymous => {
                return self.challenge_or_refuse(now, req, offer, fail(Reason::UnknownUser))
            }
        };
        let mut stale = false;
        match auth {
            Authorization::Basic { .. } => {
                if !self.basic_ok(req) {
                    return self.challenge_or_refuse(
                        now,
                        req,
                        offer,
                        fail(Reason::BasicWithoutTls),
                    );
                }
                if auth.verify(manifold_rtsp::Method::Options, "", realm, "", &secret)
                    != Verdict::Valid
                {
                    return self.challenge_or_refuse(now, req, offer, fail(Reason::WrongPassword));
                }
            }
            Authorization::Digest(d) => {
                let Some((method, uri)) = signed else {
                    return self.challenge_or_refuse(now, req, offer, fail(Reason::WrongPassword));
                };
                if matches!(secret, Secret::PasswordSha256(_)) {
                    let reason = Reason::DigestForHashedPassword;
                    return self.challenge_or_refuse(now, req, offer, fail(reason));
                }
                let life = self.limits.nonce_lifetime;
                match self.key.check(now, req.peer, &d.nonce, life) {
                    NonceCheck::Foreign => {
                        let reason = Reason::ForeignNonce;
                        return self.challenge_or_refuse(now, req, offer, fail(reason));
                    }
                    NonceCheck::Expired => stale = true,
                    NonceCheck::Fresh => {}
                }
                // The nonce is judged above; `verify` compares the answer for that nonce.
                if auth.verify(method, uri, realm, &d.nonce, &secret) != Verdict::Valid {
                    return self.challenge_or_refuse(now, req, offer, fail(Reason::WrongPassword));
                }
            }
        }
        if stale {
            // The right password on an old nonce: a new nonce, no failure.
            return Decision::Challenge(Unauthorized {
                challenges: self.challenges(now, req, offer, true),
                failure: None,
            });
        }
        if user.permits(req.path, req.action, req.peer) {
            Decision::Allowed { user: Some(name) }
        } else {
            forbidden(req, Some(name), Reason::NotPermitted { action: req.action })
        }
    }

    fn challenges(
        &mut self,
        now: Instant,
        req: &Request<'_>,
        offer: Offer,
        stale: bool,
    ) -> Vec<Challenge> {
        let nonce = if offer.digest {
            self.serial = self.serial.wrapping_add(1);
            self.key.issue(now, req.peer, self.serial)
        } else {
            String::new()
        };
        Challenge::offer(&self.policy.realm, &nonce, stale, offer.digest, offer.basic)
    }

    /// 401 with what the fitting users can answer, or 403 when they can answer nothing.
    fn challenge_or_refuse(
        &mut self,
        now: Instant,
        req: &Request<'_>,
        offer: Offer,
        failure: Option<FailedAttempt>,
    ) -> Decision {
        if !offer.digest && !offer.basic {
            let fits = |u: &&User| u.permits(req.path, req.action, req.peer);
            let reason = if self.policy.users.iter().any(|u| fits(&u)) {
                Reason::OnlyBasicCould
            } else {
                Reason::NoUserFits { action: req.action }
            };
            let user = failure.and_then(|f| f.user);
            return forbidden(req, user, reason);
        }
        Decision::Challenge(Unauthorized {
            challenges: self.challenges(now, req, offer, false),
            failure,
        })
    }

    fn with_hook(&mut self, now: Instant, req: &Request<'_>) -> Decision {
        if let Some(limited) = self.rate_limited(now, req) {
            return limited;
        }
        let basic = self.basic_ok(req);
        let offer = Offer { digest: false, basic };
        let (user, password) = match req.credentials {
            Presented::Nothing => (String::new(), String::new()),
            Presented::Password { user, password } => (user.to_owned(), password.to_owned()),
            Presented::Header { value, .. } => match Authorization::parse(value) {
                Err(e) => {
                    let failure = attempt(req, None, Reason::Malformed(e));
                    return self.challenge_or_hook_refusal(now, req, offer, failure);
                }
                Ok(Authorization::Digest(d)) => {
                    let failure = attempt(req, Some(d.username), Reason::DigestWithHook);
                    return self.challenge_or_hook_refusal(now, req, offer, failure);
                }
                Ok(Authorization::Basic { username, password }) => (username, password),
            },
        };
        let anonymous = user.is_empty() && password.is_empty();
        if !anonymous && !basic {
            let failure = attempt(req, Some(user), Reason::BasicWithoutTls);
            return self.challenge_or_hook_refusal(now, req, offer, failure);
        }
        let query = HookQuery {
            user: &user,
            password: &password,
            path: crate::config::normalize(req.path),
            action: req.action,
            ip: req.peer,
            protocol: req.protocol,
        };
        let key = query.key(&self.key);
        match self.hook_answers.answer(now, &key) {
            Some(true) => Decision::Allowed { user: (!anonymous).then_some(user) },
            Some(false) if anonymous => {
                if basic {
                    Decision::Challenge(Unauthorized {
                        challenges: self.challenges(now, req, offer, false),
                        failure: None,
                    })
                } else {
                    forbidden(req, None, Reason::HookNeedsBasic)
                }
            }
            Some(false) => {
                let failure = attempt(req, Some(user), Reason::HookDenied);
                self.challenge_or_hook_refusal(now, req, offer, failure)
            }
            None => {
                let url = self.policy.hook.clone();
                match (url, serde_json::to_string(&query)) {
                    (Some(url), Ok(body)) => Decision::NeedsHook(HookCall { key, url, body }),
                    // Unreachable (a hook is set; these fields always serialize), and denying
                    // is the safe answer if it ever were not.
                    _ => forbidden(req, Some(user), Reason::HookDenied),
                }
            }
        }
    }

    fn challenge_or_hook_refusal(
        &mut self,
        now: Instant,
        req: &Request<'_>,
        offer: Offer,
        failure: FailedAttempt,
    ) -> Decision {
        if offer.basic {
            Decision::Challenge(Unauthorized {
                challenges: self.challenges(now, req, offer, false),
                failure: Some(failure),
            })
        } else {
            Decision::Forbidden(Refusal { attempt: failure })
        }
    }
}

/// What a 401 may offer.
#[derive(Debug, Clone, Copy)]
struct Offer {
    digest: bool,
    basic: bool,
}

fn attempt(req: &Request<'_>, user: Option<String>, reason: Reason) -> FailedAttempt {
    FailedAttempt { peer: req.peer, path: req.path.to_owned(), action: req.action, user, reason }
}

fn forbidden(req: &Request<'_>, user: Option<String>, reason: Reason) -> Decision {
    Decision::Forbidden(Refusal { attempt: attempt(req, user, reason) })
}

/// The user name a request claims, for the log of a refusal that never reads its credentials.
fn presented_user(req: &Request<'_>) -> Option<String> {
    match req.credentials {
        Presented::Nothing => None,
        Presented::Password { user, .. } => Some(user.to_owned()),
        Presented::Header { value, .. } => {
            Authorization::parse(value).ok().map(|a| a.username().to_owned())
        }
    }
}
