//! Replays the recorded ffmpeg publish (`testdata/rtmp/`) through the chunk decoder and the
//! publisher session: split at every byte, and checked against the FLV it carried.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{length_prefixed, AacDepacketizer, H264Depacketizer};
use manifold_rtmp::chunk::{self, Decoder};
use manifold_rtmp::command::Command;
use manifold_rtmp::handshake;
use manifold_rtmp::message::type_id;
use manifold_rtmp::message::Message;
use manifold_rtmp::{CloseReason, Config, Event, PublisherSession};
use manifold_testdata::{transcript, transcript_stream, Direction, RTMP_TRANSCRIPTS};

const CAPTURE: &str = "rtmp/ffmpeg-publish-h264-aac.txt";
/// C0 + C1 + C2.
const CLIENT_HANDSHAKE: usize = 1 + 2 * handshake::PACKET_SIZE;
/// S0 + S1 + S2.
const SERVER_HANDSHAKE: usize = 1 + 2 * handshake::PACKET_SIZE;

/// Decodes chunks, the bytes arriving in two parts split at `split`.
fn decode(bytes: &[u8], split: usize) -> Result<Vec<Message>, chunk::ChunkError> {
    let mut decoder = Decoder::new(chunk::Limits::default());
    let mut out = Vec::new();
    let mut start = 0;
    for fed in [split, bytes.len()] {
        while let Some((m, used)) = decoder.feed(&bytes[start..fed])? {
            out.extend(m);
            start += used;
        }
    }
    assert_eq!(start, bytes.len(), "stream ends on a chunk boundary");
    Ok(out)
}

#[test]
fn chunk_decoder_gives_the_same_messages_at_every_split_point() {
    for name in RTMP_TRANSCRIPTS {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            let stream = transcript_stream(name, direction);
            let chunks = &stream[CLIENT_HANDSHAKE.max(SERVER_HANDSHAKE)..];
            let whole = decode(chunks, chunks.len()).unwrap();
            assert!(whole.len() > 5, "{name} {direction:?}");
            for split in 0..chunks.len() {
                assert_eq!(decode(chunks, split).unwrap(), whole, "{name} split at {split}");
            }
        }
    }
}

#[test]
fn ffmpeg_sends_the_commands_a_publisher_sends() {
    let stream = transcript_stream(CAPTURE, Direction::ClientToServer);
    let messages = decode(&stream[CLIENT_HANDSHAKE..], 0).unwrap();
    let names: Vec<String> = messages
        .iter()
        .filter(|m| m.type_id == type_id::COMMAND_AMF0)
        .map(|m| Command::parse(m.type_id, &m.payload).unwrap().name)
        .collect();
    assert_eq!(
        names,
        [
            "connect",
            "releaseStream",
            "FCPublish",
            "createStream",
            "_checkbw",
            "publish",
            "FCUnpublish",
            "deleteStream"
        ]
    );
    // ffmpeg's C1 is the digest form.
    let c1 = &stream[1..1 + handshake::PACKET_SIZE];
    let (answer, form) = handshake::respond(&stream[..1537].try_into().unwrap(), 0, 9).unwrap();
    assert_eq!(form, handshake::Form::Digest { base: 8 });
    let (s1, s2) = answer[1..].split_at(handshake::PACKET_SIZE);
    assert!(handshake::verify_server(c1, s1, s2));
}

/// Runs a session over the client's bytes, split in two at `split`, accepting the publish.
/// Returns the events and the bytes the session sent.
fn run_session(client: &[u8], split: usize) -> (Vec<Event>, Vec<u8>) {
    let now = Instant::now();
    let mut session = PublisherSession::new(now, Config::default());
    let mut events = Vec::new();
    let mut sent = Vec::new();
    for part in [&client[..split], &client[split..]] {
        session.handle_input(now, part);
        loop {
            if let Some(bytes) = session.poll_transmit() {
                sent.extend_from_slice(&bytes);
            }
            let Some(event) = session.poll_event() else { break };
            if matches!(event, Event::PublishRequested(_)) {
                assert!(session.accept_publish(now));
            }
            events.push(event);
        }
    }
    if let Some(bytes) = session.poll_transmit() {
        sent.extend_from_slice(&bytes);
    }
    (events, sent)
}

