//! `--rtp /cam=0.0.0.0:5004 --rtp-sdp cam.sdp`: a stream fed by raw RTP over UDP (as
//! `ffmpeg -f rtp` sends it), described by an SDP file, received on the shard that owns it:
//! RTP on the given port, RTCP (sender reports) on the next one.
//!
//! Packets go to the track whose SDP media lists their payload type (the first track when
//! none does). The hub runs with continuity on, so a sender that restarts (new SSRC, new
//! counters) continues the same outgoing stream for the readers.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use glommio::net::UdpSocket;
use glommio::{spawn_local, timer};
use manifold_sdp::Sdp;

use crate::config::RtpInput;
use crate::plane::hub::Hub;
use crate::shard::{Media, Shard};

/// Starts the raw RTP inputs this shard owns (input `i` belongs to shard `i % shards`).
pub(crate) fn start_all(shard: &Rc<Shard>) -> Result<(), String> {
    for (i, input) in shard.config().rtp.iter().enumerate() {
        if i % shard.shards() == shard.id() {
            start(shard, input)
                .map_err(|e| format!("rtp input {} at {}: {e}", input.path, input.listen))?;
        }
    }
    Ok(())
}

fn start(shard: &Rc<Shard>, input: &RtpInput) -> Result<(), String> {
    input.validate().map_err(|e| e.to_string())?;
    let text = std::fs::read(&input.sdp)
        .map_err(|e| format!("reading SDP {}: {e}", input.sdp.display()))?;
    let sdp = Sdp::parse(&text).map_err(|e| format!("SDP {}: {e}", input.sdp.display()))?;
    if sdp.media().is_empty() {
        return Err(format!("SDP {} has no media", input.sdp.display()));
    }
    let payload_types: Vec<Vec<u8>> =
        sdp.media().iter().map(|m| m.media_line().payload_types().collect()).collect();
    let tracks = crate::registry::TrackInfo::all_of(&sdp);
    let rtp = UdpSocket::bind(input.listen).map_err(|e| format!("binding RTP: {e}"))?;
    crate::sys::set_recv_buffer(crate::sys::fd_of(&rtp), crate::sys::INGEST_RCVBUF);
    let rtcp_addr = SocketAddr::new(input.listen.ip(), input.listen.port() + 1);
    let rtcp = UdpSocket::bind(rtcp_addr).map_err(|e| format!("binding RTCP {rtcp_addr}: {e}"))?;
    let relay_sdp = crate::registry::relay_sdp(sdp);
    let info = shard
        .registry()
        .publish(&input.path, shard.id(), relay_sdp, tracks)
        .map_err(|e| e.to_string())?;
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
