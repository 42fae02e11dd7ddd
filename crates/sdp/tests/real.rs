//! Real SDPs (from the recorded transcripts) and hand-written vendor vectors: each parses,
//! round-trips byte for byte, and resolves its controls to the URLs real clients SETUP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use manifold_sdp::{base_url, Direction, Npt, Range, Sdp};
use manifold_testdata::{transcript, Direction as Dir, TRANSCRIPTS};

/// One RTSP message from a transcript: start line, headers, body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn request(&self) -> Option<(&str, &str)> {
        let mut words = self.start.split(' ');
        let method = words.next()?;
        let url = words.next()?;
        (!method.starts_with("RTSP/")).then_some((method, url))
    }
}

/// The messages one side sent, in order (segments concatenated, bodies cut by Content-Length).
fn messages(name: &str, side: Dir) -> Vec<Message> {
    let stream: Vec<u8> = transcript(name)
        .into_iter()
        .filter(|s| s.direction == side)
        .flat_map(|s| s.bytes)
        .collect();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let head_len = stream[pos..].windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&stream[pos..pos + head_len]).unwrap();
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap().to_owned();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        pos += head_len + 4;
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body = stream[pos..pos + len].to_vec();
        pos += len;
        out.push(Message { start, headers, body });
    }
    out
}

/// Every SDP in a transcript with the base URL its receiver resolves against, and the URLs
/// the client then sent SETUP to.
fn sdps(name: &str) -> Vec<(Vec<u8>, String, Vec<String>)> {
    let requests = messages(name, Dir::ClientToServer);
    let responses = messages(name, Dir::ServerToClient);
    let setups: Vec<String> = requests
        .iter()
        .filter_map(Message::request)
        .filter(|(m, _)| *m == "SETUP")
        .map(|(_, u)| u.to_owned())
        .collect();
    let mut out = Vec::new();
    for (i, req) in requests.iter().enumerate() {
        let (method, url) = req.request().unwrap();
        let carrier = match method {
            "ANNOUNCE" => req,
            // Responses come in request order on these single-connection transcripts.
            "DESCRIBE" => &responses[i],
            _ => continue,
        };
        assert_eq!(carrier.header("Content-Type"), Some("application/sdp"), "{name}");
        let base =
            base_url(carrier.header("Content-Base"), carrier.header("Content-Location"), url);
        out.push((carrier.body.clone(), base.to_owned(), setups.clone()));
    }
    out
}

#[test]
fn every_transcript_sdp_parses_round_trips_and_resolves_to_the_setup_urls() {
    let mut seen = 0;
    for name in TRANSCRIPTS {
        for (body, base, setups) in sdps(name) {
            assert!(body.starts_with(b"v=0\r\n"), "{name}");
            let sdp = Sdp::parse(&body).unwrap();
            assert_eq!(Sdp::parse_strict(&body).unwrap(), sdp, "{name}");
            assert_eq!(sdp.to_bytes(), body, "{name}: round trip");
            assert_eq!(sdp.media_urls(&base), setups, "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, 3);
}

#[test]
fn gstreamer_describe() {
    let (body, base, _) = sdps("rtsp/ffmpeg-play-udp.txt").remove(0);
    assert_eq!(base, "rtsp://127.0.0.1:18554/live/");
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(sdp.session_name(), Some("Session streamed with GStreamer"));
    assert_eq!(sdp.control(), Some("*"));
    assert_eq!(sdp.aggregate_url(&base), "rtsp://127.0.0.1:18554/live/", "the PLAY URL");
    assert_eq!(sdp.range(), Some(Range::Npt { start: Some(Npt::Now), end: None }));
    assert_eq!(sdp.attribute("type").and_then(|a| a.value), Some("broadcast"));
    let [video] = sdp.media() else { panic!("one media") };
    let m = video.media_line();
    assert_eq!(
        (m.media.as_str(), m.port, m.port_count, m.proto.as_str()),
        ("video", 0, None, "RTP/AVP")
    );
    assert_eq!(m.formats, ["96"]);
    assert_eq!(video.field('c'), Some("IN IP4 0.0.0.0"));
    assert_eq!(video.field('b'), Some("AS:1024"));
    let rtpmap = video.rtpmap(96).unwrap();
    assert_eq!(
        (rtpmap.encoding.as_str(), rtpmap.clock_rate, rtpmap.channels),
        ("H264", 90000, None)
    );
    assert_eq!(video.framerate(), Some(25.0));
    let fmtp = video.fmtp("96").unwrap();
    assert_eq!(fmtp.param("profile-level-id"), Some("42c01e"));
    assert_eq!(fmtp.param("level-asymmetry-allowed"), Some("1"));
    let sets = video.sprop_parameter_sets().unwrap().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0][0], 0x67, "SPS");
    assert_eq!(sets[1], [0x68, 0xcb, 0x8c, 0xb2], "PPS");
    assert_eq!(video.control(), Some("stream=0"));
    assert_eq!(video.attribute("ssrc").and_then(|a| a.value).map(|v| &v[..10]), Some("3636065672"));
    assert_eq!(sdp.media_direction(video), Direction::SendRecv);
}

#[test]
fn ffmpeg_announce() {
    let (body, base, _) = sdps("rtsp/ffmpeg-publish-udp.txt").remove(0);
    assert_eq!(base, "rtsp://127.0.0.1:18555/pub", "no Content-Base: the request URL");
    let sdp = Sdp::parse(&body).unwrap();
    assert_eq!(sdp.control(), None);
    assert_eq!(sdp.field('c'), Some("IN IP4 127.0.0.1"));
    let [video, audio] = sdp.media() else { panic!("two media") };
    assert_eq!(video.control(), Some("streamid=0"));
    let fmtp = video.fmtp("96").unwrap();
    let keys: Vec<&str> = fmtp.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["packetization-mode", "sprop-parameter-sets", "profile-level-id"]);
    assert_eq!(video.sprop_parameter_sets().unwrap().unwrap().len(), 2);
    assert_eq!(audio.kind(), "audio");
    let rtpmap = audio.rtpmap(97).unwrap();
    assert_eq!(
        (rtpmap.encoding.as_str(), rtpmap.clock_rate, rtpmap.channels),
        ("MPEG4-GENERIC", 48000, Some(1))
    );
    let fmtp = audio.fmtp("97").unwrap();
    assert_eq!(fmtp.param("config"), Some("118856E500"));
    assert_eq!(fmtp.param("mode"), Some("AAC-hbr"));
    assert_eq!(audio.sprop_parameter_sets(), None);
    assert_eq!(
        sdp.media_urls(&base),
        ["rtsp://127.0.0.1:18555/pub/streamid=0", "rtsp://127.0.0.1:18555/pub/streamid=1"]
    );
}

