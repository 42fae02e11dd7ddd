//! A media section: the `m=` line and the lines under it.

use std::fmt;

use crate::attr::{parse_framerate, Direction, Extmap, Fmtp, MediaLine, Range, RtpMap};
use crate::error::ValueError;
use crate::line::{self, Attribute, Line};
use crate::url;

/// A media section: its `m=` line (kept as written, and typed) and every line after it, in order.
///
/// Typed lookups (`rtpmaps`, `fmtp`, ...) skip lines that do not parse; use
/// [`Sdp::parse_strict`](crate::Sdp::parse_strict) to reject them instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    raw: String,
    media_line: MediaLine,
    lines: Vec<Line>,
}

impl Media {
    /// A media section with only its `m=` line.
    pub fn new(media_line: MediaLine) -> Self {
        Media { raw: media_line.to_string(), media_line, lines: Vec::new() }
    }

    pub(crate) fn parsed(raw: &str, media_line: MediaLine) -> Self {
        Media { raw: raw.replace('\r', " "), media_line, lines: Vec::new() }
    }

    pub(crate) fn push_parsed(&mut self, line: Line) {
        self.lines.push(line);
    }

    /// The typed `m=` line.
    pub fn media_line(&self) -> &MediaLine {
        &self.media_line
    }

    /// Replaces the `m=` line.
    pub fn set_media_line(&mut self, media_line: MediaLine) -> &mut Self {
        self.raw = media_line.to_string();
        self.media_line = media_line;
        self
    }

    /// The media type, e.g. `video`.
    pub fn kind(&self) -> &str {
        &self.media_line.media
    }

    /// The lines after `m=`, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The lines after `m=`, to edit freely.
    pub fn lines_mut(&mut self) -> &mut Vec<Line> {
        &mut self.lines
    }

    /// Inserts a line where RFC 8866 orders it (`i c b k a`, after any lines of its own type).
    pub fn push_line(&mut self, line: Line) -> &mut Self {
        line::insert(&mut self.lines, line);
        self
    }

    /// Replaces the first line of the line's type in place (dropping later ones), or inserts it.
    pub fn set_line(&mut self, line: Line) -> &mut Self {
        line::set(&mut self.lines, line);
        self
    }

    /// The first value of a line type (e.g. `'c'`, `'i'`), trimmed.
    pub fn field(&self, kind: char) -> Option<&str> {
        line::field(&self.lines, kind)
    }

    /// Every `a=` line, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        line::attributes(&self.lines)
    }

    /// The first attribute called `name` (ASCII case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<Attribute<'_>> {
        line::attribute(&self.lines, name)
    }

    /// Appends an attribute (after the other `a=` lines).
    pub fn push_attribute(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        self.push_line(Line::attribute(name, value))
    }

    /// Sets the one attribute called `name`: replaces the first in place and drops the others,
    /// or appends it.
    pub fn set_attribute(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        line::set_attribute(&mut self.lines, name, value);
        self
    }

    /// Removes every attribute called `name`; returns how many were removed.
    pub fn remove_attribute(&mut self, name: &str) -> usize {
        line::remove_attribute(&mut self.lines, name)
    }

    /// `a=control`, as written.
    pub fn control(&self) -> Option<&str> {
        line::values(&self.lines, "control").next()
    }

    /// Sets `a=control` (replacing any in place).
    pub fn set_control(&mut self, control: &str) -> &mut Self {
        self.set_attribute("control", Some(control))
    }

    /// This media's URL: its control resolved against `aggregate` (the session's aggregate
    /// URL, see [`Sdp::aggregate_url`](crate::Sdp::aggregate_url)); no control means `aggregate`.
    pub fn resolve_control(&self, aggregate: &str) -> String {
        url::resolve(aggregate, self.control().unwrap_or(""))
    }

    /// Every well-formed `a=rtpmap`.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        line::values(&self.lines, "rtpmap").filter_map(|v| v.parse().ok())
    }

    /// The `a=rtpmap` of a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|r| r.payload_type == payload_type)
    }

    /// Sets the `a=rtpmap` of its payload type, replacing one in place or appending.
    pub fn set_rtpmap(&mut self, rtpmap: &RtpMap) -> &mut Self {
        let pt = rtpmap.payload_type;
        let same = |v: Option<&str>| {
            v.and_then(|v| v.parse::<RtpMap>().ok()).is_some_and(|r| r.payload_type == pt)
        };
        line::replace_or_push(&mut self.lines, "rtpmap", same, Some(&rtpmap.to_string()));
        self
    }

    /// Every well-formed `a=fmtp`.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp> + '_ {
        line::values(&self.lines, "fmtp").filter_map(|v| v.parse().ok())
    }

    /// The `a=fmtp` of a format (payload type), e.g. `"96"`.
    pub fn fmtp(&self, format: &str) -> Option<Fmtp> {
        self.fmtps().find(|f| f.format == format)
    }

    /// Sets the `a=fmtp` of its format, replacing one in place or appending.
    pub fn set_fmtp(&mut self, fmtp: &Fmtp) -> &mut Self {
        let same = |v: Option<&str>| {
            v.and_then(|v| v.parse::<Fmtp>().ok()).is_some_and(|f| f.format == fmtp.format)
        };
        line::replace_or_push(&mut self.lines, "fmtp", same, Some(&fmtp.to_string()));
        self
    }

    /// The H.264 parameter sets of the first `a=fmtp` that carries `sprop-parameter-sets`.
    pub fn sprop_parameter_sets(&self) -> Option<Result<Vec<Vec<u8>>, ValueError>> {
        self.fmtps().find_map(|f| f.sprop_parameter_sets())
    }

    /// Every well-formed `a=extmap`.
    pub fn extmaps(&self) -> impl Iterator<Item = Extmap> + '_ {
        line::values(&self.lines, "extmap").filter_map(|v| v.parse().ok())
    }

    /// Adds an `a=extmap`, replacing one with the same id in place.
    pub fn add_extmap(&mut self, extmap: &Extmap) -> &mut Self {
        let same = |v: Option<&str>| {
            v.and_then(|v| v.parse::<Extmap>().ok()).is_some_and(|e| e.id == extmap.id)
        };
        line::replace_or_push(&mut self.lines, "extmap", same, Some(&extmap.to_string()));
        self
    }

    /// The media-level direction attribute, if any (see
    /// [`Sdp::media_direction`](crate::Sdp::media_direction) for the effective one).
    pub fn direction(&self) -> Option<Direction> {
        line::direction(&self.lines)
    }

    /// Sets the media-level direction (replacing any direction attribute in place).
    pub fn set_direction(&mut self, direction: Direction) -> &mut Self {
        line::set_direction(&mut self.lines, direction);
        self
    }

    /// `a=framerate`, if present and well-formed.
    pub fn framerate(&self) -> Option<f64> {
        line::values(&self.lines, "framerate").find_map(|v| parse_framerate(v).ok())
    }

    /// `a=range`, if present and well-formed.
    pub fn range(&self) -> Option<Range> {
        line::values(&self.lines, "range").find_map(|v| v.parse().ok())
    }
}

impl fmt::Display for Media {
    /// The section as written, CRLF after every line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={}\r\n", self.raw)?;
        for line in &self.lines {
            write!(f, "{line}\r\n")?;
        }
        Ok(())
    }
}
