//! The stream's SDP media description, as plain text (no dependency on the SDP crate).

use std::fmt::Write as _;

use crate::stamps::{ExtensionIds, ABS_CAPTURE_TIME_URI, PACKET_COUNTER_URI};

/// The pieces of SDP that describe a synthetic stream. Attribute values are given without
/// the `a=` and without the payload type, so they can be fed to an SDP builder, or rendered
/// whole with [`MediaSdp::media_section`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSdp {
    /// The RTP payload type (96 by default).
    pub payload_type: u8,
    /// The `a=rtpmap` encoding: always `H264/90000`.
    pub encoding: &'static str,
    /// The `a=fmtp` parameters: `packetization-mode=1;profile-level-id=…;sprop-parameter-sets=…`.
    pub fmtp: String,
    /// The `a=framerate` value (frames per second).
    pub framerate: u32,
    /// `a=extmap` entries as `(id, uri)`: abs-capture-time, then the packet counter.
    pub extmaps: [(u8, &'static str); 2],
}

impl MediaSdp {
    /// Builds the description from the clip's parameters.
    pub(crate) fn new(
        payload_type: u8,
        profile_level_id: &str,
        sprop_parameter_sets: &str,
        framerate: u32,
        ids: ExtensionIds,
    ) -> MediaSdp {
        MediaSdp {
            payload_type,
            encoding: "H264/90000",
            fmtp: format!(
                "packetization-mode=1;profile-level-id={profile_level_id};\
                 sprop-parameter-sets={sprop_parameter_sets}"
            ),
            framerate,
            extmaps: [(ids.capture_time, ABS_CAPTURE_TIME_URI), (ids.counter, PACKET_COUNTER_URI)],
        }
    }

    /// The attribute lines, each without `a=` and line ending: `rtpmap:…`, `fmtp:…`,
    /// `framerate:…`, then one `extmap:…` per extension.
    pub fn attributes(&self) -> Vec<String> {
        let pt = self.payload_type;
        let mut lines = vec![
            format!("rtpmap:{pt} {}", self.encoding),
            format!("fmtp:{pt} {}", self.fmtp),
            format!("framerate:{}", self.framerate),
        ];
        lines.extend(self.extmaps.iter().map(|(id, uri)| format!("extmap:{id} {uri}")));
        lines
    }

    /// A whole media section, CRLF-terminated lines: `m=video {port} RTP/AVP {pt}`, the
    /// attributes, and `a=control:{control}` when given.
    pub fn media_section(&self, port: u16, control: Option<&str>) -> String {
        let mut out = format!("m=video {port} RTP/AVP {}\r\n", self.payload_type);
        for line in self.attributes() {
            let _ = write!(out, "a={line}\r\n");
        }
        if let Some(control) = control {
            let _ = write!(out, "a=control:{control}\r\n");
        }
        out
    }
}

/// Standard base64 (RFC 4648 §4) with padding, as `sprop-parameter-sets` uses.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn media_section_text() {
        let sdp = MediaSdp::new(96, "42c00c", "Z0I=,aM4=", 25, ExtensionIds::default());
        assert_eq!(
            sdp.media_section(0, Some("trackID=0")),
            "m=video 0 RTP/AVP 96\r\n\
             a=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id=42c00c;sprop-parameter-sets=Z0I=,aM4=\r\n\
             a=framerate:25\r\n\
             a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n\
             a=extmap:2 urn:manifold:rtp-hdrext:packet-counter\r\n\
             a=control:trackID=0\r\n"
        );
    }
}
