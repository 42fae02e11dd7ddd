//! The RTSP stream decoder over arbitrary bytes: it must never panic, must consume at least
//! one byte per item, must give the same items however the input is split, and every decoded
//! message must survive a write/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtsp::codec::{self, Decoder, Item, Limits};
use manifold_rtsp::{Request, Response};

/// What decoding produced, owned, so two runs can be compared.
#[derive(Debug, PartialEq)]
enum Seen {
    Request(Request),
    Response(Response),
    Frame(u8, Vec<u8>),
    Skipped(usize),
}

/// Decodes `data` to exhaustion, appending at most `chunk` bytes at a time to the buffer as a
/// connection would. Returns what came out and the final error, if the stream was abandoned.
fn run(data: &[u8], chunk: usize) -> (Vec<Seen>, Option<String>) {
    let mut decoder = Decoder::new(Limits::default());
    let mut start = 0; // the front of the unconsumed bytes in data[..fed]
    let mut fed = 0;
    let mut seen = Vec::new();
    loop {
        let buf = &data[start..fed];
        match decoder.feed(buf) {
            Ok(Some((item, consumed))) => {
                assert!(consumed > 0 && consumed <= buf.len());
                check_round_trip(&item);
                seen.push(match item {
                    Item::Request(r) => Seen::Request(r),
                    Item::Response(r) => Seen::Response(r),
                    Item::Interleaved { channel, payload } => {
                        Seen::Frame(channel.0, payload.to_vec())
                    }
                });
                start += consumed;
            }
            Ok(None) => {
                if fed == data.len() {
                    return (seen, None);
                }
                fed = (fed + chunk).min(data.len());
            }
            Err(e) => match e.resume_at() {
                Some(skip) => {
                    assert!(skip > 0 && skip <= buf.len());
                    seen.push(Seen::Skipped(skip));
                    start += skip;
                }
                None => return (seen, Some(e.to_string())),
            },
        }
    }
}

fn check_round_trip(item: &Item<'_>) {
    let mut out = Vec::new();
    match item {
        Item::Request(r) => codec::write_request(r, &mut out),
        Item::Response(r) => codec::write_response(r, &mut out),
        Item::Interleaved { channel, payload } => {
            codec::write_interleaved(*channel, payload, &mut out).expect("frame fits");
        }
    }
    let again = codec::decode(
        &out,
        &Limits { max_head: usize::MAX, max_headers: usize::MAX, max_body: usize::MAX },
    )
    .expect("written message decodes")
    .expect("written message is complete");
    assert_eq!(again.1, out.len());
}

fuzz_target!(|data: &[u8]| {
    let whole = run(data, usize::MAX);
    // The chunk size comes from the input, so the fuzzer explores the split points too.
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 32);
    let trickled = run(data, chunk);
    assert_eq!(whole, trickled, "split input decoded differently");
});
