//! One SDP line (`<type>=<value>`), the attribute view of `a=` lines, and the operations the
//! session and media sections share.

use std::fmt;

use crate::attr::Direction;
use crate::error::ValueError;

/// One `<type>=<value>` line other than `m=`, its value exactly as written (trailing whitespace
/// included), so writing it back reproduces the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    kind: char,
    value: String,
}

impl Line {
    /// A line of any type but `v=` (always the first line of an [`Sdp`](crate::Sdp)) and `m=`
    /// (a [`Media`](crate::Media) section). The type must be an ASCII letter. CR and LF in the
    /// value are replaced by spaces so a value can never inject a line.
    pub fn new(kind: char, value: &str) -> Result<Line, ValueError> {
        if !kind.is_ascii_alphabetic() {
            return Err(ValueError::new("line type must be an ASCII letter"));
        }
        if kind == 'v' || kind == 'm' {
            return Err(ValueError::new("v= and m= lines are structural"));
        }
        Ok(Line::raw(kind, value))
    }

    /// An `a=<name>` or `a=<name>:<value>` line (CR/LF replaced by spaces).
    pub fn attribute(name: &str, value: Option<&str>) -> Line {
        match value {
            Some(v) => Line::raw('a', &format!("{name}:{v}")),
            None => Line::raw('a', name),
        }
    }

    pub(crate) fn raw(kind: char, value: &str) -> Line {
        Line { kind, value: value.replace(['\r', '\n'], " ") }
    }

    /// The type letter, e.g. `'a'`.
    pub fn kind(&self) -> char {
        self.kind
    }

    /// The value exactly as written (use [`str::trim`] for the meaningful part).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The `a=` line split into name and value, or `None` for other types.
    pub fn as_attribute(&self) -> Option<Attribute<'_>> {
        (self.kind == 'a').then(|| Attribute::split(&self.value))
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.value)
    }
}

/// An `a=` line seen as `name[:value]`, both trimmed of surrounding whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// The attribute name, e.g. `rtpmap`.
    pub name: &'a str,
    /// The text after the first `:`, if there is one.
    pub value: Option<&'a str>,
}

impl<'a> Attribute<'a> {
    fn split(text: &'a str) -> Self {
        match text.split_once(':') {
            Some((name, value)) => Attribute { name: name.trim(), value: Some(value.trim()) },
            None => Attribute { name: text.trim(), value: None },
        }
    }

    /// Whether the name is `name`, ASCII case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Position of a line type in RFC 8866's order (`v o s i u e p c b t r z k a`; `m i c b k a`
/// is the same order); unknown types sort last.
fn order(kind: char) -> usize {
    "vosiuepcbtrzka".find(kind).unwrap_or(usize::MAX)
}

/// Inserts a line after every line that RFC 8866 puts before or with it.
pub(crate) fn insert(lines: &mut Vec<Line>, line: Line) {
    let rank = order(line.kind);
    let at = lines.iter().rposition(|l| order(l.kind) <= rank).map_or(0, |i| i + 1);
    lines.insert(at, line);
}

/// Replaces the first line of the same type in place (dropping any later ones), or inserts it.
pub(crate) fn set(lines: &mut Vec<Line>, line: Line) {
    match lines.iter().position(|l| l.kind == line.kind) {
        Some(i) => {
            let kind = line.kind;
            lines[i] = line;
            let mut n = 0;
            lines.retain(|l| {
                n += 1;
                n <= i + 1 || l.kind != kind
            });
        }
        None => insert(lines, line),
    }
}

/// The first value of a line type, trimmed.
pub(crate) fn field(lines: &[Line], kind: char) -> Option<&str> {
    lines.iter().find(|l| l.kind == kind).map(|l| l.value.trim())
}

pub(crate) fn attributes(lines: &[Line]) -> impl Iterator<Item = Attribute<'_>> {
    lines.iter().filter_map(Line::as_attribute)
}

/// The values of every attribute called `name` (attributes without a value are skipped).
pub(crate) fn values<'a>(lines: &'a [Line], name: &'a str) -> impl Iterator<Item = &'a str> {
    attributes(lines).filter(move |a| a.is(name)).filter_map(|a| a.value)
}

pub(crate) fn attribute<'a>(lines: &'a [Line], name: &str) -> Option<Attribute<'a>> {
    attributes(lines).find(|a| a.is(name))
}

/// Replaces the first attribute called `name` that `matches` in place, or appends a new one.
pub(crate) fn replace_or_push(
    lines: &mut Vec<Line>,
    name: &str,
    matches: impl Fn(Option<&str>) -> bool,
    value: Option<&str>,
) {
    let new = Line::attribute(name, value);
    let found =
        lines.iter().position(|l| l.as_attribute().is_some_and(|a| a.is(name) && matches(a.value)));
    match found {
        Some(i) => lines[i] = new,
        None => insert(lines, new),
    }
}

