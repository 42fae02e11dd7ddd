//! A wrong "pass" is the worst bug a load tester can have: small RTSP servers on 127.0.0.1,
//! each misbehaving in one way (silent after PLAY, stalling mid-stream, answering with wrong
//! CSeqs, sending from a foreign port, never answering TEARDOWN, switching SSRC, sending one
//! track of two, sending a payload type the SDP did not give, sending video without
//! keyframes, sending no sender reports for its video), and the counts and exit code (99)
//! the generator must give against each. Every run is a few seconds but the last, which
//! must outlast the generator's sender report window.
// Tests may unwrap: a panic here is a failed test, not a crashed generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use manifold_load::{LoadArgs, Outcome, TransportChoice, UdpReceive};
use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::RtpBuilder;
use manifold_rtp::rtcp::{SenderInfo, Writer};
use manifold_rtp::{RtpTime, Ssrc};
use manifold_rtsp::codec::{write_interleaved, write_response};
use manifold_rtsp::header::{PortRange, Transport, TypedHeader};
use manifold_rtsp::{ChannelId, Method, Response, StatusCode};
use manifold_synth::{StreamConfig, SyntheticStream};

/// One glommio pool at a time in this process (locked memory is capped at 8 MiB).
static ONE_RUN: Mutex<()> = Mutex::new(());

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Answers everything, sends no media.
    Silent,
    /// Sends media for this long after PLAY, then nothing (the connection stays open).
    StallAfter(Duration),
    /// Answers PLAY with another CSeq than the request's.
    WrongCseq,
    /// Sends the stream from its announced port, and as much again from another port.
    ForeignPort,
    /// Sends media but never answers TEARDOWN.
    NoTeardownAnswer,
    /// Switches to a new SSRC (and sequence numbers far away) after this long.
    SwitchSsrcAfter(Duration),
    /// Describes video and audio, and sends nothing on this track (0 video, 1 audio).
    SilentTrack(usize),
    /// Sends its video with payload type 99 where the SDP says 96.
    WrongPayloadType,
    /// Sends video slices, never an IDR (the others send one a second).
    NoKeyframe,
    /// Describes video and audio, sends both, and RTCP sender reports for its audio only
    /// (the others send one a second for every track).
    NoVideoSenderReports,
}

impl Fault {
    /// Whether the presentation has an audio track beside the video.
    fn with_audio(self) -> bool {
        matches!(self, Fault::SilentTrack(_) | Fault::NoVideoSenderReports)
    }
}

/// The audio track's SDP section: AAC, 48 kHz.
const AUDIO_SECTION: &str = "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n\
    a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
    indexdeltalength=3;config=1190\r\na=control:stream=1\r\n";

/// The first sequence number of every session's stream, announced in RTP-Info.
const FIRST_SEQ: u16 = 1000;
/// Packets per second the server sends.
const RATE: u64 = 100;

/// Where one session's media goes.
#[derive(Clone)]
enum Sink {
    Udp(SocketAddr),
    Interleaved(Arc<Mutex<TcpStream>>, u8),
}

