//! The crate's one error type.

/// Why a clip could not be used or a stream could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// The Annex-B input holds no start code, or no coded picture.
    #[error("the clip holds no coded pictures")]
    EmptyClip,
    /// The first access unit is not an IDR picture, so the clip cannot be looped cleanly.
    #[error("the clip does not start with an IDR picture")]
    NoKeyframeAtStart,
    /// The clip carries no SPS or no PPS before its first picture.
    #[error("the clip has no {0} before its first picture")]
    MissingParameterSet(&'static str),
    /// A NAL unit is shorter than its one-byte header, or has the forbidden bit set.
    #[error("malformed NAL unit at byte {offset} of the clip")]
    MalformedNal {
        /// Offset of the NAL unit (after its start code) in the Annex-B input.
        offset: usize,
    },
    /// The requested GOP is zero or longer than the clip's shortest GOP (frames can only be
    /// left out of a GOP, never added).
    #[error("GOP of {requested} frames is outside 1..={max} (the clip's shortest GOP)")]
    InvalidGop {
        /// The requested frames per GOP.
        requested: u32,
        /// The clip's shortest GOP.
        max: usize,
    },
    /// The frame rate is zero or above the supported maximum.
    #[error("frame rate {0} is outside 1..={max}", max = crate::MAX_FPS)]
    InvalidFrameRate(u32),
    /// The configured RTP packet size cannot hold the header, extensions and some payload.
    #[error("mtu {mtu} is below the minimum of {min} bytes")]
    MtuTooSmall {
        /// The configured maximum RTP packet size.
        mtu: usize,
        /// The smallest size this stream accepts.
        min: usize,
    },
    /// The configured RTP packet size is above what a UDP datagram can carry.
    #[error("mtu {0} is above 65507 bytes")]
    MtuTooLarge(usize),
    /// An RFC 8285 one-byte extension id is outside 1..=14, or both ids are equal.
    #[error("header extension ids {capture_time} and {counter} must be distinct and in 1..=14")]
    InvalidExtensionIds {
        /// The id configured for abs-capture-time.
        capture_time: u8,
        /// The id configured for the packet counter.
        counter: u8,
    },
    /// The payload type is not a 7-bit value.
    #[error("payload type {0} is not in 0..=127")]
    InvalidPayloadType(u8),
    /// The target bitrate is below what the clip needs at this frame rate and packet size;
    /// filler can only add bytes, never remove them.
    #[error("target bitrate {requested} bit/s is below the clip's own {minimum} bit/s")]
    BitrateBelowClip {
        /// The configured target, in bits per second.
        requested: u64,
        /// The clip's bitrate with RTP overhead at the configured frame rate and packet size.
        minimum: u64,
    },
    /// The target bitrate is above [`crate::MAX_BITRATE`].
    #[error("target bitrate {0} bit/s is above the maximum of {max}", max = crate::MAX_BITRATE)]
    BitrateTooHigh(u64),
    /// `manifold-rtp` refused to build a packet with this configuration.
    #[error("cannot build RTP packets with this configuration: {0}")]
    Packet(#[from] manifold_rtp::packet::BuildError),
}
