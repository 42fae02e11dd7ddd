//! The auth hook's answer, read by its status-line parser: never panics, holds a bounded
//! line, and gives the same result however the bytes are split (the first byte picks the
//! split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_access::hook_http::StatusParser;

fuzz_target!(|data: &[u8]| {
    let Some((&at, input)) = data.split_first() else { return };
    let at = usize::from(at).min(input.len());
    let whole = StatusParser::new().feed(input);
    let mut p = StatusParser::new();
    let split = match p.feed(&input[..at]) {
        Ok(None) => p.feed(&input[at..]),
        other => other,
    };
    assert_eq!(split, whole, "split at {at}");
    if let Ok(Some(status)) = whole {
        assert!(status <= 999, "three digits: {status}");
    }
});
