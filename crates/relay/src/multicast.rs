//! UDP multicast egress: a reader whose SETUP offers `multicast` is given its stream's group
//! (an address of the configured range, the configured port pair and TTL) and joins it; the
//! shard that owns the stream sends each packet to the group once, however many readers
//! joined, from a socket of its own with `IP_MULTICAST_TTL`, `IP_MULTICAST_LOOP` and (when
//! the relay listens on a specific IPv4 address) `IP_MULTICAST_IF` set.
//!
//! Groups are derived from the stream id (`range base + 1 + (id - 1) mod (hosts)`), so every
//! shard computes the same group without asking; a range smaller than the number of live
//! streams reuses groups (readers would then see two streams' packets: size the range).
//! Readers' shards tell the owner when a multicast reader starts or stops
//! (`ShardMsg::Multicast`); the owner sends while the count is above zero.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use manifold_rtsp::header::{Delivery, Destination, LowerTransport, PortRange, TransportSpec};

use crate::plane::packet::SharedPacket;
use crate::plane::reader::ReaderTrack;

/// Where multicast groups come from: an IPv4 range, a port pair, a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MulticastPlan {
    network: Ipv4Addr,
    hosts: u32,
    port: u16,
    ttl: u8,
}

impl MulticastPlan {
    /// Parses `a.b.c.d/len` (a multicast network) with the RTP port (even; RTCP is next).
    pub(crate) fn new(range: &str, port: u16, ttl: u8) -> Result<MulticastPlan, String> {
        let (addr, len) = range
            .split_once('/')
            .ok_or_else(|| format!("multicast range {range:?}: expected address/prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("multicast range {range:?}: {e}"))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| (4..=30).contains(l))
            .ok_or_else(|| format!("multicast range {range:?}: prefix must be 4..=30"))?;
        if !addr.is_multicast() {
            return Err(format!("multicast range {range:?} is not in 224.0.0.0/4"));
        }
        if port % 2 != 0 || port == 0 || port == u16::MAX {
            return Err(format!("multicast port {port} must be even and non-zero"));
        }
        let mask = u32::MAX << (32 - len);
        let network = Ipv4Addr::from(u32::from(addr) & mask);
        let hosts = (1u32 << (32 - len)) - 2;
        Ok(MulticastPlan { network, hosts, port, ttl })
    }

    /// The group (RTP address; RTCP is the next port) of stream `stream`.
    pub(crate) fn group(&self, stream: u64) -> SocketAddrV4 {
        let index = (stream.saturating_sub(1) % u64::from(self.hosts)) as u32;
        let ip = Ipv4Addr::from(u32::from(self.network) + 1 + index);
        SocketAddrV4::new(ip, self.port)
    }

    /// The TTL announced and set.
    pub(crate) fn ttl(&self) -> u8 {
        self.ttl
    }
}

/// One stream's group on its owning shard.
#[derive(Debug)]
struct Sending {
    group: SocketAddrV4,
    readers: i64,
    packets: Cell<u64>,
}

/// A shard's multicast sends (for the streams it owns).
#[derive(Debug, Default)]
pub(crate) struct ShardMulticast {
    socket: RefCell<Option<std::net::UdpSocket>>,
    streams: RefCell<HashMap<u64, Sending>>,
    /// Sends the kernel refused.
    pub(crate) drops: Cell<u64>,
}

impl ShardMulticast {
    /// A multicast reader of `stream` (sent to `group`) started (`delta` 1) or stopped (-1).
    /// Returns an error when the sending socket cannot be made.
    pub(crate) fn adjust(
        &self,
        stream: u64,
        group: SocketAddrV4,
        delta: i64,
        plan: &MulticastPlan,
        local: IpAddr,
    ) -> Result<(), String> {
        if self.socket.borrow().is_none() {
            *self.socket.borrow_mut() = Some(sending_socket(plan, local)?);
        }
        let mut streams = self.streams.borrow_mut();
        let s =
            streams.entry(stream).or_insert(Sending { group, readers: 0, packets: Cell::new(0) });
        s.readers += delta;
        if s.readers <= 0 {
            streams.remove(&stream);
        }
        Ok(())
    }

    /// Sends `packet` of `stream` to its group, once, if it has multicast readers.
    pub(crate) fn send(&self, stream: u64, packet: &SharedPacket) {
        let streams = self.streams.borrow();
        if streams.is_empty() {
            return;
        }
        let Some(s) = streams.get(&stream) else { return };
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else { return };
        let mut to = s.group;
        if packet.is_rtcp() {
            to.set_port(to.port() + 1);
        }
        match socket.send_to(packet.rtp(), to) {
            Ok(_) => {
                if !packet.is_rtcp() {
                    s.packets.set(s.packets.get() + 1);
                }
            }
            Err(e) => {
                self.drops.set(self.drops.get() + 1);
                tracing::debug!(error = %e, group = %to, stream, "multicast send failed");
            }
        }
    }

    /// RTP packets sent to `stream`'s group so far (while it had readers), if it has any.
    pub(crate) fn packets(&self, stream: u64) -> Option<u64> {
        self.streams.borrow().get(&stream).map(|s| s.packets.get())
    }

    /// Forgets a stream that ended.
    pub(crate) fn forget(&self, stream: u64) {
        self.streams.borrow_mut().remove(&stream);
    }
}

/// A non-blocking UDP socket for multicast sends, bound to `local` (port chosen by the
/// kernel), with the plan's TTL, loopback delivery on (receivers on this host get the
/// packets too), and `local` as the outgoing interface when it is a specific IPv4 address.
fn sending_socket(plan: &MulticastPlan, local: IpAddr) -> Result<std::net::UdpSocket, String> {
    let make = || -> std::io::Result<std::net::UdpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        let local = match local {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        s.set_multicast_ttl_v4(u32::from(plan.ttl))?;
        s.set_multicast_loop_v4(true)?;
        if !local.is_unspecified() {
            s.set_multicast_if_v4(&local)?;
        }
        s.bind(&SocketAddr::from((local, 0)).into())?;
        s.set_nonblocking(true)?;
        Ok(s.into())
    };
    make().map_err(|e| format!("multicast socket: {e}"))
}

/// The answer to a reader's `multicast` offer for `stream`: the track joins the stream's
/// group; `None` when multicast is off or the offer is not UDP.
pub(crate) fn answer(
    plan: Option<&MulticastPlan>,
    stream: u64,
    offer: &TransportSpec,
) -> Option<(ReaderTrack, TransportSpec)> {
    let plan = plan?;
    if offer.lower_transport() != LowerTransport::Udp {
        return None;
    }
    let group = plan.group(stream);
    let answer = TransportSpec {
        lower: offer.lower,
        delivery: Some(Delivery::Multicast),
        destination: Some(Destination::Address(group.ip().to_string())),
        port: PortRange::pair(group.port()),
        ttl: Some(plan.ttl()),
        ..TransportSpec::default()
    };
    Some((ReaderTrack::Multicast { group }, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_from_the_range() {
        let p = MulticastPlan::new("239.255.42.0/24", 40000, 1).unwrap();
        assert_eq!(p.group(1), "239.255.42.1:40000".parse().unwrap());
        assert_eq!(p.group(2), "239.255.42.2:40000".parse().unwrap());
        assert_eq!(p.group(255), "239.255.42.1:40000".parse().unwrap(), "wraps over 254 hosts");
        let p = MulticastPlan::new("239.255.42.77/30", 5000, 4).unwrap();
        assert_eq!(p.group(1), "239.255.42.77:5000".parse().unwrap());
        assert_eq!(p.group(3), "239.255.42.77:5000".parse().unwrap());
        assert_eq!(p.ttl(), 4);
    }

    #[test]
    fn a_multicast_offer_gets_the_group() {
        let p = MulticastPlan::new("239.255.42.0/24", 40000, 2).unwrap();
        let offer = TransportSpec::parse("RTP/AVP;multicast").unwrap();
        let (track, answered) = answer(Some(&p), 3, &offer).unwrap();
        assert!(matches!(track, ReaderTrack::Multicast { group }
            if group == "239.255.42.3:40000".parse().unwrap()));
        assert_eq!(
            answered.to_string(),
            "RTP/AVP;multicast;destination=239.255.42.3;ttl=2;port=40000-40001"
        );
        assert!(answer(None, 3, &offer).is_none(), "multicast off");
        let tcp = TransportSpec::parse("RTP/AVP/TCP;multicast").unwrap();
        assert!(answer(Some(&p), 3, &tcp).is_none());
    }

    #[test]
    fn bad_ranges_are_refused() {
        for (range, port) in [
            ("10.0.0.0/24", 40000),
            ("239.0.0.0", 40000),
            ("239.0.0.0/31", 40000),
            ("239.0.0.0/x", 40000),
            ("239.0.0.0/24", 40001),
        ] {
            assert!(MulticastPlan::new(range, port, 1).is_err(), "{range} {port}");
        }
    }

    #[test]
    fn the_sending_socket_has_ttl_loop_and_interface() {
        let p = MulticastPlan::new("239.255.42.0/24", 40000, 3).unwrap();
        let s = sending_socket(&p, "127.0.0.1".parse().unwrap()).unwrap();
        let s = socket2::SockRef::from(&s);
        assert_eq!(s.multicast_ttl_v4().unwrap(), 3);
        assert!(s.multicast_loop_v4().unwrap());
        assert_eq!(s.multicast_if_v4().unwrap(), Ipv4Addr::LOCALHOST);
    }
}
