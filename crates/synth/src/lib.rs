//! The synthetic H.264 stream behind `manifold serve --synthetic` and `manifold source`.
//!
//! An embedded clip ([`EMBEDDED_CLIP`], a raw Annex-B stream made by the ffmpeg command in
//! `assets/README.md`) is parsed into access units ([`Clip`]), packetized once per RFC 6184
//! packetization-mode 1 ([`Packetizer`]: single NAL units, FU-A for large ones, optionally
//! STAP-A for parameter sets), and looped forever by [`SyntheticStream`] with continuous
//! sequence numbers and RTP timestamps. Every packet carries two RFC 8285 header extension
//! elements ([`stamps`]): abs-capture-time and a 64-bit packet counter, from which
//! receivers measure latency, loss, duplicates and reordering ([`Stamps`]).
//!
//! **Bitrate.** The clip is small (~150 kbit/s). A higher `target_bitrate` is reached by
//! appending filler-data NAL units (type 12, `FF … FF 80`) to frames, each in its own
//! single-NAL packet after the picture's packets (the marker moves to the last filler
//! packet). Decoders discard filler (ITU-T H.264 §7.4.2.7), so the stream stays decodable
//! while its packet rate and byte rate are those of a real encoder at that bitrate. A
//! running budget carries the surplus or debt from frame to frame: IDR frames overshoot, the
//! P frames after them get less filler, and the long-run average is exact.
//!
//! Sans-IO: no sockets, no clocks. Time and capture timestamps come in as arguments.
//!
//! ```
//! use std::time::Duration;
//! use manifold_rtp::packet::RtpPacket;
//! use manifold_synth::{ExtensionIds, NtpTime, Stamps, StreamConfig, SyntheticStream};
//!
//! let config = StreamConfig { target_bitrate: Some(2_000_000), ..StreamConfig::default() };
//! let mut stream = SyntheticStream::new(config)?;
//! let sdp = stream.sdp().media_section(0, Some("stream=0")); // for DESCRIBE
//! assert!(sdp.contains("a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"));
//!
//! // Source side: at `now` on a monotonic clock, with the wall clock as capture time.
//! let now = Duration::from_secs(5);
//! let capture = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
//! let mut buf = Vec::new();
//! while let Some(info) = stream.poll_packet(now, capture, &mut buf) {
//!     // socket.send(&buf[..info.len]) ...
//!     // Receiver side: the stamps come back out of the packet.
//!     let packet = RtpPacket::parse(&buf[..info.len]).expect("a well-formed packet");
//!     let stamps = Stamps::from_packet(&packet, ExtensionIds::default());
//!     assert_eq!(stamps.capture_time, Some(capture));
//!     assert_eq!(stamps.counter, Some(info.counter));
//! }
//! // Sleep until then, and poll again.
//! assert_eq!(stream.next_frame_due(), now + Duration::from_millis(40));
//! # Ok::<(), manifold_synth::SynthError>(())
//! ```
#![forbid(unsafe_code)]

mod clip;
mod error;
mod report;
mod sdp;
pub mod stamps;
mod stream;
mod wire;

pub use clip::{Clip, EMBEDDED_CLIP};
pub use error::SynthError;
pub use manifold_rtp::ntp::NtpTime;
pub use manifold_rtp::packetize::h264::{Packetizer, FU_A, MIN_PAYLOAD, STAP_A};
pub use report::{SenderReports, SENDER_REPORT_MAX};
pub use sdp::MediaSdp;
pub use stamps::{ExtensionIds, Stamps, ABS_CAPTURE_TIME_URI, PACKET_COUNTER_URI};
pub use stream::{
    PacketInfo, StreamConfig, SyntheticStream, CLOCK_RATE, DEFAULT_MTU, MAX_BITRATE, MAX_MTU,
    MIN_MTU,
};

/// Highest accepted frame rate.
pub const MAX_FPS: u32 = 1000;
