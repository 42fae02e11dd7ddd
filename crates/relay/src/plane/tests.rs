//! The data plane driven with virtual time and no sockets: a clock that only moves when the
//! test says, packets built by hand, and every send the plane decides collected and
//! attributed to readers, as the shard would carry them out.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use manifold_rtp::codec::Codec;
use manifold_rtp::track::PayloadTypes;
use manifold_rtsp::SessionId;
use manifold_udp::RawAddr;
use proptest::prelude::*;

use crate::notify::Notify;
use crate::plane::fanout::Fanout;
use crate::plane::hub::Hub;
use crate::plane::packet::SharedPacket;
use crate::plane::reader::{Reader, ReaderSpec, ReaderTrack};
use crate::plane::Egress;
use crate::registry::{StreamInfo, TrackInfo};

/// A clock that moves only when told.
struct Clock(Instant);

impl Clock {
    fn new() -> Clock {
        Clock(Instant::now())
    }
    fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

fn info(tracks: usize, codec: Option<Codec>) -> Arc<StreamInfo> {
    Arc::new(StreamInfo {
        id: 7,
        path: "/cam".into(),
        owner: 0,
        sdp: String::new(),
        tracks: vec![
            TrackInfo { codec, clock_rate: 90_000, payload_types: PayloadTypes::of([96]) };
            tracks
        ],
    })
}

/// An H.264 RTP packet: a slice of an IDR picture (`key`) or of another picture.
fn rtp(ssrc: u32, seq: u16, ts: u32, key: bool, marker: bool) -> Vec<u8> {
    let mut p = vec![0x80, 96 | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.push(if key { 0x65 } else { 0x41 });
    p.extend_from_slice(&[0xAB; 100]);
    p
}

/// A stream of frames: frame `f` has `per_frame` packets (marker on the last), keyframes
/// every `gop` frames, 3000 ticks apart. Yields (seq, ts, key, marker).
fn frames(count: u64, per_frame: u64, gop: u64) -> Vec<(u16, u32, bool, bool)> {
    let mut out = Vec::new();
    let mut seq = 1u16;
    for f in 0..count {
        for i in 0..per_frame {
            out.push((seq, (f * 3000) as u32, f % gop == 0, i + 1 == per_frame));
            seq = seq.wrapping_add(1);
        }
    }
    out
}

fn reader(id: u64, tracks: Vec<Option<ReaderTrack>>, queue_packets: usize, now: Instant) -> Reader {
    let spec = ReaderSpec {
        id,
        conn: id,
        peer: "127.0.0.1:5000".parse().unwrap(),
        session: SessionId(format!("s{id}")),
        path: "/cam".into(),
        tracks,
        queue_packets,
        queue_bytes: 1 << 20,
    };
    Reader::new(spec, Rc::new(Notify::default()), now)
}

fn tcp() -> Vec<Option<ReaderTrack>> {
    vec![Some(ReaderTrack::Tcp { channel: 0 })]
}

fn udp_addr(id: u64) -> RawAddr {
    RawAddr::from(SocketAddr::from(([127, 0, 0, 1], 10_000 + id as u16 * 2)))
}

fn udp(id: u64) -> Vec<Option<ReaderTrack>> {
    vec![Some(ReaderTrack::Udp { rtp: udp_addr(id), rtcp: None })]
}

/// What TCP reader `id`'s writer would take from its queue at `now` (all of it).
fn drain(fanout: &mut Fanout, id: u64, now: Instant) -> Vec<SharedPacket> {
    let mut frames = Vec::new();
    fanout.drain(now, id, usize::MAX, usize::MAX, &mut frames);
    frames.into_iter().map(|f| f.packet).collect()
}

/// Reader `id` of `fanout`.
fn get(fanout: &Fanout, id: u64) -> &Reader {
    fanout.get(id).expect("the reader is in the fan-out")
}

/// The packets each UDP address was sent, in order.
fn by_dest(out: &[Egress]) -> HashMap<SocketAddr, Vec<SharedPacket>> {
    let mut got: HashMap<SocketAddr, Vec<SharedPacket>> = HashMap::new();
    for e in out {
        match e {
            Egress::UdpFrame { packets, dests } => {
                for d in dests.iter() {
                    got.entry(d.socket_addr()).or_default().extend(packets.iter().cloned());
                }
            }
            Egress::UdpPacket { packet, dest } => {
                got.entry(dest.socket_addr()).or_default().push(packet.clone())
            }
            Egress::Rtcp { .. } => {}
        }
    }
    got
}

fn seqs(packets: &[SharedPacket]) -> Vec<u16> {
    packets.iter().map(|p| p.seq()).collect()
}

#[test]
fn a_reader_joins_at_the_cached_keyframe_with_rtp_info_matching_its_first_packet() {
    let clock = Clock::new();
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, true);
    let mut fanout = Fanout::default();
    let mut out = Vec::new();
    // Keyframes at frames 0 and 4; the reader joins during frame 6.
    let stream = frames(8, 2, 4);
    for (i, &(seq, ts, key, marker)) in stream.iter().enumerate().take(13) {
        let now = clock.at(i as u64 * 20);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq, ts, key, marker)).unwrap();
        fanout.deliver(now, &p, &mut out);
    }
    let mut r = reader(1, tcp(), 1000, clock.at(300));
    r.preload(clock.at(300), &hub.snapshot());
    fanout.add(r);
    // Frame 4 (the keyframe) starts at seq 9, timestamp 12000.
    let rtp_info = get(&fanout, 1).first_queued(0);
    assert_eq!(rtp_info, Some((9, 12_000)));
    fanout.release(clock.at(300), 1, &mut out);
    for (i, &(seq, ts, key, marker)) in stream.iter().enumerate().skip(13) {
        let now = clock.at(i as u64 * 20);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq, ts, key, marker)).unwrap();
        fanout.deliver(now, &p, &mut out);
    }
    let got = drain(&mut fanout, 1, clock.at(400));
    assert_eq!(seqs(&got), (9..=16).collect::<Vec<u16>>(), "from the keyframe, no gap");
    assert_eq!(Some((got[0].seq(), got[0].rtptime())), rtp_info);
    assert!(got[0].is_sync_point());
    assert!(out.is_empty(), "no UDP reader, nothing to send");
}

