//! The publishing client over arbitrary server bytes: it must never panic, and must end in
//! the same events and messages (Acknowledgements aside) however the input is split.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use manifold_rtmp::chunk::{Decoder, Limits};
use manifold_rtmp::message::{type_id, Message};
use manifold_rtmp::client::{ClientConfig, ClientEvent, PublishClient};

/// Runs a client on `data` as the server's bytes, `chunk` at a time: its events and output.
fn run(data: &[u8], chunk: usize) -> (Vec<ClientEvent>, Vec<Message>) {
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
            events.push(e);
        }
    }
    // Media once all input is in (sent mid-input, it would interleave with the answers
    // differently for each split), and what it made the client send.
    if client.is_publishing() {
        client.send_video(0, &[0x17, 0, 0, 0, 0]).expect("a live client takes media");
    }
    while let Some(bytes) = client.poll_transmit() {
        out.extend_from_slice(&bytes);
    }
    (events, messages(&out))
}

/// The client's messages after its handshake, without Acknowledgements (which count the
/// bytes received at each read, so they depend on the split).
fn messages(out: &[u8]) -> Vec<Message> {
    let mut decoder = Decoder::new(Limits::default());
    let mut rest = out.get(1 + 2 * 1536..).unwrap_or_default();
    let mut messages = Vec::new();
    while let Ok(Some((m, used))) = decoder.feed(rest) {
        messages.extend(m.filter(|m| m.type_id != type_id::ACKNOWLEDGEMENT));
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "the client wrote whole chunks");
    messages
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
