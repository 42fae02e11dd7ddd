//! `RTP-Info` (RFC 2326 §12.33).

use std::fmt;

use super::{
    is_extension_param, parse_decimal, split_unquoted, typed_header, unquote, HeaderError,
};

const NAME: &str = "RTP-Info";

/// The `RTP-Info` header of a PLAY answer: per stream, its URL and the sequence number and
/// RTP timestamp of the first packet sent after the PLAY.
///
/// Entries are separated by commas, but a URL may itself hold a comma, so the value is split
/// only at commas followed by `url=`.
///
/// ```
/// use manifold_rtsp::header::RtpInfo;
///
/// let text = "url=rtsp://127.0.0.1:18554/live/stream=0;seq=30608;rtptime=477506267";
/// let info = RtpInfo::parse(text).unwrap();
/// assert_eq!(info.entries[0].url, "rtsp://127.0.0.1:18554/live/stream=0");
/// assert_eq!(info.entries[0].seq, Some(30608));
/// assert_eq!(info.entries[0].rtptime, Some(477506267));
/// assert_eq!(info.to_string(), text);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpInfo {
    /// One entry per stream; never empty once parsed.
    pub entries: Vec<RtpInfoEntry>,
}

typed_header!(RtpInfo, NAME, true);

/// One stream's entry in [`RtpInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RtpInfoEntry {
    /// The stream's URL (quotes removed if it was quoted).
    pub url: String,
    /// `seq=`: the first RTP sequence number.
    pub seq: Option<u16>,
    /// `rtptime=`: the RTP timestamp matching the start of the range.
    pub rtptime: Option<u32>,
    /// Unknown parameters, in order: name and value as sent (`None` for a bare name).
    pub other: Vec<(String, Option<String>)>,
}

impl RtpInfoEntry {
    /// An entry with a URL only.
    pub fn new(url: impl Into<String>) -> Self {
        RtpInfoEntry { url: url.into(), seq: None, rtptime: None, other: Vec::new() }
    }

    fn parse(s: &str) -> Result<Self, HeaderError> {
        let mut parts = split_unquoted(s, b';').into_iter();
        let first = parts.next().unwrap_or_default().trim();
        let url = match first.split_once('=') {
            Some((name, url)) if name.trim().eq_ignore_ascii_case("url") => unquote(url),
            _ => return Err(HeaderError::Missing { header: NAME, what: "url" }),
        };
        if url.is_empty() {
            return Err(HeaderError::invalid(NAME, "url", first));
        }
        let mut entry = RtpInfoEntry::new(url.into_owned());
        for param in parts {
            let param = param.trim();
            if param.is_empty() {
                continue;
            }
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (param, None),
            };
            if name.eq_ignore_ascii_case("seq") {
                let v = value.unwrap_or("");
                let n = parse_decimal(v).ok_or_else(|| HeaderError::invalid(NAME, "seq", v))?;
                if entry.seq.replace(n).is_some() {
                    return Err(HeaderError::duplicate(NAME, name));
                }
            } else if name.eq_ignore_ascii_case("rtptime") {
                let v = value.unwrap_or("");
                let n = parse_decimal(v).ok_or_else(|| HeaderError::invalid(NAME, "rtptime", v))?;
                if entry.rtptime.replace(n).is_some() {
                    return Err(HeaderError::duplicate(NAME, name));
                }
            } else if name.eq_ignore_ascii_case("url") || !is_extension_param(name, value) {
                return Err(HeaderError::invalid(NAME, "parameter", param));
            } else {
                entry.other.push((name.to_owned(), value.map(str::to_owned)));
            }
        }
        Ok(entry)
    }
}

/// Whether `piece` (after a top-level comma) begins a new entry, i.e. starts with `url=`.
fn starts_entry(piece: &str) -> bool {
    let p = piece.trim_start();
    p.get(..3).is_some_and(|u| u.eq_ignore_ascii_case("url"))
        && p[3..].trim_start().starts_with('=')
}

/// Whether a URL must be quoted so that it reads back the same.
fn needs_quotes(url: &str) -> bool {
    url.is_empty()
        || url.contains([';', '"'])
        || url.starts_with(char::is_whitespace)
        || url.ends_with(char::is_whitespace)
        || url.ends_with(',')
        || url.split(',').skip(1).any(starts_entry)
}

