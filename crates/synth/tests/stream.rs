//! The synthetic stream end to end, on virtual time: packets back to NAL units and frames,
//! continuity across the loop, pacing, stamps, bitrate, and (when ffmpeg is installed) a real
//! decode of the depacketized stream.

// Helpers outside `#[test]` functions unwrap too; in tests a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use manifold_rtp::packet::RtpPacket;
use manifold_rtp::{RtpTime, SeqNo, Ssrc};
use manifold_synth::{
    Clip, ExtensionIds, NtpTime, PacketInfo, Stamps, StreamConfig, SynthError, SyntheticStream,
    FU_A, STAP_A,
};
use proptest::prelude::*;

/// Where the caller's monotonic clock stands when the stream starts.
const T0: Duration = Duration::from_secs(1000);

/// One written packet and what the stream said about it.
struct Sent {
    bytes: Vec<u8>,
    info: PacketInfo,
    /// `now` passed to the poll that returned it.
    now: Duration,
}

/// Runs `stream` on virtual time, polling exactly when frames are due, until `frames` whole
/// frames have been sent. Capture time is `now` mapped onto NTP (an arbitrary fixed epoch).
fn run(stream: &mut SyntheticStream, frames: u64) -> Vec<Sent> {
    let mut sent = Vec::new();
    let mut buf = Vec::new();
    let mut done = 0;
    let mut now = T0;
    while done < frames {
        let mut polled = false;
        while let Some(info) = stream.poll_packet(now, capture_at(now), &mut buf) {
            polled = true;
            sent.push(Sent { bytes: buf.clone(), info, now });
            if info.marker {
                done += 1;
                if done == frames {
                    break;
                }
            }
        }
        assert!(polled || done == 0 || stream.next_frame_due() > now, "stalled at {now:?}");
        now = stream.next_frame_due().max(T0);
    }
    sent
}

fn capture_at(now: Duration) -> NtpTime {
    NtpTime::from_unix(Duration::from_secs(1_700_000_000) + now)
}

/// Test-side RFC 6184 depacketizer: single NAL units, STAP-A, FU-A.
#[derive(Default)]
struct Depacketizer {
    fragment: Option<Vec<u8>>,
}

impl Depacketizer {
    fn push(&mut self, payload: &[u8], out: &mut Vec<Vec<u8>>) {
        match payload[0] & 0x1f {
            STAP_A => {
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                    out.push(rest[2..2 + len].to_vec());
                    rest = &rest[2 + len..];
                }
            }
            FU_A => {
                let fu = payload[1];
                if fu & 0x80 != 0 {
                    assert!(self.fragment.is_none(), "FU-A start inside a fragment");
                    self.fragment = Some(vec![(payload[0] & 0xe0) | (fu & 0x1f)]);
                }
                let buf = self.fragment.as_mut().expect("FU-A continuation without a start");
                buf.extend_from_slice(&payload[2..]);
                if fu & 0x40 != 0 {
                    out.push(self.fragment.take().unwrap());
                }
            }
            1..=23 => {
                assert!(self.fragment.is_none(), "single NAL unit inside a fragment");
                out.push(payload.to_vec());
            }
            other => panic!("unexpected NAL unit type {other}"),
        }
    }
}

