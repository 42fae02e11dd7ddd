//! Typed views of the attributes and lines the relay and the load generator need.
//!
//! Each type parses from the text after `a=<name>:` (or after `m=`) with [`FromStr`], ignoring
//! surrounding whitespace, and writes back the canonical form with [`Display`](fmt::Display).

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;

fn err<T>(reason: &'static str) -> Result<T, ValueError> {
    Err(ValueError::new(reason))
}

/// The `m=` line: `<media> <port>[/<count>] <proto> <fmt> ...` (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// Media type: `video`, `audio`, `application`, `text`, `message`, or anything else.
    pub media: String,
    /// Transport port (0 in RTSP SDPs, where the transport is negotiated by SETUP).
    pub port: u16,
    /// Number of ports, from `<port>/<count>`.
    pub port_count: Option<u16>,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Media formats: RTP payload types for RTP protocols.
    pub formats: Vec<String>,
}

impl MediaLine {
    /// An `m=` line with one or more formats and no port count.
    pub fn new(media: &str, port: u16, proto: &str, formats: &[&str]) -> Self {
        MediaLine {
            media: media.to_owned(),
            port,
            port_count: None,
            proto: proto.to_owned(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// The formats that are RTP payload types (numbers 0-127).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok()).filter(|pt| *pt < 128)
    }
}

impl FromStr for MediaLine {
    type Err = ValueError;

    /// Lenient: formats may be missing (some cameras omit them).
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut words = s.split_ascii_whitespace();
        let media = words.next().ok_or(ValueError::new("missing media type"))?;
        let port = words.next().ok_or(ValueError::new("missing port"))?;
        let proto = words.next().ok_or(ValueError::new("missing protocol"))?;
        let (port, port_count) = match port.split_once('/') {
            Some((p, n)) => (p, Some(n.parse().map_err(|_| ValueError::new("bad port count"))?)),
            None => (port, None),
        };
        let port = port.parse().map_err(|_| ValueError::new("bad port"))?;
        Ok(MediaLine {
            media: media.to_owned(),
            port,
            port_count,
            proto: proto.to_owned(),
            formats: words.map(str::to_owned).collect(),
        })
    }
}

impl fmt::Display for MediaLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        Ok(())
    }
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// RTP payload type (0-127).
    pub payload_type: u8,
    /// Encoding name as written, e.g. `H264`, `MPEG4-GENERIC`, `opus`.
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels (the encoding parameters), if given.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Whether the encoding is `name`, ASCII case-insensitively (`mpeg4-generic` is
    /// `MPEG4-GENERIC`).
    pub fn encoding_is(&self, name: &str) -> bool {
        self.encoding.eq_ignore_ascii_case(name)
    }
}

impl FromStr for RtpMap {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let (pt, rest) = s.split_once([' ', '\t']).ok_or(ValueError::new("missing encoding"))?;
        let payload_type = match pt.parse::<u8>() {
            Ok(pt) if pt < 128 => pt,
            _ => return err("bad payload type"),
        };
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().unwrap_or_default();
        if encoding.is_empty() {
            return err("missing encoding");
        }
        let clock_rate = match parts.next().map(|c| c.trim().parse::<u32>()) {
            Some(Ok(rate)) => rate,
            Some(Err(_)) => return err("bad clock rate"),
            None => return err("missing clock rate"),
        };
        let channels = match parts.next().map(|c| c.trim().parse::<u16>()) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return err("bad channel count"),
            None => None,
        };
        if parts.next().is_some() {
            return err("trailing fields");
        }
        Ok(RtpMap { payload_type, encoding: encoding.to_owned(), clock_rate, channels })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.payload_type, self.encoding, self.clock_rate)?;
        if let Some(n) = self.channels {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// `a=fmtp:<format> <params>`: parameters split at `;`, each `key=value` split at the first
/// `=` (so base64 padding survives). Order is kept; a parameter without `=` has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type) the parameters apply to.
    pub format: String,
    /// Parameters in order, keys and values trimmed.
    pub params: Vec<(String, Option<String>)>,
}

