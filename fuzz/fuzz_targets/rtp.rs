//! RTP over arbitrary bytes: the packet view, its header extension elements and the H.264 and
//! H.265 payload inspection never panic, and a parsed packet rebuilds to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use manifold_rtp::codec::{h264, h265};
use manifold_rtp::packet::{RtpBuilder, RtpPacket};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = RtpPacket::parse(data) else { return };
    if let Some(ext) = packet.extension() {
        if let Ok(elements) = ext.elements() {
            for element in elements {
                let _ = element;
            }
        }
    }
    let payload = packet.payload();
    if let Ok(p) = h264::Payload::parse(payload) {
        let _ = p.nal_units().count();
        let _ = p.parameter_sets().count();
        let _ = p.starts_keyframe();
    }
    if let Ok(p) = h265::Payload::parse(payload) {
        let _ = p.nal_units().count();
        let _ = p.parameter_sets().count();
        let _ = p.starts_keyframe();
    }

    // Rebuild from the view: same header fields, same extension, same payload and padding.
    let csrcs: Vec<_> = packet.csrcs().collect();
    let builder = RtpBuilder::new(
        packet.payload_type(),
        packet.sequence(),
        packet.timestamp(),
        packet.ssrc(),
    )
    .marker(packet.marker())
    .csrcs(&csrcs)
    .payload(payload)
    .padding(packet.padding());
    let builder = match packet.extension() {
        Some(ext) => builder.extension(ext.profile, ext.data),
        None => builder,
    };
    let mut out = Vec::new();
    if builder.write_to_vec(&mut out).is_ok() && packet.padding() <= 1 {
        // Padding bytes other than the count are not preserved by design; compare otherwise.
        assert_eq!(out, data, "RTP packet changed on a parse/build round trip");
    }
});
