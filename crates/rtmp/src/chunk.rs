//! The RTMP chunk stream (RTMP 1.0 §5.3): messages cut into chunks of at most the chunk size,
//! interleaved across chunk streams, with four header forms that leave out what repeats.
//!
//! [`Decoder::feed`] consumes one whole chunk at a time and returns a message when its last
//! chunk arrives; an incomplete chunk is "need more bytes" (`Ok(None)`) and leaves the decoder
//! untouched, so the caller may retry with more bytes appended. [`Encoder`] picks the
//! shortest header each message allows.
//!
//! Timestamps follow ffmpeg's reading of the spec: a type 0 header carries the absolute
//! timestamp, types 1 and 2 a delta, and a type 3 header that starts a new message adds again
//! the last timestamp field of its chunk stream. An extended timestamp (field 0xFFFFFF) is
//! repeated in every type 3 chunk that follows it, as RTMP 1.0 and ffmpeg write it.

use std::collections::BTreeMap;

use crate::message::{type_id, Message};

/// The chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// A 24-bit timestamp field of this value means "see the extended timestamp".
const EXTENDED: u32 = 0x00ff_ffff;
/// The largest chunk stream id the 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65_599;

/// Bounds on what a peer may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest chunk size a peer may set (the input buffer must hold a whole chunk).
    pub max_chunk_size: u32,
    /// The largest message length.
    pub max_message_len: u32,
    /// How many chunk streams may have state at once.
    pub max_chunk_streams: usize,
    /// The payload bytes of all partly received messages together.
    pub max_pending_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // ffmpeg and OBS set 4096; nginx-rtmp and SRS accept up to 64 KiB.
            max_chunk_size: 1 << 16,
            // A high-bitrate 1080p keyframe is a few hundred KiB; 8 MiB leaves ample room.
            max_message_len: 8 << 20,
            max_chunk_streams: 64,
            max_pending_bytes: 16 << 20,
        }
    }
}

/// Why the chunk stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A message is longer than [`Limits::max_message_len`].
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Its announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The peer set a chunk size of zero or above [`Limits::max_chunk_size`].
    #[error("chunk size {size} is outside 1..={max}")]
    BadChunkSize {
        /// The size asked for.
        size: u32,
        /// The limit.
        max: u32,
    },
    /// More chunk streams than [`Limits::max_chunk_streams`].
    #[error("more than {max} chunk streams")]
    TooManyChunkStreams {
        /// The limit.
        max: usize,
    },
    /// Partly received messages hold more than [`Limits::max_pending_bytes`].
    #[error("partly received messages exceed {max} bytes")]
    TooMuchPending {
        /// The limit.
        max: usize,
    },
    /// A Set Chunk Size or Abort message without its 4-byte body.
    #[error("protocol control message type {type_id} has {len} bytes, needs 4")]
    ShortControl {
        /// Its type.
        type_id: u8,
        /// Its length.
        len: usize,
    },
}

/// What the decoder remembers of one chunk stream.
#[derive(Debug, Clone, Copy, Default)]
struct StreamState {
    timestamp: u32,
    /// The last timestamp field as written (absolute after type 0, delta after 1 and 2).
    ts_field: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
}

/// Reads chunks into messages. See the [module docs](self).
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    chunk_size: u32,
    streams: BTreeMap<u32, StreamState>,
    /// The payload received so far of each chunk stream's message in progress.
    partials: BTreeMap<u32, Vec<u8>>,
    pending: usize,
}

