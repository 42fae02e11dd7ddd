//! Property tests: `parse(write(x)) == x` for generated SDPs, arbitrary input never panics,
//! and the builders produce what the relay needs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use manifold_sdp::{Direction, Extmap, Fmtp, Line, Media, MediaLine, RtpMap, Sdp};
use proptest::collection::vec;
use proptest::prelude::*;

/// Free text for a line value: anything but CR and LF.
fn text() -> impl Strategy<Value = String> {
    "[^\r\n]{0,24}"
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/._+-]{1,10}"
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive),
    ]
}

/// An edit applied through the builders, to a session or a media section.
#[derive(Debug, Clone)]
enum Edit {
    Line(char, String),
    Attribute(String, Option<String>),
    Control(String),
    Direction(Direction),
    RtpMap(u8, String, u32, Option<u16>),
    Fmtp(u8, Vec<(String, Option<String>)>),
    Extmap(u16, Option<Direction>, String, Option<String>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        ("[a-ln-uw-zA-Z]", text()).prop_map(|(k, v)| Edit::Line(k.chars().next().unwrap(), v)),
        ("[a-zA-Z][a-zA-Z0-9_-]{0,12}", proptest::option::of(text()))
            .prop_map(|(n, v)| Edit::Attribute(n, v)),
        "[!-~]{1,20}".prop_map(Edit::Control),
        direction().prop_map(Edit::Direction),
        (0u8..128, "[A-Za-z0-9-]{1,12}", any::<u32>(), proptest::option::of(any::<u16>()))
            .prop_map(|(pt, e, r, c)| Edit::RtpMap(pt, e, r, c)),
        (0u8..128, vec(("[a-z-]{1,8}", proptest::option::of("[A-Za-z0-9+/=,]{0,12}")), 0..4))
            .prop_map(|(pt, p)| Edit::Fmtp(pt, p)),
        (
            1u16..=14,
            proptest::option::of(direction()),
            "[a-z:./-]{1,20}",
            proptest::option::of("[a-z0-9]{1,5}( [a-z0-9]{1,5})?")
        )
            .prop_map(|(id, d, u, a)| Edit::Extmap(id, d, u, a)),
    ]
}

fn apply_to_media(m: &mut Media, e: &Edit) {
    match e {
        Edit::Line(k, v) => {
            m.push_line(Line::new(*k, v).unwrap());
        }
        Edit::Attribute(n, v) => {
            m.push_attribute(n, v.as_deref());
        }
        Edit::Control(c) => {
            m.set_control(c);
        }
        Edit::Direction(d) => {
            m.set_direction(*d);
        }
        Edit::RtpMap(pt, e, r, c) => {
            m.set_rtpmap(&RtpMap {
                payload_type: *pt,
                encoding: e.clone(),
                clock_rate: *r,
                channels: *c,
            });
        }
        Edit::Fmtp(pt, p) => {
            m.set_fmtp(&Fmtp { format: pt.to_string(), params: p.clone() });
        }
        Edit::Extmap(id, d, u, a) => {
            m.add_extmap(&Extmap { id: *id, direction: *d, uri: u.clone(), attributes: a.clone() });
        }
    }
}

fn apply_to_session(s: &mut Sdp, e: &Edit) {
    match e {
        Edit::Line(k, v) => {
            s.push_line(Line::new(*k, v).unwrap());
        }
        Edit::Attribute(n, v) => {
            s.push_attribute(n, v.as_deref());
        }
        Edit::Control(c) => {
            s.set_control(c);
        }
        Edit::Direction(d) => {
            s.set_direction(*d);
        }
        Edit::RtpMap(..) | Edit::Fmtp(..) | Edit::Extmap(..) => {
            s.push_attribute("x-session", Some("value"));
        }
    }
}

fn media_line() -> impl Strategy<Value = MediaLine> {
    ("[a-z]{1,10}", any::<u16>(), proptest::option::of(1u16..8), token(), vec(token(), 0..5))
        .prop_map(|(media, port, port_count, proto, formats)| MediaLine {
            media,
            port,
            port_count,
            proto,
            formats,
        })
}

fn sdp() -> impl Strategy<Value = Sdp> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        vec(edit(), 0..8),
        vec((media_line(), vec(edit(), 0..8)), 0..4),
    )
        .prop_map(|(origin, name, session_edits, media)| {
            let mut sdp = Sdp::new();
            if let Some(o) = origin {
                sdp.set_line(Line::new('o', &o).unwrap());
            }
            if let Some(s) = name {
                sdp.set_line(Line::new('s', &s).unwrap());
            }
            for e in &session_edits {
                apply_to_session(&mut sdp, e);
            }
            for (m, edits) in media {
                let section = sdp.push_media(Media::new(m));
                for e in &edits {
                    apply_to_media(section, e);
                }
            }
            sdp
        })
}

