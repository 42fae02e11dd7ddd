//! The two RFC 8285 header extension elements every synthetic packet carries, and how a
//! receiver reads them back.
//!
//! - **abs-capture-time** ([`ABS_CAPTURE_TIME_URI`], default id 1): the 8-byte short form, a
//!   64-bit NTP timestamp (Q32.32 seconds since 1900) of when the packet's frame was handed
//!   to the network, as the caller of [`crate::SyntheticStream::poll_packet`] gave it.
//!   Receivers subtract it from their own NTP time of arrival to get end-to-end latency (both
//!   ends must share a clock: same host, or synchronised hosts).
//! - **packet counter** ([`PACKET_COUNTER_URI`], default id 2): an 8-byte big-endian count of
//!   the packets the source has sent, from 0, one per packet, never wrapping. A relay may
//!   rewrite RTP sequence numbers (new SSRC, continuity after an upstream reconnect) but
//!   forwards header extensions untouched, so receivers measure loss, duplicates and
//!   reordering on the counter. Readers accept 1 to 8 bytes (big-endian).
//!
//! Both elements fit the one-byte form (profile `0xBEDE`): two 9-byte elements plus 2 bytes of
//! padding, a 24-byte extension block with its 4-byte header.

pub use manifold_rtp::ext::ABS_CAPTURE_TIME_URI;
use manifold_rtp::ext::{AbsCaptureTime, Element, Elements};
use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::RtpPacket;

/// The URI of manifold's 64-bit packet counter header extension (as in `a=extmap`).
pub const PACKET_COUNTER_URI: &str = "urn:manifold:rtp-hdrext:packet-counter";

/// Bytes of the extension block every synthetic packet carries, its 4-byte header included.
pub(crate) const EXTENSION_BLOCK_LEN: usize = 24;

/// The extmap ids of the two elements. Both must be distinct and in 1..=14 (one-byte form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionIds {
    /// Id of abs-capture-time; 1 by default.
    pub capture_time: u8,
    /// Id of the packet counter; 2 by default.
    pub counter: u8,
}

impl Default for ExtensionIds {
    fn default() -> Self {
        ExtensionIds { capture_time: 1, counter: 2 }
    }
}

impl ExtensionIds {
    /// Whether both ids fit the one-byte form and differ.
    pub fn is_valid(&self) -> bool {
        (1..=14).contains(&self.capture_time)
            && (1..=14).contains(&self.counter)
            && self.capture_time != self.counter
    }
}

/// The encoded data of both elements, ready for [`Element`]s.
pub(crate) struct StampData {
    /// abs-capture-time element data, encoded by `manifold-rtp` (the first
    /// `capture_time_len` bytes).
    capture_time: [u8; 16],
    /// 8: the short form, without a clock offset.
    capture_time_len: usize,
    /// The packet counter.
    counter: [u8; 8],
}

impl StampData {
    /// Encodes a capture time and a counter.
    pub(crate) fn new(capture_time: NtpTime, counter: u64) -> StampData {
        let mut encoded = [0; 16];
        let abs = AbsCaptureTime { capture_time, estimated_clock_offset: None };
        let capture_time_len = abs.encode(&mut encoded).len();
        StampData { capture_time: encoded, capture_time_len, counter: counter.to_be_bytes() }
    }

    /// The two elements, under `ids`.
    pub(crate) fn elements(&self, ids: ExtensionIds) -> [Element<'_>; 2] {
        [
            Element { id: ids.capture_time, data: &self.capture_time[..self.capture_time_len] },
            Element { id: ids.counter, data: &self.counter },
        ]
    }
}

/// What a receiver reads from one packet's header extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamps {
    /// The abs-capture-time, if present and well-formed.
    pub capture_time: Option<NtpTime>,
    /// The packet counter, if present and well-formed.
    pub counter: Option<u64>,
}

impl Stamps {
    /// Picks the stamps out of already-parsed extension elements (e.g. the `Ok` items of
    /// `manifold_rtp::ext::Elements`). Elements with other ids are ignored; a malformed
    /// element leaves its field `None`.
    pub fn from_elements<'a>(
        elements: impl IntoIterator<Item = Element<'a>>,
        ids: ExtensionIds,
    ) -> Stamps {
        let mut stamps = Stamps::default();
        for Element { id, data } in elements {
            if id == ids.capture_time {
                stamps.capture_time = AbsCaptureTime::decode(data).ok().map(|t| t.capture_time);
            } else if id == ids.counter && (1..=8).contains(&data.len()) {
                stamps.counter = Some(data.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)));
            }
        }
        stamps
    }

    /// Reads the stamps from an extension block: its profile and the data after the 4-byte
    /// extension header. Elements after a malformed one, and blocks of a non-RFC 8285
    /// profile, are not read.
    pub fn from_extension_block(profile: u16, data: &[u8], ids: ExtensionIds) -> Stamps {
        match Elements::new(profile, data) {
            Ok(elements) => Stamps::from_elements(elements.map_while(Result::ok), ids),
            Err(_) => Stamps::default(),
        }
    }

    /// Reads the stamps from a parsed RTP packet; `Stamps::default()` if it has no header
    /// extension.
    pub fn from_packet(packet: &RtpPacket<'_>, ids: ExtensionIds) -> Stamps {
        match packet.extension() {
            Some(ext) => Stamps::from_extension_block(ext.profile, ext.data, ids),
            None => Stamps::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifold_rtp::packet::RtpBuilder;
    use manifold_rtp::{RtpTime, Ssrc};

    #[test]
    fn elements_read_back_from_a_packet() {
        let ids = ExtensionIds { capture_time: 3, counter: 14 };
        let data = StampData::new(NtpTime(0x0123_4567_89ab_cdef), 42);
        let elements = data.elements(ids);
        let mut buf = Vec::new();
        let len = RtpBuilder::new(96, 1, RtpTime(2), Ssrc(3))
            .extension_elements(&elements)
            .payload(b"\x41x")
            .write_to_vec(&mut buf)
            .unwrap();
        assert_eq!(len, 12 + EXTENSION_BLOCK_LEN + 2);
        let packet = RtpPacket::parse(&buf).unwrap();
        let stamps = Stamps::from_packet(&packet, ids);
        assert_eq!(stamps.capture_time, Some(NtpTime(0x0123_4567_89ab_cdef)));
        assert_eq!(stamps.counter, Some(42));
        assert_eq!(Stamps::from_packet(&packet, ExtensionIds::default()), Stamps::default());
    }

    #[test]
    fn two_byte_form_and_short_counter() {
        let data = [1, 8, 0, 0, 0, 1, 0, 0, 0, 2, 2, 2, 3, 4, 0, 0];
        let stamps = Stamps::from_extension_block(0x1000, &data, ExtensionIds::default());
        assert_eq!(stamps.capture_time, Some(NtpTime((1 << 32) | 2)));
        assert_eq!(stamps.counter, Some(0x0304));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_blocks_never_panic(bytes: Vec<u8>, profile: u16) {
            let _ = Stamps::from_extension_block(profile, &bytes, ExtensionIds::default());
            let _ = Stamps::from_extension_block(0xbede, &bytes, ExtensionIds::default());
        }
    }
}
