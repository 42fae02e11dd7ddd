//! What the operator wrote: the `[[user]]` tables, `allow_basic`, the realm and the auth hook,
//! and their checks. [`AccessConfig::compile`] turns them into a [`Policy`] (globs built, CIDRs
//! and password hashes parsed) or says exactly which entry is wrong.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;

use crate::hook_http::{HookUrl, HookUrlError};

/// The realm of the challenges when the config names none.
pub const DEFAULT_REALM: &str = "manifold";

/// The name of the anonymous user: a `[[user]]` named `any` without a password stands for
/// every client, with or without credentials.
pub const ANONYMOUS: &str = "any";

/// The access settings of `manifold serve`, as the relay's TOML holds them: one `[[user]]`
/// table per user, plus `allow_basic`, `realm` and `auth_hook` (the `--auth-hook` flag).
///
/// ```toml
/// allow_basic = false          # Basic (password in clear) only over TLS unless true
/// [[user]]
/// name = "any"                 # no password: anonymous
/// actions = ["read"]
/// paths = ["public/*"]
/// [[user]]
/// name = "cam"
/// password = "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
/// actions = ["publish"]
/// paths = ["cam/*"]
/// ips = ["10.0.0.0/8", "192.168.1.7"]
/// ```
///
/// A config that denies unknown fields (the relay's `ServeConfig` does, and serde cannot
/// flatten into such a struct) embeds the same keys as its own fields,
/// `#[serde(rename = "user")] users: Vec<UserConfig>` and `allow_basic: bool`, and builds an
/// `AccessConfig` from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// The `[[user]]` tables. None (and no hook) selects the default policy: anyone may read,
    /// only loopback may publish.
    #[serde(rename = "user")]
    pub users: Vec<UserConfig>,
    /// Accept Basic credentials (and RTMP URL passwords) without TLS.
    pub allow_basic: bool,
    /// The realm of the challenges (default [`DEFAULT_REALM`]).
    pub realm: Option<String>,
    /// `--auth-hook URL`: ask this HTTP endpoint instead of the `[[user]]` tables.
    pub auth_hook: Option<String>,
}

/// One `[[user]]` table, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name; `any` without a password is anonymous access.
    pub name: String,
    /// The password in plain, or `sha256:` and the 64 hex digits of SHA-256(password). A
    /// hashed password cannot answer Digest (which needs the plain password): such a user
    /// authenticates with Basic only, so over TLS or with `allow_basic`.
    #[serde(default)]
    pub password: Option<String>,
    /// Path globs (`cam/*`; `*` stays within one path segment, `**` crosses them; a leading
    /// `/` is ignored). Absent: every path.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// What the user may do: `"read"` (DESCRIBE, SETUP, PLAY of a stream) and/or `"publish"`.
    pub actions: Vec<String>,
    /// Client addresses (CIDR, or one address) the user may connect from. Absent: any.
    #[serde(default)]
    pub ips: Option<Vec<String>>,
}

/// Why an access setting is unusable. Each names the user and the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `[[user]]` with an empty `name`.
    #[error("[[user]] #{index}: name is empty")]
    EmptyName {
        /// The table's position (from 1).
        index: usize,
    },
    /// Two `[[user]]` tables with the same name.
    #[error("user {name:?} is defined twice")]
    DuplicateUser {
        /// The name.
        name: String,
    },
    /// A user other than the anonymous `any` without a password (or with an empty one).
    #[error("user {name:?} has no password (only \"any\" may go without one)")]
    MissingPassword {
        /// The user.
        name: String,
    },
    /// A `sha256:` password that is not 64 hex digits.
    #[error("user {name:?}: password \"sha256:...\" must be 64 hex digits, {problem}")]
    BadPasswordHash {
        /// The user.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An action other than `read` or `publish`.
    #[error("user {name:?}: unknown action {action:?} (expected \"read\" or \"publish\")")]
    UnknownAction {
        /// The user.
        name: String,
        /// The action as written.
        action: String,
    },
    /// An empty `actions` list.
    #[error("user {name:?}: actions is empty (give \"read\" and/or \"publish\")")]
    NoActions {
        /// The user.
        name: String,
    },
    /// A path glob that does not compile.
    #[error("user {name:?}: bad path glob {glob:?}: {problem}")]
    BadGlob {
        /// The user.
        name: String,
        /// The glob.
        glob: String,
        /// globset's message.
        problem: String,
    },
    /// An `ips` entry that is neither `ADDR/PREFIX` nor an address.
    #[error("user {name:?}: {cidr:?} is not a CIDR (like 10.0.0.0/8) or an IP address")]
    BadCidr {
        /// The user.
        name: String,
        /// The entry.
        cidr: String,
    },
    /// An unusable `auth_hook` URL.
    #[error("auth hook {url:?}: {source}")]
    BadHookUrl {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: HookUrlError,
    },
    /// Both `[[user]]` tables and an auth hook: the hook replaces the tables.
    #[error(
        "both [[user]] tables and an auth hook are set: the hook replaces the tables, drop one"
    )]
    HookAndUsers,
}

/// An action a client asks to do on a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Play a stream: DESCRIBE, SETUP, PLAY.
    Read,
    /// Publish a stream: ANNOUNCE, SETUP, RECORD (a republish and `--publish-replace` too).
    Publish,
}