/// A hand-written vendor vector: the DESCRIBE request URL, Content-Base, SDP, SETUP URLs.
struct Vector {
    name: &'static str,
    request: &'static str,
    content_base: Option<&'static str>,
    sdp: &'static str,
    setups: &'static [&'static str],
}

const VECTORS: &[Vector] = &[
    Vector {
        name: "mediamtx",
        request: "rtsp://127.0.0.1:8554/mystream",
        content_base: Some("rtsp://127.0.0.1:8554/mystream/"),
        sdp: "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Stream\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
              m=video 0 RTP/AVP 96\r\na=control:trackID=0\r\na=rtpmap:96 H264/90000\r\n\
              a=fmtp:96 packetization-mode=1; profile-level-id=64001F; sprop-parameter-sets=Z2QAH6zZQFAFuwEQAAADABAAAAMDKPGDGWA=,aOvjyyLA\r\n\
              m=audio 0 RTP/AVP 97\r\na=control:trackID=1\r\na=rtpmap:97 mpeg4-generic/44100/2\r\n\
              a=fmtp:97 config=1210; indexdeltalength=3; indexlength=3; mode=AAC-hbr; profile-level-id=1; sizelength=13; streamtype=5\r\n",
        setups: &["rtsp://127.0.0.1:8554/mystream/trackID=0", "rtsp://127.0.0.1:8554/mystream/trackID=1"],
    },
    Vector {
        name: "live555 with absolute controls",
        request: "rtsp://10.0.0.5:8554/test.264",
        content_base: Some("rtsp://10.0.0.5:8554/test.264/"),
        sdp: "v=0\r\no=- 1700000000123456 1 IN IP4 10.0.0.5\r\n\
              s=H.264 Video, streamed by the LIVE555 Media Server\r\ni=test.264\r\nt=0 0\r\n\
              a=tool:LIVE555 Streaming Media v2023.01.19\r\na=type:broadcast\r\n\
              a=control:rtsp://10.0.0.5:8554/test.264/\r\na=range:npt=0-\r\n\
              a=x-qt-text-nam:H.264 Video, streamed by the LIVE555 Media Server\r\n\
              m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:500\r\na=rtpmap:96 H264/90000\r\n\
              a=fmtp:96 packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==\r\n\
              a=control:rtsp://10.0.0.5:8554/test.264/track1\r\n",
        setups: &["rtsp://10.0.0.5:8554/test.264/track1"],
    },
    Vector {
        name: "Axis (absolute controls with a query, ONVIF metadata)",
        request: "rtsp://192.168.0.90/axis-media/media.amp?videocodec=h264&resolution=1280x720",
        content_base: Some("rtsp://192.168.0.90/axis-media/media.amp/"),
        sdp: "v=0\r\no=- 12317757425127315845 1 IN IP4 192.168.0.90\r\ns=Session streamed with GStreamer\r\n\
              i=rtsp-server\r\nt=0 0\r\na=tool:GStreamer\r\na=type:broadcast\r\na=range:npt=now-\r\n\
              a=control:rtsp://192.168.0.90/axis-media/media.amp?videocodec=h264&resolution=1280x720\r\n\
              m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:50000\r\na=rtpmap:96 H264/90000\r\n\
              a=fmtp:96 packetization-mode=1;profile-level-id=4d0029;sprop-parameter-sets=Z00AKeKQFAe2AtwEBAaQeJEV,aO48gA==\r\n\
              a=ts-refclk:local\r\na=mediaclk:sender\r\n\
              a=control:rtsp://192.168.0.90/axis-media/media.amp/stream=0?videocodec=h264&resolution=1280x720\r\n\
              a=framerate:30.000000\r\na=transform:1,0,0;0,1,0;0,0,1\r\n\
              m=application 0 RTP/AVP 98\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:98 vnd.onvif.metadata/90000\r\n\
              a=control:rtsp://192.168.0.90/axis-media/media.amp/stream=1?videocodec=h264&resolution=1280x720\r\n",
        setups: &[
            "rtsp://192.168.0.90/axis-media/media.amp/stream=0?videocodec=h264&resolution=1280x720",
            "rtsp://192.168.0.90/axis-media/media.amp/stream=1?videocodec=h264&resolution=1280x720",
        ],
    },
    Vector {
        name: "Hikvision (x.y.z.w origin, trailing spaces, vendor attributes)",
        request: "rtsp://192.168.1.64:554/Streaming/Channels/101",
        content_base: Some("rtsp://192.168.1.64:554/Streaming/Channels/101/"),
        sdp: "v=0\r\no=- 1109162014219182 1109162014219192 IN IP4 x.y.z.w\r\ns=Media Presentation\r\n\
              e=NONE\r\nb=AS:5050\r\nt=0 0\r\n\
              a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast\r\n\
              m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:5000\r\na=recvonly\r\na=x-dimensions:1920,1080\r\n\
              a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast\r\n\
              a=rtpmap:96 H264/90000\r\n\
              a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z01AKI2NQDwBE/LCAAAOEAACvyAI,aO44gA==\r\n\
              m=application 0 RTP/AVP 107\r\nc=IN IP4 0.0.0.0\r\nb=AS:50\r\na=recvonly\r\n\
              a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=4?transportmode=unicast\r\n\
              a=rtpmap:107 isapi.metadata/90000\r\n\
              a=Media_header:MEDIAINFO=494D4B48010300000400000100000000000000000000000000000000000000000000000000000000;\r\n\
              a=appversion:1.0 \r\n",
        setups: &[
            "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast",
            "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=4?transportmode=unicast",
        ],
    },
    Vector {
        name: "Dahua (query in Content-Base)",
        request: "rtsp://192.168.1.108:554/cam/realmonitor?channel=1&subtype=0",
        content_base: Some("rtsp://192.168.1.108:554/cam/realmonitor?channel=1&subtype=0/"),
        sdp: "v=0\r\no=- 2251938194 2251938194 IN IP4 0.0.0.0\r\ns=Media Server\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
              a=control:*\r\na=packetization-supported:DH\r\na=rtppayload-supported:DH\r\na=range:npt=now-\r\n\
              m=video 0 RTP/AVP 96\r\na=control:trackID=0\r\na=framerate:25.000000\r\na=rtpmap:96 H264/90000\r\n\
              a=fmtp:96 packetization-mode=1;profile-level-id=4D002A;sprop-parameter-sets=Z00AKpY1QPAET8s3AQEBQAABwgAAV+QB,aO4xsgA=\r\n\
              a=recvonly\r\nm=audio 0 RTP/AVP 8\r\na=control:trackID=1\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\n",
        setups: &[
            "rtsp://192.168.1.108:554/cam/realmonitor?channel=1&subtype=0/trackID=0",
            "rtsp://192.168.1.108:554/cam/realmonitor?channel=1&subtype=0/trackID=1",
        ],
    },
    Vector {
        name: "sloppy camera (LF only, no s= or t=, trailing whitespace, no Content-Base)",
        request: "rtsp://192.168.1.20/stream1",
        content_base: None,
        sdp: "v=0\no=- 0 0 IN IP4 192.168.1.20 \nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000 \n\
              a=control:track1\t\nm=audio 0 RTP/AVP 0\na=control: track2\n",
        setups: &["rtsp://192.168.1.20/stream1/track1", "rtsp://192.168.1.20/stream1/track2"],
    },
    Vector {
        name: "single media, no controls at all",
        request: "rtsp://h/only",
        content_base: None,
        sdp: "v=0\r\ns=-\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\n",
        setups: &["rtsp://h/only"],
    },
];

