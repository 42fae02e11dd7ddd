//! The pure pieces of the relay's request handling, over arbitrary input: the interleaved
//! channel pair a SETUP gets (only an even `n-(n+1)` pair, never one another track holds, the
//! one asked for or else the lowest free one, `None` only when nothing fits), the stream path
//! of a Request-URI (absolute, no query, fragment or trailing slash, and stable when put back
//! into a URL) and the track of a SETUP URL (`<stream>/trackID=N` splits back into its parts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_relay::fuzzing::{interleaved_pair, split_track, url_path};

fn channels(data: &[u8]) {
    let [flag, first, last, taken @ ..] = data else { return };
    let asked = (flag & 1 == 1).then_some((*first, *last));
    let free = |n: u8| n % 2 == 0 && n < 255 && !taken.contains(&n);
    match (asked, interleaved_pair(asked, taken)) {
        (Some(a), Some(got)) => {
            assert_eq!(got, a, "not the pair asked for");
            assert!(free(a.0) && a.1 == a.0 + 1, "{a:?} granted with {taken:?} taken");
        }
        (Some(a), None) => {
            assert!(!(free(a.0) && a.1 == a.0.wrapping_add(1)), "{a:?} refused, {taken:?} taken")
        }
        (None, Some((rtp, rtcp))) => {
            assert!(free(rtp) && rtcp == rtp + 1, "({rtp}, {rtcp}) with {taken:?} taken");
            assert!((0..rtp).all(|n| !free(n)), "({rtp}, {rtcp}) is not the lowest free pair");
        }
        (None, None) => assert!((0..=255).all(|n| !free(n)), "a free pair left: {taken:?}"),
    }
}

fn urls(text: &str) {
    let path = url_path(text);
    assert!(path.starts_with('/'), "{text:?} → {path:?}");
    assert!(path == "/" || !path.ends_with('/'), "{text:?} → {path:?}");
    assert!(!path.contains(['?', '#']), "{text:?} → {path:?}");
    for url in [format!("rtsp://h{path}"), format!("rtsp://h:8554{path}/?q=1#f")] {
        assert_eq!(url_path(&url), path, "{text:?} → {path:?} → {url:?}");
    }
    if let Some((stream, n)) = split_track(text) {
        assert!(text.len() > stream.len(), "{text:?}");
        assert_eq!(split_track(&format!("{stream}/trackID={n}")), Some((stream, n)));
    }
    for n in [0, 1, 7, usize::MAX] {
        for tail in ["", "/"] {
            let setup = format!("{text}/trackID={n}{tail}");
            assert_eq!(split_track(&setup), Some((text, n)), "{setup:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    channels(data);
    if let Ok(text) = std::str::from_utf8(data) {
        urls(text);
    }
});
