//! HTTP-style authentication for RTSP: `Basic` (RFC 7617) and `Digest` (RFC 2617, RFC 7616).
//!
//! * **Client side**: parse every challenge of a 401 ([`Challenge::from_response`] or
//!   [`Challenge::parse_list`]), pick the strongest one you support ([`Challenge::strongest`]),
//!   then answer it for each request with a [`ClientAuth`] (which counts `nc`) or with
//!   [`Challenge::respond`] directly. The caller supplies the client nonce: nothing here draws
//!   random numbers.
//! * **Server side**: issue challenges ([`Challenge::offer`]: Digest SHA-256, then MD5, then
//!   Basic, each from a caller-supplied nonce; [`Challenge::add_to`] writes them as one
//!   `WWW-Authenticate` header each), parse the client's `Authorization` header
//!   ([`Authorization::parse`]), look up the user's [`Secret`] (a password, a precomputed
//!   [`ha1`], or only the SHA-256 of the password, which verifies Basic alone), and
//!   [`Authorization::verify`] it. Nonce issuing, expiry and replay policy are the caller's
//!   (the relay's is `manifold-access`).
//!
//! Supported: algorithms `MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`; `qop=auth` and the
//! legacy RFC 2069 form without `qop`; `nc`/`cnonce`, `opaque`, `stale`, `userhash`; quoted
//! strings with backslash escapes; several challenges in one header value or spread over
//! several `WWW-Authenticate` headers. Not supported: `qop=auth-int` (a challenge offering only
//! that is rejected with [`AuthError::UnsupportedQop`]), `SHA-512-256`, and the RFC 8187
//! `username*` encoding.

use std::fmt;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::{Method, Response};

/// What went wrong parsing, answering or checking an authentication header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header does not follow the challenge/credentials grammar.
    #[error("malformed authentication header: {0}")]
    Malformed(&'static str),
    /// A required parameter is absent.
    #[error("digest parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// None of the offered challenges uses a scheme and algorithm we support.
    #[error("no supported authentication challenge")]
    NoSupportedChallenge,
    /// The challenge offers `qop` values, none of them `auth`.
    #[error("no supported qop offered")]
    UnsupportedQop,
    /// A scheme other than Basic or Digest (e.g. an `Authorization: Negotiate ...`).
    #[error("unsupported authentication scheme `{0}`")]
    UnsupportedScheme(String),
}

/// A user name and password. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into() }
    }

    /// Credentials from an `rtsp://user:pass@host/...` URL's userinfo (percent-decoded), and
    /// the URL with the userinfo removed. `None` when the URL has no userinfo.
    pub fn from_url(url: &str) -> Option<(Credentials, String)> {
        let scheme_end = url.find("://")? + 3;
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let at = rest[..authority_end].rfind('@')?;
        let userinfo = &rest[..at];
        let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let stripped = format!("{}{}", &url[..scheme_end], &rest[at + 1..]);
        Some((Credentials::new(percent_decode(user), percent_decode(pass)), stripped))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A Digest hash algorithm (RFC 7616 §3.3), strongest last in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `MD5-sess`
    Md5Sess,
    /// `MD5` (also what an absent `algorithm` parameter means)
    Md5,
    /// `SHA-256-sess`
    Sha256Sess,
    /// `SHA-256`
    Sha256,
}