#[test]
fn packets_of_a_payload_type_the_sdp_did_not_give_are_counted_and_still_forwarded() {
    // The SDP gives 96; readers such as ffmpeg drop 97, and the operator should see why.
    let clock = Clock::new();
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, false);
    for (i, &(seq, ts, key, marker)) in frames(4, 2, 2).iter().enumerate() {
        let mut packet = rtp(1, seq, ts, key, marker);
        if seq > 4 {
            packet[1] = (packet[1] & 0x80) | 97;
        }
        let forwarded = hub.handle_rtp(clock.at(i as u64 * 20), 0, &packet);
        assert!(forwarded.is_some(), "seq {seq}: the relay stays transparent");
    }
    let stats = hub.stats();
    assert_eq!((stats.packets_in, stats.wrong_payload_type, stats.malformed), (8, 4, 0));
}

#[test]
fn a_slow_reader_skips_to_the_next_keyframe_and_is_closed_after_the_stall_limit_while_the_others_get_every_packet(
) {
    let clock = Clock::new();
    let stall = Duration::from_millis(300);
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, false);
    let mut fanout = Fanout::default();
    let mut out = Vec::new();
    for r in [reader(1, tcp(), 1000, clock.at(0)), reader(2, tcp(), 6, clock.at(0))] {
        fanout.add(r);
    }
    fanout.add(reader(3, udp(3), 1000, clock.at(0)));
    for id in 1..=3 {
        fanout.release(clock.at(0), id, &mut out);
    }
    let (fast, slow) = (1, 2);
    let (mut fast_got, mut slow_got) = (Vec::new(), Vec::new());
    let mut stalled = Vec::new();
    // Three GOPs of 4 frames of 2 packets (keyframes at seq 1, 9, 17), 20 ms apart; the slow
    // reader's queue holds 6 packets and its writer takes packets only once, at seq 13.
    for (i, &(seq, ts, key, marker)) in frames(12, 2, 4).iter().enumerate() {
        let now = clock.at(i as u64 * 20);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq, ts, key, marker)).unwrap();
        fanout.deliver(now, &p, &mut out);
        fast_got.extend(drain(&mut fanout, fast, now));
        if seq == 13 {
            slow_got.extend(drain(&mut fanout, slow, now));
        }
        stalled.clear();
        fanout.stalled(now, stall, &mut stalled);
        // Its first packet waits from t=0 until the drain at seq 13 (t=240 ms); the packet
        // after it (t=260 ms) waits past the limit at t=560 ms, when the stream has ended.
        assert!(stalled.is_empty(), "nobody stalls within the limit: {stalled:?} at seq {seq}");
    }
    fanout.stalled(clock.at(559), stall, &mut stalled);
    assert!(stalled.is_empty(), "{stalled:?}");
    fanout.stalled(clock.at(560), stall, &mut stalled);
    assert_eq!(stalled, [(slow, slow)], "the slow reader (on connection {slow}) is named");
    slow_got.extend(drain(&mut fanout, slow, clock.at(600)));
    stalled.clear();
    fanout.stalled(clock.at(10_000), stall, &mut stalled);
    assert!(stalled.is_empty(), "a writer that drained is not stalled: {stalled:?}");
    assert_eq!(seqs(&fast_got), (1..=24).collect::<Vec<u16>>(), "the fast reader got every packet");
    let udp_got = by_dest(&out).remove(&udp_addr(3).socket_addr()).unwrap_or_default();
    assert_eq!(seqs(&udp_got), (1..=24).collect::<Vec<u16>>(), "so did the live UDP reader");
    // The slow one overflowed at seq 7 and resumed at the second keyframe (seq 9); it got
    // 9–13 at the drain, then overflowed again at seq 20 and waits for a keyframe.
    let slow_seqs = seqs(&slow_got);
    assert_eq!(slow_seqs, [9, 10, 11, 12, 13]);
    for w in slow_got.windows(2) {
        assert!(w[1].seq() == w[0].seq() + 1 || w[1].is_sync_point(), "{slow_seqs:?}");
    }
    let stats = get(&fanout, slow).queue.stats();
    assert_eq!(stats.skips, 2, "{stats:?}");
    assert_eq!(get(&fanout, fast).queue.stats().skips, 0);
}

