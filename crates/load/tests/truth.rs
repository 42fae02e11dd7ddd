//! The generator's numbers must be true: a server that stalls 100 ms shows in the tail, a
//! server that drops 1% shows 1% loss. Sans-IO first (the receiver accounting fed with
//! packets and virtual times), then once with real sockets against a tiny in-test RTSP server
//! on 127.0.0.1 that sends the synthetic stream over UDP.
// Tests may unwrap: a panic here is a failed test, not a crashed generator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use manifold_load::metrics::{Metric, Metrics};
use manifold_load::receiver::TrackReceiver;
use manifold_load::threshold::{stat_of, Stat};
use manifold_load::{LoadArgs, TransportChoice, UdpReadInterval, UdpReceive};
use manifold_rtp::codec::Codec;
use manifold_rtp::packet::RtpBuilder;
use manifold_rtp::{RtpTime, Ssrc};
use manifold_rtsp::codec::write_response;
use manifold_rtsp::header::{Transport, TransportSpec, TypedHeader};
use manifold_rtsp::{Method, Response, StatusCode};
use manifold_synth::{ExtensionIds, NtpTime, StreamConfig, SyntheticStream};

/// A synthetic stream at 2 Mbit/s: about 210 packets a second.
fn stream() -> SyntheticStream {
    SyntheticStream::new(StreamConfig {
        target_bitrate: Some(2_000_000),
        ..StreamConfig::default()
    })
    .unwrap()
}

fn ntp_plus(base: NtpTime, d: Duration) -> NtpTime {
    NtpTime(base.0 + ((d.as_nanos() << 32) / 1_000_000_000) as u64)
}

