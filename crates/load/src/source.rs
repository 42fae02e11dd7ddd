//! `manifold source URL`: publishes the synthetic H.264 stream (the one the relay's
//! `--synthetic` serves, stamped with capture times) to any RTSP server with
//! ANNOUNCE → SETUP (`mode=record`) → RECORD, over TCP (interleaved) or UDP, paced by the
//! wall clock; or, for an `rtp://HOST:PORT` URL, as plain RTP/UDP with no signalling at all
//! (`crate::source_rtp`, as `ffmpeg -f rtp` sends it).
//!
//! One publisher needs no shards: this is a blocking `std::net` runtime around the sans-IO
//! [`ClientSession`] and [`SyntheticStream`]. A reader thread decodes what the server sends
//! (responses, its requests, interleaved RTCP) and hands it to the publishing thread, which
//! owns the session, writes requests and media, and sleeps until the next frame or timer.

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use manifold_rtsp::codec::{write_interleaved, write_request, write_response, Decoder, Item};
use manifold_rtsp::header::PortRange;
use manifold_rtsp::session::client::{
    ClientConfig, ClientEvent, ClientSession, ClientState, MediaTransport,
};
use manifold_rtsp::{ChannelId, Request, Response};
use manifold_synth::{NtpTime, SenderReports, StreamConfig, SyntheticStream, SENDER_REPORT_MAX};

use crate::quantity::parse_duration;
use crate::target::Target;

/// How long the TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long TEARDOWN may take at the end.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(2);

/// How the published media travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceTransport {
    /// Interleaved on the RTSP connection.
    Tcp,
    /// RTP/UDP to the server port the server answered.
    Udp,
    /// Interleaved through an RTSP-over-HTTP tunnel: requests and media in base64 on the
    /// POST connection, answers on the GET connection.
    Http,
}

/// Flags of `manifold source URL`.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Where to publish: an RTSP server, e.g. `rtsp://127.0.0.1:8554/cam` (credentials in
    /// the userinfo are used for Digest/Basic), or `rtp://HOST:PORT` for plain RTP/UDP to
    /// PORT with RTCP sender reports to PORT+1 (no signalling; see --sdp-file), or
    /// `rtmp://HOST[:PORT]/APP/STREAM[?user=U&pass=P]` to publish over RTMP.
    pub url: String,
    /// Media transport to the RTSP server (rtsp:// and rtsps:// only).
    #[arg(long, short = 't', value_enum, default_value = "tcp")]
    pub transport: SourceTransport,
    /// `rtsps://`: trust the server certificates that chain to this PEM file instead of the
    /// system's roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub tls_ca: Option<PathBuf>,
    /// `rtsps://`: accept any server certificate, unchecked (labs and tests only).
    #[arg(long)]
    pub insecure: bool,
    /// Target bitrate in bit/s, reached with filler NAL units (default: the clip's own,
    /// ~150 kbit/s).
    #[arg(long)]
    pub bitrate: Option<u64>,
    /// Frames per second.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// Frames per GOP (a keyframe every N frames), 1 to 25: the embedded clip's GOPs cut
    /// short (default: the clip's own, 25).
    #[arg(long)]
    pub gop: Option<u32>,
    /// Largest RTP packet in bytes, header and extensions included (100 to 65507).
    #[arg(long, default_value_t = manifold_synth::DEFAULT_MTU)]
    pub mtu: usize,
    /// Publish for this long, then stop (with TEARDOWN for rtsp://); default: until
    /// interrupted.
    #[arg(long, short = 'd', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// rtp:// only: write the stream's SDP (what `ffmpeg -sdp_file` writes, with the
    /// `a=extmap` lines) to this file before the first packet, atomically (temp file and
    /// rename), for the receiver: e.g. `manifold serve --rtp-sdp FILE`.
    #[arg(long, value_name = "FILE")]
    pub sdp_file: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