proptest! {
    #[test]
    fn parse_write_round_trips(sdp in sdp()) {
        let written = sdp.to_bytes();
        let parsed = Sdp::parse(&written).unwrap();
        prop_assert_eq!(&parsed, &sdp);
        prop_assert_eq!(parsed.to_bytes(), written.clone());
        // LF-only input is the same SDP.
        let lf = String::from_utf8(written).unwrap().replace("\r\n", "\n");
        prop_assert_eq!(Sdp::parse(lf.as_bytes()).unwrap(), sdp);
    }

    #[test]
    fn typed_values_survive_the_round_trip(
        pt in 0u8..128, rate in any::<u32>(), channels in proptest::option::of(any::<u16>()),
        id in 1u16..=255, dir in proptest::option::of(direction()),
    ) {
        let rtpmap = RtpMap { payload_type: pt, encoding: "H264".into(), clock_rate: rate, channels };
        let extmap = Extmap { id, direction: dir, uri: "urn:x".into(), attributes: None };
        let mut media = Media::new(MediaLine::new("video", 0, "RTP/AVP", &[&pt.to_string()]));
        media.set_rtpmap(&rtpmap).add_extmap(&extmap);
        let mut sdp = Sdp::new();
        sdp.push_media(media);
        let parsed = Sdp::parse_strict(&sdp.to_bytes()).unwrap();
        prop_assert_eq!(parsed.media()[0].rtpmap(pt), Some(rtpmap));
        prop_assert_eq!(parsed.media()[0].extmaps().collect::<Vec<_>>(), vec![extmap]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = Sdp::parse(&bytes);
        let _ = Sdp::parse_strict(&bytes);
    }

    #[test]
    fn sdp_like_text_never_panics(lines in vec("[a-zA-Z ]=[ -~]{0,30}|[ -~]{0,10}", 0..12)) {
        let input = format!("v=0\n{}", lines.join("\n"));
        for parsed in [Sdp::parse(input.as_bytes()), Sdp::parse_strict(input.as_bytes())].into_iter().flatten() {
            let _ = parsed.media_urls("rtsp://h/a/");
            for m in parsed.media() {
                let _ = (m.rtpmaps().count(), m.fmtps().count(), m.extmaps().count(), m.range(), m.framerate());
                let _ = m.sprop_parameter_sets();
            }
            prop_assert_eq!(Sdp::parse(&parsed.to_bytes()).unwrap(), parsed);
        }
    }
}

/// What the relay does with an upstream SDP before serving it: rewrite the controls to its own,
/// make the session control `*`, add the capture-time extension, announce sendonly.
#[test]
fn relay_rewrites_an_upstream_sdp() {
    let upstream = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                    a=tool:libavformat\r\nm=video 0 RTP/AVP 96\r\nb=AS:793\r\na=rtpmap:96 H264/90000\r\n\
                    a=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n\
                    m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/1\r\na=control:streamid=1\r\n";
    let mut sdp = Sdp::parse(upstream.as_bytes()).unwrap();
    sdp.set_control("*").set_line(Line::new('s', "manifold").unwrap());
    for (i, media) in sdp.media_mut().iter_mut().enumerate() {
        media.set_control(&format!("trackID={i}"));
        media
            .add_extmap(&Extmap::new(
                1,
                "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
            ))
            .set_direction(Direction::SendOnly);
    }
    let mut fmtp = sdp.media()[0].fmtp("96").unwrap();
    fmtp.set_param("profile-level-id", "42C01E");
    sdp.media_mut()[0].set_fmtp(&fmtp);
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=manifold\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         a=tool:libavformat\r\na=control:*\r\n\
         m=video 0 RTP/AVP 96\r\nb=AS:793\r\na=rtpmap:96 H264/90000\r\n\
         a=fmtp:96 packetization-mode=1;profile-level-id=42C01E\r\na=control:trackID=0\r\n\
         a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\na=sendonly\r\n\
         m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/1\r\na=control:trackID=1\r\n\
         a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\na=sendonly\r\n"
    );
    assert_eq!(
        sdp.media_urls("rtsp://relay:8554/cam/"),
        ["rtsp://relay:8554/cam/trackID=0", "rtsp://relay:8554/cam/trackID=1"]
    );
    // Replacing an extmap with the same id keeps one line, in place.
    let mut ext = Extmap::new(1, "urn:ietf:params:rtp-hdrext:toffset");
    ext.direction = Some(Direction::SendOnly);
    sdp.media_mut()[1].add_extmap(&ext);
    assert_eq!(sdp.media()[1].extmaps().collect::<Vec<_>>(), [ext]);
    assert_eq!(Sdp::parse_strict(&sdp.to_bytes()).unwrap(), sdp);
}

#[test]
fn builders_from_scratch() {
    let mut sdp = Sdp::default();
    sdp.push_attribute("tool", Some("manifold"))
        .set_line(Line::new('t', "0 0").unwrap())
        .set_line(Line::new('s', "live").unwrap())
        .set_line(Line::new('o', "- 1 1 IN IP4 10.0.0.1").unwrap())
        .set_direction(Direction::RecvOnly);
    let mut m = Media::new(MediaLine::new("audio", 0, "RTP/AVP", &["0"]));
    m.push_line(Line::new('c', "IN IP4 0.0.0.0").unwrap())
        .push_line(Line::new('i', "mic").unwrap());
    sdp.push_media(m).set_media_line(MediaLine {
        port_count: Some(2),
        ..MediaLine::new("audio", 5004, "RTP/AVP", &["0", "8"])
    });
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=live\r\nt=0 0\r\na=tool:manifold\r\na=recvonly\r\n\
         m=audio 5004/2 RTP/AVP 0 8\r\ni=mic\r\nc=IN IP4 0.0.0.0\r\n"
    );
    assert_eq!(sdp.media_direction(&sdp.media()[0]), Direction::RecvOnly);
    assert_eq!(sdp.remove_attribute("tool"), 1);
    assert_eq!(sdp.media_mut()[0].remove_attribute("control"), 0);
    let mut out = Vec::new();
    sdp.write(&mut out);
    assert_eq!(out, sdp.to_bytes());
    assert_eq!(sdp.to_string().parse::<Sdp>().unwrap(), sdp);
}