/// Sends `n` packets of the synthetic stream through a receiver on virtual time. Packets
/// are captured at their frame's due time; `deliver(counter, due)` says when each arrives
/// (`None`: dropped).
fn feed(n: u64, deliver: impl Fn(u64, Duration) -> Option<Duration>) -> (Metrics, TrackReceiver) {
    let base = Instant::now();
    let ntp0 = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut s = stream();
    let mut rx = TrackReceiver::new(90_000, Some(Codec::H264), ExtensionIds::default());
    let mut m = Metrics::new();
    let mut buf = Vec::new();
    let mut sent = 0;
    let mut arrivals: Vec<(Duration, Vec<u8>)> = Vec::new();
    while sent < n {
        let due = s.next_frame_due();
        while let Some(info) = s.poll_packet(due, ntp_plus(ntp0, due), &mut buf) {
            if let Some(at) = deliver(info.counter, due) {
                arrivals.push((at, buf[..info.len].to_vec()));
            }
            sent += 1;
            if sent == n {
                break;
            }
        }
    }
    arrivals.sort_by_key(|(at, _)| *at);
    for (at, packet) in &arrivals {
        assert!(rx.handle_packet(base + *at, ntp_plus(ntp0, *at), packet, &mut m));
    }
    rx.finish(&mut m);
    (m, rx)
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_100ms_stall_shows_in_the_tail_sans_io() {
    // 800 packets, 2 ms network delay; from 1.5 s the server holds packets for 100 ms.
    let stall = (Duration::from_millis(1500), Duration::from_millis(1600));
    let (m, rx) = feed(800, |_, due| {
        let at = due + 2 * MS;
        Some(if at >= stall.0 && at < stall.1 { stall.1 } else { at })
    });
    let e2e_p50 = stat_of(&m, Metric::E2e, Stat::Percentile(50.0)).unwrap();
    let e2e_p999 = stat_of(&m, Metric::E2e, Stat::Percentile(99.9)).unwrap();
    let gap_p999 = stat_of(&m, Metric::Gap, Stat::Percentile(99.9)).unwrap();
    assert!((1900.0..=2100.0).contains(&e2e_p50), "e2e p50 {e2e_p50} us");
    // Frames are 40 ms apart: the frame captured at 1.52 s waits until 1.6 s (80 ms).
    assert!(e2e_p999 >= 79_000.0, "e2e p99.9 {e2e_p999} us");
    assert!(gap_p999 >= 95_000.0, "gap p99.9 {gap_p999} us");
    assert!(rx.longest_gap() >= Duration::from_millis(95));
    assert_eq!(m.counts.lost, 0);
    assert_eq!(m.counts.packets, 800);
    assert!(rx.first_keyframe().is_some());
}

#[test]
fn one_percent_dropped_is_one_percent_lost_sans_io() {
    let (m, rx) = feed(10_000, |counter, due| (counter % 100 != 37).then_some(due + 2 * MS));
    assert_eq!(m.counts.packets, 9_900);
    assert_eq!(rx.lost(), 100);
    assert_eq!(m.counts.lost, 100);
    assert_eq!(m.counts.counted_by_counter, 9_900, "the counter extension is preferred");
    assert_eq!(m.counts.duplicates + m.counts.reordered, 0);
}

#[test]
fn loss_duplicates_and_reordering_on_plain_rtp_sequence_numbers() {
    // No stamps: a server that is not ours. 2000 packets, every 100th dropped, one
    // duplicated, one pair swapped.
    let base = Instant::now();
    let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut order: Vec<u16> = (0..2000u16).filter(|s| s % 100 != 50).collect();
    order.insert(500, order[499]); // duplicate
    order.swap(1000, 1001); // reorder
    let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
    let mut m = Metrics::new();
    for (i, seq) in order.iter().enumerate() {
        let mut buf = Vec::new();
        let ts = RtpTime(u32::from(*seq) * 450);
        RtpBuilder::new(96, *seq, ts, Ssrc(7))
            .payload(&[0x41, 1, 2, 3])
            .write_to_vec(&mut buf)
            .unwrap();
        rx.handle_packet(base + MS * (5 * i as u32), ntp, &buf, &mut m);
    }
    rx.finish(&mut m);
    assert_eq!(m.counts.counted_by_counter, 0);
    assert_eq!(m.counts.lost, 20);
    assert_eq!(m.counts.duplicates, 1);
    assert_eq!(m.counts.reordered, 1);
    assert!(m.histogram(Metric::E2e).is_empty(), "no capture time, no end-to-end latency");
    assert_eq!(m.histogram(Metric::Jitter).len(), 1);
}

// ---- real sockets -------------------------------------------------------------------------

/// Destinations the in-test server sends to.
type Readers = Arc<Mutex<Vec<SocketAddr>>>;

/// Answers one RTSP connection: DESCRIBE, SETUP (UDP only, announcing `media_port`, the port
/// the stream is sent from), PLAY, TEARDOWN.
fn serve_connection(mut conn: TcpStream, sdp: String, readers: Readers, media_port: u16) {
    let mut mine: Vec<SocketAddr> = Vec::new();
    let peer_ip = conn.peer_addr().unwrap().ip();
    let mut requests = common::Requests::default();
    while let Some(req) = requests.next(&mut conn) {
        let mut resp = Response::new(StatusCode::OK);
        resp.headers.append("CSeq", req.cseq().unwrap_or(0).to_string());
        match req.method {
            Method::Options => resp.headers.append("Public", common::PUBLIC),
            Method::Describe => common::describe(&mut resp, &req, &sdp),
            Method::Setup => {
                let offer = Transport::from_headers(&req.headers).ok().flatten();
                let port = offer.as_ref().and_then(|t| t.first()).and_then(|s| s.client_port);
                match port {
                    Some(p) => {
                        mine.push(SocketAddr::new(peer_ip, p.first));
                        let spec = TransportSpec {
                            server_port: Some(manifold_rtsp::header::PortRange {
                                first: media_port,
                                last: media_port + 1,
                            }),
                            ..TransportSpec::udp_unicast(p)
                        };
                        Transport::single(spec).set_in(&mut resp.headers);
                        resp.headers.append("Session", "4711;timeout=60");
                    }
                    None => resp = Response::new(StatusCode::UNSUPPORTED_TRANSPORT),
                }
                resp.headers.set("CSeq", req.cseq().unwrap_or(0).to_string());
            }
            Method::Play => {
                readers.lock().unwrap().extend(mine.iter().copied());
                resp.headers.append("Session", "4711");
            }
            Method::Teardown => {
                readers.lock().unwrap().retain(|a| !mine.contains(a));
                resp.headers.append("Session", "4711");
            }
            _ => resp = Response::new(StatusCode::NOT_IMPLEMENTED),
        }
        let mut out = Vec::new();
        write_response(&resp, &mut out);
        if conn.write_all(&out).is_err() {
            break;
        }
    }
    readers.lock().unwrap().retain(|a| !mine.contains(a));
}

/// How the in-test server misbehaves.
#[derive(Clone, Copy)]
struct Faults {
    /// Drop every packet whose counter is 37 mod 100.
    drop_one_percent: bool,
    /// From 1.5 s after the first reader, hold everything for 100 ms.
    stall: bool,
    /// Stream bitrate (`None`: the clip's own, about 150 kbit/s).
    bitrate: Option<u64>,
}

/// The synthetic stream to every reader, with `faults` (capture times stay those of the
/// frames, as a relay stalling would).
fn send_stream(socket: UdpSocket, readers: Readers, stop: Arc<AtomicBool>, faults: Faults) {
    let mut s = SyntheticStream::new(StreamConfig {
        target_bitrate: faults.bitrate,
        ..StreamConfig::default()
    })
    .unwrap();
    let mut buf = Vec::new();
    let t0 = Instant::now();
    let ntp0 = NtpTime::from_system_time(SystemTime::now());
    let mut first_reader: Option<Instant> = None;
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) {
        let due = s.next_frame_due();
        let now = t0.elapsed();
        if due > now {
            std::thread::sleep(due - now);
        }
        let dests: Vec<SocketAddr> = readers.lock().unwrap().clone();
        if !dests.is_empty() {
            let since = *first_reader.get_or_insert_with(Instant::now);
            if faults.stall && !stalled && since.elapsed() >= Duration::from_millis(1500) {
                stalled = true;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        while let Some(info) = s.poll_packet(due, ntp_plus(ntp0, due), &mut buf) {
            if faults.drop_one_percent && info.counter % 100 == 37 {
                continue;
            }
            for d in &dests {
                let _ = socket.send_to(&buf[..info.len], d);
            }
        }
    }
}

/// Starts the in-test RTSP server; returns its port, and what stops its sender.
fn start_server(faults: Faults) -> (u16, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let s = stream();
    let media = s.sdp().media_section(0, Some("stream=0"));
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=truth\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n{media}"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let readers: Readers = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media_port = socket.local_addr().unwrap().port();
    {
        let readers = readers.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (sdp, readers) = (sdp.clone(), readers.clone());
                std::thread::spawn(move || serve_connection(conn, sdp, readers, media_port));
            }
        });
    }
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || send_stream(socket, readers, stop, faults))
    };
    (port, stop, sender)
}

