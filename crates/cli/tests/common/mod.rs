//! Helpers shared by the end-to-end tests: a relay child process, bounded command runs, and
//! one RTSP exchange over a raw connection. Each test file is its own crate and uses a subset.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)] // see above; test helpers

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running relay, stopped with SIGINT (or killed) when dropped.
pub(crate) struct Relay {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Relay {
    pub(crate) fn start(extra: &[&str]) -> Relay {
        Relay::start_on(0, extra)
    }

    /// On 127.0.0.1:`port` (0: any free one).
    pub(crate) fn start_on(port: u16, extra: &[&str]) -> Relay {
        let mut child = Command::new(env!("CARGO_BIN_EXE_manifold"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(if extra.contains(&"--cores") { &[][..] } else { &["--cores", "2"][..] })
            .args(extra)
            .env("RUST_LOG", std::env::var("MANIFOLD_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start manifold serve");
        let addr = wait_for_line(&mut child, "listening on ", "manifold serve");
        Relay { child, addr: addr.parse().expect("listening address") }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("rtsp://{}{path}", self.addr)
    }

    /// SIGINT, then the exit status (killed after `limit`).
    pub(crate) fn interrupt(&mut self, limit: Duration) -> Option<ExitStatus> {
        signal(self.child.id(), "-INT");
        wait_timeout(&mut self.child, limit)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None))
            && self.interrupt(Duration::from_secs(5)).is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A peer server (GStreamer's RTSP server scripts) that prints `PORT <n>` once it listens;
/// killed when dropped.
pub(crate) struct PortPrinter {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl PortPrinter {
    /// Starts `cmd` with stdout piped and waits up to 20 s for its `PORT <n>` line.
    pub(crate) fn start(mut cmd: Command, what: &str) -> PortPrinter {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let port = wait_for_line(&mut child, "PORT ", what);
        PortPrinter { child, port: port.parse().expect("port number") }
    }
}

impl Drop for PortPrinter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to 20 s for `child` (with stdout piped) to print a line starting with `prefix`
/// and returns the rest, trimmed; its stdout keeps being drained afterwards. Kills the child
/// and panics when the line does not come (`what` names the child).
pub(crate) fn wait_for_line(child: &mut Child, prefix: &'static str, what: &str) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(rest) => rest,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not print {prefix:?}");
        }
    }
}

/// Whether `tool VERSION_ARG` runs; when it does not, fails under `CI=true`, else says why
/// the test skips.
pub(crate) fn have(tool: &str, version_arg: &str) -> bool {
    let found = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || !missing(tool)
}

/// Whether GStreamer's RTSP server bindings load in Debian's Python (same rules as [`have`]).
pub(crate) fn have_gst_server() -> bool {
    let found = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); \
             from gi.repository import GstRtspServer",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || !missing("python3-gi with GstRtspServer")
}

/// Fails under `CI=true`, else says why the test skips; returns true.
fn missing(what: &str) -> bool {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{what} missing and CI=true");
    println!("skipped: {what} missing");
    true
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// Waits for `child` up to `limit`; kills it and returns `None` if it is still running.
pub(crate) fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs `cmd` to completion within `limit`, capturing output; killed (and `None`) past it.
pub(crate) fn run_bounded(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let mut out = child.stdout.take()?;
    let mut err = child.stderr.take()?;
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_timeout(&mut child, limit)?;
    Some(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A command's exit status and output, for an assertion message.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One RTSP exchange on `conn`: sends `request`, returns the status code and head.
pub(crate) fn exchange(conn: &mut TcpStream, request: &str) -> (u16, String) {
    conn.write_all(request.as_bytes()).expect("send request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).expect("read body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head + &String::from_utf8_lossy(&body))
}

/// SETUP (interleaved 0-1) of `url`'s first track and PLAY on `conn`, with CSeqs from
/// `cseq`: the session id and the PLAY response's head (for its RTP-Info).
pub(crate) fn setup_play_tcp(conn: &mut TcpStream, url: &str, cseq: u32) -> (String, String) {
    let (s, head) = exchange(
        conn,
        &format!(
            "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: {cseq}\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    );
    assert_eq!(s, 200, "{head}");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_owned();
    let next = cseq + 1;
    let (s, play) = exchange(
        conn,
        &format!("PLAY {url} RTSP/1.0\r\nCSeq: {next}\r\nSession: {session}\r\n\r\n"),
    );
    assert_eq!(s, 200, "{play}");
    (session, play)
}

/// A fresh, empty directory for one test's files under the build's temp dir, named for
/// `name` and this test process.
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("manifold-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `toml` written as `relay.toml` in [`test_dir`]`(name)`: the file, for `--config`.
pub(crate) fn config_file(name: &str, toml: &str) -> std::path::PathBuf {
    config_in(&test_dir(name), toml)
}

/// `toml` written as `relay.toml` in `dir` (which may hold its certificate): the file, for
/// `--config`.
pub(crate) fn config_in(dir: &std::path::Path, toml: &str) -> std::path::PathBuf {
    let config = dir.join("relay.toml");
    std::fs::write(&config, toml).expect("write config");
    config
}

/// A free TCP port on 127.0.0.1 (bound and released: another process may take it first).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A relay's `/api/v1/streams` JSON, from its metrics endpoint at `metrics` (empty when it
/// does not answer).
pub(crate) fn streams_json(metrics: &str) -> String {
    let Ok(mut c) = TcpStream::connect(metrics) else { return String::new() };
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.write_all(b"GET /api/v1/streams HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

/// Waits until DESCRIBE of `path` succeeds (the publisher is up).
pub(crate) fn wait_published(relay: &Relay, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut c = TcpStream::connect(relay.addr).expect("connect to relay");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let url = relay.url(path);
        let (status, _) = exchange(&mut c, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
        if status == 200 {
            // Let a GOP arrive so the reader starts at once.
            std::thread::sleep(Duration::from_millis(1200));
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{path} was never published");
}

/// ffmpeg reads `url` over `transport` for 3 s: no error output, exit 0, and video frames.
pub(crate) fn ffmpeg_reads(url: &str, transport: &str) {
    let frames = ffmpeg_video_frames(url, transport, 3);
    assert!(frames >= 25, "ffmpeg {transport} reader decoded only {frames} frames");
}

/// ffmpeg decodes `url`'s video over `transport` for `secs` seconds; it must end cleanly with
/// no error output. The frames decoded.
pub(crate) fn ffmpeg_video_frames(url: &str, transport: &str, secs: u32) -> usize {
    let (frames, stderr) = ffmpeg_frames(url, transport, secs);
    assert!(
        stderr.trim().is_empty(),
        "ffmpeg {transport} reader of {url} reported errors: {stderr}"
    );
    frames
}

/// ffmpeg decodes `url`'s video over `transport` for `secs` seconds and exits 0: the frames
/// decoded, and what it said on stderr (for the caller to judge).
pub(crate) fn ffmpeg_frames(url: &str, transport: &str, secs: u32) -> (usize, String) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", transport, "-i", url])
            .args(["-t", &secs.to_string(), "-map", "0:v:0", "-f", "framecrc", "-"]),
        Duration::from_secs(u64::from(secs) + 30),
    )
    .expect("ffmpeg reader finished in time");
    assert!(out.status.success(), "ffmpeg {transport} reader of {url} failed: {}", text(&out));
    let frames =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    (frames, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// GStreamer's rtspsrc reads `url` (a stream of `tracks` tracks) over TCP and gets 25 RTP
/// packets on each track.
pub(crate) fn gstreamer_reads(url: &str, tracks: usize) {
    gstreamer_plays(url, &["protocols=tcp"], tracks, "", 25);
}

/// GStreamer's rtspsrc plays `url` with rtspsrc properties `props` (`protocols=tcp`, ...),
/// each of its `tracks` tracks through `branch` (gst-launch syntax: `"rtph264depay !
/// avdec_h264"`, `"decodebin"`, or `""` for the RTP packets) into a sink of its own, until
/// every sink has had `buffers` buffers (within 30 s); then it is stopped as on Ctrl-C (`-e`,
/// SIGINT) and must end within 10 s, and nothing may report an error but GStreamer's own
/// shutdown race (see [`only_gstreamer_pause_race`]). Returns the verbose output, for checks
/// of caps.
pub(crate) fn gstreamer_plays(
    url: &str,
    props: &[&str],
    tracks: usize,
    branch: &str,
    buffers: usize,
) -> String {
    let mut args: Vec<String> = ["-e", "-v", "rtspsrc", &format!("location={url}"), "name=s"]
        .iter()
        .chain(props)
        .map(|a| a.to_string())
        .collect();
    let sinks: Vec<String> = (0..tracks).map(|k| format!("(track{k}:sink)")).collect();
    for k in 0..tracks {
        args.push("s.".into());
        let elements = branch.split('!').map(str::trim).filter(|e| !e.is_empty());
        for element in ["queue"].into_iter().chain(elements) {
            args.push("!".into());
            args.extend(element.split_whitespace().map(str::to_owned));
        }
        args.extend(["!", "fakesink", "silent=false"].map(str::to_owned));
        args.push(format!("name=track{k}"));
    }
    let mut child = Command::new("gst-launch-1.0")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gst-launch-1.0");
    // Counts each sink's buffers as they come, and says when every sink has enough.
    let (enough_tx, enough) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let counting = sinks.clone();
    let stdout = std::thread::spawn(move || {
        let (mut counts, mut text) = (vec![0usize; counting.len()], String::new());
        for line in out.lines().map_while(Result::ok) {
            if line.contains("chain") {
                if let Some(k) = counting.iter().position(|s| line.contains(s.as_str())) {
                    counts[k] += 1;
                    if counts.iter().all(|&c| c >= buffers) {
                        let _ = enough_tx.send(());
                    }
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        (counts, text)
    });
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let _ = enough.recv_timeout(Duration::from_secs(30));
    signal(child.id(), "-INT");
    let stopped = wait_timeout(&mut child, Duration::from_secs(10)).is_some();
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
    let ((counts, stdout), stderr) =
        (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let context = format!("GStreamer {url} ({props:?}, {branch:?}): buffers {counts:?}\n{stderr}");
    assert!(stopped, "gst-launch-1.0 did not stop after SIGINT: {context}");
    assert!(counts.iter().all(|&c| c >= buffers), "too few buffers: {context}");
    if stdout.contains("ERROR") || stderr.contains("ERROR") {
        assert!(only_gstreamer_pause_race(&stderr), "{context}");
    }
    stdout
}

/// Whether the only errors in gst-launch's `stderr` are rtspsrc's failed PAUSE at shutdown:
/// GStreamer 1.22 sometimes fails to write the PAUSE it sends on its way to NULL ("Could not
/// send message. (Received end-of-file)" from `gst_rtspsrc_try_send` and from
/// `gst_rtspsrc_pause`), with or without TLS or a tunnel, on a connection that is fine: the
/// PAUSE never reaches the server, and the TEARDOWN that follows on the same connection is
/// answered (the relay's debug log). It happens as often against GStreamer's own RTSP server
/// (5 of 40 sessions stopped just after PLAY), so it is the client's. Every other error counts.
pub(crate) fn only_gstreamer_pause_race(stderr: &str) -> bool {
    let blocks: Vec<&str> = stderr.split("ERROR: from element").skip(1).collect();
    let failed_write = |b: &&str| b.contains("Could not send message. (Received end-of-file)");
    let pause = |b: &&str| b.contains("gst_rtspsrc_pause ()");
    let send = |b: &&str| b.contains("gst_rtspsrc_try_send ()");
    !blocks.is_empty()
        && blocks.iter().all(|b| failed_write(b) && (pause(b) || send(b)))
        && blocks.iter().any(pause)
}

/// A throwaway self-signed certificate for `localhost` and 127.0.0.1 (an end entity, not a
/// CA: rustls refuses a CA certificate as a server's) and its key, written as `cert.pem` and
/// `key.pem` into `dir`: the two paths, and the certificate's DER for a client's trust store.
pub(crate) fn certificate(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    manifold_tls::rustls::pki_types::CertificateDer<'static>,
) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (cert, key, generated.cert.der().clone())
}

/// ffmpeg reads `url` over `transport` for 3 s and decodes both tracks: no error output, and
/// frames of video (stream 0) and audio (stream 1).
pub(crate) fn ffmpeg_decodes_video_and_audio(url: &str, transport: &str) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-rtsp_transport", transport, "-i", url])
            .args(["-t", "3", "-map", "0", "-f", "framecrc", "-"]),
        Duration::from_secs(30),
    )
    .expect("ffmpeg reader finished in time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg {transport} reader failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg {transport} reader reported errors: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let frames = |stream: &str| stdout.lines().filter(|l| l.starts_with(stream)).count();
    assert!(frames("0,") >= 25, "{transport}: {} video frames", frames("0,"));
    assert!(frames("1,") >= 50, "{transport}: {} audio frames", frames("1,"));
}

/// GStreamer's rtspsrc plays `url` over `protocol`, each track through decodebin: 50
/// buffers of decoded video and of decoded audio reach the sinks, and nothing reports an
/// error.
pub(crate) fn gstreamer_decodes_video_and_audio(url: &str, protocol: &str) {
    let protocols = format!("protocols={protocol}");
    let stdout = gstreamer_plays(url, &[&protocols], 2, "decodebin", 50);
    assert!(stdout.contains("video/x-raw") && stdout.contains("audio/x-raw"), "{stdout}");
}

/// A child process a test started (a publisher, a peer), killed and reaped when dropped.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether ffmpeg publishes one second of test pattern as FLV to `url` (`rtmp://`, `rtmps://`,
/// `rtmpt://`) and exits 0: false when the relay refuses it.
pub(crate) fn ffmpeg_flv_publish_succeeds(url: &str) -> bool {
    run_bounded(
        Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25"])
            .args(["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", url]),
        Duration::from_secs(30),
    )
    .expect("ffmpeg finished in time")
    .status
    .success()
}

/// ffmpeg publishing 60 s of test pattern and tone (H.264 + AAC) as FLV to `url`: `rtmp://`,
/// `rtmps://` or `rtmpt://`.
pub(crate) fn ffmpeg_publishes_flv(url: &str) -> KillOnDrop {
    let child = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg FLV publisher");
    KillOnDrop(child)
}
