//! Protocol errors and RTSP status codes. The mapping from a [`ParseError`] to the status code a
//! server answers with lives here and nowhere else ([`ParseError::status`]).

use std::fmt;

/// An RTSP status code (RFC 2326 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

#[allow(missing_docs)] // the constant names are the RFC's reason phrases
impl StatusCode {
    pub const OK: StatusCode = StatusCode(200);
    pub const MOVED_PERMANENTLY: StatusCode = StatusCode(301);
    pub const MOVED_TEMPORARILY: StatusCode = StatusCode(302);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const NOT_ACCEPTABLE: StatusCode = StatusCode(406);
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    pub const LENGTH_REQUIRED: StatusCode = StatusCode(411);
    pub const PRECONDITION_FAILED: StatusCode = StatusCode(412);
    pub const REQUEST_ENTITY_TOO_LARGE: StatusCode = StatusCode(413);
    pub const REQUEST_URI_TOO_LARGE: StatusCode = StatusCode(414);
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    pub const PARAMETER_NOT_UNDERSTOOD: StatusCode = StatusCode(451);
    pub const NOT_ENOUGH_BANDWIDTH: StatusCode = StatusCode(453);
    pub const SESSION_NOT_FOUND: StatusCode = StatusCode(454);
    pub const METHOD_NOT_VALID_IN_THIS_STATE: StatusCode = StatusCode(455);
    pub const HEADER_FIELD_NOT_VALID: StatusCode = StatusCode(456);
    pub const INVALID_RANGE: StatusCode = StatusCode(457);
    pub const AGGREGATE_OPERATION_NOT_ALLOWED: StatusCode = StatusCode(459);
    pub const ONLY_AGGREGATE_OPERATION_ALLOWED: StatusCode = StatusCode(460);
    pub const UNSUPPORTED_TRANSPORT: StatusCode = StatusCode(461);
    pub const DESTINATION_UNREACHABLE: StatusCode = StatusCode(462);
    pub const INTERNAL_SERVER_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    pub const OPTION_NOT_SUPPORTED: StatusCode = StatusCode(551);
}

impl StatusCode {
    /// The standard reason phrase (RFC 2326 §7.1.1), or "Unknown".
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            201 => "Created",
            250 => "Low on Storage Space",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            303 => "See Other",
            304 => "Not Modified",
            305 => "Use Proxy",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Time-out",
            410 => "Gone",
            411 => "Length Required",
            412 => "Precondition Failed",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Large",
            415 => "Unsupported Media Type",
            451 => "Parameter Not Understood",
            452 => "Conference Not Found",
            453 => "Not Enough Bandwidth",
            454 => "Session Not Found",
            455 => "Method Not Valid in This State",
            456 => "Header Field Not Valid for Resource",
            457 => "Invalid Range",
            458 => "Parameter Is Read-Only",
            459 => "Aggregate operation not allowed",
            460 => "Only aggregate operation allowed",
            461 => "Unsupported transport",
            462 => "Destination unreachable",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Time-out",
            505 => "RTSP Version not supported",
            551 => "Option not supported",
            _ => "Unknown",
        }
    }

    /// Whether this is a 2xx code.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// Whether this is a 3xx: the resource is elsewhere (RFC 2326 §7.1.1), named by the
    /// response's `Location`.
    pub fn is_redirection(self) -> bool {
        (300..400).contains(&self.0)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}

/// Where a rejected message ends and the CSeq it carried: what a connection needs to answer a
/// complete but invalid message and then carry on with the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rejected {
    /// Bytes from the start of the buffer passed to the decoder through the end of the
    /// message's body (leading blank lines included): drop these and decoding can resume.
    pub len: usize,
    /// The message's CSeq, when it had a readable one, so an error response can echo it.
    pub cseq: Option<u32>,
}

