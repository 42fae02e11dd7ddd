//! Line splitting and checking: bytes to [`Sdp`].

use crate::attr::{parse_framerate, Extmap, Fmtp, MediaLine, Range, RtpMap};
use crate::error::{ParseError, ValueError};
use crate::line::Line;
use crate::media::Media;
use crate::sdp::Sdp;

impl Sdp {
    /// Parses an SDP body (CRLF or LF line endings), leniently: only the line syntax, `v=`
    /// first, and the `m=` lines are checked; see [`parse_strict`](Self::parse_strict).
    pub fn parse(input: &[u8]) -> Result<Self, ParseError> {
        parse(input, false)
    }

    /// Parses like [`parse`](Self::parse), and also rejects malformed `o=`, `c=`, `b=`, `t=`
    /// lines and `a=rtpmap`/`fmtp`/`extmap`/`range`/`framerate`/`control` attributes.
    pub fn parse_strict(input: &[u8]) -> Result<Self, ParseError> {
        parse(input, true)
    }
}

fn parse(input: &[u8], strict: bool) -> Result<Sdp, ParseError> {
    let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    // Some embedded servers count a C string's terminating NUL in Content-Length.
    let end = input.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut session: Vec<Line> = Vec::new();
    let mut media: Vec<Media> = Vec::new();
    for (index, raw) in input[..end].split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        // Lossy: an SDP is UTF-8 (RFC 8866 §5), but a camera's `s=` in a legacy charset should
        // not cost the whole description.
        let text = String::from_utf8_lossy(raw);
        if text.trim().is_empty() {
            continue;
        }
        let (kind, value) = split_line(&text);
        if session.is_empty() {
            if kind != Some('v') {
                return Err(ParseError::NotSdp { line });
            }
            if value.trim() != "0" {
                return Err(ParseError::Version { line, version: value.trim().to_owned() });
            }
            session.push(Line::raw('v', value));
            continue;
        }
        let kind = kind.ok_or(ParseError::Syntax { line })?;
        let invalid = |field: String, error: ValueError| ParseError::Invalid { line, field, error };
        if kind == 'm' {
            let m = value.parse::<MediaLine>().map_err(|e| invalid("m=".into(), e))?;
            media.push(Media::parsed(value, m));
            continue;
        }
        if strict {
            check(kind, value).map_err(|(field, e)| invalid(field, e))?;
        }
        let parsed = Line::raw(kind, value);
        match media.last_mut() {
            Some(m) => m.push_parsed(parsed),
            None => session.push(parsed),
        }
    }
    if session.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(Sdp::from_parts(session, media))
}

/// `<letter>=<value>` into its parts; `None` as the type if the line does not have that shape.
fn split_line(text: &str) -> (Option<char>, &str) {
    let b = text.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=' {
        (Some(char::from(b[0])), &text[2..])
    } else {
        (None, "")
    }
}

/// The strict checks of one line's value.
fn check(kind: char, value: &str) -> Result<(), (String, ValueError)> {
    let fail = |reason| Err((format!("{kind}="), ValueError::new(reason)));
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match kind {
        'v' => return fail("v= only once, first"),
        'o' if words.len() != 6 => return fail("expected 6 fields"),
        'c' if words.len() != 3 => return fail("expected 3 fields"),
        'b' => match value.trim().split_once(':') {
            Some((t, bw)) if !t.trim().is_empty() && number(bw.trim()) => {}
            _ => return fail("expected <type>:<bandwidth>"),
        },
        't' if words.len() != 2 || !words.iter().all(|w| number(w)) => {
            return fail("expected <start> <stop>")
        }
        'a' => return check_attribute(value),
        _ => {}
    }
    Ok(())
}

