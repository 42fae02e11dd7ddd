//! `Range` (RFC 2326 §12.29, time formats §3.5-3.7).

use std::fmt;
use std::time::Duration;

use super::{parse_decimal, typed_header, unquote, HeaderError};

const NAME: &str = "Range";

/// The `Range` header: a range in one of the three units, and an optional `time=` at which
/// the request takes effect.
///
/// ```
/// use std::time::Duration;
/// use manifold_rtsp::header::{NptTime, Range, RangeSpec};
///
/// let r = Range::parse("npt=1:02:03.5-").unwrap();
/// let RangeSpec::Npt(npt) = &r.spec else { unreachable!() };
/// assert_eq!(npt.start, Some(NptTime::Time(Duration::from_millis(3_723_500))));
/// assert_eq!(npt.end, None);
/// assert_eq!(r.to_string(), "npt=3723.500-");
/// assert_eq!(Range::npt_from(Duration::ZERO).to_string(), "npt=0.000-");
/// assert_eq!(Range::npt_now().to_string(), "npt=now-");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Range {
    /// The range.
    pub spec: RangeSpec,
    /// `time=`: when the request should take effect (wall clock, UTC).
    pub time: Option<UtcTime>,
}

typed_header!(Range, NAME);

impl Range {
    /// `npt=<start>-`: play from `start` to the end.
    pub fn npt_from(start: Duration) -> Self {
        Range::from(RangeSpec::Npt(NptRange { start: Some(NptTime::Time(start)), end: None }))
    }

    /// `npt=now-`: live, from now on (GStreamer's answer to PLAY on live media).
    pub fn npt_now() -> Self {
        Range::from(RangeSpec::Npt(NptRange { start: Some(NptTime::Now), end: None }))
    }

    /// Parses a header value. Unit and parameter names match in any case; unknown
    /// parameters are ignored.
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let mut parts = s.split(';');
        let spec = parts.next().unwrap_or_default().trim();
        if spec.is_empty() {
            return Err(if s.trim().is_empty() {
                HeaderError::Empty { header: NAME }
            } else {
                HeaderError::Missing { header: NAME, what: "range" }
            });
        }
        let spec = RangeSpec::parse(spec)?;
        let mut time = None;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if !name.trim().eq_ignore_ascii_case("time") {
                continue;
            }
            if time.is_some() {
                return Err(HeaderError::duplicate(NAME, name.trim()));
            }
            time = Some(UtcTime::parse("time", unquote(value).trim())?);
        }
        Ok(Range { spec, time })
    }
}

impl From<RangeSpec> for Range {
    fn from(spec: RangeSpec) -> Self {
        Range { spec, time: None }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.spec)?;
        if let Some(t) = &self.time {
            write!(f, ";time={t}")?;
        }
        Ok(())
    }
}

/// A range in one unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RangeSpec {
    /// `npt=` (normal play time, §3.6).
    Npt(NptRange),
    /// `smpte=`, `smpte-30-drop=`, `smpte-25=` (§3.5).
    Smpte(SmpteRange),
    /// `clock=` (absolute UTC, §3.7).
    Clock(ClockRange),
}

impl RangeSpec {
    fn parse(s: &str) -> Result<Self, HeaderError> {
        let (unit, value) =
            s.split_once('=').ok_or(HeaderError::Missing { header: NAME, what: "range unit" })?;
        let unit = unit.trim();
        let value = value.trim();
        let (start, end) = match value.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => return Err(HeaderError::invalid(NAME, "range (no '-')", value)),
        };
        if unit.eq_ignore_ascii_case("npt") {
            let start = (!start.is_empty()).then(|| NptTime::parse(start)).transpose()?;
            let end = (!end.is_empty()).then(|| NptTime::parse(end)).transpose()?;
            if start.is_none() && end.is_none() {
                return Err(HeaderError::invalid(NAME, "npt range", value));
            }
            return Ok(RangeSpec::Npt(NptRange { start, end }));
        }
        if unit.eq_ignore_ascii_case("clock") {
            let start = UtcTime::parse("clock time", start)?;
            let end = (!end.is_empty()).then(|| UtcTime::parse("clock time", end)).transpose()?;
            return Ok(RangeSpec::Clock(ClockRange { start, end }));
        }
        let kind = [SmpteKind::Smpte30, SmpteKind::Smpte30Drop, SmpteKind::Smpte25]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(unit))
            .ok_or_else(|| HeaderError::unsupported(NAME, "range unit", unit))?;
        let start = SmpteTime::parse(start)?;
        let end = (!end.is_empty()).then(|| SmpteTime::parse(end)).transpose()?;
        Ok(RangeSpec::Smpte(SmpteRange { kind, start, end }))
    }
}

