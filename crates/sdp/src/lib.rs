//! SDP (RFC 8866) for manifold, sans-IO: parse and write session descriptions without losing a
//! byte, typed views of the attributes RTSP needs (`rtpmap`, `fmtp`, `control`, `range`,
//! `extmap`, directions, `framerate`, the `m=` line), builders to produce one, control URL
//! resolution (RFC 2326 §C.1.1) and H.264 `sprop-parameter-sets` decoding.
//!
//! Parsing is lenient like real peers (LF or CRLF, trailing whitespace, no `s=`/`t=`, unknown
//! lines and attributes kept in place) but refuses input that is not SDP at all.
//! [`Sdp::parse_strict`] additionally checks every typed line.
//!
//! ```
//! let body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n\
//!              m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n";
//! let sdp = manifold_sdp::Sdp::parse(body)?;
//! let video = &sdp.media()[0];
//! assert_eq!(video.rtpmap(96).map(|r| r.clock_rate), Some(90000));
//! assert_eq!(sdp.media_urls("rtsp://127.0.0.1:8554/live/"), ["rtsp://127.0.0.1:8554/live/stream=0"]);
//! assert_eq!(sdp.to_bytes(), body);
//! # Ok::<(), manifold_sdp::ParseError>(())
//! ```
#![forbid(unsafe_code)]

mod attr;
mod error;
mod line;
mod media;
mod parse;
mod sdp;
mod sprop;
mod url;

pub use attr::{parse_framerate, Direction, Extmap, Fmtp, MediaLine, Npt, Range, RtpMap};
pub use error::{ParseError, ValueError};
pub use line::{Attribute, Line};
pub use media::Media;
pub use sdp::Sdp;
pub use sprop::decode_parameter_sets;
pub use url::{base_url, resolve};
