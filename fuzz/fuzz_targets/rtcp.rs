//! RTCP over arbitrary bytes: the compound iterator, every typed view's accessors and the
//! RFC 3550 A.2 validity check never panic, and they agree on what is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtp::rtcp::{self, Packet};

fuzz_target!(|data: &[u8]| {
    let mut parsed = 0;
    let mut failed = false;
    for packet in rtcp::packets(data) {
        let Ok(packet) = packet else {
            failed = true;
            break;
        };
        parsed += 1;
        match packet {
            Packet::SenderReport(sr) => {
                let _ = (sr.ssrc(), sr.sender_info(), sr.report_blocks().count(), sr.extension());
            }
            Packet::ReceiverReport(rr) => {
                let _ = (rr.ssrc(), rr.report_blocks().count(), rr.extension());
            }
            Packet::Sdes(sdes) => {
                for chunk in sdes.chunks() {
                    let _ = (chunk.ssrc(), chunk.cname(), chunk.items().count());
                }
            }
            Packet::Bye(bye) => {
                let _ = (bye.sources().count(), bye.reason());
            }
            Packet::App(app) => {
                let _ = (app.subtype(), app.ssrc(), app.name(), app.data());
            }
            _ => {}
        }
    }
    if let Ok(count) = rtcp::validate_compound(data) {
        // A valid compound is made of packets the lenient parser also reads, all of them.
        assert!(!failed, "validate_compound accepted what packets() rejected");
        assert_eq!(count, parsed, "validate_compound and packets() disagree on the count");
    }
});
