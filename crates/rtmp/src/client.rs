//! The client side of an RTMP publish, sans-IO: what `manifold source rtmp://` speaks.
//!
//! The handshake (plain form: C2 echoes S1), then `connect` → `_result`, `releaseStream`,
//! `FCPublish` and `createStream` → `_result` with the stream id, `publish` →
//! `onStatus NetStream.Publish.Start`, as ffmpeg and OBS publish. Once publishing, the caller
//! sends FLV tag bodies ([`crate::flv::avc_sequence_header`], [`crate::flv::avc_frame`]) and
//! metadata; [`PublishClient::finish`] unpublishes (`FCUnpublish`, `deleteStream`). The chunk
//! stream, AMF0 and commands are the crate's own ([`crate::chunk`], [`crate::command`]), the
//! ones the server side ([`crate::session`]) reads.
//!
//! # Drain contract
//!
//! Feed every byte read from the connection to [`PublishClient::handle_input`], then drain
//! [`PublishClient::poll_transmit`] (write the bytes, in order) and
//! [`PublishClient::poll_event`]. Call [`PublishClient::handle_timeout`] when
//! [`PublishClient::poll_timeout`] passes (the server must answer the handshake and the
//! publish within [`ClientConfig::answer_timeout`]; once publishing, its silence is normal),
//! and [`PublishClient::handle_peer_closed`] at end of stream. After
//! [`ClientEvent::Closed`] write what `poll_transmit` still gives and close. A caller that
//! does not drain the output gets [`ClientError::TransmitOverflow`] from the send methods.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::amf0::{self, Value};
use crate::chunk::{self, ChunkError, Decoder, Encoder};
use crate::command::{Command, CommandError};
use crate::handshake::{self, HandshakeError, PACKET_SIZE};
use crate::message::{self, type_id, Message, UserControl};

/// The chunk stream commands go on (ffmpeg's "system channel").
const COMMAND_CSID: u32 = 3;
/// The chunk stream of `publish` and data messages (ffmpeg's "source channel").
const SOURCE_CSID: u32 = 8;
/// The chunk stream of audio.
const AUDIO_CSID: u32 = 4;
/// The chunk stream of video.
const VIDEO_CSID: u32 = 6;
/// Transaction ids of the commands that are answered.
const CONNECT_TXN: f64 = 1.0;
const CREATE_STREAM_TXN: f64 = 4.0;
const PUBLISH_TXN: f64 = 5.0;

/// What to publish and how the client behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The application (`live` in `rtmp://host/live/cam`).
    pub app: String,
    /// The stream name with its query, as `publish` sends it (`cam?user=u&pass=p`).
    pub stream: String,
    /// `connect`'s `tcUrl`: `rtmp://host:port/app`.
    pub tc_url: String,
    /// The chunk size the client writes with (announced by Set Chunk Size).
    pub chunk_size: u32,
    /// Bounds on what the server may make the client's decoder hold.
    pub limits: chunk::Limits,
    /// How long the server may take to complete the handshake and answer each command until
    /// the publish starts.
    pub answer_timeout: Duration,
    /// Bytes queued for transmission before the caller drains them.
    pub max_queued_transmit: usize,
    /// Events queued before the caller drains them (the client makes few).
    pub max_queued_events: usize,
    /// Seeds C1's random bytes.
    pub seed: u64,
}

impl ClientConfig {
    /// A configuration with the defaults for publishing `stream` in `app` at `tc_url`.
    pub fn new(app: &str, stream: &str, tc_url: &str) -> ClientConfig {
        ClientConfig {
            app: app.to_owned(),
            stream: stream.to_owned(),
            tc_url: tc_url.to_owned(),
            // What ffmpeg and OBS use.
            chunk_size: 4096,
            limits: chunk::Limits::default(),
            answer_timeout: Duration::from_secs(10),
            max_queued_transmit: 8 << 20,
            max_queued_events: 64,
            seed: 0x6d61_6e69_666f_6c64,
        }
    }
}

/// What the client tells its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The server answered `NetStream.Publish.Start`: send media.
    Publishing,
    /// The session is over.
    Closed(ClientClose),
}

