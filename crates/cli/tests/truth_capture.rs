//! Issue 4, "Truth": against a tshark capture of the same run, the generator's packet count,
//! loss and jitter agree. The real relay serves its synthetic stream on 127.0.0.1, tshark
//! captures what the relay's RTP socket sends on `lo`, the real generator plays it with 5 UDP
//! clients for 5 s, and the capture is analysed here from the raw UDP payloads.
//!
//! Without tshark the test prints "skipped: ..." and passes, except under `CI=true`, where it
//! fails. Capturing on `lo` needs root or the capture capabilities (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{have, run_bounded, text};

const BIN: &str = env!("CARGO_BIN_EXE_manifold");
const CLIENTS: usize = 5;

/// A running `manifold serve --synthetic /demo` on one shard, killed when dropped. Like
/// `generator.rs`'s helper (integration test files are separate crates), but it also reads
/// the shard's RTP port from its "shard up" log line: the port every UDP packet to readers
/// leaves from, which is what tshark's capture filter selects.
struct Relay {
    child: Child,
    addr: SocketAddr,
    rtp_port: u16,
}

impl Relay {
    fn start() -> Relay {
        // Port 0: the relay binds a free port and prints it (no race between a free-port probe
        // and the bind).
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--cores", "1", "--synthetic", "/demo"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start manifold serve");
        let (tx, rx) = mpsc::channel();
        let out_tx = tx.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = out_tx.send((true, a.trim().to_owned()));
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("rtp_port=").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send((false, port));
                }
            }
        });
        let (mut addr, mut rtp_port) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while addr.is_none() || rtp_port.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((true, a)) => addr = Some(a.parse().unwrap()),
                Ok((false, p)) => rtp_port = Some(p.parse().unwrap()),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("manifold serve did not print its address and RTP port");
                }
            }
        }
        Relay { child, addr: addr.unwrap(), rtp_port: rtp_port.unwrap() }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running tshark writing a capture file; killed when dropped if not stopped.
struct Capture {
    child: Child,
}

impl Capture {
    /// Starts `tshark -i lo -f FILTER -w FILE` and waits until it says it is capturing.
    fn start(filter: &str, file: &Path) -> Capture {
        let mut child = Command::new("tshark")
            .args(["-i", "lo", "-f", filter, "-w", file.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tshark");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Capturing on") {
                    let _ = tx.send(());
                }
                // Keep draining so tshark never blocks on a full pipe.
            }
        });
        let mut capture = Capture { child };
        if rx.recv_timeout(Duration::from_secs(15)).is_err() {
            capture.kill();
            panic!("tshark did not start capturing on lo");
        }
        capture
    }

    /// SIGINT (tshark flushes and closes the file), then waits at most 10 s.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!("tshark did not stop on SIGINT");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-truth-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The RTP packets in one captured UDP payload, as (sequence number, RTP timestamp). The
/// relay sends with UDP GSO when it can, and on `lo` the kernel hands the capture the
/// unsegmented super-datagram: several RTP packets back to back in one "packet" (tshark's
/// own RTP analysis then decodes only the first and reports the rest as lost). A segment
/// starts where an RTP v2 header carries the same SSRC and the next sequence number.
fn rtp_packets(payload: &[u8]) -> Vec<(u16, u32)> {
    if payload.len() < 12 || payload[0] & 0xc0 != 0x80 {
        return Vec::new();
    }
    let ssrc = &payload[8..12];
    let mut seq = be16(&payload[2..]);
    let mut out = vec![(seq, be32(&payload[4..]))];
    let mut p = 12;
    while p + 12 <= payload.len() {
        let next = seq.wrapping_add(1);
        if payload[p] & 0xc0 == 0x80
            && &payload[p + 8..p + 12] == ssrc
            && be16(&payload[p + 2..]) == next
        {
            seq = next;
            out.push((seq, be32(&payload[p + 4..])));
            p += 12;
        } else {
            p += 1;
        }
    }
    out
}

/// One client port's stream as the wire saw it.
#[derive(Default)]
struct WireStream {
    packets: u64,
    /// Sequence numbers missing between the first and the last seen.
    lost: u64,
    /// RFC 3550 interarrival jitter at the end, milliseconds (90 kHz clock), from the
    /// capture's kernel timestamps.
    jitter_ms: f64,
}

fn analyse(file: &Path) -> BTreeMap<u16, WireStream> {
    let out = run_bounded(
        Command::new("tshark").args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.time_epoch",
            "-e",
            "udp.dstport",
            "-e",
            "udp.payload",
        ]),
        Duration::from_secs(20),
    )
    .expect("tshark -r finished");
    assert!(out.status.success(), "{}", text(&out));
    // Per destination port: (arrival in 90 kHz units, seq, RTP timestamp) in capture order.
    let mut arrivals: BTreeMap<u16, Vec<(f64, u16, u32)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let [time, port, payload] = cols[..] else { continue };
        let at = time.parse::<f64>().unwrap() * 90_000.0;
        let port: u16 = port.parse().unwrap();
        for (seq, ts) in rtp_packets(&unhex(payload)) {
            arrivals.entry(port).or_default().push((at, seq, ts));
        }
    }
    arrivals
        .into_iter()
        .map(|(port, pkts)| {
            let (first, last) = (pkts[0].1, pkts[pkts.len() - 1].1);
            let span = u64::from(last.wrapping_sub(first)) + 1;
            let mut jitter = 0.0f64;
            for w in pkts.windows(2) {
                let d = (w[1].0 - w[0].0) - f64::from(w[1].2.wrapping_sub(w[0].2) as i32);
                jitter += (d.abs() - jitter) / 16.0;
            }
            let packets = pkts.len() as u64;
            let stream = WireStream {
                packets,
                lost: span.saturating_sub(packets),
                jitter_ms: jitter / 90.0,
            };
            (port, stream)
        })
        .collect()
}