/// `clients` UDP sessions on one shard against the in-test server with `faults`, for
/// `duration`, reading with `receive`; `tune` sets anything else.
fn udp_run(
    faults: Faults,
    receive: UdpReceive,
    clients: u32,
    duration: Duration,
    tune: impl FnOnce(&mut LoadArgs),
) -> manifold_load::Outcome {
    let (port, stop, sender) = start_server(faults);
    let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/truth"));
    args.clients = clients;
    args.transport = TransportChoice::Udp;
    args.duration = duration;
    args.ramp = Duration::from_millis(100);
    args.shards = Some(1);
    args.udp_receive = receive;
    args.quiet = true;
    tune(&mut args);
    let outcome = manifold_load::execute(&args).expect("the run completes");
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    outcome
}

#[test]
fn real_sockets_stall_and_one_percent_drop() {
    // Both ways of reading UDP sockets see the same truth.
    for receive in [UdpReceive::Batch, UdpReceive::Ring] {
        stall_and_one_percent_drop(receive);
    }
}

#[test]
fn reading_on_the_auto_pace_sees_the_same_truth() {
    // Six seconds: long enough for the pace to read each socket half as often (after 4 s of
    // calm buffers) partway through the run.
    stall_and_one_percent_drop_reading(
        UdpReceive::Batch,
        UdpReadInterval::Auto,
        Duration::from_secs(6),
    );
}

fn stall_and_one_percent_drop(receive: UdpReceive) {
    let every_50ms = UdpReadInterval::Every(Duration::from_millis(50));
    stall_and_one_percent_drop_reading(receive, every_50ms, Duration::from_secs(4));
}

fn stall_and_one_percent_drop_reading(
    receive: UdpReceive,
    interval: UdpReadInterval,
    duration: Duration,
) {
    let faults = Faults { drop_one_percent: true, stall: true, bitrate: Some(2_000_000) };
    let outcome = udp_run(faults, receive, 4, duration, |args| {
        args.udp_read_interval = interval;
    });
    let r = &outcome.report;
    println!("{}", r.table());

    assert_eq!(r.sessions.ok, 4, "{:?}", r.errors.samples);
    assert_eq!(r.errors.total, 0);
    assert!(r.media.packets > 2000, "packets {}", r.media.packets);
    assert!(r.media.counted_by_counter > 0, "the counter extension was read");
    assert!(
        (0.007..=0.013).contains(&r.media.loss_ratio),
        "{receive:?}: 1% dropped, loss ratio {}",
        r.media.loss_ratio
    );
    assert_eq!(r.media.duplicates, 0);
    let gap = &r.metrics["gap"];
    assert!(gap.max >= 95_000, "longest gap {} us", gap.max);
    let e2e = &r.metrics["e2e"];
    assert!(e2e.percentiles["p99_9"] >= 80_000, "e2e p99.9 {} us", e2e.percentiles["p99_9"]);
    assert!(e2e.percentiles["p50"] < 20_000, "e2e p50 {} us", e2e.percentiles["p50"]);
    assert_eq!(outcome.exit_code(), 0);
}

