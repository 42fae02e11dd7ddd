//! `--synthetic /path`: a stream fed by manifold-synth's looping H.264 source instead of a
//! publisher, paced by a glommio timer on the shard that owns it.

use std::rc::Rc;
use std::time::{Instant, SystemTime};

use glommio::{spawn_local, timer};
use manifold_rtp::codec::Codec;
use manifold_rtp::track::PayloadTypes;
use manifold_synth::{NtpTime, SenderReports, StreamConfig, SyntheticStream, SENDER_REPORT_MAX};

use crate::plane::hub::Hub;
use crate::registry::{PathBusy, TrackInfo};
use crate::shard::{Media, Shard};

/// Why a synthetic source could not start (in [`crate::ShardError::Synthetic`], which names
/// the path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyntheticError {
    /// The source refused its configuration (e.g. the bitrate).
    #[error("cannot create the synthetic stream")]
    Stream(#[source] manifold_synth::SynthError),
    /// The path is already published.
    #[error(transparent)]
    Publish(#[from] PathBusy),
}

/// Publishes `path` from a synthetic source owned by `shard`.
pub(crate) fn start(shard: &Rc<Shard>, path: &str) -> Result<(), SyntheticError> {
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let config = StreamConfig {
        target_bitrate: shard.config().synthetic_bitrate,
        ..StreamConfig::default()
    };
    let mut stream = SyntheticStream::new(config).map_err(SyntheticError::Stream)?;
    let media = stream.sdp();
    let sdp = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=manifold synthetic {path}\r\nt=0 0\r\n\
         a=tool:manifold\r\na=control:*\r\n{}",
        media.media_section(0, Some("trackID=0"))
    );
    let tracks = vec![TrackInfo {
        codec: Some(Codec::H264),
        clock_rate: manifold_synth::CLOCK_RATE,
        // Its own packets, of its own SDP's type.
        payload_types: PayloadTypes::ANY,
    }];
    let info = shard.registry().publish(&path, shard.id(), sdp, tracks)?;
    let id = info.id;
    shard.add_hub(Hub::new(info, shard.shards(), shard.config().gop_cache));
    let upstream = crate::metrics::Upstream { kind: "synthetic", peer: None, conn: None };
    shard.obs.set_upstream(id, upstream);
    tracing::info!(%path, "synthetic source started");
    let shard = shard.clone();
    spawn_local(async move {
        let start = Instant::now();
        let mut buf = Vec::with_capacity(manifold_synth::DEFAULT_MTU);
        let mut reports = SenderReports::new(stream.config().ssrc, stream.config().fps, None);
        let mut report = [0u8; SENDER_REPORT_MAX];
        loop {
            let due = stream.next_frame_due();
            let now = start.elapsed();
            if due > now {
                timer::sleep(due - now).await;
            }
            let capture = NtpTime::from_system_time(SystemTime::now());
            let mut last = None;
            // One frame per turn: a shard that falls behind (too many readers for its CPU)
            // would otherwise catch up in one loop that never ends, as more frames fall due
            // while it sends, and the shard's other tasks (RTSP answers among them) would
            // never run again.
            while let Some(info) = stream.poll_packet(start.elapsed(), capture, &mut buf) {
                if let Some(bytes) = buf.get(..info.len) {
                    if !shard.ingest(Instant::now(), id, 0, bytes, Media::Rtp) {
                        // The stream was ended (its path taken over): stop.
                        return;
                    }
                    reports.sent(bytes);
                }
                last = Some(info);
                if info.marker {
                    break;
                }
            }
            // A sender report about once a second, so players can place the stream on the
            // wall clock.
            if let Some(len) = last.and_then(|l| reports.after_frame(&l, capture, &mut report)) {
                shard.ingest(Instant::now(), id, 0, &report[..len], Media::Rtcp);
            }
            // Behind: the next frame is due already. Let the shard's other tasks run once
            // this task has had its share of the shard's time.
            if stream.next_frame_due() <= start.elapsed() {
                glommio::yield_if_needed().await;
            }
        }
    })
    .detach();
    Ok(())
}