impl Fmtp {
    /// The value of a parameter; keys compare ASCII case-insensitively.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Sets a parameter in place, or appends it.
    pub fn set_param(&mut self, key: &str, value: &str) {
        match self.params.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, v)) => *v = Some(value.to_owned()),
            None => self.params.push((key.to_owned(), Some(value.to_owned()))),
        }
    }

    /// The H.264 `sprop-parameter-sets` decoded into NAL units (usually SPS then PPS), if present.
    pub fn sprop_parameter_sets(&self) -> Option<Result<Vec<Vec<u8>>, ValueError>> {
        self.param("sprop-parameter-sets").map(crate::sprop::decode_parameter_sets)
    }
}

impl FromStr for Fmtp {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let (format, rest) = match s.split_once([' ', '\t']) {
            Some((f, rest)) => (f, rest),
            None => (s, ""),
        };
        if format.is_empty() {
            return err("missing format");
        }
        let params = rest
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (p.to_owned(), None),
            })
            .collect();
        Ok(Fmtp { format: format.to_owned(), params })
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ";" })?;
            f.write_str(k)?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// Media direction (RFC 8866 §6.7): `sendrecv` (the default), `sendonly`, `recvonly`, `inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default when no direction attribute is present).
    #[default]
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name, e.g. `sendonly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction named by an attribute name (ASCII case-insensitive), if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl FromStr for Direction {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        Direction::from_name(s).ok_or(ValueError::new("not a direction"))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    /// Extension id: 1-14 (one-byte), 1-255 (two-byte), 4096-4351 (legacy SDP-only range).
    pub id: u16,
    /// Optional direction after the id.
    pub direction: Option<Direction>,
    /// Extension URI.
    pub uri: String,
    /// Extension attributes after the URI, as written.
    pub attributes: Option<String>,
}

impl Extmap {
    /// An extmap with no direction and no attributes.
    pub fn new(id: u16, uri: &str) -> Self {
        Extmap { id, direction: None, uri: uri.to_owned(), attributes: None }
    }
}

impl FromStr for Extmap {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let (head, rest) = s.split_once([' ', '\t']).ok_or(ValueError::new("missing URI"))?;
        let (id, direction) = match head.split_once('/') {
            Some((id, dir)) => (id, Some(dir.parse()?)),
            None => (head, None),
        };
        let id = match id.parse::<u16>() {
            Ok(id) if id != 0 => id,
            _ => return err("bad extension id"),
        };
        let rest = rest.trim_start();
        let (uri, attributes) = match rest.split_once([' ', '\t']) {
            Some((uri, attrs)) => (uri, Some(attrs.trim().to_owned())),
            None => (rest, None),
        };
        if uri.is_empty() {
            return err("missing URI");
        }
        Ok(Extmap { id, direction, uri: uri.to_owned(), attributes })
    }
}

impl fmt::Display for Extmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(d) = self.direction {
            write!(f, "/{d}")?;
        }
        write!(f, " {}", self.uri)?;
        if let Some(a) = &self.attributes {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// A normal-play-time instant (RFC 2326 §3.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Npt {
    /// `now`: the live point.
    Now,
    /// Seconds from the start of the presentation.
    Seconds(f64),
}

impl FromStr for Npt {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("now") {
            return Ok(Npt::Now);
        }
        let bad = || ValueError::new("bad npt time");
        let mut secs = 0.0;
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() > 3 {
            return Err(bad());
        }
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let ok =
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit() || (last && b == b'.'));
            if !ok {
                return Err(bad());
            }
            let v: f64 = part.parse().map_err(|_| bad())?;
            secs = secs * 60.0 + v;
        }
        Ok(Npt::Seconds(secs))
    }
}

impl fmt::Display for Npt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Npt::Now => f.write_str("now"),
            Npt::Seconds(s) => write!(f, "{s}"),
        }
    }
}

/// `a=range:` (RFC 2326 §3.6/§12.29): an `npt` range typed, other units kept as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    /// `npt=[start]-[end]`.
    Npt {
        /// Start, absent in `npt=-<end>`.
        start: Option<Npt>,
        /// End, absent for an open range such as `npt=now-` (a live stream).
        end: Option<Npt>,
    },
    /// Another unit (`clock`, `smpte`, ...), kept as written.
    Other {
        /// The unit before `=`.
        unit: String,
        /// The text after `=`.
        value: String,
    },
}

impl Range {
    /// The duration of a closed `npt` range in seconds.
    pub fn duration(&self) -> Option<f64> {
        match self {
            Range::Npt { start, end: Some(Npt::Seconds(end)) } => match start {
                None => Some(*end),
                Some(Npt::Seconds(start)) => Some(end - start),
                Some(Npt::Now) => None,
            },
            _ => None,
        }
    }
}

impl FromStr for Range {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        let (unit, value) = s.split_once('=').ok_or(ValueError::new("missing `=`"))?;
        let (unit, value) = (unit.trim(), value.trim());
        if !unit.eq_ignore_ascii_case("npt") {
            if unit.is_empty() {
                return err("missing range unit");
            }
            return Ok(Range::Other { unit: unit.to_owned(), value: value.to_owned() });
        }
        let (start, end) = value.split_once('-').ok_or(ValueError::new("missing `-`"))?;
        let time = |t: &str| -> Result<Option<Npt>, ValueError> {
            let t = t.trim();
            if t.is_empty() {
                Ok(None)
            } else {
                t.parse().map(Some)
            }
        };
        let (start, end) = (time(start)?, time(end)?);
        if start.is_none() && end.is_none() {
            return err("empty range");
        }
        Ok(Range::Npt { start, end })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Range::Npt { start, end } => {
                f.write_str("npt=")?;
                if let Some(s) = start {
                    write!(f, "{s}")?;
                }
                f.write_str("-")?;
                if let Some(e) = end {
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Range::Other { unit, value } => write!(f, "{unit}={value}"),
        }
    }
}

/// Parses `a=framerate:<frames per second>` (e.g. `25`, `29.97`).
pub fn parse_framerate(s: &str) -> Result<f64, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(fps) if fps.is_finite() && fps > 0.0 => Ok(fps),
        _ => err("bad frame rate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_line() {
        let m: MediaLine = "video 0 RTP/AVP 96 97".parse().unwrap();
        assert_eq!(m, MediaLine::new("video", 0, "RTP/AVP", &["96", "97"]));
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [96, 97]);
        let m: MediaLine = "audio 49170/2 RTP/AVP 0  ".parse().unwrap();
        assert_eq!((m.port, m.port_count), (49170, Some(2)));
        assert_eq!(m.to_string(), "audio 49170/2 RTP/AVP 0");
        let m: MediaLine = "application 0 RTP/AVP".parse().unwrap();
        assert!(m.formats.is_empty());
        for bad in
            ["", "video", "video 0", "video x RTP/AVP 96", "video 70000 RTP/AVP 96", "v 1/x P 9"]
        {
            assert!(bad.parse::<MediaLine>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rtpmap() {
        let r: RtpMap = "96 H264/90000".parse().unwrap();
        assert_eq!(
            r,
            RtpMap { payload_type: 96, encoding: "H264".into(), clock_rate: 90000, channels: None }
        );
        assert_eq!(r.to_string(), "96 H264/90000");
        assert!(r.encoding_is("h264"));
        let r: RtpMap = "97 MPEG4-GENERIC/48000/2 ".parse().unwrap();
        assert_eq!(r.channels, Some(2));
        assert_eq!(r.to_string(), "97 MPEG4-GENERIC/48000/2");
        for bad in [
            "",
            "96",
            "96 H264",
            "x H264/90000",
            "128 H264/90000",
            "96 /90000",
            "96 H264/x",
            "96 a/1/x",
            "96 a/1/2/3",
        ] {
            assert!(bad.parse::<RtpMap>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fmtp_keeps_order_and_padding() {
        let f: Fmtp =
            "96 packetization-mode=1; sprop-parameter-sets=Z0LA==,aMuMsg==; profile-level-id=42C01E"
                .parse()
                .unwrap();
        assert_eq!(f.format, "96");
        let keys: Vec<_> = f.params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["packetization-mode", "sprop-parameter-sets", "profile-level-id"]);
        assert_eq!(f.param("SPROP-parameter-sets"), Some("Z0LA==,aMuMsg=="));
        assert_eq!(
            f.to_string(),
            "96 packetization-mode=1;sprop-parameter-sets=Z0LA==,aMuMsg==;profile-level-id=42C01E"
        );
        let f: Fmtp = "101 0-15".parse().unwrap();
        assert_eq!(f.params, [("0-15".to_owned(), None)]);
        assert_eq!(f.to_string(), "101 0-15");
        let mut f: Fmtp = "96".parse().unwrap();
        assert!(f.params.is_empty());
        f.set_param("a", "1");
        f.set_param("A", "2");
        assert_eq!(f.to_string(), "96 a=2");
        assert!("".parse::<Fmtp>().is_err());
    }

    #[test]
    fn extmap() {
        let e: Extmap = "1 urn:ietf:params:rtp-hdrext:toffset".parse().unwrap();
        assert_eq!(e, Extmap::new(1, "urn:ietf:params:rtp-hdrext:toffset"));
        let e: Extmap = "2/sendonly http://example.com/x  a b ".parse().unwrap();
        assert_eq!(e.direction, Some(Direction::SendOnly));
        assert_eq!(e.attributes.as_deref(), Some("a b"));
        assert_eq!(e.to_string(), "2/sendonly http://example.com/x a b");
        for bad in ["", "1", "0 urn:x", "x urn:x", "1/sideways urn:x", "70000 urn:x"] {
            assert!(bad.parse::<Extmap>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn direction() {
        assert_eq!("RecvOnly".parse::<Direction>().unwrap(), Direction::RecvOnly);
        assert_eq!(Direction::default(), Direction::SendRecv);
        assert!("both".parse::<Direction>().is_err());
        for d in
            [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive]
        {
            assert_eq!(d.to_string().parse::<Direction>().unwrap(), d);
        }
    }

    #[test]
    fn range() {
        assert_eq!(
            "npt=now-".parse::<Range>().unwrap(),
            Range::Npt { start: Some(Npt::Now), end: None }
        );
        let r: Range = "npt=0-10.5".parse().unwrap();
        assert_eq!(r, Range::Npt { start: Some(Npt::Seconds(0.0)), end: Some(Npt::Seconds(10.5)) });
        assert_eq!(r.duration(), Some(10.5));
        assert_eq!(r.to_string(), "npt=0-10.5");
        let r: Range = "npt=1:02:03.5-".parse().unwrap();
        assert_eq!(r, Range::Npt { start: Some(Npt::Seconds(3723.5)), end: None });
        assert_eq!("npt=-20".parse::<Range>().unwrap().duration(), Some(20.0));
        let r: Range = "clock=19961108T143720.25Z-".parse().unwrap();
        assert_eq!(r.to_string(), "clock=19961108T143720.25Z-");
        for bad in ["", "npt", "npt=", "npt=-", "npt=x-", "npt=1.2.3-", "=5", "npt=1:2:3:4-"] {
            assert!(bad.parse::<Range>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framerate() {
        assert_eq!(parse_framerate("25").unwrap(), 25.0);
        assert_eq!(parse_framerate(" 29.97 ").unwrap(), 29.97);
        for bad in ["", "x", "0", "-1", "inf", "NaN"] {
            assert!(parse_framerate(bad).is_err(), "{bad:?}");
        }
    }
}