#[test]
fn reading_udp_in_batches_keeps_the_kernels_arrival_times() {
    for receive in [UdpReceive::Batch, UdpReceive::Ring] {
        read_every_200ms(receive);
    }
}

fn read_every_200ms(receive: UdpReceive) {
    // Sockets read only every 200 ms: without the kernel's receive times every packet would
    // look up to 200 ms late (e2e p50 near 100 ms, gaps of 200 ms between batches).
    let faults = Faults { drop_one_percent: false, stall: false, bitrate: Some(1_000_000) };
    let outcome = udp_run(faults, receive, 2, Duration::from_secs(2), |args| {
        args.udp_read_interval = UdpReadInterval::Every(Duration::from_millis(200));
    });
    let r = &outcome.report;
    assert_eq!(r.sessions.ok, 2, "{:?}", r.errors.samples);
    assert!(r.media.packets > 200, "packets {}", r.media.packets);
    let e2e = &r.metrics["e2e"];
    assert!(e2e.percentiles["p50"] < 20_000, "{receive:?}: e2e p50 {} us", e2e.percentiles["p50"]);
    // Frames are 40 ms apart (25/s): a batch boundary must not show as a 200 ms gap.
    let gap = &r.metrics["gap"];
    assert!(gap.percentiles["p99"] < 100_000, "gap p99 {} us", gap.percentiles["p99"]);
}