impl Action {
    /// The action's name in the config and the hook's JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Publish => "publish",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server stores of a user's password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The anonymous user: no password.
    Anonymous,
    /// The plain password: verifies Digest (any algorithm) and Basic.
    Plain(String),
    /// SHA-256 of the password: verifies Basic only.
    Sha256([u8; 32]),
}

impl fmt::Debug for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stored::Anonymous => "Anonymous",
            Stored::Plain(_) => "Plain(<hidden>)",
            Stored::Sha256(_) => "Sha256(<hidden>)",
        })
    }
}

/// One checked user.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) password: Stored,
    paths: Option<GlobSet>,
    read: bool,
    publish: bool,
    ips: Option<Vec<IpNet>>,
}

impl User {
    /// Whether this user may do `action` on `path` from `peer` (credentials aside).
    pub(crate) fn permits(&self, path: &str, action: Action, peer: IpAddr) -> bool {
        let acts = match action {
            Action::Read => self.read,
            Action::Publish => self.publish,
        };
        acts && self.paths.as_ref().is_none_or(|g| g.is_match(normalize(path)))
            && self.ips.as_ref().is_none_or(|nets| nets.iter().any(|n| n.contains(&peer)))
    }
}

/// A path as globs see it: without its leading `/` (the relay's paths have one, operators'
/// globs may not).
pub(crate) fn normalize(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// Whose access rules these are, checked: build it once with [`AccessConfig::compile`] and share
/// it (read-only, in an `Arc`) between the shards' [`crate::Access`] machines.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) realm: String,
    pub(crate) allow_basic: bool,
    pub(crate) users: Vec<User>,
    pub(crate) hook: Option<HookUrl>,
}

impl Policy {
    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The auth hook, when one replaces the user table.
    pub fn hook(&self) -> Option<&HookUrl> {
        self.hook.as_ref()
    }

    /// No users and no hook: the default policy (anyone reads, loopback publishes).
    pub fn is_default(&self) -> bool {
        self.users.is_empty() && self.hook.is_none()
    }

    pub(crate) fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name && u.password != Stored::Anonymous)
    }
}

impl AccessConfig {
    /// Checks every entry and builds the [`Policy`].
    pub fn compile(&self) -> Result<Policy, ConfigError> {
        let hook = match &self.auth_hook {
            None => None,
            Some(url) => {
                if !self.users.is_empty() {
                    return Err(ConfigError::HookAndUsers);
                }
                Some(
                    HookUrl::parse(url)
                        .map_err(|source| ConfigError::BadHookUrl { url: url.clone(), source })?,
                )
            }
        };
        let mut seen = HashSet::new();
        let mut users = Vec::with_capacity(self.users.len());
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() {
                return Err(ConfigError::EmptyName { index: i + 1 });
            }
            if !seen.insert(u.name.as_str()) {
                return Err(ConfigError::DuplicateUser { name: u.name.clone() });
            }
            users.push(compile_user(u)?);
        }
        Ok(Policy {
            realm: self.realm.clone().unwrap_or_else(|| DEFAULT_REALM.to_owned()),
            allow_basic: self.allow_basic,
            users,
            hook,
        })
    }
}

fn compile_user(u: &UserConfig) -> Result<User, ConfigError> {
    let name = || u.name.clone();
    let password = match u.password.as_deref() {
        None | Some("") if u.name == ANONYMOUS => Stored::Anonymous,
        None | Some("") => return Err(ConfigError::MissingPassword { name: name() }),
        Some(p) => match p.strip_prefix("sha256:") {
            Some(hex) => Stored::Sha256(
                parse_sha256(hex)
                    .map_err(|problem| ConfigError::BadPasswordHash { name: name(), problem })?,
            ),
            None => Stored::Plain(p.to_owned()),
        },
    };
    let (mut read, mut publish) = (false, false);
    if u.actions.is_empty() {
        return Err(ConfigError::NoActions { name: name() });
    }
    for a in &u.actions {
        match a.as_str() {
            "read" => read = true,
            "publish" => publish = true,
            _ => return Err(ConfigError::UnknownAction { name: name(), action: a.clone() }),
        }
    }
    let paths = match &u.paths {
        None => None,
        Some(globs) => {
            let mut set = GlobSetBuilder::new();
            for g in globs {
                let glob = GlobBuilder::new(normalize(g)).literal_separator(true).build().map_err(
                    |e| ConfigError::BadGlob {
                        name: name(),
                        glob: g.clone(),
                        problem: e.kind().to_string(),
                    },
                )?;
                set.add(glob);
            }
            Some(set.build().map_err(|e| ConfigError::BadGlob {
                name: name(),
                glob: globs.join(", "),
                problem: e.kind().to_string(),
            })?)
        }
    };
    let ips = match &u.ips {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|c| {
                    c.parse::<IpNet>()
                        .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| ConfigError::BadCidr { name: name(), cidr: c.clone() })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(User { name: u.name.clone(), password, paths, read, publish, ips })
}

fn parse_sha256(hex: &str) -> Result<[u8; 32], &'static str> {
    if hex.len() != 64 {
        return Err("wrong length");
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).ok_or("not hex");
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}
