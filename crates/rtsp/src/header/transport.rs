//! `Transport` (RFC 2326 §12.39).

use std::fmt;

use super::{
    is_extension_param, parse_decimal, split_unquoted, typed_header, unquote, HeaderError,
};
use crate::ChannelId;

const NAME: &str = "Transport";

/// The `Transport` header: one or more transport specifications, in the sender's order of
/// preference (a client offers several; a server answers with the one it chose).
///
/// ```
/// use manifold_rtsp::header::{Transport, TransportMode};
///
/// let t = Transport::parse(
///     r#"RTP/AVP;unicast;client_port=21518-21519;server_port=35050-35051;ssrc=D8B9F588;mode="PLAY""#,
/// ).unwrap();
/// let spec = &t.specs[0];
/// assert_eq!(spec.server_port.unwrap().first, 35050);
/// assert_eq!(spec.ssrc, Some(0xD8B9_F588));
/// assert_eq!(spec.mode, Some(TransportMode::Play));
/// assert_eq!(
///     t.to_string(),
///     r#"RTP/AVP;unicast;client_port=21518-21519;server_port=35050-35051;ssrc=D8B9F588;mode="PLAY""#,
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// The specifications, most preferred first; never empty once parsed.
    pub specs: Vec<TransportSpec>,
}

typed_header!(Transport, NAME, true);

impl Transport {
    /// A header with one specification.
    pub fn single(spec: TransportSpec) -> Self {
        Transport { specs: vec![spec] }
    }

    /// Parses a header value: comma-separated specifications (empty ones are skipped).
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let specs = split_unquoted(s, b',')
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .map(TransportSpec::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if specs.is_empty() {
            return Err(HeaderError::Empty { header: NAME });
        }
        Ok(Transport { specs })
    }

    /// Like [`parse`](Self::parse), but drops specifications this crate does not speak (a
    /// transport protocol other than RTP, an unknown profile or lower transport, e.g.
    /// RealPlayer's `x-real-rdt/tcp`), so a server can pick from what is left. Malformed
    /// specifications are still errors; when nothing is left, the first unsupported one is
    /// the error (answer 461 Unsupported Transport).
    pub fn parse_supported(s: &str) -> Result<Self, HeaderError> {
        let mut specs = Vec::new();
        let mut first_unsupported = None;
        for piece in split_unquoted(s, b',') {
            if piece.trim().is_empty() {
                continue;
            }
            match TransportSpec::parse(piece) {
                Ok(spec) => specs.push(spec),
                Err(e @ HeaderError::Unsupported { .. }) => {
                    first_unsupported.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if specs.is_empty() {
            return Err(first_unsupported.unwrap_or(HeaderError::Empty { header: NAME }));
        }
        Ok(Transport { specs })
    }

    /// The most preferred specification (the only one in a server's answer).
    pub fn first(&self) -> Option<&TransportSpec> {
        self.specs.first()
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, spec) in self.specs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{spec}")?;
        }
        Ok(())
    }
}

/// The RTP profile of a transport specification (`RTP/<profile>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// `AVP` (RFC 3551), what every RTSP 1.0 peer speaks.
    #[default]
    Avp,
    /// `AVPF` (RFC 4585).
    Avpf,
    /// `SAVP` (RFC 3711).
    Savp,
    /// `SAVPF` (RFC 5124).
    Savpf,
}

impl Profile {
    /// The profile's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Avp => "AVP",
            Profile::Avpf => "AVPF",
            Profile::Savp => "SAVP",
            Profile::Savpf => "SAVPF",
        }
    }

    fn from_wire(s: &str) -> Option<Self> {
        [Profile::Avp, Profile::Avpf, Profile::Savp, Profile::Savpf]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// The lower transport (`RTP/AVP/<lower>`); UDP when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LowerTransport {
    /// `UDP`
    Udp,
    /// `TCP` (interleaved on the RTSP connection, RFC 2326 §10.12)
    Tcp,
}

impl LowerTransport {
    /// The lower transport's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LowerTransport::Udp => "UDP",
            LowerTransport::Tcp => "TCP",
        }
    }
}

/// `unicast` or `multicast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// `unicast`
    Unicast,
    /// `multicast`
    Multicast,
}

/// The `destination` parameter: bare (the default destination) or with an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `destination` with no value.
    Unspecified,
    /// `destination=<address>` (the address as sent, quotes removed).
    Address(String),
}

