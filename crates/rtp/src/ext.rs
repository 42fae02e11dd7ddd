//! RFC 8285 header extension elements: a reader for the one-byte (`0xBEDE`) and two-byte
//! (`0x100X`) forms, a writer that picks the smaller form and pads to 32-bit words, and the
//! abs-capture-time element our synthetic source stamps on every packet.
//!
//! ```text
//! one-byte form (profile 0xBEDE)      two-byte form (profile 0x100X)
//! +-------+-------+--------------+    +--------+--------+--------------+
//! | ID:4  | L-1:4 | data (L)     |    | ID:8   | L:8    | data (L)     |
//! +-------+-------+--------------+    +--------+--------+--------------+
//! ```
//! In both forms a zero byte between elements is padding; in the one-byte form ID 15 ends the
//! list (RFC 8285 §4.2).

use crate::ntp::NtpTime;

/// Profile value of the one-byte form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// Profile value of the two-byte form; the low 4 bits ("appbits") are free for the application.
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// URI that SDP `a=extmap` uses for [`AbsCaptureTime`].
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// Why header extension elements could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtError {
    /// The extension's profile is neither `0xBEDE` nor `0x100X`.
    #[error("extension profile {0:#06x} is not an RFC 8285 form")]
    UnknownProfile(u16),
    /// An element's length runs past the end of the extension data.
    #[error("element {id} at offset {offset} needs {needed} bytes, {available} remain")]
    ElementOverrun {
        /// The element's ID.
        id: u8,
        /// Offset of the element's first byte in the extension data.
        offset: usize,
        /// Bytes the element needs, header included.
        needed: usize,
        /// Bytes left from `offset` to the end of the extension data.
        available: usize,
    },
    /// ID 0 is reserved for padding and cannot name an element.
    #[error("element ID 0 is reserved for padding")]
    ReservedId,
    /// Elements carry at most 255 bytes.
    #[error("element {id} carries {len} bytes, at most 255 fit")]
    ElementTooLong {
        /// The element's ID.
        id: u8,
        /// Its data length.
        len: usize,
    },
    /// The output buffer is too small for the encoded block.
    #[error("extension block needs {needed} bytes, buffer has {available}")]
    BufferTooSmall {
        /// The block's length.
        needed: usize,
        /// The buffer's length.
        available: usize,
    },
    /// An abs-capture-time element is 8 or 16 bytes.
    #[error("abs-capture-time element of {0} bytes, expected 8 or 16")]
    AbsCaptureTimeLength(usize),
}

/// Which of the two RFC 8285 encodings a block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// 4-bit ID (1..=14), 4-bit length (1..=16 bytes).
    OneByte,
    /// 8-bit ID (1..=255), 8-bit length (0..=255 bytes).
    TwoByte,
}

impl Form {
    /// The form an extension profile announces, if any.
    pub fn of_profile(profile: u16) -> Option<Form> {
        match profile {
            ONE_BYTE_PROFILE => Some(Form::OneByte),
            p if p & 0xfff0 == TWO_BYTE_PROFILE => Some(Form::TwoByte),
            _ => None,
        }
    }

    /// The profile value that announces this form (two-byte with appbits 0).
    pub fn profile(self) -> u16 {
        match self {
            Form::OneByte => ONE_BYTE_PROFILE,
            Form::TwoByte => TWO_BYTE_PROFILE,
        }
    }

    /// Bytes of element header (ID and length) in this form.
    fn header_len(self) -> usize {
        match self {
            Form::OneByte => 1,
            Form::TwoByte => 2,
        }
    }
}

/// One header extension element: a local ID (mapped to a URI by SDP `a=extmap`) and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The local identifier, 1..=14 in the one-byte form, 1..=255 in the two-byte form.
    pub id: u8,
    /// The element data.
    pub data: &'a [u8],
}