impl fmt::Display for RangeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeSpec::Npt(r) => write!(f, "{r}"),
            RangeSpec::Smpte(r) => write!(f, "{r}"),
            RangeSpec::Clock(r) => write!(f, "{r}"),
        }
    }
}

/// An npt range: `start-[end]` or `-end`. At least one end is present once parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NptRange {
    /// Where to start; `None` for `-end`.
    pub start: Option<NptTime>,
    /// Where to stop; `None` for an open range (to the end, or forever on live media).
    pub end: Option<NptTime>,
}

impl fmt::Display for NptRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("npt=")?;
        if let Some(s) = self.start {
            write!(f, "{s}")?;
        }
        f.write_str("-")?;
        if let Some(e) = self.end {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A normal play time: `now`, or an offset from the start of the presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NptTime {
    /// `now` (live).
    Now,
    /// An offset; nanosecond precision (further digits are dropped when parsing).
    Time(Duration),
}

impl NptTime {
    /// Parses `now`, `<seconds>[.<fraction>]` or `<h>:<mm>:<ss>[.<fraction>]`.
    fn parse(s: &str) -> Result<Self, HeaderError> {
        let bad = || HeaderError::invalid(NAME, "npt time", s);
        if s.eq_ignore_ascii_case("now") {
            return Ok(NptTime::Now);
        }
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let nanos = parse_fraction(frac).ok_or_else(bad)?;
        let fields: Vec<&str> = whole.split(':').collect();
        let secs: u64 = match fields.as_slice() {
            [secs] => parse_decimal(secs).ok_or_else(bad)?,
            [h, m, sec] => {
                let h: u64 = parse_decimal(h).ok_or_else(bad)?;
                let m: u64 = parse_two_digits(m).filter(|&m| m < 60).ok_or_else(bad)?.into();
                let sec: u64 = parse_two_digits(sec).filter(|&s| s < 60).ok_or_else(bad)?.into();
                h.checked_mul(3600).and_then(|h| h.checked_add(m * 60 + sec)).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        };
        Ok(NptTime::Time(Duration::new(secs, nanos)))
    }
}

impl fmt::Display for NptTime {
    /// `now`, or seconds with at least millisecond digits (`0.000`, `10.500`), as ffmpeg
    /// writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NptTime::Now => f.write_str("now"),
            NptTime::Time(d) => {
                write!(f, "{}.", d.as_secs())?;
                write_fraction(f, d.subsec_nanos(), 3)
            }
        }
    }
}

/// Parses up to nine fraction digits into nanoseconds (further digits are dropped; the empty
/// string is zero).
fn parse_fraction(frac: &str) -> Option<u32> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos = 0u32;
    for i in 0..9 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(nanos)
}

/// Writes nanoseconds as fraction digits, trailing zeros trimmed but at least `min` digits.
fn write_fraction(f: &mut fmt::Formatter<'_>, nanos: u32, min: usize) -> fmt::Result {
    let digits = format!("{nanos:09}");
    let trimmed = digits.trim_end_matches('0');
    f.write_str(&digits[..trimmed.len().max(min)])
}

/// Parses one or two decimal digits.
fn parse_two_digits(s: &str) -> Option<u8> {
    if s.len() > 2 {
        return None;
    }
    parse_decimal(s)
}

/// The SMPTE time code flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmpteKind {
    /// `smpte`: 30 frames per second, no drop frames.
    Smpte30,
    /// `smpte-30-drop`: 29.97 frames per second.
    Smpte30Drop,
    /// `smpte-25`: 25 frames per second.
    Smpte25,
}

impl SmpteKind {
    /// The unit's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SmpteKind::Smpte30 => "smpte",
            SmpteKind::Smpte30Drop => "smpte-30-drop",
            SmpteKind::Smpte25 => "smpte-25",
        }
    }
}

