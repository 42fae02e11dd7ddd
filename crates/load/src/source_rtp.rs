//! `manifold source rtp://HOST:PORT`: the synthetic stream as plain RTP/UDP, as
//! `ffmpeg -f rtp rtp://HOST:PORT` sends it: the same packets as an RTSP publication (the
//! capture-time and packet-counter header extensions, SPS/PPS in band), the same wall-clock
//! pacing, RTP to PORT and RTCP (a sender report with a CNAME about once a second) to PORT+1,
//! from an even/odd local port pair. There is no signalling: `--sdp-file` writes the SDP a
//! receiver needs (the `a=extmap` lines included) before the first packet goes out.
//!
//! The socket is not connected, so a receiver that is not up yet costs nothing but the
//! packets: the kernel reports no ICMP errors to an unconnected socket, and the few send
//! errors that still come back (refused, unreachable, no buffer space) are counted in
//! [`SourceStats::send_errors`] while the source keeps pacing.

use std::io::{ErrorKind, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _, UdpSocket};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use manifold_synth::{NtpTime, SenderReports, SyntheticStream, SENDER_REPORT_MAX};

use crate::source::{cname, stream_config, udp_pair, SourceArgs, SourceError, SourceStats};
use crate::LoadError;

/// The URL scheme this module serves.
const SCHEME: &str = "rtp://";

/// Whether `url` asks for plain RTP (`rtp://`, any case).
pub(crate) fn is_rtp_url(url: &str) -> bool {
    url.get(..SCHEME.len()).is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

/// The destination of an `rtp://HOST:PORT` URL (a trailing `/` is accepted): RTP goes to
/// PORT, RTCP to PORT+1, so PORT is 1 to 65534. A host name resolves to its first address.
pub(crate) fn parse_rtp_url(url: &str) -> Result<SocketAddr, LoadError> {
    let bad = |why: &str| LoadError::Url { url: url.to_owned(), reason: why.to_owned() };
    if !is_rtp_url(url) {
        return Err(bad("expected rtp://HOST:PORT"));
    }
    let rest = &url[SCHEME.len()..];
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(bad("expected rtp://HOST:PORT with no path or options (packet size: --mtu)"));
    }
    if authority.contains('@') {
        return Err(bad("plain RTP has no credentials"));
    }
    let (host, port) =
        manifold_rtsp::url::split_host_port(authority).map_err(|e| bad(&e.to_string()))?;
    let port = port.ok_or_else(|| bad("no port: plain RTP needs rtp://HOST:PORT"))?;
    let port = match port.parse::<u16>() {
        Ok(p) if (1..u16::MAX).contains(&p) => p,
        _ => return Err(bad("the port must be 1 to 65534 (RTCP goes to the next one)")),
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| bad(&format!("{host} has no address")))
}

/// The SDP a receiver of the stream sent to `to` needs, as `ffmpeg -sdp_file` writes it:
/// `c=` the destination, `m=video PORT RTP/AVP PT`, then rtpmap, fmtp (with
/// sprop-parameter-sets), framerate and the two `a=extmap` lines.
pub(crate) fn rtp_sdp(stream: &SyntheticStream, to: SocketAddr) -> String {
    let ip = to.ip();
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    // RFC 8866 §5.7: an IPv4 multicast address carries its TTL (Linux's default: 1).
    let ttl = if matches!(ip, IpAddr::V4(v4) if v4.is_multicast()) { "/1" } else { "" };
    format!(
        "v=0\r\no=- 0 0 IN {family} {ip}\r\ns=manifold source\r\nc=IN {family} {ip}{ttl}\r\n\
         t=0 0\r\na=tool:manifold\r\n{}",
        stream.sdp().media_section(to.port(), None)
    )
}

/// Writes `text` to `path` so that a reader sees the old file or the whole new one, never
/// a part: a temporary file beside it, flushed, then renamed over it.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(ErrorKind::InvalidInput, "the SDP file path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Whether a failed send is one the source rides out (the receiver is not there yet, or the
/// host is briefly out of buffers) rather than a mistake that will fail every packet.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::NetworkDown
            | ErrorKind::WouldBlock
            | ErrorKind::Interrupted
    ) || matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::EHOSTDOWN))
}