/// Sends track `track`'s stream until `stop`, misbehaving as `fault` says.
fn send_media(
    track: usize,
    sink: Sink,
    fault: Fault,
    stop: Arc<AtomicBool>,
    media: Arc<UdpSocket>,
) {
    let foreign = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let (mut ssrc, mut seq) = (Ssrc(0x1234_5678), FIRST_SEQ);
    let mut switched = false;
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = t0 + Duration::from_millis(n * 1000 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        match fault {
            Fault::Silent | Fault::WrongCseq => continue,
            Fault::SilentTrack(silent) if silent == track => continue,
            Fault::StallAfter(d) if t0.elapsed() >= d => continue,
            Fault::SwitchSsrcAfter(d) if !switched && t0.elapsed() >= d => {
                switched = true;
                ssrc = Ssrc(0x0bad_cafe);
                seq = seq.wrapping_add(20_000);
            }
            _ => {}
        }
        buf.clear();
        let ts = RtpTime((n * 90_000 / RATE) as u32);
        let (pt, payload): (u8, &[u8]) = match track {
            0 if fault == Fault::WrongPayloadType => (99, &[0x41, 1, 2, 3]),
            // An IDR slice a second.
            0 if n % RATE == 0 && fault != Fault::NoKeyframe => (96, &[0x65, 1, 2, 3]),
            0 => (96, &[0x41, 1, 2, 3]),
            // One AU header (16 bits: size 4, index 0), then the AU.
            _ => (97, &[0, 16, 0, 4 << 3, 1, 2, 3, 4]),
        };
        RtpBuilder::new(pt, seq, ts, Ssrc(ssrc.0 + track as u32))
            .payload(payload)
            .write_to_vec(&mut buf)
            .unwrap();
        seq = seq.wrapping_add(1);
        // A sender report a second, mapping this packet's time to the wall clock.
        let report = n % RATE == 0 && !(fault == Fault::NoVideoSenderReports && track == 0);
        let sr = report.then(|| sender_report(Ssrc(ssrc.0 + track as u32), ts));
        match &sink {
            Sink::Udp(to) => {
                let _ = media.send_to(&buf, to);
                if let Some(sr) = &sr {
                    let _ = media.send_to(sr, SocketAddr::new(to.ip(), to.port() + 1));
                }
                if fault == Fault::ForeignPort {
                    // Same source and sequence numbers far ahead: fed to the statistics,
                    // these would show as loss.
                    let mut fake = buf.clone();
                    fake[2..4].copy_from_slice(&seq.wrapping_add(500).to_be_bytes());
                    let _ = foreign.send_to(&fake, to);
                }
            }
            Sink::Interleaved(conn, channel) => {
                let mut frame = Vec::new();
                write_interleaved(ChannelId(*channel), &buf, &mut frame).unwrap();
                if let Some(sr) = &sr {
                    write_interleaved(ChannelId(*channel + 1), sr, &mut frame).unwrap();
                }
                if conn.lock().unwrap().write_all(&frame).is_err() {
                    break;
                }
            }
        }
    }
}

/// An RTCP sender report of `ssrc` saying that media time `ts` is now.
fn sender_report(ssrc: Ssrc, ts: RtpTime) -> Vec<u8> {
    let info = SenderInfo {
        ntp: NtpTime::from_system_time(SystemTime::now()),
        rtp: ts,
        packet_count: 0,
        octet_count: 0,
    };
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    w.sender_report(ssrc, &info, &[]).unwrap();
    w.written().to_vec()
}

/// Answers one connection: OPTIONS, DESCRIBE, SETUP (UDP announcing the port media comes
/// from, or interleaved), PLAY (with RTP-Info), TEARDOWN; sends media as `fault` says.
fn serve_connection(conn: TcpStream, sdp: String, fault: Fault) {
    let media = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
    let media_port = media.local_addr().unwrap().port();
    let writer = Arc::new(Mutex::new(conn.try_clone().unwrap()));
    let peer_ip = conn.peer_addr().unwrap().ip();
    let mut conn = conn;
    // One per track set up, in SETUP order (the SDP's).
    let mut sinks = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut requests = common::Requests::default();
    while let Some(req) = requests.next(&mut conn) {
        let mut cseq = req.cseq().unwrap_or(0);
        let mut resp = Response::new(StatusCode::OK);
        match req.method {
            Method::Options => resp.headers.append("Public", common::PUBLIC),
            Method::Describe => common::describe(&mut resp, &req, &sdp),
            Method::Setup => {
                let offer = Transport::from_headers(&req.headers).ok().flatten();
                match offer.and_then(|t| t.specs.into_iter().next()) {
                    Some(mut spec) => {
                        if let Some(p) = spec.client_port {
                            spec.server_port =
                                Some(PortRange { first: media_port, last: media_port + 1 });
                            sinks.push(Sink::Udp(SocketAddr::new(peer_ip, p.first)));
                        } else if let Some(ch) = spec.interleaved {
                            sinks.push(Sink::Interleaved(writer.clone(), ch.first.0));
                        }
                        Transport::single(spec).set_in(&mut resp.headers);
                        resp.headers.append("Session", "4711;timeout=60");
                    }
                    None => resp = Response::new(StatusCode::UNSUPPORTED_TRANSPORT),
                }
            }
            Method::Play => {
                resp.headers.append("Session", "4711");
                let info: Vec<String> = (0..sinks.len())
                    .map(|t| format!("url={}/stream={t};seq={FIRST_SEQ}", req.uri))
                    .collect();
                resp.headers.append("RTP-Info", info.join(","));
                if fault == Fault::WrongCseq {
                    cseq += 100;
                }
                for (track, sink) in sinks.iter().cloned().enumerate() {
                    let (stop, media) = (stop.clone(), media.clone());
                    std::thread::spawn(move || send_media(track, sink, fault, stop, media));
                }
            }
            Method::Teardown if fault == Fault::NoTeardownAnswer => continue,
            Method::Teardown => {
                stop.store(true, Ordering::Relaxed);
                resp.headers.append("Session", "4711");
            }
            _ => resp = Response::new(StatusCode::NOT_IMPLEMENTED),
        }
        resp.headers.set("CSeq", cseq.to_string());
        let mut out = Vec::new();
        write_response(&resp, &mut out);
        if writer.lock().unwrap().write_all(&out).is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
}

/// Starts a server with `fault`; returns its port.
fn start_server(fault: Fault) -> u16 {
    let s = SyntheticStream::new(StreamConfig::default()).unwrap();
    let mut media = s.sdp().media_section(0, Some("stream=0"));
    if fault.with_audio() {
        media.push_str(AUDIO_SECTION);
    }
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=misbehaving\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            let sdp = sdp.clone();
            std::thread::spawn(move || serve_connection(conn, sdp, fault));
        }
    });
    port
}

