//! A real ffmpeg publishes H.264 + AAC to the sans-IO session over loopback TCP, driven by a
//! small blocking loop here; ffmpeg must finish cleanly and the media must arrive as RTP. A
//! rejected publish must make ffmpeg fail, and ffmpeg as a player must accept the handshake.
//! Without ffmpeg the test is skipped, except under CI (`CI=true`), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{AacDepacketizer, H264Depacketizer};
use manifold_rtmp::{CloseReason, Config, Event, PublisherSession};
use manifold_rtp::rtcp::{self, SenderInfo};

fn ffmpeg_available() -> bool {
    let found = Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).status().is_ok();
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "ffmpeg is required under CI");
        eprintln!("ffmpeg not found: skipping");
    }
    found
}

/// What one publish produced.
#[derive(Default)]
struct Outcome {
    request: Option<manifold_rtmp::PublishRequest>,
    sdps: Vec<manifold_sdp::Sdp>,
    h264: H264Depacketizer,
    aac: AacDepacketizer,
    keyframes: usize,
    /// Each sender report: its track and its mapping (NTP time, RTP time).
    reports: Vec<(usize, SenderInfo)>,
    closed: Option<CloseReason>,
    ffmpeg: Option<std::process::ExitStatus>,
    stderr: String,
}

/// Runs ffmpeg publishing 2 s of test pattern and tone to a session on loopback; the publish
/// is accepted or rejected with `reject`.
fn publish(reject: Option<manifold_rtmp::Rejection>) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "2"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-f", "flv"])
        .arg(format!("rtmp://127.0.0.1:{port}/live/cam?key=secret"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut conn = accept(&listener);

    let config = Config { wall_clock_at_start: Some(SystemTime::now()), ..Config::default() };
    let mut session = PublisherSession::new(Instant::now(), config);
    let mut buf = vec![0u8; 64 << 10];
    let mut out = Outcome::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.closed.is_none() && Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => session.handle_peer_closed(),
            // A publisher may close with answers unread; the kernel then reports a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                session.handle_peer_closed()
            }
            Ok(n) => session.handle_input(Instant::now(), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        session.handle_timeout(Instant::now());
        loop {
            while let Some(bytes) = session.poll_transmit() {
                conn.write_all(&bytes).unwrap();
            }
            let Some(event) = session.poll_event() else { break };
            match event {
                Event::PublishRequested(r) => {
                    out.request = Some(r);
                    match reject {
                        None => assert!(session.accept_publish(Instant::now())),
                        Some(why) => assert!(session.reject_publish(why)),
                    }
                }
                Event::Tracks(sdp) => out.sdps.push(sdp),
                Event::Packet(p) => {
                    out.keyframes += usize::from(p.starts_keyframe);
                    match p.track {
                        0 => out.h264.push(&p.packet),
                        _ => out.aac.push(&p.packet),
                    }
                }
                Event::SenderReport { track, report } => match rtcp::packets(&report).next() {
                    Some(Ok(rtcp::Packet::SenderReport(sr))) => {
                        out.reports.push((track, sr.sender_info()))
                    }
                    other => panic!("not a sender report: {other:?}"),
                },
                Event::Closed(reason) => out.closed = Some(reason),
            }
        }
    }
    drop(conn);
    out.ffmpeg = wait(&mut ffmpeg, Duration::from_secs(10));
    if let Some(mut e) = ffmpeg.stderr.take() {
        let _ = e.read_to_string(&mut out.stderr);
    }
    out
}

