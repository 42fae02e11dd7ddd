//! The capture-time SEI reader over arbitrary NAL units: it must never panic, and a time it
//! writes must read back, whatever NAL units surround it in the access unit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtmp::sei;
use manifold_rtp::ntp::NtpTime;

fuzz_target!(|data: &[u8]| {
    let _ = sei::parse_capture_time(data);
    // The same bytes as the payload of an SEI NAL unit.
    let mut nal = vec![6u8];
    nal.extend_from_slice(data);
    let _ = sei::parse_capture_time(&nal);
    // Any 8 bytes as a time round-trip.
    if let Some(b) = data.get(..8) {
        let time = NtpTime(u64::from_be_bytes(b.try_into().expect("8 bytes")));
        assert_eq!(sei::parse_capture_time(&sei::capture_time_nal(time)), Ok(Some(time)));
    }
});
