//! The server side of one RTMP publisher connection, sans-IO.
//!
//! # Drain contract
//!
//! Feed every byte read from the connection to [`PublisherSession::handle_input`], then drain
//! [`PublisherSession::poll_transmit`] (write those bytes to the connection, in order) and
//! [`PublisherSession::poll_event`] until both return `None`. Call
//! [`PublisherSession::handle_timeout`] when [`PublisherSession::poll_timeout`] passes, and
//! [`PublisherSession::handle_peer_closed`] at end of stream. After
//! [`Event::Closed`], write what `poll_transmit` still gives (an error answer) and close.
//!
//! When the publisher asks to publish, [`Event::PublishRequested`] carries the app, stream and
//! query; answer with [`PublisherSession::accept_publish`] (the client gets
//! `NetStream.Publish.Start` and starts sending media) or [`PublisherSession::reject_publish`]
//! (an `onStatus` error, then [`Event::Closed`]). Once media arrive, [`Event::Tracks`] gives
//! the SDP of the tracks (again whenever a sequence header changes them) and
//! [`Event::Packet`] each RTP packet.
//!
//! Queues are bounded ([`Config`]): a caller that does not drain gets the session closed with
//! [`SessionError::EventsOverflow`] or [`SessionError::TransmitOverflow`] rather than growing
//! memory without end.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use manifold_sdp::Sdp;

use crate::amf0::{self, Value};
use crate::chunk::{self, ChunkError, Decoder, Encoder};
use crate::command::{self, Command, CommandError, COMMAND_CSID, STATUS_CSID};
use crate::flv::{self, AacConfig, AudioTag, VideoConfig, VideoTag};
use crate::handshake::{self, HandshakeError, PACKET_SIZE};
use crate::media::{MediaError, MediaPacket, Tracks};
use crate::message::{self, type_id, Message, UserControl};
use crate::report::SenderReports;

/// How a session behaves and what it bounds.
#[derive(Debug, Clone)]
pub struct Config {
    /// Chunk stream bounds.
    pub limits: chunk::Limits,
    /// The largest RTP packet produced (header included): the relay's MTU budget.
    pub max_packet_size: usize,
    /// The window the server asks the client to acknowledge (Window Acknowledgement Size)
    /// and the peer bandwidth it sets.
    pub window_ack_size: u32,
    /// The chunk size the server writes with (announced by Set Chunk Size).
    pub chunk_size: u32,
    /// How long the handshake and `connect` may take.
    pub handshake_timeout: Duration,
    /// How long the publisher may send nothing before the session is closed.
    pub idle_timeout: Duration,
    /// Events queued before the caller drains them.
    pub max_queued_events: usize,
    /// Bytes queued for transmission before the caller drains them.
    pub max_queued_transmit: usize,
    /// Media messages held while the tracks are not yet known.
    pub max_early_frames: usize,
    /// The payload bytes of those held media messages.
    pub max_early_bytes: usize,
    /// Input bytes held while a publish waits for the caller's decision.
    pub max_held_input: usize,
    /// How many `createStream` a connection may ask for.
    pub max_streams: u32,
    /// Seeds the handshake's random bytes, SSRCs, first sequence numbers and timestamp
    /// offsets; give each session a different one.
    pub seed: u64,
    /// The wall clock at the `now` the session is created with: with it the session sends
    /// RTCP sender reports for its tracks ([`Event::SenderReport`], see [`crate::report`]);
    /// without it none.
    pub wall_clock_at_start: Option<SystemTime>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: chunk::Limits::default(),
            max_packet_size: 1200,
            window_ack_size: 2_500_000,
            chunk_size: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_queued_events: 1 << 16,
            max_queued_transmit: 1 << 20,
            max_early_frames: 256,
            max_early_bytes: 4 << 20,
            max_held_input: 1 << 20,
            max_streams: 8,
            seed: 0x6d61_6e69_666f_6c64,
            wall_clock_at_start: None,
        }
    }
}

/// What a publisher asked to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The application from `connect` (`live` in `rtmp://host/live/cam`), without any query.
    pub app: String,
    /// The stream name from `publish` (`cam`), without its query.
    pub stream: String,
    /// The query after the stream name (`user=u&pass=p` in `cam?user=u&pass=p`), or after
    /// the app when the stream name has none.
    pub query: Option<String>,
    /// The `tcUrl` from `connect`, if given.
    pub tc_url: Option<String>,
    /// The publishing type (`live`, `record` or `append`).
    pub publish_type: String,
}