impl Algorithm {
    /// The algorithm's token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Looks an algorithm up by its token (case-insensitive).
    pub fn from_token(token: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether this is a `-sess` variant (HA1 also covers the nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Whether two algorithms share the same hash function (and so the same base HA1).
    fn same_hash(self, other: Algorithm) -> bool {
        self.is_sha256() == other.is_sha256()
    }

    fn is_sha256(self) -> bool {
        matches!(self, Algorithm::Sha256 | Algorithm::Sha256Sess)
    }

    /// The lowercase hex digest of the parts joined with `:`.
    fn hash(self, parts: &[&str]) -> String {
        fn run<D: md5::Digest>(mut d: D, parts: &[&str]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            hex(&d.finalize())
        }
        if self.is_sha256() {
            run(Sha256::new(), parts)
        } else {
            run(Md5::new(), parts)
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// The base HA1 = H(username:realm:password) in lowercase hex, which a server may store
/// instead of the password (see [`Secret::Ha1`]). `-sess` variants use the same base value.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash(&[username, realm, password])
}

/// A Digest quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication only.
    Auth,
    /// `auth-int`: authentication with body integrity (parsed, never answered).
    AuthInt,
}

impl Qop {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    fn from_token(token: &str) -> Option<Qop> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// A `Digest` challenge (one `WWW-Authenticate` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// The protection space.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// Opaque data the client echoes back.
    pub opaque: Option<String>,
    /// The `domain` parameter, as sent.
    pub domain: Option<String>,
    /// The previous request was rejected only because its nonce was stale.
    pub stale: bool,
    /// The algorithm; `None` when the parameter was absent (legacy, meaning MD5).
    pub algorithm: Option<Algorithm>,
    /// The offered qop values; `None` when the parameter was absent (legacy RFC 2069 digest).
    /// Unknown qop tokens are dropped, so `Some(vec![])` means "offered, none understood".
    pub qop: Option<Vec<Qop>>,
    /// The server supports hashed user names (RFC 7616 §3.4.4).
    pub userhash: bool,
}

impl DigestChallenge {
    /// A challenge as a server issues it: the given realm, caller-supplied nonce and algorithm,
    /// `qop="auth"`, no opaque, not stale.
    pub fn new(realm: impl Into<String>, nonce: impl Into<String>, algorithm: Algorithm) -> Self {
        DigestChallenge {
            realm: realm.into(),
            nonce: nonce.into(),
            opaque: None,
            domain: None,
            stale: false,
            algorithm: Some(algorithm),
            qop: Some(vec![Qop::Auth]),
            userhash: false,
        }
    }

    /// The effective algorithm (MD5 when absent).
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic {
        /// The protection space.
        realm: String,
    },
    /// `Digest ...`.
    Digest(DigestChallenge),
    /// A scheme or Digest algorithm we do not speak (kept so callers can log it).
    Unsupported {
        /// The scheme name, plus the algorithm for an unknown Digest algorithm.
        scheme: String,
    },
}

impl Challenge {
    /// A `Basic` challenge for a realm.
    pub fn basic(realm: impl Into<String>) -> Self {
        Challenge::Basic { realm: realm.into() }
    }

    /// The challenges a server's 401 offers, strongest first, as RFC 7616 §3.7 asks: Digest
    /// `SHA-256` then `MD5` (both `qop="auth"`, the same `nonce`, `stale` as given) when
    /// `digest`, then `Basic` when `basic`. Clients that pick the first algorithm they know take
    /// SHA-256 when they can; clients that keep the last Digest challenge (ffmpeg) take MD5.
    pub fn offer(realm: &str, nonce: &str, stale: bool, digest: bool, basic: bool) -> Vec<Self> {
        let mut out = Vec::with_capacity(3);
        if digest {
            for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
                let mut d = DigestChallenge::new(realm, nonce, algorithm);
                d.stale = stale;
                out.push(Challenge::Digest(d));
            }
        }
        if basic {
            out.push(Challenge::basic(realm));
        }
        out
    }

    /// Appends one `WWW-Authenticate` header per challenge to a response, in order (some
    /// clients read only one challenge per header).
    pub fn add_to(challenges: &[Challenge], response: &mut Response) {
        for c in challenges {
            response.headers.append("WWW-Authenticate", c.to_string());
        }
    }

    /// Parses one `WWW-Authenticate` value, which may hold several comma-separated challenges.
    pub fn parse_list(value: &str) -> Result<Vec<Challenge>, AuthError> {
        let mut p = Parser::new(value);
        let mut out = Vec::new();
        loop {
            p.skip_list_separators();
            if p.at_end() {
                break;
            }
            let scheme = p.token();
            if scheme.is_empty() {
                return Err(AuthError::Malformed("expected an auth scheme"));
            }
            let params = p.params(false)?;
            out.push(Challenge::from_params(scheme, &params)?);
        }
        Ok(out)
    }

    /// Every challenge in every `WWW-Authenticate` header of a response, in order. Header values
    /// that do not parse are skipped (a server's odd extra challenge must not hide a good one).
    pub fn from_response(response: &Response) -> Vec<Challenge> {
        response
            .headers
            .get_all("WWW-Authenticate")
            .filter_map(|v| Challenge::parse_list(v).ok())
            .flatten()
            .collect()
    }

    fn from_params(scheme: &str, params: &[(&str, String)]) -> Result<Challenge, AuthError> {
        let find = |name: &str| {
            params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("Basic") {
            return Ok(Challenge::Basic { realm: find("realm").unwrap_or_default() });
        }
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Ok(Challenge::Unsupported { scheme: scheme.to_owned() });
        }
        let algorithm = match find("algorithm") {
            None => None,
            Some(a) => match Algorithm::from_token(&a) {
                Some(a) => Some(a),
                None => return Ok(Challenge::Unsupported { scheme: format!("Digest {a}") }),
            },
        };
        let flag = |name: &str| find(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Challenge::Digest(DigestChallenge {
            realm: find("realm").ok_or(AuthError::MissingParameter("realm"))?,
            nonce: find("nonce").ok_or(AuthError::MissingParameter("nonce"))?,
            opaque: find("opaque"),
            domain: find("domain"),
            stale: flag("stale"),
            algorithm,
            qop: find("qop").map(|q| {
                q.split(',').filter_map(|t| Qop::from_token(t.trim())).collect::<Vec<_>>()
            }),
            userhash: flag("userhash"),
        }))
    }

    /// How much we prefer answering this challenge (higher is stronger); `None` if we cannot.
    fn rank(&self, allow_basic: bool) -> Option<u8> {
        match self {
            Challenge::Basic { .. } => allow_basic.then_some(0),
            Challenge::Digest(d) => {
                if let Some(qop) = &d.qop {
                    if !qop.contains(&Qop::Auth) {
                        return None;
                    }
                }
                Some(match d.effective_algorithm() {
                    Algorithm::Md5Sess => 1,
                    Algorithm::Md5 => 2,
                    Algorithm::Sha256Sess => 3,
                    Algorithm::Sha256 => 4,
                })
            }
            Challenge::Unsupported { .. } => None,
        }
    }

    /// The strongest challenge we can answer: SHA-256 over MD5 (plain over `-sess`), any
    /// Digest over Basic, Basic only when `allow_basic` (it sends the password in clear).
    /// Among equals, the first offered wins.
    pub fn strongest(challenges: &[Challenge], allow_basic: bool) -> Option<&Challenge> {
        let mut best: Option<(&Challenge, u8)> = None;
        for c in challenges {
            if let Some(r) = c.rank(allow_basic) {
                if best.is_none_or(|(_, b)| r > b) {
                    best = Some((c, r));
                }
            }
        }
        best.map(|(c, _)| c)
    }

    /// Answers this challenge for one request. `cnonce` is the client nonce (caller-chosen,
    /// unpredictable) and `nc` the number of requests sent with this server nonce, this one
    /// included (starting at 1); both are ignored for Basic and legacy (no-qop) Digest.
    pub fn respond(
        &self,
        credentials: &Credentials,
        method: Method,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<Authorization, AuthError> {
        match self {
            Challenge::Basic { .. } => Ok(Authorization::Basic {
                username: credentials.username.clone(),
                password: credentials.password.clone(),
            }),
            Challenge::Digest(d) => {
                let qop = match &d.qop {
                    None => None,
                    Some(list) if list.contains(&Qop::Auth) => Some(Qop::Auth),
                    Some(_) => return Err(AuthError::UnsupportedQop),
                };
                let algorithm = d.effective_algorithm();
                let (cnonce, nc) = match (qop, algorithm.is_session()) {
                    (None, false) => (None, None),
                    (None, true) => (Some(cnonce.to_owned()), None),
                    (Some(_), _) => (Some(cnonce.to_owned()), Some(nc)),
                };
                let username = if d.userhash {
                    algorithm.hash(&[&credentials.username, &d.realm])
                } else {
                    credentials.username.clone()
                };
                let mut auth = DigestAuthorization {
                    username,
                    realm: d.realm.clone(),
                    nonce: d.nonce.clone(),
                    uri: uri.to_owned(),
                    response: String::new(),
                    algorithm: d.algorithm,
                    cnonce,
                    nc,
                    qop,
                    opaque: d.opaque.clone(),
                    userhash: d.userhash,
                };
                let base = ha1(algorithm, &credentials.username, &d.realm, &credentials.password);
                auth.response = auth.expected_response(&base, method.as_str());
                Ok(Authorization::Digest(auth))
            }
            Challenge::Unsupported { .. } => Err(AuthError::NoSupportedChallenge),
        }
    }
}

impl fmt::Display for Challenge {
    /// The `WWW-Authenticate` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Challenge::Basic { realm } => write!(f, "Basic realm={}", Quoted(realm)),
            Challenge::Digest(d) => {
                write!(f, "Digest realm={}, nonce={}", Quoted(&d.realm), Quoted(&d.nonce))?;
                if let Some(a) = d.algorithm {
                    write!(f, ", algorithm={a}")?;
                }
                if let Some(qop) = &d.qop {
                    let list: Vec<&str> = qop.iter().map(|q| q.as_str()).collect();
                    write!(f, ", qop={}", Quoted(&list.join(",")))?;
                }
                if let Some(o) = &d.opaque {
                    write!(f, ", opaque={}", Quoted(o))?;
                }
                if let Some(dom) = &d.domain {
                    write!(f, ", domain={}", Quoted(dom))?;
                }
                if d.stale {
                    f.write_str(", stale=true")?;
                }
                if d.userhash {
                    f.write_str(", userhash=true")?;
                }
                Ok(())
            }
            Challenge::Unsupported { scheme } => f.write_str(scheme),
        }
    }
}

/// The Digest fields of an `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAuthorization {
    /// The user name (or its hash when `userhash`).
    pub username: String,
    /// The realm, echoed from the challenge.
    pub realm: String,
    /// The server nonce, echoed from the challenge.
    pub nonce: String,
    /// The digest URI (normally the Request-URI).
    pub uri: String,
    /// The lowercase-hex request digest.
    pub response: String,
    /// The algorithm, as sent (`None`: absent, meaning MD5).
    pub algorithm: Option<Algorithm>,
    /// The client nonce.
    pub cnonce: Option<String>,
    /// The nonce count.
    pub nc: Option<u32>,
    /// The chosen qop (`None`: legacy RFC 2069 digest).
    pub qop: Option<Qop>,
    /// The opaque value, echoed from the challenge.
    pub opaque: Option<String>,
    /// Whether `username` is H(username:realm).
    pub userhash: bool,
}

