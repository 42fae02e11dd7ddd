//! The typed RTSP headers and the authentication headers over arbitrary text: parsing never
//! panics, and whatever parses writes back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtsp::auth::{Authorization, Challenge};
use manifold_rtsp::header::{Public, Range, RtpInfo, Session, Transport};

fn round_trip<T, E>(text: &str, parse: impl Fn(&str) -> Result<T, E>)
where
    T: std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = parse(text) {
        let written = value.to_string();
        let again = parse(&written).unwrap_or_else(|_| panic!("{written:?} does not parse back"));
        assert_eq!(again, value, "changed on a write/parse round trip via {written:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    round_trip(text, Transport::parse);
    round_trip(text, Session::parse);
    round_trip(text, Range::parse);
    round_trip(text, RtpInfo::parse);
    round_trip(text, Public::parse);
    let _ = Challenge::parse_list(text);
    let _ = Authorization::parse(text);
});
