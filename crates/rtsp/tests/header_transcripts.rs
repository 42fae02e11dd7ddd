//! Typed headers against the real transcripts in `testdata/rtsp/`, plus property tests:
//! `parse(write(x)) == x` for the structured headers, and no parser panics on any input.
//!
//! Header lines are pulled out of the transcripts with plain text splitting, so these tests
//! do not depend on the message codec.

use std::fmt::Display;
use std::time::Duration;

use manifold_rtsp::header::*;
use manifold_rtsp::{ChannelId, Headers, Method, SessionId};
use proptest::prelude::*;

/// Every `Name: value` line in a transcript whose name is `name` (case-insensitive), with the
/// direction it travelled.
fn header_lines(name: &str) -> Vec<(String, &'static str, manifold_testdata::Direction)> {
    let mut out = Vec::new();
    for file in manifold_testdata::TRANSCRIPTS {
        for seg in manifold_testdata::transcript(file) {
            let text = String::from_utf8_lossy(&seg.bytes).into_owned();
            for line in text.split("\r\n") {
                if let Some((n, v)) = line.split_once(':') {
                    if n.eq_ignore_ascii_case(name) {
                        out.push((v.trim().to_owned(), *file, seg.direction));
                    }
                }
            }
        }
    }
    out
}

/// Parses, writes and parses again; the two parses must agree. Returns the value and the text.
fn round_trip<T>(value: &str) -> (T, String)
where
    T: std::str::FromStr<Err = HeaderError> + Display + PartialEq + std::fmt::Debug,
{
    let parsed: T = value.parse().unwrap_or_else(|e| panic!("{value:?}: {e}"));
    let written = parsed.to_string();
    let again: T = written.parse().unwrap_or_else(|e| panic!("{written:?} (from {value:?}): {e}"));
    assert_eq!(again, parsed, "{value:?} -> {written:?}");
    (parsed, written)
}

fn check_all<T>(name: &str, at_least: usize) -> Vec<(T, String, String)>
where
    T: std::str::FromStr<Err = HeaderError> + Display + PartialEq + std::fmt::Debug,
{
    let lines = header_lines(name);
    assert!(lines.len() >= at_least, "{name}: only {} lines in the transcripts", lines.len());
    lines
        .into_iter()
        .map(|(v, _, _)| {
            let (parsed, written) = round_trip::<T>(&v);
            (parsed, v, written)
        })
        .collect()
}

#[test]
fn every_transport_in_the_transcripts() {
    let all = check_all::<Transport>("Transport", 8);
    for (t, original, written) in &all {
        assert_eq!(t.specs.len(), 1);
        let spec = &t.specs[0];
        assert_eq!(spec.profile, Profile::Avp);
        assert_eq!(spec.delivery, Some(Delivery::Unicast));
        assert!(spec.client_port.is_some(), "{original}");
        // The canonical form of what GStreamer and ffmpeg sent is what they sent, except for
        // ffmpeg's server (listen mode), which writes `mode=receive` first.
        if !original.contains("mode=receive") {
            assert_eq!(written, original);
        }
    }
    let gst = all.iter().find(|(_, o, _)| o.contains("ssrc=59EE0F1D")).unwrap();
    assert_eq!(gst.0.specs[0].ssrc, Some(0x59EE_0F1D));
    assert_eq!(gst.0.specs[0].mode, Some(TransportMode::Play));
    assert_eq!(gst.0.specs[0].server_port, PortRange::pair(49780));
    let publish: Vec<_> = all.iter().filter(|(_, o, _)| o.contains("mode=")).collect();
    assert!(publish.iter().any(|(t, _, _)| t.specs[0].mode == Some(TransportMode::Record)));
    let receive = all.iter().find(|(_, o, _)| o.contains("mode=receive")).unwrap();
    assert_eq!(receive.0.specs[0].source.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        receive.2,
        "RTP/AVP/UDP;unicast;source=127.0.0.1;client_port=17148-17149;server_port=5000-5001;mode=record"
    );
}

