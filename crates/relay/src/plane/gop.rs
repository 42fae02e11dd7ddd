//! The GOP cache, sans-IO: the packets of the current group of pictures (from the latest
//! keyframe's first packet, with every track's packets since), so that a new reader starts
//! with a decodable picture at once instead of waiting for the next keyframe.
//!
//! The previous GOP is dropped when a new one starts. A GOP that grows past the bound (an
//! encoder with very long GOPs) is dropped too, and the cache waits for the next keyframe.

use crate::plane::packet::SharedPacket;

/// The latest GOP of one stream.
#[derive(Debug)]
pub(crate) struct GopCache {
    packets: Vec<SharedPacket>,
    bytes: usize,
    max_packets: usize,
    max_bytes: usize,
    /// Whether the cache holds a GOP from its start (false until the first keyframe, and
    /// after an overflow).
    open: bool,
    enabled: bool,
}

impl GopCache {
    /// An empty cache bounded to `max_packets` packets and `max_bytes` bytes; `enabled: false`
    /// keeps nothing (readers then start at the next keyframe).
    pub(crate) fn new(enabled: bool, max_packets: usize, max_bytes: usize) -> Self {
        GopCache { packets: Vec::new(), bytes: 0, max_packets, max_bytes, open: false, enabled }
    }

    /// Records a packet in arrival order. `gop_start` says it begins a new GOP (the first
    /// packet of a keyframe's access unit, see `manifold_rtp::codec::GopStart`).
    pub(crate) fn push(&mut self, packet: &SharedPacket, gop_start: bool) {
        if !self.enabled {
            return;
        }
        if gop_start {
            self.packets.clear();
            self.bytes = 0;
            self.open = true;
        }
        if !self.open {
            return;
        }
        if self.packets.len() >= self.max_packets || self.bytes + packet.len() > self.max_bytes {
            self.packets.clear();
            self.bytes = 0;
            self.open = false;
            return;
        }
        self.bytes += packet.len();
        self.packets.push(packet.clone());
    }

    /// The cached GOP, oldest first (empty when there is none).
    pub(crate) fn snapshot(&self) -> Vec<SharedPacket> {
        self.packets.clone()
    }

    /// Packets cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plane::packet::Packet;

    fn pkt(track: usize, seq: u16, sync: bool) -> SharedPacket {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0; 88]);
        Arc::new(Packet::new(track, &p, sync).unwrap())
    }

    fn seqs(g: &GopCache) -> Vec<(usize, u16)> {
        g.snapshot().iter().map(|p| (p.track(), p.seq())).collect()
    }

    #[test]
    fn keeps_the_latest_gop_with_every_track() {
        let mut g = GopCache::new(true, 100, 1 << 20);
        g.push(&pkt(0, 1, false), false);
        g.push(&pkt(1, 50, true), false);
        assert_eq!(g.len(), 0, "nothing before the first keyframe");
        g.push(&pkt(0, 2, true), true);
        g.push(&pkt(1, 51, true), false);
        g.push(&pkt(0, 3, false), false);
        assert_eq!(seqs(&g), [(0, 2), (1, 51), (0, 3)]);
        g.push(&pkt(0, 4, true), true);
        assert_eq!(seqs(&g), [(0, 4)]);
    }

    #[test]
    fn overflow_waits_for_the_next_keyframe() {
        let mut g = GopCache::new(true, 2, 1 << 20);
        g.push(&pkt(0, 1, true), true);
        g.push(&pkt(0, 2, false), false);
        g.push(&pkt(0, 3, false), false);
        assert_eq!(g.len(), 0);
        g.push(&pkt(0, 4, false), false);
        assert_eq!(g.len(), 0);
        g.push(&pkt(0, 5, true), true);
        assert_eq!(seqs(&g), [(0, 5)]);
    }

    #[test]
    fn disabled_keeps_nothing() {
        let mut g = GopCache::new(false, 100, 1 << 20);
        g.push(&pkt(0, 1, true), true);
        assert_eq!(g.len(), 0);
    }
}
