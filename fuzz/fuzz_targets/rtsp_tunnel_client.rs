//! The server's answer to a tunnel's GET, as the client reads it: never panics, is the same
//! whole and cut at any point (the first input byte picks the cut), and a head it accepts is
//! a 200 that ends where it says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtsp::tunnel::client::{parse_response_head, MAX_RESPONSE_HEAD};

fuzz_target!(|data: &[u8]| {
    let whole = parse_response_head(data, MAX_RESPONSE_HEAD);
    if let Ok(Some((head, used))) = &whole {
        assert_eq!(head.status, 200);
        assert!(*used <= data.len() && data[..*used].ends_with(b"\r\n\r\n"));
    }
    let Some(&first) = data.first() else { return };
    let cut = usize::from(first) % (data.len() + 1);
    match parse_response_head(&data[..cut], MAX_RESPONSE_HEAD) {
        // A prefix is either still waiting, or already as decided as the whole.
        Ok(None) => {}
        Ok(Some(prefix)) => assert_eq!(Ok(Some(prefix)), whole, "a complete head changed"),
        Err(e) => assert!(whole.is_err(), "a prefix failed ({e}) where the whole did not"),
    }
});