#[test]
fn every_session_in_the_transcripts() {
    let all = check_all::<Session>("Session", 10);
    for (s, original, written) in all {
        assert_eq!(&written, &original);
        assert_eq!(s.timeout, None);
        assert!(["nKzoG66kIQDPNcyC", "1208256501", "wzpqiraZHONiAYzs"].contains(&s.id.0.as_str()));
    }
}

#[test]
fn every_rtp_info_in_the_transcripts() {
    let all = check_all::<RtpInfo>("RTP-Info", 2);
    for (info, original, written) in all {
        assert_eq!(written, original);
        assert_eq!(info.entries.len(), 1);
        assert_eq!(info.entries[0].url, "rtsp://127.0.0.1:18554/live/stream=0");
        assert!(info.entries[0].seq.is_some() && info.entries[0].rtptime.is_some());
    }
}

#[test]
fn every_range_in_the_transcripts() {
    let all = check_all::<Range>("Range", 5);
    for (range, original, written) in all {
        assert_eq!(written, original);
        let RangeSpec::Npt(npt) = range.spec else { panic!("{original}") };
        assert_eq!(npt.end, None);
        assert!(matches!(npt.start, Some(NptTime::Now) | Some(NptTime::Time(Duration::ZERO))));
    }
}

#[test]
fn every_public_in_the_transcripts() {
    let all = check_all::<Public>("Public", 3);
    for (public, original, written) in all {
        assert_eq!(written, original);
        assert!(public.0.iter().all(|m| matches!(m, MethodName::Known(_))));
        assert!(public.contains(Method::Announce));
    }
}

#[test]
fn the_other_typed_headers_in_the_transcripts() {
    for (cseq, original, written) in check_all::<CSeq>("CSeq", 20) {
        assert_eq!(written, original);
        assert!(cseq.0 >= 1);
    }
    for (ct, _, written) in check_all::<ContentType>("Content-Type", 3) {
        assert!(ct.0.is("application", "sdp"));
        assert_eq!(written, "application/sdp");
    }
    for (_, original, written) in check_all::<ContentBase>("Content-Base", 2) {
        assert_eq!(written, original);
    }
    for (len, _, _) in check_all::<ContentLength>("Content-Length", 3) {
        assert!(len.0 > 500);
    }
    for (accept, original, written) in check_all::<Accept>("Accept", 2) {
        assert_eq!(written, original);
        assert!(accept.accepts("application", "sdp"));
    }
    for (_, original, written) in check_all::<UserAgent>("User-Agent", 10) {
        assert_eq!(written, original);
    }
    for (_, original, written) in check_all::<Server>("Server", 10) {
        assert_eq!(written, original);
    }
}

#[test]
fn typed_headers_read_from_and_set_in_headers() {
    // GStreamer's OPTIONS repeats User-Agent; the first one counts.
    let seg = &manifold_testdata::transcript("rtsp/gst-play-udp.txt")[0];
    let text = String::from_utf8_lossy(&seg.bytes).into_owned();
    let mut headers = Headers::new();
    for line in text.split("\r\n").skip(1) {
        if let Some((n, v)) = line.split_once(':') {
            headers.append(n, v.trim());
        }
    }
    assert_eq!(UserAgent::from_headers(&headers).unwrap().unwrap().0, "GStreamer/1.22.0");
    assert_eq!(CSeq::from_headers(&headers), Ok(Some(CSeq(1))));
    assert_eq!(Transport::from_headers(&headers), Ok(None));

    let spec = TransportSpec {
        server_port: PortRange::pair(35050),
        ssrc: Some(0xD8B9_F588),
        mode: Some(TransportMode::Play),
        ..TransportSpec::udp_unicast(PortRange::pair(21518).unwrap())
    };
    Transport::single(spec).set_in(&mut headers);
    Session::new(SessionId("nKzoG66kIQDPNcyC".into())).set_in(&mut headers);
    assert_eq!(
        headers.get("transport"),
        Some(
            r#"RTP/AVP;unicast;client_port=21518-21519;server_port=35050-35051;ssrc=D8B9F588;mode="PLAY""#
        )
    );
    assert_eq!(headers.get("SESSION"), Some("nKzoG66kIQDPNcyC"));

    // A list header split over two lines reads as one list.
    let mut h = Headers::new();
    h.append("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1");
    h.append("Transport", "RTP/AVP;unicast;client_port=5000-5001");
    let t = Transport::from_headers(&h).unwrap().unwrap();
    assert_eq!(t.specs.len(), 2);
    assert_eq!(t.specs[0].interleaved, ChannelRange::pair(ChannelId(0)));
    h.append("Session", "x y");
    assert_eq!(Session::from_headers(&h).unwrap_err().header(), "Session");
}

