//! The metrics endpoint's request-head parser, as its connection loop calls it: on the buffer
//! as it grows, answering at the first result that is not "need more". That answer must not
//! depend on how the bytes arrived (every split point of a short input, a few of a long one),
//! and an accepted request names an absolute path with neither query nor fragment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_relay::fuzzing::{metrics_http_request, MetricsRequest, METRICS_MAX_REQUEST};

/// Inputs up to this length are fed one byte at a time (quadratic, so kept short).
const EVERY_BYTE: usize = 512;

fuzz_target!(|data: &[u8]| {
    let whole = metrics_http_request(data);
    if let Ok(Some(MetricsRequest { method, path, authorization })) = whole {
        assert!(path.starts_with('/'), "accepted path {path:?}");
        assert!(!path.contains(['?', '#']), "query or fragment kept in {path:?}");
        assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()), "{method:?}");
        if let Some(a) = authorization {
            assert_eq!(a, a.trim(), "authorization not trimmed");
        }
    }
    if let Err(status) = whole {
        assert!(status == 400 || status == 431, "refused with {status}");
    }
    // The first answer over the growing buffer is what the connection acts on.
    let step = if data.len() <= EVERY_BYTE { 1 } else { data.len() / 64 };
    let mut first = None;
    for end in (0..data.len()).step_by(step) {
        match metrics_http_request(&data[..end]) {
            Ok(None) => {
                assert!(end < METRICS_MAX_REQUEST, "{end} bytes without an answer");
            }
            answer => {
                first = Some((end, answer));
                break;
            }
        }
    }
    if let Some((end, answer)) = first {
        assert_eq!(answer, whole, "answered differently after {end} of {} bytes", data.len());
    }
});