#[test]
fn session_gives_the_same_events_at_every_split_point() {
    let client = transcript_stream(CAPTURE, Direction::ClientToServer);
    let (whole, sent) = run_session(&client, client.len());
    // Every split through the handshake, the commands and the first media, where the
    // session changes state; then every 61st byte through the rest of the media (each run
    // maps the whole capture to RTP; the chunk decoder's test covers every byte of it).
    let dense = client.len().min(CLIENT_HANDSHAKE + 1024);
    for split in (0..dense).chain((dense..client.len()).step_by(61)) {
        let (events, bytes) = run_session(&client, split);
        assert!(events == whole, "events differ when split at {split}");
        assert!(bytes == sent, "transmitted bytes differ when split at {split}");
    }
}

#[test]
fn session_answers_like_a_server_ffmpeg_accepts() {
    let client = transcript_stream(CAPTURE, Direction::ClientToServer);
    let (events, sent) = run_session(&client, client.len());
    let Some(Event::PublishRequested(request)) = events.first() else {
        panic!("{:?}", events.first())
    };
    assert_eq!(request.path(), "/live/cam");
    assert_eq!(request.query.as_deref(), Some("user=u&pass=p"));
    assert_eq!(request.query_param("pass"), Some("p"));
    assert_eq!(request.publish_type, "live");
    assert_eq!(request.tc_url.as_deref(), Some("rtmp://127.0.0.1:19351/live"));
    assert!(matches!(events.last(), Some(Event::Closed(CloseReason::Unpublished))));

    // The answer: a digest handshake ffmpeg's player-side check accepts, then commands.
    let (s1, s2) = sent[1..SERVER_HANDSHAKE].split_at(handshake::PACKET_SIZE);
    assert!(handshake::verify_server(&client[1..1 + handshake::PACKET_SIZE], s1, s2));
    let answers = decode(&sent[SERVER_HANDSHAKE..], 0).unwrap();
    let kinds: Vec<u8> = answers.iter().map(|m| m.type_id).collect();
    assert_eq!(
        kinds[..3],
        [type_id::WINDOW_ACK_SIZE, type_id::SET_PEER_BANDWIDTH, type_id::SET_CHUNK_SIZE]
    );
    let commands: Vec<Command> = answers
        .iter()
        .filter(|m| m.type_id == type_id::COMMAND_AMF0)
        .map(|m| Command::parse(m.type_id, &m.payload).unwrap())
        .collect();
    let code = |c: &Command| {
        c.args.first().and_then(|a| a.property("code")).and_then(|v| v.as_str().map(str::to_owned))
    };
    assert_eq!(commands[0].name, "_result");
    assert_eq!(code(&commands[0]).as_deref(), Some("NetConnection.Connect.Success"));
    // releaseStream (2), FCPublish (3), createStream (4) answered by transaction.
    let txns: Vec<f64> = commands[1..4].iter().map(|c| c.transaction).collect();
    assert_eq!(txns, [2.0, 3.0, 4.0]);
    assert_eq!(commands[3].args[0].as_number(), Some(1.0));
    let status = commands.iter().find(|c| c.name == "onStatus").unwrap();
    assert_eq!(code(status).as_deref(), Some("NetStream.Publish.Start"));
    // The real server's answers in the capture have the same shape (ffmpeg went on with them).
    let real = transcript_stream(CAPTURE, Direction::ServerToClient);
    let real = decode(&real[SERVER_HANDSHAKE..], 0).unwrap();
    let real_status = real
        .iter()
        .filter(|m| m.type_id == type_id::COMMAND_AMF0)
        .map(|m| Command::parse(m.type_id, &m.payload).unwrap())
        .find(|c| c.name == "onStatus")
        .unwrap();
    assert_eq!(code(&real_status), code(status));
}

/// The FLV media in the capture, read independently of the session.
struct Flv {
    sps_pps: Vec<Vec<u8>>,
    /// (dts, cts, keyframe, NAL units).
    video: Vec<(u32, i32, bool, Vec<Vec<u8>>)>,
    asc: Vec<u8>,
    /// (dts, AU).
    audio: Vec<(u32, Vec<u8>)>,
}