#[test]
fn a_reader_on_another_shard_lags_and_recovers_at_the_next_keyframe() {
    let clock = Clock::new();
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 2, false);
    hub.set_subscribed(1, true);
    let mut remote = Fanout::default();
    let mut targets = Vec::new();
    let mut out = Vec::new();
    remote.add(reader(1, tcp(), 1000, clock.at(0)));
    remote.release(clock.at(0), 1, &mut out);
    for (i, &(seq, ts, key, marker)) in frames(8, 2, 4).iter().enumerate() {
        let now = clock.at(i as u64 * 20);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq, ts, key, marker)).unwrap();
        hub.forward_targets(0, &p, &mut targets);
        for &to in &targets {
            assert_eq!(to, 1);
            // The queue to shard 1 is full once, at seq 4 (mid-GOP).
            let queued = seq != 4;
            hub.forwarded(to, queued);
            if queued {
                remote.deliver(now, &p, &mut out);
            }
        }
    }
    // 4 was dropped by the queue; 5–8 (the rest of the GOP) were held back; 9 resumed.
    let got = seqs(&drain(&mut remote, 1, clock.at(200)));
    assert_eq!(got, [1, 2, 3, 9, 10, 11, 12, 13, 14, 15, 16]);
    assert_eq!(hub.stats().remote_drops, 5, "one refused by the queue, four held back");
    assert_eq!(hub.subscribed_shards(), [1]);
}

