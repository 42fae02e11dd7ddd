//! The publishing client over arbitrary server bytes: it must never panic, and must end in
//! the same events and output however the input is split.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use manifold_rtmp::chunk::Limits;
use manifold_rtmp::client::{ClientConfig, ClientEvent, PublishClient};

/// Runs a client on `data` as the server's bytes, `chunk` at a time: its events and output.
fn run(data: &[u8], chunk: usize) -> (Vec<ClientEvent>, Vec<u8>) {
    let now = Instant::now();
    let limits = Limits { max_chunk_size: 4096, max_message_len: 64 << 10, max_chunk_streams: 8, max_pending_bytes: 128 << 10 };
    let config = ClientConfig { limits, seed: 1, ..ClientConfig::new("live", "cam", "rtmp://h/live") };
    let mut client = PublishClient::new(now, config);
    let (mut events, mut out) = (Vec::new(), Vec::new());
    for part in data.chunks(chunk.max(1)) {
        client.handle_input(now, part);
        while let Some(bytes) = client.poll_transmit() {
            out.extend_from_slice(&bytes);
        }
        while let Some(e) = client.poll_event() {
            if e == ClientEvent::Publishing {
                let _ = client.send_video(0, &[0x17, 0, 0, 0, 0]);
            }
            events.push(e);
        }
    }
    (events, out)
}

fuzz_target!(|data: &[u8]| {
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 32);
    // Input that does not start like a server's answer gets a plain S0 + S1 + S2 in front.
    let stream: Vec<u8> = if data.first() == Some(&3) {
        data.to_vec()
    } else {
        let mut s = vec![3u8];
        s.extend_from_slice(&[0; 2 * 1536]);
        s.extend_from_slice(data);
        s
    };
    assert_eq!(run(&stream, usize::MAX), run(&stream, chunk), "split input gave another run");
});