impl Decoder {
    /// A decoder at the default chunk size.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: BTreeMap::new(),
            partials: BTreeMap::new(),
            pending: 0,
        }
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The most bytes one chunk can take on the wire (what an input buffer must hold).
    pub fn max_chunk_len(&self) -> usize {
        // Basic header 3, message header 11, extended timestamp 4.
        18 + self.limits.max_chunk_size as usize
    }

    /// Consumes the first chunk of `buf`. `Ok(None)`: the chunk is not complete yet.
    /// `Ok(Some((message, consumed)))`: a chunk of `consumed` bytes was read, and completed
    /// `message` if it is `Some`. Set Chunk Size and Abort take effect here (and are still
    /// returned); after an error the stream cannot be read on.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<(Option<Message>, usize)>, ChunkError> {
        let Some(&first) = buf.first() else { return Ok(None) };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match buf.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&lo), Some(&hi)) => (64 + u32::from(lo) + 256 * u32::from(hi), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(header) = buf.get(pos..pos + header_len) else { return Ok(None) };
        pos += header_len;
        if !self.streams.contains_key(&csid) && self.streams.len() >= self.limits.max_chunk_streams
        {
            return Err(ChunkError::TooManyChunkStreams { max: self.limits.max_chunk_streams });
        }
        // A chunk stream's first chunk should be type 0; a missing one reads as zeros, as
        // nginx-rtmp does.
        let prev = self.streams.get(&csid).copied().unwrap_or_default();
        let mut next = prev;
        let be24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        if fmt <= 2 {
            next.ts_field = be24(&header[0..3]);
            next.extended = next.ts_field == EXTENDED;
        }
        if fmt <= 1 {
            next.len = be24(&header[3..6]);
            next.type_id = header[6];
        }
        if fmt == 0 {
            next.stream_id = u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
        }
        if next.extended {
            let Some(ext) = buf.get(pos..pos + 4) else { return Ok(None) };
            pos += 4;
            if fmt <= 2 {
                next.ts_field = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            }
        }
        // A type 0-2 header in the middle of a message abandons it (the peer restarted).
        let received = self.partials.get(&csid).map_or(0, Vec::len);
        let continuing = fmt == 3 && self.partials.contains_key(&csid);
        if !continuing {
            next.timestamp =
                if fmt == 0 { next.ts_field } else { prev.timestamp.wrapping_add(next.ts_field) };
            if next.len > self.limits.max_message_len {
                return Err(ChunkError::MessageTooLong {
                    len: next.len,
                    max: self.limits.max_message_len,
                });
            }
        }
        let received = if continuing { received } else { 0 };
        let take = (next.len as usize - received).min(self.chunk_size as usize);
        let Some(data) = buf.get(pos..pos + take) else { return Ok(None) };
        pos += take;
        // The chunk is complete: commit.
        if !continuing {
            if let Some(old) = self.partials.remove(&csid) {
                self.pending -= old.len();
            }
        }
        if self.pending + take > self.limits.max_pending_bytes {
            return Err(ChunkError::TooMuchPending { max: self.limits.max_pending_bytes });
        }
        let mut payload = self.partials.remove(&csid).unwrap_or_default();
        payload.extend_from_slice(data);
        let message = if payload.len() == next.len as usize {
            self.pending -= received;
            Some(Message {
                csid,
                timestamp: next.timestamp,
                type_id: next.type_id,
                stream_id: next.stream_id,
                payload,
            })
        } else {
            self.pending += take;
            self.partials.insert(csid, payload);
            None
        };
        self.streams.insert(csid, next);
        if let Some(m) = &message {
            self.apply_control(m)?;
        }
        Ok(Some((message, pos)))
    }

    /// Set Chunk Size and Abort change how the following chunks are read.
    fn apply_control(&mut self, m: &Message) -> Result<(), ChunkError> {
        if m.type_id != type_id::SET_CHUNK_SIZE && m.type_id != type_id::ABORT {
            return Ok(());
        }
        let Some(b) = m.payload.get(..4) else {
            return Err(ChunkError::ShortControl { type_id: m.type_id, len: m.payload.len() });
        };
        let value = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if m.type_id == type_id::SET_CHUNK_SIZE {
            // The top bit is reserved and must be zero.
            let size = value & 0x7fff_ffff;
            if size == 0 || size > self.limits.max_chunk_size {
                return Err(ChunkError::BadChunkSize { size, max: self.limits.max_chunk_size });
            }
            self.chunk_size = size;
        } else if let Some(old) = self.partials.remove(&value) {
            self.pending -= old.len();
        }
        Ok(())
    }
}

/// What the encoder remembers of one chunk stream.
#[derive(Debug, Clone, Copy)]
struct Sent {
    timestamp: u32,
    ts_field: u32,
    len: u32,
    type_id: u8,
    stream_id: u32,
}