#[test]
fn a_republish_continues_sequence_numbers_timestamps_and_ssrc() {
    let clock = Clock::new();
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, true).with_continuity(|| 0xABCD_0001);
    let mut last = None;
    // Publisher A: SSRC 1, seq from 100, 40 ms frames.
    for (i, &(seq, ts, key, marker)) in frames(10, 1, 5).iter().enumerate() {
        let now = clock.at(i as u64 * 40);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq + 99, ts + 5000, key, marker)).unwrap();
        last = Some((p, now));
    }
    let (last_a, at_a) = last.unwrap();
    assert_eq!(last_a.ssrc(), 0xABCD_0001, "the outgoing SSRC is the hub's own");
    // Publisher A leaves; B publishes 2 s later with its own SSRC, counters and clock.
    hub.upstream_restarted();
    assert!(hub.snapshot().is_empty(), "the GOP cache waits for B's first keyframe");
    let at_b = at_a + Duration::from_secs(2);
    let first_b = hub.handle_rtp(at_b, 0, &rtp(2, 40_000, 777, true, true)).unwrap();
    assert_eq!(first_b.ssrc(), 0xABCD_0001);
    assert_eq!(first_b.seq(), last_a.seq().wrapping_add(1), "the sequence continues");
    let advanced = first_b.rtptime().wrapping_sub(last_a.rtptime());
    assert!((179_999..=180_001).contains(&advanced), "timestamps advance by 2 s: {advanced}");
    let second_b =
        hub.handle_rtp(at_b + Duration::from_millis(40), 0, &rtp(2, 40_001, 4377, false, true));
    let second_b = second_b.unwrap();
    assert_eq!(second_b.seq(), first_b.seq().wrapping_add(1));
    assert_eq!(second_b.rtptime().wrapping_sub(first_b.rtptime()), 3600);

    // B's sender report is mapped onto the outgoing stream: its SSRC, its RTP time shifted.
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&2u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]); // NTP time
    sr.extend_from_slice(&4377u32.to_be_bytes());
    sr.extend_from_slice(&[0; 8]); // packet and octet counts
                                   // With its source description: a chunk about B (CNAME "cam", padded) and one about
                                   // another source, which stays as it is.
    sr.extend_from_slice(&[0x82, 202, 0, 5]);
    sr.extend_from_slice(&2u32.to_be_bytes());
    sr.extend_from_slice(&[1, 3, b'c', b'a', b'm', 0, 0, 0]);
    sr.extend_from_slice(&9u32.to_be_bytes());
    sr.extend_from_slice(&[0, 0, 0, 0]);
    let mapped = hub.handle_rtcp(clock.at(2000), 0, &sr).unwrap();
    assert!(mapped.is_rtcp());
    assert_eq!(mapped.ssrc(), 0xABCD_0001);
    assert_eq!(&mapped.rtp()[16..20], &second_b.rtptime().to_be_bytes());
    let sdes = &mapped.rtp()[28..];
    assert_eq!(&sdes[4..8], &0xABCD_0001u32.to_be_bytes(), "B's CNAME names the outgoing SSRC");
    assert_eq!(&sdes[8..16], &[1, 3, b'c', b'a', b'm', 0, 0, 0]);
    assert_eq!(&sdes[16..20], &9u32.to_be_bytes(), "another source's chunk is left alone");
    assert_eq!(hub.snapshot().last().map(|p| p.is_rtcp()), Some(true), "kept for new readers");
}

