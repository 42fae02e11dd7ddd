//! The slow-reader policy, sans-IO: each reader's bounded queue of shared packets.
//!
//! A reader's lag is bounded in packets and bytes. A packet that would overflow the bound
//! empties the queue and puts the reader in *skipping* mode: everything is dropped (and
//! counted) until the next sync point (the first packet of a keyframe), where the reader
//! resumes with a decodable picture. The hub and the other readers never wait for it.

use std::collections::VecDeque;

use crate::plane::packet::SharedPacket;

/// What happened to a packet offered to a [`ReaderQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued.
    Queued,
    /// Dropped: the reader is skipping to the next keyframe.
    Skipped,
    /// The queue overflowed: it was emptied and the reader now skips to the next keyframe
    /// (this packet too, unless it is a sync point, in which case it was queued).
    Overflowed,
}

/// Counters of what the policy did to one reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct QueueStats {
    /// Packets dropped (emptied on overflow or skipped while waiting for a keyframe).
    pub(crate) dropped: u64,
    /// Times the reader fell behind and skipped to the next keyframe.
    pub(crate) skips: u64,
}

/// A bounded FIFO of packets for one reader, with the skip-to-keyframe policy.
#[derive(Debug)]
pub(crate) struct ReaderQueue {
    packets: VecDeque<SharedPacket>,
    bytes: usize,
    max_packets: usize,
    max_bytes: usize,
    skipping: bool,
    stats: QueueStats,
}

impl ReaderQueue {
    /// An empty queue bounded to `max_packets` packets and `max_bytes` bytes. A new reader
    /// starts in skipping mode: its first packet must be a sync point.
    pub(crate) fn new(max_packets: usize, max_bytes: usize) -> Self {
        ReaderQueue {
            packets: VecDeque::new(),
            bytes: 0,
            max_packets: max_packets.max(1),
            max_bytes: max_bytes.max(1),
            skipping: true,
            stats: QueueStats::default(),
        }
    }

    /// Offers a packet.
    pub(crate) fn offer(&mut self, packet: SharedPacket) -> Offer {
        if self.skipping {
            if !packet.is_sync_point() {
                self.stats.dropped += 1;
                return Offer::Skipped;
            }
            self.skipping = false;
        }
        if self.packets.len() + 1 > self.max_packets || self.bytes + packet.len() > self.max_bytes {
            self.stats.dropped += self.packets.len() as u64;
            self.stats.skips += 1;
            self.packets.clear();
            self.bytes = 0;
            if packet.is_sync_point() {
                self.push(packet);
            } else {
                self.stats.dropped += 1;
                self.skipping = true;
            }
            return Offer::Overflowed;
        }
        self.push(packet);
        Offer::Queued
    }

    fn push(&mut self, packet: SharedPacket) {
        self.bytes += packet.len();
        self.packets.push_back(packet);
    }

    /// Whether the reader has its starting sync point (it is not waiting for a keyframe).
    pub(crate) fn started(&self) -> bool {
        !self.skipping
    }

    /// Takes the oldest packet.
    pub(crate) fn pop(&mut self) -> Option<SharedPacket> {
        let p = self.packets.pop_front()?;
        self.bytes -= p.len();
        Some(p)
    }

    /// Drops the queued packets of `track` (a TEARDOWN of that track).
    pub(crate) fn drop_track(&mut self, track: usize) {
        let before = self.packets.len();
        self.packets.retain(|p| p.track() != track);
        self.stats.dropped += (before - self.packets.len()) as u64;
        self.bytes = self.packets.iter().map(|p| p.len()).sum();
    }

    /// The queued packets, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &SharedPacket> {
        self.packets.iter()
    }

    /// Packets queued.
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// What the policy did so far.
    pub(crate) fn stats(&self) -> QueueStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::plane::packet::Packet;

    fn pkt(seq: u16, sync: bool) -> SharedPacket {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0; 88]);
        Arc::new(Packet::new(0, &p, sync).unwrap())
    }

    fn seqs(q: &ReaderQueue) -> Vec<u16> {
        q.iter().map(|p| p.seq()).collect()
    }

    #[test]
    fn starts_at_a_sync_point() {
        let mut q = ReaderQueue::new(10, 1 << 20);
        assert_eq!(q.offer(pkt(1, false)), Offer::Skipped);
        assert_eq!(q.offer(pkt(2, true)), Offer::Queued);
        assert_eq!(q.offer(pkt(3, false)), Offer::Queued);
        assert_eq!(seqs(&q), [2, 3]);
        assert_eq!(q.stats().dropped, 1);
    }

    #[test]
    fn overflow_skips_to_the_next_keyframe() {
        let mut q = ReaderQueue::new(3, 1 << 20);
        for (s, k) in [(1, true), (2, false), (3, false)] {
            assert_eq!(q.offer(pkt(s, k)), Offer::Queued);
        }
        assert_eq!(q.offer(pkt(4, false)), Offer::Overflowed);
        assert!(q.is_empty());
        assert_eq!(q.offer(pkt(5, false)), Offer::Skipped);
        assert_eq!(q.offer(pkt(6, true)), Offer::Queued);
        assert_eq!(q.offer(pkt(7, false)), Offer::Queued);
        assert_eq!(seqs(&q), [6, 7]);
        assert_eq!(q.stats(), QueueStats { dropped: 5, skips: 1 });
    }

    #[test]
    fn overflow_on_a_keyframe_keeps_it() {
        let mut q = ReaderQueue::new(2, 1 << 20);
        q.offer(pkt(1, true));
        q.offer(pkt(2, false));
        assert_eq!(q.offer(pkt(3, true)), Offer::Overflowed);
        assert_eq!(seqs(&q), [3]);
    }

    #[test]
    fn byte_bound_and_pop() {
        // Each packet is 100 bytes of RTP.
        let mut q = ReaderQueue::new(100, 250);
        q.offer(pkt(1, true));
        q.offer(pkt(2, false));
        assert_eq!(q.bytes(), 200);
        assert_eq!(q.offer(pkt(3, false)), Offer::Overflowed);
        assert_eq!(q.len(), 0);
        q.offer(pkt(4, true));
        assert_eq!(q.pop().map(|p| p.seq()), Some(4));
        assert_eq!(q.bytes(), 0);
        assert!(q.pop().is_none());
    }
}
