//! A shard's metrics snapshot: what its hubs took in and what its readers were sent, read
//! once a second from the plane's counters (never per packet).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::metrics::{reader_snapshot, ShardSnapshot, StreamPart, UpstreamSnapshot};
use crate::shard::Shard;

impl Shard {
    /// Takes this shard's snapshot.
    pub(crate) fn snapshot(&self) -> ShardSnapshot {
        let now = Instant::now();
        let obs = &self.obs;
        let mut streams: BTreeMap<u64, StreamPart> = BTreeMap::new();
        for (info, stats) in self.hub_views() {
            let upstream = obs.upstream(info.id);
            let part = streams.entry(info.id).or_default();
            part.id = info.id;
            part.path = info.path.clone();
            part.upstream = Some(UpstreamSnapshot {
                kind: upstream.as_ref().map_or("unknown", |u| u.kind).to_owned(),
                peer: upstream.and_then(|u| u.peer).map(|p| p.to_string()),
                packets_in: stats.packets_in,
                bytes_in: stats.bytes_in,
                malformed: stats.malformed,
                shard_queue_drops: stats.remote_drops,
                lost: stats.lost,
                jitter_ms: stats.jitter.as_secs_f64() * 1000.0,
                wrong_payload_type: stats.wrong_payload_type,
                multicast_packets: self.groups.borrow().packets(info.id),
            });
        }
        self.with_fanouts(|fanouts| {
            for (&id, fanout) in fanouts {
                let readers = fanout.readers();
                let part = streams.entry(id).or_default();
                part.id = id;
                if part.path.is_empty() {
                    part.path = readers.first().map(|r| r.path.clone()).unwrap_or_default();
                }
                let clock_rates: Vec<u32> = self
                    .registry()
                    .lookup(&part.path)
                    .filter(|s| s.id == id)
                    .map(|s| s.tracks.iter().map(|t| t.clock_rate).collect())
                    .unwrap_or_default();
                part.retired = fanout.retired();
                for r in readers {
                    let totals = fanout.totals(r);
                    part.readers.push(reader_snapshot(self.id(), r, totals, &clock_rates, now));
                }
            }
        });
        for (id, retired) in obs.retired() {
            if let Some(part) = streams.get_mut(&id) {
                part.retired.add(&retired);
            }
        }
        ShardSnapshot {
            shard: self.id(),
            busy: obs.busy(),
            connections: self.connections() as u64,
            udp_send_drops: self.egress.drops() + self.mcast.drops(),
            rtcp_reports: obs.rtcp_reports.get(),
            mesh_sent: obs.mesh_sent(),
            mesh_received: obs.mesh_received(),
            streams: streams.into_values().filter(|s| !s.path.is_empty()).collect(),
        }
    }
}