#[test]
fn vendor_vectors_parse_round_trip_and_resolve() {
    for v in VECTORS {
        let sdp = Sdp::parse(v.sdp.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(Sdp::parse_strict(v.sdp.as_bytes()).unwrap(), sdp, "{}", v.name);
        let crlf = v.sdp.replace("\r\n", "\n").replace('\n', "\r\n");
        assert_eq!(sdp.to_string(), crlf, "{}: round trip", v.name);
        let base = base_url(v.content_base, None, v.request);
        assert_eq!(sdp.media_urls(base), v.setups, "{}", v.name);
        for media in sdp.media() {
            let pt = media.media_line().payload_types().next().unwrap();
            if media.kind() == "video" && pt >= 96 {
                let rtpmap = media.rtpmap(pt).unwrap_or_else(|| panic!("{}: rtpmap", v.name));
                assert_eq!(rtpmap.clock_rate, 90000, "{}", v.name);
                if let Some(sets) = media.sprop_parameter_sets() {
                    let sets = sets.unwrap();
                    assert_eq!(sets[0][0] & 0x1f, 7, "{}: SPS", v.name);
                    assert_eq!(sets[1][0] & 0x1f, 8, "{}: PPS", v.name);
                }
            }
        }
    }
}

#[test]
fn vendor_details() {
    let hik = Sdp::parse(VECTORS[3].sdp.as_bytes()).unwrap();
    assert_eq!(hik.origin(), Some("- 1109162014219182 1109162014219192 IN IP4 x.y.z.w"));
    assert_eq!(hik.media()[1].attribute("appversion").and_then(|a| a.value), Some("1.0"));
    assert_eq!(hik.media_direction(&hik.media()[0]), Direction::RecvOnly);
    let axis = Sdp::parse(VECTORS[2].sdp.as_bytes()).unwrap();
    assert_eq!(axis.media()[0].framerate(), Some(30.0));
    assert_eq!(axis.media()[1].rtpmap(98).unwrap().encoding, "vnd.onvif.metadata");
    let live555 = Sdp::parse(VECTORS[1].sdp.as_bytes()).unwrap();
    assert_eq!(live555.range(), Some(Range::Npt { start: Some(Npt::Seconds(0.0)), end: None }));
    assert_eq!(live555.aggregate_url("rtsp://ignored/"), "rtsp://10.0.0.5:8554/test.264/");
    let dahua = Sdp::parse(VECTORS[4].sdp.as_bytes()).unwrap();
    assert_eq!(dahua.media()[1].rtpmap(8).unwrap().encoding, "PCMA");
    assert_eq!(dahua.media()[1].rtpmap(8).unwrap().channels, None);
}

#[test]
fn media_direction_overrides_session_direction() {
    let sdp = Sdp::parse(
        b"v=0\r\na=sendonly\r\nm=video 0 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\na=inactive\r\n",
    )
    .unwrap();
    assert_eq!(sdp.direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.media_direction(&sdp.media()[0]), Direction::SendOnly);
    assert_eq!(sdp.media_direction(&sdp.media()[1]), Direction::Inactive);
}

/// SDP arrives whole in a body, so "split at every byte" becomes: every prefix of every real
/// SDP parses or fails cleanly (never panics), and a prefix cut at a line end still parses.
#[test]
fn every_prefix_parses_or_errors_cleanly() {
    let mut bodies: Vec<Vec<u8>> =
        TRANSCRIPTS.iter().flat_map(|n| sdps(n)).map(|(body, _, _)| body).collect();
    bodies.extend(VECTORS.iter().map(|v| v.sdp.as_bytes().to_vec()));
    for body in &bodies {
        for end in 0..=body.len() {
            let prefix = &body[..end];
            let lenient = Sdp::parse(prefix);
            let strict = Sdp::parse_strict(prefix);
            if end >= 3 && prefix.ends_with(b"\n") {
                let sdp = lenient.unwrap();
                assert_eq!(
                    sdp.to_string().replace("\r\n", "\n"),
                    String::from_utf8_lossy(prefix).replace("\r\n", "\n")
                );
            }
            if let Ok(strict) = strict {
                assert_eq!(Sdp::parse(prefix).unwrap(), strict);
            }
        }
    }
}
