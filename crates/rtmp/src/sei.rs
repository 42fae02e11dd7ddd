//! Capture times through RTMP: an H.264 SEI `user_data_unregistered` message (ITU-T H.264
//! §D.1.7) with manifold's UUID and a 64-bit NTP timestamp.
//!
//! The synthetic stream stamps every RTP packet with abs-capture-time, an RTP header
//! extension that FLV has no place for. A tag-level field (a custom AMF data message per
//! frame) would reach the relay but is tied to RTMP's message order, and ffmpeg or an RTMP
//! server in between drops unknown data messages; an SEI rides inside the access unit
//! itself, so it stays with its frame through any FLV hop, and decoders ignore it
//! (§D.2.7: unregistered user data has no effect on decoding). `manifold source rtmp://`
//! puts one in front of each access unit; the relay's RTMP ingest reads it back, removes it,
//! and stamps the frame's RTP packets with the same abs-capture-time, so readers measure
//! end-to-end latency as for an RTSP-fed stream.
//!
//! The NAL unit this module writes: header `0x06`, payload type 5, payload size 24, the
//! 16-byte UUID, the 8-byte NTP time (Q32.32 seconds since 1900), `rbsp_trailing_bits`, with
//! emulation prevention bytes (§7.4.1) where the time's bytes need them.

use manifold_rtp::ntp::NtpTime;

/// manifold's UUID for a capture-time SEI (`ab63863a-bbbc-4d28-9173-d62a6e07942c`).
pub const CAPTURE_TIME_UUID: [u8; 16] = [
    0xab, 0x63, 0x86, 0x3a, 0xbb, 0xbc, 0x4d, 0x28, 0x91, 0x73, 0xd6, 0x2a, 0x6e, 0x07, 0x94, 0x2c,
];
/// The H.264 NAL unit type of SEI.
const SEI_NAL_TYPE: u8 = 6;
/// SEI payload type `user_data_unregistered`.
const USER_DATA_UNREGISTERED: u32 = 5;
/// The payload this module writes: UUID and NTP time.
const PAYLOAD_LEN: usize = 16 + 8;
/// The most SEI messages read from one NAL unit: real encoders put a handful in one; the
/// bound keeps a hostile NAL of one-byte messages from costing more than its length.
pub const MAX_MESSAGES: usize = 64;

/// Why an SEI NAL unit could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeiError {
    /// The NAL unit ends inside a message's type, size or payload.
    #[error("SEI cut off at RBSP byte {at}")]
    Truncated {
        /// Where more bytes were needed, in the RBSP (emulation prevention removed).
        at: usize,
    },
    /// More messages than [`MAX_MESSAGES`].
    #[error("more than {MAX_MESSAGES} SEI messages in one NAL unit")]
    TooManyMessages,
}

