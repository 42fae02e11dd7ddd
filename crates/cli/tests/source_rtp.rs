//! End-to-end tests of `manifold source rtp://HOST:PORT`, the plain RTP/UDP output the perf
//! harness feeds to every server under test: what is on the wire (packet size, header
//! extensions, sender reports, the SDP file written before the first packet), a source with
//! no receiver, and the same stream relayed by `manifold serve --rtp` (pinned with `--cpus`)
//! and by GStreamer's RTSP server (`perf/peers/gst_rtsp_relay.py`, a shared pass-through
//! media), each read by `manifold load`, which must measure end-to-end latency from the
//! capture-time extension. Traffic stays on 127.0.0.1. A missing peer (python3-gi with
//! GstRtspServer, ffprobe) fails under `CI=true`, else prints "skipped: ...".

// Test helpers outside #[test] functions: a panic here is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{have, have_gst_server, run_bounded, text, KillOnDrop, PortPrinter, Relay};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");
const GST_RELAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../perf/peers/gst_rtsp_relay.py");

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-source-rtp-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two bound sockets on an even port P and on P+1, on 127.0.0.1: a receiver, or a
/// reservation held until whoever should listen there starts.
fn port_pair() -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
    panic!("no free even/odd UDP port pair on 127.0.0.1");
}

/// `manifold source rtp://127.0.0.1:PORT` running in the background, killed when dropped.
fn start_source(port: u16, sdp: &Path, extra: &[&str]) -> KillOnDrop {
    let child = Command::new(BIN)
        .args(["source", &format!("rtp://127.0.0.1:{port}"), "--quiet", "--sdp-file"])
        .arg(sdp)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start manifold source");
    KillOnDrop(child)
}

/// Waits until the SDP file exists (the source writes it whole, with a rename).
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} was not written", path.display());
}

/// The first CPU number past the last `,` or `-` of the online list: the last online CPU.
fn last_online_cpu() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| s.trim().rsplit([',', '-']).next().map(str::to_owned))
        .unwrap_or_else(|| "0".into())
}

/// `manifold load URL` with 5 clients for 3 s; the JSON report.
fn load(url: &str, dir: &Path) -> serde_json::Value {
    let json = dir.join("load.json");
    let out = run_bounded(
        Command::new(BIN)
            .args(["load", url, "--clients", "5", "--duration", "3s", "--quiet", "--json"])
            .arg(&json)
            .env("RUST_LOG", "warn"),
        Duration::from_secs(60),
    )
    .expect("manifold load finishes in time");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["sessions"]["played"], 5, "{report:#}");
    assert!(report["metrics"]["e2e"]["count"].as_u64().unwrap_or(0) > 0, "no e2e: {report:#}");
    assert!(report["media"]["counted_by_counter"].as_u64().unwrap_or(0) > 0, "{report:#}");
    report
}