impl PublishRequest {
    /// The path readers use: `/APP/STREAM`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.app, self.stream)
    }

    /// The user and password the publish carries: `?user=U&pass=P` on the stream name (or
    /// the app), or a stream key that is a password, `STREAM?PASSWORD` (or
    /// `STREAM?pass=PASSWORD`), for the user named `STREAM`: what an encoder with only a
    /// "stream key" field (OBS and most hardware) can send, e.g. key `cam?s3cret`.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match (self.query_param("user"), self.query_param("pass")) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, Some(password)) => Some((&self.stream, password)),
            _ => match self.query.as_deref() {
                Some(key) if !key.is_empty() && !key.contains(['=', '&']) => {
                    Some((&self.stream, key))
                }
                _ => None,
            },
        }
    }

    /// A parameter of the query (`user`, `pass`, …), not percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == key).then_some(v)
        })
    }
}

/// Why a publish is refused: which `onStatus` error code the client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// `NetStream.Publish.BadName`: the path is taken or not a valid name.
    BadName,
    /// `NetStream.Publish.Denied`: the credentials do not allow publishing.
    Denied,
}

impl Rejection {
    fn code(self) -> &'static str {
        match self {
            Rejection::BadName => "NetStream.Publish.BadName",
            Rejection::Denied => "NetStream.Publish.Denied",
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// The publisher ended the stream (`deleteStream`, `closeStream`).
    Unpublished,
    /// The connection ended (end of stream from the peer).
    PeerClosed,
    /// The publish was rejected.
    Rejected(Rejection),
    /// The handshake or the connection went quiet for too long.
    TimedOut,
    /// The peer broke the protocol or a bound; the error says how.
    Error(SessionError),
}

/// How a publisher broke the protocol, or a bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream is malformed or over a bound.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A command message is malformed.
    #[error("command: {0}")]
    Command(#[from] CommandError),
    /// A data message's AMF0 is malformed.
    #[error("data message: {0}")]
    Data(#[from] amf0::Amf0Error),
    /// Media could not be mapped to RTP.
    #[error("media: {0}")]
    Media(#[from] MediaError),
    /// A command that needs an earlier one came first (`publish` before `connect`, or on a
    /// stream that was never created).
    #[error("{0} out of order")]
    OutOfOrder(&'static str),
    /// More `createStream` than [`Config::max_streams`].
    #[error("more than {0} streams created")]
    TooManyStreams(u32),
    /// A second `publish` on one connection.
    #[error("publish while already publishing")]
    AlreadyPublishing,
    /// The publisher sent more than [`Config::max_held_input`] bytes while its publish
    /// waited for a decision.
    #[error("more than {0} bytes sent before the publish was answered")]
    HeldInputOverflow(usize),
    /// The caller did not drain events.
    #[error("more than {0} events queued")]
    EventsOverflow(usize),
    /// The caller did not drain the bytes to transmit.
    #[error("more than {0} bytes queued for transmission")]
    TransmitOverflow(usize),
}

impl From<flv::FlvError> for SessionError {
    fn from(e: flv::FlvError) -> Self {
        SessionError::Media(MediaError::Flv(e))
    }
}

/// What the session tells its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The publisher asks to publish; answer with `accept_publish` or `reject_publish`.
    PublishRequested(PublishRequest),
    /// The tracks are known, or changed: the SDP readers get (track N is media section N).
    Tracks(Sdp),
    /// An RTP packet of a track.
    Packet(MediaPacket),
    /// An RTCP sender report of a track (after one of its packets), when the config has a
    /// wall clock.
    SenderReport {
        /// The track.
        track: usize,
        /// The RTCP packet.
        report: Vec<u8>,
    },
    /// The session is over.
    Closed(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for C0 + C1.
    Hello,
    /// Waiting for C2.
    Ack,
    /// Chunks.
    Chunks,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    None,
    Pending(u32),
    Publishing(u32),
}

/// The server side of one RTMP publisher connection. See the [module docs](self).
#[derive(Debug)]
pub struct PublisherSession {
    config: Config,
    seed: u64,
    started: Instant,
    last_input: Instant,
    phase: Phase,
    input: Vec<u8>,
    decoder: Decoder,
    encoder: Encoder,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    received: u64,
    acknowledged: u64,
    peer_window: u32,
    connect: Option<(String, Option<String>, Option<String>)>,
    streams_created: u32,
    publish: Publish,
    request: Option<PublishRequest>,
    metadata: Option<Value>,
    video_config: Option<VideoConfig>,
    audio_config: Option<AacConfig>,
    tracks: Option<Tracks>,
    early: VecDeque<Message>,
    early_bytes: usize,
    scratch: Vec<MediaPacket>,
    reports: Option<SenderReports>,
}

impl PublisherSession {
    /// A session for a connection accepted at `now`.
    pub fn new(now: Instant, config: Config) -> PublisherSession {
        let cname = format!("rtmp-{:016x}@manifold", config.seed);
        let reports = config.wall_clock_at_start.map(|wall| SenderReports::new(now, wall, &cname));
        PublisherSession {
            decoder: Decoder::new(config.limits),
            seed: config.seed | 1,
            config,
            started: now,
            last_input: now,
            phase: Phase::Hello,
            input: Vec::new(),
            encoder: Encoder::new(),
            transmit: Vec::new(),
            events: VecDeque::new(),
            received: 0,
            acknowledged: 0,
            peer_window: 0,
            connect: None,
            streams_created: 0,
            publish: Publish::None,
            request: None,
            metadata: None,
            video_config: None,
            audio_config: None,
            tracks: None,
            early: VecDeque::new(),
            early_bytes: 0,
            scratch: Vec::new(),
            reports,
        }
    }

    /// Takes bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_input = now;
        self.received += bytes.len() as u64;
        self.input.extend_from_slice(bytes);
        self.process(now);
        if matches!(self.publish, Publish::Pending(_))
            && self.input.len() > self.config.max_held_input
        {
            self.fail(SessionError::HeldInputOverflow(self.config.max_held_input));
        }
    }

    /// Reads the buffered input as far as it goes. While a publish waits for the caller's
    /// decision, input stays buffered (a publisher sends nothing before the answer anyway),
    /// so what follows is the same however the input was split.
    fn process(&mut self, now: Instant) {
        let mut start = 0;
        let result = loop {
            if matches!(self.publish, Publish::Pending(_)) {
                break Ok(());
            }
            match self.step(now, start) {
                Ok(Some(used)) => start += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            if self.phase == Phase::Closed {
                break Ok(());
            }
        };
        if self.phase == Phase::Closed {
            self.input.clear();
        } else {
            // What is left is less than one chunk (or handshake packet), or input held while
            // a publish waits ([`Config::max_held_input`]): bounded either way.
            self.input.drain(..start);
        }
        if let Err(e) = result {
            self.fail(e);
            return;
        }
        self.acknowledge();
        self.check_bounds();
    }

    /// One step over the unread input from `start`: `Some(bytes used)` or `None` for "need
    /// more bytes".
    fn step(&mut self, now: Instant, start: usize) -> Result<Option<usize>, SessionError> {
        let buf = &self.input[start..];
        match self.phase {
            Phase::Hello => {
                let Some(hello) = buf.get(..1 + PACKET_SIZE) else { return Ok(None) };
                let mut c0c1 = [0u8; 1 + PACKET_SIZE];
                c0c1.copy_from_slice(hello);
                let time = now.saturating_duration_since(self.started).as_millis() as u32;
                let seed = crate::random::next(&mut self.seed);
                let (answer, _form) = handshake::respond(&c0c1, time, u64::from(seed) << 1 | 1)?;
                self.transmit.extend_from_slice(&answer);
                self.phase = Phase::Ack;
                Ok(Some(1 + PACKET_SIZE))
            }
            Phase::Ack => {
                // C2 is not checked: clients differ in what they echo, and nothing depends
                // on it.
                if buf.len() < PACKET_SIZE {
                    return Ok(None);
                }
                self.phase = Phase::Chunks;
                Ok(Some(PACKET_SIZE))
            }
            Phase::Chunks => match self.decoder.feed(buf)? {
                None => Ok(None),
                Some((message, used)) => {
                    if let Some(m) = message {
                        self.on_message(m)?;
                    }
                    Ok(Some(used))
                }
            },
            Phase::Closed => Ok(None),
        }
    }

    /// The connection reached end of stream.
    pub fn handle_peer_closed(&mut self) {
        if self.phase != Phase::Closed {
            self.close(CloseReason::PeerClosed);
        }
    }

    /// When [`PublisherSession::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Chunks if self.connect.is_some() => {
                Some(self.last_input + self.config.idle_timeout)
            }
            _ => Some(
                (self.started + self.config.handshake_timeout)
                    .min(self.last_input + self.config.idle_timeout),
            ),
        }
    }

    /// Closes the session if its deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| now >= t) {
            self.close(CloseReason::TimedOut);
        }
    }

    /// Bytes to write to the connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.transmit.is_empty()).then(|| std::mem::take(&mut self.transmit))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The application the client connected to (`connect`'s `app`, without a query), once
    /// it has.
    pub fn app(&self) -> Option<&str> {
        self.connect.as_ref().map(|(app, _, _)| app.as_str())
    }

    /// The publish request, once made.
    pub fn publish_request(&self) -> Option<&PublishRequest> {
        self.request.as_ref()
    }

    /// The last `onMetaData` the publisher sent.
    pub fn metadata(&self) -> Option<&Value> {
        self.metadata.as_ref()
    }

    /// Accepts the pending publish: the client gets Stream Begin and
    /// `NetStream.Publish.Start`, and input held since the request is read. Returns false
    /// when no publish is pending.
    pub fn accept_publish(&mut self, now: Instant) -> bool {
        let Publish::Pending(stream_id) = self.publish else { return false };
        self.publish = Publish::Publishing(stream_id);
        let name = self.request.as_ref().map_or_else(String::new, |r| r.stream.clone());
        if let Some(m) = UserControl::StreamBegin(stream_id).to_message() {
            self.send(&m);
        }
        let status = command::on_status(
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
        self.send(&status.to_message(STATUS_CSID, stream_id));
        self.process(now);
        true
    }

    /// Rejects the pending publish: the client gets an `onStatus` error, and the session
    /// closes ([`CloseReason::Rejected`]). Returns false when no publish is pending.
    pub fn reject_publish(&mut self, rejection: Rejection) -> bool {
        let Publish::Pending(stream_id) = self.publish else { return false };
        self.publish = Publish::None;
        let status = command::on_status("error", rejection.code(), "Publishing is not allowed.");
        self.send(&status.to_message(STATUS_CSID, stream_id));
        self.close(CloseReason::Rejected(rejection));
        true
    }

    fn send(&mut self, m: &Message) {
        self.encoder.encode(m, &mut self.transmit);
    }

    fn close(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed;
        self.early.clear();
        self.early_bytes = 0;
        self.events.push_back(Event::Closed(reason));
    }

    fn fail(&mut self, error: SessionError) {
        if self.phase != Phase::Closed {
            self.close(CloseReason::Error(error));
        }
    }

    fn check_bounds(&mut self) {
        if self.events.len() > self.config.max_queued_events {
            self.fail(SessionError::EventsOverflow(self.config.max_queued_events));
        } else if self.transmit.len() > self.config.max_queued_transmit {
            self.fail(SessionError::TransmitOverflow(self.config.max_queued_transmit));
        }
    }

    /// Sends an Acknowledgement each time the peer's window of bytes has arrived.
    fn acknowledge(&mut self) {
        let window = u64::from(self.peer_window);
        if window > 0 && self.phase == Phase::Chunks && self.received - self.acknowledged >= window
        {
            self.acknowledged = self.received;
            // The sequence number wraps at 2^32 (RTMP 1.0 §5.4.3).
            self.send(&message::acknowledgement(self.received as u32));
        }
    }

    fn on_message(&mut self, m: Message) -> Result<(), SessionError> {
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
                self.on_command(&cmd, m.stream_id)?;
            }
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => self.on_data(&m)?,
            type_id::AUDIO | type_id::VIDEO if self.publish == Publish::Publishing(m.stream_id) => {
                self.on_media(m)?;
            }
            // Set Chunk Size and Abort took effect in the decoder; Acknowledgement, Set Peer
            // Bandwidth, shared objects and aggregates need nothing from a publisher's server.
            _ => {}
        }
        Ok(())
    }

    fn on_command(&mut self, cmd: &Command, stream_id: u32) -> Result<(), SessionError> {
        let txn = cmd.transaction;
        match cmd.name.as_str() {
            "connect" => {
                let text =
                    |key: &str| cmd.object.property(key).and_then(Value::as_str).map(str::to_owned);
                let app = text("app").unwrap_or_default();
                let (app, app_query) = split_query(&app);
                self.connect = Some((app, app_query, text("tcUrl")));
                let encoding = cmd.object.property("objectEncoding").and_then(Value::as_number);
                self.send(&message::window_ack_size(self.config.window_ack_size));
                self.send(&message::set_peer_bandwidth(self.config.window_ack_size));
                self.send(&message::set_chunk_size(self.config.chunk_size));
                self.encoder.set_chunk_size(self.config.chunk_size);
                let result = command::connect_result(txn, encoding.unwrap_or(0.0));
                self.send(&result.to_message(COMMAND_CSID, 0));
            }
            // FCUnpublish goes unanswered: ffmpeg sends it with deleteStream and closes without
            // reading, and an answer left unread turns its close into a reset.
            "releaseStream" | "FCPublish" if txn != 0.0 => {
                let result = command::result(txn, vec![Value::Undefined]);
                self.send(&result.to_message(COMMAND_CSID, 0));
            }
            "createStream" => {
                if self.streams_created >= self.config.max_streams {
                    return Err(SessionError::TooManyStreams(self.config.max_streams));
                }
                self.streams_created += 1;
                let id = f64::from(self.streams_created);
                let result = command::result(txn, vec![Value::Number(id)]);
                self.send(&result.to_message(COMMAND_CSID, 0));
            }
            "publish" => {
                let Some((app, app_query, tc_url)) = self.connect.clone() else {
                    return Err(SessionError::OutOfOrder("publish before connect"));
                };
                if stream_id == 0 || stream_id > self.streams_created {
                    return Err(SessionError::OutOfOrder("publish on a stream not created"));
                }
                if self.publish != Publish::None {
                    return Err(SessionError::AlreadyPublishing);
                }
                let (stream, query) = split_query(cmd.arg_str(0).unwrap_or_default());
                let request = PublishRequest {
                    app,
                    stream,
                    query: query.or(app_query),
                    tc_url,
                    publish_type: cmd.arg_str(1).unwrap_or("live").to_owned(),
                };
                self.publish = Publish::Pending(stream_id);
                self.request = Some(request.clone());
                self.events.push_back(Event::PublishRequested(request));
            }
            "deleteStream" | "closeStream" if self.publish != Publish::None => {
                self.close(CloseReason::Unpublished);
            }
            // `_result`, `onBWDone`, `_checkbw`, `getStreamLength` and the like: nothing a
            // publisher needs answered.
            _ => {}
        }
        Ok(())
    }

    fn on_data(&mut self, m: &Message) -> Result<(), SessionError> {
        let body = match (m.type_id, m.payload.first()) {
            (type_id::DATA_AMF3, Some(0)) => &m.payload[1..],
            _ => &m.payload[..],
        };
        let values = amf0::decode_all(body)?;
        let mut values = values.iter();
        let mut first = values.next();
        if first.and_then(Value::as_str) == Some("@setDataFrame") {
            first = values.next();
        }
        if first.and_then(Value::as_str) == Some("onMetaData") {
            if let Some(meta) = values.next() {
                self.metadata = Some(meta.clone());
            }
        }
        Ok(())
    }

    fn on_media(&mut self, m: Message) -> Result<(), SessionError> {
        let changed = if m.type_id == type_id::VIDEO {
            match flv::parse_video(&m.payload)? {
                VideoTag::SequenceHeader { codec, record } => {
                    let config = VideoConfig::parse(codec, record)?;
                    let changed = self.video_config.as_ref() != Some(&config);
                    self.video_config = Some(config);
                    changed
                }
                VideoTag::Frame { .. } => return self.on_frame(m),
                VideoTag::Ignored => false,
            }
        } else {
            match flv::parse_audio(&m.payload)? {
                AudioTag::AacSequenceHeader(raw) => {
                    let config = AacConfig::parse(raw)?;
                    let changed = self.audio_config.as_ref() != Some(&config);
                    self.audio_config = Some(config);
                    changed
                }
                AudioTag::AacFrame(_) => return self.on_frame(m),
                AudioTag::Ignored => false,
            }
        };
        if changed && self.tracks.is_some() {
            // New parameters mid-stream: readers need the new description.
            self.announce()?;
        } else if self.tracks.is_none() && self.expected_tracks_configured() {
            self.announce()?;
        }
        Ok(())
    }

    /// Whether onMetaData named tracks and all of them have their configuration.
    fn expected_tracks_configured(&self) -> bool {
        let Some(meta) = &self.metadata else { return false };
        let declared = |key: &str| {
            meta.property(key).is_some_and(|v| !matches!(v, Value::Number(n) if *n == 0.0))
        };
        let video = !declared("videocodecid") || self.video_config.is_some();
        let audio = !declared("audiocodecid") || self.audio_config.is_some();
        video && audio && (self.video_config.is_some() || self.audio_config.is_some())
    }

    fn on_frame(&mut self, m: Message) -> Result<(), SessionError> {
        if self.tracks.is_none() {
            // Without onMetaData the first coded frame shows every sequence header has come
            // (encoders send them first); with it, wait for the declared ones, boundedly.
            let without_metadata = self.metadata.is_none();
            self.early_bytes += m.payload.len();
            self.early.push_back(m);
            let configured = self.video_config.is_some() || self.audio_config.is_some();
            let full = |s: &Self| {
                s.early.len() >= s.config.max_early_frames
                    || s.early_bytes >= s.config.max_early_bytes
            };
            if configured && (without_metadata || self.expected_tracks_configured() || full(self)) {
                self.announce()?;
            } else {
                // Nothing configured at all: the oldest frames cannot be decoded anyway.
                while full(self) {
                    let Some(old) = self.early.pop_front() else { break };
                    self.early_bytes -= old.payload.len();
                }
            }
            return Ok(());
        }
        self.map_frame(&m)
    }

    fn map_frame(&mut self, m: &Message) -> Result<(), SessionError> {
        let Some(tracks) = self.tracks.as_mut() else { return Ok(()) };
        let out = &mut self.scratch;
        if m.type_id == type_id::VIDEO {
            if let VideoTag::Frame { codec, keyframe, composition_offset, data } =
                flv::parse_video(&m.payload)?
            {
                tracks.video_frame(m.timestamp, composition_offset, keyframe, codec, data, out)?;
            }
        } else if let AudioTag::AacFrame(frame) = flv::parse_audio(&m.payload)? {
            tracks.audio_frame(m.timestamp, frame, out)?;
        }
        // Media are handled as their bytes arrive: the report's time is the last input's.
        let now = self.last_input;
        for packet in self.scratch.drain(..) {
            let report = self.reports.as_mut().and_then(|r| r.on_packet(now, &packet));
            let track = packet.track;
            self.events.push_back(Event::Packet(packet));
            if let Some(report) = report {
                self.events.push_back(Event::SenderReport { track, report });
            }
        }
        Ok(())
    }

    /// Builds the tracks from the configurations, tells the caller, and maps held frames.
    fn announce(&mut self) -> Result<(), SessionError> {
        let tracks = Tracks::new(
            self.video_config.clone(),
            self.audio_config.clone(),
            self.config.max_packet_size,
            &mut self.seed,
        );
        let name = self.request.as_ref().map(PublishRequest::path).unwrap_or_default();
        let name = name.trim_start_matches('/').to_owned();
        self.events.push_back(Event::Tracks(crate::sdp::describe(&tracks, &name)));
        self.tracks = Some(tracks);
        self.early_bytes = 0;
        while let Some(m) = self.early.pop_front() {
            self.map_frame(&m)?;
        }
        Ok(())
    }
}

