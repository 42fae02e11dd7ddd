//! RTMP over arbitrary bytes: the chunk decoder, AMF0 and the publisher session must never
//! panic; the decoder and the session must give the same results however the input is split;
//! every AMF0 value that decodes must survive an encode/decode round trip.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use manifold_rtmp::chunk::{Decoder, Limits};
use manifold_rtmp::message::Message;
use manifold_rtmp::{amf0, handshake, Config, Event, PublisherSession};

/// Small limits so the fuzzer reaches them.
fn limits() -> Limits {
    Limits { max_chunk_size: 4096, max_message_len: 64 << 10, max_chunk_streams: 8, max_pending_bytes: 128 << 10 }
}

/// Decodes chunks, `chunk` new bytes at a time; the messages and the error, if any.
fn decode(data: &[u8], chunk: usize) -> (Vec<Message>, Option<String>) {
    let mut decoder = Decoder::new(limits());
    let (mut start, mut fed) = (0, 0);
    let mut out = Vec::new();
    loop {
        match decoder.feed(&data[start..fed]) {
            Ok(Some((m, used))) => {
                assert!(used > 0 && used <= fed - start);
                out.extend(m);
                start += used;
            }
            Ok(None) if fed == data.len() => return (out, None),
            Ok(None) => fed = (fed + chunk).min(data.len()),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

/// Runs a session that accepts every publish, `chunk` bytes per call; its events.
fn session(data: &[u8], chunk: usize) -> Vec<Event> {
    let now = Instant::now();
    let config = Config { limits: limits(), max_queued_events: 1 << 12, ..Config::default() };
    let mut s = PublisherSession::new(now, config);
    let mut events = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        s.handle_input(now, part);
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            if matches!(e, Event::PublishRequested(_)) {
                s.accept_publish(now);
            }
            events.push(e);
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 32);
    assert_eq!(decode(data, usize::MAX), decode(data, chunk), "split input decoded differently");

    if let Ok(values) = amf0::decode_all(data) {
        let mut once = Vec::new();
        amf0::encode_all(&values, &mut once);
        let again = amf0::decode_all(&once).expect("encoded AMF0 decodes");
        let mut twice = Vec::new();
        amf0::encode_all(&again, &mut twice);
        assert_eq!(once, twice);
    }

    // Input that does not start like a handshake goes to the chunk layer behind a valid one.
    let stream: Vec<u8> = if data.first() == Some(&handshake::VERSION) {
        data.to_vec()
    } else {
        let mut s = handshake::client_hello(true, 1);
        s.extend_from_slice(&[0; handshake::PACKET_SIZE]);
        s.extend_from_slice(data);
        s
    };
    let whole = session(&stream, usize::MAX);
    assert_eq!(whole, session(&stream, chunk), "split input gave other session events");
});
