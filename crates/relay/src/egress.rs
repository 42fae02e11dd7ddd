//! Carrying out the plane's UDP sends from a shard's server-port socket ([`UdpEgress`]): a
//! frame to many readers as one UDP GSO message per reader, all readers in one `sendmmsg`
//! (manifold-udp's `MmsgSender::send_gso_to_many`); odd-sized packets (parameter sets, audio)
//! one packet to all readers per `sendmmsg` (`send_to_many`); single packets and RTCP with
//! one `sendto`. Multicast groups are sent to from a socket of their own
//! ([`MulticastEgress`]). Nothing here waits: a datagram the kernel refuses is counted and
//! dropped.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use manifold_udp::{MmsgSender, RawAddr};

use crate::plane::packet::SharedPacket;
use crate::plane::Egress;
use crate::udp::ServerPorts;

/// Datagrams per `sendmmsg`.
const MMSG_BATCH: usize = 256;

/// One shard's UDP sender.
#[derive(Debug)]
pub(crate) struct UdpEgress {
    mmsg: RefCell<MmsgSender>,
    /// Whether the kernel does UDP GSO on the server-port socket.
    gso: bool,
    /// Datagrams to readers the kernel refused so far.
    drops: Cell<u64>,
}

impl UdpEgress {
    /// A sender for `ports`, using GSO where the kernel has it.
    pub(crate) fn new(ports: &ServerPorts) -> UdpEgress {
        UdpEgress {
            mmsg: RefCell::new(MmsgSender::new(MMSG_BATCH)),
            gso: manifold_udp::gso_supported(&ports.rtp_send),
            drops: Cell::new(0),
        }
    }

    /// Whether GSO is in use.
    pub(crate) fn gso(&self) -> bool {
        self.gso
    }

    /// Datagrams to readers the kernel refused so far.
    pub(crate) fn drops(&self) -> u64 {
        self.drops.get()
    }

    fn count_drops(&self, n: usize) {
        self.drops.set(self.drops.get() + n as u64);
    }

    /// Carries out one of the plane's sends.
    pub(crate) fn carry_out(&self, ports: &ServerPorts, action: &Egress) {
        match action {
            Egress::UdpFrame { packets, dests } => {
                self.send_frame(ports, packets, dests);
                #[cfg(feature = "gate-test-slowdown")]
                crate::plane::gate_test_slowdown(packets.len() * dests.len());
            }
            Egress::UdpPacket { packet, dest } => self.send_one(ports, packet.rtp(), dest),
            Egress::Rtcp { packet, to } => self.send_rtcp(ports, packet.rtp(), *to),
        }
    }

    /// Sends one RTP packet to many UDP readers with one `sendmmsg` per batch.
    fn send_many(&self, ports: &ServerPorts, payload: &[u8], dests: &[RawAddr]) {
        let iov = [IoSlice::new(payload)];
        match self.mmsg.borrow_mut().send_to_many(&ports.rtp_send, &iov, dests) {
            Ok(sent) => self.count_drops(dests.len() - sent.sent),
            Err(e) => {
                self.count_drops(dests.len());
                tracing::debug!(error = %e, side = "downstream", "UDP send failed");
            }
        }
    }

    /// Sends one frame's packets to many UDP readers: GSO-able runs as one `UDP_SEGMENT` send
    /// per reader, batched across readers; other packets one `sendmmsg` per packet.
    fn send_frame(&self, ports: &ServerPorts, frame: &[SharedPacket], dests: &[RawAddr]) {
        let segments: Vec<IoSlice<'_>> = frame.iter().map(|p| IoSlice::new(p.rtp())).collect();
        let max = if dests.first().is_some_and(RawAddr::is_ipv6) {
            manifold_udp::GSO_MAX_BYTES_V6
        } else {
            manifold_udp::GSO_MAX_BYTES_V4
        };
        for run in manifold_udp::gso_runs(&segments, max) {
            let part = &segments[run.range.clone()];
            if self.gso && part.len() > 1 && run.segment_size.is_some() {
                match self.mmsg.borrow_mut().send_gso_to_many(&ports.rtp_send, part, dests) {
                    Ok(sent) => self.count_drops((dests.len() - sent.sent) * part.len()),
                    Err(e) => {
                        tracing::debug!(error = %e, side = "downstream", "UDP GSO send failed");
                        self.count_drops(dests.len() * part.len());
                    }
                }
            } else {
                for s in part {
                    self.send_many(ports, s, dests);
                }
            }
        }
    }

    /// Sends one RTP packet to one UDP reader.
    fn send_one(&self, ports: &ServerPorts, payload: &[u8], dest: &RawAddr) {
        if let Err(e) = manifold_udp::send_to(&ports.rtp_send, payload, dest) {
            self.count_drops(1);
            tracing::debug!(error = %e, dest = %dest, side = "downstream", "UDP send failed");
        }
    }

    /// Sends one RTCP packet to a UDP reader's RTCP port, from the shard's RTCP port.
    pub(crate) fn send_rtcp(&self, ports: &ServerPorts, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = ports.rtcp_send.send_to(bytes, to) {
            tracing::debug!(error = %e, dest = %to, side = "downstream", "RTCP send failed");
        }
    }
}

/// A shard's multicast sender: one socket for every group of the streams it owns, made when
/// the first multicast reader comes, with the plan's TTL, loopback delivery on (receivers on
/// this host get the packets too), and the relay's address as the outgoing interface when it
/// listens on a specific IPv4 address.
#[derive(Debug, Default)]
pub(crate) struct MulticastEgress {
    socket: RefCell<Option<std::net::UdpSocket>>,
    /// Sends the kernel refused.
    drops: Cell<u64>,
}

impl MulticastEgress {
    /// Makes the socket if there is none yet (bound to `local`, port chosen by the kernel).
    pub(crate) fn open(&self, ttl: u8, local: IpAddr) -> io::Result<()> {
        if self.socket.borrow().is_none() {
            *self.socket.borrow_mut() = Some(multicast_socket(ttl, local)?);
        }
        Ok(())
    }

    /// Sends `bytes` to a group once.
    pub(crate) fn send(&self, bytes: &[u8], to: SocketAddrV4) {
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else { return };
        if let Err(e) = socket.send_to(bytes, to) {
            self.drops.set(self.drops.get() + 1);
            tracing::debug!(error = %e, group = %to, "multicast send failed");
        }
    }

    /// Sends the kernel refused so far.
    pub(crate) fn drops(&self) -> u64 {
        self.drops.get()
    }
}

fn multicast_socket(ttl: u8, local: IpAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let local = match local {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    s.set_multicast_ttl_v4(u32::from(ttl))?;
    s.set_multicast_loop_v4(true)?;
    if !local.is_unspecified() {
        s.set_multicast_if_v4(&local)?;
    }
    s.bind(&SocketAddr::from((local, 0)).into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multicast_socket_has_ttl_loop_and_interface() {
        let s = multicast_socket(3, "127.0.0.1".parse().unwrap()).unwrap();
        let s = socket2::SockRef::from(&s);
        assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
        assert!(s.multicast_loop_v4().unwrap());
        assert_eq!(s.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);
    }
}