fn flv_of_capture() -> Flv {
    let client = transcript_stream(CAPTURE, Direction::ClientToServer);
    let messages = decode(&client[CLIENT_HANDSHAKE..], 0).unwrap();
    let mut flv =
        Flv { sps_pps: Vec::new(), video: Vec::new(), asc: Vec::new(), audio: Vec::new() };
    for m in messages {
        let p = &m.payload;
        match (m.type_id, p.get(1)) {
            (type_id::VIDEO, Some(0)) => {
                // AVCDecoderConfigurationRecord with one SPS and one PPS (libx264).
                let r = &p[5..];
                assert_eq!(r[5] & 0x1f, 1);
                let sps_len = usize::from(u16::from_be_bytes([r[6], r[7]]));
                let sps = r[8..8 + sps_len].to_vec();
                let at = 8 + sps_len;
                assert_eq!(r[at], 1);
                let pps_len = usize::from(u16::from_be_bytes([r[at + 1], r[at + 2]]));
                flv.sps_pps = vec![sps, r[at + 3..at + 3 + pps_len].to_vec()];
            }
            (type_id::VIDEO, Some(1)) => {
                let cts = i32::from_be_bytes([p[2], p[3], p[4], 0]) >> 8;
                flv.video.push((m.timestamp, cts, p[0] >> 4 == 1, length_prefixed(&p[5..])));
            }
            (type_id::AUDIO, Some(0)) => flv.asc = p[2..].to_vec(),
            (type_id::AUDIO, Some(1)) => flv.audio.push((m.timestamp, p[2..].to_vec())),
            _ => {}
        }
    }
    flv
}

#[test]
fn rtp_depacketizes_to_the_published_nal_units_and_aac_frames() {
    let flv = flv_of_capture();
    assert_eq!(flv.video.len(), 30);
    assert!(flv.audio.len() > 80);
    let client = transcript_stream(CAPTURE, Direction::ClientToServer);
    let (events, _) = run_session(&client, client.len());

    let sdps: Vec<&manifold_sdp::Sdp> = events
        .iter()
        .filter_map(|e| if let Event::Tracks(s) = e { Some(s) } else { None })
        .collect();
    assert_eq!(sdps.len(), 1, "one description: both sequence headers came before media");
    let sdp = sdps[0];
    let video = &sdp.media()[0];
    assert_eq!(video.rtpmap(96).unwrap().encoding, "H264");
    assert_eq!(video.sprop_parameter_sets().unwrap().unwrap(), flv.sps_pps);
    let fmtp = video.fmtp("96").unwrap();
    let sps = &flv.sps_pps[0];
    assert_eq!(
        fmtp.param("profile-level-id").unwrap(),
        format!("{:02X}{:02X}{:02X}", sps[1], sps[2], sps[3])
    );
    assert_eq!(fmtp.param("packetization-mode"), Some("1"));
    let audio = &sdp.media()[1];
    let rtpmap = audio.rtpmap(97).unwrap();
    assert!(rtpmap.encoding_is("mpeg4-generic"));
    assert_eq!((rtpmap.clock_rate, rtpmap.channels), (44100, Some(1)));
    let afmtp = audio.fmtp("97").unwrap();
    let hex: String = flv.asc.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(afmtp.param("config"), Some(hex.as_str()));
    assert_eq!(afmtp.param("mode"), Some("AAC-hbr"));
    assert_eq!(afmtp.param("sizelength"), Some("13"));
    assert_eq!(video.control(), Some("trackID=0"));
    assert_eq!(audio.control(), Some("trackID=1"));

    let mut h264 = H264Depacketizer::default();
    let mut aac = AacDepacketizer::default();
    let mut keyframe_starts = 0;
    for e in &events {
        let Event::Packet(p) = e else { continue };
        assert!(p.packet.len() <= Config::default().max_packet_size);
        if p.starts_keyframe {
            keyframe_starts += 1;
            assert_eq!(p.track, 0);
            // The relay's own keyframe test agrees.
            let payload = manifold_rtp::packet::RtpPacket::parse(&p.packet).unwrap().payload();
            assert!(manifold_rtp::codec::Codec::H264.starts_keyframe(payload).unwrap());
        }
        match p.track {
            0 => h264.push(&p.packet),
            1 => aac.push(&p.packet),
            other => panic!("track {other}"),
        }
    }
    assert_eq!(keyframe_starts, flv.video.iter().filter(|v| v.2).count());
    assert_eq!(keyframe_starts, 2);

    // Video: the same NAL units per access unit, parameter sets in front of keyframes.
    assert_eq!(h264.access_units.len(), flv.video.len());
    let (ts0, first) = (h264.access_units[0].0, &flv.video[0]);
    for ((ts, nals), (dts, cts, key, flv_nals)) in h264.access_units.iter().zip(&flv.video) {
        let mut expected = if *key { flv.sps_pps.clone() } else { Vec::new() };
        expected.extend(flv_nals.iter().cloned());
        assert_eq!(nals, &expected, "access unit at {dts} ms");
        let ms = i64::from(*dts) + i64::from(*cts) - (i64::from(first.0) + i64::from(first.1));
        assert_eq!(ts.wrapping_sub(ts0), (ms * 90) as u32, "RTP time at {dts} ms");
    }

    // Audio: the same AUs, at 44.1 kHz, exactly 1024 samples apart (RTMP's millisecond
    // stamps are within a millisecond of that).
    assert_eq!(aac.frames.len(), flv.audio.len());
    let (ats0, ams0) = (aac.frames[0].0, i64::from(flv.audio[0].0));
    for (i, ((ts, au), (dts, flv_au))) in aac.frames.iter().zip(&flv.audio).enumerate() {
        assert_eq!(au, flv_au);
        assert_eq!(ts.wrapping_sub(ats0), 1024 * i as u32);
        let from_ms = (i64::from(*dts) - ams0) * 44100 / 1000;
        assert!((from_ms - 1024 * i as i64).abs() <= 45, "frame {i} at {dts} ms");
    }
}

