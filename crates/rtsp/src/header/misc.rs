//! The simpler headers: CSeq, method and option-tag lists, content headers, Scale/Speed,
//! Accept, and the product headers.

use std::fmt;

use super::{
    is_token, parse_decimal, split_unquoted, typed_header, unquote, write_token_or_quoted,
    HeaderError,
};
use crate::Method;

/// `CSeq` (RFC 2326 §12.17): the request's sequence number, echoed in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CSeq(pub u32);

typed_header!(CSeq, "CSeq");

impl CSeq {
    /// Parses a header value: a decimal number, spaces around it tolerated.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(HeaderError::Empty { header: "CSeq" });
        }
        parse_decimal(t).map(CSeq).ok_or_else(|| HeaderError::invalid("CSeq", "number", t))
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A method name in `Public` or `Allow`: one this crate knows, or any other token as sent
/// (so OPTIONS answers from exotic servers still parse).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MethodName {
    /// A method of RFC 2326.
    Known(Method),
    /// Anything else, e.g. `GET`, `SET_PARAMETERS` or `options` (method names are
    /// case-sensitive).
    Other(String),
}

impl MethodName {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            MethodName::Known(m) => m.as_str(),
            MethodName::Other(s) => s,
        }
    }

    fn from_wire(s: &str) -> Self {
        Method::from_wire(s).map_or_else(|| MethodName::Other(s.to_owned()), MethodName::Known)
    }
}

impl From<Method> for MethodName {
    fn from(m: Method) -> Self {
        MethodName::Known(m)
    }
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Splits a comma-separated list, trimming items and skipping empty ones.
fn list_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|i| !i.is_empty())
}

fn parse_methods(header: &'static str, s: &str) -> Result<Vec<MethodName>, HeaderError> {
    list_items(s)
        .map(|m| {
            if is_token(m) {
                Ok(MethodName::from_wire(m))
            } else {
                Err(HeaderError::invalid(header, "method", m))
            }
        })
        .collect()
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

macro_rules! method_list {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Items are written `", "`-separated; unknown method names are kept as sent.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $ty(pub Vec<MethodName>);

        typed_header!($ty, $name, true);

        impl $ty {
            /// Parses a header value (an empty list is accepted; empty items are skipped).
            pub fn parse(s: &str) -> Result<Self, HeaderError> {
                parse_methods($name, s).map($ty)
            }

            /// Whether the list names `method`.
            pub fn contains(&self, method: Method) -> bool {
                self.0.contains(&MethodName::Known(method))
            }
        }

        impl FromIterator<Method> for $ty {
            fn from_iter<I: IntoIterator<Item = Method>>(iter: I) -> Self {
                $ty(iter.into_iter().map(MethodName::Known).collect())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_list(f, &self.0)
            }
        }
    };
}

method_list!(Public, "Public", "`Public` (RFC 2326 §12.28): the methods a server supports.");
method_list!(
    Allow,
    "Allow",
    "`Allow` (RFC 2326 §12.4): the methods a resource allows (sent with 405)."
);

macro_rules! option_tags {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Option tags are kept as sent (trimmed) and written `", "`-separated.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        pub struct $ty(pub Vec<String>);

        typed_header!($ty, $name, true);

        impl $ty {
            /// Parses a header value (an empty list is accepted; empty items are skipped).
            pub fn parse(s: &str) -> Result<Self, HeaderError> {
                Ok($ty(list_items(s).map(str::to_owned).collect()))
            }

            /// Whether the list holds `tag` (compared exactly, as RFC 2326 §3.8 says).
            pub fn contains(&self, tag: &str) -> bool {
                self.0.iter().any(|t| t == tag)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_list(f, &self.0)
            }
        }
    };
}

option_tags!(Require, "Require", "`Require` (RFC 2326 §12.32): options the client requires.");
option_tags!(
    ProxyRequire,
    "Proxy-Require",
    "`Proxy-Require` (RFC 2326 §12.27): options proxies must support."
);
option_tags!(
    Unsupported,
    "Unsupported",
    "`Unsupported` (RFC 2326 §12.42): the required options a server does not support."
);

