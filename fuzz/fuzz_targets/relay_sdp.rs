//! The SDP the relay gives readers, made from any SDP a publisher or upstream can send: it
//! parses, keeps every media section and every line but the controls, sets the aggregate
//! control `*` and each media's `trackID=N`, is a fixed point, and the SETUP URLs a client
//! resolves from it against the DESCRIBE answer's `Content-Base` lead the relay back to the
//! same stream path and to track N.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_relay::fuzzing::{relay_sdp, split_track, url_path};
use manifold_sdp::Sdp;

/// DESCRIBE URLs as clients send them: plain, with a trailing slash, with a query.
const DESCRIBE: &[&str] =
    &["rtsp://127.0.0.1:8554/cam", "rtsp://h/live/stream/", "rtsp://h:554/cam?token=x"];

/// The SDP without any `a=control`, for comparing everything else.
fn without_controls(mut sdp: Sdp) -> Sdp {
    sdp.remove_attribute("control");
    for m in sdp.media_mut() {
        m.remove_attribute("control");
    }
    sdp
}

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else { return };
    let out = relay_sdp(sdp.clone());
    let again = Sdp::parse(out.as_bytes())
        .unwrap_or_else(|e| panic!("the relay's SDP does not parse ({e}):\n{out}"));
    assert_eq!(again.media().len(), sdp.media().len(), "media sections lost or added");
    assert_eq!(again.control(), Some("*"));
    for (i, m) in again.media().iter().enumerate() {
        assert_eq!(m.control(), Some(format!("trackID={i}").as_str()), "media {i}");
    }
    assert_eq!(
        without_controls(again.clone()),
        without_controls(sdp),
        "lines other than controls changed"
    );
    assert_eq!(relay_sdp(again.clone()), out, "not a fixed point");
    for uri in DESCRIBE {
        // What the relay answers DESCRIBE with (control.rs), and what a client makes of it.
        let content_base = format!("{}/", uri.trim_end_matches('/'));
        for (i, setup) in again.media_urls(&content_base).iter().enumerate() {
            let (stream, track) =
                split_track(setup).unwrap_or_else(|| panic!("SETUP URL {setup:?} names no track"));
            assert_eq!(track, i, "SETUP URL {setup:?}");
            assert_eq!(url_path(stream), url_path(uri), "SETUP URL {setup:?} of {uri}");
        }
    }
});
