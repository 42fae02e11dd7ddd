//! Each shard's RTP/RTCP server-port socket pair: publishers' RTP and RTCP arrive here and UDP
//! readers are sent from here (so a UDP reader costs no socket).
//!
//! The pair is bound without `SO_REUSEPORT` (glommio's own `bind` always sets it): datagrams
//! for a server port must reach the one shard whose sessions answered with it, and another
//! process must not be able to share the port.

use std::io;
use std::net::{IpAddr, SocketAddr};

use glommio::net::UdpSocket;
use socket2::{Domain, Protocol, Socket, Type};

/// Attempts to find a free even/odd port pair.
const PAIR_ATTEMPTS: usize = 64;

/// A shard's RTP and RTCP server ports.
#[derive(Debug)]
pub(crate) struct ServerPorts {
    /// Receives publishers' RTP (and readers' stray packets).
    pub(crate) rtp: UdpSocket,
    /// Receives RTCP (publishers' SRs, readers' RRs).
    pub(crate) rtcp: UdpSocket,
    /// The RTP socket again (a dup of its fd) for the batched, non-blocking sends of egress.
    pub(crate) rtp_send: std::net::UdpSocket,
    /// The RTCP socket again (a dup), for BYEs.
    pub(crate) rtcp_send: std::net::UdpSocket,
    /// The RTP port (even); RTCP is the next one.
    pub(crate) port: u16,
}

impl ServerPorts {
    /// Binds an even RTP port and the RTCP port after it on `ip`.
    pub(crate) fn bind(ip: IpAddr) -> io::Result<ServerPorts> {
        let mut last_err = io::Error::new(io::ErrorKind::AddrInUse, "no free RTP/RTCP port pair");
        for _ in 0..PAIR_ATTEMPTS {
            let rtp = udp_socket(SocketAddr::new(ip, 0))?;
            let port = rtp.local_addr()?.as_socket().map_or(0, |a| a.port());
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            let rtcp = match udp_socket(SocketAddr::new(ip, port + 1)) {
                Ok(s) => s,
                Err(e) => {
                    last_err = e;
                    continue;
                }
            };
            let rtcp_send = rtcp.try_clone()?;
            rtcp_send.set_nonblocking(true)?;
            let send = rtp.try_clone()?;
            send.set_nonblocking(true)?;
            // Readers on slow links: a larger send buffer absorbs a keyframe's burst.
            let _ = send.set_send_buffer_size(4 << 20);
            return Ok(ServerPorts {
                rtp: crate::sys::glommio_udp(rtp.into()),
                rtcp: crate::sys::glommio_udp(rtcp.into()),
                rtp_send: send.into(),
                rtcp_send: rtcp_send.into(),
                port,
            });
        }
        Err(last_err)
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.bind(&addr.into())?;
    Ok(s)
}