/// Depacketizes whole frames: one `Vec` of NAL units per marker-terminated frame.
fn frames_of(sent: &[Sent]) -> Vec<Vec<Vec<u8>>> {
    let mut depay = Depacketizer::default();
    let mut frames = Vec::new();
    let mut current = Vec::new();
    for s in sent {
        let packet = RtpPacket::parse(&s.bytes).unwrap();
        depay.push(packet.payload(), &mut current);
        if packet.marker() {
            assert!(depay.fragment.is_none(), "frame ended inside a fragment");
            frames.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "trailing packets without a marker");
    frames
}

fn is_filler(nal: &[u8]) -> bool {
    nal[0] & 0x1f == 12
}

/// Checks every structural property of a run: packet size, header fields, continuity of
/// sequence numbers, counters and timestamps (across loops), markers, keyframes, and that the
/// frames depacketize to the clip's NAL units (plus only well-formed filler).
fn check_run(stream: &SyntheticStream, sent: &[Sent], frames: u64) {
    let config = stream.config().clone();
    let clip = stream.clip();
    let step = 90_000 / config.fps;
    let initial_seq = SeqNo(u64::from(config.initial_seq));
    for (i, s) in sent.iter().enumerate() {
        let packet = RtpPacket::parse(&s.bytes).unwrap();
        assert!(s.bytes.len() <= config.mtu, "packet {i} is {} bytes", s.bytes.len());
        assert_eq!(s.info.len, s.bytes.len());
        assert_eq!(packet.payload_type(), config.payload_type);
        assert_eq!(packet.ssrc(), config.ssrc);
        assert_eq!(packet.marker(), s.info.marker);
        assert_eq!(packet.timestamp(), s.info.rtp_time);
        // Sequence numbers: wire value wraps, the extended one counts on.
        assert_eq!(s.info.seq, SeqNo(initial_seq.0 + i as u64));
        assert_eq!(packet.sequence(), config.initial_seq.wrapping_add(i as u16));
        assert_eq!(s.info.counter, stream.config().initial_counter + i as u64);
        // RTP time: `step` per frame from the initial value, wrapping, never going back.
        let expected = RtpTime(
            config.initial_rtp_time.0.wrapping_add((s.info.frame as u32).wrapping_mul(step)),
        );
        assert_eq!(packet.timestamp(), expected, "packet {i} of frame {}", s.info.frame);
        if let Some(next) = sent.get(i + 1) {
            let delta = next.info.rtp_time.since(s.info.rtp_time);
            if s.info.marker {
                assert_eq!(delta, step as i32, "marker must end a frame (packet {i})");
                assert_eq!(next.info.frame, s.info.frame + 1);
            } else {
                assert_eq!(delta, 0, "no marker inside a frame (packet {i})");
            }
        }
        let stamps = Stamps::from_packet(&packet, config.extension_ids);
        assert_eq!(stamps.capture_time, Some(capture_at(s.now)));
        assert_eq!(stamps.counter, Some(stream.config().initial_counter + i as u64));
    }
    let frames_back = frames_of(sent);
    assert_eq!(frames_back.len() as u64, frames);
    for (n, nals) in frames_back.iter().enumerate() {
        let index = n % clip.frame_count();
        let picture: Vec<&[u8]> =
            nals.iter().filter(|nal| !is_filler(nal)).map(Vec::as_slice).collect();
        assert_eq!(picture, clip.frame_nals(index).collect::<Vec<_>>(), "frame {n}");
        assert_eq!(picture, stream.frame_nals(n as u64).collect::<Vec<_>>(), "frame {n}");
        for filler in nals.iter().filter(|nal| is_filler(nal)) {
            assert_eq!(filler[0], 0x0c);
            assert_eq!(*filler.last().unwrap(), 0x80);
            assert!(filler[1..filler.len() - 1].iter().all(|&b| b == 0xff));
        }
        // Filler only after the picture.
        let first_filler = nals.iter().position(|nal| is_filler(nal)).unwrap_or(nals.len());
        assert!(nals[first_filler..].iter().all(|nal| is_filler(nal)));
        let keyframe = sent.iter().find(|s| s.info.frame == n as u64).unwrap().info.keyframe;
        assert_eq!(keyframe, clip.is_keyframe(index), "frame {n}");
        assert_eq!(keyframe, n % 25 == 0);
    }
}

#[test]
fn loops_the_clip_with_continuous_numbering() {
    let mut stream = SyntheticStream::new(StreamConfig::default()).unwrap();
    assert_eq!(stream.clip().frame_count(), 100);
    let sent = run(&mut stream, 250);
    check_run(&stream, &sent, 250);
    // The loop boundary: frame 99 then frame 100 (the clip's frame 0, an IDR).
    let last_of_99 = sent.iter().rposition(|s| s.info.frame == 99).unwrap();
    assert!(sent[last_of_99].info.marker);
    assert_eq!(sent[last_of_99 + 1].info.rtp_time, RtpTime(100 * 3600));
    assert!(sent[last_of_99 + 1].info.keyframe);
    // The IDR is larger than one packet, so FU-A is used; the P frames fit in one packet.
    let first_frame = sent.iter().filter(|s| s.info.frame == 0).count();
    assert!(first_frame > 3, "SPS, PPS and a fragmented IDR");
    assert!(sent.iter().all(|s| s.bytes.len() <= 1200));
    assert_eq!(stream.packets_sent(), sent.len() as u64);
}

#[test]
fn stap_a_small_mtu_filler_and_odd_fps() {
    let config = StreamConfig {
        fps: 30,
        mtu: 500,
        target_bitrate: Some(3_000_000),
        aggregate_parameter_sets: true,
        ssrc: Ssrc(7),
        payload_type: 100,
        extension_ids: ExtensionIds { capture_time: 9, counter: 3 },
        initial_seq: 65_500,
        initial_rtp_time: RtpTime(u32::MAX - 50_000),
        initial_counter: 7 << 30,
        gop: None,
    };
    let mut stream = SyntheticStream::new(config).unwrap();
    let sent = run(&mut stream, 130);
    check_run(&stream, &sent, 130);
    // SPS+PPS travel in one STAP-A at the start of each IDR frame.
    let first = RtpPacket::parse(&sent[0].bytes).unwrap();
    assert_eq!(first.payload()[0] & 0x1f, STAP_A);
    assert!(sent.iter().any(|s| s.info.filler));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sequence_and_timestamp_wrap(
        initial_seq in prop_oneof![65_000u16.., any::<u16>()],
        initial_rtp_time in prop_oneof![(u32::MAX - 400_000).., any::<u32>()],
        fps in prop_oneof![Just(25u32), Just(30), Just(60), 1u32..=120],
    ) {
        let config = StreamConfig {
            initial_seq,
            initial_rtp_time: RtpTime(initial_rtp_time),
            fps,
            target_bitrate: Some(1_000_000),
            ..StreamConfig::default()
        };
        let mut stream = SyntheticStream::new(config).unwrap();
        let sent = run(&mut stream, 110);
        let mut previous: Option<&Sent> = None;
        for s in &sent {
            let packet = RtpPacket::parse(&s.bytes).unwrap();
            if let Some(p) = previous {
                let p_packet = RtpPacket::parse(&p.bytes).unwrap();
                prop_assert_eq!(packet.sequence(), p_packet.sequence().wrapping_add(1));
                prop_assert_eq!(s.info.seq.0, p.info.seq.0 + 1);
                prop_assert_eq!(p.info.seq.extend(packet.sequence()), s.info.seq);
                let delta = packet.timestamp().since(p_packet.timestamp());
                prop_assert!(delta >= 0, "timestamp went back");
            }
            // Frame n's timestamp is exactly n * 90000 / fps after the first.
            let ticks = (u128::from(s.info.frame) * 90_000 / u128::from(fps)) as u32;
            prop_assert_eq!(packet.timestamp(), RtpTime(initial_rtp_time.wrapping_add(ticks)));
            previous = Some(s);
        }
    }
}

#[test]
fn sequence_wraps_at_65535() {
    let config = StreamConfig { initial_seq: 65_534, ..StreamConfig::default() };
    let mut stream = SyntheticStream::new(config).unwrap();
    let sent = run(&mut stream, 3);
    let wire: Vec<u16> =
        sent.iter().take(4).map(|s| RtpPacket::parse(&s.bytes).unwrap().sequence()).collect();
    assert_eq!(wire, [65_534, 65_535, 0, 1]);
    assert_eq!(sent[2].info.seq, SeqNo(65_536));
}

#[test]
fn paces_frames_on_the_callers_clock() {
    let mut stream = SyntheticStream::new(StreamConfig::default()).unwrap();
    let mut buf = Vec::new();
    assert_eq!(stream.next_frame_due(), Duration::ZERO);
    // The first poll starts the schedule and sends frame 0 at once.
    let mut frame0 = 0;
    while let Some(info) = stream.poll_packet(T0, NtpTime(1), &mut buf) {
        assert_eq!(info.frame, 0);
        frame0 += 1;
    }
    assert!(frame0 >= 3);
    assert_eq!(stream.next_frame_due(), T0 + Duration::from_millis(40));
    // Not yet due.
    assert!(stream.poll_packet(T0 + Duration::from_millis(39), NtpTime(2), &mut buf).is_none());
    // Late by three frames: frames 1..=4 come back to back, each with its own timestamp.
    let mut frames = Vec::new();
    while let Some(info) = stream.poll_packet(T0 + Duration::from_millis(170), NtpTime(3), &mut buf)
    {
        assert!(info.marker, "P frames are one packet each");
        frames.push((info.frame, info.rtp_time));
    }
    assert_eq!(
        frames,
        [(1, RtpTime(3600)), (2, RtpTime(7200)), (3, RtpTime(10_800)), (4, RtpTime(14_400))]
    );
    assert_eq!(stream.next_frame_due(), T0 + Duration::from_millis(200));
}

#[test]
fn capture_time_and_counter_decode_to_what_was_passed() {
    let ids = ExtensionIds { capture_time: 5, counter: 6 };
    let mut stream =
        SyntheticStream::new(StreamConfig { extension_ids: ids, ..StreamConfig::default() })
            .unwrap();
    let mut buf = Vec::new();
    let mut now = T0;
    for i in 0..200u64 {
        let capture = NtpTime(0xe000_0000_0000_0000 | i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8);
        let info = match stream.poll_packet(now, capture, &mut buf) {
            Some(info) => info,
            None => {
                now = stream.next_frame_due();
                stream.poll_packet(now, capture, &mut buf).unwrap()
            }
        };
        let packet = RtpPacket::parse(&buf).unwrap();
        let stamps = Stamps::from_packet(&packet, ids);
        assert_eq!(stamps, Stamps { capture_time: Some(capture), counter: Some(i) });
        assert_eq!(info.counter, i);
        // The same through the element-level helper.
        let elements = packet.extension().unwrap().elements().unwrap().map(Result::unwrap);
        assert_eq!(Stamps::from_elements(elements, ids), stamps);
    }
}

/// Bits per second of whole RTP packets (header, extensions, payload) over the first
/// `frames` frames, a span of `frames / fps` seconds.
fn measured_bitrate(config: StreamConfig, frames: u64) -> (u64, u64) {
    let fps = u64::from(config.fps);
    let mut stream = SyntheticStream::new(config).unwrap();
    let sent = run(&mut stream, frames);
    let bytes: u64 = sent.iter().map(|s| s.bytes.len() as u64).sum();
    (bytes * 8 * fps / frames, stream.natural_bitrate())
}

fn assert_within_5_percent(config: StreamConfig, frames: u64) {
    let target = config.target_bitrate.unwrap();
    let label =
        format!("fps {} mtu {} target {target} over {frames} frames", config.fps, config.mtu);
    let (measured, _) = measured_bitrate(config, frames);
    let error = (measured as f64 - target as f64).abs() / target as f64;
    assert!(error < 0.05, "{label}: measured {measured}");
}

#[test]
fn filler_reaches_the_target_bitrate() {
    for (fps, mtu) in [(25, 1200), (30, 1200), (60, 1400), (25, 300)] {
        let config = StreamConfig { fps, mtu, ..StreamConfig::default() };
        let natural = SyntheticStream::new(config.clone()).unwrap().natural_bitrate();
        // Well above the clip's rate, the filler absorbs the IDR/P size difference within a
        // GOP or two, so any span of a few seconds is on target: 3 s and 8 s here.
        for target in [500_000, 2_000_000, 8_000_000] {
            for seconds in [3, 8] {
                let config = StreamConfig { target_bitrate: Some(target), ..config.clone() };
                assert_within_5_percent(config, seconds * u64::from(fps));
            }
        }
        // At or just above the clip's own rate there is little filler to shift, so the rate
        // is only exact over whole loops (100 frames), like the clip's own.
        for target in [natural, natural + 10_000, natural * 3 / 2] {
            let config = StreamConfig { target_bitrate: Some(target), ..config.clone() };
            assert_within_5_percent(config, 200);
        }
    }
    // Without a target, the stream runs at the clip's own rate (whole loops: exact).
    let (measured, natural) = measured_bitrate(StreamConfig::default(), 200);
    assert!(measured.abs_diff(natural) <= 1, "{measured} vs {natural}");
    assert!((100_000..300_000).contains(&natural), "{natural}");
}

#[test]
fn rejects_bad_configurations() {
    let err = |config: StreamConfig| SyntheticStream::new(config).unwrap_err();
    let natural = SyntheticStream::new(StreamConfig::default()).unwrap().natural_bitrate();
    assert_eq!(
        err(StreamConfig { target_bitrate: Some(50_000), ..StreamConfig::default() }),
        SynthError::BitrateBelowClip { requested: 50_000, minimum: natural }
    );
    assert_eq!(
        err(StreamConfig { target_bitrate: Some(u64::MAX), ..StreamConfig::default() }),
        SynthError::BitrateTooHigh(u64::MAX)
    );
    assert_eq!(
        err(StreamConfig { fps: 0, ..StreamConfig::default() }),
        SynthError::InvalidFrameRate(0)
    );
    assert!(matches!(
        err(StreamConfig { mtu: 60, ..StreamConfig::default() }),
        SynthError::MtuTooSmall { mtu: 60, .. }
    ));
    assert_eq!(
        err(StreamConfig { mtu: 70_000, ..StreamConfig::default() }),
        SynthError::MtuTooLarge(70_000)
    );
    for (capture_time, counter) in [(0, 1), (1, 1), (1, 15)] {
        assert_eq!(
            err(StreamConfig {
                extension_ids: ExtensionIds { capture_time, counter },
                ..StreamConfig::default()
            }),
            SynthError::InvalidExtensionIds { capture_time, counter }
        );
    }
    assert_eq!(
        err(StreamConfig { payload_type: 128, ..StreamConfig::default() }),
        SynthError::InvalidPayloadType(128)
    );
}

#[test]
fn sdp_describes_the_stream() {
    let config = StreamConfig {
        extension_ids: ExtensionIds { capture_time: 3, counter: 4 },
        fps: 30,
        ..StreamConfig::default()
    };
    let sdp = SyntheticStream::new(config).unwrap().sdp();
    let text = sdp.media_section(0, Some("stream=0"));
    assert!(text.starts_with("m=video 0 RTP/AVP 96\r\n"));
    for line in [
        "a=rtpmap:96 H264/90000\r\n",
        "a=fmtp:96 packetization-mode=1;profile-level-id=42c00c;\
         sprop-parameter-sets=Z0LADNkBQZ+fARAAAAMAEAAAAwMg8UKkgA==,aMuBEsg=\r\n",
        "a=framerate:30\r\n",
        "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n",
        "a=extmap:4 urn:manifold:rtp-hdrext:packet-counter\r\n",
        "a=control:stream=0\r\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
}

#[test]
fn custom_clip() {
    // Any Annex-B clip that starts with SPS, PPS and an IDR loops; here one of 3 frames.
    let mut annex_b = Vec::new();
    for nal in
        [&[0x67u8, 0x42, 0xc0, 0x0c, 0xd9][..], &[0x68, 0xcb], &[0x65, 0x88, 1], &[0x41, 0x9a, 2]]
    {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(nal);
    }
    let clip = Clip::parse(&annex_b).unwrap();
    assert_eq!(clip.frame_count(), 2);
    let mut stream = SyntheticStream::with_clip(StreamConfig::default(), clip).unwrap();
    let sent = run(&mut stream, 5);
    check_run_keyframes_every(&sent, 2);
}

fn check_run_keyframes_every(sent: &[Sent], gop: u64) {
    for s in sent {
        assert_eq!(s.info.keyframe, s.info.frame % gop == 0);
    }
}

/// Depacketizes two loops (with filler and STAP-A, to exercise everything a player meets)
/// into an Annex-B stream and has ffmpeg decode it: no errors, every frame.
#[test]
fn ffmpeg_decodes_two_loops() {
    let ffmpeg = std::path::Path::new("/usr/bin/ffmpeg");
    if !ffmpeg.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but /usr/bin/ffmpeg is missing: the decode check cannot run"
        );
        eprintln!("skipped: /usr/bin/ffmpeg not found");
        return;
    }
    let config = StreamConfig {
        target_bitrate: Some(1_000_000),
        aggregate_parameter_sets: true,
        ..StreamConfig::default()
    };
    let mut stream = SyntheticStream::new(config).unwrap();
    let frames = 2 * stream.clip().frame_count() as u64;
    assert_ffmpeg_decodes(ffmpeg, &mut stream, frames);
}