// ---- property tests ----

fn port_range() -> impl Strategy<Value = PortRange> {
    (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortRange { first: a.min(b), last: a.max(b) })
}

fn channel_range() -> impl Strategy<Value = ChannelRange> {
    (any::<u8>(), any::<u8>())
        .prop_map(|(a, b)| ChannelRange { first: ChannelId(a.min(b)), last: ChannelId(a.max(b)) })
}

/// Addresses, including characters that force quoting.
fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9a-f:]{2,16}",
        "[a-z0-9.:;, \"\\\\]{1,12}",
    ]
}

fn mode() -> impl Strategy<Value = TransportMode> {
    prop_oneof![
        Just(TransportMode::Play),
        Just(TransportMode::Record),
        "[A-Za-z][A-Za-z0-9_,;.-]{0,8}"
            .prop_filter("not a known mode", |m| {
                !["play", "record", "receive"].contains(&m.to_ascii_lowercase().as_str())
            })
            .prop_map(TransportMode::Other),
    ]
}

const KNOWN_TRANSPORT_PARAMS: &[&str] = &[
    "unicast",
    "multicast",
    "destination",
    "source",
    "interleaved",
    "append",
    "ttl",
    "layers",
    "port",
    "client_port",
    "server_port",
    "ssrc",
    "mode",
];

fn unknown_params(
    known: &'static [&'static str],
) -> impl Strategy<Value = Vec<(String, Option<String>)>> {
    prop::collection::vec(
        (
            "[A-Za-z][A-Za-z0-9_.-]{0,10}"
                .prop_filter("unknown", move |n| !known.contains(&n.to_ascii_lowercase().as_str())),
            prop::option::of(prop_oneof!["[A-Za-z0-9._/:-]{1,10}", "\"[A-Za-z0-9 ;,=]{0,8}\""]),
        ),
        0..3,
    )
}

fn transport_spec() -> impl Strategy<Value = TransportSpec> {
    let head = (
        prop_oneof![
            Just(Profile::Avp),
            Just(Profile::Avpf),
            Just(Profile::Savp),
            Just(Profile::Savpf)
        ],
        prop::option::of(prop_oneof![Just(LowerTransport::Udp), Just(LowerTransport::Tcp)]),
        prop::option::of(prop_oneof![Just(Delivery::Unicast), Just(Delivery::Multicast)]),
        prop::option::of(prop_oneof![
            Just(Destination::Unspecified),
            address().prop_map(Destination::Address)
        ]),
        prop::option::of(address()),
        prop::option::of(channel_range()),
        any::<bool>(),
    );
    let tail = (
        prop::option::of(any::<u8>()),
        prop::option::of(any::<u32>()),
        prop::option::of(port_range()),
        prop::option::of(port_range()),
        prop::option::of(port_range()),
        prop::option::of(any::<u32>()),
        prop::option::of(mode()),
        unknown_params(KNOWN_TRANSPORT_PARAMS),
    );
    (head, tail).prop_map(
        |(
            (profile, lower, delivery, destination, source, interleaved, append),
            (ttl, layers, port, client_port, server_port, ssrc, mode, other),
        )| TransportSpec {
            profile,
            lower,
            delivery,
            destination,
            source,
            interleaved,
            append,
            ttl,
            layers,
            port,
            client_port,
            server_port,
            ssrc,
            mode,
            other,
        },
    )
}

