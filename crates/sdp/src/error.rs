//! The errors of this crate: one for a whole SDP, one for a single value.

use thiserror::Error;

/// Why an SDP could not be parsed. Line numbers are 1-based and count the input's lines.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input holds no lines at all.
    #[error("empty SDP")]
    Empty,
    /// The first line is not `v=`: this is not an SDP.
    #[error("line {line}: not an SDP (the first line must be `v=`)")]
    NotSdp {
        /// The offending line.
        line: usize,
    },
    /// `v=` holds something other than `0`.
    #[error("line {line}: unsupported SDP version {version:?}")]
    Version {
        /// The `v=` line.
        line: usize,
        /// What it held.
        version: String,
    },
    /// A line is not of the form `<type>=<value>` with an ASCII letter as its type.
    #[error("line {line}: expected `<type>=<value>`")]
    Syntax {
        /// The offending line.
        line: usize,
    },
    /// A line has the right shape but an invalid value (always checked for `m=`; for the other
    /// typed lines only by [`Sdp::parse_strict`](crate::Sdp::parse_strict)).
    #[error("line {line}: invalid {field}: {error}")]
    Invalid {
        /// The offending line.
        line: usize,
        /// What it is, e.g. `m=` or `a=rtpmap`.
        field: String,
        /// What is wrong with it.
        #[source]
        error: ValueError,
    },
}

impl ParseError {
    /// The line the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            ParseError::Empty => None,
            ParseError::NotSdp { line }
            | ParseError::Version { line, .. }
            | ParseError::Syntax { line }
            | ParseError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// A single value (an attribute, a field of a line, a URL, a base64 string) is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{reason}")]
pub struct ValueError {
    reason: &'static str,
}

impl ValueError {
    pub(crate) const fn new(reason: &'static str) -> Self {
        ValueError { reason }
    }

    /// A short description of what is wrong.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}