/// Sends plain RTP (and RTCP) to the URL's address until the duration ends.
pub(crate) fn run(args: &SourceArgs) -> Result<SourceStats, SourceError> {
    let to = parse_rtp_url(&args.url)?;
    let rtcp_to = SocketAddr::new(to.ip(), to.port() + 1);
    let io = |context: &'static str| move |source| SourceError::Io { peer: to, context, source };
    let mut stream = SyntheticStream::new(stream_config(args))?;
    let any: IpAddr =
        if to.is_ipv6() { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
    let (rtp, rtcp) = udp_pair(any).map_err(io("binding UDP ports"))?;
    if let Some(path) = &args.sdp_file {
        write_atomically(path, &rtp_sdp(&stream, to))
            .map_err(|source| SourceError::SdpFile { path: path.clone(), source })?;
    }
    if !args.quiet {
        let sdp = args.sdp_file.as_ref().map(|p| format!(", SDP in {}", p.display()));
        eprintln!(
            "manifold source: sending RTP to {to}, RTCP to {rtcp_to} ({} fps, {} bit/s, \
             packets up to {} bytes{})",
            args.fps,
            args.bitrate.unwrap_or_else(|| stream.natural_bitrate()),
            args.mtu,
            sdp.unwrap_or_default()
        );
    }

    let mut reports = SenderReports::new(stream.config().ssrc, args.fps, Some(cname()));
    let mut stats = SourceStats::default();
    let mut packet = Vec::with_capacity(args.mtu);
    let mut report = [0u8; SENDER_REPORT_MAX];
    let clock = Instant::now();
    let end = args.duration.map(|d| clock + d);
    let send =
        |socket: &UdpSocket, bytes: &[u8], to: SocketAddr, stats: &mut SourceStats| match socket
            .send_to(bytes, to)
        {
            Ok(_) => Ok(true),
            Err(e) if is_transient(&e) => {
                stats.send_errors += 1;
                Ok(false)
            }
            Err(e) => Err(io("sending media")(e)),
        };
    loop {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let capture = NtpTime::from_unix(wall);
        let mut last = None;
        while let Some(info) = stream.poll_packet(clock.elapsed(), capture, &mut packet) {
            let bytes = &packet[..info.len];
            if send(&rtp, bytes, to, &mut stats)? {
                stats.packets += 1;
                stats.bytes += info.len as u64;
                reports.sent(bytes);
            }
            stats.frames += u64::from(info.marker);
            last = Some(info);
        }
        if let Some(len) = last.and_then(|l| reports.after_frame(&l, capture, &mut report)) {
            send(&rtcp, &report[..len], rtcp_to, &mut stats)?;
        }
        let mut wake = clock + stream.next_frame_due();
        if let Some(end) = end {
            if Instant::now() >= end {
                return Ok(stats);
            }
            wake = wake.min(end);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifold_synth::StreamConfig;

    #[test]
    fn rtp_urls_parse_and_explain_what_is_wrong() {
        assert!(is_rtp_url("rtp://127.0.0.1:5004") && is_rtp_url("RTP://h:1"));
        assert!(!is_rtp_url("rtsp://127.0.0.1:5004") && !is_rtp_url("rtp:"));
        assert_eq!(
            parse_rtp_url("rtp://127.0.0.1:5004").unwrap(),
            "127.0.0.1:5004".parse().unwrap()
        );
        assert_eq!(parse_rtp_url("rtp://127.0.0.1:5004/").unwrap().port(), 5004);
        assert_eq!(parse_rtp_url("rtp://[::1]:6000").unwrap(), "[::1]:6000".parse().unwrap());
        assert_eq!(parse_rtp_url("rtp://localhost:5004").unwrap().port(), 5004);
        for (url, why) in [
            ("rtp://127.0.0.1", "no port"),
            ("rtp://127.0.0.1/", "no port"),
            ("rtp://[::1]", "no port"),
            ("rtp://127.0.0.1:0", "1 to 65534"),
            ("rtp://127.0.0.1:65535", "1 to 65534"),
            ("rtp://127.0.0.1:x", "1 to 65534"),
            ("rtp://:5004", "no host"),
            ("rtp://127.0.0.1:5004?pkt_size=1000", "--mtu"),
            ("rtp://127.0.0.1:5004/cam", "no path"),
            ("rtp://u:p@127.0.0.1:5004", "credentials"),
            ("rtp://[::1:5004", "unclosed"),
        ] {
            let e = parse_rtp_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn sdp_describes_the_stream_at_its_destination() {
        let stream = SyntheticStream::new(StreamConfig::default()).unwrap();
        let text = rtp_sdp(&stream, "127.0.0.1:5004".parse().unwrap());
        let sdp = manifold_sdp::Sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(sdp.media().len(), 1);
        for line in [
            "c=IN IP4 127.0.0.1\r\n",
            "m=video 5004 RTP/AVP 96\r\n",
            "a=rtpmap:96 H264/90000\r\n",
            "a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n",
            "a=extmap:2 urn:manifold:rtp-hdrext:packet-counter\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in\n{text}");
        }
        assert!(text
            .contains(&format!("sprop-parameter-sets={}", stream.clip().sprop_parameter_sets())));
        let v6 = rtp_sdp(&stream, "[::1]:6000".parse().unwrap());
        assert!(v6.contains("c=IN IP6 ::1\r\n") && v6.contains("m=video 6000 "), "{v6}");
        let multicast = rtp_sdp(&stream, "239.1.2.3:5004".parse().unwrap());
        assert!(multicast.contains("c=IN IP4 239.1.2.3/1\r\n"), "{multicast}");
    }

    #[test]
    fn sdp_file_is_replaced_whole_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("manifold-sdp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sdp");
        write_atomically(&path, "old").unwrap();
        write_atomically(&path, "v=0\r\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "v=0\r\n");
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["s.sdp"]);
        assert!(write_atomically(&dir.join("missing/s.sdp"), "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refused_sends_are_ridden_out_but_mistakes_are_not() {
        assert!(is_transient(&std::io::Error::from(ErrorKind::ConnectionRefused)));
        assert!(is_transient(&std::io::Error::from_raw_os_error(libc::ECONNREFUSED)));
        assert!(is_transient(&std::io::Error::from_raw_os_error(libc::EHOSTUNREACH)));
        assert!(is_transient(&std::io::Error::from_raw_os_error(libc::ENOBUFS)));
        assert!(!is_transient(&std::io::Error::from_raw_os_error(libc::EACCES)));
        assert!(!is_transient(&std::io::Error::from_raw_os_error(libc::EMSGSIZE)));
    }
}
