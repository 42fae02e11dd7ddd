//! Messages (RTMP 1.0 §5.4, §6.2, §7.1): the reassembled message, its type ids, and the
//! protocol control and user control messages' bodies.

/// Message type ids.
pub mod type_id {
    /// Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message.
    pub const ABORT: u8 = 2;
    /// Acknowledgement.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (an FLV audio tag body).
    pub const AUDIO: u8 = 8;
    /// Video data (an FLV video tag body).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3.
    pub const DATA_AMF3: u8 = 15;
    /// Command message, AMF3.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (`@setDataFrame`, `onMetaData`).
    pub const DATA_AMF0: u8 = 18;
    /// Command message, AMF0.
    pub const COMMAND_AMF0: u8 = 20;
}

/// One RTMP message, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The chunk stream it came on.
    pub csid: u32,
    /// Its timestamp in milliseconds (32 bits, wrapping).
    pub timestamp: u32,
    /// Its message type id ([`type_id`](self::type_id)).
    pub type_id: u8,
    /// Its message stream id.
    pub stream_id: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// The chunk stream protocol control messages travel on.
pub const CONTROL_CSID: u32 = 2;

/// A User Control message (RTMP 1.0 §7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// Stream Begin: the stream is ready for use.
    StreamBegin(u32),
    /// Stream EOF.
    StreamEof(u32),
    /// Stream Dry.
    StreamDry(u32),
    /// Set Buffer Length: stream id and milliseconds.
    SetBufferLength(u32, u32),
    /// Stream Is Recorded.
    StreamIsRecorded(u32),
    /// Ping Request with the sender's timestamp.
    PingRequest(u32),
    /// Ping Response echoing the request's timestamp.
    PingResponse(u32),
    /// An event type this module does not name, or a body too short for its type.
    Other(u16),
}

impl UserControl {
    /// Reads a User Control body; never fails (unknown or short bodies are `Other`).
    pub fn parse(body: &[u8]) -> UserControl {
        let Some(kind) = body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return UserControl::Other(u16::MAX);
        };
        let word =
            |at: usize| body.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let one = |f: fn(u32) -> UserControl| word(2).map_or(UserControl::Other(kind), f);
        match kind {
            0 => one(UserControl::StreamBegin),
            1 => one(UserControl::StreamEof),
            2 => one(UserControl::StreamDry),
            3 => match (word(2), word(6)) {
                (Some(id), Some(ms)) => UserControl::SetBufferLength(id, ms),
                _ => UserControl::Other(kind),
            },
            4 => one(UserControl::StreamIsRecorded),
            6 => one(UserControl::PingRequest),
            7 => one(UserControl::PingResponse),
            _ => UserControl::Other(kind),
        }
    }

    /// The message carrying this event (unknown events are not written: `None`).
    pub fn to_message(self) -> Option<Message> {
        let (kind, a, b) = match self {
            UserControl::StreamBegin(id) => (0u16, id, None),
            UserControl::StreamEof(id) => (1, id, None),
            UserControl::StreamDry(id) => (2, id, None),
            UserControl::SetBufferLength(id, ms) => (3, id, Some(ms)),
            UserControl::StreamIsRecorded(id) => (4, id, None),
            UserControl::PingRequest(t) => (6, t, None),
            UserControl::PingResponse(t) => (7, t, None),
            UserControl::Other(_) => return None,
        };
        let mut payload = kind.to_be_bytes().to_vec();
        payload.extend_from_slice(&a.to_be_bytes());
        if let Some(b) = b {
            payload.extend_from_slice(&b.to_be_bytes());
        }
        Some(control(type_id::USER_CONTROL, payload))
    }
}

/// A protocol control message on chunk stream 2, message stream 0.
fn control(type_id: u8, payload: Vec<u8>) -> Message {
    Message { csid: CONTROL_CSID, timestamp: 0, type_id, stream_id: 0, payload }
}

/// Set Chunk Size.
pub fn set_chunk_size(size: u32) -> Message {
    control(type_id::SET_CHUNK_SIZE, (size & 0x7fff_ffff).to_be_bytes().to_vec())
}

/// Acknowledgement of `sequence` bytes received (wrapping at 2^32).
pub fn acknowledgement(sequence: u32) -> Message {
    control(type_id::ACKNOWLEDGEMENT, sequence.to_be_bytes().to_vec())
}

/// Window Acknowledgement Size.
pub fn window_ack_size(size: u32) -> Message {
    control(type_id::WINDOW_ACK_SIZE, size.to_be_bytes().to_vec())
}

/// Set Peer Bandwidth with limit type 2 (dynamic).
pub fn set_peer_bandwidth(size: u32) -> Message {
    let mut payload = size.to_be_bytes().to_vec();
    payload.push(2);
    control(type_id::SET_PEER_BANDWIDTH, payload)
}

/// The big-endian `u32` at the front of a control message body.
pub fn body_u32(body: &[u8]) -> Option<u32> {
    body.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        for event in [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(2),
            UserControl::StreamDry(3),
            UserControl::SetBufferLength(1, 3000),
            UserControl::StreamIsRecorded(4),
            UserControl::PingRequest(77),
            UserControl::PingResponse(78),
        ] {
            let m = event.to_message().unwrap();
            assert_eq!(m.type_id, type_id::USER_CONTROL);
            assert_eq!(UserControl::parse(&m.payload), event);
        }
        assert_eq!(UserControl::parse(&[0, 6, 1]), UserControl::Other(6));
        assert_eq!(UserControl::parse(&[]), UserControl::Other(u16::MAX));
        assert_eq!(UserControl::Other(9).to_message(), None);
    }
}
