//! `manifold source rtmp://HOST[:PORT]/APP/STREAM[?user=U&pass=P]`: the synthetic stream
//! published over RTMP, as an encoder (ffmpeg `-f flv`, OBS) publishes, so that end-to-end
//! latency through an RTMP ingest is measured like through RTSP.
//!
//! The protocol is `manifold_rtmp::client::PublishClient` (sans-IO); this is its blocking
//! runtime, shaped like the RTSP source's: a reader thread hands the server's bytes over a
//! bounded channel to the publishing thread, which owns the client, writes, and sleeps
//! until the next frame or timer. The media are the same frames the RTSP source sends (the
//! same pacing, GOP schedule and filler): each due frame's RTP packets are polled from
//! [`SyntheticStream`] for their timing and filler, and the frame goes out as one FLV video
//! tag: the clip's NAL units behind 4-byte lengths, the filler NAL units after them, and in
//! front a capture-time SEI (`manifold_rtmp::sei`), since FLV has no place for the RTP
//! abs-capture-time the RTSP source sends; the relay's RTMP ingest turns it back into that.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use manifold_rtmp::amf0::Value;
use manifold_rtmp::client::{ClientClose, ClientConfig, ClientEvent, PublishClient};
use manifold_rtmp::{flv, sei};
use manifold_rtp::packet::RtpPacket;
use manifold_synth::{NtpTime, SyntheticStream};

use crate::source::{seed32, stream_config, SourceArgs, SourceError, SourceStats, SourceTransport};
use crate::LoadError;

/// The URL scheme this module serves.
const SCHEME: &str = "rtmp://";
/// RTMP's registered port.
const DEFAULT_PORT: u16 = 1935;
/// How long the TCP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write may block on a server that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to close after the unpublish.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);
/// Reads in flight between the reader thread and the publisher (each up to 16 KiB).
const READ_QUEUE: usize = 64;

/// Whether `url` asks for RTMP (`rtmp://`, any case).
pub(crate) fn is_rtmp_url(url: &str) -> bool {
    url.get(..SCHEME.len()).is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// Where and what an `rtmp://` URL publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RtmpUrl {
    /// The server.
    pub(crate) addr: SocketAddr,
    /// The application: the path's first segment.
    pub(crate) app: String,
    /// The stream name (the rest of the path) with the query, as `publish` sends it.
    pub(crate) stream: String,
    /// `rtmp://HOST:PORT/APP`, `connect`'s tcUrl.
    pub(crate) tc_url: String,
}

/// Parses `rtmp://HOST[:PORT]/APP/STREAM[?query]` (port 1935 by default); a host name
/// resolves to its first address.
pub(crate) fn parse_rtmp_url(url: &str) -> Result<RtmpUrl, LoadError> {
    let bad = |why: &str| LoadError::Url { url: url.to_owned(), reason: why.to_owned() };
    if !is_rtmp_url(url) {
        return Err(bad("expected rtmp://HOST[:PORT]/APP/STREAM"));
    }
    let rest = &url[SCHEME.len()..];
    let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no /APP/STREAM path"))?;
    if authority.contains('@') {
        return Err(bad("credentials go in the query: rtmp://HOST/APP/STREAM?user=U&pass=P"));
    }
    let (host, port) =
        manifold_rtsp::url::split_host_port(authority).map_err(|e| bad(&e.to_string()))?;
    let port = match port.map(str::parse::<u16>) {
        None => DEFAULT_PORT,
        Some(Ok(p)) if p != 0 => p,
        Some(_) => return Err(bad("the port must be 1 to 65535")),
    };
    let (app, stream) = path.split_once('/').ok_or_else(|| bad("no stream name after the app"))?;
    let name = stream.split('?').next().unwrap_or_default();
    if app.is_empty() || app.contains('?') || name.is_empty() {
        return Err(bad("expected rtmp://HOST[:PORT]/APP/STREAM with both names non-empty"));
    }
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| bad(&format!("{host} has no address")))?;
    Ok(RtmpUrl {
        addr,
        app: app.to_owned(),
        stream: stream.to_owned(),
        tc_url: format!("rtmp://{authority}/{app}"),
    })
}