/// Runs 4 clients for 3 s against a server with `fault` (media timeout 1 s, response timeout
/// 1 s), with `thresholds`; asserts the run ended on time.
fn run(fault: Fault, transport: TransportChoice, thresholds: &[&str]) -> Outcome {
    run_reading(fault, transport, thresholds, UdpReceive::Batch)
}

fn run_reading(
    fault: Fault,
    transport: TransportChoice,
    thresholds: &[&str],
    receive: UdpReceive,
) -> Outcome {
    run_for(Duration::from_secs(3), fault, transport, thresholds, receive)
}

/// As [`run`], for `duration`.
fn run_for(
    duration: Duration,
    fault: Fault,
    transport: TransportChoice,
    thresholds: &[&str],
    receive: UdpReceive,
) -> Outcome {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let port = start_server(fault);
    let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/misbehaving"));
    args.clients = 4;
    args.transport = transport;
    args.duration = duration;
    args.ramp = Duration::from_millis(200);
    args.media_timeout = Duration::from_secs(1);
    args.response_timeout = Duration::from_secs(1);
    args.shards = Some(1);
    args.udp_receive = receive;
    args.quiet = true;
    args.thresholds = thresholds.iter().map(|t| (*t).to_owned()).collect();
    let started = Instant::now();
    let outcome = manifold_load::execute(&args).expect("the run completes");
    // The run's deadline: duration + response timeout + 1 s of grace, plus start-up.
    let took = started.elapsed();
    assert!(took < duration + Duration::from_secs(4), "the run took {took:?}");
    println!("{}", outcome.report.table());
    outcome
}

/// Every threshold a user would gate on: each must fail against a silent server.
const LOSS_AND_ERROR_THRESHOLDS: [&str; 5] =
    ["loss.ratio<0.001", "errors<1", "loss<1", "lost<1", "errors.no_media<1"];

#[test]
fn a_silent_server_fails_every_loss_and_error_threshold_over_udp_and_tcp() {
    for transport in [TransportChoice::Udp, TransportChoice::Tcp] {
        let outcome = run(Fault::Silent, transport, &LOSS_AND_ERROR_THRESHOLDS);
        let r = &outcome.report;
        assert_eq!(r.sessions.played, 4, "{transport}: {:?}", r.errors.samples);
        assert_eq!(r.sessions.ok, 0, "{transport}");
        assert_eq!(r.errors.by_kind.get("no_media"), Some(&4), "{transport}: {:?}", r.errors);
        assert_eq!(r.errors.total, 4);
        assert_eq!(r.media.packets, 0);
        assert_eq!(r.media.lost, 4, "{transport}: the packet RTP-Info announced, per session");
        assert_eq!(r.media.loss_ratio, 1.0);
        for v in &r.thresholds {
            assert!(v.judged && !v.passed, "{transport}: {v:?} must fail");
        }
        assert_eq!(outcome.exit_code(), 99);
    }
}

