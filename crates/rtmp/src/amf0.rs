//! AMF0 (Adobe's Action Message Format, version 0): the value encoding of RTMP commands and
//! metadata. Decoding works on a whole message payload (the chunk layer has already
//! reassembled it), so a cut-off value is an error, not "need more bytes".

/// Markers of the AMF0 types this module reads and writes.
mod marker {
    pub(super) const NUMBER: u8 = 0x00;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const STRING: u8 = 0x02;
    pub(super) const OBJECT: u8 = 0x03;
    pub(super) const NULL: u8 = 0x05;
    pub(super) const UNDEFINED: u8 = 0x06;
    pub(super) const ECMA_ARRAY: u8 = 0x08;
    pub(super) const OBJECT_END: u8 = 0x09;
    pub(super) const STRICT_ARRAY: u8 = 0x0a;
    pub(super) const DATE: u8 = 0x0b;
    pub(super) const LONG_STRING: u8 = 0x0c;
}

/// How deep objects and arrays may nest: real commands and metadata use two or three
/// levels; the bound keeps a hostile payload from exhausting the stack.
pub const MAX_DEPTH: usize = 16;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (IEEE 754 double).
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A string (short or long form on the wire; written short when it fits 65535 bytes).
    /// Invalid UTF-8 is replaced, as the protocol only carries text here.
    String(String),
    /// An anonymous object: properties in wire order.
    Object(Vec<(String, Value)>),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// An ECMA (associative) array: properties in wire order.
    EcmaArray(Vec<(String, Value)>),
    /// A strict (dense) array.
    StrictArray(Vec<Value>),
    /// A date: milliseconds since the Unix epoch and a time-zone field (written 0).
    Date(f64, i16),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object or ECMA array, by name.
    pub fn property(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Appends the value's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Number(n) => {
                out.push(marker::NUMBER);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
            Value::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.push(marker::STRING);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                Err(_) => {
                    out.push(marker::LONG_STRING);
                    // Longer than u32::MAX cannot be held in memory here.
                    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            },
            Value::Object(props) => {
                out.push(marker::OBJECT);
                encode_properties(props, out);
            }
            Value::Null => out.push(marker::NULL),
            Value::Undefined => out.push(marker::UNDEFINED),
            Value::EcmaArray(props) => {
                out.push(marker::ECMA_ARRAY);
                out.extend_from_slice(&(props.len() as u32).to_be_bytes());
                encode_properties(props, out);
            }
            Value::StrictArray(items) => {
                out.push(marker::STRICT_ARRAY);
                out.extend_from_slice(&(items.len() as u32).to_be_bytes());
                for item in items {
                    item.encode(out);
                }
            }
            Value::Date(ms, tz) => {
                out.push(marker::DATE);
                out.extend_from_slice(&ms.to_be_bytes());
                out.extend_from_slice(&tz.to_be_bytes());
            }
        }
    }

    /// Decodes one value from the front of `buf`: the value and the bytes it took.
    pub fn decode(buf: &[u8]) -> Result<(Value, usize), Amf0Error> {
        let mut reader = Reader { buf, pos: 0 };
        let value = reader.value(0)?;
        Ok((value, reader.pos))
    }
}

/// Decodes every value in `buf`, in order (a command or data message's whole body).
pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut values = Vec::new();
    while !buf.is_empty() {
        let (value, used) = Value::decode(buf)?;
        values.push(value);
        buf = &buf[used..];
    }
    Ok(values)
}

/// Encodes values one after another.
pub fn encode_all(values: &[Value], out: &mut Vec<u8>) {
    for v in values {
        v.encode(out);
    }
}