/// What the reader thread hands over.
enum FromServer {
    Bytes(Vec<u8>),
    Closed(Option<String>),
}

/// Publishes over RTMP until the duration ends (then unpublishes) or the server ends it.
pub(crate) fn run(args: &SourceArgs) -> Result<SourceStats, SourceError> {
    if args.sdp_file.is_some() {
        return Err(SourceError::Usage("--sdp-file is for rtp:// URLs".into()));
    }
    if args.transport == SourceTransport::Udp {
        return Err(SourceError::Usage(
            "RTMP runs over TCP: --transport udp does not apply".into(),
        ));
    }
    let url = parse_rtmp_url(&args.url)?;
    let peer = url.addr;
    let io = |context: &'static str| move |source| SourceError::Io { peer, context, source };
    let session = |reason: String| SourceError::Session { peer, reason };
    let mut stream = SyntheticStream::new(stream_config(args))?;

    let tcp = TcpStream::connect_timeout(&peer, CONNECT_TIMEOUT).map_err(io("connecting"))?;
    tcp.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
    tcp.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io("write timeout"))?;
    let (tx, rx) = mpsc::sync_channel(READ_QUEUE);
    let reader = tcp.try_clone().map_err(io("cloning the connection"))?;
    std::thread::spawn(move || read_server(reader, &tx));
    let mut writer = tcp;

    let config = ClientConfig {
        seed: u64::from(seed32()) << 32 | u64::from(seed32()),
        ..ClientConfig::new(&url.app, &url.stream, &url.tc_url)
    };
    let mut client = PublishClient::new(Instant::now(), config);
    let mut stats = SourceStats::default();
    let mut packet = Vec::new();
    let mut filler: Vec<Vec<u8>> = Vec::new();
    let mut body = Vec::new();
    let mut clock: Option<Instant> = None;
    let mut end: Option<Instant> = None;

    loop {
        let now = Instant::now();
        while let Some(bytes) = client.poll_transmit() {
            writer.write_all(&bytes).map_err(io("sending"))?;
        }
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Publishing => {
                    let clip = stream.clip();
                    let meta = vec![
                        ("videocodecid".to_owned(), Value::Number(7.0)),
                        ("framerate".to_owned(), Value::Number(f64::from(args.fps))),
                        ("encoder".to_owned(), Value::String("manifold source".into())),
                    ];
                    let header = flv::avc_sequence_header(clip.sps(), clip.pps())
                        .ok_or_else(|| session("the clip's SPS is too short".into()))?;
                    let sent =
                        client.send_metadata(meta).and_then(|()| client.send_video(0, &header));
                    sent.map_err(|e| session(e.to_string()))?;
                    clock = Some(now);
                    end = args.duration.map(|d| now + d);
                    if !args.quiet {
                        eprintln!(
                            "manifold source: publishing to {} over RTMP ({} fps, {} bit/s)",
                            args.url,
                            args.fps,
                            args.bitrate.unwrap_or_else(|| stream.natural_bitrate())
                        );
                    }
                }
                ClientEvent::Closed(ClientClose::Finished) => return Ok(stats),
                ClientEvent::Closed(why) => return Err(session(describe(&why))),
            }
        }
        if end.is_some_and(|e| now >= e) {
            client.finish();
            while let Some(bytes) = client.poll_transmit() {
                writer.write_all(&bytes).map_err(io("unpublishing"))?;
            }
            // Half-close and let the server close after reading everything (bounded), so
            // the unpublish is not lost to a reset.
            let _ = writer.shutdown(Shutdown::Write);
            let deadline = now + CLOSE_LIMIT;
            while let Ok(FromServer::Bytes(_)) =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {}
            return Ok(stats);
        }
        if let Some(start) = clock {
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let capture = NtpTime::from_unix(wall);
            while let Some(info) = stream.poll_packet(start.elapsed(), capture, &mut packet) {
                if info.filler {
                    // A filler packet is one single-NAL-unit payload: the NAL unit itself.
                    if let Ok(rtp) = RtpPacket::parse(&packet[..info.len]) {
                        filler.push(rtp.payload().to_vec());
                    }
                }
                if !info.marker {
                    continue;
                }
                let marker = sei::capture_time_nal(capture);
                let nals = std::iter::once(&marker[..])
                    .chain(stream.frame_nals(info.frame))
                    .chain(filler.iter().map(Vec::as_slice));
                flv::avc_frame(info.keyframe, 0, nals, &mut body);
                filler.clear();
                // RTMP time is 32-bit milliseconds, wrapping (after 49.7 days).
                let ms = (u128::from(info.frame) * 1000 / u128::from(args.fps)) as u32;
                client.send_video(ms, &body).map_err(|e| session(e.to_string()))?;
                stats.packets += 1;
                stats.bytes += body.len() as u64;
                stats.frames += 1;
            }
            while let Some(bytes) = client.poll_transmit() {
                writer.write_all(&bytes).map_err(io("sending media"))?;
            }
        }

        // Sleep until the next frame, the client's timer, or the end; the server's bytes
        // wake us earlier.
        let mut wake = now + Duration::from_secs(1);
        if let Some(start) = clock {
            wake = wake.min(start + stream.next_frame_due());
        }
        for at in [client.poll_timeout(), end].into_iter().flatten() {
            wake = wake.min(at);
        }
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(FromServer::Bytes(bytes)) => client.handle_input(Instant::now(), &bytes),
            Ok(FromServer::Closed(None)) => client.handle_peer_closed(),
            Ok(FromServer::Closed(Some(e))) => return Err(session(format!("reading: {e}"))),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(session("connection lost".into()))
            }
        }
        client.handle_timeout(Instant::now());
    }
}