#[test]
fn generator_loss_and_jitter_agree_with_a_tshark_capture() {
    if !have("tshark", "-v") {
        return;
    }
    let started = Instant::now();
    let dir = scratch();
    let (pcap, json) = (dir.join("run.pcapng"), dir.join("report.json"));
    let relay = Relay::start();
    // Only what leaves the shard's RTP socket: the media to the generator's client ports
    // (RTCP sender reports leave from the port above; RTSP is TCP).
    let capture = Capture::start(
        &format!("udp and src host 127.0.0.1 and src port {}", relay.rtp_port),
        &pcap,
    );
    let url = format!("rtsp://{}/demo", relay.addr);
    let load = run_bounded(
        Command::new(BIN)
            .args([
                "load",
                &url,
                "--clients",
                &CLIENTS.to_string(),
                "--transport",
                "udp",
                "--duration",
                "5s",
                "--quiet",
                "--json",
                json.to_str().unwrap(),
            ])
            .env("RUST_LOG", "warn"),
        Duration::from_secs(20),
    )
    .expect("manifold load finished within 20 s");
    // The sessions are torn down; let the last packets reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    capture.stop();
    drop(relay);
    assert_eq!(load.status.code(), Some(0), "{}", text(&load));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let wire = analyse(&pcap);
    let summary: Vec<String> = wire
        .iter()
        .map(|(p, s)| {
            format!(
                "port {p}: {} packets, {} lost, jitter {:.3} ms",
                s.packets, s.lost, s.jitter_ms
            )
        })
        .collect();
    let context = format!(
        "wire:\n{}\nreport media: {}\njitter: {}\nload: {}",
        summary.join("\n"),
        report["media"],
        report["metrics"]["jitter"],
        text(&load)
    );
    println!("{context}");

    assert_eq!(report["sessions"]["ok"].as_u64(), Some(CLIENTS as u64), "{context}");
    assert_eq!(wire.len(), CLIENTS, "one RTP stream per client port\n{context}");

    // Packets. The generator counts what it read between PLAY and closing its sockets; the
    // capture also holds what the relay sent after a client stopped reading and before its
    // TEARDOWN was processed (a frame or two at most at ~25 frames/s). So the wire may hold
    // a few more, never fewer: allow 10 packets a client, about 2 frames of this stream.
    let on_wire: u64 = wire.values().map(|s| s.packets).sum();
    let counted = report["media"]["packets"].as_u64().unwrap();
    assert!(counted > 0, "{context}");
    assert!(
        counted <= on_wire && on_wire - counted <= 10 * CLIENTS as u64,
        "generator counted {counted} packets, the wire carried {on_wire}\n{context}"
    );

    // Loss: on loopback nothing is lost on the wire, and the generator must not invent any
    // (nor miss any the wire shows).
    let wire_lost: u64 = wire.values().map(|s| s.lost).sum();
    assert_eq!(report["media"]["lost"].as_u64(), Some(wire_lost), "{context}");

    // Jitter. The report keeps one sample per session (the RFC 3550 value at its end); the
    // median of the 5 must match the median of the capture's 5 per-port values. The two
    // clocks differ: tshark stamps in the kernel as the packet crosses `lo`, the generator
    // when its shard reads the socket, after wake-up and scheduling delay (ms of timer lag on
    // this shared 2-core machine), so the generator's value carries extra noise, always
    // upwards on average. Both must be sane for loopback at 25 frames/s (under 40 ms: one
    // frame interval), and within 2 ms + 25% of each other: tight enough that a wrong clock
    // rate (e.g. ms vs 90 kHz units, a factor of 90), a missing /16 smoothing or jitter of the
    // wrong packets fails it, loose enough for scheduling noise under CI load.
    let mut wire_jitter: Vec<f64> = wire.values().map(|s| s.jitter_ms).collect();
    wire_jitter.sort_by(f64::total_cmp);
    let wire_p50 = wire_jitter[wire_jitter.len() / 2];
    let jitter = &report["metrics"]["jitter"];
    assert_eq!(jitter["count"].as_u64(), Some(CLIENTS as u64), "{context}");
    let gen_p50 = jitter["p50"].as_f64().unwrap() / 1000.0;
    assert!(wire_p50 < 40.0 && gen_p50 < 40.0, "{context}");
    assert!(
        (gen_p50 - wire_p50).abs() <= 2.0 + 0.25 * wire_p50,
        "jitter p50: generator {gen_p50:.3} ms, wire {wire_p50:.3} ms\n{context}"
    );

    let _ = std::fs::remove_dir_all(&dir);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}