/// Runs `frames` frames of `stream` through depacketization into Annex-B, and has ffmpeg
/// decode them: no errors, every frame.
fn assert_ffmpeg_decodes(ffmpeg: &std::path::Path, stream: &mut SyntheticStream, frames: u64) {
    let sent = run(stream, frames);
    let mut annex_b = Vec::new();
    for nal in frames_of(&sent).iter().flatten() {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(nal);
    }
    // Unique per call: the tests of this file run in parallel in one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("manifold-synth-{}-{call}.h264", std::process::id()));
    std::fs::write(&path, &annex_b).unwrap();
    let output = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-progress", "pipe:1", "-f", "h264", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ffmpeg failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg reported decode errors:\n{stderr}");
    let decoded = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("frame="))
        .next_back()
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert_eq!(decoded, Some(frames), "ffmpeg progress output:\n{stdout}");
}

/// `gop` cuts each of the clip's GOPs short: a keyframe every `gop` frames, timestamps and
/// numbering as continuous as ever, and still decodable (checked with ffmpeg when present).
#[test]
fn a_shorter_gop_cuts_each_clip_gop() {
    let config = StreamConfig { gop: Some(10), ..StreamConfig::default() };
    let mut stream = SyntheticStream::new(config).unwrap();
    let sent = run(&mut stream, 95);
    check_run_keyframes_every(&sent, 10);
    for pair in sent.windows(2) {
        assert_eq!(pair[1].info.seq.0, pair[0].info.seq.0 + 1);
        assert!(pair[1].info.rtp_time.since(pair[0].info.rtp_time) >= 0);
    }
    for bad in [0, 26] {
        let config = StreamConfig { gop: Some(bad), ..StreamConfig::default() };
        assert!(matches!(
            SyntheticStream::new(config),
            Err(manifold_synth::SynthError::InvalidGop { max: 25, .. })
        ));
    }
    let ffmpeg = std::path::Path::new("/usr/bin/ffmpeg");
    if ffmpeg.exists() {
        let mut stream =
            SyntheticStream::new(StreamConfig { gop: Some(7), ..StreamConfig::default() }).unwrap();
        assert_ffmpeg_decodes(ffmpeg, &mut stream, 60);
    } else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but ffmpeg is missing");
        eprintln!("skipped the decode check: /usr/bin/ffmpeg not found");
    }
}

/// `frame_nals` follows the GOP schedule: with GOPs cut to 2 frames, stream frame 2 is the
/// clip's second IDR, and it agrees with the packets' keyframe flag.
#[test]
fn frame_nals_follow_the_gop_schedule() {
    let config = StreamConfig { gop: Some(2), ..StreamConfig::default() };
    let stream = SyntheticStream::new(config).unwrap();
    let clip = stream.clip();
    let second_idr = clip.keyframes().nth(1).unwrap();
    let nals = |f: u64| stream.frame_nals(f).collect::<Vec<_>>();
    assert_eq!(nals(1), clip.frame_nals(1).collect::<Vec<_>>());
    assert_eq!(nals(2), clip.frame_nals(second_idr).collect::<Vec<_>>());
    assert_eq!(nals(2)[0][0] & 0x1f, 7, "an IDR frame starts with its SPS");
}