impl RtpInfo {
    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        if s.trim().is_empty() {
            return Err(HeaderError::Empty { header: NAME });
        }
        // Glue the comma-separated pieces back together up to each `url=`.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut offset = 0;
        for piece in split_unquoted(s, b',') {
            let end = offset + piece.len();
            if piece.trim().is_empty() {
                offset = end + 1;
                continue;
            }
            match groups.last_mut() {
                Some(last) if !starts_entry(piece) => last.1 = end,
                _ => groups.push((offset, end)),
            }
            offset = end + 1;
        }
        let entries = groups
            .into_iter()
            .map(|(a, b)| &s[a..b])
            .filter(|g| !g.trim().is_empty())
            .map(RtpInfoEntry::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return Err(HeaderError::Empty { header: NAME });
        }
        Ok(RtpInfo { entries })
    }
}

impl fmt::Display for RtpInfoEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("url=")?;
        if needs_quotes(&self.url) {
            super::write_quoted(f, &self.url)?;
        } else {
            f.write_str(&self.url)?;
        }
        if let Some(seq) = self.seq {
            write!(f, ";seq={seq}")?;
        }
        if let Some(t) = self.rtptime {
            write!(f, ";rtptime={t}")?;
        }
        for (name, value) in &self.other {
            write!(f, ";{name}")?;
            if let Some(v) = value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for RtpInfo {
    /// Entries joined with `", "`, as GStreamer writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> RtpInfo {
        let r = RtpInfo::parse(s).unwrap();
        assert_eq!(RtpInfo::parse(&r.to_string()).unwrap(), r, "{s} -> {r}");
        r
    }

    /// Found by the `rtsp_headers` fuzz target: an unknown parameter whose name held commas and
    /// control characters was kept, and could not be written back as it came.
    #[test]
    fn unknown_parameters_must_be_tokens() {
        assert!(RtpInfo::parse("url=rtsp://v;,,\u{e}ep\0ort,").is_err());
        assert!(RtpInfo::parse("url=rtsp://v;x=a,b").is_err(), "unquoted comma is ambiguous");
        let r = rt("url=rtsp://v;x-new=\"a,b\";flag");
        assert_eq!(r.entries[0].other.len(), 2);
    }

    #[test]
    fn several_entries_and_commas_in_urls() {
        let r = rt("url=rtsp://h/a,b;seq=1;rtptime=2, URL = rtsp://h/c;rtptime=3 ,url=rtsp://h/d");
        assert_eq!(r.entries.len(), 3);
        assert_eq!(r.entries[0].url, "rtsp://h/a,b");
        assert_eq!((r.entries[0].seq, r.entries[0].rtptime), (Some(1), Some(2)));
        assert_eq!((r.entries[1].url.as_str(), r.entries[1].seq), ("rtsp://h/c", None));
        assert_eq!(r.entries[1].rtptime, Some(3));
        assert_eq!(r.entries[2], RtpInfoEntry::new("rtsp://h/d"));
        assert_eq!(
            r.to_string(),
            "url=rtsp://h/a,b;seq=1;rtptime=2, url=rtsp://h/c;rtptime=3, url=rtsp://h/d"
        );
    }

    #[test]
    fn quoted_urls_and_unknown_params() {
        let r = rt(r#"url="rtsp://h/x;y";ssrc=1234ABCD;Seq=7;x-flag"#);
        assert_eq!(r.entries[0].url, "rtsp://h/x;y");
        assert_eq!(r.entries[0].seq, Some(7));
        assert_eq!(
            r.entries[0].other,
            vec![("ssrc".into(), Some("1234ABCD".into())), ("x-flag".into(), None)]
        );
        assert_eq!(r.to_string(), r#"url="rtsp://h/x;y";seq=7;ssrc=1234ABCD;x-flag"#);
        for url in ["rtsp://h/a,url=b", ",", "a,", " a", "\"a\""] {
            let tricky = RtpInfo { entries: vec![RtpInfoEntry::new(url)] };
            assert_eq!(RtpInfo::parse(&tricky.to_string()).unwrap(), tricky, "{url}");
        }
    }

    #[test]
    fn errors() {
        let err = |s: &str| RtpInfo::parse(s).unwrap_err();
        assert_eq!(err(" "), HeaderError::Empty { header: "RTP-Info" });
        assert_eq!(err(","), HeaderError::Empty { header: "RTP-Info" });
        assert!(matches!(err("seq=1"), HeaderError::Missing { .. }));
        assert!(matches!(err("url="), HeaderError::Invalid { .. }));
        assert!(matches!(err("url=a;seq=70000"), HeaderError::Invalid { .. }));
        assert!(matches!(err("url=a;seq"), HeaderError::Invalid { .. }));
        assert!(matches!(err("url=a;rtptime=-1"), HeaderError::Invalid { .. }));
        assert!(matches!(err("url=a;seq=1;seq=2"), HeaderError::Duplicate { .. }));
        assert!(matches!(err("url=a;url=b"), HeaderError::Invalid { .. }));
    }
}