fn encode_properties(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        // A key is a short string without marker; a longer one cannot be written and is cut.
        let key = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        value.encode(out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

/// Why an AMF0 payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The payload ends inside a value.
    #[error("AMF0 value cut off at byte {at}")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
    },
    /// A type marker this decoder does not read (movie clip, reference, XML, typed object,
    /// AMF3 switch, or an unknown one).
    #[error("unsupported AMF0 type marker {marker:#04x} at byte {at}")]
    UnsupportedMarker {
        /// The marker byte.
        marker: u8,
        /// Its offset.
        at: usize,
    },
    /// An object-end marker where a value was expected.
    #[error("unexpected AMF0 object end at byte {at}")]
    UnexpectedObjectEnd {
        /// Its offset.
        at: usize,
    },
    /// Objects and arrays nest deeper than [`MAX_DEPTH`].
    #[error("AMF0 values nest deeper than {MAX_DEPTH}")]
    TooDeep,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(Amf0Error::Truncated { at: self.pos })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        let at = self.pos;
        Ok(match self.u8()? {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => {
                let len = self.u16()?;
                Value::String(self.string(usize::from(len))?)
            }
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                Value::String(self.string(len)?)
            }
            marker::OBJECT => Value::Object(self.properties(depth + 1)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is a hint that encoders get wrong; the end marker decides.
                let _count = self.u32()?;
                Value::EcmaArray(self.properties(depth + 1)?)
            }
            marker::STRICT_ARRAY => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Amf0Error::TooDeep);
                }
                let count = self.u32()?;
                // No preallocation from the count: each value takes at least one byte, so
                // the input bounds the loop.
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            marker::DATE => {
                let ms = self.f64()?;
                let tz = self.u16()? as i16;
                Value::Date(ms, tz)
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd { at }),
            other => return Err(Amf0Error::UnsupportedMarker { marker: other, at }),
        })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let mut props = Vec::new();
        loop {
            let len = self.u16()?;
            if len == 0 && self.buf.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(usize::from(len))?;
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_command_bytes() {
        let values = vec![
            Value::String("connect".into()),
            Value::Number(1.0),
            Value::Object(vec![
                ("app".into(), Value::String("live".into())),
                ("fpad".into(), Value::Boolean(false)),
            ]),
        ];
        let mut out = Vec::new();
        encode_all(&values, &mut out);
        assert_eq!(&out[..10], b"\x02\x00\x07connect");
        assert_eq!(out[10], 0x00);
        assert!(out.ends_with(&[0x00, 0x00, 0x00, 0x09]));
        assert_eq!(decode_all(&out).unwrap(), values);
        assert_eq!(values[2].property("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(decode_all(&[0x00, 1, 2]), Err(Amf0Error::Truncated { at: 1 }));
        assert!(matches!(decode_all(&[0x11]), Err(Amf0Error::UnsupportedMarker { .. })));
        assert!(matches!(decode_all(&[0x09]), Err(Amf0Error::UnexpectedObjectEnd { .. })));
        let deep: Vec<u8> = std::iter::repeat_n([0x03, 0x00, 0x01, b'a'], 40).flatten().collect();
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        let arrays: Vec<u8> = std::iter::repeat_n([0x0a, 0, 0, 0, 1], 40).flatten().collect();
        assert_eq!(decode_all(&arrays), Err(Amf0Error::TooDeep));
        // A long string whose length runs past the end.
        assert!(matches!(
            decode_all(&[0x0c, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated { .. })
        ));
    }

    #[test]
    fn long_strings_round_trip() {
        let long = Value::String("x".repeat(70_000));
        let mut out = Vec::new();
        long.encode(&mut out);
        assert_eq!(out[0], marker::LONG_STRING);
        assert_eq!(Value::decode(&out).unwrap(), (long, out.len()));
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(|n| Value::Number(f64::from(n) / 4.0)),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,12}".prop_map(Value::String),
            Just(Value::Null),
            Just(Value::Undefined),
            (any::<i32>(), any::<i16>()).prop_map(|(ms, tz)| Value::Date(f64::from(ms), tz)),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-z]{1,6}", inner.clone()), 0..5).prop_map(Value::Object),
                prop::collection::vec(("[a-z]{1,6}", inner.clone()), 0..5)
                    .prop_map(Value::EcmaArray),
                prop::collection::vec(inner, 0..5).prop_map(Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(values in prop::collection::vec(value(), 0..6)) {
            let mut out = Vec::new();
            encode_all(&values, &mut out);
            prop_assert_eq!(decode_all(&out).unwrap(), values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&bytes);
        }
    }
}