fn npt_time() -> impl Strategy<Value = NptTime> {
    prop_oneof![
        Just(NptTime::Now),
        (0u64..10_000_000_000, 0u32..1_000_000_000)
            .prop_map(|(s, n)| NptTime::Time(Duration::new(s, n))),
        (0u64..100_000).prop_map(|ms| NptTime::Time(Duration::from_millis(ms))),
    ]
}

fn smpte_time() -> impl Strategy<Value = SmpteTime> {
    (0u8..100, 0u8..60, 0u8..60, 0u8..30, 0u8..100).prop_map(
        |(hours, minutes, seconds, frames, subframes)| SmpteTime {
            hours,
            minutes,
            seconds,
            frames,
            subframes,
        },
    )
}

fn utc_time() -> impl Strategy<Value = UtcTime> {
    (
        0u16..10_000,
        1u8..13,
        1u8..32,
        0u8..24,
        0u8..60,
        0u8..61,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
    )
        .prop_map(|(year, month, day, hour, minute, second, nanos)| UtcTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        })
}

fn range() -> impl Strategy<Value = Range> {
    let npt = (prop::option::of(npt_time()), prop::option::of(npt_time()))
        .prop_filter("one end", |(s, e)| s.is_some() || e.is_some())
        .prop_map(|(start, end)| RangeSpec::Npt(NptRange { start, end }));
    let smpte = (
        prop_oneof![
            Just(SmpteKind::Smpte30),
            Just(SmpteKind::Smpte30Drop),
            Just(SmpteKind::Smpte25)
        ],
        smpte_time(),
        prop::option::of(smpte_time()),
    )
        .prop_map(|(kind, start, end)| RangeSpec::Smpte(SmpteRange { kind, start, end }));
    let clock = (utc_time(), prop::option::of(utc_time()))
        .prop_map(|(start, end)| RangeSpec::Clock(ClockRange { start, end }));
    (prop_oneof![npt, smpte, clock], prop::option::of(utc_time()))
        .prop_map(|(spec, time)| Range { spec, time })
}

fn rtp_info() -> impl Strategy<Value = RtpInfo> {
    let url = prop_oneof![
        "rtsp://[a-z0-9.:]{1,12}/[A-Za-z0-9=/,;._-]{0,16}",
        "rtsp://h/a,(url|URL) ?= ?[a-z]{1,4}",
        "[!-~ ]{1,16}",
    ];
    let entry = (
        url.prop_filter("a URL", |u| !u.trim().is_empty()),
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u32>()),
        unknown_params(&["url", "seq", "rtptime"]),
    )
        .prop_map(|(url, seq, rtptime, other)| RtpInfoEntry { url, seq, rtptime, other });
    prop::collection::vec(entry, 1..4).prop_map(|entries| RtpInfo { entries })
}

fn method_name() -> impl Strategy<Value = MethodName> {
    prop_oneof![
        prop::sample::select(Method::ALL.to_vec()).prop_map(MethodName::Known),
        "[A-Za-z_][A-Za-z0-9_.-]{0,12}"
            .prop_filter("unknown method", |m| Method::from_wire(m).is_none())
            .prop_map(MethodName::Other),
    ]
}