macro_rules! raw_text {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $ty(pub String);

        typed_header!($ty, $name);

        impl $ty {
            /// Parses a header value: any non-empty text, trimmed.
            pub fn parse(s: &str) -> Result<Self, HeaderError> {
                let t = s.trim();
                if t.is_empty() {
                    return Err(HeaderError::Empty { header: $name });
                }
                Ok($ty(t.to_owned()))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

raw_text!(
    ContentBase,
    "Content-Base",
    "`Content-Base` (RFC 2326 §12.11): the base URL for relative URLs in the body."
);
raw_text!(
    ContentLocation,
    "Content-Location",
    "`Content-Location` (RFC 2326 §12.15): the body's own URL."
);
raw_text!(
    UserAgent,
    "User-Agent",
    "`User-Agent` (RFC 2326 §12.41): the client's product tokens, kept raw \
     (e.g. `Lavf59.27.100`, `GStreamer/1.22.0`)."
);
raw_text!(
    Server,
    "Server",
    "`Server` (RFC 2326 §12.36): the server's product tokens, kept raw \
     (e.g. `GStreamer RTSP server`)."
);

/// `Content-Length` (RFC 2326 §12.14): the body's length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentLength(pub u64);

typed_header!(ContentLength, "Content-Length");

impl ContentLength {
    /// Parses a header value: a decimal number, spaces around it tolerated.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(HeaderError::Empty { header: "Content-Length" });
        }
        parse_decimal(t)
            .map(ContentLength)
            .ok_or_else(|| HeaderError::invalid("Content-Length", "number", t))
    }
}

impl fmt::Display for ContentLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A media type `type/subtype;name=value...` (RFC 2616 §3.7). Names keep their spelling
/// and compare case-insensitively with [`is`](Self::is); parameter values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaType {
    /// The top-level type, e.g. `application` (`*` in an Accept range).
    pub kind: String,
    /// The subtype, e.g. `sdp` (`*` in an Accept range).
    pub subtype: String,
    /// Parameters in order, values unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// `application/sdp`.
    pub fn sdp() -> Self {
        MediaType { kind: "application".into(), subtype: "sdp".into(), params: Vec::new() }
    }

    /// Whether this is `kind/subtype` (case-insensitive, parameters ignored).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// The value of parameter `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn parse(header: &'static str, s: &str) -> Result<Self, HeaderError> {
        let mut parts = split_unquoted(s, b';').into_iter();
        let essence = parts.next().unwrap_or_default().trim();
        if essence.is_empty() {
            return Err(HeaderError::Missing { header, what: "media type" });
        }
        let (kind, subtype) = essence
            .split_once('/')
            .map(|(k, s)| (k.trim(), s.trim()))
            .filter(|(k, s)| is_token(k) && is_token(s))
            .ok_or_else(|| HeaderError::invalid(header, "media type", essence))?;
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (name, value) = p
                .split_once('=')
                .map(|(n, v)| (n.trim(), v.trim()))
                .filter(|(n, _)| is_token(n))
                .ok_or_else(|| HeaderError::invalid(header, "media type parameter", p))?;
            params.push((name.to_owned(), unquote(value).into_owned()));
        }
        Ok(MediaType { kind: kind.to_owned(), subtype: subtype.to_owned(), params })
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.subtype)?;
        for (name, value) in &self.params {
            write!(f, ";{name}=")?;
            write_token_or_quoted(f, value)?;
        }
        Ok(())
    }
}

/// `Content-Type` (RFC 2326 §12.16): the body's media type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentType(pub MediaType);

typed_header!(ContentType, "Content-Type");

impl ContentType {
    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        if s.trim().is_empty() {
            return Err(HeaderError::Empty { header: "Content-Type" });
        }
        MediaType::parse("Content-Type", s).map(ContentType)
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A quality value `q=` in thousandths (0 to 1000), exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quality(u16);

impl Quality {
    /// Full preference, `q=1`.
    pub const ONE: Quality = Quality(1000);

    /// A quality from thousandths, or `None` above 1000.
    pub fn from_thousandths(q: u16) -> Option<Self> {
        (q <= 1000).then_some(Quality(q))
    }

