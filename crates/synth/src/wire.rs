//! Writing one RTP packet with `manifold-rtp`'s builder.

use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::{BuildError, RtpBuilder, FIXED_HEADER_LEN};
use manifold_rtp::{RtpTime, Ssrc};

use crate::stamps::{ExtensionIds, StampData, EXTENSION_BLOCK_LEN};

/// Bytes before the payload of every packet this crate writes: the 12-byte fixed header (no
/// CSRCs) and the 24-byte extension block.
pub(crate) const HEADER_LEN: usize = FIXED_HEADER_LEN + EXTENSION_BLOCK_LEN;

/// The per-packet fields of one RTP packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) payload_type: u8,
    pub(crate) marker: bool,
    pub(crate) seq: u16,
    pub(crate) timestamp: RtpTime,
    pub(crate) ssrc: Ssrc,
    pub(crate) ids: ExtensionIds,
    pub(crate) capture_time: NtpTime,
    pub(crate) counter: u64,
}

/// Clears `out` and writes the RTP packet: header, both stamps, `payload`.
///
/// It fails only on what [`crate::SyntheticStream::with_clip`] validates up front (payload
/// type, extension ids, a payload that fits the largest datagram), so the stream, having
/// checked one packet of the largest size at construction, never sees an error here.
pub(crate) fn write_packet(
    out: &mut Vec<u8>,
    header: &Header,
    payload: &[u8],
) -> Result<usize, BuildError> {
    out.clear();
    let stamps = StampData::new(header.capture_time, header.counter);
    let elements = stamps.elements(header.ids);
    RtpBuilder::new(header.payload_type, header.seq, header.timestamp, header.ssrc)
        .marker(header.marker)
        .extension_elements(&elements)
        .payload(payload)
        .write_to_vec(out)
}
