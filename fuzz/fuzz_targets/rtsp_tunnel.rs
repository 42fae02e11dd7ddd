//! An RTSP-over-HTTP tunnel half's first bytes: the HTTP head never panics, and a POST body's
//! base64 decodes to the same bytes however it is split (the first input byte picks the
//! split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtsp::tunnel::{is_http, parse_head, Base64Stream};

fuzz_target!(|data: &[u8]| {
    let _ = is_http(data);
    let Ok(Some((_, used))) = parse_head(data, 8192) else { return };
    let body = &data[used..];
    let mut whole = Vec::new();
    let whole_ok = Base64Stream::new().feed(body, &mut whole).is_ok();
    let cut = usize::from(data[0]) % (body.len() + 1);
    let mut d = Base64Stream::new();
    let mut split = Vec::new();
    let split_ok = d.feed(&body[..cut], &mut split).is_ok() && d.feed(&body[cut..], &mut split).is_ok();
    assert_eq!(whole_ok, split_ok, "a split changed whether the body decodes");
    if whole_ok {
        assert_eq!(whole, split, "a split changed the decoded bytes");
    }
});