fn check_attribute(value: &str) -> Result<(), (String, ValueError)> {
    let (name, v) = match value.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v)),
        None => (value.trim(), None),
    };
    let field = || format!("a={name}");
    if name.is_empty() {
        return Err((field(), ValueError::new("missing attribute name")));
    }
    let result = match (name.to_ascii_lowercase().as_str(), v) {
        ("rtpmap", Some(v)) => v.parse::<RtpMap>().map(drop),
        ("fmtp", Some(v)) => v.parse::<Fmtp>().map(drop),
        ("extmap", Some(v)) => v.parse::<Extmap>().map(drop),
        ("range", Some(v)) => v.parse::<Range>().map(drop),
        ("framerate", Some(v)) => parse_framerate(v).map(drop),
        ("control", Some(v)) if !v.trim().is_empty() => Ok(()),
        ("rtpmap" | "fmtp" | "extmap" | "range" | "framerate" | "control", _) => {
            Err(ValueError::new("missing value"))
        }
        _ => Ok(()),
    };
    result.map_err(|e| (field(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> ParseError {
        parse(input.as_bytes(), false).unwrap_err()
    }

    fn strict_err(input: &str) -> ParseError {
        parse(input.as_bytes(), true).unwrap_err()
    }

    #[test]
    fn lf_crlf_trailing_whitespace_and_nul() {
        let crlf =
            parse(b"v=0\r\ns=x \r\nm=video 0 RTP/AVP 96\r\na=recvonly\t\r\n", false).unwrap();
        let lf = parse(b"v=0\ns=x \nm=video 0 RTP/AVP 96\na=recvonly\t", false).unwrap();
        assert_eq!(crlf, lf);
        assert_eq!(crlf.to_string(), "v=0\r\ns=x \r\nm=video 0 RTP/AVP 96\r\na=recvonly\t\r\n");
        assert_eq!(crlf.session_name(), Some("x"));
        let nul =
            parse(b"v=0\r\ns=x \r\nm=video 0 RTP/AVP 96\r\na=recvonly\t\r\n\0", false).unwrap();
        assert_eq!(nul, crlf);
        let bom = parse(
            b"\xef\xbb\xbfv=0\r\n\r\n\r\ns=x \r\nm=video 0 RTP/AVP 96\r\na=recvonly\t",
            false,
        );
        assert_eq!(bom.unwrap(), crlf);
    }

    #[test]
    fn a_lone_cr_inside_a_line_becomes_a_space() {
        let sdp = parse(b"v=0\ns=a\rb\nm=video 0\rRTP/AVP 96\n", false).unwrap();
        assert_eq!(sdp.to_string(), "v=0\r\ns=a b\r\nm=video 0 RTP/AVP 96\r\n");
        assert_eq!(sdp.media()[0].media_line().proto, "RTP/AVP");
    }

    #[test]
    fn sloppy_but_sdp_is_accepted() {
        let sdp =
            parse(b"v=0\nm=video 0 RTP/AVP 96\na=control:track1\nX=unknown line\n", false).unwrap();
        assert_eq!(sdp.session_name(), None);
        assert_eq!(sdp.media()[0].control(), Some("track1"));
        assert_eq!(sdp.media()[0].lines()[1].to_string(), "X=unknown line");
        // Malformed typed attributes are kept and skipped by the typed lookups.
        let sdp = parse(b"v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96\n", false).unwrap();
        assert_eq!(sdp.media()[0].rtpmap(96), None);
    }

    #[test]
    fn per_line_errors() {
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("\r\n \r\n"), ParseError::Empty);
        assert_eq!(err("o=- 0 0 IN IP4 1.2.3.4\r\n"), ParseError::NotSdp { line: 1 });
        assert_eq!(err("\r\nRTSP/1.0 200 OK\r\n"), ParseError::NotSdp { line: 2 });
        assert_eq!(err("<html>"), ParseError::NotSdp { line: 1 });
        assert_eq!(err("v=1\r\n"), ParseError::Version { line: 1, version: "1".into() });
        assert_eq!(err("v=0\r\ns=x\r\nhello\r\n"), ParseError::Syntax { line: 3 });
        assert_eq!(err("v=0\r\n=x\r\n"), ParseError::Syntax { line: 2 });
        assert_eq!(err("v=0\r\n a=x\r\n"), ParseError::Syntax { line: 2 });
        assert_eq!(err("v=0\r\n1=x\r\n"), ParseError::Syntax { line: 2 });
        assert_eq!(err("v=0\r\nab=x\r\n"), ParseError::Syntax { line: 2 });
        let e = err("v=0\r\ns=x\r\nm=video\r\n");
        assert!(matches!(&e, ParseError::Invalid { line: 3, field, .. } if field == "m="), "{e}");
        assert_eq!(e.to_string(), "line 3: invalid m=: missing port");
        assert_eq!(e.line(), Some(3));
        let e = err("v=0\nm=video 0 RTP/AVP 96\nm=audio x RTP/AVP 0\n");
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn strict_errors_name_the_line() {
        let ok = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nc=IN IP4 0.0.0.0\r\nb=AS:50\r\nt=0 0\r\n\
                  a=range:npt=0-5\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                  a=fmtp:96 a=b\r\na=extmap:1 urn:x\r\na=framerate:25\r\na=control:x\r\na=sendonly\r\n";
        parse(ok.as_bytes(), true).unwrap();
        for (bad, line, field) in [
            ("o=- 1 IN IP4 1.2.3.4", 2, "o="),
            ("c=IN IP4", 2, "c="),
            ("b=AS", 2, "b="),
            ("b=AS:x", 2, "b="),
            ("t=0", 2, "t="),
            ("t=now 0", 2, "t="),
            ("a=:x", 2, "a="),
            ("v=0", 2, "v="),
            ("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264", 3, "a=rtpmap"),
            ("m=video 0 RTP/AVP 96\r\na=rtpmap", 3, "a=rtpmap"),
            ("m=video 0 RTP/AVP 96\r\na=fmtp:", 3, "a=fmtp"),
            ("m=video 0 RTP/AVP 96\r\na=extmap:0 urn:x", 3, "a=extmap"),
            ("a=range:npt=x-", 2, "a=range"),
            ("m=video 0 RTP/AVP 96\r\na=framerate:fast", 3, "a=framerate"),
            ("a=control:", 2, "a=control"),
        ] {
            let input = format!("v=0\r\n{bad}\r\n");
            match strict_err(&input) {
                ParseError::Invalid { line: l, field: f, .. } => {
                    assert_eq!((l, f.as_str()), (line, field), "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
            parse(input.as_bytes(), false).unwrap();
        }
    }
}
