//! Carrying out the plane's UDP sends from a shard's server-port socket ([`UdpEgress`]): a
//! frame to many readers as one UDP GSO message per reader, all readers in one `sendmmsg`
//! (manifold-udp's `MmsgSender::send_gso_to_many`); odd-sized packets (parameter sets, audio)
//! one packet to all readers per `sendmmsg` (`send_to_many`); single packets and RTCP with
//! one `sendto`. Nothing here waits: a datagram the kernel refuses is counted and dropped.

use std::cell::{Cell, RefCell};
use std::io::IoSlice;
use std::net::SocketAddr;

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
