//! Test-side readers of what the session produces: RTP back to NAL units and AAC frames.
#![allow(dead_code)] // each test file uses part of it

use manifold_rtp::codec::h264::Payload;
use manifold_rtp::codec::Fragment;
use manifold_rtp::packet::RtpPacket;

/// RFC 6184 payloads back to NAL units, grouped into access units by the marker bit.
#[derive(Default)]
pub(crate) struct H264Depacketizer {
    fragment: Option<Vec<u8>>,
    unit: Vec<Vec<u8>>,
    /// Completed access units: RTP timestamp, NAL units.
    pub(crate) access_units: Vec<(u32, Vec<Vec<u8>>)>,
}

impl H264Depacketizer {
    pub(crate) fn push(&mut self, packet: &[u8]) {
        let rtp = RtpPacket::parse(packet).unwrap();
        let payload = rtp.payload();
        for unit in Payload::parse(payload).unwrap().nal_units() {
            match unit.fragment {
                Fragment::Whole => self.unit.push(unit.data.to_vec()),
                Fragment::Start => {
                    assert!(self.fragment.is_none(), "FU-A start inside a fragment");
                    let header = (payload[0] & 0xe0) | unit.nal_type.0;
                    self.fragment =
                        Some(std::iter::once(header).chain(unit.data.iter().copied()).collect());
                }
                Fragment::Middle => self.fragment.as_mut().unwrap().extend_from_slice(unit.data),
                Fragment::End => {
                    let mut nal = self.fragment.take().unwrap();
                    nal.extend_from_slice(unit.data);
                    self.unit.push(nal);
                }
            }
        }
        if rtp.marker() {
            assert!(self.fragment.is_none(), "marker inside a fragment");
            self.access_units.push((rtp.timestamp().0, std::mem::take(&mut self.unit)));
        }
    }
}

/// RFC 3640 AAC-hbr payloads back to access units.
#[derive(Default)]
pub(crate) struct AacDepacketizer {
    partial: Vec<u8>,
    /// Completed AUs: RTP timestamp, bytes.
    pub(crate) frames: Vec<(u32, Vec<u8>)>,
}

impl AacDepacketizer {
    pub(crate) fn push(&mut self, packet: &[u8]) {
        let rtp = RtpPacket::parse(packet).unwrap();
        let p = rtp.payload();
        let headers_bits = u16::from_be_bytes([p[0], p[1]]);
        assert_eq!(headers_bits, 16, "one AU header of 16 bits");
        let size = usize::from(u16::from_be_bytes([p[2], p[3]]) >> 3);
        self.partial.extend_from_slice(&p[4..]);
        if rtp.marker() {
            assert_eq!(self.partial.len(), size, "AU size in the header");
            self.frames.push((rtp.timestamp().0, std::mem::take(&mut self.partial)));
        }
    }
}

/// Splits length-prefixed (4-byte) NAL units, independently of the crate's own reader.
pub(crate) fn length_prefixed(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        out.push(data[4..4 + len].to_vec());
        data = &data[4 + len..];
    }
    out
}
