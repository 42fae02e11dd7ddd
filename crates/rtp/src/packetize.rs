//! Packetizers: a coded frame's NAL units into RTP payloads. The H.264 one (RFC 6184) serves
//! the synthetic stream and the RTMP ingest; the H.265 one (RFC 7798) the RTMP ingest's
//! Enhanced RTMP HEVC.

pub mod h264;
pub mod h265;