/// Iterator over the elements of an RFC 8285 extension block.
///
/// Padding bytes are skipped. The first malformed element yields an error and ends the
/// iteration, as does ID 15 in the one-byte form.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    form: Form,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Elements<'a> {
    /// Iterates the elements of extension `data` (the bytes after the 4-byte extension header)
    /// given its `profile`.
    pub fn new(profile: u16, data: &'a [u8]) -> Result<Self, ExtError> {
        let form = Form::of_profile(profile).ok_or(ExtError::UnknownProfile(profile))?;
        Ok(Elements { form, data, pos: 0 })
    }

    /// The form of this block.
    pub fn form(&self) -> Form {
        self.form
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, ExtError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let offset = self.pos;
            let &first = self.data.get(offset)?;
            let id = match self.form {
                Form::OneByte => first >> 4,
                Form::TwoByte => first,
            };
            if id == 0 {
                // Padding. Like libwebrtc, a one-byte header with ID 0 is skipped as one byte
                // whatever its length nibble says.
                self.pos += 1;
                continue;
            }
            let available = self.data.len() - offset;
            let len = match self.form {
                Form::OneByte => {
                    if id == 15 {
                        self.pos = self.data.len();
                        return None;
                    }
                    usize::from(first & 0x0f) + 1
                }
                Form::TwoByte => match self.data.get(offset + 1) {
                    Some(&len) => usize::from(len),
                    None => {
                        self.pos = self.data.len();
                        return Some(Err(ExtError::ElementOverrun {
                            id,
                            offset,
                            needed: 2,
                            available,
                        }));
                    }
                },
            };
            let start = offset + self.form.header_len();
            let needed = self.form.header_len() + len;
            if needed > available {
                self.pos = self.data.len();
                return Some(Err(ExtError::ElementOverrun { id, offset, needed, available }));
            }
            self.pos = start + len;
            return Some(Ok(Element { id, data: &self.data[start..start + len] }));
        }
    }
}

// After the end or an error, `pos` sits at the end of the data for good.
impl std::iter::FusedIterator for Elements<'_> {}

/// Size and profile of an encoded block, as [`encoded_len`] and [`write_elements`] report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The profile to put in the RTP extension header.
    pub profile: u16,
    /// The block's length in bytes, padded to a multiple of 4.
    pub len: usize,
}