impl DigestAuthorization {
    fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }

    /// The response digest for a base HA1 (H(user:realm:password)) and a method name.
    fn expected_response(&self, base_ha1: &str, method: &str) -> String {
        let alg = self.effective_algorithm();
        let cnonce = self.cnonce.as_deref().unwrap_or("");
        let ha1 = if alg.is_session() {
            alg.hash(&[base_ha1, &self.nonce, cnonce])
        } else {
            base_ha1.to_owned()
        };
        let ha2 = alg.hash(&[method, &self.uri]);
        match self.qop {
            Some(qop) => {
                let nc = format!("{:08x}", self.nc.unwrap_or(0));
                alg.hash(&[&ha1, &self.nonce, &nc, cnonce, qop.as_str(), &ha2])
            }
            None => alg.hash(&[&ha1, &self.nonce, &ha2]),
        }
    }
}

/// The credentials of an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic base64(user:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password (not printed by `Debug`).
        password: String,
    },
    /// `Digest username="...", ...`.
    Digest(DigestAuthorization),
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<hidden>")
                .finish(),
            Authorization::Digest(d) => f.debug_tuple("Digest").field(d).finish(),
        }
    }
}

/// What the server knows about a user, to check credentials against.
#[derive(Debug, Clone, Copy)]
pub enum Secret<'a> {
    /// The plain password.
    Password(&'a str),
    /// A stored base HA1 ([`ha1`]) for the given hash family: it verifies Digest answers that
    /// use the same hash function (e.g. an MD5 HA1 covers `MD5` and `MD5-sess`), and Basic.
    Ha1 {
        /// The algorithm the HA1 was computed with.
        algorithm: Algorithm,
        /// The lowercase hex HA1.
        hex: &'a str,
    },
    /// Only SHA-256(password) is known (a config's `sha256:HEX` password). It verifies Basic
    /// alone: a Digest answer hashes the password with the user name and realm, which cannot
    /// be computed from SHA-256(password), so every Digest answer is [`Verdict::Invalid`].
    PasswordSha256(&'a [u8; 32]),
}

impl Secret<'_> {
    /// Whether a Digest answer can be checked against this secret (and with which hash
    /// family): a password verifies any algorithm, an HA1 its own family, a password hash none.
    pub fn verifies_digest(&self, algorithm: Algorithm) -> bool {
        match *self {
            Secret::Password(_) => true,
            Secret::Ha1 { algorithm: a, .. } => a.same_hash(algorithm),
            Secret::PasswordSha256(_) => false,
        }
    }
}

