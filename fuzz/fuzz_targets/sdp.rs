//! SDP over arbitrary bytes: parsing never panics, a parsed SDP written out parses back to the
//! same value, and the typed lookups and URL resolution never panic on what was parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_sdp::{resolve, Sdp};

fuzz_target!(|data: &[u8]| {
    let _ = Sdp::parse_strict(data);
    let Ok(sdp) = Sdp::parse(data) else { return };
    let written = sdp.to_bytes();
    let again = Sdp::parse(&written).expect("written SDP parses");
    assert_eq!(again, sdp, "SDP changed on a write/parse round trip");
    let base = "rtsp://127.0.0.1:8554/cam/";
    let _ = sdp.media_urls(base);
    let _ = sdp.range();
    for media in sdp.media() {
        let _ = media.rtpmaps().count();
        let _ = media.fmtps().count();
        let _ = media.extmaps().count();
        let _ = media.sprop_parameter_sets();
        let _ = media.framerate();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mid = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
        let _ = resolve(&text[..mid], &text[mid..]);
    }
});
