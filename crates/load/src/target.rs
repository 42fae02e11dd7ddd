//! The server under test: the URL, what it resolves to, and what its presentation holds (found
//! once, before the run, with one blocking DESCRIBE through the same client session machine).

use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use manifold_rtp::codec::Codec;
use manifold_rtp::track::{PayloadTypes, TrackFormat};
use manifold_rtsp::auth::Credentials;
use manifold_rtsp::codec::{write_request, Decoder, Item};
use manifold_rtsp::session::client::{ClientConfig, ClientError, ClientEvent, ClientSession};
use manifold_sdp::Sdp;
use manifold_synth::{ExtensionIds, ABS_CAPTURE_TIME_URI, PACKET_COUNTER_URI};

use crate::LoadError;
use manifold_dial::{Dialer, TunnelAt};
use manifold_tls::client::Trust;

/// The server and the stream.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given (credentials included; the client session strips them).
    pub url: String,
    /// The URL without userinfo, for reports and messages.
    pub display_url: String,
    /// Where the RTSP connection goes.
    pub addr: SocketAddr,
    /// `rtsps://`: RTSP over TLS.
    pub secure: bool,
    /// The URL's host (an IPv6 literal without brackets): the name a TLS certificate must
    /// carry.
    pub host: String,
}

impl Target {
    /// Parses `rtsp[s]://[user[:pass]@]host[:port][/path]` and resolves the host.
    pub fn resolve(url: &str) -> Result<Target, LoadError> {
        let bad = |why: &str| LoadError::Url { url: url.to_owned(), reason: why.to_owned() };
        let manifold_rtsp::url::Authority { secure, host, port } =
            manifold_rtsp::url::authority(url).map_err(|e| bad(&e.to_string()))?;
        let display_url = match Credentials::from_url(url) {
            Some((_, stripped)) => stripped,
            None => url.to_owned(),
        };
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| bad("host resolves to no address"))?;
        Ok(Target { url: url.to_owned(), display_url, addr, secure, host: host.to_owned() })
    }

    /// How to reach the server: TLS for `rtsps://` (trusting `tls_ca`, or anything when
    /// `insecure`, else the system's roots), through an HTTP tunnel when `tunnel`.
    pub(crate) fn dialer(
        &self,
        tls_ca: Option<&std::path::Path>,
        insecure: bool,
        tunnel: bool,
        user_agent: &str,
    ) -> Result<Dialer, LoadError> {
        let bad = |reason: String| LoadError::Url { url: self.display_url.clone(), reason };
        if !self.secure && (tls_ca.is_some() || insecure) {
            return Err(LoadError::Flags("--tls-ca and --insecure are for rtsps:// URLs".into()));
        }
        let tls = if self.secure {
            let trust = match (tls_ca, insecure) {
                (Some(file), _) => Trust::CaFile(file.to_owned()),
                (None, true) => Trust::InsecureAnyCertificate,
                (None, false) => Trust::System,
            };
            Some(manifold_tls::client::client_config(&trust).map_err(|e| bad(e.to_string()))?)
        } else {
            None
        };
        let tunnel = tunnel.then(|| TunnelAt {
            path: manifold_rtsp::tunnel::client::request_target(&self.url).to_owned(),
            host: self.authority(),
            user_agent: user_agent.to_owned(),
        });
        Dialer::new(self.addr, &self.host, tls, tunnel).map_err(|e| bad(e.to_string()))
    }

    /// The `Host` a tunnel's heads name: the URL's host and port.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.addr.port())
        } else {
            format!("{}:{}", self.host, self.addr.port())
        }
    }
}

/// One track of the presentation, as the receivers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// `video`, `audio`, ...
    pub kind: String,
    /// The media clock rate ([`TrackFormat`]'s rule, the relay's too).
    pub clock_rate: u32,
    /// The codec, when it is one whose keyframes we can see ([`TrackFormat`]'s rule).
    pub codec: Option<Codec>,
    /// The payload types the track may carry ([`TrackFormat`]'s): players drop others.
    pub payload_types: PayloadTypes,
    /// Header extension ids of the capture-time and packet-counter stamps, from the SDP's
    /// `a=extmap` (the synthetic source's defaults when it has none).
    pub stamp_ids: ExtensionIds,
}

/// The tracks of a described presentation.
pub fn tracks_of(sdp: &Sdp) -> Vec<TrackInfo> {
    sdp.media()
        .iter()
        .map(|m| {
            let format = TrackFormat::of(m);
            let mut stamp_ids = ExtensionIds::default();
            for e in m.extmaps() {
                let Ok(id) = u8::try_from(e.id) else { continue };
                if e.uri == ABS_CAPTURE_TIME_URI {
                    stamp_ids.capture_time = id;
                } else if e.uri == PACKET_COUNTER_URI {
                    stamp_ids.counter = id;
                }
            }
            TrackInfo {
                kind: m.kind().to_owned(),
                clock_rate: format.clock_rate,
                codec: format.codec,
                payload_types: format.payload_types,
                stamp_ids,
            }
        })
        .collect()
}

/// DESCRIBEs the presentation once, blocking, to learn its tracks (UDP clients need one port
/// pair per track before their first request) and to fail early with a clear message when
/// the server is not there.
pub(crate) fn probe(
    dialer: &Dialer,
    config: ClientConfig,
    timeout: Duration,
) -> Result<Vec<TrackInfo>, LoadError> {
    let peer = dialer.addr;
    let io_err = |e: std::io::Error| LoadError::Probe { peer, reason: e.to_string() };
    let mut conn = dialer
        .open_blocking(timeout)
        .map_err(|e| LoadError::Probe { peer, reason: e.to_string() })?;
    let mut session = ClientSession::new(config);
    let mut decoder = Decoder::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let now = Instant::now();
        if now > deadline {
            return Err(LoadError::Probe { peer, reason: "no answer to DESCRIBE".into() });
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::Described { sdp, .. } => return Ok(tracks_of(&sdp)),
                ClientEvent::Failed(ClientError::Redirected { location, .. }) => {
                    return Err(LoadError::Redirected { peer, location })
                }
                ClientEvent::Failed(e) => {
                    return Err(LoadError::Probe { peer, reason: format!("server side: {e}") })
                }
                _ => {}
            }
        }
        while let Some(req) = session.poll_transmit(now) {
            out.clear();
            write_request(&req, &mut out);
            conn.writer.write_all(&out).map_err(io_err)?;
        }
        let mut chunk = [0u8; 8192];
        let n = conn.reader.read(&mut chunk).map_err(io_err)?;
        if n == 0 {
            return Err(LoadError::Probe { peer, reason: "server closed the connection".into() });
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match decoder.feed(&buf) {
                Ok(None) => break,
                Ok(Some((item, used))) => {
                    if let Item::Response(r) = item {
                        session.handle_response(Instant::now(), &r);
                    }
                    buf.drain(..used);
                }
                Err(e) => {
                    return Err(LoadError::Probe { peer, reason: format!("server sent: {e}") })
                }
            }
        }
    }
}
