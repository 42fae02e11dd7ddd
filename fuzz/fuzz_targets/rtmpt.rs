//! RTMPT request framing over arbitrary bytes: never a panic, never a read past the input,
//! and the same requests (and error) however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtmp::rtmpt::{parse_request, Limits, Request};

/// Parses requests, `chunk` new bytes at a time: the requests and the error, if any.
fn parse(data: &[u8], chunk: usize) -> (Vec<Request>, Option<String>) {
    let limits = Limits { max_head: 1024, max_body: 4096 };
    let (mut start, mut fed) = (0, 0);
    let mut out = Vec::new();
    loop {
        match parse_request(&data[start..fed], limits) {
            Ok(Some((req, used))) => {
                assert!(used > 0 && used <= fed - start);
                out.push(req);
                start += used;
            }
            Ok(None) if fed == data.len() => return (out, None),
            Ok(None) => fed = (fed + chunk).min(data.len()),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 32);
    let (whole, whole_err) = parse(data, usize::MAX);
    let (split, split_err) = parse(data, chunk);
    assert_eq!(whole, split, "split input parsed differently");
    // The error may differ (a head seen too large before it was seen malformed), but not
    // whether there is one.
    assert_eq!(whole_err.is_some(), split_err.is_some(), "{whole_err:?} / {split_err:?}");
});