/// The form `elements` will be written in: one-byte if every ID is 1..=14 and every length
/// 1..=16, else two-byte. Fails on ID 0 or data longer than 255 bytes.
pub fn form_for(elements: &[Element<'_>]) -> Result<Form, ExtError> {
    let mut form = Form::OneByte;
    for e in elements {
        if e.id == 0 {
            return Err(ExtError::ReservedId);
        }
        if e.data.len() > 255 {
            return Err(ExtError::ElementTooLong { id: e.id, len: e.data.len() });
        }
        if e.id > 14 || e.data.is_empty() || e.data.len() > 16 {
            form = Form::TwoByte;
        }
    }
    Ok(form)
}

/// The profile and padded length of the block [`write_elements`] would write.
pub fn encoded_len(elements: &[Element<'_>]) -> Result<Layout, ExtError> {
    let form = form_for(elements)?;
    let raw: usize = elements.iter().map(|e| form.header_len() + e.data.len()).sum();
    Ok(Layout { profile: form.profile(), len: raw.next_multiple_of(4) })
}

/// Writes `elements` as an extension block (without the 4-byte RTP extension header) at the
/// start of `out`, zero-padded to 32-bit words.
pub fn write_elements(elements: &[Element<'_>], out: &mut [u8]) -> Result<Layout, ExtError> {
    let layout = encoded_len(elements)?;
    let Some(out) = out.get_mut(..layout.len) else {
        return Err(ExtError::BufferTooSmall { needed: layout.len, available: out.len() });
    };
    let form = form_for(elements)?;
    let mut at = 0;
    for e in elements {
        // Lengths were checked by form_for: 1..=16 for one-byte, ≤ 255 for two-byte.
        match form {
            Form::OneByte => {
                out[at] = e.id << 4 | (e.data.len() - 1) as u8;
            }
            Form::TwoByte => {
                out[at] = e.id;
                out[at + 1] = e.data.len() as u8;
            }
        }
        at += form.header_len();
        out[at..at + e.data.len()].copy_from_slice(e.data);
        at += e.data.len();
    }
    out[at..].fill(0);
    Ok(layout)
}

/// The abs-capture-time element (libwebrtc's `abs-capture-time`, [`ABS_CAPTURE_TIME_URI`]):
/// when the media was captured, on the capturer's NTP clock, and optionally the sender's
/// estimate of the offset between the capturer's clock and its own.
///
/// Wire format: 8 bytes of 64-bit NTP time (Q32.32 seconds since 1900), optionally followed by
/// 8 bytes of signed Q32.32 seconds of clock offset. Both big-endian.
///
/// ```
/// use manifold_rtp::ext::{AbsCaptureTime, Element};
/// use manifold_rtp::ntp::NtpTime;
///
/// let stamp = AbsCaptureTime { capture_time: NtpTime::new(3_900_000_000, 1 << 31), estimated_clock_offset: None };
/// let mut scratch = [0u8; 16];
/// let element = Element { id: 3, data: stamp.encode(&mut scratch) };
/// assert_eq!(AbsCaptureTime::decode(element.data), Ok(stamp));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbsCaptureTime {
    /// When the media was captured, on the capturer's clock.
    pub capture_time: NtpTime,
    /// Estimated capture clock offset, signed Q32.32 seconds.
    pub estimated_clock_offset: Option<i64>,
}

impl AbsCaptureTime {
    /// Length of the encoded element data: 8, or 16 with a clock offset.
    pub fn encoded_len(&self) -> usize {
        if self.estimated_clock_offset.is_some() {
            16
        } else {
            8
        }
    }

    /// Encodes into `out`, returning the element data (a prefix of `out`) to put in an
    /// [`Element`].
    pub fn encode<'b>(&self, out: &'b mut [u8; 16]) -> &'b [u8] {
        out[..8].copy_from_slice(&self.capture_time.0.to_be_bytes());
        if let Some(offset) = self.estimated_clock_offset {
            out[8..].copy_from_slice(&offset.to_be_bytes());
        }
        &out[..self.encoded_len()]
    }

    /// Decodes element data of 8 or 16 bytes.
    pub fn decode(data: &[u8]) -> Result<Self, ExtError> {
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&data[at..at + 8]);
            b
        };
        match data.len() {
            8 => Ok(AbsCaptureTime {
                capture_time: NtpTime(u64::from_be_bytes(word(0))),
                estimated_clock_offset: None,
            }),
            16 => Ok(AbsCaptureTime {
                capture_time: NtpTime(u64::from_be_bytes(word(0))),
                estimated_clock_offset: Some(i64::from_be_bytes(word(8))),
            }),
            n => Err(ExtError::AbsCaptureTimeLength(n)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(profile: u16, data: &[u8]) -> Vec<Result<(u8, Vec<u8>), ExtError>> {
        Elements::new(profile, data).unwrap().map(|r| r.map(|e| (e.id, e.data.to_vec()))).collect()
    }

    #[test]
    fn form_of_profile() {
        assert_eq!(Form::of_profile(0xbede), Some(Form::OneByte));
        assert_eq!(Form::of_profile(0x1000), Some(Form::TwoByte));
        assert_eq!(Form::of_profile(0x100f), Some(Form::TwoByte));
        assert_eq!(Form::of_profile(0x1010), None);
        assert_eq!(Elements::new(0xabcd, &[]).unwrap_err(), ExtError::UnknownProfile(0xabcd));
    }

    #[test]
    fn one_byte_with_padding_and_terminator() {
        // id 1 len 2, padding, id 2 len 1, ID 0 (skipped as one byte), then id 15 ends it.
        let data = [0x11, 0xaa, 0xbb, 0x00, 0x20, 0xcc, 0x05, 0xf0, 0x31, 1, 2, 0];
        assert_eq!(
            collect(ONE_BYTE_PROFILE, &data),
            [Ok((1, vec![0xaa, 0xbb])), Ok((2, vec![0xcc]))]
        );
    }

    #[test]
    fn one_byte_overrun() {
        let data = [0x10, 0xaa, 0x23, 0x01, 0x02];
        assert_eq!(
            collect(ONE_BYTE_PROFILE, &data),
            [
                Ok((1, vec![0xaa])),
                Err(ExtError::ElementOverrun { id: 2, offset: 2, needed: 5, available: 3 })
            ]
        );
    }

    #[test]
    fn two_byte_elements() {
        // id 7 empty, padding, id 200 with 3 bytes, padding.
        let data = [7, 0, 0, 200, 3, 1, 2, 3, 0, 0, 0, 0];
        assert_eq!(collect(0x1003, &data), [Ok((7, vec![])), Ok((200, vec![1, 2, 3]))]);
        // ID 15 is an ordinary ID in the two-byte form.
        assert_eq!(collect(TWO_BYTE_PROFILE, &[15, 1, 9, 0]), [Ok((15, vec![9]))]);
    }

    #[test]
    fn two_byte_overruns() {
        assert_eq!(
            collect(TWO_BYTE_PROFILE, &[0, 0, 0, 5]),
            [Err(ExtError::ElementOverrun { id: 5, offset: 3, needed: 2, available: 1 })]
        );
        assert_eq!(
            collect(TWO_BYTE_PROFILE, &[5, 4, 1, 2]),
            [Err(ExtError::ElementOverrun { id: 5, offset: 0, needed: 6, available: 4 })]
        );
    }

    #[test]
    fn writer_picks_form_and_pads() {
        let one = [Element { id: 1, data: &[1, 2, 3] }];
        let mut out = [0xffu8; 8];
        assert_eq!(
            write_elements(&one, &mut out),
            Ok(Layout { profile: ONE_BYTE_PROFILE, len: 4 })
        );
        assert_eq!(out[..4], [0x12, 1, 2, 3]);
        let empty_data = [Element { id: 1, data: &[] }];
        assert_eq!(form_for(&empty_data), Ok(Form::TwoByte));
        let id15 = [Element { id: 15, data: &[1] }];
        assert_eq!(form_for(&id15), Ok(Form::TwoByte));
        let long = [Element { id: 1, data: &[0; 17] }];
        assert_eq!(form_for(&long), Ok(Form::TwoByte));
        let mut out = [0xffu8; 8];
        assert_eq!(
            write_elements(&id15, &mut out),
            Ok(Layout { profile: TWO_BYTE_PROFILE, len: 4 })
        );
        assert_eq!(out[..4], [15, 1, 1, 0]);
        assert_eq!(encoded_len(&[]), Ok(Layout { profile: ONE_BYTE_PROFILE, len: 0 }));
    }

    #[test]
    fn writer_errors() {
        assert_eq!(encoded_len(&[Element { id: 0, data: &[1] }]), Err(ExtError::ReservedId));
        assert_eq!(
            encoded_len(&[Element { id: 9, data: &[0; 256] }]),
            Err(ExtError::ElementTooLong { id: 9, len: 256 })
        );
        let mut out = [0u8; 3];
        assert_eq!(
            write_elements(&[Element { id: 1, data: &[1, 2, 3] }], &mut out),
            Err(ExtError::BufferTooSmall { needed: 4, available: 3 })
        );
    }

    #[test]
    fn abs_capture_time() {
        let t = AbsCaptureTime {
            capture_time: NtpTime(0x0102_0304_0506_0708),
            estimated_clock_offset: None,
        };
        let mut buf = [0u8; 16];
        assert_eq!(t.encode(&mut buf), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(AbsCaptureTime::decode(&buf[..8]), Ok(t));
        let t = AbsCaptureTime { capture_time: NtpTime(7), estimated_clock_offset: Some(-1) };
        let data = t.encode(&mut buf).to_vec();
        assert_eq!(data.len(), 16);
        assert_eq!(data[8..], [0xff; 8]);
        assert_eq!(AbsCaptureTime::decode(&data), Ok(t));
        assert_eq!(AbsCaptureTime::decode(&data[..9]), Err(ExtError::AbsCaptureTimeLength(9)));
        assert_eq!(AbsCaptureTime::decode(&[]), Err(ExtError::AbsCaptureTimeLength(0)));
    }

    /// Element lists: half the time all one-byte-compatible, otherwise anything writable.
    pub(crate) fn elements_strategy() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        let one_byte =
            prop::collection::vec((1u8..=14, prop::collection::vec(any::<u8>(), 1..=16)), 0..6);
        let two_byte =
            prop::collection::vec((1u8..=255, prop::collection::vec(any::<u8>(), 0..40)), 0..6);
        prop_oneof![one_byte, two_byte]
    }

    proptest! {
        #[test]
        fn block_round_trip(list in elements_strategy()) {
            let elements: Vec<Element<'_>> =
                list.iter().map(|(id, data)| Element { id: *id, data }).collect();
            let layout = encoded_len(&elements).unwrap();
            let mut out = vec![0xa5; layout.len + 3];
            prop_assert_eq!(write_elements(&elements, &mut out), Ok(layout));
            prop_assert_eq!(layout.len % 4, 0);
            let one_byte = list.iter().all(|(id, d)| *id <= 14 && (1..=16).contains(&d.len()));
            let expected = if one_byte { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE };
            prop_assert_eq!(layout.profile, expected);
            prop_assert_eq!(collect(layout.profile, &out[..layout.len]),
                list.into_iter().map(Ok).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_blocks_never_panic(profile in prop_oneof![Just(0xbede_u16), Just(0x1000)],
                                        data in prop::collection::vec(any::<u8>(), 0..40)) {
            for e in Elements::new(profile, &data).unwrap().flatten() {
                prop_assert!(e.id != 0);
                prop_assert!(e.data.len() < data.len());
            }
        }
    }
}