/// The outcome of [`Authorization::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are good: serve the request.
    Valid,
    /// The digest is right but for another nonce: answer 401 with a fresh nonce and
    /// `stale=true`, so the client retries without asking the user.
    Stale,
    /// Wrong user, password, realm, URI or malformed answer: answer 401.
    Invalid,
}

impl Authorization {
    /// Parses an `Authorization` header value.
    pub fn parse(value: &str) -> Result<Authorization, AuthError> {
        let mut p = Parser::new(value);
        p.skip_ws();
        let scheme = p.token();
        if scheme.eq_ignore_ascii_case("Basic") {
            let token68 = p.rest().trim();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token68)
                .map_err(|_| AuthError::Malformed("Basic credentials are not base64"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| AuthError::Malformed("Basic credentials are not UTF-8"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or(AuthError::Malformed("Basic credentials have no `:`"))?;
            return Ok(Authorization::Basic {
                username: user.to_owned(),
                password: pass.to_owned(),
            });
        }
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::UnsupportedScheme(scheme.to_owned()));
        }
        let params = p.params(true)?;
        p.skip_list_separators();
        if !p.at_end() {
            return Err(AuthError::Malformed("trailing data after Digest credentials"));
        }
        let find = |name: &str| {
            params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        let need = |name: &'static str| find(name).ok_or(AuthError::MissingParameter(name));
        let algorithm = match find("algorithm") {
            None => None,
            Some(a) => Some(
                Algorithm::from_token(&a)
                    .ok_or(AuthError::Malformed("unknown Digest algorithm"))?,
            ),
        };
        let qop = match find("qop") {
            None => None,
            Some(q) => Some(Qop::from_token(&q).ok_or(AuthError::UnsupportedQop)?),
        };
        let nc = match find("nc") {
            None => None,
            Some(n) => Some(
                u32::from_str_radix(&n, 16).map_err(|_| AuthError::Malformed("nc is not hex"))?,
            ),
        };
        Ok(Authorization::Digest(DigestAuthorization {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?,
            algorithm,
            cnonce: find("cnonce"),
            nc,
            qop,
            opaque: find("opaque"),
            userhash: find("userhash").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }))
    }

    /// The user name the client claims (for a Digest `userhash`, the hash; compare it with
    /// H(username:realm) of your users).
    pub fn username(&self) -> &str {
        match self {
            Authorization::Basic { username, .. } => username,
            Authorization::Digest(d) => &d.username,
        }
    }

    /// Checks these credentials for a request. `request_uri` must equal the Digest `uri`
    /// field; `realm` and `nonce` are what this server issued (a Digest answer for another
    /// realm is invalid; for another nonce, [`Verdict::Stale`] if otherwise right). Basic
    /// ignores realm/nonce/URI except that a [`Secret::Ha1`] is recomputed with `realm`.
    /// Comparisons of secrets take time independent of where they differ. `nc` replay
    /// tracking, if wanted, is the caller's (read [`DigestAuthorization::nc`]).
    pub fn verify(
        &self,
        method: Method,
        request_uri: &str,
        realm: &str,
        nonce: &str,
        secret: &Secret<'_>,
    ) -> Verdict {
        self.verify_named(method.as_str(), request_uri, realm, nonce, secret)
    }

    /// [`Authorization::verify`] by method name (the RFC examples use HTTP's `GET`).
    fn verify_named(
        &self,
        method: &str,
        request_uri: &str,
        realm: &str,
        nonce: &str,
        secret: &Secret<'_>,
    ) -> Verdict {
        match self {
            Authorization::Basic { username, password } => {
                let ok = match *secret {
                    Secret::Password(p) => constant_time_eq(p.as_bytes(), password.as_bytes()),
                    Secret::Ha1 { algorithm, hex } => constant_time_eq(
                        hex.to_ascii_lowercase().as_bytes(),
                        ha1(algorithm, username, realm, password).as_bytes(),
                    ),
                    Secret::PasswordSha256(hash) => {
                        constant_time_eq(&hash[..], &Sha256::digest(password.as_bytes()))
                    }
                };
                if ok {
                    Verdict::Valid
                } else {
                    Verdict::Invalid
                }
            }
            Authorization::Digest(d) => {
                let alg = d.effective_algorithm();
                if d.realm != realm || d.uri != request_uri {
                    return Verdict::Invalid;
                }
                if (d.qop.is_some() || alg.is_session()) && d.cnonce.is_none() {
                    return Verdict::Invalid;
                }
                if d.qop.is_some() && d.nc.is_none() {
                    return Verdict::Invalid;
                }
                let base = match *secret {
                    Secret::Password(p) => {
                        let user = if d.userhash { None } else { Some(d.username.as_str()) };
                        match user {
                            Some(u) => ha1(alg, u, realm, p),
                            // With userhash the plain name is unknown here: callers resolve it
                            // and pass the HA1 (or the password of the matching user).
                            None => return Verdict::Invalid,
                        }
                    }
                    Secret::Ha1 { algorithm, hex } => {
                        if !algorithm.same_hash(alg) {
                            return Verdict::Invalid;
                        }
                        hex.to_ascii_lowercase()
                    }
                    Secret::PasswordSha256(_) => return Verdict::Invalid,
                };
                let expected = d.expected_response(&base, method);
                if !constant_time_eq(
                    expected.as_bytes(),
                    d.response.to_ascii_lowercase().as_bytes(),
                ) {
                    Verdict::Invalid
                } else if d.nonce != nonce {
                    Verdict::Stale
                } else {
                    Verdict::Valid
                }
            }
        }
    }
}

impl fmt::Display for Authorization {
    /// The `Authorization` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorization::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                write!(f, "Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
            }
            Authorization::Digest(d) => {
                write!(
                    f,
                    "Digest username={}, realm={}, nonce={}, uri={}",
                    Quoted(&d.username),
                    Quoted(&d.realm),
                    Quoted(&d.nonce),
                    Quoted(&d.uri)
                )?;
                if let Some(a) = d.algorithm {
                    write!(f, ", algorithm={a}")?;
                }
                if let Some(q) = d.qop {
                    write!(f, ", qop={}", q.as_str())?;
                }
                if let Some(nc) = d.nc {
                    write!(f, ", nc={nc:08x}")?;
                }
                if let Some(c) = &d.cnonce {
                    write!(f, ", cnonce={}", Quoted(c))?;
                }
                write!(f, ", response={}", Quoted(&d.response))?;
                if let Some(o) = &d.opaque {
                    write!(f, ", opaque={}", Quoted(o))?;
                }
                if d.userhash {
                    f.write_str(", userhash=true")?;
                }
                Ok(())
            }
        }
    }
}

