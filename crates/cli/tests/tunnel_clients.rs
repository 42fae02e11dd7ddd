//! The client side of RTSP over HTTP tunnels and over TLS, end to end with the real binary:
//! `manifold load --transport http` against our relay and against GStreamer's RTSP server,
//! `manifold load rtsps://` (also tunnelled, HTTPS) against GStreamer's server with a
//! self-signed certificate, the relay pulling through a tunnel and over TLS from GStreamer's
//! server and over TLS from our own relay, `manifold source` publishing through a tunnel and
//! over TLS to the relay, and a server that does not tunnel failing the run with a clear
//! error. Everything on 127.0.0.1. Without GStreamer's server a test prints "skipped: ..."
//! and passes, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{have_gst_server, run_bounded, text, PortPrinter, Relay};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");
const GST_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../load/tests/gst_rtsp_server.py");

/// Runs the binary to completion within `limit` (killed past it: a failed test).
fn manifold(args: &[&str], limit: Duration) -> Output {
    run_bounded(Command::new(BIN).args(args).env("RUST_LOG", "warn"), limit)
        .unwrap_or_else(|| panic!("manifold {args:?} did not finish within {limit:?}"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-tunnel-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `manifold load ARGS --json FILE`: the report, after checking the run passed.
fn load(args: &[&str], name: &str) -> serde_json::Value {
    let json = scratch(name).join("report.json");
    let mut all: Vec<&str> = vec!["load"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--quiet", "--json", json.to_str().unwrap()]);
    let out = manifold(&all, Duration::from_secs(60));
    assert!(out.status.success(), "manifold {all:?}\n{}", text(&out));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// Every session ok, media received, none lost.
fn assert_clean(r: &serde_json::Value, sessions: u64) {
    assert_eq!(r["sessions"]["ok"], sessions, "{r:#}");
    assert_eq!(r["errors"]["total"], 0, "{r:#}");
    assert!(r["media"]["packets"].as_u64().unwrap() > 20, "{r:#}");
    assert_eq!(r["media"]["lost"], 0, "{r:#}");
}

/// A self-signed certificate for 127.0.0.1 and localhost, and its key.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key, _) = common::certificate(dir);
    (cert, key)
}

/// GStreamer's RTSP server (a live H.264 stream at /test; tunnelling always on), with TLS on
/// every connection when a certificate is given.
fn gst_server(tls: Option<(&Path, &Path)>) -> PortPrinter {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(GST_SERVER).arg("0").stderr(Stdio::null());
    if let Some((cert, key)) = tls {
        cmd.arg("--tls").arg(cert).arg(key);
    }
    PortPrinter::start(cmd, "the GStreamer RTSP server")
}

#[test]
fn load_tunnelled_against_the_relay() {
    let relay = Relay::start(&["--synthetic", "/demo"]);
    let r = load(&[&relay.url("/demo"), "--transport", "http", "-c", "6", "-d", "3s"], "relay");
    assert_clean(&r, 6);
    assert_eq!(r["config"]["transport"], "http", "{r:#}");
    assert_eq!(r["metrics"]["tunnel"]["count"], 6, "{r:#}");
    assert!(r["metrics"].get("tls").is_none(), "{r:#}");
}

#[test]
fn load_tunnelled_and_over_tls_against_gstreamer() {
    if !have_gst_server() {
        return;
    }
    // One reader per run: gst-rtsp-server skips sequence numbers for the readers of a shared
    // media each time another joins (see crates/load/tests/gstreamer.rs), which is not loss.
    let plain = gst_server(None);
    let url = format!("rtsp://127.0.0.1:{}/test", plain.port);
    let r = load(&[&url, "--transport", "http", "-c", "1", "-d", "3s"], "gst-http");
    assert_clean(&r, 1);
    assert_eq!(r["metrics"]["tunnel"]["count"], 1, "{r:#}");

    let dir = scratch("gst-tls");
    let (cert, key) = certificate(&dir);
    let secure = gst_server(Some((&cert, &key)));
    let url = format!("rtsps://127.0.0.1:{}/test", secure.port);
    let ca = cert.to_str().unwrap();
    // Thresholds can name the handshake's phase and its error kind.
    let judged = ["--threshold", "tls.count>0", "--threshold", "errors.tls<1"];
    let mut args = vec![url.as_str(), "-t", "tcp", "--tls-ca", ca, "-c", "1", "-d", "3s"];
    args.extend(judged);
    let r = load(&args, "gst-tls");
    assert_eq!(r["passed"], true, "{r:#}");
    assert_clean(&r, 1);
    assert_eq!(r["metrics"]["tls"]["count"], 1, "{r:#}");
    // HTTPS tunnelling: both halves over TLS.
    let r = load(&[&url, "-t", "http", "--tls-ca", ca, "-c", "1", "-d", "3s"], "gst-https");
    assert_clean(&r, 1);
    assert_eq!(r["metrics"]["tls"]["count"], 1, "{r:#}");
    assert_eq!(r["metrics"]["tunnel"]["count"], 1, "{r:#}");
    // A certificate nobody vouches for is refused, by name.
    let out =
        manifold(&["load", &url, "-t", "tcp", "-c", "1", "-d", "1s"], Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("TLS handshake: invalid peer certificate"), "{}", text(&out));
}

/// A server that answers every connection's first bytes with `answer` and closes.
fn answering(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Bounded: the test opens one connection (the probe); a few spare.
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut [0u8; 2048]);
            let _ = s.write_all(answer);
        }
    });
    port
}

