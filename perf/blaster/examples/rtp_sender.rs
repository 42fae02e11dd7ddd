//! Sends the synthetic H.264 stream as raw RTP to an address and writes its SDP, for trying
//! the blaster by hand:
//!
//! ```text
//! cargo run -p manifold-perf-blaster --example rtp_sender -- 127.0.0.1:5004 src.sdp [BITRATE]
//! ```
#![allow(clippy::expect_used, reason = "a developer tool: a failure ends it with its reason")]

#[path = "../tests/support/sender.rs"]
mod sender;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rtp_sender ADDR:PORT SDP_FILE [BITRATE]";
    let dest: std::net::SocketAddr =
        args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| exit(usage));
    let sdp_file = args.next().unwrap_or_else(|| exit(usage));
    let bitrate = args.next().map(|b| b.parse().unwrap_or_else(|_| exit(usage)));
    let stream = sender::stream(bitrate);
    std::fs::write(&sdp_file, sender::sdp(&stream, dest)).expect("write the SDP file");
    sender::send(stream, dest, &Arc::new(AtomicBool::new(false)));
}

fn exit(usage: &str) -> ! {
    eprintln!("{usage}");
    std::process::exit(2);
}
