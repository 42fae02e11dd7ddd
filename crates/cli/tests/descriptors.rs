//! A relay out of file descriptors (run under `prlimit`, its connection cap set above the
//! limit): accepts fail with EMFILE, the relay backs off with at most one log line a second,
//! and it serves again once descriptors are free. Its own test binary, so that no other test
//! runs beside it.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Relay;

#[test]
fn out_of_descriptors_the_relay_backs_off_and_recovers() {
    // 128 open files, and a connection cap set above that: accepts hit EMFILE.
    let config = common::config_file(
        "e2e-emfile",
        "synthetic = [\"/demo\"]\nmax_connections = 10000\nidle_timeout_secs = 2\n",
    );
    let mut child = std::process::Command::new("prlimit")
        .args(["--nofile=128:128", env!("CARGO_BIN_EXE_manifold"), "serve"])
        .args(["--listen", "127.0.0.1:0", "--cores", "1", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the relay under prlimit");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let addr: SocketAddr = common::wait_for_line(&mut child, "listening on ", "manifold serve")
        .parse()
        .expect("address");
    let mut relay = Relay { child, addr };
    // 300 connections: the relay runs out of descriptors well before.
    let held: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(matches!(relay.child.try_wait(), Ok(None)), "the relay died out of descriptors");
    drop(held);
    // The idle ones are gone after the idle timeout; the backlog drains; a client gets in.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let url = relay.url("/demo");
        c.write_all(format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes())
            .expect("send");
        let mut line = String::new();
        if BufReader::new(c).read_line(&mut line).is_ok() && line.starts_with("RTSP/1.0 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the relay never recovered: {line:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = relay.interrupt(Duration::from_secs(5));
    let text = log.join().unwrap_or_default();
    let lines = text.lines().filter(|l| l.contains("accept failed")).count();
    assert!(text.contains("out_of_files=true"), "EMFILE was never hit: {text}");
    assert!(lines <= 8, "accept failures logged {lines} times (at most once a second)");
    let _ = std::fs::remove_dir_all(config.parent().expect("test dir"));
}