#[test]
fn a_per_track_teardown_stops_exactly_that_track_beyond_64_tracks() {
    let clock = Clock::new();
    let tracks = 70;
    let mut hub = Hub::new(info(tracks, None), 1, false);
    let mut fanout = Fanout::default();
    let channels = (0..tracks).map(|t| Some(ReaderTrack::Tcp { channel: (2 * t) as u8 })).collect();
    let mut out = Vec::new();
    fanout.add(reader(1, channels, 10_000, clock.at(0)));
    fanout.release(clock.at(0), 1, &mut out);
    assert!(fanout.tear_down_track(1, 66));
    assert!(!fanout.tear_down_track(1, 66), "already torn down");
    for t in 0..tracks {
        let now = clock.at(t as u64);
        let p = hub.handle_rtp(now, t, &rtp(1, t as u16, 0, false, true)).unwrap();
        fanout.deliver(now, &p, &mut out);
    }
    let frames = {
        let mut f = Vec::new();
        fanout.drain(clock.at(100), 1, usize::MAX, usize::MAX, &mut f);
        f
    };
    let got: Vec<usize> = frames.iter().map(|f| f.packet.track()).collect();
    let expected: Vec<usize> = (0..tracks).filter(|&t| t != 66).collect();
    assert_eq!(got, expected);
    assert!(frames.iter().all(|f| f.channel as usize == 2 * f.packet.track()), "on its channel");
    let r = get(&fanout, 1);
    assert!(r.track(65).is_some() && r.track(66).is_none() && r.track(67).is_some());
}

#[test]
fn a_udp_reader_goes_live_at_its_keyframe_and_then_takes_the_frame_sends() {
    let clock = Clock::new();
    let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, false);
    let mut fanout = Fanout::default();
    let mut out = Vec::new();
    fanout.add(reader(1, udp(1), 1000, clock.at(0)));
    fanout.release(clock.at(0), 1, &mut out);
    assert!(!get(&fanout, 1).live, "no keyframe yet");
    // Released before any keyframe: packets skip until one comes, then it goes live.
    for (i, &(seq, ts, _, marker)) in frames(6, 3, 4).iter().enumerate() {
        let key = (4..=6).contains(&seq); // frame 1 is a keyframe
        let now = clock.at(i as u64 * 10);
        let p = hub.handle_rtp(now, 0, &rtp(1, seq, ts, key, marker)).unwrap();
        fanout.deliver(now, &p, &mut out);
    }
    let early = get(&fanout, 1);
    assert!(early.live);
    let got = by_dest(&out).remove(&udp_addr(1).socket_addr()).unwrap_or_default();
    assert_eq!(seqs(&got), (4..=18).collect::<Vec<u16>>());
    let frames_sent = out.iter().filter(|e| matches!(e, Egress::UdpFrame { .. })).count();
    assert!(frames_sent >= 4, "after its first packet, whole frames: {out:?}");
    assert_eq!(fanout.totals(early).packets, 15);
}

/// One step of a randomised session on one shard.
#[derive(Debug, Clone)]
enum Step {
    /// A reader joins (UDP or TCP) with this queue bound.
    Join { udp: bool, queue: usize },
    /// The PLAY of the `n`-th reader (mod the count) is answered.
    Release(usize),
    /// The `n`-th reader leaves.
    Leave(usize),
    /// The `n`-th TCP reader's writer drains its queue.
    Drain(usize),
    /// The next `k` packets of the stream arrive.
    Packets(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 3usize..40).prop_map(|(udp, queue)| Step::Join { udp, queue }),
        (0usize..8).prop_map(Step::Release),
        (0usize..8).prop_map(Step::Leave),
        (0usize..8).prop_map(Step::Drain),
        (0usize..8).prop_map(Step::Drain),
        (1usize..12).prop_map(Step::Packets),
        (1usize..12).prop_map(Step::Packets),
    ]
}

