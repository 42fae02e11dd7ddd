//! RTMP ingest for manifold, sans-IO: the server side of a publisher's connection, from the
//! handshake to RTP packets and an SDP for RTSP readers.
//!
//! Layers, each its own module and error type:
//!
//! * [`handshake`]: C0/C1/C2 ↔ S0/S1/S2, plain and the HMAC-SHA256 digest form;
//! * [`chunk`]: the chunk stream decoder and encoder (all four header types, extended
//!   timestamps, Set Chunk Size, Abort), bounded by [`chunk::Limits`];
//! * [`message`]: message types, protocol control and user control bodies;
//! * [`amf0`] and [`command`]: AMF0 values, commands and the server's answers;
//! * [`flv`]: FLV audio/video tag bodies and codec configuration records;
//! * [`media`], [`clock`] and [`sdp`]: FLV frames onto RTP (RFC 6184, RFC 7798, RFC 3640),
//!   RTMP milliseconds onto RTP clocks, and the SDP;
//! * [`report`]: RTCP sender reports mapping every track onto one wall clock, for A/V sync;
//! * [`session`]: [`PublisherSession`], which ties them together: bytes in
//!   (`handle_input(now, …)`), bytes out (`poll_transmit`), events out (`poll_event`).
//!
//! Nothing here does I/O or reads a clock. A caller's loop, in outline:
//!
//! ```
//! use std::time::Instant;
//! use manifold_rtmp::{handshake, Config, Event, PublisherSession, Rejection};
//!
//! let now = Instant::now();
//! let mut session = PublisherSession::new(now, Config { seed: 42, ..Config::default() });
//! // Bytes read from the connection (here a client's C0 + C1):
//! session.handle_input(now, &handshake::client_hello(true, 7));
//! while let Some(bytes) = session.poll_transmit() {
//!     assert_eq!(bytes.len(), 1 + 2 * handshake::PACKET_SIZE); // S0 + S1 + S2: write them
//! }
//! while let Some(event) = session.poll_event() {
//!     match event {
//!         // Check the publish permission for request.path() with request.query_param(…).
//!         Event::PublishRequested(request) if request.query_param("pass") == Some("p") => {
//!             session.accept_publish(now);
//!         }
//!         Event::PublishRequested(_) => {
//!             session.reject_publish(Rejection::Denied);
//!         }
//!         Event::Tracks(_sdp) => {}   // the description readers get
//!         Event::Packet(_packet) => {} // RTP for track `packet.track`, keyframe flagged
//!         Event::SenderReport { .. } => {} // RTCP for that track, after a packet
//!         Event::Closed(_reason) => {} // write what poll_transmit still gives, then close
//!     }
//! }
//! // And: handle_timeout(now) when poll_timeout() passes, handle_peer_closed() at EOF.
//! ```
#![forbid(unsafe_code)]

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod clock;
pub mod command;
pub mod flv;
pub mod handshake;
pub mod media;
pub mod message;
mod random;
pub mod report;
pub mod rtmpt;
pub mod sdp;
pub mod sei;
pub mod session;

pub use media::MediaPacket;
pub use session::{
    CloseReason, Config, Event, PublishRequest, PublisherSession, Rejection, SessionError,
};
