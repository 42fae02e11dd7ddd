//! H.264 `sprop-parameter-sets` (RFC 6184 §8.1): base64 NAL units separated by commas.

use crate::error::ValueError;

/// Decodes a `sprop-parameter-sets` value into raw NAL units (without start codes), in order.
/// Empty entries (a trailing comma) are skipped; an entry that is not base64 is an error.
pub fn decode_parameter_sets(value: &str) -> Result<Vec<Vec<u8>>, ValueError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| decode_base64(s).ok_or(ValueError::new("invalid base64 in sprop-parameter-sets")))
        .collect()
}

/// Standard base64 (RFC 4648 §4), padding optional; the URL-safe `-`/`_` are also accepted.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.strip_suffix("==").or_else(|| s.strip_suffix('=')).unwrap_or(s);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(v)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    // One character alone in its final quantum carries only 6 bits: not a whole byte.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(decode_base64(enc).unwrap(), plain.as_bytes(), "{enc}");
            assert_eq!(decode_base64(enc.trim_end_matches('=')).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode_base64("+/-_").unwrap(), [0xfb, 0xff, 0xbf]);
        for bad in ["Z", "Zm9vY", "Zm9v!", "Zg===", "Z=g="] {
            assert!(decode_base64(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn gstreamer_sps_pps() {
        let sets =
            decode_parameter_sets("Z0LAHtkAoC/5cBagwMDUoAAAAwAgAAAGUeLFyQ==,aMuMsg==").unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0][0] & 0x1f, 7, "SPS");
        assert_eq!(&sets[0][..4], [0x67, 0x42, 0xc0, 0x1e]);
        assert_eq!(sets[1], [0x68, 0xcb, 0x8c, 0xb2], "PPS");
        assert_eq!(decode_parameter_sets("aMuMsg==,").unwrap().len(), 1);
        assert!(decode_parameter_sets("aMuMsg==,@@").is_err());
    }
}