impl SourceArgs {
    /// Flags with their defaults, for `url`.
    pub fn new(url: impl Into<String>) -> SourceArgs {
        SourceArgs {
            url: url.into(),
            transport: SourceTransport::Tcp,
            tls_ca: None,
            insecure: false,
            bitrate: None,
            fps: 25,
            gop: None,
            mtu: manifold_synth::DEFAULT_MTU,
            duration: None,
            sdp_file: None,
            quiet: false,
        }
    }
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The URL is not usable.
    #[error(transparent)]
    Url(#[from] crate::LoadError),
    /// The stream configuration is refused (bitrate below the clip's, fps or GOP out of range).
    #[error("the synthetic stream's settings are refused")]
    Stream(#[from] manifold_synth::SynthError),
    /// A socket failed.
    #[error("server {peer}: {context}")]
    Io {
        /// The server.
        peer: SocketAddr,
        /// What we were doing.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The SDP file could not be written.
    #[error("writing the SDP file {}", path.display())]
    SdpFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A flag does not apply to this kind of URL.
    #[error("{0}")]
    Usage(String),
    /// The RTSP session failed (status, timeout, authentication).
    #[error("server {peer}: {reason}")]
    Session {
        /// The server.
        peer: SocketAddr,
        /// What happened.
        reason: String,
    },
}

/// What a finished publication sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// RTP packets sent (rtmp://: video messages, one per frame).
    pub packets: u64,
    /// RTP bytes sent (packets, without interleave or UDP/IP headers; rtmp://: the FLV
    /// video tag bodies).
    pub bytes: u64,
    /// Frames sent.
    pub frames: u64,
    /// Sends that failed and were skipped (rtp:// only: the receiver not up yet, ICMP
    /// errors); the source keeps pacing through them.
    pub send_errors: u64,
}

/// The session-level SDP of an ANNOUNCE around one synthetic media section.
pub fn announce_sdp(stream: &SyntheticStream, origin: std::net::IpAddr) -> String {
    let family = if origin.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=- 0 0 IN {family} {origin}\r\ns=manifold source\r\nc=IN {family} {origin}\r\n\
         t=0 0\r\na=tool:manifold\r\n{}",
        stream.sdp().media_section(0, Some("streamid=0"))
    )
}

/// What the reader thread hands over.
enum FromServer {
    Response(Response),
    Request(Request),
    Closed(String),
}

/// Where the media and its sender reports go once recording.
enum MediaOut {
    Interleaved {
        rtp: ChannelId,
        rtcp: ChannelId,
    },
    Udp {
        socket: UdpSocket,
        /// Sends the sender reports (the server's receiver reports to it are not read).
        rtcp: UdpSocket,
        to: SocketAddr,
        rtcp_to: SocketAddr,
    },
}

impl MediaOut {
    /// Sends an RTP packet, or (`report`) an RTCP compound, the way SETUP's answer said;
    /// `out` is scratch for the interleaved frame.
    fn send(
        &self,
        writer: &mut impl Write,
        out: &mut Vec<u8>,
        bytes: &[u8],
        report: bool,
    ) -> std::io::Result<()> {
        match self {
            MediaOut::Interleaved { rtp, rtcp } => {
                out.clear();
                if write_interleaved(if report { *rtcp } else { *rtp }, bytes, out).is_ok() {
                    writer.write_all(out)?;
                }
                Ok(())
            }
            MediaOut::Udp { socket, to, .. } if !report => socket.send_to(bytes, to).map(drop),
            MediaOut::Udp { rtcp, rtcp_to, .. } => {
                // Best effort, as any datagram: a full send buffer loses one report.
                let _ = rtcp.send_to(bytes, rtcp_to);
                Ok(())
            }
        }
    }
}

/// Publishes to an RTSP server (ANNOUNCE, RECORD) until the duration ends (then TEARDOWN) or
/// the server fails the session.
pub(crate) fn run_rtsp(args: &SourceArgs) -> Result<SourceStats, SourceError> {
    if args.sdp_file.is_some() {
        return Err(SourceError::Usage(
            "--sdp-file is for rtp:// URLs; an RTSP server gets the SDP in ANNOUNCE".into(),
        ));
    }
    let target = Target::resolve(&args.url)?;
    let peer = target.addr;
    let io = |context: &'static str| move |source| SourceError::Io { peer, context, source };
    let mut stream = SyntheticStream::new(stream_config(args))?;

    let user_agent = concat!("manifold-source/", env!("CARGO_PKG_VERSION"));
    let tunnel = args.transport == SourceTransport::Http;
    let dialer = target.dialer(args.tls_ca.as_deref(), args.insecure, tunnel, user_agent)?;
    let conn = dialer.open_blocking(CONNECT_TIMEOUT).map_err(|e| SourceError::Session {
        peer,
        reason: format!("opening the connection: {e}"),
    })?;
    // The reader thread blocks until the server sends or closes.
    conn.socket.set_read_timeout(None).map_err(io("clearing the read timeout"))?;
    let local = conn.socket.local_addr().map_err(io("local address"))?;
    let sdp = announce_sdp(&stream, local.ip());

    let mut config = ClientConfig::record(args.url.clone(), sdp.into_bytes());
    config.user_agent = Some(user_agent.to_owned());
    config.send_options = true;
    config.allow_basic = true;
    config.cnonce = format!("{:08x}", seed32());
    let udp = match args.transport {
        SourceTransport::Tcp | SourceTransport::Http => None,
        SourceTransport::Udp => {
            let (rtp, rtcp) = udp_pair(local.ip()).map_err(io("binding UDP ports"))?;
            let port = rtp.local_addr().map_err(io("UDP address"))?.port();
            config.transport = MediaTransport::Udp {
                client_ports: vec![PortRange { first: port, last: port + 1 }],
            };
            Some((rtp, rtcp))
        }
    };
    let mut session = ClientSession::new(config);

    let (tx, rx) = mpsc::channel();
    let reader = conn.reader;
    std::thread::spawn(move || read_server(reader, &tx));
    let mut writer = conn.writer;
    let mut out = Vec::new();
    let mut packet = Vec::new();
    let mut stats = SourceStats::default();
    let mut reports = SenderReports::new(stream.config().ssrc, args.fps, Some(cname()));
    let mut report = [0u8; SENDER_REPORT_MAX];
    let mut media: Option<MediaOut> = None;
    let mut udp = udp;
    let mut end: Option<Instant> = None;
    let mut tearing_down: Option<Instant> = None;
    let clock = Instant::now();

    loop {
        let now = Instant::now();
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Recording => {
                    media = Some(media_out(&session, &mut udp, peer)?);
                    end = args.duration.map(|d| now + d);
                    if !args.quiet {
                        eprintln!(
                            "manifold source: recording to {} over {:?} ({} fps, {} bit/s)",
                            target.display_url,
                            args.transport,
                            args.fps,
                            args.bitrate.unwrap_or_else(|| stream.natural_bitrate())
                        );
                    }
                }
                ClientEvent::Failed(e) => {
                    return Err(SourceError::Session { peer, reason: e.to_string() })
                }
                ClientEvent::Closed => return Ok(stats),
                _ => {}
            }
        }
        if session.state() == ClientState::Closed {
            return Ok(stats);
        }
        if end.is_some_and(|e| now >= e) && tearing_down.is_none() {
            session.teardown();
            tearing_down = Some(now + TEARDOWN_LIMIT);
            media = None;
        }
        if tearing_down.is_some_and(|t| now >= t) {
            // The server never answered TEARDOWN; closing the connection ends it too.
            return Ok(stats);
        }
        while let Some(req) = session.poll_transmit(now) {
            out.clear();
            write_request(&req, &mut out);
            writer.write_all(&out).map_err(io("sending a request"))?;
        }
        if let Some(m) = &media {
            let since = clock.elapsed();
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let capture = NtpTime::from_unix(wall);
            let mut last = None;
            while let Some(info) = stream.poll_packet(since, capture, &mut packet) {
                let bytes = &packet[..info.len];
                m.send(&mut writer, &mut out, bytes, false).map_err(io("sending media"))?;
                reports.sent(bytes);
                stats.packets += 1;
                stats.bytes += info.len as u64;
                stats.frames += u64::from(info.marker);
                last = Some(info);
            }
            // As ffmpeg and live555 publish: a sender report about once a second, which the
            // server passes on so that its readers can place the stream on the wall clock.
            if let Some(len) = last.and_then(|l| reports.after_frame(&l, capture, &mut report)) {
                m.send(&mut writer, &mut out, &report[..len], true)
                    .map_err(io("sending a sender report"))?;
            }
        }

