//! The session description: the session-level lines and the media sections.

use std::fmt;
use std::str::FromStr;

use crate::attr::{Direction, Range};
use crate::error::ParseError;
use crate::line::{self, Attribute, Line};
use crate::media::Media;
use crate::url;

/// A session description (RFC 8866): every line in order, unknown ones included, so
/// `Sdp::parse(x)?.to_string()` reproduces `x` with CRLF line endings (blank lines dropped).
///
/// ```
/// use manifold_sdp::{Sdp, Media, MediaLine, RtpMap, Line};
///
/// let mut sdp = Sdp::new();
/// sdp.set_line(Line::new('o', "- 1 1 IN IP4 127.0.0.1")?)
///     .set_line(Line::new('s', "live")?)
///     .set_line(Line::new('t', "0 0")?)
///     .set_control("*");
/// let mut video = Media::new(MediaLine::new("video", 0, "RTP/AVP", &["96"]));
/// video.set_rtpmap(&"96 H264/90000".parse()?).set_control("trackID=0");
/// sdp.push_media(video);
/// assert_eq!(sdp.media_urls("rtsp://h/cam/"), ["rtsp://h/cam/trackID=0"]);
/// assert_eq!(Sdp::parse(sdp.to_string().as_bytes())?, sdp);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level lines; the first is always `v=`.
    session: Vec<Line>,
    media: Vec<Media>,
}

impl Default for Sdp {
    fn default() -> Self {
        Sdp::new()
    }
}

impl Sdp {
    /// An SDP with only `v=0`.
    pub fn new() -> Self {
        Sdp { session: vec![Line::raw('v', "0")], media: Vec::new() }
    }

    pub(crate) fn from_parts(session: Vec<Line>, media: Vec<Media>) -> Self {
        Sdp { session, media }
    }

    /// The session-level lines, `v=` first.
    pub fn session_lines(&self) -> &[Line] {
        &self.session
    }

    /// The session-level lines after `v=`, to edit freely.
    pub fn session_lines_mut(&mut self) -> &mut [Line] {
        &mut self.session[1..]
    }

    /// The media sections, in order.
    pub fn media(&self) -> &[Media] {
        &self.media
    }

    /// The media sections, to edit, add or remove.
    pub fn media_mut(&mut self) -> &mut Vec<Media> {
        &mut self.media
    }

    /// Appends a media section and returns it.
    pub fn push_media(&mut self, media: Media) -> &mut Media {
        self.media.push(media);
        let last = self.media.len() - 1;
        &mut self.media[last]
    }

    /// Inserts a session-level line where RFC 8866 orders it (after any lines of its type).
    pub fn push_line(&mut self, line: Line) -> &mut Self {
        line::insert(&mut self.session, line);
        self
    }

    /// Replaces the first session-level line of the line's type in place (dropping later
    /// ones of that type), or inserts it.
    pub fn set_line(&mut self, line: Line) -> &mut Self {
        line::set(&mut self.session, line);
        self
    }

    /// The first session-level value of a line type (e.g. `'o'`, `'c'`), trimmed.
    pub fn field(&self, kind: char) -> Option<&str> {
        line::field(&self.session, kind)
    }

    /// `o=`, trimmed.
    pub fn origin(&self) -> Option<&str> {
        self.field('o')
    }

    /// `s=`, trimmed (sloppy peers omit it).
    pub fn session_name(&self) -> Option<&str> {
        self.field('s')
    }

    /// Every session-level `a=` line, in order.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        line::attributes(&self.session)
    }

    /// The first session-level attribute called `name` (ASCII case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<Attribute<'_>> {
        line::attribute(&self.session, name)
    }

    /// Appends a session-level attribute.
    pub fn push_attribute(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        self.push_line(Line::attribute(name, value))
    }

    /// Sets the one session-level attribute called `name` (replaced in place, duplicates
    /// dropped), or appends it.
    pub fn set_attribute(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        line::set_attribute(&mut self.session, name, value);
        self
    }

    /// Removes every session-level attribute called `name`; returns how many were removed.
    pub fn remove_attribute(&mut self, name: &str) -> usize {
        line::remove_attribute(&mut self.session, name)
    }

    /// The session-level `a=control` (the aggregate control), as written.
    pub fn control(&self) -> Option<&str> {
        line::values(&self.session, "control").next()
    }

    /// Sets the session-level `a=control`.
    pub fn set_control(&mut self, control: &str) -> &mut Self {
        self.set_attribute("control", Some(control))
    }

    /// The session-level `a=range`, if present and well-formed.
    pub fn range(&self) -> Option<Range> {
        line::values(&self.session, "range").find_map(|v| v.parse().ok())
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        line::direction(&self.session)
    }

    /// Sets the session-level direction (replacing any direction attribute in place).
    pub fn set_direction(&mut self, direction: Direction) -> &mut Self {
        line::set_direction(&mut self.session, direction);
        self
    }

    /// The effective direction of a media section: its own, else the session's, else sendrecv.
    pub fn media_direction(&self, media: &Media) -> Direction {
        media.direction().or(self.direction()).unwrap_or_default()
    }

    /// The aggregate control URL: the session-level control resolved against `base` (which
    /// is `Content-Base`, else `Content-Location`, else the request URL: see
    /// [`base_url`](crate::base_url)); `base` itself when there is none or it is `*`.
    pub fn aggregate_url(&self, base: &str) -> String {
        url::resolve(base, self.control().unwrap_or(""))
    }

    /// Each media section's URL (for SETUP): its control resolved against the aggregate URL
    /// (RFC 2326 §C.1.1); a media without a control gets the aggregate URL.
    pub fn media_urls(&self, base: &str) -> Vec<String> {
        let aggregate = self.aggregate_url(base);
        self.media.iter().map(|m| m.resolve_control(&aggregate)).collect()
    }

    /// Writes the SDP into `out`, CRLF after every line.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }

    /// The SDP as bytes, CRLF after every line.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Sdp {
    /// The SDP as written, CRLF after every line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.session {
            write!(f, "{line}\r\n")?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

impl FromStr for Sdp {
    type Err = ParseError;

    /// [`Sdp::parse`] on a string.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Sdp::parse(s.as_bytes())
    }
}
