//! Every send path against real sockets on 127.0.0.1: the receivers must see exactly the bytes
//! sent, datagram by datagram.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns; a panic is a failed test

use std::io::{self, IoSlice};
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use manifold_udp::{
    queued_charge, send_gso, send_to, set_gro, set_recv_buffer, set_rxq_ovfl, set_send_buffer,
    BufferSize, Datagram, MmsgSender, RawAddr, RecvBatch, SendOutcome, UringSender,
};

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn dest(s: &UdpSocket) -> RawAddr {
    RawAddr::from(s.local_addr().unwrap())
}

/// A packet whose bytes say which packet it is.
fn packet(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag.wrapping_mul(31).wrapping_add(i as u8)).collect()
}

/// Receives exactly `n` datagrams with plain `recv` (no GRO), then checks nothing else is queued.
fn recv_exactly(s: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    let mut out = Vec::new();
    for _ in 0..n {
        let len = s.recv(&mut buf).expect("datagram expected");
        out.push(buf[..len].to_vec());
    }
    s.set_nonblocking(true).unwrap();
    let extra = s.recv(&mut buf);
    s.set_nonblocking(false).unwrap();
    assert_eq!(
        extra.map_err(|e| e.kind()).err(),
        Some(io::ErrorKind::WouldBlock),
        "more datagrams than expected"
    );
    out
}