#[test]
fn a_server_that_does_not_tunnel_fails_the_run_clearly() {
    for (answer, expected) in [
        (
            &b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"[..],
            "the server refused the tunnel: HTTP 404 Not Found",
        ),
        (
            &b"RTSP/1.0 505 RTSP Version Not Supported\r\nCSeq: 0\r\n\r\n"[..],
            "the answer to the tunnel's GET is not HTTP",
        ),
    ] {
        let url = format!("rtsp://127.0.0.1:{}/x", answering(answer));
        let out =
            manifold(&["load", &url, "-t", "http", "-c", "1", "-d", "1s"], Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(expected), "{}", text(&out));
    }
}

#[test]
fn relay_pulls_through_a_tunnel_and_over_tls_from_gstreamer() {
    if !have_gst_server() {
        return;
    }
    let dir = scratch("pull");
    let (cert, key) = certificate(&dir);
    let plain = gst_server(None);
    let secure = gst_server(Some((&cert, &key)));
    let tunnelled = format!("/t=rtsp://127.0.0.1:{}/test#http", plain.port);
    let tls = format!("/s=rtsps://127.0.0.1:{}/test#ca={}", secure.port, cert.display());
    let relay = Relay::start(&["--pull", &tunnelled, "--pull", &tls]);
    for path in ["/t", "/s"] {
        // The pull starts with the relay; the generator's probe retries nothing, so wait
        // (bounded) for the path to be published.
        let url = relay.url(path);
        let mut r = None;
        for _ in 0..20 {
            let json = scratch(&format!("pull{}", &path[1..])).join("r.json");
            let out = manifold(
                &["load", &url, "-t", "tcp", "-c", "1", "-d", "3s", "--quiet", "--json"]
                    .into_iter()
                    .chain([json.to_str().unwrap()])
                    .collect::<Vec<_>>(),
                Duration::from_secs(60),
            );
            if out.status.success() {
                r = Some(serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap());
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let r: serde_json::Value = r.unwrap_or_else(|| panic!("no reader got {path}"));
        assert_clean(&r, 1);
    }
}

/// `manifold source ARGS --quiet` in the background, its stderr kept for the verdict.
fn source(args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .arg("source")
        .args(args)
        .arg("--quiet")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start manifold source")
}

#[test]
fn source_publishes_through_a_tunnel_to_the_relay() {
    let relay = Relay::start(&[]);
    let url = relay.url("/pub");
    let mut source = source(&[&url, "--transport", "http", "--duration", "8s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let r = load(&[&url, "-t", "tcp", "-c", "2", "-d", "3s"], "source");
    assert_clean(&r, 2);
    let status = common::wait_timeout(&mut source, Duration::from_secs(20)).expect("source ends");
    let mut err = String::new();
    source.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "source: {err}");
}

#[test]
fn source_publishes_over_tls_and_another_relay_pulls_it_over_tls() {
    let dir = scratch("own-tls");
    let (cert, key) = certificate(&dir);
    let tls_port = common::free_port();
    let tls_listen = format!("127.0.0.1:{tls_port}");
    let (cert_arg, key_arg) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let origin = Relay::start(&[
        "--rtsps-listen",
        &tls_listen,
        "--tls-cert",
        cert_arg,
        "--tls-key",
        key_arg,
    ]);
    // `manifold source` publishes /pub to the origin over rtsps://, trusting its certificate.
    let published = format!("rtsps://127.0.0.1:{tls_port}/pub");
    let mut source = source(&[&published, "--tls-ca", cert_arg, "--duration", "12s"]);
    common::wait_published(&origin, "/pub");
    // Read back over TLS from the origin itself.
    let r =
        load(&[&published, "--tls-ca", cert_arg, "-t", "tcp", "-c", "2", "-d", "3s"], "tls-read");
    assert_clean(&r, 2);
    assert!(r["metrics"]["tls"]["count"] == 2, "no tls phase: {r:#}");
    // A second relay pulls it over TLS (`#ca=`), and a plain reader of the edge gets it.
    let pull = format!("/edge=rtsps://127.0.0.1:{tls_port}/pub#ca={}", cert.display());
    let edge = Relay::start(&["--pull", &pull]);
    common::wait_published(&edge, "/edge");
    let r = load(&[&edge.url("/edge"), "-t", "tcp", "-c", "2", "-d", "3s"], "tls-pull");
    assert_clean(&r, 2);
    let status = common::wait_timeout(&mut source, Duration::from_secs(30)).expect("source ends");
    let mut err = String::new();
    source.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "source: {err}");
}
