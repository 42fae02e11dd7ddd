//! `--rtp /cam=0.0.0.0:5004 --rtp-sdp cam.sdp`: a stream fed by raw RTP over UDP (as
//! `ffmpeg -f rtp` sends it), described by an SDP file, received on the shard that owns it:
//! RTP on the given port, RTCP (sender reports) on the next one.
//!
//! Packets go to the track whose SDP media lists their payload type (the first track when
//! none does). The hub runs with continuity on, so a sender that restarts (new SSRC, new
//! counters) continues the same outgoing stream for the readers.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use glommio::net::UdpSocket;
use glommio::{spawn_local, timer};
use manifold_sdp::Sdp;

use crate::config::{ConfigError, RtpInput};
use crate::plane::hub::Hub;
use crate::registry::PathBusy;
use crate::shard::{Media, Shard};

/// Why a raw RTP input could not start (in [`crate::ShardError::RtpInput`], which names its
/// path and address).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtpInputError {
    /// The input's settings are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The SDP file cannot be read.
    #[error("cannot read SDP {}", file.display())]
    ReadSdp {
        /// The file.
        file: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The SDP file is not SDP.
    #[error("SDP {} does not parse", file.display())]
    ParseSdp {
        /// The file.
        file: PathBuf,
        /// Why it does not parse.
        source: manifold_sdp::ParseError,
    },
    /// The SDP file describes no media.
    #[error("SDP {} has no media", file.display())]
    NoMedia {
        /// The file.
        file: PathBuf,
    },
    /// Binding the RTP or the RTCP socket failed.
    #[error("cannot bind {what} on {addr}")]
    Bind {
        /// `"RTP"` or `"RTCP"`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The path is already published.
    #[error(transparent)]
    Publish(#[from] PathBusy),
}

/// Starts raw RTP input `input` on `shard`: binds its ports and publishes its SDP.
pub(crate) fn start(shard: &Rc<Shard>, input: &RtpInput) -> Result<(), RtpInputError> {
    input.validate()?;
    let file = || input.sdp.clone();
    let text = std::fs::read(&input.sdp)
        .map_err(|source| RtpInputError::ReadSdp { file: file(), source })?;
    let sdp =
        Sdp::parse(&text).map_err(|source| RtpInputError::ParseSdp { file: file(), source })?;
    if sdp.media().is_empty() {
        return Err(RtpInputError::NoMedia { file: file() });
    }
    let payload_types: Vec<Vec<u8>> =
        sdp.media().iter().map(|m| m.media_line().payload_types().collect()).collect();
    let tracks = crate::registry::TrackInfo::all_of(&sdp);
    let rtp = UdpSocket::bind(input.listen).map_err(|e| RtpInputError::Bind {
        what: "RTP",
        addr: input.listen,
        source: e.into(),
    })?;
    crate::sys::set_recv_buffer(crate::sys::fd_of(&rtp), crate::sys::INGEST_RCVBUF);
    let rtcp_addr = SocketAddr::new(input.listen.ip(), input.listen.port() + 1);
    let rtcp = UdpSocket::bind(rtcp_addr).map_err(|e| RtpInputError::Bind {
        what: "RTCP",
        addr: rtcp_addr,
        source: e.into(),
    })?;
    let relay_sdp = crate::registry::relay_sdp(sdp);
    let info = shard.registry().publish(&input.path, shard.id(), relay_sdp, tracks)?;
    let hub = Hub::new(info.clone(), shard.shards(), shard.config().gop_cache)
        .with_continuity(crate::sys::random_u32);
    shard.add_hub(hub);
    tracing::info!(path = %input.path, listen = %input.listen, tracks = info.tracks.len(),
        "raw RTP input listening");
    // Per track: the sender's SSRC last seen, to route its sender reports.
    let ssrcs = Rc::new(RefCell::new(vec![None::<u32>; payload_types.len()]));
    {
        let (shard, info, ssrcs) = (shard.clone(), info.clone(), ssrcs.clone());
        spawn_local(async move {
            let mut buf = vec![0u8; 65536];
            let mut seen = None::<SocketAddr>;
            loop {
                // A receive that finds a datagram waiting does not yield: under a flood (or a shard
                // too slow for its publisher) this loop would keep the shard to itself.
                glommio::yield_if_needed().await;
                match rtp.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        let Some(bytes) = buf.get(..n).filter(|b| b.len() >= 12) else { continue };
                        if seen != Some(from) {
                            tracing::info!(path = %info.path, peer = %from, side = "upstream",
                                "raw RTP sender");
                            seen = Some(from);
                        }
                        let pt = bytes[1] & 0x7f;
                        let track = payload_types.iter().position(|p| p.contains(&pt)).unwrap_or(0);
                        let ssrc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
                        if let Some(s) = ssrcs.borrow_mut().get_mut(track) {
                            *s = Some(ssrc);
                        }
                        shard.ingest(Instant::now(), info.id, track, bytes, Media::Rtp);
                    }
                    Err(e) => {
                        tracing::debug!(path = %info.path, error = %e, side = "upstream",
                            "raw RTP receive failed");
                        timer::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }
    let shard = shard.clone();
    spawn_local(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            // As above: a waiting datagram does not yield.
            glommio::yield_if_needed().await;
            match rtcp.recv_from(&mut buf).await {
                Ok((n, _from)) => {
                    let Some(bytes) = buf.get(..n).filter(|b| b.len() >= 8) else { continue };
                    let ssrc = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                    let track = ssrcs.borrow().iter().position(|s| *s == Some(ssrc));
                    if let Some(track) = track {
                        shard.ingest(Instant::now(), info.id, track, bytes, Media::Rtcp);
                    }
                }
                Err(e) => {
                    tracing::debug!(path = %info.path, error = %e, side = "upstream",
                        "raw RTCP receive failed");
                    timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    })
    .detach();
    Ok(())
}