/// The `mode` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransportMode {
    /// `PLAY` (the default when `mode` is absent).
    Play,
    /// `RECORD`; also what ffmpeg's `receive` means.
    Record,
    /// Any other mode, as sent (quotes removed).
    Other(String),
}

/// An inclusive port range `n[-m]` (`port`, `client_port`, `server_port`). A single port has
/// `first == last`; RTP conventionally uses an even `first` for RTP and `first + 1` for RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The first port (RTP).
    pub first: u16,
    /// The last port (RTCP in a pair); equal to `first` for a single port.
    pub last: u16,
}

impl PortRange {
    /// A range, or `None` when `last < first`.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (last >= first).then_some(PortRange { first, last })
    }

    /// A single port.
    pub fn single(port: u16) -> Self {
        PortRange { first: port, last: port }
    }

    /// The RTP/RTCP pair `rtp-(rtp+1)`, or `None` when `rtp` is 65535.
    pub fn pair(rtp: u16) -> Option<Self> {
        rtp.checked_add(1).map(|rtcp| PortRange { first: rtp, last: rtcp })
    }

    /// The RTCP port of a pair (`first + 1` when the range covers it).
    pub fn rtcp(self) -> Option<u16> {
        (self.last > self.first).then(|| self.first + 1)
    }

    fn parse(what: &'static str, s: &str) -> Result<Self, HeaderError> {
        let (first, last) = parse_range(what, s)?;
        PortRange::new(first, last).ok_or_else(|| HeaderError::invalid(NAME, what, s))
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// An inclusive interleaved channel range `n[-m]` (`interleaved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelRange {
    /// The first channel (RTP).
    pub first: ChannelId,
    /// The last channel (RTCP in a pair); equal to `first` for a single channel.
    pub last: ChannelId,
}

impl ChannelRange {
    /// A range, or `None` when `last < first`.
    pub fn new(first: ChannelId, last: ChannelId) -> Option<Self> {
        (last >= first).then_some(ChannelRange { first, last })
    }

    /// The RTP/RTCP pair `rtp-(rtp+1)`, or `None` when `rtp` is 255.
    pub fn pair(rtp: ChannelId) -> Option<Self> {
        rtp.0.checked_add(1).map(|rtcp| ChannelRange { first: rtp, last: ChannelId(rtcp) })
    }

    /// The RTCP channel of a pair (`first + 1` when the range covers it).
    pub fn rtcp(self) -> Option<ChannelId> {
        (self.last > self.first).then(|| ChannelId(self.first.0 + 1))
    }
}

impl fmt::Display for ChannelRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Parses `n` or `n-m` (spaces around the numbers tolerated); `n` alone gives `(n, n)`.
fn parse_range<T: std::str::FromStr + Copy>(
    what: &'static str,
    s: &str,
) -> Result<(T, T), HeaderError> {
    let bad = || HeaderError::invalid(NAME, what, s);
    match s.split_once('-') {
        Some((a, b)) => {
            let a = parse_decimal(a.trim()).ok_or_else(bad)?;
            let b = parse_decimal(b.trim()).ok_or_else(bad)?;
            Ok((a, b))
        }
        None => {
            let a = parse_decimal(s.trim()).ok_or_else(bad)?;
            Ok((a, a))
        }
    }
}

/// One transport specification: `RTP/<profile>[/<lower>]` and its parameters.
///
/// Parameter names are matched in any case; parameters this type does not know are kept in
/// [`other`](Self::other), in order, and written back after the known ones. `Default` is
/// `RTP/AVP` with no parameters; fill in the rest with struct update syntax.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportSpec {
    /// The RTP profile.
    pub profile: Profile,
    /// The lower transport as sent: `None` for `RTP/AVP` (which means UDP), `Some` when
    /// spelled out. See [`lower_transport`](Self::lower_transport).
    pub lower: Option<LowerTransport>,
    /// `unicast` or `multicast`, if given.
    pub delivery: Option<Delivery>,
    /// `destination[=address]`.
    pub destination: Option<Destination>,
    /// `source=address`.
    pub source: Option<String>,
    /// `interleaved=n[-m]`.
    pub interleaved: Option<ChannelRange>,
    /// `append` (for RECORD).
    pub append: bool,
    /// `ttl=n` (multicast).
    pub ttl: Option<u8>,
    /// `layers=n` (multicast).
    pub layers: Option<u32>,
    /// `port=n[-m]` (multicast).
    pub port: Option<PortRange>,
    /// `client_port=n[-m]`.
    pub client_port: Option<PortRange>,
    /// `server_port=n[-m]`.
    pub server_port: Option<PortRange>,
    /// `ssrc=` (hex on the wire).
    pub ssrc: Option<u32>,
    /// `mode=`.
    pub mode: Option<TransportMode>,
    /// Unknown parameters, in order: the name as sent and the value as sent (quotes kept),
    /// `None` for a bare name.
    pub other: Vec<(String, Option<String>)>,
}