/// The SEI NAL unit carrying `time` (see the [module docs](self)).
pub fn capture_time_nal(time: NtpTime) -> Vec<u8> {
    let mut rbsp = Vec::with_capacity(2 + PAYLOAD_LEN + 1);
    rbsp.push(USER_DATA_UNREGISTERED as u8);
    rbsp.push(PAYLOAD_LEN as u8);
    rbsp.extend_from_slice(&CAPTURE_TIME_UUID);
    rbsp.extend_from_slice(&time.0.to_be_bytes());
    rbsp.push(0x80);
    let mut nal = vec![SEI_NAL_TYPE];
    let mut zeros = 0;
    for &b in &rbsp {
        // §7.4.1: 00 00 followed by 00..=03 needs an emulation prevention byte.
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        nal.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    nal
}

/// Whether `nal` is an H.264 SEI NAL unit (by its header's type).
pub fn is_sei(nal: &[u8]) -> bool {
    nal.first().is_some_and(|h| h & 0x1f == SEI_NAL_TYPE)
}

/// Reads the capture time from an H.264 SEI NAL unit (header byte included, emulation
/// prevention bytes in place): `Ok(Some(time))` when one of its messages is manifold's
/// `user_data_unregistered`, `Ok(None)` when none is (or `nal` is no SEI), an error when
/// the messages are malformed before one is found.
pub fn parse_capture_time(nal: &[u8]) -> Result<Option<NtpTime>, SeiError> {
    if !is_sei(nal) {
        return Ok(None);
    }
    let rbsp = unescape(&nal[1..]);
    let mut at = 0;
    for _ in 0..MAX_MESSAGES {
        // rbsp_trailing_bits (0x80) or nothing left: no more messages (§7.3.2.3.1).
        if rbsp.len() <= at || rbsp[at..] == [0x80] {
            return Ok(None);
        }
        let kind = read_ff_coded(&rbsp, &mut at)?;
        let size = read_ff_coded(&rbsp, &mut at)? as usize;
        let end = at.checked_add(size).filter(|&e| e <= rbsp.len());
        let end = end.ok_or(SeiError::Truncated { at: rbsp.len() })?;
        let payload = &rbsp[at..end];
        if kind == USER_DATA_UNREGISTERED && payload.len() >= PAYLOAD_LEN {
            if let Some(time) = payload.strip_prefix(&CAPTURE_TIME_UUID[..]) {
                let mut ntp = [0u8; 8];
                ntp.copy_from_slice(&time[..8]);
                return Ok(Some(NtpTime(u64::from_be_bytes(ntp))));
            }
        }
        at = end;
    }
    Err(SeiError::TooManyMessages)
}

/// An SEI payload type or size: `0xFF` bytes adding 255 each, then a last byte (§7.3.2.3.1).
fn read_ff_coded(rbsp: &[u8], at: &mut usize) -> Result<u32, SeiError> {
    let mut value = 0u32;
    loop {
        let &b = rbsp.get(*at).ok_or(SeiError::Truncated { at: *at })?;
        *at += 1;
        // At most the NAL's length in 0xFF bytes, so no overflow short of 16 MiB NALs;
        // saturate anyway.
        value = value.saturating_add(u32::from(b));
        if b != 0xff {
            return Ok(value);
        }
    }
}

/// The RBSP of a NAL unit's payload: every `00 00 03` loses its `03` (§7.4.1).
fn unescape(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut zeros = 0;
    for &b in escaped {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_with_emulation_prevention() {
        let plain = NtpTime(0x1234_5678_9abc_def0);
        let nal = capture_time_nal(plain);
        assert_eq!(nal.len(), 1 + 2 + 24 + 1);
        assert_eq!(&nal[..3], &[6, 5, 24]);
        assert_eq!(parse_capture_time(&nal), Ok(Some(plain)));
        // Zero bytes in the time need emulation prevention, and read back through it.
        let zeros = NtpTime(0x0000_0001_0000_0000);
        let nal = capture_time_nal(zeros);
        assert!(nal.windows(3).any(|w| w == [0, 0, 3]), "{nal:02x?}");
        assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] < 3), "{nal:02x?}");
        assert_eq!(parse_capture_time(&nal), Ok(Some(zeros)));
    }

    #[test]
    fn other_seis_and_nals_carry_no_time() {
        // Not an SEI: an IDR slice.
        assert_eq!(parse_capture_time(&[0x65, 0x88, 0x84]), Ok(None));
        assert_eq!(parse_capture_time(&[]), Ok(None));
        // x264's own user_data_unregistered (another UUID), then ours in the same NAL.
        let ours = capture_time_nal(NtpTime(42));
        let mut nal = vec![6, 5, 20];
        nal.extend_from_slice(&[0xdc; 16]);
        nal.extend_from_slice(b"x264");
        assert_eq!(parse_capture_time(&[&nal[..], &[0x80]].concat()), Ok(None));
        nal.extend_from_slice(&ours[1..]);
        assert_eq!(parse_capture_time(&nal), Ok(Some(NtpTime(42))));
        // A payload type over 255 (0xFF coded) is skipped over.
        let mut long = vec![6, 0xff, 0x10, 2, 0xaa, 0xbb];
        long.extend_from_slice(&ours[1..]);
        assert_eq!(parse_capture_time(&long), Ok(Some(NtpTime(42))));
    }

    #[test]
    fn every_cut_is_a_typed_answer() {
        // The NAL cut at every byte: never a panic, never a wrong time; only the whole one
        // (and the one without its trailing bits) gives the time.
        let time = NtpTime(0x0000_0000_dead_0000);
        let nal = capture_time_nal(time);
        for cut in 0..nal.len() {
            match parse_capture_time(&nal[..cut]) {
                Ok(Some(t)) => assert_eq!((t, cut), (time, nal.len() - 1)),
                Ok(None) => assert!(cut <= 1, "cut {cut}"),
                Err(SeiError::Truncated { .. }) => {}
                Err(e) => panic!("cut {cut}: {e}"),
            }
        }
        let many = [&[6u8][..], &[1, 0].repeat(MAX_MESSAGES + 1)].concat();
        assert_eq!(parse_capture_time(&many), Err(SeiError::TooManyMessages));
    }

    proptest! {
        #[test]
        fn any_time_round_trips(t: u64) {
            let nal = capture_time_nal(NtpTime(t));
            prop_assert!(!nal.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] < 3));
            prop_assert_eq!(parse_capture_time(&nal), Ok(Some(NtpTime(t))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_capture_time(&bytes);
            if let Some(h) = bytes.first_mut() {
                *h = 6;
            }
            let _ = parse_capture_time(&bytes);
        }
    }
}
