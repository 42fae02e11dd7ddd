//! The publishing client against the crate's own server session, both sans-IO, looped in
//! memory on virtual time: the whole publish (handshake, commands, metadata, sequence header,
//! frames with capture-time SEIs, unpublish) must give the same server events however
//! either side's input is split, at every byte; a refusal and a silent server must end the
//! client with the matching reason.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::H264Depacketizer;
use manifold_rtmp::amf0::Value;
use manifold_rtmp::client::{ClientClose, ClientConfig, ClientEvent, PublishClient};
use manifold_rtmp::{flv, sei, CloseReason, Config, Event, PublisherSession, Rejection};
use manifold_rtp::ext::AbsCaptureTime;
use manifold_rtp::ntp::NtpTime;
use manifold_rtp::packet::RtpPacket;

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// Three access units: an IDR of 2500 bytes (FU-A at the relay's MTU), two P frames.
fn frames() -> Vec<(bool, Vec<u8>)> {
    let idr = std::iter::once(0x65).chain((0..2499).map(|i| (i % 251) as u8)).collect();
    vec![(true, idr), (false, vec![0x41, 0x9a, 1, 2, 3]), (false, vec![0x41, 0x9a, 4, 5])]
}

/// Capture time of frame `i`; the second has zero bytes that need emulation prevention.
fn capture(i: usize) -> NtpTime {
    NtpTime(0xe8a0_0000_0000_0000 + ((i as u64) << 32))
}

/// What one looped publish produced.
#[derive(Debug, Default)]
struct Outcome {
    server_events: Vec<Event>,
    client_events: Vec<ClientEvent>,
    /// Bytes each side was given.
    to_server: usize,
    to_client: usize,
}

/// Hands `pending` to a side, first up to its byte number `split` (counted over all it was
/// given), then the rest: `sent` is what it was given so far.
fn deliver(pending: &[u8], sent: &mut usize, split: usize, mut take: impl FnMut(&[u8])) {
    let mut at = 0;
    if *sent < split && split < *sent + pending.len() {
        at = split - *sent;
        take(&pending[..at]);
    }
    if at < pending.len() {
        take(&pending[at..]);
    }
    *sent += pending.len();
}

/// Runs the publish with the server's input split at byte `server_split` and the client's at
/// `client_split`; a publish is answered with `reject` if given.
fn publish(server_split: usize, client_split: usize, reject: Option<Rejection>) -> Outcome {
    let now = Instant::now();
    let mut server = PublisherSession::new(now, Config { seed: 9, ..Config::default() });
    let config = ClientConfig::new("live", "cam?user=u&pass=p", "rtmp://127.0.0.1:1935/live");
    let mut client = PublishClient::new(now, ClientConfig { seed: 3, ..config });
    let (mut to_server, mut to_client) = (0, 0);
    let mut out = Outcome::default();
    let mut frame = 0;
    let mut body = Vec::new();
    // Bounded: the whole exchange is a few dozen round trips.
    for _ in 0..200 {
        let mut moved = false;
        while let Some(bytes) = client.poll_transmit() {
            moved = true;
            deliver(&bytes, &mut to_server, server_split, |b| server.handle_input(now, b));
        }
        while let Some(bytes) = server.poll_transmit() {
            moved = true;
            deliver(&bytes, &mut to_client, client_split, |b| client.handle_input(now, b));
        }
        while let Some(e) = server.poll_event() {
            moved = true;
            if matches!(e, Event::PublishRequested(_)) {
                match reject {
                    None => assert!(server.accept_publish(now)),
                    Some(r) => assert!(server.reject_publish(r)),
                }
            }
            out.server_events.push(e);
        }
        while let Some(e) = client.poll_event() {
            moved = true;
            if e == ClientEvent::Publishing {
                let meta = vec![
                    ("videocodecid".to_owned(), Value::Number(7.0)),
                    ("framerate".to_owned(), Value::Number(25.0)),
                ];
                client.send_metadata(meta).unwrap();
                client.send_video(0, &flv::avc_sequence_header(SPS, PPS).unwrap()).unwrap();
            }
            out.client_events.push(e);
        }
        if client.is_publishing() && !moved {
            match frames().get(frame) {
                Some((key, nal)) => {
                    let sei = sei::capture_time_nal(capture(frame));
                    flv::avc_frame(*key, 0, [&sei[..], &nal[..]], &mut body);
                    client.send_video(40 * frame as u32, &body).unwrap();
                    frame += 1;
                }
                None => client.finish(),
            }
            continue;
        }
        if !moved {
            break;
        }
    }
    (out.to_server, out.to_client) = (to_server, to_client);
    out
}

fn packets(events: &[Event]) -> Vec<&[u8]> {
    events
        .iter()
        .filter_map(|e| if let Event::Packet(p) = e { Some(&p.packet[..]) } else { None })
        .collect()
}