proptest! {
    /// For any interleaving of joins, releases, leaves, drains and packets, every reader
    /// receives each packet at most once and in order; it starts at a keyframe, and every
    /// gap it sees ends at a keyframe and is one its queue counted as a skip.
    #[test]
    fn every_reader_gets_each_packet_once_in_order_or_a_counted_keyframe_skip(
        steps in proptest::collection::vec(step(), 1..80),
        per_frame in 1u64..4,
        gop in 1u64..6,
    ) {
        let clock = Clock::new();
        let mut hub = Hub::new(info(1, Some(Codec::H264)), 1, true);
        let mut fanout = Fanout::default();
        let stream = frames(400, per_frame, gop);
        let mut next = 0usize;
        // The readers in the fan-out: (id, over UDP).
        let mut readers: Vec<(u64, bool)> = Vec::new();
        let received: RefCell<HashMap<u64, Vec<SharedPacket>>> = RefCell::default();
        let mut out = Vec::new();
        let mut next_id = 1u64;
        let collect_udp = |out: &mut Vec<Egress>, readers: &[(u64, bool)]| {
            for (addr, packets) in by_dest(out) {
                if let Some((id, _)) = readers.iter().find(|(id, _)| udp_addr(*id).socket_addr() == addr) {
                    received.borrow_mut().entry(*id).or_default().extend(packets);
                }
            }
            out.clear();
        };
        for s in steps {
            match s {
                Step::Join { udp: is_udp, queue } => {
                    let id = next_id;
                    next_id += 1;
                    let now = clock.at(next as u64 * 5);
                    let mut r = reader(id, if is_udp { udp(id) } else { tcp() }, queue, now);
                    r.preload(now, &hub.snapshot());
                    fanout.add(r);
                    readers.push((id, is_udp));
                }
                Step::Release(n) if !readers.is_empty() => {
                    let (id, _) = readers[n % readers.len()];
                    if !get(&fanout, id).released {
                        fanout.release(clock.at(next as u64 * 5), id, &mut out);
                    }
                }
                Step::Leave(n) if !readers.is_empty() => {
                    let (id, _) = readers.remove(n % readers.len());
                    fanout.remove(id);
                }
                Step::Drain(n) if !readers.is_empty() => {
                    let (id, is_udp) = readers[n % readers.len()];
                    if !is_udp {
                        let got = drain(&mut fanout, id, clock.at(next as u64 * 5));
                        received.borrow_mut().entry(id).or_default().extend(got);
                    }
                }
                Step::Packets(k) => {
                    for _ in 0..k {
                        let Some(&(seq, ts, key, marker)) = stream.get(next) else { break };
                        let now = clock.at(next as u64 * 5);
                        next += 1;
                        let p = hub.handle_rtp(now, 0, &rtp(9, seq, ts, key, marker)).unwrap();
                        fanout.deliver(now, &p, &mut out);
                    }
                }
                _ => {}
            }
            collect_udp(&mut out, &readers);
        }
        for &(id, is_udp) in &readers {
            if !is_udp {
                let got = drain(&mut fanout, id, clock.at(next as u64 * 5));
                received.borrow_mut().entry(id).or_default().extend(got);
            }
        }
        for &(id, _) in &readers {
            let got = received.borrow().get(&id).cloned().unwrap_or_default();
            let Some(first) = got.first() else { continue };
            prop_assert!(first.is_sync_point(), "reader {} starts at {}", id, first.seq());
            let mut gaps = 0;
            for w in got.windows(2) {
                prop_assert!(w[1].seq() > w[0].seq(), "reader {}: {} after {}", id, w[1].seq(), w[0].seq());
                if w[1].seq() != w[0].seq() + 1 {
                    prop_assert!(w[1].is_sync_point(), "reader {}: gap to {} ends mid-GOP", id, w[1].seq());
                    gaps += 1;
                }
            }
            let skips = get(&fanout, id).queue.stats().skips;
            prop_assert!(gaps <= skips, "reader {}: {gaps} gaps, {skips} skips counted", id);
        }
    }
}
