//! The relay's data plane, sans-IO: everything that decides where a packet goes, as plain
//! structs that take `(now, input)` and give back what to send, in the quinn-proto / str0m
//! style. No sockets, no clock reads, no shard: the shard owns the I/O, feeds the plane and
//! carries out what it returns. The one thing of the runtime it holds is each reader's
//! wake-up flag for its connection's writer ([`crate::notify::Notify`]), which it sets once
//! per batch of queued packets (setting a flag is not I/O).
//!
//! - [`hub::Hub`] (one per stream, on the shard that owns its upstream): RTP header parsed
//!   once, keyframes, the GOP cache ([`gop`]), continuity rewriting, sender-report mapping;
//!   and which other shards get each packet ([`forward::Forwarding`], cross-shard lag);
//!   the upstream's own loss and jitter ([`upstream_loss`]).
//! - [`fanout::Fanout`] (one per stream on each shard with readers): UDP frames for the live
//!   UDP readers, bounded queues ([`queue`]) for the others, a reader going live.
//! - [`reader::Reader`]: one playing session, its tracks, queue, stall clock and counters;
//!   [`rtcp_feedback`] folds its receiver reports.
//! - [`packet::Packet`]: the one shared buffer per packet, with interleave headroom.
//! - [`multicast`]: a stream's group, the answer to a multicast SETUP, and which groups the
//!   owning shard sends to (while they have readers).
//!
//! The drain contract, for the shard: hand the hub an upstream packet; give what it returns
//! to the local fan-out (which pushes [`Egress`] actions into the shard's buffer) and to the
//! shards [`hub::Hub::forward_targets`] names, reporting each queue's answer with
//! [`hub::Hub::forwarded`]; then carry out the buffered [`Egress`] actions in order before
//! the next packet. TCP readers' packets wait in their queues; their writers are woken once
//! and drain them with [`fanout::Fanout::drain`] (by reader id: the fan-out owns its readers);
//! [`fanout::Fanout::stalled`] names the readers whose writers took nothing for the stall
//! limit, for the shard to close.

pub(crate) mod fanout;
pub(crate) mod forward;
pub(crate) mod gop;
pub(crate) mod hub;
pub(crate) mod multicast;
pub(crate) mod packet;
pub(crate) mod queue;
pub(crate) mod reader;
pub(crate) mod rtcp_feedback;
#[cfg(test)]
mod tests;
pub(crate) mod upstream_loss;

use std::net::SocketAddr;
use std::rc::Rc;

use manifold_udp::RawAddr;

use crate::plane::packet::SharedPacket;

/// A send the plane decided, for the shard to carry out.
#[derive(Debug)]
pub(crate) enum Egress {
    /// One frame's packets to every live UDP reader of their track: one GSO message per
    /// reader where the sizes allow, all readers in one `sendmmsg`.
    UdpFrame {
        /// The frame's packets, in order.
        packets: Vec<SharedPacket>,
        /// The readers' RTP addresses.
        dests: Rc<[RawAddr]>,
    },
    /// One RTP packet to one UDP reader (what it queued before it went live).
    UdpPacket {
        /// The packet.
        packet: SharedPacket,
        /// The reader's RTP address.
        dest: RawAddr,
    },
    /// An RTCP packet (a sender report) to a UDP reader's RTCP port.
    Rtcp {
        /// The packet.
        packet: SharedPacket,
        /// The reader's RTCP address.
        to: SocketAddr,
    },
}

/// Rounds of [`gate_test_slowdown`] per datagram: about 2.7–3 µs of CPU on the development
/// machines, 2–3× the 0.8–1.3 µs the relay spends per datagram it delivers there, which leaves
/// it 0.22–0.28× the packets per CPU-second (perf/PROFILE.md).
#[cfg(feature = "gate-test-slowdown")]
const SLOWDOWN_ROUNDS_PER_DATAGRAM: u64 = 2048;

/// Test-only (`--features gate-test-slowdown`): burns CPU for `datagrams` datagrams handed to
/// the kernel, a fixed chain of multiplications the optimiser cannot drop, so that the CI perf
/// gate can be shown to fail on a build that delivers well under half the packets per relay
/// CPU-second. Compiled out of every normal build.
#[cfg(feature = "gate-test-slowdown")]
pub(crate) fn gate_test_slowdown(datagrams: usize) {
    let rounds = (datagrams as u64).saturating_mul(SLOWDOWN_ROUNDS_PER_DATAGRAM);
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..rounds {
        x = std::hint::black_box(
            x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407),
        );
    }
    std::hint::black_box(x);
}