/// Writes messages as chunks with the shortest header each allows (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct Encoder {
    chunk_size: u32,
    sent: BTreeMap<u32, Sent>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder at the default chunk size.
    pub fn new() -> Encoder {
        Encoder { chunk_size: DEFAULT_CHUNK_SIZE, sent: BTreeMap::new() }
    }

    /// Changes the chunk size for the following messages (send the Set Chunk Size message
    /// first, at the old size). Clamped to `1..=0x7fffffff`.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, 0x7fff_ffff);
    }

    /// Appends `m` to `out` as chunks. The chunk stream id is clamped into `2..=65599` and
    /// the payload must fit the 24-bit length field (it is cut there otherwise).
    pub fn encode(&mut self, m: &Message, out: &mut Vec<u8>) {
        let csid = m.csid.clamp(2, MAX_CSID);
        let payload = &m.payload[..m.payload.len().min(0x00ff_ffff)];
        let len = payload.len() as u32;
        let prev = self.sent.get(&csid).copied();
        let (fmt, ts_field) = match prev {
            Some(p) if p.stream_id == m.stream_id && m.timestamp >= p.timestamp => {
                let delta = m.timestamp - p.timestamp;
                if p.len == len && p.type_id == m.type_id {
                    if delta == p.ts_field {
                        (3, delta)
                    } else {
                        (2, delta)
                    }
                } else {
                    (1, delta)
                }
            }
            _ => (0, m.timestamp),
        };
        let extended = ts_field >= EXTENDED;
        // After a type 3 header the ts field stays what the last explicit header wrote,
        // including whether it was extended.
        let extended =
            if fmt == 3 { prev.is_some_and(|p| p.ts_field >= EXTENDED) } else { extended };
        self.sent.insert(
            csid,
            Sent {
                timestamp: m.timestamp,
                ts_field,
                len,
                type_id: m.type_id,
                stream_id: m.stream_id,
            },
        );
        basic_header(fmt, csid, out);
        let field = if extended { EXTENDED } else { ts_field };
        if fmt <= 2 {
            out.extend_from_slice(&field.to_be_bytes()[1..]);
        }
        if fmt <= 1 {
            out.extend_from_slice(&len.to_be_bytes()[1..]);
            out.push(m.type_id);
        }
        if fmt == 0 {
            out.extend_from_slice(&m.stream_id.to_le_bytes());
        }
        if extended {
            out.extend_from_slice(&ts_field.to_be_bytes());
        }
        let mut chunks = payload.chunks(self.chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.extend_from_slice(first);
        }
        for chunk in chunks {
            basic_header(3, csid, out);
            if extended {
                out.extend_from_slice(&ts_field.to_be_bytes());
            }
            out.extend_from_slice(chunk);
        }
    }
}