/// Why a publish session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientClose {
    /// The caller finished (`finish`).
    Finished,
    /// The server closed the connection.
    PeerClosed,
    /// The server did not complete the handshake or answer a command in time.
    TimedOut,
    /// The server refused: an `_error` answer or an `onStatus` error such as
    /// `NetStream.Publish.Denied` or `NetStream.Publish.BadName`.
    Refused {
        /// The status code (`NetStream.Publish.Denied`, or `_error` for a bare refusal).
        code: String,
        /// The server's description.
        description: String,
    },
    /// The server broke the protocol or a bound.
    Error(ClientError),
}

/// How the server broke the protocol, or the caller a bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server's handshake is not RTMP version 3.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The server's chunk stream is malformed or over a bound.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A command from the server is malformed.
    #[error("command: {0}")]
    Command(#[from] CommandError),
    /// `createStream`'s answer carries no stream id.
    #[error("createStream answered without a stream id")]
    NoStreamId,
    /// Media or metadata sent before the publish started or after the session ended.
    #[error("not publishing")]
    NotPublishing,
    /// The caller did not drain the bytes to transmit.
    #[error("more than {0} bytes queued for transmission")]
    TransmitOverflow(usize),
    /// The server sent more events' worth of answers than the caller drained.
    #[error("more than {0} events queued")]
    EventsOverflow(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for S0 + S1.
    Hello,
    /// Waiting for S2.
    Ack,
    /// `connect` sent.
    Connecting,
    /// `createStream` sent.
    Creating,
    /// `publish` sent on the stream.
    Publishing(u32),
    /// `NetStream.Publish.Start` came: media flow on the stream.
    Live(u32),
    Closed,
}

/// The client side of one RTMP publish. See the [module docs](self).
#[derive(Debug)]
pub struct PublishClient {
    config: ClientConfig,
    phase: Phase,
    /// When the server's next answer is due (None once live).
    deadline: Option<Instant>,
    input: Vec<u8>,
    decoder: Decoder,
    encoder: Encoder,
    transmit: Vec<u8>,
    events: VecDeque<ClientEvent>,
    received: u64,
    acknowledged: u64,
    peer_window: u32,
}

impl PublishClient {
    /// A client whose connection opened at `now`; C0 + C1 are queued at once.
    pub fn new(now: Instant, config: ClientConfig) -> PublishClient {
        let transmit = handshake::client_hello(false, config.seed);
        PublishClient {
            decoder: Decoder::new(config.limits),
            deadline: Some(now + config.answer_timeout),
            config,
            phase: Phase::Hello,
            input: Vec::new(),
            encoder: Encoder::new(),
            transmit,
            events: VecDeque::new(),
            received: 0,
            acknowledged: 0,
            peer_window: 0,
        }
    }

    /// Takes bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.received += bytes.len() as u64;
        self.input.extend_from_slice(bytes);
        let mut start = 0;
        let result = loop {
            match self.step(now, start) {
                Ok(Some(used)) => start += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            if self.phase == Phase::Closed {
                break Ok(());
            }
        };
        // What is left is less than one chunk or handshake packet: bounded by the limits.
        self.input.drain(..start.min(self.input.len()));
        if let Err(e) = result {
            self.fail(e);
            return;
        }
        self.acknowledge();
        if self.events.len() > self.config.max_queued_events {
            self.fail(ClientError::EventsOverflow(self.config.max_queued_events));
        }
    }

    fn step(&mut self, now: Instant, start: usize) -> Result<Option<usize>, ClientError> {
        let buf = &self.input[start..];
        match self.phase {
            Phase::Hello => {
                let Some(s0s1) = buf.get(..1 + PACKET_SIZE) else { return Ok(None) };
                if s0s1[0] != handshake::VERSION {
                    return Err(HandshakeError::UnsupportedVersion(s0s1[0]).into());
                }
                // C2 echoes S1 (the plain form, which every server accepts).
                let c2 = s0s1[1..].to_vec();
                self.transmit.extend_from_slice(&c2);
                self.phase = Phase::Ack;
                Ok(Some(1 + PACKET_SIZE))
            }
            Phase::Ack => {
                if buf.len() < PACKET_SIZE {
                    return Ok(None);
                }
                self.connect(now);
                Ok(Some(PACKET_SIZE))
            }
            Phase::Closed => Ok(None),
            _ => match self.decoder.feed(buf)? {
                None => Ok(None),
                Some((message, used)) => {
                    if let Some(m) = message {
                        self.on_message(now, &m)?;
                    }
                    Ok(Some(used))
                }
            },
        }
    }

    /// The handshake is done: the chunk size, then `connect`.
    fn connect(&mut self, now: Instant) {
        self.send(&message::set_chunk_size(self.config.chunk_size));
        self.encoder.set_chunk_size(self.config.chunk_size);
        let text = |s: &str| Value::String(s.to_owned());
        let connect = Command {
            name: "connect".into(),
            transaction: CONNECT_TXN,
            object: Value::Object(vec![
                ("app".into(), text(&self.config.app)),
                ("type".into(), text("nonprivate")),
                ("flashVer".into(), text("FMLE/3.0 (compatible; manifold)")),
                ("tcUrl".into(), text(&self.config.tc_url)),
            ]),
            args: vec![],
        };
        self.send(&connect.to_message(COMMAND_CSID, 0));
        self.phase = Phase::Connecting;
        self.deadline = Some(now + self.config.answer_timeout);
    }

    fn on_message(&mut self, now: Instant, m: &Message) -> Result<(), ClientError> {
        match m.type_id {
            type_id::WINDOW_ACK_SIZE => {
                if let Some(size) = message::body_u32(&m.payload) {
                    self.peer_window = size;
                }
            }
            type_id::USER_CONTROL => {
                if let UserControl::PingRequest(t) = UserControl::parse(&m.payload) {
                    if let Some(reply) = UserControl::PingResponse(t).to_message() {
                        self.send(&reply);
                    }
                }
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = Command::parse(m.type_id, &m.payload)?;
                self.on_command(now, &cmd)?;
            }
            // Set Chunk Size took effect in the decoder; the rest (Set Peer Bandwidth,
            // Acknowledgement, Stream Begin, data) asks nothing of a publisher.
            _ => {}
        }
        Ok(())
    }

    fn on_command(&mut self, now: Instant, cmd: &Command) -> Result<(), ClientError> {
        let txn = cmd.transaction;
        match (cmd.name.as_str(), self.phase) {
            ("_result", Phase::Connecting) if txn == CONNECT_TXN => {
                let stream = Value::String(self.config.stream.clone());
                for (name, txn) in [("releaseStream", 2.0), ("FCPublish", 3.0)] {
                    self.command(name, txn, 0, COMMAND_CSID, vec![stream.clone()]);
                }
                self.command("createStream", CREATE_STREAM_TXN, 0, COMMAND_CSID, vec![]);
                self.phase = Phase::Creating;
                self.deadline = Some(now + self.config.answer_timeout);
            }
            ("_result", Phase::Creating) if txn == CREATE_STREAM_TXN => {
                let id =
                    cmd.args.first().and_then(Value::as_number).ok_or(ClientError::NoStreamId)?;
                // A stream id is a small positive integer; anything else is no id.
                if !(1.0..=f64::from(u32::MAX)).contains(&id) || id.fract() != 0.0 {
                    return Err(ClientError::NoStreamId);
                }
                let id = id as u32;
                let args =
                    vec![Value::String(self.config.stream.clone()), Value::String("live".into())];
                self.command("publish", PUBLISH_TXN, id, SOURCE_CSID, args);
                self.phase = Phase::Publishing(id);
                self.deadline = Some(now + self.config.answer_timeout);
            }
            ("_error", Phase::Connecting | Phase::Creating | Phase::Publishing(_)) => {
                let (code, description) = status_of(cmd);
                let code = if code.is_empty() { "_error".to_owned() } else { code };
                self.close(ClientClose::Refused { code, description });
            }
            ("onStatus", Phase::Publishing(id) | Phase::Live(id)) => {
                let (code, description) = status_of(cmd);
                let level =
                    cmd.args.first().and_then(|o| o.property("level")).and_then(Value::as_str);
                if level == Some("error") {
                    self.close(ClientClose::Refused { code, description });
                } else if code == "NetStream.Publish.Start" && self.phase == Phase::Publishing(id) {
                    self.phase = Phase::Live(id);
                    self.deadline = None;
                    self.events.push_back(ClientEvent::Publishing);
                }
            }
            // `_result` of releaseStream and FCPublish, onFCPublish, onBWDone: nothing to do.
            _ => {}
        }
        Ok(())
    }

    /// Sends `@setDataFrame onMetaData` with `properties` (e.g. `videocodecid` 7, `width`,
    /// `height`, `framerate`), which tells the server which tracks to expect.
    pub fn send_metadata(&mut self, properties: Vec<(String, Value)>) -> Result<(), ClientError> {
        let id = self.live_stream()?;
        let mut payload = Vec::new();
        amf0::encode_all(
            &[
                Value::String("@setDataFrame".into()),
                Value::String("onMetaData".into()),
                Value::EcmaArray(properties),
            ],
            &mut payload,
        );
        let m = Message {
            csid: SOURCE_CSID,
            timestamp: 0,
            type_id: type_id::DATA_AMF0,
            stream_id: id,
            payload,
        };
        self.send_bounded(&m)
    }

    /// Sends a video tag body (an FLV video tag without its tag header) at `timestamp` ms.
    pub fn send_video(&mut self, timestamp: u32, body: &[u8]) -> Result<(), ClientError> {
        self.send_media(VIDEO_CSID, type_id::VIDEO, timestamp, body)
    }

    /// Sends an audio tag body at `timestamp` ms.
    pub fn send_audio(&mut self, timestamp: u32, body: &[u8]) -> Result<(), ClientError> {
        self.send_media(AUDIO_CSID, type_id::AUDIO, timestamp, body)
    }

    fn send_media(
        &mut self,
        csid: u32,
        kind: u8,
        timestamp: u32,
        body: &[u8],
    ) -> Result<(), ClientError> {
        let stream_id = self.live_stream()?;
        let m = Message { csid, timestamp, type_id: kind, stream_id, payload: body.to_vec() };
        self.send_bounded(&m)
    }

    /// Ends the publish: `FCUnpublish` and `deleteStream` are queued, then
    /// [`ClientClose::Finished`]. Nothing happens if the session is already closed.
    pub fn finish(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Phase::Publishing(id) | Phase::Live(id) = self.phase {
            let stream = Value::String(self.config.stream.clone());
            self.command("FCUnpublish", 6.0, 0, COMMAND_CSID, vec![stream]);
            self.command("deleteStream", 7.0, 0, COMMAND_CSID, vec![Value::Number(f64::from(id))]);
        }
        self.close(ClientClose::Finished);
    }

    /// The connection reached end of stream.
    pub fn handle_peer_closed(&mut self) {
        if self.phase != Phase::Closed {
            self.close(ClientClose::PeerClosed);
        }
    }

    /// When [`PublishClient::handle_timeout`] should next be called: while an answer is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        self.deadline
    }

    /// Closes the session if the server's answer is overdue.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.close(ClientClose::TimedOut);
        }
    }

    /// Bytes to write to the connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether media may be sent.
    pub fn is_publishing(&self) -> bool {
        matches!(self.phase, Phase::Live(_))
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    fn live_stream(&self) -> Result<u32, ClientError> {
        match self.phase {
            Phase::Live(id) => Ok(id),
            _ => Err(ClientError::NotPublishing),
        }
    }

    fn command(
        &mut self,
        name: &str,
        transaction: f64,
        stream_id: u32,
        csid: u32,
        args: Vec<Value>,
    ) {
        let cmd = Command { name: name.into(), transaction, object: Value::Null, args };
        self.send(&cmd.to_message(csid, stream_id));
    }

    fn send(&mut self, m: &Message) {
        self.encoder.encode(m, &mut self.transmit);
    }

    fn send_bounded(&mut self, m: &Message) -> Result<(), ClientError> {
        if self.transmit.len() + m.payload.len() > self.config.max_queued_transmit {
            return Err(ClientError::TransmitOverflow(self.config.max_queued_transmit));
        }
        self.send(m);
        Ok(())
    }

    /// Sends an Acknowledgement each time the server's window of bytes has arrived.
    fn acknowledge(&mut self) {
        let window = u64::from(self.peer_window);
        if window > 0 && self.phase != Phase::Closed && self.received - self.acknowledged >= window
        {
            self.acknowledged = self.received;
            // The sequence number wraps at 2^32 (RTMP 1.0 §5.4.3).
            self.send(&message::acknowledgement(self.received as u32));
        }
    }

    fn close(&mut self, reason: ClientClose) {
        self.phase = Phase::Closed;
        self.deadline = None;
        self.input.clear();
        self.events.push_back(ClientEvent::Closed(reason));
    }

    fn fail(&mut self, error: ClientError) {
        if self.phase != Phase::Closed {
            self.close(ClientClose::Error(error));
        }
    }
}

/// The `code` and `description` of a status object (first argument).
fn status_of(cmd: &Command) -> (String, String) {
    let field = |key: &str| {
        cmd.args
            .first()
            .and_then(|o| o.property(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("code"), field("description"))
}
