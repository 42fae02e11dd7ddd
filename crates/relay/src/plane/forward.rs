//! Cross-shard lag, sans-IO: which other shards a hub's packet goes to. A shard with readers
//! of the stream gets every packet through its queue from the owner; when that queue is full
//! the packet is dropped, and the shard gets nothing more until the next sync point (a
//! keyframe start), so its readers resume with a decodable picture. The hub never waits.

/// What the owner knows about one other shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Remote {
    /// The shard has readers of this stream.
    subscribed: bool,
    /// Its queue was full: send nothing until the next sync point.
    lagging: bool,
}

/// The other shards of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    remotes: Vec<Remote>,
}

impl Forwarding {
    /// No shard subscribed, on a relay of `shards` shards.
    pub(crate) fn new(shards: usize) -> Forwarding {
        Forwarding { remotes: vec![Remote::default(); shards] }
    }

    /// Shard `shard` has readers (or not any more). A shard already subscribed keeps its
    /// state: if it is lagging, its readers still need the next keyframe.
    pub(crate) fn set_subscribed(&mut self, shard: usize, subscribed: bool) {
        if let Some(r) = self.remotes.get_mut(shard) {
            if r.subscribed != subscribed {
                *r = Remote { subscribed, lagging: false };
            }
        }
    }

    /// The subscribed shards.
    pub(crate) fn subscribed(&self) -> Vec<usize> {
        self.remotes.iter().enumerate().filter(|(_, r)| r.subscribed).map(|(i, _)| i).collect()
    }

    /// Fills `targets` with the subscribed shards other than `own` that a packet goes to
    /// (after a full queue only a sync point resumes the flow); returns how many subscribed
    /// shards were passed over for lagging.
    pub(crate) fn targets(&self, own: usize, sync_point: bool, targets: &mut Vec<usize>) -> u64 {
        targets.clear();
        let mut held_back = 0;
        for (to, r) in self.remotes.iter().enumerate() {
            if to == own || !r.subscribed {
                continue;
            }
            if r.lagging && !sync_point {
                held_back += 1;
                continue;
            }
            targets.push(to);
        }
        held_back
    }

    /// Records whether shard `to`'s queue took the packet.
    pub(crate) fn sent(&mut self, to: usize, queued: bool) {
        if let Some(r) = self.remotes.get_mut(to) {
            r.lagging = !queued;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_shard_queue_resumes_at_the_next_keyframe() {
        let mut f = Forwarding::new(3);
        let mut t = Vec::new();
        assert_eq!(f.targets(0, true, &mut t), 0);
        assert!(t.is_empty(), "no readers elsewhere");
        f.set_subscribed(1, true);
        f.set_subscribed(2, true);
        f.targets(0, false, &mut t);
        assert_eq!(t, [1, 2]);
        f.sent(1, false);
        assert_eq!(f.targets(0, false, &mut t), 1, "mid-GOP packets are held back from 1");
        assert_eq!(t, [2]);
        f.targets(0, true, &mut t);
        assert_eq!(t, [1, 2], "a keyframe start may resume");
        f.sent(1, true);
        f.targets(0, false, &mut t);
        assert_eq!(t, [1, 2]);
        f.set_subscribed(2, false);
        assert_eq!(f.subscribed(), [1]);
    }
}