#[test]
fn rtp_output_has_stamped_packets_within_mtu_sender_reports_and_the_sdp_first() {
    let dir = scratch("wire");
    let sdp = dir.join("s.sdp");
    let (rtp, rtcp) = port_pair();
    let port = rtp.local_addr().unwrap().port();
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rtcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut source = start_source(port, &sdp, &["--mtu", "400", "--duration", "2s"]);

    let mut buf = [0u8; 2048];
    let mut sizes = Vec::new();
    let mut ssrc = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while sizes.len() < 60 && Instant::now() < deadline {
        let n = rtp.recv(&mut buf).expect("RTP from the source");
        if sizes.is_empty() {
            // Written before the first packet, whole.
            let text = std::fs::read_to_string(&sdp).expect("SDP file before the first packet");
            for line in [
                "c=IN IP4 127.0.0.1\r\n",
                &format!("m=video {port} RTP/AVP 96\r\n"),
                "a=rtpmap:96 H264/90000\r\n",
                "sprop-parameter-sets=",
                "a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n",
                "a=extmap:2 urn:manifold:rtp-hdrext:packet-counter\r\n",
            ] {
                assert!(text.contains(line), "{line:?} in\n{text}");
            }
        }
        let p = &buf[..n];
        assert_eq!(p[0] & 0xd0, 0x90, "RTP version 2 with a header extension");
        assert_eq!(p[1] & 0x7f, 96);
        assert_eq!(&p[12..14], [0xbe, 0xde], "RFC 8285 one-byte extensions");
        let s = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        assert_eq!(*ssrc.get_or_insert(s), s, "one SSRC");
        sizes.push(n);
    }
    assert!(sizes.len() >= 60, "only {} packets", sizes.len());
    assert!(sizes.iter().all(|&n| n <= 400), "{sizes:?}");
    assert!(sizes.contains(&400), "keyframes fill packets to --mtu: {sizes:?}");

    let n = rtcp.recv(&mut buf).expect("RTCP on the next port");
    assert_eq!(buf[1], 200, "a sender report first");
    assert_eq!(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), ssrc.unwrap());
    // An SR without report blocks is 28 bytes; the SDES with the CNAME follows.
    assert!(n > 28 && buf[29] == 202, "an SDES follows the SR: {:?}", &buf[..n]);

    let status = common::wait_timeout(&mut source.0, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "the source ends after --duration: {status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rtp_source_without_a_receiver_keeps_pacing_and_bad_urls_are_explained() {
    // Nothing listens: an unconnected socket's sends succeed or are counted, never fatal.
    let port = {
        let (rtp, _rtcp) = port_pair();
        rtp.local_addr().unwrap().port()
    };
    let out = run_bounded(
        Command::new(BIN).args(["source", &format!("rtp://127.0.0.1:{port}"), "-d", "1s"]),
        Duration::from_secs(20),
    )
    .expect("source finishes");
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let frames: u64 = stderr
        .split("sent ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(frames >= 20, "paced at 25 fps for 1 s: {}", text(&out));

    for (url, why) in [
        ("rtp://127.0.0.1", "no port"),
        ("rtp://127.0.0.1:65535", "1 to 65534"),
        ("rtp://127.0.0.1:5004?pkt_size=500", "--mtu"),
    ] {
        let out = run_bounded(
            Command::new(BIN).args(["source", url, "-d", "1s"]).env("RUST_BACKTRACE", "0"),
            Duration::from_secs(10),
        )
        .expect("source fails fast");
        assert!(!out.status.success(), "{url}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{url}: {}", text(&out));
    }
}

#[test]
fn rtp_source_through_our_relay_pinned_to_a_cpu_reaches_readers_with_e2e_and_no_loss() {
    let dir = scratch("relay");
    let sdp = dir.join("s.sdp");
    let (reserve_rtp, reserve_rtcp) = port_pair();
    let port = reserve_rtp.local_addr().unwrap().port();
    let _source = start_source(port, &sdp, &["--duration", "60s"]);
    // The relay needs the SDP to start; the source is already sending into the void.
    wait_for_file(&sdp);
    drop((reserve_rtp, reserve_rtcp));
    let cpu = last_online_cpu();
    let input = format!("/perf=127.0.0.1:{port}");
    let relay = Relay::start(&[
        "--cores",
        "1",
        "--cpus",
        &cpu,
        "--rtp",
        &input,
        "--rtp-sdp",
        sdp.to_str().unwrap(),
    ]);
    let report = load(&relay.url("/perf"), &dir);
    assert_eq!(report["media"]["lost"], 0, "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `perf/peers/gst_rtsp_relay.py` relaying the RTP at `port`, killed when dropped.
struct GstRelay {
    /// Kept for its `Drop`, which stops the server.
    _server: PortPrinter,
    port: u16,
}

impl GstRelay {
    fn start(rtp_port: u16, sdp: &Path) -> GstRelay {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(GST_RELAY)
            .args(["--rtp-port", &rtp_port.to_string(), "--port", "0", "--sdp"])
            .arg(sdp)
            .stderr(Stdio::inherit());
        let server = PortPrinter::start(cmd, "gst_rtsp_relay.py");
        GstRelay { port: server.port, _server: server }
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/perf", self.port)
    }
}

#[test]
fn rtp_source_through_gstreamer_keeps_the_capture_time_extension() {
    if !have_gst_server() || !have("ffprobe", "-version") {
        return;
    }
    let dir = scratch("gst");
    let sdp = dir.join("s.sdp");
    let (reserve_rtp, reserve_rtcp) = port_pair();
    let port = reserve_rtp.local_addr().unwrap().port();
    let _source = start_source(port, &sdp, &["--duration", "60s"]);
    wait_for_file(&sdp);
    drop((reserve_rtp, reserve_rtcp));
    let gst = GstRelay::start(port, &sdp);

    // The extension reached the readers untouched, and the SDP named it: e2e samples.
    let report = load(&gst.url(), &dir);
    // GStreamer forwards the bytes as they come; loopback at ~150 kbit/s loses nothing, but
    // its scheduling is not ours to bound tightly. And its shared media answers the PLAY of a
    // reader joining it while it plays with RTP-Info naming the packet it sent last (to the
    // others), not the first this reader gets (checked by hand: `seq=2450`, first packet
    // 2451), which the generator rightly counts as one packet lost before the first: at most
    // one per session, besides real loss.
    let lost = report["media"]["lost"].as_u64().unwrap();
    let packets = report["media"]["packets"].as_u64().unwrap();
    let sessions = report["sessions"]["started"].as_u64().unwrap();
    assert!(lost <= sessions + packets / 100, "loss through GStreamer: {report:#}");

    let probe = run_bounded(
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name"])
            .args(["-of", "default=nw=1", &gst.url()]),
        Duration::from_secs(30),
    )
    .expect("ffprobe finishes");
    assert!(String::from_utf8_lossy(&probe.stdout).contains("codec_name=h264"), "{}", text(&probe));
    let _ = std::fs::remove_dir_all(&dir);
}