    /// The quality in thousandths.
    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// Parses `0`, `0.5`, `1.000` etc. (at most three decimals, at most 1).
    fn parse(s: &str) -> Option<Self> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.len() != 1 || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole: u16 = parse_decimal(whole)?;
        let mut thousandths = whole.checked_mul(1000)?;
        for (i, b) in frac.bytes().enumerate() {
            let scale = [100, 10, 1][i];
            thousandths += u16::from(b - b'0') * scale;
        }
        Quality::from_thousandths(thousandths)
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0 / 1000)?;
        let frac = self.0 % 1000;
        if frac != 0 {
            let digits = format!("{frac:03}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

/// One media range in `Accept`: a media type (`*` wildcards allowed) and its quality.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaRange {
    /// The media type; its parameters exclude `q`.
    pub media: MediaType,
    /// `q=`, if given.
    pub q: Option<Quality>,
}

/// `Accept` (RFC 2326 §12.1): the media types the client accepts, e.g. `application/sdp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Accept(pub Vec<MediaRange>);

typed_header!(Accept, "Accept", true);

impl Accept {
    /// Parses a header value (an empty list is accepted; empty items are skipped).
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let mut ranges = Vec::new();
        for item in split_unquoted(s, b',') {
            if item.trim().is_empty() {
                continue;
            }
            let mut media = MediaType::parse("Accept", item)?;
            let mut q = None;
            let mut bad_q = None;
            media.params.retain(|(n, v)| {
                if !n.eq_ignore_ascii_case("q") {
                    return true;
                }
                match (q, Quality::parse(v)) {
                    (None, Some(parsed)) => q = Some(parsed),
                    _ => bad_q = Some(v.clone()),
                }
                false
            });
            if let Some(v) = bad_q {
                return Err(HeaderError::invalid("Accept", "q", &v));
            }
            ranges.push(MediaRange { media, q });
        }
        Ok(Accept(ranges))
    }

    /// Whether a body of `kind/subtype` is acceptable (an empty Accept accepts anything).
    pub fn accepts(&self, kind: &str, subtype: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|r| {
                r.q != Some(Quality(0))
                    && (r.media.kind == "*" || r.media.kind.eq_ignore_ascii_case(kind))
                    && (r.media.subtype == "*" || r.media.subtype.eq_ignore_ascii_case(subtype))
            })
    }
}