impl TransportSpec {
    /// `RTP/AVP;unicast;client_port=<client_port>`: what a UDP client offers in SETUP.
    pub fn udp_unicast(client_port: PortRange) -> Self {
        TransportSpec {
            delivery: Some(Delivery::Unicast),
            client_port: Some(client_port),
            ..TransportSpec::default()
        }
    }

    /// `RTP/AVP/TCP;unicast;interleaved=<channels>`: what an interleaved client offers.
    pub fn tcp_interleaved(channels: ChannelRange) -> Self {
        TransportSpec {
            lower: Some(LowerTransport::Tcp),
            delivery: Some(Delivery::Unicast),
            interleaved: Some(channels),
            ..TransportSpec::default()
        }
    }

    /// The lower transport in effect (UDP when not spelled out).
    pub fn lower_transport(&self) -> LowerTransport {
        self.lower.unwrap_or(LowerTransport::Udp)
    }

    /// The mode in effect (PLAY when absent).
    pub fn mode_or_default(&self) -> TransportMode {
        self.mode.clone().unwrap_or(TransportMode::Play)
    }

    /// Whether the spec is multicast (unicast is the default).
    pub fn is_multicast(&self) -> bool {
        self.delivery == Some(Delivery::Multicast)
    }

    /// Parses one specification (no top-level commas).
    pub fn parse(s: &str) -> Result<Self, HeaderError> {
        let mut parts = split_unquoted(s, b';').into_iter();
        let id = parts.next().unwrap_or_default().trim();
        if id.is_empty() {
            return Err(HeaderError::Missing { header: NAME, what: "transport protocol" });
        }
        let mut spec = TransportSpec::default();
        let mut ids = id.split('/');
        let protocol = ids.next().unwrap_or_default();
        if !protocol.eq_ignore_ascii_case("RTP") {
            return Err(HeaderError::unsupported(NAME, "transport protocol", id));
        }
        let profile = ids.next().ok_or(HeaderError::Missing { header: NAME, what: "profile" })?;
        spec.profile = Profile::from_wire(profile)
            .ok_or_else(|| HeaderError::unsupported(NAME, "profile", id))?;
        spec.lower = match ids.next() {
            None => None,
            Some(l) if l.eq_ignore_ascii_case("UDP") => Some(LowerTransport::Udp),
            Some(l) if l.eq_ignore_ascii_case("TCP") => Some(LowerTransport::Tcp),
            Some(_) => return Err(HeaderError::unsupported(NAME, "lower transport", id)),
        };
        if ids.next().is_some() {
            return Err(HeaderError::invalid(NAME, "transport protocol", id));
        }

        for param in parts {
            let param = param.trim();
            if param.is_empty() {
                continue;
            }
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (param, None),
            };
            spec.apply(name, value)?;
        }
        Ok(spec)
    }

    /// Applies one `name[=value]` parameter.
    fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), HeaderError> {
        let lower = name.to_ascii_lowercase();
        // Flags take no value; valued parameters need one.
        let flag = |v: Option<&str>| match v {
            None => Ok(()),
            Some(_) => Err(HeaderError::invalid(NAME, "flag parameter with a value", name)),
        };
        let needs = |what: &'static str| {
            value.ok_or(HeaderError::Missing { header: NAME, what }).map(|v| (what, v))
        };
        fn set_once<T>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), HeaderError> {
            if slot.is_some() {
                return Err(HeaderError::duplicate(NAME, name));
            }
            *slot = Some(v);
            Ok(())
        }
        match lower.as_str() {
            "unicast" | "multicast" => {
                flag(value)?;
                let d = if lower == "unicast" { Delivery::Unicast } else { Delivery::Multicast };
                set_once(&mut self.delivery, d, name)
            }
            "append" => {
                flag(value)?;
                if self.append {
                    return Err(HeaderError::duplicate(NAME, name));
                }
                self.append = true;
                Ok(())
            }
            "destination" => {
                let d = match value {
                    None => Destination::Unspecified,
                    Some(v) => Destination::Address(unquote(v).into_owned()),
                };
                set_once(&mut self.destination, d, name)
            }
            "source" => {
                let (what, v) = needs("source")?;
                let v = unquote(v);
                if v.is_empty() {
                    return Err(HeaderError::invalid(NAME, what, &v));
                }
                set_once(&mut self.source, v.into_owned(), name)
            }
            "interleaved" => {
                let (what, v) = needs("interleaved")?;
                let (a, b) = parse_range::<u8>(what, v)?;
                let r = ChannelRange::new(ChannelId(a), ChannelId(b))
                    .ok_or_else(|| HeaderError::invalid(NAME, what, v))?;
                set_once(&mut self.interleaved, r, name)
            }
            "ttl" => {
                let (what, v) = needs("ttl")?;
                let n = parse_decimal(v).ok_or_else(|| HeaderError::invalid(NAME, what, v))?;
                set_once(&mut self.ttl, n, name)
            }
            "layers" => {
                let (what, v) = needs("layers")?;
                let n = parse_decimal(v).ok_or_else(|| HeaderError::invalid(NAME, what, v))?;
                set_once(&mut self.layers, n, name)
            }
            "port" => {
                let (what, v) = needs("port")?;
                set_once(&mut self.port, PortRange::parse(what, v)?, name)
            }
            "client_port" => {
                let (what, v) = needs("client_port")?;
                set_once(&mut self.client_port, PortRange::parse(what, v)?, name)
            }
            "server_port" => {
                let (what, v) = needs("server_port")?;
                set_once(&mut self.server_port, PortRange::parse(what, v)?, name)
            }
            "ssrc" => {
                let (what, v) = needs("ssrc")?;
                let hex = unquote(v);
                let hex = hex.trim();
                let ok = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
                let n = ok
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| HeaderError::invalid(NAME, what, v))?;
                set_once(&mut self.ssrc, n, name)
            }
            "mode" => {
                let (what, v) = needs("mode")?;
                let m = unquote(v);
                let m = m.trim();
                let mode = if m.eq_ignore_ascii_case("play") {
                    TransportMode::Play
                } else if m.eq_ignore_ascii_case("record") || m.eq_ignore_ascii_case("receive") {
                    TransportMode::Record
                } else if m.is_empty() || m.contains('"') {
                    return Err(HeaderError::invalid(NAME, what, v));
                } else {
                    TransportMode::Other(m.to_owned())
                };
                set_once(&mut self.mode, mode, name)
            }
            _ => {
                if !is_extension_param(name, value) {
                    return Err(HeaderError::invalid(NAME, "parameter", name));
                }
                self.other.push((name.to_owned(), value.map(str::to_owned)));
                Ok(())
            }
        }
    }
}