/// Client-side authentication state for one server: the chosen challenge, the credentials, and
/// the nonce count. After a 401, build one and call [`ClientAuth::authorize`] for every later
/// request on the connection.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    challenge: Challenge,
    credentials: Credentials,
    nc: u32,
}

impl ClientAuth {
    /// Picks the strongest supported challenge ([`Challenge::strongest`]).
    pub fn new(
        challenges: &[Challenge],
        credentials: Credentials,
        allow_basic: bool,
    ) -> Result<ClientAuth, AuthError> {
        let challenge =
            Challenge::strongest(challenges, allow_basic).ok_or(AuthError::NoSupportedChallenge)?;
        Ok(ClientAuth { challenge: challenge.clone(), credentials, nc: 0 })
    }

    /// The challenge being answered.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The `Authorization` header value for the next request (advances the nonce count).
    pub fn authorize(
        &mut self,
        method: Method,
        uri: &str,
        cnonce: &str,
    ) -> Result<String, AuthError> {
        self.nc = self.nc.wrapping_add(1);
        Ok(self.challenge.respond(&self.credentials, method, uri, cnonce, self.nc)?.to_string())
    }
}

/// Compares two byte strings in time that depends only on their lengths (for secrets: passwords,
/// digests, bearer tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Writes a quoted-string, escaping `"` and `\`.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")
    }
}