#[test]
fn media_that_stops_mid_run_is_stalled() {
    let outcome = run(
        Fault::StallAfter(Duration::from_millis(700)),
        TransportChoice::Mix(50.0),
        &["errors.stalled<1"],
    );
    let r = &outcome.report;
    assert_eq!(r.errors.by_kind.get("stalled"), Some(&4), "{:?}", r.errors);
    assert_eq!(r.errors.total, 4);
    assert!(r.media.packets >= 4 * 50, "packets {}", r.media.packets);
    assert_eq!(r.media.lost, 0, "nothing was sent after the stall, so nothing is known lost");
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn an_answer_with_another_cseq_is_a_protocol_error() {
    let outcome = run(Fault::WrongCseq, TransportChoice::Udp, &["errors.protocol<1"]);
    let r = &outcome.report;
    assert_eq!(r.errors.by_kind.get("protocol"), Some(&4), "{:?}", r.errors);
    assert!(r.errors.samples.iter().all(|s| s.contains("CSeq")), "{:?}", r.errors.samples);
    assert_eq!(r.sessions.played, 0, "the PLAY answer was never taken");
    assert!(!r.metrics.contains_key("rtt.play"), "no round trip for an unmatched answer");
    assert_eq!(r.metrics["rtt.setup"].count, 4);
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn datagrams_from_a_foreign_port_are_counted_and_kept_out_of_the_statistics() {
    for receive in [UdpReceive::Batch, UdpReceive::Ring] {
        foreign_port(receive);
    }
}

fn foreign_port(receive: UdpReceive) {
    let outcome = run_reading(Fault::ForeignPort, TransportChoice::Udp, &["foreign<1"], receive);
    let r = &outcome.report;
    assert_eq!(r.errors.total, 0, "{:?}", r.errors.samples);
    assert!(r.media.packets >= 4 * 200, "packets {}", r.media.packets);
    assert!(r.media.foreign >= 4 * 200, "foreign {}", r.media.foreign);
    // Within a packet or two of each other (the stream and its copy are sent together).
    assert!(r.media.foreign.abs_diff(r.media.packets) <= 8, "{:?}", r.media);
    assert_eq!((r.media.lost, r.media.duplicates, r.media.ssrc_changes), (0, 0, 0));
    assert!(r.thresholds.iter().all(|v| !v.passed));
    assert_eq!(outcome.exit_code(), 99);
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["media"]["foreign"], r.media.foreign);
    assert!(r.table().contains(&format!("foreign {}", r.media.foreign)));
}

#[test]
fn a_server_that_never_answers_teardown_leaves_stuck_sessions_and_the_run_ends_on_time() {
    // `run` asserts the run ended within its deadline.
    let outcome = run(Fault::NoTeardownAnswer, TransportChoice::Mix(50.0), &["errors.stuck<1"]);
    let r = &outcome.report;
    assert_eq!(r.errors.by_kind.get("stuck"), Some(&4), "{:?}", r.errors);
    assert_eq!(r.sessions.played, 4);
    assert!(r.media.packets >= 4 * 200, "packets {}", r.media.packets);
    assert_eq!(r.media.lost, 0, "their media was counted all the same");
    assert!(!r.metrics.contains_key("rtt.teardown"));
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn an_ssrc_switch_is_reported_and_not_taken_for_loss() {
    let outcome = run(
        Fault::SwitchSsrcAfter(Duration::from_millis(1200)),
        TransportChoice::Mix(50.0),
        &["ssrc_changes<1", "loss<1"],
    );
    let r = &outcome.report;
    assert_eq!(r.errors.total, 0, "{:?}", r.errors.samples);
    assert_eq!(r.media.ssrc_changes, 4);
    assert_eq!(r.media.lost, 0, "no burst of false loss at the switch");
    assert_eq!(r.media.duplicates + r.media.reordered, 0);
    assert!(r.media.packets >= 4 * 200, "packets {}", r.media.packets);
    assert_eq!(r.metrics["jitter"].count, 8, "one jitter per source per session");
    assert_eq!(r.metrics["first_keyframe"].count, 4);
    assert_eq!(r.sessions.no_keyframe, 0);
    let passed: Vec<bool> = r.thresholds.iter().map(|v| v.passed).collect();
    assert_eq!(passed, [false, true], "the switch shows; loss does not");
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn a_track_without_media_fails_its_session_though_the_other_track_flows() {
    // Video silent while audio flows, and the other way round: a player would show a black
    // picture, or play no sound.
    for (silent, kind) in [(0, "video"), (1, "audio")] {
        let outcome = run(
            Fault::SilentTrack(silent),
            TransportChoice::Mix(50.0),
            &["errors.no_media<1", "loss.ratio<0.001"],
        );
        let r = &outcome.report;
        assert_eq!(r.config.tracks, 2);
        assert_eq!(r.sessions.played, 4, "{kind}: {:?}", r.errors.samples);
        assert_eq!(r.errors.by_kind.get("no_media"), Some(&4), "{kind}: {:?}", r.errors);
        assert_eq!(r.errors.total, 4);
        let said = format!("no media on track {silent} ({kind}) within 1.0s");
        assert!(r.errors.samples.iter().all(|s| s.contains(&said)), "{:?}", r.errors.samples);
        assert!(r.media.packets >= 4 * 50, "the other track's packets {}", r.media.packets);
        assert!(r.media.lost >= 4, "{kind}: the silent track's announced packet, per session");
        assert!(r.thresholds.iter().all(|v| v.judged && !v.passed), "{:?}", r.thresholds);
        assert_eq!(outcome.exit_code(), 99);
    }
}

#[test]
fn packets_of_a_payload_type_the_sdp_did_not_give_are_not_media() {
    // ffmpeg, live555 and GStreamer drop them: their viewers would see nothing.
    let outcome =
        run(Fault::WrongPayloadType, TransportChoice::Mix(50.0), &["wrong_payload_type<1"]);
    let r = &outcome.report;
    assert_eq!(r.errors.by_kind.get("no_media"), Some(&4), "{:?}", r.errors);
    assert_eq!(r.media.packets, 0);
    assert!(r.media.wrong_payload_type >= 4 * 50, "{:?}", r.media);
    assert!(r.table().contains(&format!("wrong payload type {}", r.media.wrong_payload_type)));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["media"]["wrong_payload_type"], r.media.wrong_payload_type);
    assert!(r.thresholds.iter().all(|v| v.judged && !v.passed), "{:?}", r.thresholds);
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn video_without_a_keyframe_is_counted_and_can_fail_a_threshold() {
    // No player could show a picture; the sessions themselves are not errors (intra refresh
    // has no keyframes), and `first_keyframe` alone cannot say what it lacks.
    let outcome = run(Fault::NoKeyframe, TransportChoice::Mix(50.0), &["sessions.no_keyframe<1"]);
    let r = &outcome.report;
    assert_eq!(r.errors.total, 0, "{:?}", r.errors.samples);
    assert_eq!(r.sessions.ok, 4);
    assert_eq!(r.sessions.no_keyframe, 4);
    assert!(r.media.packets >= 4 * 200, "packets {}", r.media.packets);
    assert!(!r.metrics.contains_key("first_keyframe"));
    assert!(r.table().contains(", 4 received video without a keyframe;"), "{}", r.table());
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["sessions"]["no_keyframe"], 4);
    assert!(!r.thresholds[0].passed);
    assert_eq!(outcome.exit_code(), 99);
}

#[test]
fn video_without_sender_reports_is_counted_and_can_fail_a_threshold() {
    // Players cannot place the video on the wall clock, so cannot line it up with the audio.
    // The window is 15 s of media: the sessions play for about 16.
    let outcome = run_for(
        Duration::from_secs(17),
        Fault::NoVideoSenderReports,
        TransportChoice::Mix(50.0),
        &["sessions.no_sender_report<1"],
        UdpReceive::Batch,
    );
    let r = &outcome.report;
    assert_eq!(r.errors.total, 0, "{:?}", r.errors.samples);
    assert_eq!(r.sessions.ok, 4);
    assert_eq!(r.sessions.no_sender_report, 4, "{}", r.table());
    // The audio's, one a second, over UDP and interleaved alike.
    assert!(r.media.sender_reports >= 4 * 14, "{:?}", r.media);
    assert!(r.table().contains(&format!("sender reports {}", r.media.sender_reports)));
    assert!(r.table().contains(", 4 received media 15 s or longer without a sender report;"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["sessions"]["no_sender_report"], 4);
    assert_eq!(json["media"]["sender_reports"], r.media.sender_reports);
    assert!(!r.thresholds[0].passed);
    assert_eq!(outcome.exit_code(), 99);
}