        // Sleep until the next frame, the session's timer, or the end, whichever is first;
        // anything from the server wakes us earlier.
        let mut wake = now + Duration::from_secs(1);
        if media.is_some() {
            wake = wake.min(clock + stream.next_frame_due());
        }
        for at in [session.poll_timeout(), end, tearing_down].into_iter().flatten() {
            wake = wake.min(at);
        }
        let wait = wake.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(FromServer::Response(r)) => session.handle_response(Instant::now(), &r),
            Ok(FromServer::Request(r)) => {
                let answer = session.handle_request(Instant::now(), &r);
                out.clear();
                write_response(&answer, &mut out);
                writer.write_all(&out).map_err(io("answering a request"))?;
            }
            Ok(FromServer::Closed(why)) => {
                if tearing_down.is_some() {
                    return Ok(stats);
                }
                return Err(SourceError::Session { peer, reason: why });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(SourceError::Session { peer, reason: "connection lost".into() })
            }
        }
        let now = Instant::now();
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
    }
}

/// The synthetic stream's settings from the flags, with a fresh SSRC and first sequence number.
pub(crate) fn stream_config(args: &SourceArgs) -> StreamConfig {
    StreamConfig {
        fps: args.fps,
        target_bitrate: args.bitrate,
        gop: args.gop,
        mtu: args.mtu,
        ssrc: manifold_rtp::Ssrc(seed32()),
        initial_seq: seed32() as u16,
        // 2^30 apart at the least from another run's (unless equal, one time in 2^32), and
        // 2^62 packets from wrapping: a republished stream's counters never pass for the
        // first publisher's (the generator takes a jump of 2^28 for a new source).
        initial_counter: u64::from(seed32()) << 30,
        ..StreamConfig::default()
    }
}

