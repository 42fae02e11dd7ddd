//! The bearer token of the metrics/API endpoint: `Authorization: Bearer TOKEN`, compared in
//! constant time.

use manifold_rtsp::auth::constant_time_eq;

/// Why a bearer token setting is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// An empty token would let `Authorization: Bearer ` in.
    #[error("the bearer token is empty")]
    Empty,
    /// A token that cannot be sent in a header (space or control character).
    #[error("the bearer token contains a space or control character")]
    BadCharacter,
}

/// The token a metrics/API caller must present. `Debug` does not print it.
#[derive(Clone)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<hidden>)")
    }
}

impl BearerToken {
    /// A token from the operator's setting.
    pub fn new(token: impl Into<String>) -> Result<Self, BearerError> {
        let token = token.into();
        if token.is_empty() {
            return Err(BearerError::Empty);
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BearerError::BadCharacter);
        }
        Ok(BearerToken(token))
    }

    /// Whether an `Authorization` header value (absent: `None`) carries this token. The scheme
    /// is case-insensitive (RFC 6750 §2.1); the token is compared in constant time.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else { return false };
        let value = value.trim();
        let Some((scheme, token)) = value.split_once(' ') else { return false };
        scheme.eq_ignore_ascii_case("Bearer")
            && constant_time_eq(token.trim_start().as_bytes(), self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_token() {
        let t = BearerToken::new("s3cr3t-T0ken").unwrap();
        assert!(t.accepts(Some("Bearer s3cr3t-T0ken")));
        assert!(t.accepts(Some("bearer  s3cr3t-T0ken ")));
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some("Bearer s3cr3t-T0ke")));
        assert!(!t.accepts(Some("Bearer s3cr3t-T0ken2")));
        assert!(!t.accepts(Some("Basic s3cr3t-T0ken")));
        assert!(!t.accepts(Some("Bearer")));
        assert!(!t.accepts(Some("s3cr3t-T0ken")));
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert_eq!(BearerToken::new("").unwrap_err(), BearerError::Empty);
        assert_eq!(BearerToken::new("a b").unwrap_err(), BearerError::BadCharacter);
    }
}