impl fmt::Display for MediaRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.media)?;
        if let Some(q) = self.q {
            write!(f, ";q={q}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}

/// Parses `[-]digits[.digits]` (a leading `+` and a bare fraction `.5` tolerated) into a
/// finite `f64`.
fn parse_float(header: &'static str, s: &str, signed: bool) -> Result<f64, HeaderError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(HeaderError::Empty { header });
    }
    let bad = || HeaderError::invalid(header, "number", t);
    let unsigned = match t.strip_prefix('-') {
        Some(rest) if signed => rest,
        Some(_) => return Err(bad()),
        None => t.strip_prefix('+').unwrap_or(t),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(bad)
}

/// `Scale` (RFC 2326 §12.34): the playback rate relative to normal (1); negative plays
/// backwards. Written in Rust's shortest round-trip form (`1`, `-2.5`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Scale(pub f64);

typed_header!(Scale, "Scale");

impl Scale {
    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        parse_float("Scale", s, true).map(Scale)
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `Speed` (RFC 2326 §12.35): the delivery rate relative to normal (1); never negative.
/// Written in Rust's shortest round-trip form.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Speed(pub f64);

typed_header!(Speed, "Speed");

impl Speed {
    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        parse_float("Speed", s, false).map(Speed)
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_and_content_length() {
        assert_eq!(CSeq::parse(" 42 "), Ok(CSeq(42)));
        assert_eq!(CSeq(7).to_string(), "7");
        assert_eq!(CSeq::parse(""), Err(HeaderError::Empty { header: "CSeq" }));
        assert!(matches!(CSeq::parse("-1"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(CSeq::parse("4294967296"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(CSeq::parse("1 2"), Err(HeaderError::Invalid { .. })));
        assert_eq!(ContentLength::parse("529"), Ok(ContentLength(529)));
        assert!(matches!(ContentLength::parse("+5"), Err(HeaderError::Invalid { .. })));
    }

    #[test]
    fn public_and_allow() {
        let text = "OPTIONS, DESCRIBE, ANNOUNCE, GET_PARAMETER, PAUSE, PLAY, RECORD, SETUP, SET_PARAMETER, TEARDOWN";
        let p = Public::parse(text).unwrap();
        assert_eq!(p.0.len(), 10);
        assert!(p.contains(Method::SetParameter));
        assert!(!p.contains(Method::Redirect));
        assert_eq!(p.to_string(), text);
        let p = Public::parse("OPTIONS,GET,, x-Foo ,options").unwrap();
        assert_eq!(
            p.0,
            vec![
                MethodName::Known(Method::Options),
                MethodName::Other("GET".into()),
                MethodName::Other("x-Foo".into()),
                MethodName::Other("options".into()),
            ]
        );
        assert_eq!(p.to_string(), "OPTIONS, GET, x-Foo, options");
        assert_eq!(Public::parse("").unwrap(), Public::default());
        assert!(matches!(Public::parse("PLAY, SET UP"), Err(HeaderError::Invalid { .. })));
        let a: Allow = [Method::Options, Method::Play].into_iter().collect();
        assert_eq!(a.to_string(), "OPTIONS, PLAY");
        assert_eq!(Allow::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn option_tags() {
        let r = Require::parse("play.basic, com.example.x ,").unwrap();
        assert_eq!(r.0, ["play.basic", "com.example.x"]);
        assert!(r.contains("play.basic"));
        assert_eq!(r.to_string(), "play.basic, com.example.x");
        assert_eq!(ProxyRequire::parse("a").unwrap().0, ["a"]);
        assert_eq!(Unsupported::parse("funky-feature").unwrap().to_string(), "funky-feature");
    }

    #[test]
    fn raw_text_headers() {
        assert_eq!(
            ContentBase::parse(" rtsp://127.0.0.1:18554/live/ ").unwrap().0,
            "rtsp://127.0.0.1:18554/live/"
        );
        assert_eq!(ContentLocation::parse("rtsp://h/x").unwrap().to_string(), "rtsp://h/x");
        let ua = UserAgent::parse("RealMedia Player Version 6.0.9.1235 (linux-2.0)").unwrap();
        assert_eq!(ua.to_string(), "RealMedia Player Version 6.0.9.1235 (linux-2.0)");
        assert_eq!(Server::parse("GStreamer RTSP server").unwrap().0, "GStreamer RTSP server");
        assert_eq!(Server::parse(" "), Err(HeaderError::Empty { header: "Server" }));
    }

    #[test]
    fn content_type() {
        let c = ContentType::parse("application/sdp").unwrap();
        assert!(c.0.is("Application", "SDP"));
        assert_eq!(c, ContentType(MediaType::sdp()));
        let c = ContentType::parse("text/parameters; charset=\"utf-8\" ;x=\"a b\"").unwrap();
        assert_eq!(c.0.param("CHARSET"), Some("utf-8"));
        assert_eq!(c.to_string(), "text/parameters;charset=utf-8;x=\"a b\"");
        assert_eq!(ContentType::parse(&c.to_string()).unwrap(), c);
        assert!(matches!(ContentType::parse("sdp"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(ContentType::parse("a/b;c"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(ContentType::parse(";c=d"), Err(HeaderError::Missing { .. })));
    }

    #[test]
    fn accept() {
        let a = Accept::parse("application/sdp").unwrap();
        assert!(a.accepts("application", "sdp"));
        assert!(!a.accepts("text", "plain"));
        let a = Accept::parse("application/sdp;q=0.5, application/rtsl, */*;level=1;q=0").unwrap();
        assert_eq!(a.0[0].q, Quality::from_thousandths(500));
        assert_eq!(a.0[2].q, Quality::from_thousandths(0));
        assert_eq!(a.0[2].media.params, [("level".to_owned(), "1".to_owned())]);
        assert!(!a.accepts("text", "plain"));
        assert_eq!(a.to_string(), "application/sdp;q=0.5, application/rtsl, */*;level=1;q=0");
        assert_eq!(Accept::parse(&a.to_string()).unwrap(), a);
        assert_eq!(Quality::parse("1.000"), Some(Quality::ONE));
        assert_eq!(Quality::parse("0.125").map(Quality::thousandths), Some(125));
        for bad in ["1.001", "2", "0.1234", ".5", "", "0.x"] {
            assert_eq!(Quality::parse(bad), None, "{bad}");
        }
        assert!(matches!(Accept::parse("a/b;q=2"), Err(HeaderError::Invalid { .. })));
        assert!(matches!(Accept::parse("a/b;q=1;q=1"), Err(HeaderError::Invalid { .. })));
        assert!(Accept::default().accepts("x", "y"));
    }

    #[test]
    fn scale_and_speed() {
        assert_eq!(Scale::parse("1.000"), Ok(Scale(1.0)));
        assert_eq!(Scale::parse("-2.5"), Ok(Scale(-2.5)));
        assert_eq!(Scale::parse(" .5 "), Ok(Scale(0.5)));
        assert_eq!(Scale(1.0).to_string(), "1");
        assert_eq!(Scale(-0.25).to_string(), "-0.25");
        assert_eq!(Speed::parse("2."), Ok(Speed(2.0)));
        for bad in ["", "x", "1e5", "inf", "NaN", "1.2.3", ".", "--1"] {
            assert!(Scale::parse(bad).is_err(), "{bad}");
        }
        assert!(Speed::parse("-1").is_err());
    }
}