#[test]
fn garbage_after_the_handshake_closes_with_a_typed_error() {
    let client = transcript_stream(CAPTURE, Direction::ClientToServer);
    let now = Instant::now();
    let mut session = PublisherSession::new(now, Config::default());
    session.handle_input(now, &client[..CLIENT_HANDSHAKE]);
    // A chunk announcing a 16 MiB message.
    session.handle_input(now, &[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0]);
    let closed = std::iter::from_fn(|| session.poll_event()).last();
    let Some(Event::Closed(CloseReason::Error(e))) = closed else { panic!("{closed:?}") };
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    assert!(session.is_closed());
}

#[test]
fn a_silent_publisher_times_out() {
    let now = Instant::now();
    let mut session = PublisherSession::new(now, Config::default());
    let deadline = session.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    session.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!session.is_closed());
    session.handle_timeout(deadline);
    assert_eq!(session.poll_event(), Some(Event::Closed(CloseReason::TimedOut)));
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn a_rejected_publish_gets_an_error_status_and_closes() {
    let segments = transcript(CAPTURE);
    let now = Instant::now();
    let mut session = PublisherSession::new(now, Config::default());
    for seg in segments.iter().filter(|s| s.direction == Direction::ClientToServer) {
        session.handle_input(now, &seg.bytes);
        if let Some(Event::PublishRequested(_)) = session.poll_event() {
            break;
        }
    }
    let before = session.poll_transmit().unwrap_or_default();
    assert!(session.reject_publish(manifold_rtmp::Rejection::Denied));
    assert!(!session.accept_publish(now));
    let sent = session.poll_transmit().unwrap();
    // Decode the answer with a decoder that has seen the earlier answers (chunk size 4096).
    let mut all = before;
    all.extend_from_slice(&sent);
    let answers = decode(&all[SERVER_HANDSHAKE..], 0).unwrap();
    let last = Command::parse(type_id::COMMAND_AMF0, &answers.last().unwrap().payload).unwrap();
    assert_eq!(last.name, "onStatus");
    let info = &last.args[0];
    assert_eq!(info.property("level").and_then(|v| v.as_str()), Some("error"));
    assert_eq!(info.property("code").and_then(|v| v.as_str()), Some("NetStream.Publish.Denied"));
    assert_eq!(
        session.poll_event(),
        Some(Event::Closed(CloseReason::Rejected(manifold_rtmp::Rejection::Denied)))
    );
}
