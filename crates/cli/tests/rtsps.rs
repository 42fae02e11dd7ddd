//! RTSPS end to end, against the real binary: ffmpeg and GStreamer play `rtsps://` (interleaved
//! and UDP media), RTSP over HTTPS tunnels (`-rtsp_transport https`, `rtspsh://`) and decode
//! without errors; SIGHUP swaps the certificate for new connections while a reader keeps
//! playing; a stalled or garbage handshake is closed without harming a reader; Basic
//! credentials are accepted over TLS (and refused in clear). Certificates are generated here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, have, run_bounded, signal, text, Relay};
use manifold_tls::rustls;
use rustls::pki_types::{CertificateDer, ServerName};

/// A self-signed certificate and its key in `dir` (see `common::certificate`); its DER for a
/// client's trust store.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    common::certificate(dir).2
}

/// A relay serving `/demo` with RTSPS on a free port, with the certificate in `dir` and
/// `extra` config lines (written to `dir/relay.toml`): the relay and the RTSPS port.
fn relay_with_tls(dir: &Path, extra: &str) -> (Relay, u16) {
    let port = free_port();
    let config = format!(
        "rtsps_listen = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\n\
         synthetic = [\"/demo\"]\n{extra}",
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let path = common::config_in(dir, &config);
    let relay = Relay::start(&["--config", path.to_str().unwrap()]);
    // The synthetic source's first GOP.
    std::thread::sleep(Duration::from_millis(1200));
    (relay, port)
}

/// ffmpeg plays `url` over `transport` for `secs` seconds, decoding the video: it must end
/// cleanly with no error output and at least 80% of the frames (25 per second).
fn ffmpeg_decodes(url: &str, transport: &str, secs: u32) {
    let frames = common::ffmpeg_video_frames(url, transport, secs);
    let expected = secs as usize * 25 * 4 / 5;
    assert!(frames >= expected, "ffmpeg {transport} {url}: only {frames} frames decoded");
}

/// GStreamer's rtspsrc plays `url` over TCP (any TLS certificate accepted) through the H.264
/// decoder: 50 decoded frames reach the sink and nothing reports an error.
fn gstreamer_decodes(url: &str) {
    let props = ["protocols=tcp", "tls-validation-flags=0"];
    common::gstreamer_plays(url, &props, 1, "rtph264depay ! avdec_h264", 50);
}

#[test]
fn ffmpeg_and_gstreamer_play_rtsps_and_https_tunnels() {
    if !have("ffmpeg", "-version") || !have("gst-launch-1.0", "--version") {
        return;
    }
    let dir = common::test_dir("rtsps-players");
    write_cert(&dir);
    let (_relay, port) = relay_with_tls(&dir, "");
    let rtsps = format!("rtsps://localhost:{port}/demo");
    // ffmpeg does not verify certificates unless asked (its tls `verify` option).
    ffmpeg_decodes(&rtsps, "tcp", 3);
    // UDP media with the RTSPS control connection.
    ffmpeg_decodes(&rtsps, "udp", 3);
    // RTSP over HTTPS, on the same TLS port.
    ffmpeg_decodes(&format!("rtsp://localhost:{port}/demo"), "https", 3);
    gstreamer_decodes(&rtsps);
    gstreamer_decodes(&format!("rtspsh://localhost:{port}/demo"));
}

/// A client config trusting only `cert`.
fn trusting(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    #[allow(deprecated)] // ring, as the relay uses
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to the relay's RTSPS port by a client trusting only `cert`: the stream
/// once the handshake is done, or the handshake's error.
fn tls_connect(port: u16, cert: &CertificateDer<'static>) -> std::io::Result<TlsClient> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(trusting(cert), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Sends `request` and reads the response head: its status code and head.
fn rtsp_exchange(stream: &mut (impl Read + Write), request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed in a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

#[test]
fn sighup_swaps_the_certificate_for_new_connections_while_a_reader_keeps_playing() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let dir = common::test_dir("rtsps-sighup");
    let first = write_cert(&dir);
    let (relay, port) = relay_with_tls(&dir, "");
    tls_connect(port, &first).expect("the first certificate is served");
    let url = format!("rtsps://localhost:{port}/demo");
    let reader = std::thread::spawn(move || ffmpeg_decodes(&url, "tcp", 6));
    std::thread::sleep(Duration::from_secs(2));

    // New files in place: served only after SIGHUP.
    let second = write_cert(&dir);
    assert!(tls_connect(port, &second).is_err(), "the new certificate is not served before SIGHUP");
    signal(relay.child.id(), "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tls_connect(port, &second).is_err() {
        assert!(Instant::now() < deadline, "the new certificate is not served after SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(tls_connect(port, &first).is_err(), "the old certificate is still served");

    // A reload from a broken file keeps the certificate served.
    std::fs::write(dir.join("cert.pem"), "garbage\n").unwrap();
    signal(relay.child.id(), "-HUP");
    std::thread::sleep(Duration::from_millis(500));
    tls_connect(port, &second).expect("a failed reload keeps the previous certificate");

    // The reader connected before the reload played through (every frame, no error).
    reader.join().expect("the reader connected before SIGHUP kept playing");
}

#[test]
fn a_stalled_or_garbage_handshake_is_closed_while_a_reader_keeps_playing() {
    if !have("ffmpeg", "-version") {
        return;
    }
    let dir = common::test_dir("rtsps-hostile");
    write_cert(&dir);
    let (_relay, port) = relay_with_tls(&dir, "request_timeout_secs = 2\n");
    let url = format!("rtsps://localhost:{port}/demo");
    let reader = std::thread::spawn(move || ffmpeg_decodes(&url, "tcp", 6));
    std::thread::sleep(Duration::from_secs(1));

    let connect = || {
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        c
    };
    // Everything the relay sends before it closes (a reset counts as closed).
    let until_closed = |c: &mut TcpStream| {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
                Err(e) => panic!("not closed: {e}"),
            }
        }
    };

    // Stalled: half a ClientHello record header, and a silent connection.
    let mut half = connect();
    half.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut silent = connect();
    let start = Instant::now();
    assert!(until_closed(&mut half).is_empty());
    assert!(until_closed(&mut silent).is_empty());
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1500), "closed before the request timeout: {waited:?}");

    // Garbage: plain RTSP and random bytes get at most a TLS alert (content type 21), then
    // the close; never an RTSP answer. Many of them while the reader plays.
    for i in 0..20 {
        let mut c = connect();
        let garbage: &[u8] = if i % 2 == 0 {
            b"OPTIONS rtsp://localhost/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n"
        } else {
            &[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00]
        };
        c.write_all(garbage).unwrap();
        let answer = until_closed(&mut c);
        assert!(answer.is_empty() || answer[0] == 21, "not an alert: {answer:?}");
    }
    reader.join().expect("the reader kept playing through the hostile handshakes");
}

#[test]
fn basic_credentials_are_accepted_over_tls_and_refused_in_clear() {
    let dir = common::test_dir("rtsps-basic");
    let cert = write_cert(&dir);
    let users = "[[user]]\nname = \"viewer\"\npassword = \"v13w\"\nactions = [\"read\"]\n";
    let (relay, port) = relay_with_tls(&dir, users);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("viewer:v13w");
    let describe = |url: &str, auth: &str| {
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n{auth}\r\n")
    };
    let mut tls = tls_connect(port, &cert).unwrap();
    let url = format!("rtsps://localhost:{port}/demo");
    // Without credentials: challenged, Basic among the offers over TLS.
    let (status, head) = rtsp_exchange(&mut tls, &describe(&url, ""));
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("WWW-Authenticate: Basic"), "Basic offered over TLS: {head}");
    let (status, head) =
        rtsp_exchange(&mut tls, &describe(&url, &format!("Authorization: Basic {basic}\r\n")));
    assert_eq!(status, 200, "Basic over TLS: {head}");

    // The same in clear is refused.
    let mut plain = TcpStream::connect(relay.addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = relay.url("/demo");
    let (status, head) =
        rtsp_exchange(&mut plain, &describe(&url, &format!("Authorization: Basic {basic}\r\n")));
    assert_eq!(status, 401, "Basic in clear: {head}");
    assert!(!head.contains("WWW-Authenticate: Basic"), "Basic not offered in clear: {head}");
}

#[test]
fn rtsps_without_a_usable_certificate_does_not_start() {
    let dir = common::test_dir("rtsps-refused");
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let serve = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_manifold"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--rtsps-listen", &listen]).args(extra);
        let out = run_bounded(&mut cmd, Duration::from_secs(20)).expect("exits");
        assert!(!out.status.success(), "started: {}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let (key, cert) = (key.to_str().unwrap(), cert.to_str().unwrap());
    assert!(serve(&[]).contains("--rtsps-listen and --rtmps-listen need --tls-cert"));
    assert!(
        serve(&["--tls-cert", cert]).contains("--rtsps-listen and --rtmps-listen need --tls-key")
    );
    let missing = serve(&["--tls-cert", cert, "--tls-key", key]);
    assert!(
        missing.contains("cannot read the certificate chain from") && missing.contains("cert.pem"),
        "{missing}"
    );
}

#[test]
fn tls_connections_count_against_the_connection_limits() {
    let dir = common::test_dir("rtsps-limits");
    let cert = write_cert(&dir);
    let (_relay, port) =
        relay_with_tls(&dir, "max_connections_per_ip = 2\nlimit_loopback = true\n");
    // Two connections that have not finished (or started) a handshake hold both places.
    let held: Vec<TcpStream> =
        (0..2).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = tls_connect(port, &cert);
    assert!(refused.is_err(), "a third connection from the address is refused");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tls_connect(port, &cert).is_err() {
        assert!(Instant::now() < deadline, "places freed by closed connections are not reused");
        std::thread::sleep(Duration::from_millis(100));
    }
}