/// Receives with a [`RecvBatch`] until `n` datagrams arrived (split from GRO messages).
/// Returns the datagrams and how many messages carried them.
fn batch_recv(s: &UdpSocket, batch: &mut RecvBatch, n: usize) -> (Vec<Vec<u8>>, usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    let mut messages = 0;
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} datagrams arrived", out.len());
        match batch.recv(s.as_fd()) {
            Ok(_) => {
                for m in batch.messages() {
                    assert!(!m.truncated);
                    messages += 1;
                    out.extend(m.datagrams().map(<[u8]>::to_vec));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
    (out, messages)
}

#[test]
fn gso_is_supported_here() {
    // Kernel 4.18+; the CI machines run 6.x.
    assert!(manifold_udp::gso_supported(socket()));
}

#[test]
fn sendto_delivers_exact_bytes() {
    let (tx, rx) = (socket(), socket());
    let p = packet(1, 1200);
    assert_eq!(send_to(&tx, &p, &dest(&rx)).unwrap(), 1200);
    assert_eq!(recv_exactly(&rx, 1), vec![p]);
}

#[test]
fn sendmmsg_sends_one_packet_to_many_readers() {
    let tx = socket();
    let readers: Vec<UdpSocket> = (0..5).map(|_| socket()).collect();
    let dests: Vec<RawAddr> = readers.iter().map(dest).collect();
    // Batch of 2 forces three sendmmsg calls per packet.
    let mut mmsg = MmsgSender::new(2);
    let packets: Vec<Vec<u8>> = (0..4).map(|t| packet(t, 1200)).collect();
    for p in &packets {
        // Gathered from two slices, as the relay sends a header and a shared body.
        let (head, body) = p.split_at(12);
        let iov = [IoSlice::new(head), IoSlice::new(body)];
        let sent = mmsg.send_to_many(&tx, &iov, &dests).unwrap();
        assert_eq!((sent.sent, sent.failed, sent.would_block), (5, 0, false));
    }
    for r in &readers {
        assert_eq!(recv_exactly(r, 4), packets);
    }
}

#[test]
fn sendmmsg_sends_arbitrary_datagrams() {
    let tx = socket();
    let (a, b) = (socket(), socket());
    let payloads: Vec<Vec<u8>> = (0..6).map(|t| packet(t, 100 + 50 * t as usize)).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = payloads.iter().map(|p| [IoSlice::new(p)]).collect();
    let datagrams: Vec<Datagram<'_>> = iovs
        .iter()
        .enumerate()
        .map(|(i, iov)| Datagram { dest: if i % 2 == 0 { dest(&a) } else { dest(&b) }, bufs: iov })
        .collect();
    let sent = MmsgSender::new(64).send(&tx, &datagrams).unwrap();
    assert_eq!(sent.sent, 6);
    let even: Vec<Vec<u8>> = payloads.iter().step_by(2).cloned().collect();
    let odd: Vec<Vec<u8>> = payloads.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(recv_exactly(&a, 3), even);
    assert_eq!(recv_exactly(&b, 3), odd);
}

#[test]
fn sendmmsg_skips_a_refused_datagram_and_sends_the_rest() {
    let tx = socket();
    let rx = socket();
    let small: Vec<Vec<u8>> = (0..4).map(|t| packet(t, 500)).collect();
    let huge = vec![0u8; 40_000];
    // 80 000 bytes: over the UDP limit, EMSGSIZE for this one datagram only.
    let huge_iov = [IoSlice::new(&huge), IoSlice::new(&huge)];
    let small_iovs: Vec<[IoSlice<'_>; 1]> = small.iter().map(|p| [IoSlice::new(p)]).collect();
    let d = dest(&rx);
    let datagrams = [
        Datagram { dest: d, bufs: &small_iovs[0] },
        Datagram { dest: d, bufs: &small_iovs[1] },
        Datagram { dest: d, bufs: &huge_iov },
        Datagram { dest: d, bufs: &small_iovs[2] },
        Datagram { dest: d, bufs: &small_iovs[3] },
    ];
    let sent = MmsgSender::new(64).send(&tx, &datagrams).unwrap();
    assert_eq!((sent.sent, sent.failed, sent.consumed()), (4, 1, 5));
    assert_eq!(sent.first_error.unwrap().raw_os_error(), Some(libc::EMSGSIZE));
    assert_eq!(recv_exactly(&rx, 4), small);
}

#[test]
fn gso_is_split_into_datagrams_at_a_receiver_without_gro() {
    let (tx, rx) = (socket(), socket());
    let mut packets: Vec<Vec<u8>> = (0..4).map(|t| packet(t, 1000)).collect();
    packets.push(packet(9, 300));
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    assert_eq!(send_gso(&tx, &dest(&rx), &iov).unwrap(), 4300);
    assert_eq!(recv_exactly(&rx, 5), packets);
}

#[test]
fn gso_rejects_frames_it_cannot_segment() {
    let (tx, rx) = (socket(), socket());
    let (a, b) = (packet(1, 1000), packet(2, 1100));
    let err = send_gso(&tx, &dest(&rx), &[IoSlice::new(&a), IoSlice::new(&b)]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let many: Vec<IoSlice<'_>> = (0..65).map(|_| IoSlice::new(&a[..10])).collect();
    let err = send_gso(&tx, &dest(&rx), &many).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    // The kernel's own limit, 64 segments, is accepted.
    assert!(send_gso(&tx, &dest(&rx), &many[..64]).is_ok());
    assert_eq!(recv_exactly(&rx, 64).len(), 64);
}

#[test]
fn send_frame_mixes_gso_runs_and_single_datagrams() {
    let (tx, rx) = (socket(), socket());
    let lens = [100, 200, 1200, 1200, 1200, 1200, 500, 0, 1200, 1200, 1200, 700, 50];
    let packets: Vec<Vec<u8>> = lens.iter().enumerate().map(|(t, &n)| packet(t as u8, n)).collect();
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    let sent = MmsgSender::new(64).send_frame(&tx, &dest(&rx), &iov).unwrap();
    assert_eq!((sent.sent, sent.failed, sent.would_block), (lens.len(), 0, false));
    assert_eq!(recv_exactly(&rx, lens.len()), packets);
}

#[test]
fn sendmmsg_sends_one_gso_frame_to_many_readers() {
    let tx = socket();
    let readers: Vec<UdpSocket> = (0..5).map(|_| socket()).collect();
    let dests: Vec<RawAddr> = readers.iter().map(dest).collect();
    let packets = [packet(1, 1200), packet(2, 1200), packet(3, 1200), packet(4, 333)];
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    let sent = MmsgSender::new(2).send_gso_to_many(&tx, &iov, &dests).unwrap();
    assert_eq!(sent.sent, 5);
    for r in &readers {
        assert_eq!(recv_exactly(r, 4), packets);
    }
}

#[test]
fn gro_receive_coalesces_and_splits_back_exactly() {
    let (tx, rx) = (socket(), socket());
    set_gro(&rx, true).unwrap();
    let mut packets: Vec<Vec<u8>> = (0..7).map(|t| packet(t, 1200)).collect();
    packets.push(packet(7, 700));
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    send_gso(&tx, &dest(&rx), &iov).unwrap();
    send_gso(&tx, &dest(&rx), &iov).unwrap();
    let mut batch = RecvBatch::new(8, 65_535);
    let (got, messages) = batch_recv(&rx, &mut batch, 16);
    assert_eq!(got, [packets.clone(), packets].concat());
    // Over loopback a GSO send reaches a GRO socket whole: far fewer messages than datagrams.
    assert!(messages < 16, "not coalesced: {messages} messages");
}

#[test]
fn gro_socket_still_receives_plain_datagrams() {
    let (tx, rx) = (socket(), socket());
    set_gro(&rx, true).unwrap();
    let packets: Vec<Vec<u8>> = (0..3).map(|t| packet(t, 100 * (t as usize + 1))).collect();
    for p in &packets {
        send_to(&tx, p, &dest(&rx)).unwrap();
    }
    let mut batch = RecvBatch::new(8, 65_535);
    let (got, _) = batch_recv(&rx, &mut batch, 3);
    assert_eq!(got, packets);
}

#[test]
fn recvmmsg_batch_reads_many_with_sources() {
    let (tx, rx) = (socket(), socket());
    let packets: Vec<Vec<u8>> = (0..20).map(|t| packet(t, 64 + t as usize * 10)).collect();
    for p in &packets {
        send_to(&tx, p, &dest(&rx)).unwrap();
    }
    let mut batch = RecvBatch::new(8, 2048);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < 20 {
        assert!(Instant::now() < deadline);
        match batch.recv(&rx) {
            Ok(n) => {
                assert!(n <= 8);
                for m in batch.messages() {
                    assert_eq!(m.source, Some(tx.local_addr().unwrap()));
                    assert_eq!(m.segment_size, None);
                    got.push(m.data.to_vec());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, packets);
    assert_eq!(batch.recv(&rx).unwrap_err().kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn rxq_ovfl_counts_drops_when_a_tiny_rcvbuf_overflows() {
    let tx = socket();
    let rx = socket2::Socket::from(socket());
    rx.set_recv_buffer_size(1).unwrap(); // the kernel raises it to its minimum (~2 KiB)
    set_rxq_ovfl(&rx, true).unwrap();
    let d = RawAddr::from(rx.local_addr().unwrap().as_socket().unwrap());
    let p = packet(1, 1200);
    for _ in 0..64 {
        send_to(&tx, &p, &d).unwrap();
    }
    let mut batch = RecvBatch::new(64, 2048);
    let mut received = 0;
    while let Ok(n) = batch.recv(&rx) {
        received += n;
    }
    assert!(received > 0 && received < 64, "received {received} of 64");
    // The next datagram is queued after the drops and carries the running count.
    send_to(&tx, &p, &d).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let drops = loop {
        assert!(Instant::now() < deadline);
        if batch.recv(&rx).is_ok() {
            break batch.messages().next().unwrap().drops;
        }
    };
    assert_eq!(drops, Some(64 - received as u32));
}

/// Whether this process may pass `net.core.rmem_max` (`CAP_NET_ADMIN` in its effective set).
fn may_force_buffers() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap();
    u64::from_str_radix(caps.trim(), 16).unwrap() & (1 << 12) != 0
}

/// `set_recv_buffer` or `set_send_buffer`.
type SetBuffer = fn(&UdpSocket, usize) -> io::Result<BufferSize>;

#[test]
fn buffers_past_the_cap_are_forced_where_allowed() {
    let cap = |name: &str| -> usize {
        let path = format!("/proc/sys/net/core/{name}");
        std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
    };
    let sides: [(&str, SetBuffer); 2] =
        [("rmem_max", |s, b| set_recv_buffer(s, b)), ("wmem_max", |s, b| set_send_buffer(s, b))];
    for (sysctl, set) in sides {
        let max = cap(sysctl);
        let s = socket();
        // Under the cap: exactly what was asked (the kernel's doubled count, halved).
        let small = set(&s, 16 * 1024).unwrap();
        assert_eq!(small, BufferSize { asked: 16 * 1024, granted: 16 * 1024 }, "{sysctl}");
        assert!(!small.capped());
        let past = max * 2;
        let got = set(&s, past).unwrap();
        if may_force_buffers() {
            assert_eq!(got.granted, past, "forced past net.core.{sysctl} ({max})");
            assert!(!got.capped());
        } else {
            assert_eq!(got.granted, max, "capped at net.core.{sysctl}");
            assert!(got.capped());
        }
    }
}

#[test]
fn buffer_charge_bounds_what_the_kernel_charges() {
    // (datagram bytes, datagrams per GSO send: 1 is a plain send, messages sent)
    let cases = [
        (1, 1, 20),
        (20, 1, 20),
        (200, 1, 20),
        (722, 1, 20),
        (1000, 1, 20),
        (1426, 1, 20),
        (1472, 1, 20),
        (1426, 3, 10),
        (1200, 45, 3),
    ];
    for (bytes, segments, messages) in cases {
        let (tx, rx) = (socket(), socket());
        set_gro(&rx, true).unwrap();
        socket2::SockRef::from(&rx).set_recv_buffer_size(4 << 20).unwrap();
        let parts: Vec<Vec<u8>> = (0..segments).map(|t| packet(t as u8, bytes)).collect();
        for _ in 0..messages {
            if segments == 1 {
                send_to(&tx, &parts[0], &dest(&rx)).unwrap();
            } else {
                let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
                send_gso(&tx, &dest(&rx), &iov).unwrap();
            }
        }
        // Loopback queues within the send; wait for the count to settle all the same.
        let mut charged = queued_charge(&rx).unwrap();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(5));
            let again = queued_charge(&rx).unwrap();
            if again == charged && charged > 0 {
                break;
            }
            charged = again;
        }
        let mut batch = RecvBatch::new(64, 65_535);
        let (mut estimate, mut datagrams) = (0, 0);
        while datagrams < segments * messages {
            match batch.recv(&rx) {
                Ok(_) => {
                    for m in batch.messages() {
                        estimate += m.buffer_charge();
                        datagrams += m.datagram_count();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => panic!("datagrams missing"),
                Err(e) => panic!("{e}"),
            }
        }
        let charged = charged as usize;
        assert!(
            estimate >= charged,
            "{messages} x {segments} x {bytes} bytes: estimated {estimate}, kernel charged {charged}"
        );
        // An upper bound, not a guess: at most a few times what was charged.
        assert!(estimate <= 4 * charged, "{bytes} x {segments}: {estimate} against {charged}");
    }
}

/// io_uring may be disabled (sysctl, seccomp); say so instead of failing.
fn uring(entries: u32) -> Option<UringSender> {
    match UringSender::new(entries) {
        Ok(u) => Some(u),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            eprintln!("io_uring unavailable here ({e}); skipping");
            None
        }
        Err(e) => panic!("io_uring setup: {e}"),
    }
}

#[test]
fn uring_sends_one_gso_frame_to_many_readers() {
    let Some(mut ring) = uring(2) else { return };
    assert_eq!(ring.entries(), 2);
    let tx = socket();
    let readers: Vec<UdpSocket> = (0..5).map(|_| socket()).collect();
    let dests: Vec<RawAddr> = readers.iter().map(dest).collect();
    let packets = [packet(1, 1000), packet(2, 1000), packet(3, 400)];
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    // Two frames through the same ring: entries are reused call after call.
    for _ in 0..2 {
        let outcomes = ring.send_gso_to_many(&tx, &iov, &dests).unwrap();
        assert_eq!(outcomes.len(), 5);
        for o in outcomes {
            assert!(matches!(o, SendOutcome::Sent(2400)), "{o:?}");
        }
    }
    for r in &readers {
        assert_eq!(recv_exactly(r, 6), [packets.to_vec(), packets.to_vec()].concat());
    }
}

#[test]
fn uring_gso_reaches_gro_readers_whole() {
    let Some(mut ring) = uring(64) else { return };
    let tx = socket();
    let readers: Vec<UdpSocket> = (0..3).map(|_| socket()).collect();
    for r in &readers {
        set_gro(r, true).unwrap();
    }
    let dests: Vec<RawAddr> = readers.iter().map(dest).collect();
    let packets: Vec<Vec<u8>> = (0..8).map(|t| packet(t, 1200)).collect();
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    let outcomes = ring.send_gso_to_many(&tx, &iov, &dests).unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, SendOutcome::Sent(9600))));
    let mut batch = RecvBatch::new(8, 65_535);
    for r in &readers {
        let (got, messages) = batch_recv(r, &mut batch, 8);
        assert_eq!(got, packets);
        assert_eq!(messages, 1);
    }
}

#[test]
fn uring_reports_a_refused_reader_and_sends_the_others() {
    let Some(mut ring) = uring(8) else { return };
    let tx = socket();
    let rx = socket();
    // Port 0 is not a valid destination: that one message fails, the others go out.
    let bad = RawAddr::from("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap());
    let dests = [dest(&rx), bad, dest(&rx)];
    let packets = [packet(1, 500), packet(2, 500)];
    let iov: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    let outcomes = ring.send_gso_to_many(&tx, &iov, &dests).unwrap();
    assert!(matches!(outcomes[0], SendOutcome::Sent(1000)));
    assert!(matches!(outcomes[1], SendOutcome::Failed(_)), "{:?}", outcomes[1]);
    assert!(matches!(outcomes[2], SendOutcome::Sent(1000)));
    assert_eq!(recv_exactly(&rx, 4).len(), 4);
}