/// Whether an address or mode must be quoted to survive `;`/`,` splitting.
fn needs_quotes(s: &str) -> bool {
    s.is_empty() || s.bytes().any(|b| matches!(b, b';' | b',' | b'"' | b'\\') || b <= b' ')
}

fn write_value(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if needs_quotes(s) {
        super::write_quoted(f, s)
    } else {
        f.write_str(s)
    }
}

impl fmt::Display for TransportSpec {
    /// The canonical form, in the order GStreamer writes: profile, delivery, destination,
    /// source, interleaved, append, ttl, layers, ports, ssrc (8 upper-case hex digits), mode
    /// (`mode="PLAY"` as GStreamer writes it, `mode=record` as ffmpeg writes and, matching
    /// case-sensitively, expects it), then unknown parameters as sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RTP/{}", self.profile.as_str())?;
        if let Some(lower) = self.lower {
            write!(f, "/{}", lower.as_str())?;
        }
        match self.delivery {
            Some(Delivery::Unicast) => f.write_str(";unicast")?,
            Some(Delivery::Multicast) => f.write_str(";multicast")?,
            None => {}
        }
        match &self.destination {
            Some(Destination::Unspecified) => f.write_str(";destination")?,
            Some(Destination::Address(a)) => {
                f.write_str(";destination=")?;
                write_value(f, a)?;
            }
            None => {}
        }
        if let Some(s) = &self.source {
            f.write_str(";source=")?;
            write_value(f, s)?;
        }
        if let Some(i) = self.interleaved {
            write!(f, ";interleaved={i}")?;
        }
        if self.append {
            f.write_str(";append")?;
        }
        if let Some(t) = self.ttl {
            write!(f, ";ttl={t}")?;
        }
        if let Some(l) = self.layers {
            write!(f, ";layers={l}")?;
        }
        if let Some(p) = self.port {
            write!(f, ";port={p}")?;
        }
        if let Some(p) = self.client_port {
            write!(f, ";client_port={p}")?;
        }
        if let Some(p) = self.server_port {
            write!(f, ";server_port={p}")?;
        }
        if let Some(s) = self.ssrc {
            write!(f, ";ssrc={s:08X}")?;
        }
        match &self.mode {
            Some(TransportMode::Play) => f.write_str(";mode=\"PLAY\"")?,
            Some(TransportMode::Record) => f.write_str(";mode=record")?,
            Some(TransportMode::Other(m)) => {
                f.write_str(";mode=")?;
                super::write_quoted(f, m)?;
            }
            None => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> TransportSpec {
        let t = Transport::parse(s).unwrap();
        assert_eq!(t.specs.len(), 1, "{s}");
        let back = Transport::parse(&t.to_string()).unwrap();
        assert_eq!(back, t, "{s} -> {t}");
        t.specs.into_iter().next().unwrap()
    }

    #[test]
    fn ffmpeg_client_udp() {
        let s = one("RTP/AVP/UDP;unicast;client_port=21518-21519");
        assert_eq!(s.lower, Some(LowerTransport::Udp));
        assert_eq!(s.delivery, Some(Delivery::Unicast));
        assert_eq!(s.client_port, PortRange::new(21518, 21519));
        assert_eq!(s.client_port.unwrap().rtcp(), Some(21519));
        assert_eq!(s.to_string(), "RTP/AVP/UDP;unicast;client_port=21518-21519");
    }

    #[test]
    fn gstreamer_server_answer_round_trips_exactly() {
        let text = r#"RTP/AVP;unicast;client_port=53054-53055;server_port=49780-49781;ssrc=59EE0F1D;mode="PLAY""#;
        let s = one(text);
        assert_eq!(s.ssrc, Some(0x59EE0F1D));
        assert_eq!(s.mode, Some(TransportMode::Play));
        assert_eq!(s.to_string(), text);
    }

    #[test]
    fn ffmpeg_publish() {
        let s = one("RTP/AVP/UDP;unicast;client_port=17148-17149;mode=record");
        assert_eq!(s.mode, Some(TransportMode::Record));
        assert_eq!(s.to_string(), "RTP/AVP/UDP;unicast;client_port=17148-17149;mode=record");
        let s = one("RTP/AVP/UDP;unicast;mode=receive;source=127.0.0.1;client_port=17148-17149;server_port=5000-5001");
        assert_eq!(s.mode, Some(TransportMode::Record));
        assert_eq!(s.source.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.server_port, PortRange::pair(5000));
    }

    #[test]
    fn every_parameter() {
        let s = one(
            "rtp/savpf/tcp;MULTICAST;Destination=\"224.2.0.1\";source=10.0.0.1;interleaved=4-5;append;\
             ttl=127;layers=2;port=3456-3457;client_port=1;server_port=2-3;SSRC=1a;Mode=\"record\";\
             x-foo=\"a;b\";x-bar",
        );
        assert_eq!(s.profile, Profile::Savpf);
        assert_eq!(s.lower_transport(), LowerTransport::Tcp);
        assert!(s.is_multicast());
        assert_eq!(s.destination, Some(Destination::Address("224.2.0.1".into())));
        assert_eq!(s.interleaved, ChannelRange::pair(ChannelId(4)));
        assert!(s.append);
        assert_eq!((s.ttl, s.layers), (Some(127), Some(2)));
        assert_eq!(s.port, PortRange::new(3456, 3457));
        assert_eq!(s.client_port, Some(PortRange::single(1)));
        assert_eq!(s.ssrc, Some(0x1a));
        assert_eq!(s.mode, Some(TransportMode::Record));
        assert_eq!(s.other, vec![("x-foo".into(), Some("\"a;b\"".into())), ("x-bar".into(), None)]);
        assert_eq!(
            s.to_string(),
            "RTP/SAVPF/TCP;multicast;destination=224.2.0.1;source=10.0.0.1;interleaved=4-5;append;\
             ttl=127;layers=2;port=3456-3457;client_port=1;server_port=2-3;ssrc=0000001A;\
             mode=record;x-foo=\"a;b\";x-bar"
        );
    }

    #[test]
    fn bare_destination_and_other_mode_and_spaces() {
        let s = one(" RTP/AVP ; unicast ; destination ; mode = \"PLAY,RECORD\" ; ");
        assert_eq!(s.destination, Some(Destination::Unspecified));
        assert_eq!(s.mode, Some(TransportMode::Other("PLAY,RECORD".into())));
        assert_eq!(s.to_string(), "RTP/AVP;unicast;destination;mode=\"PLAY,RECORD\"");
        assert_eq!(one("RTP/AVP;mode=Play").mode, Some(TransportMode::Play));
        assert_eq!(one("RTP/AVPF").mode_or_default(), TransportMode::Play);
    }

    #[test]
    fn several_specs_in_preference_order() {
        let t = Transport::parse(
            "RTP/AVP/TCP;unicast;interleaved=0-1, RTP/AVP;unicast;client_port=5000-5001,",
        )
        .unwrap();
        assert_eq!(t.specs.len(), 2);
        assert_eq!(t.first().unwrap().interleaved.unwrap().rtcp(), Some(ChannelId(1)));
        assert_eq!(t.specs[1].client_port, PortRange::pair(5000));
        assert_eq!(
            t.to_string(),
            "RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=5000-5001"
        );
        assert_eq!(
            Transport::single(TransportSpec::tcp_interleaved(
                ChannelRange::pair(ChannelId(2)).unwrap()
            ))
            .to_string(),
            "RTP/AVP/TCP;unicast;interleaved=2-3"
        );
        assert_eq!(
            TransportSpec::udp_unicast(PortRange::pair(6970).unwrap()).to_string(),
            "RTP/AVP;unicast;client_port=6970-6971"
        );
    }

    #[test]
    fn errors() {
        let err = |s: &str| Transport::parse(s).unwrap_err();
        assert_eq!(err(""), HeaderError::Empty { header: "Transport" });
        assert_eq!(err(" , "), HeaderError::Empty { header: "Transport" });
        assert!(matches!(err("x-real-rdt/udp"), HeaderError::Unsupported { .. }));
        assert!(matches!(err("RTP/XYZ"), HeaderError::Unsupported { .. }));
        assert!(matches!(err("RTP/AVP/SCTP"), HeaderError::Unsupported { .. }));
        assert!(matches!(err("RTP"), HeaderError::Missing { .. }));
        assert!(matches!(err(";unicast"), HeaderError::Missing { .. }));
        assert!(matches!(err("RTP/AVP/UDP/X"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;client_port"), HeaderError::Missing { .. }));
        assert!(matches!(err("RTP/AVP;client_port=70000"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;client_port=5001-5000"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;client_port=-5"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;interleaved=0-256"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;ssrc=123456789"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;ssrc=xyz"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;ttl=256"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;unicast=1"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;unicast;multicast"), HeaderError::Duplicate { .. }));
        assert!(matches!(err("RTP/AVP;mode=play;MODE=play"), HeaderError::Duplicate { .. }));
        assert!(matches!(err("RTP/AVP;mode=\"\""), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;=5"), HeaderError::Invalid { .. }));
        assert!(matches!(err("RTP/AVP;source="), HeaderError::Invalid { .. }));
        assert_eq!(err("RTP/AVP;ttl=x").header(), "Transport");
    }

    #[test]
    fn parse_supported_skips_what_we_do_not_speak() {
        let t = Transport::parse_supported(
            "x-real-rdt/tcp;unicast, RTP/AVP/TCP;unicast;interleaved=0-1, RTP/XYZ",
        )
        .unwrap();
        assert_eq!(t.specs.len(), 1);
        assert_eq!(t.specs[0].lower_transport(), LowerTransport::Tcp);
        assert!(Transport::parse("x-real-rdt/tcp, RTP/AVP").is_err());
        assert!(matches!(
            Transport::parse_supported("x-real-rdt/tcp"),
            Err(HeaderError::Unsupported { .. })
        ));
        assert!(matches!(
            Transport::parse_supported("RTP/AVP;client_port=x, x-real-rdt/tcp"),
            Err(HeaderError::Invalid { .. })
        ));
        assert_eq!(Transport::parse_supported(","), Err(HeaderError::Empty { header: NAME }));
    }

    #[test]
    fn ssrc_forms() {
        assert_eq!(one("RTP/AVP;ssrc=D8B9F588").ssrc, Some(0xD8B9F588));
        assert_eq!(one("RTP/AVP;ssrc=d8b9f588").ssrc, Some(0xD8B9F588));
        assert_eq!(one("RTP/AVP;ssrc=1").ssrc, Some(1));
        assert_eq!(one("RTP/AVP;ssrc=\"00ABCDEF\"").ssrc, Some(0xABCDEF));
    }
}
