//! End-to-end tests of `--rtmps-listen`: ffmpeg publishes H.264 + AAC as `rtmps://` (RTMP
//! over TLS, with the relay's certificate) to the real relay, and ffmpeg (TCP and UDP) and
//! GStreamer read the RTSP path. Credentials on the URL's query are a password in clear:
//! accepted over RTMPS, refused over plain RTMP unless `allow_basic`. A handshake that is not
//! TLS is closed without harming the publisher. Without ffmpeg and GStreamer the tests print
//! "skipped" (and fail under `CI=true`, see `common::have`).

// Test helpers outside #[test] functions: a panic here is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{ffmpeg_reads, free_port, have, wait_published, Relay};

/// A fresh directory holding a self-signed certificate and its key, and a relay config with
/// a publisher `cam` (password in the URL's query) and anonymous readers.
fn setup(name: &str) -> PathBuf {
    let dir = common::test_dir(&format!("rtmps-{name}"));
    common::certificate(&dir);
    let config = format!(
        "tls_cert = {:?}\ntls_key = {:?}\n\
         [[user]]\nname = \"cam\"\npassword = \"s3cret\"\nactions = [\"publish\"]\n\
         paths = [\"live/*\"]\n\
         [[user]]\nname = \"any\"\nactions = [\"read\"]\n",
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    common::config_in(&dir, &config);
    dir
}

/// A relay with `dir`'s config, RTMPS and plain RTMP on free ports: the relay and both
/// addresses.
fn relay(dir: &Path) -> (Relay, String, String) {
    let rtmps = format!("127.0.0.1:{}", free_port());
    let rtmp = format!("127.0.0.1:{}", free_port());
    let config = dir.join("relay.toml");
    let relay = Relay::start(&[
        "--config",
        config.to_str().unwrap(),
        "--rtmps-listen",
        &rtmps,
        "--rtmp-listen",
        &rtmp,
    ]);
    (relay, rtmps, rtmp)
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_is_read_back_over_rtsp() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let dir = setup("publish");
    let (relay, rtmps, rtmp) = relay(&dir);
    // The same password in clear over plain RTMP is refused: Basic needs TLS.
    assert!(
        !common::ffmpeg_flv_publish_succeeds(&format!(
            "rtmp://{rtmp}/live/cam?user=cam&pass=s3cret"
        )),
        "a password in clear was accepted over plain RTMP"
    );

    let _publisher =
        common::ffmpeg_publishes_flv(&format!("rtmps://{rtmps}/live/cam?user=cam&pass=s3cret"));
    wait_published(&relay, "/live/cam");
    let url = relay.url("/live/cam");
    common::ffmpeg_decodes_video_and_audio(&url, "tcp");
    common::ffmpeg_decodes_video_and_audio(&url, "udp");
    common::gstreamer_decodes_video_and_audio(&url, "tcp");
    common::gstreamer_decodes_video_and_audio(&url, "udp");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stream_key_that_is_the_users_password_publishes_and_a_wrong_one_does_not() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let dir = setup("stream-key");
    let (relay, rtmps, _) = relay(&dir);
    // What an encoder with only a "stream key" field sends: key `cam?WRONG`, then `cam?s3cret`.
    assert!(
        !common::ffmpeg_flv_publish_succeeds(&format!("rtmps://{rtmps}/live/cam?wrong")),
        "a wrong stream key published"
    );
    let _publisher = common::ffmpeg_publishes_flv(&format!("rtmps://{rtmps}/live/cam?s3cret"));
    wait_published(&relay, "/live/cam");
    ffmpeg_reads(&relay.url("/live/cam"), "tcp");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_handshake_that_is_not_tls_is_closed_while_a_publisher_goes_on() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let dir = setup("garbage");
    let (relay, rtmps, _) = relay(&dir);
    let _publisher =
        common::ffmpeg_publishes_flv(&format!("rtmps://{rtmps}/live/cam?user=cam&pass=s3cret"));
    wait_published(&relay, "/live/cam");
    // A plain RTMP client (C0 + the start of C1) on the TLS port: closed, with an alert at most.
    let mut conn = std::net::TcpStream::connect(&rtmps).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut hello = vec![3u8];
    hello.extend_from_slice(&[0u8; 1536]);
    conn.write_all(&hello).unwrap();
    let mut answer = Vec::new();
    let read = conn.read_to_end(&mut answer);
    assert!(read.is_ok(), "the relay did not close the connection: {read:?}");
    assert!(answer.len() < 64, "{} bytes answered to a non-TLS hello", answer.len());
    // The publisher was not disturbed.
    ffmpeg_reads(&relay.url("/live/cam"), "tcp");
    let _ = std::fs::remove_dir_all(&dir);
}