/// Sets the single attribute called `name`: the first is replaced in place, later ones dropped.
pub(crate) fn set_attribute(lines: &mut Vec<Line>, name: &str, value: Option<&str>) {
    replace_or_push(lines, name, |_| true, value);
    let mut seen = false;
    lines.retain(|l| match l.as_attribute() {
        Some(a) if a.is(name) => !std::mem::replace(&mut seen, true),
        _ => true,
    });
}

/// Removes every attribute called `name`; returns how many there were.
pub(crate) fn remove_attribute(lines: &mut Vec<Line>, name: &str) -> usize {
    let before = lines.len();
    lines.retain(|l| !l.as_attribute().is_some_and(|a| a.is(name)));
    before - lines.len()
}

/// The direction attribute of a section (the last one wins if a sloppy peer wrote several).
pub(crate) fn direction(lines: &[Line]) -> Option<Direction> {
    attributes(lines).filter_map(|a| Direction::from_name(a.name)).last()
}

/// Replaces the section's direction attribute(s) with `direction`, at the first one's place.
pub(crate) fn set_direction(lines: &mut Vec<Line>, direction: Direction) {
    let new = Line::attribute(direction.as_str(), None);
    let is_dir =
        |l: &Line| l.as_attribute().is_some_and(|a| Direction::from_name(a.name).is_some());
    match lines.iter().position(is_dir) {
        Some(i) => {
            lines[i] = new;
            let mut n = 0;
            lines.retain(|l| {
                n += 1;
                n <= i + 1 || !is_dir(l)
            });
        }
        None => insert(lines, new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(lines: &[Line]) -> String {
        lines.iter().map(|l| l.kind).collect()
    }

    #[test]
    fn lines_reject_structural_and_non_letter_types() {
        assert!(Line::new('v', "0").is_err());
        assert!(Line::new('m', "video 0 RTP/AVP 96").is_err());
        assert!(Line::new('1', "x").is_err());
        assert_eq!(Line::new('s', "a\r\nb").unwrap().to_string(), "s=a  b");
    }

    #[test]
    fn attribute_view_trims() {
        let l = Line::raw('a', "control: stream=0 ");
        assert_eq!(l.as_attribute(), Some(Attribute { name: "control", value: Some("stream=0") }));
        let l = Line::raw('a', "recvonly  ");
        assert_eq!(l.as_attribute(), Some(Attribute { name: "recvonly", value: None }));
        assert_eq!(Line::raw('b', "AS:1").as_attribute(), None);
    }

    #[test]
    fn insert_keeps_rfc_order() {
        let mut lines = vec![Line::raw('v', "0"), Line::raw('o', "x"), Line::raw('t', "0 0")];
        insert(&mut lines, Line::raw('s', "n"));
        insert(&mut lines, Line::raw('a', "x"));
        insert(&mut lines, Line::raw('c', "IN IP4 0.0.0.0"));
        insert(&mut lines, Line::raw('X', "unknown"));
        insert(&mut lines, Line::raw('a', "y"));
        assert_eq!(kinds(&lines), "vosctaaX");
        let mut media = Vec::new();
        insert(&mut media, Line::raw('a', "x"));
        insert(&mut media, Line::raw('b', "AS:1"));
        insert(&mut media, Line::raw('i', "t"));
        assert_eq!(kinds(&media), "iba");
    }

    #[test]
    fn set_replaces_in_place_and_drops_duplicates() {
        let mut lines = vec![
            Line::raw('v', "0"),
            Line::raw('s', "a"),
            Line::raw('t', "0 0"),
            Line::raw('s', "b"),
        ];
        set(&mut lines, Line::raw('s', "c"));
        assert_eq!(
            lines.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["v=0", "s=c", "t=0 0"]
        );
        let mut lines =
            vec![Line::raw('a', "control:a"), Line::raw('a', "x"), Line::raw('a', "Control:b")];
        set_attribute(&mut lines, "control", Some("c"));
        assert_eq!(
            lines.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a=control:c", "a=x"]
        );
        assert_eq!(remove_attribute(&mut lines, "CONTROL"), 1);
        assert_eq!(remove_attribute(&mut lines, "control"), 0);
    }

    #[test]
    fn direction_is_replaced_once() {
        let mut lines =
            vec![Line::raw('a', "sendonly"), Line::raw('a', "x"), Line::raw('a', "inactive")];
        assert_eq!(direction(&lines), Some(Direction::Inactive));
        set_direction(&mut lines, Direction::RecvOnly);
        assert_eq!(
            lines.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a=recvonly", "a=x"]
        );
        assert_eq!(direction(&[]), None);
    }
}
