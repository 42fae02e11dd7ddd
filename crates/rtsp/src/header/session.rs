//! `Session` (RFC 2326 §12.37).

use std::fmt;

use super::{parse_decimal, typed_header, unquote, HeaderError};
use crate::SessionId;

const NAME: &str = "Session";

/// The `Session` header: a session id and, in a server's answer, an optional
/// `timeout=<seconds>`. RFC 2326 says 60 seconds when absent; applying that default is the
/// caller's business, so [`timeout`](Self::timeout) stays an `Option`.
///
/// Spaces around the parts are tolerated, parameter names match in any case, and unknown
/// parameters are ignored.
///
/// ```
/// use manifold_rtsp::header::Session;
///
/// let s = Session::parse("wzpqiraZHONiAYzs ; Timeout = 30").unwrap();
/// assert_eq!(s.id.0, "wzpqiraZHONiAYzs");
/// assert_eq!(s.timeout, Some(30));
/// assert_eq!(s.to_string(), "wzpqiraZHONiAYzs;timeout=30");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Session {
    /// The session id (visible ASCII, no `;` or `"`).
    pub id: SessionId,
    /// `timeout=` in seconds, if given.
    pub timeout: Option<u32>,
}

typed_header!(Session, NAME);

impl Session {
    /// A session with no timeout parameter.
    pub fn new(id: SessionId) -> Self {
        Session { id, timeout: None }
    }

    /// Whether `s` can be a session id (non-empty visible ASCII without `;` or `"`).
    pub fn is_valid_id(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b'"')
    }

    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let mut parts = s.split(';');
        let id = parts.next().unwrap_or_default().trim();
        if id.is_empty() {
            return Err(if s.trim().is_empty() {
                HeaderError::Empty { header: NAME }
            } else {
                HeaderError::Missing { header: NAME, what: "session id" }
            });
        }
        if !Session::is_valid_id(id) {
            return Err(HeaderError::invalid(NAME, "session id", id));
        }
        let mut timeout = None;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if !name.trim().eq_ignore_ascii_case("timeout") {
                continue;
            }
            if timeout.is_some() {
                return Err(HeaderError::duplicate(NAME, name.trim()));
            }
            let value = unquote(value);
            timeout = Some(
                parse_decimal(value.trim())
                    .ok_or_else(|| HeaderError::invalid(NAME, "timeout", &value))?,
            );
        }
        Ok(Session { id: SessionId(id.to_owned()), timeout })
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id.0)?;
        if let Some(t) = self.timeout {
            write!(f, ";timeout={t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_ids() {
        for id in ["nKzoG66kIQDPNcyC", "1208256501", "wzpqiraZHONiAYzs"] {
            let s = Session::parse(id).unwrap();
            assert_eq!(s, Session::new(SessionId(id.into())));
            assert_eq!(s.to_string(), id);
        }
    }

    #[test]
    fn timeout_forms() {
        let s = Session::parse("abc;timeout=60").unwrap();
        assert_eq!(s.timeout, Some(60));
        assert_eq!(Session::parse("  abc ;  TIMEOUT=\"5\" ").unwrap().timeout, Some(5));
        assert_eq!(Session::parse("abc;x=1;timeout=7;").unwrap().timeout, Some(7));
        assert_eq!(Session::parse("abc;x=1").unwrap(), Session::new(SessionId("abc".into())));
    }

    #[test]
    fn errors() {
        assert_eq!(Session::parse(" "), Err(HeaderError::Empty { header: "Session" }));
        assert!(matches!(Session::parse(";timeout=5"), Err(HeaderError::Missing { .. })));
        assert!(matches!(Session::parse("a b"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(Session::parse("abc;timeout=x"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(Session::parse("abc;timeout"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(Session::parse("abc;timeout=-1"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(
            Session::parse("abc;timeout=1;timeout=2"),
            Err(HeaderError::Duplicate { .. })
        ));
    }
}
