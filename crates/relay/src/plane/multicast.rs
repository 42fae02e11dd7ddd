//! The multicast plan, sans-IO: a reader whose SETUP offers `multicast` is given its stream's
//! group ([`answer`]: an address of the configured range, the configured port pair and TTL)
//! and joins it; the shard that owns the stream sends each packet to the group once, however
//! many readers joined ([`MulticastGroups::destination`]; the socket is `egress`'s).
//!
//! Groups are derived from the stream id (`range base + 1 + (id - 1) mod (hosts)`), so every
//! shard computes the same group without asking; a range smaller than the number of live
//! streams reuses groups (readers would then see two streams' packets: size the range).
//! Readers' shards tell the owner when a multicast reader starts or stops
//! (`ShardMsg::Multicast`); the owner sends while the count is above zero.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use manifold_rtsp::header::{Delivery, Destination, LowerTransport, PortRange, TransportSpec};

use crate::plane::packet::SharedPacket;
use crate::plane::reader::ReaderTrack;

/// Why a multicast range or port cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MulticastConfigError {
    /// Not `address/prefix`.
    #[error("multicast range {0:?}: expected address/prefix, e.g. 239.255.42.0/24")]
    Syntax(String),
    /// The address does not parse.
    #[error("multicast range {range:?}: {source}")]
    Address {
        /// The range as given.
        range: String,
        /// Why the address does not parse.
        source: std::net::AddrParseError,
    },
    /// The prefix is not 4 to 30 bits.
    #[error("multicast range {0:?}: the prefix must be 4..=30")]
    Prefix(String),
    /// The range is not in 224.0.0.0/4.
    #[error("multicast range {0:?} is not in 224.0.0.0/4")]
    NotMulticast(String),
    /// The port is odd, 0 or 65535.
    #[error("multicast port {0} must be even and non-zero (RTCP is the next port)")]
    Port(u16),
}

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
    pub(crate) fn new(
        range: &str,
        port: u16,
        ttl: u8,
    ) -> Result<MulticastPlan, MulticastConfigError> {
        let (addr, len) =
            range.split_once('/').ok_or_else(|| MulticastConfigError::Syntax(range.to_owned()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|source| MulticastConfigError::Address { range: range.to_owned(), source })?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| (4..=30).contains(l))
            .ok_or_else(|| MulticastConfigError::Prefix(range.to_owned()))?;
        if !addr.is_multicast() {
            return Err(MulticastConfigError::NotMulticast(range.to_owned()));
        }
        if port % 2 != 0 || port == 0 || port == u16::MAX {
            return Err(MulticastConfigError::Port(port));
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
    packets: u64,
}

/// The groups a shard sends to (for the streams it owns), with their readers counted.
#[derive(Debug, Default)]
pub(crate) struct MulticastGroups {
    streams: HashMap<u64, Sending>,
}

impl MulticastGroups {
    /// A multicast reader of `stream` (sent to `group`) started (`delta` 1) or stopped (-1).
    pub(crate) fn adjust(&mut self, stream: u64, group: SocketAddrV4, delta: i64) {
        let s = self.streams.entry(stream).or_insert(Sending { group, readers: 0, packets: 0 });
        s.readers += delta;
        if s.readers <= 0 {
            self.streams.remove(&stream);
        }
    }

    /// Where `packet` of `stream` goes, once for all its multicast readers: the group's RTP
    /// port, or the next one for RTCP; `None` while the stream has no multicast reader.
    pub(crate) fn destination(
        &mut self,
        stream: u64,
        packet: &SharedPacket,
    ) -> Option<SocketAddrV4> {
        if self.streams.is_empty() {
            return None;
        }
        let s = self.streams.get_mut(&stream)?;
        let mut to = s.group;
        if packet.is_rtcp() {
            to.set_port(to.port() + 1);
        } else {
            s.packets += 1;
        }
        Some(to)
    }

    /// RTP packets sent to `stream`'s group so far (while it had readers), if it has any.
    pub(crate) fn packets(&self, stream: u64) -> Option<u64> {
        self.streams.get(&stream).map(|s| s.packets)
    }

    /// Forgets a stream that ended.
    pub(crate) fn forget(&mut self, stream: u64) {
        self.streams.remove(&stream);
    }
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
    fn a_group_is_sent_to_while_it_has_readers() {
        let p = MulticastPlan::new("239.255.42.0/24", 40000, 1).unwrap();
        let mut g = MulticastGroups::default();
        let rtp = std::sync::Arc::new(
            crate::plane::packet::Packet::new(0, &[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9], true)
                .unwrap(),
        );
        let rtcp = std::sync::Arc::new(
            crate::plane::packet::Packet::rtcp(0, &[0x80, 200, 0, 1, 0, 0, 0, 9]).unwrap(),
        );
        assert_eq!(g.destination(5, &rtp), None, "no reader yet");
        g.adjust(5, p.group(5), 1);
        g.adjust(5, p.group(5), 1);
        assert_eq!(g.destination(5, &rtp), Some("239.255.42.5:40000".parse().unwrap()));
        assert_eq!(g.destination(5, &rtcp), Some("239.255.42.5:40001".parse().unwrap()));
        assert_eq!(g.destination(6, &rtp), None, "another stream");
        assert_eq!(g.packets(5), Some(1), "RTP counted once, however many readers");
        g.adjust(5, p.group(5), -1);
        assert!(g.destination(5, &rtp).is_some(), "one reader left");
        g.adjust(5, p.group(5), -1);
        assert_eq!(g.destination(5, &rtp), None);
        assert_eq!(g.packets(5), None);
    }
}