/// Strings made of the characters the parsers care about, to reach deep into them.
fn headerish() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,64}",
        "[RTPAVUDCSrtpavudcs/;=,\"\\\\0-9a-fxnowlkTZ:. _-]{0,80}",
        "(url=|npt=|clock=|smpte=|smpte-25=|RTP/AVP;|client_port=|ssrc=|mode=|timeout=|q=|[;,\"= 0-9.:-]){0,16}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn transport_round_trips(specs in prop::collection::vec(transport_spec(), 1..4)) {
        let t = Transport { specs };
        let text = t.to_string();
        prop_assert_eq!(Transport::parse(&text), Ok(t), "{}", text);
    }

    #[test]
    fn session_round_trips(id in "[!#-:<-~]{1,24}", timeout in prop::option::of(any::<u32>())) {
        let s = Session { id: SessionId(id), timeout };
        let text = s.to_string();
        prop_assert_eq!(Session::parse(&text), Ok(s), "{}", text);
    }

    #[test]
    fn range_round_trips(r in range()) {
        let text = r.to_string();
        prop_assert_eq!(Range::parse(&text), Ok(r), "{}", text);
    }

    #[test]
    fn rtp_info_round_trips(info in rtp_info()) {
        let text = info.to_string();
        prop_assert_eq!(RtpInfo::parse(&text), Ok(info), "{}", text);
    }

    #[test]
    fn public_round_trips(methods in prop::collection::vec(method_name(), 0..12)) {
        let p = Public(methods.clone());
        prop_assert_eq!(Public::parse(&p.to_string()), Ok(p));
        let a = Allow(methods);
        prop_assert_eq!(Allow::parse(&a.to_string()), Ok(a));
    }

    #[test]
    fn scale_and_speed_round_trip(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        prop_assert_eq!(Scale::parse(&Scale(x).to_string()), Ok(Scale(x)));
        let speed = Speed(x.abs());
        prop_assert_eq!(Speed::parse(&speed.to_string()), Ok(speed));
    }

    #[test]
    fn written_values_parse_back_after_any_parse(s in headerish()) {
        // Whatever parses must write something that parses back to the same value.
        if let Ok(t) = Transport::parse(&s) { prop_assert_eq!(Transport::parse(&t.to_string()), Ok(t)); }
        if let Ok(x) = Session::parse(&s) { prop_assert_eq!(Session::parse(&x.to_string()), Ok(x)); }
        if let Ok(x) = Range::parse(&s) { prop_assert_eq!(Range::parse(&x.to_string()), Ok(x)); }
        if let Ok(x) = RtpInfo::parse(&s) { prop_assert_eq!(RtpInfo::parse(&x.to_string()), Ok(x)); }
        if let Ok(x) = Public::parse(&s) { prop_assert_eq!(Public::parse(&x.to_string()), Ok(x)); }
        if let Ok(x) = Accept::parse(&s) { prop_assert_eq!(Accept::parse(&x.to_string()), Ok(x)); }
        if let Ok(x) = ContentType::parse(&s) { prop_assert_eq!(ContentType::parse(&x.to_string()), Ok(x)); }
    }

    #[test]
    fn parsers_never_panic(s in headerish()) {
        let _ = Transport::parse(&s);
        let _ = Transport::parse_supported(&s);
        let _ = TransportSpec::parse(&s);
        let _ = Session::parse(&s);
        let _ = Range::parse(&s);
        let _ = RtpInfo::parse(&s);
        let _ = Public::parse(&s);
        let _ = Allow::parse(&s);
        let _ = CSeq::parse(&s);
        let _ = ContentBase::parse(&s);
        let _ = ContentLocation::parse(&s);
        let _ = ContentType::parse(&s);
        let _ = ContentLength::parse(&s);
        let _ = Require::parse(&s);
        let _ = ProxyRequire::parse(&s);
        let _ = Unsupported::parse(&s);
        let _ = Scale::parse(&s);
        let _ = Speed::parse(&s);
        let _ = Accept::parse(&s);
        let _ = UserAgent::parse(&s);
        let _ = Server::parse(&s);
    }
}