/// Why the RTSP codec could not decode the bytes it was given (see `crate::codec`).
///
/// Each variant maps to the status a server answers with ([`ParseError::status`]) and says
/// whether the stream can be resynchronised ([`ParseError::resume_at`]): errors in a complete
/// message of known length carry a [`Rejected`] and the connection can go on; errors that leave
/// the message's end unknown (garbage, an oversized head, a bad or huge `Content-Length`)
/// cannot, and the connection must be closed after answering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A byte that can begin neither an RTSP message nor a `$` interleaved frame.
    #[error("garbage where an RTSP message or `$` frame was expected: byte {byte:#04x} at offset {offset}")]
    Garbage {
        /// Offset of the offending byte in the buffer passed to the decoder.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The request or status line did not end within the head size limit.
    #[error("start line longer than the {limit}-byte limit")]
    StartLineTooLong {
        /// The limit, [`crate::codec::Limits::max_head`].
        limit: usize,
    },
    /// The start line and headers (with any leading blank lines) exceed the head size limit.
    #[error("message head larger than the {limit}-byte limit")]
    HeadersTooLarge {
        /// The limit, [`crate::codec::Limits::max_head`].
        limit: usize,
    },
    /// More header lines than allowed.
    #[error("{count} header lines, more than the limit of {limit}")]
    TooManyHeaders {
        /// How many header lines the message had.
        count: usize,
        /// The limit, [`crate::codec::Limits::max_headers`].
        limit: usize,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A request line that is not `METHOD SP URI SP VERSION`.
    #[error("malformed request line {line:?}")]
    MalformedRequestLine {
        /// The line (without its line ending).
        line: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A status line that is not `VERSION SP 3DIGIT [SP reason]`.
    #[error("malformed status line {line:?}")]
    MalformedStatusLine {
        /// The line (without its line ending).
        line: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A header line that is not `name: value` with a token name (or a continuation line
    /// with nothing to continue).
    #[error("malformed header line {line:?}")]
    MalformedHeader {
        /// The line (without its line ending).
        line: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A well-formed request whose method is not one of [`crate::Method`].
    #[error("unknown method {method:?}")]
    UnknownMethod {
        /// The method token as sent.
        method: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A protocol version other than RTSP/1.0.
    #[error("unsupported protocol version {version:?}")]
    BadVersion {
        /// The version token as sent.
        version: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A request without a `CSeq` header. (A response without one is decoded anyway and the
    /// problem reported through `crate::codec::Decoder::warning`.)
    #[error("missing CSeq header")]
    MissingCSeq {
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A `CSeq` header that is not a 32-bit unsigned number, or repeated with different values.
    #[error("invalid CSeq {value:?}")]
    InvalidCSeq {
        /// The offending value.
        value: String,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
    /// A `Content-Length` that is not a non-negative decimal number, or repeated with
    /// different values. The end of the message is unknown, so the stream cannot go on.
    #[error("invalid Content-Length {value:?}")]
    InvalidContentLength {
        /// The offending value.
        value: String,
    },
    /// A `Content-Length` above the body size limit.
    #[error("body of {length} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge {
        /// The declared length.
        length: u64,
        /// The limit, [`crate::codec::Limits::max_body`].
        limit: usize,
    },
    /// Bytes that are not UTF-8 where text is required.
    #[error("{field} is not valid UTF-8")]
    NonUtf8 {
        /// Which part of the message: "request line", "status line" or "header line".
        field: &'static str,
        /// The message, which can be skipped.
        rejected: Rejected,
    },
}

impl ParseError {
    /// The status a server answers this error with. This is the one place that maps protocol
    /// parse errors to RTSP status codes:
    ///
    /// | error | status |
    /// | --- | --- |
    /// | [`UnknownMethod`](ParseError::UnknownMethod) | 501 Not Implemented |
    /// | [`BadVersion`](ParseError::BadVersion) | 505 RTSP Version not supported |
    /// | [`StartLineTooLong`](ParseError::StartLineTooLong) | 414 Request-URI Too Large |
    /// | [`BodyTooLarge`](ParseError::BodyTooLarge) | 413 Request Entity Too Large |
    /// | everything else (syntax, CSeq, `Content-Length`, head size, UTF-8, garbage) | 400 Bad Request |
    ///
    /// 411 Length Required is never produced: a request without `Content-Length` has no body
    /// by definition, and body bytes sent without one surface as the next message's error.
    pub fn status(&self) -> StatusCode {
        match self {
            ParseError::UnknownMethod { .. } => StatusCode::NOT_IMPLEMENTED,
            ParseError::BadVersion { .. } => StatusCode::VERSION_NOT_SUPPORTED,
            ParseError::StartLineTooLong { .. } => StatusCode::REQUEST_URI_TOO_LARGE,
            ParseError::BodyTooLarge { .. } => StatusCode::REQUEST_ENTITY_TOO_LARGE,
            ParseError::Garbage { .. }
            | ParseError::HeadersTooLarge { .. }
            | ParseError::TooManyHeaders { .. }
            | ParseError::MalformedRequestLine { .. }
            | ParseError::MalformedStatusLine { .. }
            | ParseError::MalformedHeader { .. }
            | ParseError::MissingCSeq { .. }
            | ParseError::InvalidCSeq { .. }
            | ParseError::InvalidContentLength { .. }
            | ParseError::NonUtf8 { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The rejected message, when the error is confined to one complete message of known length.
    pub fn rejected(&self) -> Option<Rejected> {
        match self {
            ParseError::TooManyHeaders { rejected, .. }
            | ParseError::MalformedRequestLine { rejected, .. }
            | ParseError::MalformedStatusLine { rejected, .. }
            | ParseError::MalformedHeader { rejected, .. }
            | ParseError::UnknownMethod { rejected, .. }
            | ParseError::BadVersion { rejected, .. }
            | ParseError::MissingCSeq { rejected }
            | ParseError::InvalidCSeq { rejected, .. }
            | ParseError::NonUtf8 { rejected, .. } => Some(*rejected),
            ParseError::Garbage { .. }
            | ParseError::StartLineTooLong { .. }
            | ParseError::HeadersTooLarge { .. }
            | ParseError::InvalidContentLength { .. }
            | ParseError::BodyTooLarge { .. } => None,
        }
    }

    /// How many bytes to drop from the front of the buffer passed to the decoder before
    /// decoding can resume, or `None` when the stream cannot be resynchronised (answer, if a
    /// server, then close the connection).
    pub fn resume_at(&self) -> Option<usize> {
        self.rejected().map(|r| r.len)
    }

    /// Whether the connection can go on after this error (see [`ParseError::resume_at`]).
    pub fn recoverable(&self) -> bool {
        self.rejected().is_some()
    }

    /// The CSeq of the rejected message, if it had a readable one (for the error response).
    pub fn cseq(&self) -> Option<u32> {
        self.rejected().and_then(|r| r.cseq)
    }
}

/// A payload too long for an interleaved frame, whose length field is 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {len}-byte payload does not fit an interleaved frame (at most 65535 bytes)")]
pub struct FrameTooLarge {
    /// The payload's length.
    pub len: usize,
}