/// An SMPTE range: `start-[end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SmpteRange {
    /// The flavour.
    pub kind: SmpteKind,
    /// Where to start.
    pub start: SmpteTime,
    /// Where to stop; `None` for an open range.
    pub end: Option<SmpteTime>,
}

impl fmt::Display for SmpteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}-", self.kind.as_str(), self.start)?;
        if let Some(e) = self.end {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// An SMPTE time code `hh:mm:ss[:ff][.sub]` (frames and subframes are zero when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmpteTime {
    /// Hours, 0-99.
    pub hours: u8,
    /// Minutes, 0-59.
    pub minutes: u8,
    /// Seconds, 0-59.
    pub seconds: u8,
    /// Frames, 0-29.
    pub frames: u8,
    /// Hundredths of a frame, 0-99.
    pub subframes: u8,
}

impl SmpteTime {
    fn parse(s: &str) -> Result<Self, HeaderError> {
        let bad = || HeaderError::invalid(NAME, "smpte time", s);
        let (main, sub) = match s.split_once('.') {
            Some((m, sub)) => (m, Some(sub)),
            None => (s, None),
        };
        let subframes = match sub {
            Some(sub) => parse_two_digits(sub).ok_or_else(bad)?,
            None => 0,
        };
        let fields = main
            .split(':')
            .map(|x| parse_two_digits(x).ok_or_else(bad))
            .collect::<Result<Vec<u8>, _>>()?;
        let (hours, minutes, seconds, frames) = match fields.as_slice() {
            [h, m, s] => (*h, *m, *s, 0),
            [h, m, s, f] => (*h, *m, *s, *f),
            _ => return Err(bad()),
        };
        if minutes > 59 || seconds > 59 || frames > 29 {
            return Err(bad());
        }
        Ok(SmpteTime { hours, minutes, seconds, frames, subframes })
    }
}

impl fmt::Display for SmpteTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hours, self.minutes, self.seconds)?;
        if self.frames != 0 || self.subframes != 0 {
            write!(f, ":{:02}", self.frames)?;
        }
        if self.subframes != 0 {
            write!(f, ".{:02}", self.subframes)?;
        }
        Ok(())
    }
}

/// An absolute range: `clock=start-[end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockRange {
    /// Where to start.
    pub start: UtcTime,
    /// Where to stop; `None` for an open range.
    pub end: Option<UtcTime>,
}

impl fmt::Display for ClockRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "clock={}-", self.start)?;
        if let Some(e) = self.end {
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A UTC time `YYYYMMDDThhmmss[.fraction]Z` (§3.7). Fields are range-checked, not
/// calendar-checked (February 31st passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcTime {
    /// Year, 0-9999.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-60 (leap second).
    pub second: u8,
    /// Fraction of the second in nanoseconds (further digits are dropped when parsing).
    pub nanos: u32,
}

