//! The RTCP receiver reports a pull sends its upstream, as VLC and ffmpeg do: RFC 3550 timing
//! (`manifold_rtp::report::ReportClock`), and per track one compound with the track's report
//! block from the stream's hub (`plane/upstream_loss.rs`: loss, jitter, the last sender
//! report), on the track's RTCP port (from the socket bound next to its RTP port) or its
//! interleaved RTCP channel. Some cameras and NVRs stop streaming to a client that sends none,
//! whatever RTSP keep-alives it sends.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use glommio::net::UdpSocket;
use manifold_rtp::report::{receiver_report, ReportClock, MIN_INTERVAL};
use manifold_rtp::Ssrc;
use manifold_rtsp::codec::write_interleaved;
use manifold_rtsp::session::client::{ClientTrack, RtcpRoute};

use crate::shard::Shard;

/// Room for one compound: an RR with one block (32 bytes) and an SDES with a CNAME of at most
/// 255 bytes.
const COMPOUND_MAX: usize = 32 + 8 + 2 + 255 + 3;

/// A playing pull's receiver reports.
pub(crate) struct PullReports {
    clock: ReportClock,
    ssrc: Ssrc,
    cname: String,
    /// Where each track's reports go, by track.
    routes: Vec<(usize, RtcpRoute)>,
    /// The upstream server's address, for UDP routes.
    server: IpAddr,
    /// Each track's RTCP socket, by track (UDP pulls only).
    sockets: Vec<Rc<UdpSocket>>,
    buf: Vec<u8>,
    frames: Vec<u8>,
}

impl PullReports {
    /// Reports from `now` (PLAY answered) for the `tracks` the upstream set up, from
    /// `sockets` (by track; empty over TCP) to `server`; `seed` randomises the intervals and
    /// names the reporting source.
    pub(crate) fn start(
        now: Instant,
        tracks: &[ClientTrack],
        sockets: Vec<Rc<UdpSocket>>,
        server: IpAddr,
        local: Option<IpAddr>,
        seed: u32,
    ) -> PullReports {
        let routes =
            tracks.iter().enumerate().filter_map(|(i, t)| Some((i, t.rtcp_route()?))).collect();
        let cname = match local {
            Some(ip) => format!("manifold@{ip}"),
            None => "manifold".to_owned(),
        };
        PullReports {
            clock: ReportClock::start(now, MIN_INTERVAL, u64::from(seed)),
            ssrc: Ssrc(seed),
            cname,
            routes,
            server,
            sockets,
            buf: vec![0; COMPOUND_MAX],
            frames: Vec::new(),
        }
    }

    /// When the next report is due.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.clock.poll_timeout()
    }

    /// When reports are due at `now`: each routed track's, with its block from `stream`'s hub
    /// (an RR without one while the track's source is unknown, as RFC 3550 allows). UDP
    /// reports are sent here, best effort like any datagram; the interleaved ones are
    /// returned, for the caller to write on the connection.
    pub(crate) async fn send_if_due(
        &mut self,
        now: Instant,
        shard: &Shard,
        stream: u64,
    ) -> io::Result<&[u8]> {
        self.frames.clear();
        if !self.clock.handle_timeout(now) {
            return Ok(&self.frames);
        }
        let blocks = shard.upstream_report_blocks(stream, now);
        for &(track, route) in &self.routes {
            let block = blocks.iter().find(|(t, _)| *t == track).map(|(_, b)| *b);
            let len = receiver_report(&mut self.buf, self.ssrc, &self.cname, block)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let compound = &self.buf[..len];
            match route {
                RtcpRoute::Udp { port } => {
                    if let Some(socket) = self.sockets.get(track) {
                        let to = SocketAddr::new(self.server, port);
                        if let Err(e) = socket.send_to(compound, to).await {
                            tracing::debug!(%to, error = %e, side = "upstream",
                                "pull: receiver report not sent");
                        }
                    }
                }
                RtcpRoute::Interleaved { channel } => {
                    write_interleaved(channel, compound, &mut self.frames)
                        .map_err(|e| io::Error::other(e.to_string()))?;
                }
            }
        }
        Ok(&self.frames)
    }
}