fn basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    let fmt = fmt << 6;
    match csid {
        2..=63 => out.push(fmt | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let id = csid - 64;
            out.extend_from_slice(&[fmt | 1, id as u8, (id >> 8) as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes a whole buffer, feeding at most `step` new bytes at a time.
    pub(crate) fn decode_split(
        decoder: &mut Decoder,
        bytes: &[u8],
        step: usize,
    ) -> Result<Vec<Message>, ChunkError> {
        let mut out = Vec::new();
        let (mut start, mut fed) = (0, 0);
        loop {
            match decoder.feed(&bytes[start..fed])? {
                Some((m, used)) => {
                    out.extend(m);
                    start += used;
                }
                None if fed == bytes.len() => return Ok(out),
                None => fed = (fed + step).min(bytes.len()),
            }
        }
    }

    fn msg(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, len: usize) -> Message {
        Message {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: (0..len).map(|i| (i * 7 + timestamp as usize) as u8).collect(),
        }
    }

    #[test]
    fn header_forms_are_chosen_and_read_back() {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let messages = [
            msg(4, 1000, 8, 1, 20),  // type 0
            msg(4, 1020, 8, 1, 20),  // type 2, delta 20
            msg(4, 1040, 8, 1, 20),  // type 3: same delta
            msg(4, 1060, 9, 1, 300), // type 1, then type 3 continuations
            msg(4, 1060, 9, 2, 5),   // other stream: type 0
        ];
        let mut firsts = Vec::new();
        for m in &messages {
            firsts.push(out.len());
            enc.encode(m, &mut out);
        }
        let fmts: Vec<u8> = firsts.iter().map(|&i| out[i] >> 6).collect();
        assert_eq!(fmts, [0, 2, 3, 1, 0]);
        for step in [1, 3, 7, out.len()] {
            let got = decode_split(&mut Decoder::new(Limits::default()), &out, step).unwrap();
            assert_eq!(got, messages);
        }
    }

    #[test]
    fn extended_timestamps_repeat_on_type_3() {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        let big = msg(70, 0x0100_0000, 9, 1, 300);
        enc.encode(&big, &mut out);
        // Basic header of 2 bytes (csid 70), ts field 0xffffff, then the extended field.
        assert_eq!(&out[2..5], &[0xff, 0xff, 0xff]);
        assert_eq!(&out[13..17], &0x0100_0000u32.to_be_bytes());
        // The first continuation: type 3, csid 70, extended timestamp again.
        let cont = 17 + 128;
        assert_eq!(&out[cont..cont + 6], &[0xc0, 6, 1, 0, 0, 0]);
        let got = decode_split(&mut Decoder::new(Limits::default()), &out, 1).unwrap();
        assert_eq!(got, [big]);
    }

    #[test]
    fn set_chunk_size_and_abort() {
        let mut out = Vec::new();
        let mut enc = Encoder::new();
        enc.encode(
            &Message {
                csid: 2,
                timestamp: 0,
                type_id: 1,
                stream_id: 0,
                payload: vec![0, 0, 16, 0],
            },
            &mut out,
        );
        enc.set_chunk_size(4096);
        enc.encode(&msg(6, 0, 9, 1, 4000), &mut out);
        let mut dec = Decoder::new(Limits::default());
        let got = decode_split(&mut dec, &out, 100).unwrap();
        assert_eq!(dec.chunk_size(), 4096);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].payload.len(), 4000);

        // Abort drops the partial message on chunk stream 6.
        let mut out = Vec::new();
        let mut enc = Encoder::new();
        let mut first = Vec::new();
        enc.encode(&msg(6, 0, 9, 1, 200), &mut first);
        out.extend_from_slice(&first[..12 + 128]);
        enc.encode(
            &Message { csid: 2, timestamp: 0, type_id: 2, stream_id: 0, payload: vec![0, 0, 0, 6] },
            &mut out,
        );
        let mut dec = Decoder::new(Limits::default());
        let got = decode_split(&mut dec, &out, 1).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(dec.pending, 0);
    }

    #[test]
    fn limits_are_typed_errors() {
        let limits = Limits { max_message_len: 100, max_chunk_streams: 2, ..Limits::default() };
        let mut out = Vec::new();
        Encoder::new().encode(&msg(5, 0, 9, 1, 101), &mut out);
        let err = decode_split(&mut Decoder::new(limits), &out, 1000).unwrap_err();
        assert_eq!(err, ChunkError::MessageTooLong { len: 101, max: 100 });

        let mut out = Vec::new();
        let mut enc = Encoder::new();
        for csid in 3..6 {
            enc.encode(&msg(csid, 0, 9, 1, 1), &mut out);
        }
        let err = decode_split(&mut Decoder::new(limits), &out, 1000).unwrap_err();
        assert_eq!(err, ChunkError::TooManyChunkStreams { max: 2 });

        let mut out = Vec::new();
        Encoder::new().encode(
            &Message {
                csid: 2,
                timestamp: 0,
                type_id: 1,
                stream_id: 0,
                payload: vec![0, 0x10, 0, 1],
            },
            &mut out,
        );
        let err = decode_split(&mut Decoder::new(Limits::default()), &out, 1000).unwrap_err();
        assert!(matches!(err, ChunkError::BadChunkSize { size: 0x0010_0001, .. }));
    }

    fn messages() -> impl Strategy<Value = Vec<Message>> {
        prop::collection::vec(
            (
                prop_oneof![2u32..10, 60u32..70, 300u32..330, Just(MAX_CSID)],
                prop_oneof![0u32..50, Just(EXTENDED - 1), EXTENDED..EXTENDED + 40],
                prop_oneof![Just(8u8), Just(9u8), Just(18u8), Just(20u8)],
                0u32..3,
                prop_oneof![0usize..40, 100usize..700],
            ),
            1..24,
        )
        .prop_map(|items| {
            let mut now: BTreeMap<u32, u32> = BTreeMap::new();
            items
                .into_iter()
                .map(|(csid, step, type_id, stream_id, len)| {
                    // Timestamps mostly rise on a chunk stream; a step past the extended
                    // threshold jumps, and sometimes they go back (forcing type 0).
                    let t = now.entry(csid).or_default();
                    *t = if step % 7 == 3 { step } else { t.wrapping_add(step) };
                    msg(csid, *t, type_id, stream_id, len)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn encoder_decoder_round_trip(
            messages in messages(),
            chunk_size in prop_oneof![1u32..16, 100u32..200, 4096u32..4097],
            step in 1usize..300,
        ) {
            let mut enc = Encoder::new();
            let mut out = Vec::new();
            let set = Message {
                csid: 2, timestamp: 0, type_id: 1, stream_id: 0,
                payload: chunk_size.to_be_bytes().to_vec(),
            };
            enc.encode(&set, &mut out);
            enc.set_chunk_size(chunk_size);
            for m in &messages {
                enc.encode(m, &mut out);
            }
            let got = decode_split(&mut Decoder::new(Limits::default()), &out, step).unwrap();
            prop_assert_eq!(&got[0], &set);
            prop_assert_eq!(&got[1..], &messages[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_split(&mut Decoder::new(Limits::default()), &bytes, 13);
        }
    }
}