/// Where RTP goes, from the server's SETUP answer.
fn media_out(
    session: &ClientSession,
    udp: &mut Option<(UdpSocket, UdpSocket)>,
    peer: SocketAddr,
) -> Result<MediaOut, SourceError> {
    let answer = session.tracks().first().and_then(|t| t.transport.clone());
    match udp.take() {
        None => {
            let (rtp, rtcp) = answer.and_then(|t| t.interleaved).map_or(
                (ChannelId(0), ChannelId(1)),
                |range: manifold_rtsp::header::ChannelRange| {
                    // A range of one channel: RTCP on the next, as RFC 2326 pairs them.
                    let rtcp = if range.last == range.first {
                        ChannelId(range.first.0.wrapping_add(1))
                    } else {
                        range.last
                    };
                    (range.first, rtcp)
                },
            );
            Ok(MediaOut::Interleaved { rtp, rtcp })
        }
        Some((rtp, rtcp)) => {
            let port = answer.and_then(|t| t.server_port).ok_or_else(|| SourceError::Session {
                peer,
                reason: "SETUP answer has no server_port for UDP".into(),
            })?;
            let rtcp_port =
                if port.last == port.first { port.first.saturating_add(1) } else { port.last };
            Ok(MediaOut::Udp {
                socket: rtp,
                rtcp,
                to: SocketAddr::new(peer.ip(), port.first),
                rtcp_to: SocketAddr::new(peer.ip(), rtcp_port),
            })
        }
    }
}

/// Decodes the server's byte stream until it closes.
fn read_server(mut tcp: Box<dyn Read + Send>, tx: &mpsc::Sender<FromServer>) {
    let mut decoder = Decoder::default();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match tcp.read(&mut chunk) {
            Ok(0) => {
                let _ = tx.send(FromServer::Closed("server closed the connection".into()));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(FromServer::Closed(format!("reading: {e}")));
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match decoder.feed(&buf) {
                Ok(None) => break,
                Ok(Some((item, used))) => {
                    let msg = match item {
                        Item::Response(r) => Some(FromServer::Response(r)),
                        Item::Request(r) => Some(FromServer::Request(r)),
                        // Interleaved RTCP receiver reports: nothing to do with them.
                        _ => None,
                    };
                    buf.drain(..used);
                    if let Some(msg) = msg {
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(FromServer::Closed(format!("server sent: {e}")));
                    return;
                }
            }
        }
    }
}

/// An RTP socket on an even port and an RTCP socket on the next one.
pub(crate) fn udp_pair(ip: std::net::IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let pair = manifold_udp::bind_pair(ip)?;
    Ok((pair.rtp.into(), pair.rtcp.into()))
}

/// The CNAME of a source's sender reports: unique to the run, as RFC 3550 asks.
pub(crate) fn cname() -> String {
    format!("manifold-source-{:08x}@{}", seed32(), std::process::id())
}

/// A value that differs from run to run (SSRC, first sequence number, cnonce); not secret.
/// From the kernel (`manifold_sys::fill_random`), so two calls in a row differ too.
pub(crate) fn seed32() -> u32 {
    let mut bytes = [0u8; 4];
    manifold_sys::fill_random(&mut bytes);
    u32::from_ne_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_sdp_parses_with_one_track() {
        let stream = SyntheticStream::new(StreamConfig::default()).unwrap();
        let text = announce_sdp(&stream, "127.0.0.1".parse().unwrap());
        let sdp = manifold_sdp::Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.media().len(), 1);
        assert!(text.contains("a=control:streamid=0\r\n"));
        assert!(text.contains("abs-capture-time"));
    }

    #[test]
    fn udp_pair_is_even_and_adjacent() {
        let (rtp, rtcp) = udp_pair("127.0.0.1".parse().unwrap()).unwrap();
        let a = rtp.local_addr().unwrap().port();
        assert_eq!(a % 2, 0);
        assert_eq!(rtcp.local_addr().unwrap().port(), a + 1);
    }
}
