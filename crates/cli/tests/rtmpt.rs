//! End-to-end test of `--rtmpt-listen`: ffmpeg publishes H.264 + AAC as `rtmpt://` (RTMP in
//! HTTP POSTs) to the real relay, and ffmpeg (UDP and TCP) and GStreamer read the RTSP path,
//! decoding video and audio without errors. Without ffmpeg and GStreamer the test prints
//! "skipped" (and fails under `CI=true`, see `common::have`).

// Test helpers outside #[test] functions: a panic here is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Read as _;
use std::time::Duration;

mod common;
use common::{free_port, have, wait_published, Relay};

#[test]
fn ffmpeg_publishes_over_rtmpt_and_is_read_back_over_rtsp() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let rtmpt = format!("127.0.0.1:{}", free_port());
    let relay = Relay::start(&["--rtmpt-listen", &rtmpt]);
    let _publisher = common::ffmpeg_publishes_flv(&format!("rtmpt://{rtmpt}/live/cam"));
    wait_published(&relay, "/live/cam");
    let url = relay.url("/live/cam");
    common::ffmpeg_decodes_video_and_audio(&url, "tcp");
    common::ffmpeg_decodes_video_and_audio(&url, "udp");
    common::gstreamer_decodes_video_and_audio(&url, "tcp");
    common::gstreamer_decodes_video_and_audio(&url, "udp");
}

/// One request on `conn`; the status code and the body.
fn post(conn: &mut std::net::TcpStream, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{BufRead as _, Write as _};
    let head = format!("POST {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len());
    conn.write_all(&[head.as_bytes(), body].concat()).expect("request");
    let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let mut len = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("body");
    (status, body)
}

#[test]
fn tunnel_requests_are_answered_and_bounded() {
    let rtmpt = format!("127.0.0.1:{}", free_port());
    let _relay = Relay::start(&["--rtmpt-listen", &rtmpt]);
    let mut conn = std::net::TcpStream::connect(&rtmpt).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    assert_eq!(post(&mut conn, "/fcs/ident2", &[0]).0, 404);
    assert_eq!(post(&mut conn, "/idle/0123456789abcdef/0", &[0]).0, 404, "no such session");
    let (status, id) = post(&mut conn, "/open/1", &[0]);
    assert_eq!(status, 200);
    let id = String::from_utf8(id).expect("text id");
    let id = id.strip_suffix('\n').expect("a newline after the id");
    // Nothing from the server yet: an idle answer is the interval byte alone.
    let (status, body) = post(&mut conn, &format!("/idle/{id}/1"), &[0]);
    assert_eq!((status, body.len()), (200, 1));
    // C0 + C1: the answer carries S0 + S1 + S2.
    let mut hello = vec![3u8];
    hello.extend_from_slice(&[0; 1536]);
    let (status, body) = post(&mut conn, &format!("/send/{id}/2"), &hello);
    assert_eq!((status, body.len(), body[0], body[1]), (200, 1 + 3073, 1, 3));
    let (status, _) = post(&mut conn, &format!("/close/{id}/3"), &[0]);
    assert_eq!(status, 200);
    assert_eq!(post(&mut conn, &format!("/idle/{id}/4"), &[0]).0, 404, "closed");
    // A body over the bound is refused and the connection closed.
    let mut big = std::net::TcpStream::connect(&rtmpt).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    use std::io::Write as _;
    big.write_all(b"POST /send/x/1 HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").expect("head");
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
}

#[test]
fn rtmpt_publishing_needs_the_publish_permission() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let config = common::config_file(
        "rtmpt-users",
        "allow_basic = true\n[[user]]\nname = \"cam\"\npassword = \"s3cret\"\n\
         actions = [\"publish\"]\npaths = [\"cam/*\"]\n[[user]]\nname = \"viewer\"\n\
         password = \"v13w\"\nactions = [\"read\"]\n",
    );
    let rtmpt = format!("127.0.0.1:{}", free_port());
    let relay =
        Relay::start(&["--config", config.to_str().expect("utf-8"), "--rtmpt-listen", &rtmpt]);
    assert!(
        !common::ffmpeg_flv_publish_succeeds(&format!("rtmpt://{rtmpt}/cam/side")),
        "ffmpeg published over RTMPT without credentials"
    );
    let _publisher =
        common::ffmpeg_publishes_flv(&format!("rtmpt://{rtmpt}/cam/side?user=cam&pass=s3cret"));
    // The viewer (Basic viewer:v13w) finds it published.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = std::net::TcpStream::connect(relay.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let url = relay.url("/cam/side");
        let (status, _) = common::exchange(
            &mut c,
            &format!(
                "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic dmlld2VyOnYxM3c=\r\n\r\n"
            ),
        );
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never published with the credentials");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}