/// The reason a publish ended, for the error message.
fn describe(why: &ClientClose) -> String {
    match why {
        ClientClose::Finished => "finished".into(),
        ClientClose::PeerClosed => "the server closed the connection".into(),
        ClientClose::TimedOut => "the server did not answer in time".into(),
        ClientClose::Refused { code, description } => {
            format!("the server refused the publish: {code} ({description})")
        }
        ClientClose::Error(e) => format!("protocol error: {e}"),
    }
}

/// Hands the server's bytes over until the connection closes.
fn read_server(mut tcp: TcpStream, tx: &mpsc::SyncSender<FromServer>) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let msg = match tcp.read(&mut chunk) {
            Ok(0) => FromServer::Closed(None),
            Ok(n) => FromServer::Bytes(chunk[..n].to_vec()),
            Err(e) => FromServer::Closed(Some(e.to_string())),
        };
        let last = matches!(msg, FromServer::Closed(_));
        if tx.send(msg).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_urls_parse_and_explain_what_is_wrong() {
        let u = parse_rtmp_url("rtmp://127.0.0.1:1936/live/cam?user=u&pass=p").unwrap();
        assert_eq!(u.addr, "127.0.0.1:1936".parse().unwrap());
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("live", "cam?user=u&pass=p"));
        assert_eq!(u.tc_url, "rtmp://127.0.0.1:1936/live");
        let u = parse_rtmp_url("RTMP://[::1]/app/a/b").unwrap();
        assert_eq!(u.addr, "[::1]:1935".parse().unwrap());
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("app", "a/b"));
        assert!(is_rtmp_url("rtmp://x") && !is_rtmp_url("rtmps://x") && !is_rtmp_url("rtsp://x"));
        for (url, why) in [
            ("rtmp://127.0.0.1", "no /APP/STREAM"),
            ("rtmp://127.0.0.1/live", "no stream name"),
            ("rtmp://127.0.0.1/live/", "non-empty"),
            ("rtmp://127.0.0.1//cam", "non-empty"),
            ("rtmp://127.0.0.1/live/?user=u", "non-empty"),
            ("rtmp://127.0.0.1:0/live/cam", "1 to 65535"),
            ("rtmp://127.0.0.1:x/live/cam", "1 to 65535"),
            ("rtmp:///live/cam", "no host"),
            ("rtmp://u:p@127.0.0.1/live/cam", "query"),
            ("rtmp://[::1/live/cam", "unclosed"),
        ] {
            let e = parse_rtmp_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