/// `name?query` into the name and the query (`None` when there is no `?`).
fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((name, query)) => (name.to_owned(), Some(query.to_owned())),
        None => (s.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish_request(stream: &str, query: Option<&str>) -> PublishRequest {
        PublishRequest {
            app: "live".into(),
            stream: stream.into(),
            query: query.map(Into::into),
            tc_url: None,
            publish_type: "live".into(),
        }
    }

    #[test]
    fn credentials_come_from_the_query_or_a_stream_key() {
        let presented = |stream, query| {
            publish_request(stream, query).credentials().map(|(u, p)| (u.to_owned(), p.to_owned()))
        };
        let pair = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(presented("cam", Some("user=u&pass=p")), pair("u", "p"));
        assert_eq!(presented("cam", Some("pass=p&user=u")), pair("u", "p"));
        // A stream key that is a password, for the user named like the stream.
        assert_eq!(presented("cam", Some("s3cret")), pair("cam", "s3cret"));
        assert_eq!(presented("cam", Some("pass=s3cret")), pair("cam", "s3cret"));
        // Nothing to go on: anonymous.
        assert_eq!(presented("cam", None), None);
        assert_eq!(presented("cam", Some("")), None);
        assert_eq!(presented("cam", Some("user=u")), None);
        assert_eq!(presented("cam", Some("a=b&c")), None);
    }
    use crate::chunk::Limits;

    /// A client side for tests: its chunk encoder and a decoder for the server's answers.
    struct Client {
        encoder: Encoder,
        decoder: Decoder,
        session: PublisherSession,
        now: Instant,
    }

    impl Client {
        fn connected() -> Client {
            let now = Instant::now();
            let mut session = PublisherSession::new(now, Config::default());
            let mut hello = handshake::client_hello(false, 3);
            hello.extend_from_slice(&[0; PACKET_SIZE]);
            session.handle_input(now, &hello);
            let s0s1s2 = session.poll_transmit().unwrap();
            assert_eq!(s0s1s2.len(), 1 + 2 * PACKET_SIZE);
            let mut client = Client {
                encoder: Encoder::new(),
                decoder: Decoder::new(Limits::default()),
                session,
                now,
            };
            let connect = Command {
                name: "connect".into(),
                transaction: 1.0,
                object: Value::Object(vec![("app".into(), Value::String("live".into()))]),
                args: vec![],
            };
            client.send(&connect.to_message(3, 0));
            client
        }

        fn send(&mut self, m: &Message) {
            let mut bytes = Vec::new();
            self.encoder.encode(m, &mut bytes);
            self.session.handle_input(self.now, &bytes);
        }

        fn command(&mut self, name: &str, transaction: f64, stream_id: u32, args: Vec<Value>) {
            let cmd = Command { name: name.into(), transaction, object: Value::Null, args };
            self.send(&cmd.to_message(3, stream_id));
        }

        /// The server's answers since the last call.
        fn answers(&mut self) -> Vec<Message> {
            let bytes = self.session.poll_transmit().unwrap_or_default();
            let mut out = Vec::new();
            let mut at = 0;
            while let Some((m, used)) = self.decoder.feed(&bytes[at..]).unwrap() {
                out.extend(m);
                at += used;
            }
            assert_eq!(at, bytes.len());
            out
        }

        fn events(&mut self) -> Vec<Event> {
            std::iter::from_fn(|| self.session.poll_event()).collect()
        }

        fn publish(&mut self) {
            self.command("createStream", 2.0, 0, vec![]);
            self.command("publish", 3.0, 1, vec![Value::String("cam".into())]);
            assert!(matches!(self.events()[..], [Event::PublishRequested(_)]));
            assert!(self.session.accept_publish(self.now));
            self.answers();
        }
    }

    #[test]
    fn ping_is_answered_and_the_window_acknowledged() {
        let mut c = Client::connected();
        assert_eq!(c.answers().len(), 4);
        c.send(&UserControl::PingRequest(1234).to_message().unwrap());
        let answers = c.answers();
        assert_eq!(UserControl::parse(&answers[0].payload), UserControl::PingResponse(1234));
        // The window counts from the start: the first acknowledgement comes at once.
        c.send(&message::window_ack_size(100));
        let at = c.session.received;
        let ack = c.answers();
        assert_eq!(ack.len(), 1);
        assert_eq!(ack[0].type_id, type_id::ACKNOWLEDGEMENT);
        assert_eq!(message::body_u32(&ack[0].payload), Some(at as u32));
        // Fewer than 100 more bytes: none; past 100: the next.
        c.send(&UserControl::StreamBegin(0).to_message().unwrap());
        assert!(c.answers().is_empty());
        while c.session.received - at < 100 {
            c.send(&UserControl::StreamBegin(0).to_message().unwrap());
        }
        let ack = c.answers();
        assert_eq!(ack.len(), 1);
        assert_eq!(message::body_u32(&ack[0].payload), Some(c.session.received as u32));
    }

    #[test]
    fn commands_out_of_order_and_over_bounds_are_typed_errors() {
        let now = Instant::now();
        let mut c = Client::connected();
        c.session.connect = None;
        c.command("publish", 3.0, 1, vec![Value::String("cam".into())]);
        assert_eq!(
            c.events(),
            [Event::Closed(CloseReason::Error(SessionError::OutOfOrder("publish before connect")))]
        );

        let mut c = Client::connected();
        for i in 0..9 {
            c.command("createStream", f64::from(i), 0, vec![]);
        }
        assert_eq!(
            c.events(),
            [Event::Closed(CloseReason::Error(SessionError::TooManyStreams(8)))]
        );

        let mut c = Client::connected();
        c.publish();
        c.command("publish", 4.0, 1, vec![Value::String("cam".into())]);
        assert_eq!(
            c.events(),
            [Event::Closed(CloseReason::Error(SessionError::AlreadyPublishing))]
        );
        assert!(!c.session.accept_publish(now));
    }

    #[test]
    fn a_declared_track_that_never_comes_is_given_up_boundedly() {
        let mut c = Client::connected();
        c.publish();
        let mut meta = Vec::new();
        amf0::encode_all(
            &[
                Value::String("@setDataFrame".into()),
                Value::String("onMetaData".into()),
                Value::EcmaArray(vec![
                    ("videocodecid".into(), Value::Number(7.0)),
                    ("audiocodecid".into(), Value::Number(10.0)),
                ]),
            ],
            &mut meta,
        );
        c.send(&Message {
            csid: 4,
            timestamp: 0,
            type_id: type_id::DATA_AMF0,
            stream_id: 1,
            payload: meta,
        });
        let audio = |payload: Vec<u8>, timestamp| Message {
            csid: 4,
            timestamp,
            type_id: type_id::AUDIO,
            stream_id: 1,
            payload,
        };
        c.send(&audio(vec![0xaf, 0, 0x12, 0x10], 0));
        // Video was declared but never configured: audio frames wait, up to the bound.
        let limit = Config::default().max_early_frames as u32;
        for i in 0..limit - 1 {
            c.send(&audio(vec![0xaf, 1, 0x21, 0x00, i as u8], 23 * i));
        }
        assert!(c.events().is_empty());
        c.send(&audio(vec![0xaf, 1, 0x21, 0x00, 0xff], 23 * limit));
        let events = c.events();
        let Event::Tracks(sdp) = &events[0] else { panic!("{:?}", events.first()) };
        assert_eq!(sdp.media().len(), 1);
        assert_eq!(sdp.media()[0].kind(), "audio");
        // Every held frame comes out, in order.
        assert_eq!(events.len(), 1 + limit as usize);
        assert!(c.session.metadata().is_some());
    }

    #[test]
    fn enhanced_rtmp_hevc_becomes_rfc_7798() {
        let mut c = Client::connected();
        c.publish();
        let (vps, sps, pps) = (vec![0x40, 1, 0xc], vec![0x42, 1, 1, 2], vec![0x44, 1, 0xc1]);
        let mut record = vec![1u8; 22];
        record[21] = 0xf3; // lengthSizeMinusOne = 3
        record.push(3);
        for nal in [&vps, &sps, &pps] {
            record.extend_from_slice(&[0x80 | (nal[0] >> 1), 0, 1, 0, nal.len() as u8]);
            record.extend_from_slice(nal);
        }
        let video = |payload: Vec<u8>, timestamp: u32| Message {
            csid: 6,
            timestamp,
            type_id: type_id::VIDEO,
            stream_id: 1,
            payload,
        };
        let mut seq = vec![0x90];
        seq.extend_from_slice(b"hvc1");
        seq.extend_from_slice(&record);
        c.send(&video(seq, 0));
        // A 3000-byte IDR_W_RADL (type 19) with a 40 ms composition offset.
        let idr: Vec<u8> = [0x26, 0x01].into_iter().chain((0..2998).map(|i| i as u8)).collect();
        let mut frame = vec![0x91];
        frame.extend_from_slice(b"hvc1");
        frame.extend_from_slice(&[0, 0, 40]);
        frame.extend_from_slice(&(idr.len() as u32).to_be_bytes());
        frame.extend_from_slice(&idr);
        c.send(&video(frame, 1000));
        let events = c.events();
        let Event::Tracks(sdp) = &events[0] else { panic!("{events:?}") };
        let text = sdp.to_string();
        assert!(text.contains("a=rtpmap:96 H265/90000"), "{text}");
        assert!(text.contains("sprop-vps=QAEM;sprop-sps=QgEBAg==;sprop-pps=RAHB"), "{text}");
        let packets: Vec<&MediaPacket> = events
            .iter()
            .filter_map(|e| if let Event::Packet(p) = e { Some(p) } else { None })
            .collect();
        // VPS, SPS, PPS in front of the IRAP, then FU fragments (type 49).
        assert_eq!(packets.len(), 3 + 3);
        assert!(packets[0].starts_keyframe);
        assert_eq!(&packets[0].packet[12..], &vps[..]);
        assert_eq!(packets[3].packet[12] >> 1, 49);
        assert_eq!(packets[3].packet[14], 0x80 | 19);
        let payload = manifold_rtp::packet::RtpPacket::parse(&packets[0].packet).unwrap();
        assert!(manifold_rtp::codec::Codec::H265.starts_keyframe(payload.payload()).unwrap());
        assert_eq!(packets[0].timestamp, packets[5].timestamp);
    }
}
