//! A tiny raw RTP sender of the synthetic stream (manifold-synth), paced by the wall clock,
//! and the SDP that describes it: the test's stand-in for `manifold source rtp://…`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use manifold_synth::{NtpTime, StreamConfig, SyntheticStream};

/// The synthetic stream at `bitrate` bit/s (`None`: the clip's own).
pub(crate) fn stream(bitrate: Option<u64>) -> SyntheticStream {
    SyntheticStream::new(StreamConfig { target_bitrate: bitrate, ..StreamConfig::default() })
        .expect("synthetic stream settings")
}

/// The SDP of `stream` sent to `dest`, as a source would write it.
pub(crate) fn sdp(stream: &SyntheticStream, dest: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 0 0 IN IP4 {ip}\r\ns=manifold synthetic\r\nc=IN IP4 {ip}\r\nt=0 0\r\n{}",
        stream.sdp().media_section(dest.port(), None),
        ip = dest.ip()
    )
}

/// Sends `stream` to `dest` in real time until `stop` is raised; returns packets sent.
pub(crate) fn send(mut stream: SyntheticStream, dest: SocketAddr, stop: &Arc<AtomicBool>) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        while let Some(info) = stream.poll_packet(now, NtpTime::from_unix(wall), &mut buf) {
            if socket.send_to(&buf[..info.len], dest).is_ok() {
                sent += 1;
            }
        }
        let due = stream.next_frame_due();
        let wait = due.saturating_sub(start.elapsed()).min(Duration::from_millis(50));
        std::thread::sleep(wait);
    }
    sent
}