impl UtcTime {
    fn parse(what: &'static str, s: &str) -> Result<Self, HeaderError> {
        let bad = || HeaderError::invalid(NAME, what, s);
        let b = s.as_bytes();
        if b.len() < 16
            || !b[8].eq_ignore_ascii_case(&b'T')
            || !b[b.len() - 1].eq_ignore_ascii_case(&b'Z')
        {
            return Err(bad());
        }
        let num =
            |r: std::ops::Range<usize>| s.get(r).and_then(parse_decimal::<u32>).ok_or_else(bad);
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
        let rest = s.get(15..s.len() - 1).ok_or_else(bad)?;
        let nanos = match rest.strip_prefix('.') {
            Some(frac) if !frac.is_empty() => parse_fraction(frac).ok_or_else(bad)?,
            Some(_) => return Err(bad()),
            None if rest.is_empty() => 0,
            None => return Err(bad()),
        };
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(bad());
        }
        // The range checks above make these narrowings lossless.
        let narrow = |v: u32| u8::try_from(v).map_err(|_| bad());
        Ok(UtcTime {
            year: u16::try_from(year).map_err(|_| bad())?,
            month: narrow(month)?,
            day: narrow(day)?,
            hour: narrow(hour)?,
            minute: narrow(minute)?,
            second: narrow(second)?,
            nanos,
        })
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}T{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.nanos != 0 {
            f.write_str(".")?;
            write_fraction(f, self.nanos, 1)?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Range {
        let r = Range::parse(s).unwrap();
        assert_eq!(Range::parse(&r.to_string()).unwrap(), r, "{s} -> {r}");
        r
    }

    fn npt(s: &str) -> NptRange {
        match rt(s).spec {
            RangeSpec::Npt(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn npt_forms() {
        let secs = |s: f64| Some(NptTime::Time(Duration::from_secs_f64(s)));
        assert_eq!(npt("npt=0-"), NptRange { start: secs(0.0), end: None });
        assert_eq!(npt("npt=now-"), NptRange { start: Some(NptTime::Now), end: None });
        assert_eq!(npt("npt=0.000-10.5"), NptRange { start: secs(0.0), end: secs(10.5) });
        assert_eq!(npt("NPT = 1:02:03.5 - "), NptRange { start: secs(3723.5), end: None });
        assert_eq!(npt("npt=-20"), NptRange { start: None, end: secs(20.0) });
        assert_eq!(npt("npt=5.-"), NptRange { start: secs(5.0), end: None });
        assert_eq!(
            npt("npt=0.1234567891234-").start,
            Some(NptTime::Time(Duration::new(0, 123_456_789)))
        );
        assert_eq!(rt("npt=0.000-").to_string(), "npt=0.000-");
        assert_eq!(rt("npt=0-10.5").to_string(), "npt=0.000-10.500");
        assert_eq!(rt("npt=0.0000005-").to_string(), "npt=0.0000005-");
        assert_eq!(rt("npt=now-").to_string(), "npt=now-");
    }

    #[test]
    fn smpte_forms() {
        let r = rt("smpte=10:07:00-10:07:33:05.01");
        let RangeSpec::Smpte(s) = r.spec else { panic!() };
        assert_eq!(s.kind, SmpteKind::Smpte30);
        assert_eq!((s.start.hours, s.start.minutes, s.start.frames), (10, 7, 0));
        let end = s.end.unwrap();
        assert_eq!((end.seconds, end.frames, end.subframes), (33, 5, 1));
        assert_eq!(r.to_string(), "smpte=10:07:00-10:07:33:05.01");
        assert_eq!(rt("smpte-25=0:0:1-").to_string(), "smpte-25=00:00:01-");
        assert_eq!(rt("SMPTE-30-DROP=10:07:00:10-").to_string(), "smpte-30-drop=10:07:00:10-");
    }

    #[test]
    fn clock_and_time() {
        let r = rt("clock=19961108T142300Z-19961108T143520Z");
        let RangeSpec::Clock(c) = r.spec else { panic!() };
        assert_eq!((c.start.year, c.start.month, c.start.day, c.start.hour), (1996, 11, 8, 14));
        assert_eq!(c.end.unwrap().minute, 35);
        assert_eq!(r.to_string(), "clock=19961108T142300Z-19961108T143520Z");
    }

    #[test]
    fn time_parameter() {
        let r = rt("npt=0-;time=19970123T143720.5Z");
        assert_eq!(r.time.unwrap().nanos, 500_000_000);
        assert_eq!(r.to_string(), "npt=0.000-;time=19970123T143720.5Z");
        assert_eq!(rt("npt=0-;x=y").time, None);
        assert_eq!(rt("clock=19961108T142300.25Z-").to_string(), "clock=19961108T142300.25Z-");
    }

    #[test]
    fn errors() {
        let err = |s: &str| Range::parse(s).unwrap_err();
        assert_eq!(err(""), HeaderError::Empty { header: "Range" });
        assert!(matches!(err(";time=19970123T143720Z"), HeaderError::Missing { .. }));
        assert!(matches!(err("npt"), HeaderError::Missing { .. }));
        assert!(matches!(err("npt=5"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=x-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=1:60:00-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=1:2-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=1.2.3-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=99999999999999999999-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("frames=1-2"), HeaderError::Unsupported { .. }));
        assert!(matches!(err("smpte=10:07-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("smpte=10:07:00:30-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("smpte=-10:07:00"), HeaderError::Invalid { .. }));
        assert!(matches!(err("clock=19961110T1925.25Z-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("clock=19961310T192500Z-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("clock=19961110T192500-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("clock=19961110T192500.Z-"), HeaderError::Invalid { .. }));
        assert!(matches!(err("npt=0-;time=bad"), HeaderError::Invalid { .. }));
        assert!(matches!(
            err("npt=0-;time=19970123T143720Z;time=19970123T143720Z"),
            HeaderError::Duplicate { .. }
        ));
    }
}