#[test]
fn ffmpeg_publishes_h264_and_aac() {
    if !ffmpeg_available() {
        return;
    }
    let Outcome { request, sdps, h264, aac, keyframes, reports, closed, ffmpeg, stderr } =
        publish(None);
    assert!(ffmpeg.is_some_and(|s| s.success()), "ffmpeg failed: {ffmpeg:?}\n{stderr}");

    let request = request.expect("publish requested");
    assert_eq!(request.path(), "/live/cam");
    assert_eq!(request.query_param("key"), Some("secret"));
    assert!(
        matches!(closed, Some(CloseReason::Unpublished | CloseReason::PeerClosed)),
        "{closed:?}"
    );
    assert_eq!(sdps.len(), 1);
    let text = sdps[0].to_string();
    assert!(text.contains("a=rtpmap:96 H264/90000"), "{text}");
    assert!(text.contains("a=rtpmap:97 MPEG4-GENERIC/48000/2"), "{text}");
    // 2 s at 25 fps with a GOP of 25; ffmpeg may drop a frame at the edges.
    assert!(
        (45..=50).contains(&h264.access_units.len()),
        "{} video frames",
        h264.access_units.len()
    );
    assert_eq!(keyframes, 2);
    // 48 kHz AAC: 1024 samples per frame, ~94 frames in 2 s.
    assert!((85..=100).contains(&aac.frames.len()), "{} audio frames", aac.frames.len());
    // AAC frames exactly 1024 samples apart, whatever RTMP's millisecond rounding.
    assert!(aac.frames.windows(2).all(|w| w[1].0.wrapping_sub(w[0].0) == 1024));
    // With B-frames, presentation times are not monotonic, but each is a whole frame apart
    // (40 ms = 3600 ticks) from the first.
    let first = h264.access_units[0].0;
    for (ts, _) in &h264.access_units {
        assert_eq!(ts.wrapping_sub(first) % 3600, 0, "frame time {ts}");
    }
    // Sender reports: each track's first comes with its first packet. Through them the first
    // picture and the first sound, which ffmpeg captured together, land on the wall clock
    // within one video frame of each other (AAC's priming is half of that).
    let first_report = |track| reports.iter().find(|r| r.0 == track).expect("a report").1;
    let wall = |info: SenderInfo, ts: u32, rate: f64| {
        let ntp = info.ntp.to_system_time().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        ntp.as_secs_f64() + f64::from(ts.wrapping_sub(info.rtp.0) as i32) / rate
    };
    let earliest_picture =
        h264.access_units.iter().map(|(ts, _)| *ts).min_by_key(|ts| ts.wrapping_sub(first) as i32);
    let picture = wall(first_report(0), earliest_picture.unwrap(), 90_000.0);
    let sound = wall(first_report(1), aac.frames[0].0, 48_000.0);
    assert!((picture - sound).abs() < 0.040, "picture at {picture}, sound at {sound}");
    assert!(reports.iter().filter(|r| r.0 == 0).count() >= 1);
}

#[test]
fn ffmpeg_reports_a_rejected_publish() {
    if !ffmpeg_available() {
        return;
    }
    let out = publish(Some(manifold_rtmp::Rejection::Denied));
    assert!(out.ffmpeg.is_some_and(|s| !s.success()), "ffmpeg: {:?}", out.ffmpeg);
    assert!(out.stderr.contains("Server error"), "{}", out.stderr);
    assert_eq!(out.closed, Some(CloseReason::Rejected(manifold_rtmp::Rejection::Denied)));
    assert!(out.h264.access_units.is_empty());
}

/// ffmpeg as a player checks the server's handshake digest (S1 signed with the Media Server
/// key, S2 with the key derived from its C1): it only goes on to `connect` if ours verifies.
#[test]
fn ffmpeg_player_accepts_the_digest_handshake() {
    if !ffmpeg_available() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-i", &format!("rtmp://127.0.0.1:{port}/live/cam"), "-t", "1", "-f", "null", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = accept(&listener);
    let mut session = PublisherSession::new(Instant::now(), Config::default());
    let mut buf = vec![0u8; 16 << 10];
    let deadline = Instant::now() + Duration::from_secs(10);
    while session.app().is_none() && !session.is_closed() && Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => session.handle_peer_closed(),
            Ok(n) => session.handle_input(Instant::now(), &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
        while let Some(bytes) = session.poll_transmit() {
            conn.write_all(&bytes).unwrap();
        }
    }
    let connected = session.app().map(str::to_owned);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let mut stderr = String::new();
    if let Some(mut e) = ffmpeg.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(connected.as_deref(), Some("live"), "ffmpeg did not connect: {stderr}");
    assert!(!stderr.contains("validating failed") && !stderr.contains("mismatch"), "{stderr}");
}

/// Accepts ffmpeg's connection within 10 s (a non-blocking accept, polled), with reads that
/// time out after 50 ms so the loops can check their deadlines.
fn accept(listener: &TcpListener) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("ffmpeg did not connect: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    conn
}

/// Waits for a child up to `limit`, killing it after.
fn wait(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