/// A cursor over an auth header value (RFC 7235 §2.1 / §4.1 grammar, leniently).
struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b',')) {
            self.pos += 1;
        }
    }

    /// An RFC 7230 token (possibly empty).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if !tchar {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// A quoted-string (cursor on the opening quote), unescaped.
    fn quoted(&mut self) -> Result<String, AuthError> {
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(AuthError::Malformed("unterminated quoted string"))
    }

    /// Comma-separated `name=value` pairs until the end or the start of the next challenge
    /// (a token not followed by `=`). With `single`, there is no next challenge.
    fn params(&mut self, single: bool) -> Result<Vec<(&'a str, String)>, AuthError> {
        let mut params = Vec::new();
        loop {
            self.skip_list_separators();
            if self.at_end() {
                return Ok(params);
            }
            let mark = self.pos;
            let name = self.token();
            if name.is_empty() {
                return Err(AuthError::Malformed("expected a parameter name"));
            }
            self.skip_ws();
            if self.peek() != Some(b'=') {
                if single {
                    return Err(AuthError::Malformed("expected `=` after a parameter name"));
                }
                // A new challenge starts here (or a token68, which we do not use in challenges).
                self.pos = mark;
                return Ok(params);
            }
            self.pos += 1;
            self.skip_ws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                // Token, leniently: anything up to a comma or whitespace.
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.pos += 1;
                }
                self.s[start..self.pos].to_owned()
            };
            params.push((name, value));
            self.skip_ws();
            match self.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(AuthError::Malformed("expected `,` between parameters")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_SHA256: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// The RFC examples use HTTP's GET, which is not an RTSP [`Method`]: compute by name.
    fn respond_with_method_name(
        c: &Challenge,
        creds: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> DigestAuthorization {
        let Authorization::Digest(mut d) =
            c.respond(creds, Method::Options, uri, cnonce, nc).unwrap()
        else {
            panic!("not digest")
        };
        let Challenge::Digest(ch) = c else { panic!() };
        let base = ha1(ch.effective_algorithm(), &creds.username, &ch.realm, &creds.password);
        d.response = d.expected_response(&base, method);
        d
    }

    fn mufasa() -> Credentials {
        Credentials::new("Mufasa", "Circle of Life")
    }

    #[test]
    fn rfc7616_md5_and_sha256() {
        let md5 = &Challenge::parse_list(RFC7616_MD5).unwrap()[0];
        let d =
            respond_with_method_name(md5, &mufasa(), "GET", "/dir/index.html", RFC7616_CNONCE, 1);
        assert_eq!(d.response, "8ca523f5e9506fed4657c9700eebdbec");
        let sha = &Challenge::parse_list(RFC7616_SHA256).unwrap()[0];
        let d =
            respond_with_method_name(sha, &mufasa(), "GET", "/dir/index.html", RFC7616_CNONCE, 1);
        assert_eq!(d.response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        let text = Authorization::Digest(d.clone()).to_string();
        assert!(text.contains("nc=00000001"), "{text}");
        assert!(text.contains("qop=auth,") || text.contains("qop=auth "), "{text}");
        assert!(text.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#));
        assert_eq!(Authorization::parse(&text).unwrap(), Authorization::Digest(d));
    }

    #[test]
    fn rfc7616_authorization_header_parses() {
        let header = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let Authorization::Digest(d) = Authorization::parse(header).unwrap() else { panic!() };
        assert_eq!(d.username, "Mufasa");
        assert_eq!(d.nc, Some(1));
        assert_eq!(d.qop, Some(Qop::Auth));
        assert_eq!(d.algorithm, Some(Algorithm::Md5));
        let base = ha1(Algorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(d.expected_response(&base, "GET"), d.response);
    }

    /// RFC 7616 §3.9.1 from the server's side: the example answers verify with the password,
    /// with the stored HA1, not with another password, method, URI or nonce.
    #[test]
    fn rfc7616_server_verifies_the_examples() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let realm = "http-auth@example.org";
        for (alg, response) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let header = format!(
                r#"Digest username="Mufasa", realm="{realm}", uri="/dir/index.html", algorithm={alg}, nonce="{nonce}", nc=00000001, cnonce="{RFC7616_CNONCE}", qop=auth, response="{response}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            );
            let a = Authorization::parse(&header).unwrap();
            let pw = Secret::Password("Circle of Life");
            let uri = "/dir/index.html";
            assert_eq!(a.verify_named("GET", uri, realm, nonce, &pw), Verdict::Valid, "{alg}");
            let algorithm = Algorithm::from_token(alg).unwrap();
            let h = ha1(algorithm, "Mufasa", realm, "Circle of Life");
            let stored = Secret::Ha1 { algorithm, hex: &h };
            assert_eq!(a.verify_named("GET", uri, realm, nonce, &stored), Verdict::Valid);
            let other_family = Secret::Ha1 {
                algorithm: if algorithm == Algorithm::Md5 {
                    Algorithm::Sha256
                } else {
                    Algorithm::Md5
                },
                hex: &h,
            };
            assert_eq!(a.verify_named("GET", uri, realm, nonce, &other_family), Verdict::Invalid);
            let wrong = Secret::Password("Circle of life");
            assert_eq!(a.verify_named("GET", uri, realm, nonce, &wrong), Verdict::Invalid);
            assert_eq!(a.verify_named("POST", uri, realm, nonce, &pw), Verdict::Invalid);
            assert_eq!(a.verify_named("GET", "/dir/", realm, nonce, &pw), Verdict::Invalid);
            assert_eq!(a.verify_named("GET", uri, realm, "fresh", &pw), Verdict::Stale);
        }
    }

    #[test]
    fn password_sha256_verifies_basic_only() {
        let hash: [u8; 32] = Sha256::digest(b"open sesame").into();
        let sec = Secret::PasswordSha256(&hash);
        let basic =
            Authorization::Basic { username: "Aladdin".into(), password: "open sesame".into() };
        assert_eq!(basic.verify(Method::Play, "", "r", "", &sec), Verdict::Valid);
        let wrong =
            Authorization::Basic { username: "Aladdin".into(), password: "open sesam".into() };
        assert_eq!(wrong.verify(Method::Play, "", "r", "", &sec), Verdict::Invalid);
        // A Digest answer computed from the right password still cannot be checked.
        let c = Challenge::Digest(DigestChallenge::new("r", "n", Algorithm::Sha256));
        let creds = Credentials::new("Aladdin", "open sesame");
        let digest = c.respond(&creds, Method::Play, "rtsp://h/x", "cn", 1).unwrap();
        assert_eq!(digest.verify(Method::Play, "rtsp://h/x", "r", "n", &sec), Verdict::Invalid);
        assert!(!sec.verifies_digest(Algorithm::Md5));
        assert!(Secret::Password("p").verifies_digest(Algorithm::Sha256Sess));
    }

    #[test]
    fn offer_lists_sha256_then_md5_then_basic() {
        let list = Challenge::offer("manifold", "n0", true, true, true);
        let mut r = Response::new(crate::StatusCode::UNAUTHORIZED);
        Challenge::add_to(&list, &mut r);
        let values: Vec<&str> = r.headers.get_all("WWW-Authenticate").collect();
        assert_eq!(values.len(), 3);
        assert!(values[0].starts_with("Digest ") && values[0].contains("algorithm=SHA-256"));
        assert!(values[1].starts_with("Digest ") && values[1].contains("algorithm=MD5"));
        assert!(values[0].contains("stale=true") && values[0].contains(r#"qop="auth""#));
        assert_eq!(values[2], r#"Basic realm="manifold""#);
        assert_eq!(Challenge::from_response(&r), list);
        assert_eq!(Challenge::offer("r", "n", false, false, true), vec![Challenge::basic("r")]);
        assert_eq!(Challenge::offer("r", "n", false, true, false).len(), 2);
    }

    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse_list(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let creds = Credentials::new("Mufasa", "Circle Of Life");
        let d = respond_with_method_name(&c[0], &creds, "GET", "/dir/index.html", "0a4f113b", 1);
        assert_eq!(d.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(d.algorithm, None, "no algorithm in the challenge, none in the answer");
    }

    #[test]
    fn several_challenges_in_one_value_and_strongest() {
        let value = format!("Basic realm=\"x\", {RFC7616_MD5}, Negotiate, {RFC7616_SHA256}");
        let list = Challenge::parse_list(&value).unwrap();
        assert_eq!(list.len(), 4);
        assert!(matches!(list[0], Challenge::Basic { .. }));
        assert!(matches!(&list[2], Challenge::Unsupported { scheme } if scheme == "Negotiate"));
        let best = Challenge::strongest(&list, true).unwrap();
        assert!(matches!(best, Challenge::Digest(d) if d.algorithm == Some(Algorithm::Sha256)));
        let only_basic = Challenge::parse_list("Basic realm=\"r\"").unwrap();
        assert!(Challenge::strongest(&only_basic, false).is_none());
        assert!(Challenge::strongest(&only_basic, true).is_some());
    }

    #[test]
    fn challenges_across_headers() {
        let mut r = Response::new(crate::StatusCode::UNAUTHORIZED);
        r.headers.append("WWW-Authenticate", RFC7616_MD5);
        r.headers.append("www-authenticate", "garbage \"unterminated");
        r.headers
            .append("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256");
        r.headers.append("WWW-Authenticate", r#"Basic realm="a \"quoted\" \\ realm""#);
        let list = Challenge::from_response(&r);
        assert_eq!(list.len(), 3);
        assert_eq!(list[2], Challenge::basic(r#"a "quoted" \ realm"#));
        assert!(matches!(&list[1], Challenge::Unsupported { .. }));
        assert_eq!(Challenge::strongest(&list, false), Some(&list[0]));
    }

    #[test]
    fn quoted_round_trip() {
        let mut d = DigestChallenge::new("we \"love\" \\ slashes", "n,o=nce", Algorithm::Sha256);
        d.opaque = Some("op".into());
        d.stale = true;
        let c = Challenge::Digest(d);
        let text = c.to_string();
        assert_eq!(Challenge::parse_list(&text).unwrap(), vec![c]);
    }

    #[test]
    fn server_verifies_client_all_algorithms() {
        for alg in [Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess] {
            for qop in [None, Some(vec![Qop::Auth])] {
                let mut ch = DigestChallenge::new("manifold", "abc123", alg);
                ch.qop = qop.clone();
                let header = Challenge::Digest(ch).to_string();
                let list = Challenge::parse_list(&header).unwrap();
                let mut client =
                    ClientAuth::new(&list, Credentials::new("u", "p w"), false).unwrap();
                let uri = "rtsp://h/live";
                for _ in 0..3 {
                    let value = client.authorize(Method::Describe, uri, "c-nonce").unwrap();
                    let auth = Authorization::parse(&value).unwrap();
                    assert_eq!(auth.username(), "u");
                    let pw = Secret::Password("p w");
                    assert_eq!(
                        auth.verify(Method::Describe, uri, "manifold", "abc123", &pw),
                        Verdict::Valid
                    );
                    let h = ha1(alg, "u", "manifold", "p w");
                    let sec = Secret::Ha1 { algorithm: alg, hex: &h };
                    assert_eq!(
                        auth.verify(Method::Describe, uri, "manifold", "abc123", &sec),
                        Verdict::Valid
                    );
                    let wrong = Secret::Password("nope");
                    assert_eq!(
                        auth.verify(Method::Describe, uri, "manifold", "abc123", &wrong),
                        Verdict::Invalid
                    );
                    assert_eq!(
                        auth.verify(Method::Setup, uri, "manifold", "abc123", &pw),
                        Verdict::Invalid
                    );
                    assert_eq!(
                        auth.verify(Method::Describe, "rtsp://h/x", "manifold", "abc123", &pw),
                        Verdict::Invalid
                    );
                    assert_eq!(
                        auth.verify(Method::Describe, uri, "other", "abc123", &pw),
                        Verdict::Invalid
                    );
                    assert_eq!(
                        auth.verify(Method::Describe, uri, "manifold", "newer", &pw),
                        Verdict::Stale
                    );
                }
            }
        }
    }

    #[test]
    fn nonce_count_advances() {
        let list = Challenge::parse_list(RFC7616_MD5).unwrap();
        let mut client = ClientAuth::new(&list, mufasa(), false).unwrap();
        let first = client.authorize(Method::Play, "rtsp://x/", "cn").unwrap();
        let second = client.authorize(Method::Play, "rtsp://x/", "cn").unwrap();
        assert!(first.contains("nc=00000001") && second.contains("nc=00000002"));
    }

    #[test]
    fn userhash() {
        let mut ch = DigestChallenge::new("r", "n", Algorithm::Sha256);
        ch.userhash = true;
        let c = Challenge::Digest(ch);
        let a = c.respond(&mufasa(), Method::Play, "u", "cn", 1).unwrap();
        assert_eq!(a.username(), Algorithm::Sha256.hash(&["Mufasa", "r"]));
        let h = ha1(Algorithm::Sha256, "Mufasa", "r", "Circle of Life");
        let sec = Secret::Ha1 { algorithm: Algorithm::Sha256, hex: &h };
        assert_eq!(a.verify(Method::Play, "u", "r", "n", &sec), Verdict::Valid);
    }

    #[test]
    fn basic_round_trip() {
        // RFC 7617 §2 example.
        let a = Authorization::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(
            a,
            Authorization::Basic { username: "Aladdin".into(), password: "open sesame".into() }
        );
        assert_eq!(a.to_string(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(
            a.verify(Method::Play, "", "r", "", &Secret::Password("open sesame")),
            Verdict::Valid
        );
        assert_eq!(
            a.verify(Method::Play, "", "r", "", &Secret::Password("open sesam")),
            Verdict::Invalid
        );
        let h = ha1(Algorithm::Md5, "Aladdin", "r", "open sesame");
        let sec = Secret::Ha1 { algorithm: Algorithm::Md5, hex: &h };
        assert_eq!(a.verify(Method::Play, "", "r", "", &sec), Verdict::Valid);
        assert!(!format!("{a:?}").contains("sesame"));
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for bad in [
            "Digest",
            "Digest username=\"a",
            "Digest username=\"a\" realm=\"b\"",
            "Basic !!!",
            "Basic Zm9v",
            "Negotiate abc",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\", response=\"x\", nc=zz",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
        assert!(Challenge::parse_list("Digest realm=\"r\"").is_err());
        assert!(Challenge::parse_list("=x").is_err());
        assert_eq!(Challenge::parse_list("").unwrap(), vec![]);
    }

    #[test]
    fn credentials_from_url() {
        let (c, url) = Credentials::from_url("rtsp://us%40er:p%3Ass@cam:554/live?x=@").unwrap();
        assert_eq!(c, Credentials::new("us@er", "p:ss"));
        assert_eq!(url, "rtsp://cam:554/live?x=@");
        assert!(Credentials::from_url("rtsp://cam/live@x").is_none());
        let (c, _) = Credentials::from_url("rtsp://admin@cam/").unwrap();
        assert_eq!(c, Credentials::new("admin", ""));
        let (c, _) = Credentials::from_url("rtsp://a%4@cam/").unwrap();
        assert_eq!(c.username, "a%4");
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,80}") {
            let _ = Challenge::parse_list(&s);
            let _ = Authorization::parse(&s);
            let _ = Credentials::from_url(&s);
        }

        #[test]
        fn challenges_round_trip(
            realm in "\\PC{0,20}",
            nonce in "\\PC{1,20}",
            opaque in proptest::option::of("\\PC{0,20}"),
            stale: bool,
            sha: bool,
        ) {
            let alg = if sha { Algorithm::Sha256 } else { Algorithm::Md5Sess };
            let mut d = DigestChallenge::new(realm, nonce, alg);
            d.opaque = opaque;
            d.stale = stale;
            let c = Challenge::Digest(d);
            proptest::prop_assert_eq!(Challenge::parse_list(&c.to_string()).unwrap(), vec![c.clone()]);
            let a = c.respond(&mufasa(), Method::Play, "rtsp://h/\"x\"", "cn", 7).unwrap();
            proptest::prop_assert_eq!(Authorization::parse(&a.to_string()).unwrap(), a);
        }
    }
}