#[test]
fn publish_reaches_the_server_with_capture_times() {
    let out = publish(usize::MAX, usize::MAX, None);
    assert_eq!(
        out.client_events,
        [ClientEvent::Publishing, ClientEvent::Closed(ClientClose::Finished)]
    );
    let Event::PublishRequested(req) = &out.server_events[0] else {
        panic!("{:?}", out.server_events)
    };
    assert_eq!(req.path(), "/live/cam");
    assert_eq!((req.query_param("user"), req.query_param("pass")), (Some("u"), Some("p")));
    assert_eq!(req.tc_url.as_deref(), Some("rtmp://127.0.0.1:1935/live"));
    let Event::Tracks(sdp) = &out.server_events[1] else { panic!("{:?}", out.server_events) };
    let text = sdp.to_string();
    assert!(
        text.contains("a=extmap:1 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time"),
        "{text}"
    );
    assert_eq!(sdp.media().len(), 1, "metadata declared video only");
    assert_eq!(out.server_events.last(), Some(&Event::Closed(CloseReason::Unpublished)));

    // Every packet of frame i carries frame i's capture time; the NAL units come back
    // without the SEI, with the parameter sets in front of the IDR.
    let mut depay = H264Depacketizer::default();
    let mut times = Vec::new();
    for p in packets(&out.server_events) {
        depay.push(p);
        let rtp = RtpPacket::parse(p).unwrap();
        assert!(p.len() <= Config::default().max_packet_size);
        let stamp = rtp
            .extension()
            .expect("an extension")
            .element(1)
            .unwrap()
            .expect("abs-capture-time on every packet");
        let time = AbsCaptureTime::decode(stamp).unwrap().capture_time;
        if rtp.marker() {
            times.push(time);
        }
    }
    let expected: Vec<NtpTime> = (0..3).map(capture).collect();
    assert_eq!(times, expected);
    let units: Vec<Vec<Vec<u8>>> = depay.access_units.iter().map(|(_, n)| n.clone()).collect();
    let f = frames();
    assert_eq!(units[0], [SPS.to_vec(), PPS.to_vec(), f[0].1.clone()]);
    assert_eq!(units[1], [f[1].1.clone()]);
    assert_eq!(units[2], [f[2].1.clone()]);
    let ts: Vec<u32> = depay.access_units.iter().map(|(t, _)| *t).collect();
    assert_eq!(ts[1].wrapping_sub(ts[0]), 40 * 90);
}

#[test]
fn every_split_of_either_side_gives_the_same_publish() {
    let whole = publish(usize::MAX, usize::MAX, None);
    // The server's input: handshake (C0 C1 C2), commands, metadata, media, unpublish.
    assert!(whole.to_server > 3073 + 2500, "{}", whole.to_server);
    for split in 1..whole.to_server {
        let out = publish(split, usize::MAX, None);
        assert_eq!(out.server_events, whole.server_events, "server split at {split}");
        assert_eq!(out.client_events, whole.client_events, "server split at {split}");
    }
    // The client's input: S0 S1 S2 and the answers.
    for split in 1..whole.to_client {
        let out = publish(usize::MAX, split, None);
        assert_eq!(out.server_events, whole.server_events, "client split at {split}");
        assert_eq!(out.client_events, whole.client_events, "client split at {split}");
    }
}

#[test]
fn refused_publish_ends_the_client_with_the_code() {
    for (rejection, code) in [
        (Rejection::Denied, "NetStream.Publish.Denied"),
        (Rejection::BadName, "NetStream.Publish.BadName"),
    ] {
        let out = publish(usize::MAX, usize::MAX, Some(rejection));
        let [ClientEvent::Closed(ClientClose::Refused { code: got, .. })] = &out.client_events[..]
        else {
            panic!("{:?}", out.client_events)
        };
        assert_eq!(got, code);
        assert!(packets(&out.server_events).is_empty());
    }
}

#[test]
fn a_silent_server_times_the_client_out_and_media_waits_for_the_publish() {
    let now = Instant::now();
    let config = ClientConfig::new("live", "cam", "rtmp://h/live");
    let timeout = config.answer_timeout;
    let mut client = PublishClient::new(now, config);
    assert_eq!(client.poll_transmit().map(|b| b.len()), Some(1537));
    assert!(client.send_video(0, &[0x17, 1, 0, 0, 0]).is_err(), "not publishing yet");
    assert_eq!(client.poll_timeout(), Some(now + timeout));
    client.handle_timeout(now + timeout - Duration::from_millis(1));
    assert!(client.poll_event().is_none());
    client.handle_timeout(now + timeout);
    assert_eq!(client.poll_event(), Some(ClientEvent::Closed(ClientClose::TimedOut)));
    assert_eq!(client.poll_timeout(), None);

    // A server answering another RTMP version is a typed error.
    let mut client = PublishClient::new(now, ClientConfig::new("live", "cam", "rtmp://h/live"));
    client.handle_input(now, &[6; 1537]);
    let Some(ClientEvent::Closed(ClientClose::Error(e))) = client.poll_event() else { panic!() };
    assert_eq!(e.to_string(), "handshake: unsupported RTMP version 6 in C0");
}
