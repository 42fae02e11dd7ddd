//! Each shard's RTP/RTCP server-port socket pair: publishers' RTP and RTCP arrive here and UDP
//! readers are sent from here (so a UDP reader costs no socket).
//!
//! The pair is bound by `manifold_udp::bind_pair`, without `SO_REUSEPORT` (glommio's own `bind`
//! always sets it): datagrams for a server port must reach the one shard whose sessions
//! answered with it, and another process must not be able to share the port.

use std::io;
use std::net::IpAddr;

use glommio::net::UdpSocket;

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
        let manifold_udp::PortPair { rtp, rtcp, port } = manifold_udp::bind_pair(ip)?;
        let rtcp_send = rtcp.try_clone()?;
        rtcp_send.set_nonblocking(true)?;
        let send = rtp.try_clone()?;
        send.set_nonblocking(true)?;
        // Readers on slow links: a larger send buffer absorbs a keyframe's burst.
        crate::sys::set_send_buffer(std::os::fd::AsFd::as_fd(&send), crate::sys::EGRESS_SNDBUF);
        // Publishers' RTP over UDP lands here, as an upstream's does on its own sockets: what
        // a full buffer drops is lost to every reader.
        crate::sys::set_recv_buffer(std::os::fd::AsFd::as_fd(&rtp), crate::sys::INGEST_RCVBUF);
        Ok(ServerPorts {
            rtp: crate::sys::glommio_udp(rtp),
            rtcp: crate::sys::glommio_udp(rtcp),
            rtp_send: send.into(),
            rtcp_send: rtcp_send.into(),
            port,
        })
    }
}