/// Capacity check of the generator itself (not run by default): `LOAD_SCALE=2000 cargo test
/// -p manifold-load --release --test truth -- --ignored --nocapture`.
#[test]
#[ignore]
fn many_sessions_against_the_in_test_server() {
    let clients: u32 =
        std::env::var("LOAD_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let faults = Faults { drop_one_percent: false, stall: false, bitrate: None };
    let (port, stop, sender) = start_server(faults);
    let mut args = LoadArgs::new(format!("rtsp://127.0.0.1:{port}/truth"));
    args.clients = clients;
    // The in-test server speaks UDP only.
    args.transport = TransportChoice::Udp;
    args.duration = Duration::from_secs(15);
    args.ramp = Duration::from_secs(5);
    args.quiet = true;
    let outcome = manifold_load::execute(&args).expect("the run completes");
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    println!("{}", outcome.report.table());
}

/// A server's GOP cache replays packets captured before PLAY: their age is history, not
/// delivery delay, so it goes to `e2e_cached` and leaves `e2e` describing the live path.
#[test]
fn packets_captured_before_play_are_kept_out_of_e2e() {
    let base = Instant::now();
    let ntp0 = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut s = stream();
    let mut rx = TrackReceiver::new(90_000, Some(Codec::H264), ExtensionIds::default());
    let mut m = Metrics::new();
    let mut buf = Vec::new();
    // PLAY is sent at 1 s; the first second of packets arrives with it (the cached GOP), the
    // rest live with 2 ms of delay.
    let play = Duration::from_secs(1);
    rx.play_sent(ntp_plus(ntp0, play));
    let (mut cached, mut live) = (0u64, 0u64);
    while s.next_frame_due() < Duration::from_secs(2) {
        let due = s.next_frame_due();
        while let Some(info) = s.poll_packet(due, ntp_plus(ntp0, due), &mut buf) {
            let at = if due < play { play + MS } else { due + 2 * MS };
            if due < play {
                cached += 1;
            } else {
                live += 1;
            }
            assert!(rx.handle_packet(base + at, ntp_plus(ntp0, at), &buf[..info.len], &mut m));
        }
    }
    assert_eq!(m.histogram(Metric::E2eCached).len(), cached);
    assert_eq!(m.histogram(Metric::E2e).len(), live);
    let live_max = stat_of(&m, Metric::E2e, Stat::Max).unwrap();
    assert!(live_max < 3_000.0, "live e2e max {live_max} µs");
    let cached_max = stat_of(&m, Metric::E2eCached, Stat::Max).unwrap();
    assert!(cached_max > 900_000.0, "cached e2e max {cached_max} µs");
}

// ---- sources that change, and what RTP-Info announced ---------------------------------------

/// One plain RTP packet (no stamps) of source `ssrc`.
fn plain(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    RtpBuilder::new(96, seq, RtpTime(u32::from(seq).wrapping_mul(900)), Ssrc(ssrc))
        .payload(&[0x41, 1, 2, 3])
        .write_to_vec(&mut buf)
        .unwrap();
    buf
}

#[test]
fn statistics_continue_across_an_ssrc_change_without_false_loss() {
    // 1000 packets of one source, then 1000 of a restarted one with sequence numbers far
    // away; every 100th of each is dropped.
    let base = Instant::now();
    let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
    let mut m = Metrics::new();
    let first = (0..1000u16).map(|i| (100 + i, 0xaaaa, i));
    let second = (0..1000u16).map(|i| (40_000u16.wrapping_add(i), 0xbbbb, i));
    for (n, (seq, ssrc, i)) in first.chain(second).enumerate() {
        if i % 100 == 50 {
            continue;
        }
        rx.handle_packet(base + MS * (10 * n as u32), ntp, &plain(seq, ssrc), &mut m);
    }
    rx.finish(&mut m);
    assert_eq!(m.counts.ssrc_changes, 1);
    assert_eq!(rx.ssrc_changes(), 1);
    assert_eq!(m.counts.lost, 20, "each source's 10 losses, and no burst at the switch");
    assert_eq!(m.counts.duplicates + m.counts.reordered, 0);
    assert_eq!(m.histogram(Metric::Jitter).len(), 2, "one jitter per source");
}

#[test]
fn a_late_packet_of_the_source_before_is_not_another_change() {
    let base = Instant::now();
    let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
    let mut m = Metrics::new();
    let mut order: Vec<(u16, u32)> = (0..100).map(|i| (i, 1)).collect();
    order.extend((0..100).map(|i| (30_000 + i, 2)));
    order.swap(99, 101); // the old source's last packet comes after the new one's first two
    for (n, (seq, ssrc)) in order.iter().enumerate() {
        rx.handle_packet(base + MS * (10 * n as u32), ntp, &plain(*seq, *ssrc), &mut m);
    }
    rx.finish(&mut m);
    assert_eq!(m.counts.ssrc_changes, 1);
    assert_eq!(m.counts.lost, 0);
}

#[test]
fn packets_missing_before_the_first_received_count_as_lost_from_rtp_info() {
    let base = Instant::now();
    let ntp = NtpTime::from_unix(Duration::from_secs(1_700_000_000));
    let run = |announced: Option<u16>, seqs: &[u16], deadline_missed: bool| {
        let mut rx = TrackReceiver::new(90_000, None, ExtensionIds::default());
        let mut m = Metrics::new();
        for (n, seq) in seqs.iter().enumerate() {
            rx.handle_packet(base + MS * (10 * n as u32), ntp, &plain(*seq, 9), &mut m);
            if n == 1 {
                // PLAY's answer (with RTP-Info) may come after the first packets.
                if let Some(a) = announced {
                    rx.rtp_info(a);
                }
            }
        }
        if seqs.len() < 2 {
            if let Some(a) = announced {
                rx.rtp_info(a);
            }
        }
        if deadline_missed {
            rx.deadline_missed();
        }
        rx.finish(&mut m);
        m.counts.lost
    };
    let from = |first: u16| (0..50u16).map(|i| first.wrapping_add(i)).collect::<Vec<_>>();
    assert_eq!(run(Some(1000), &from(1005), false), 5, "1000 to 1004 never came");
    assert_eq!(run(Some(1000), &from(1000), false), 0);
    assert_eq!(run(None, &from(1005), false), 0, "nothing announced, nothing known");
    let mut late_first = from(1000);
    late_first.swap(0, 3);
    assert_eq!(run(Some(1000), &late_first, false), 0, "the first packet came late, not lost");
    assert_eq!(run(Some(1000), &from(65_530), false), 0, "a numbering far off is not loss");
    assert_eq!(run(Some(65_534), &from(1), false), 3, "across the wrap");
    assert_eq!(run(Some(1000), &[], true), 1, "silent past the deadline: the announced one");
    assert_eq!(run(Some(1000), &[], false), 0, "ended before the deadline: nothing known");
}

#[test]
fn nothing_received_in_a_playing_run_is_total_loss_not_zero_over_zero() {
    use manifold_load::metrics::Counts;
    use manifold_load::report::loss_ratio;
    let nothing = Counts { started: 10, played: 10, ..Counts::default() };
    assert_eq!(loss_ratio(&nothing, false), 1.0);
    assert_eq!(loss_ratio(&nothing, true), 0.0, "--no-play expects no media");
    let some = Counts { packets: 990, lost: 10, ..nothing };
    assert!((loss_ratio(&some, false) - 0.01).abs() < 1e-12);
}
