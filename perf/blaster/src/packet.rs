//! The packet thread: receives RTP from the source socket and sends every packet to every
//! playing reader, with no RTP parsing beyond the marker bit and the timestamp (the frame
//! boundary), no rewriting, no per-reader queue and no GOP cache.
//!
//! Readers join and leave through [`Command`]s from the control plane (a crossbeam channel,
//! drained between receive bursts: no lock on the per-packet path).
//!
//! - UDP readers are sent from one server-port socket, as [`SendMode`] says: `sendto` per
//!   datagram per reader; `sendmmsg` of one packet to up to 64 readers; or the packets of a
//!   frame as GSO runs (equal sizes, the last may be shorter), one `sendmsg` with
//!   `UDP_SEGMENT` per reader (`gso`) or batched across readers with `sendmmsg`
//!   (`gso-mmsg`), single odd-sized packets as `sendmmsg` to many readers. A run goes out as
//!   soon as it cannot grow (a shorter packet, a larger one, 64 segments), at the marker, at
//!   a new timestamp, or [`FRAME_HOLD`] after its first packet.
//! - TCP (interleaved) readers get a frame's `$`-framed packets in one non-blocking gathered
//!   `sendmsg` at the frame's end. A socket that takes nothing drops the frame for that
//!   reader (`tcp_dropped`); a packet the kernel took only in part is finished first (its
//!   rest is kept, the packets after it are dropped), so the interleaved stream stays framed.
//!   Once a connection has an interleaved reader, the packet thread writes all of it,
//!   responses included ([`Command::Write`]), so media and RTSP never interleave mid-message.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::net::{TcpStream, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use manifold_udp::{MmsgSender, RawAddr, GSO_MAX_BYTES_V6, GSO_MAX_SEGMENTS};

use crate::sys;

/// Longest a packet is held for its frame when the marker never comes.
pub(crate) const FRAME_HOLD: Duration = Duration::from_millis(5);
/// Packets received per burst before commands and deadlines are looked at again.
const RECV_BURST: usize = 256;
/// Readers per `sendmmsg`.
const MMSG_BATCH: usize = 64;
/// Largest datagram received.
const MAX_DATAGRAM: usize = 65_536;
/// Packets per gathered TCP write (two slices each).
const TCP_PACKETS_PER_WRITE: usize = sys::IOV_MAX / 2;
/// Poll timeout when nothing is due (the stop flag is also signalled through the wake socket).
const IDLE_POLL_MS: i32 = 200;

/// How UDP readers are sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SendMode {
    /// One `sendto` per datagram per reader.
    Sendto,
    /// One packet to up to 64 readers per `sendmmsg`.
    Sendmmsg,
    /// A frame's GSO run as one `sendmsg` with `UDP_SEGMENT` per reader.
    Gso,
    /// A frame's GSO run to up to 64 readers per `sendmmsg` (the relay's path).
    GsoMmsg,
}

impl SendMode {
    fn batches_frames(self) -> bool {
        matches!(self, SendMode::Gso | SendMode::GsoMmsg)
    }
}

/// Where one track of a reader goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dest {
    /// UDP to the reader's RTP port.
    Udp(RawAddr),
    /// Interleaved on the reader's RTSP connection, on this RTP channel.
    Tcp(u8),
}

/// What the control plane tells the packet thread.
#[derive(Debug)]
pub(crate) enum Command {
    /// From now on the packet thread writes connection `conn` (raw fd `fd`, still owned by
    /// the control plane until [`Command::Close`]); `bytes` go first (responses not yet
    /// written, the one that caused the hand-over last).
    Handover {
        /// The connection.
        conn: u64,
        /// Its socket.
        fd: RawFd,
        /// Bytes to write before any media.
        bytes: Vec<u8>,
    },
    /// Reader `reader` starts playing; interleaved tracks go on connection `conn`, which
    /// was handed over.
    Join {
        /// The reader.
        reader: u64,
        /// Its connection.
        conn: u64,
        /// Per stream track: where it goes, if set up.
        tracks: Vec<Option<Dest>>,
    },
    /// Reader `reader` stops.
    Leave {
        /// The reader.
        reader: u64,
    },
    /// Bytes (RTSP responses) for a handed-over connection.
    Write {
        /// The connection.
        conn: u64,
        /// What to write.
        bytes: Vec<u8>,
    },
    /// A handed-over connection closed: forget it, and close its socket here.
    Close {
        /// The connection.
        conn: u64,
        /// Its socket, dropped once the packet thread is done with the fd.
        stream: TcpStream,
    },
}

/// What the packet thread did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// RTP packets received from the source.
    pub(crate) received: u64,
    /// Datagrams the kernel accepted for UDP readers.
    pub(crate) datagrams_sent: u64,
    /// Datagrams for UDP readers that were not sent (refused, or the socket buffer was full).
    pub(crate) send_errors: u64,
    /// UDP send syscalls (`sendto`, `sendmsg`, `sendmmsg` of up to 64 messages).
    pub(crate) send_calls: u64,
    /// Packets written whole to TCP readers.
    pub(crate) tcp_sent: u64,
    /// Packets dropped for TCP readers (socket full or gone).
    pub(crate) tcp_dropped: u64,
    /// Most readers playing at once.
    pub(crate) readers_max: u64,
}

/// The packet thread's inputs.
#[derive(Debug)]
pub(crate) struct PacketPath {
    /// Where the source's RTP arrives (non-blocking).
    pub(crate) source: UdpSocket,
    /// The server-port socket UDP readers are sent from (non-blocking).
    pub(crate) send: UdpSocket,
    /// Per stream track: the payload types of its SDP media (packets of other types go to
    /// track 0).
    pub(crate) payload_types: Vec<Vec<u8>>,
    /// How UDP readers are sent to.
    pub(crate) mode: SendMode,
    /// Commands from the control plane.
    pub(crate) commands: Receiver<Command>,
    /// Readable when a command was sent (or the stop flag raised).
    pub(crate) wake: UnixDatagram,
    /// Raised on SIGINT/SIGTERM.
    pub(crate) stop: Arc<AtomicBool>,
}

/// A connection the packet thread writes.
#[derive(Debug)]
struct TcpOut {
    fd: RawFd,
    /// Bytes that must be written before anything else: the rest of a packet the kernel took
    /// in part, and responses.
    tail: Vec<u8>,
    tail_pos: usize,
    /// The socket failed; nothing more is written.
    dead: bool,
}

impl TcpOut {
    fn has_tail(&self) -> bool {
        self.tail_pos < self.tail.len()
    }

    /// Writes as much of the tail as the socket takes; true when it is all written.
    fn flush_tail(&mut self) -> bool {
        while self.has_tail() && !self.dead {
            match sys::send_vectored(self.fd, &[IoSlice::new(&self.tail[self.tail_pos..])]) {
                Ok(n) => self.tail_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => self.dead = true,
            }
        }
        self.tail.clear();
        self.tail_pos = 0;
        !self.dead
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        if self.tail_pos > 0 && self.tail_pos == self.tail.len() {
            self.tail.clear();
            self.tail_pos = 0;
        }
        self.tail.extend_from_slice(bytes);
    }
}

/// An interleaved reader of one track.
#[derive(Debug, Clone, Copy)]
struct TcpDest {
    reader: u64,
    conn: u64,
    channel: u8,
}

/// One track's readers and the frame being collected.
#[derive(Debug, Default)]
struct Track {
    /// UDP readers' RTP addresses, and (same index) their reader ids.
    udp: Vec<RawAddr>,
    udp_readers: Vec<u64>,
    tcp: Vec<TcpDest>,
    /// The bytes of the frame's packets held so far, and each packet's range.
    arena: Vec<u8>,
    packets: Vec<Range<usize>>,
    /// First packet not yet sent to UDP readers (frame-batching modes).
    run_start: usize,
    /// RTP timestamp of the held frame.
    frame_rtptime: u32,
    /// When the held frame's first packet arrived.
    held_since: Option<Instant>,
}

impl Track {
    fn has_readers(&self) -> bool {
        !self.udp.is_empty() || !self.tcp.is_empty()
    }

    /// Whether a packet of `len` bytes may join the UDP run being collected.
    fn extends_run(&self, len: usize) -> bool {
        let run = &self.packets[self.run_start..];
        let Some(first) = run.first() else { return true };
        let size = first.len();
        let closed = run.last().is_some_and(|l| l.len() < size);
        let bytes: usize = run.iter().map(|r| r.len()).sum();
        !closed
            && len <= size
            && len > 0
            && run.len() < GSO_MAX_SEGMENTS
            && bytes + len <= GSO_MAX_BYTES_V6
    }

    /// Whether the run cannot grow any more (its last packet is shorter, or it is full).
    fn run_complete(&self) -> bool {
        let run = &self.packets[self.run_start..];
        match (run.first(), run.last()) {
            (Some(first), Some(last)) => {
                (run.len() > 1 && last.len() < first.len()) || run.len() >= GSO_MAX_SEGMENTS
            }
            _ => false,
        }
    }
}

/// The packet thread's state.
struct Blaster {
    send: UdpSocket,
    mode: SendMode,
    payload_types: Vec<Vec<u8>>,
    tracks: Vec<Track>,
    conns: HashMap<u64, TcpOut>,
    /// Connections with a tail to write.
    with_tail: Vec<u64>,
    /// Playing readers.
    readers: HashMap<u64, Vec<usize>>,
    mmsg: MmsgSender,
    stats: Stats,
}

/// Runs the packet path until the stop flag is raised; returns what it did.
pub(crate) fn run(path: PacketPath) -> io::Result<Stats> {
    let PacketPath { source, send, payload_types, mode, commands, wake, stop } = path;
    let tracks = payload_types.len().max(1);
    let mut b = Blaster {
        send,
        mode,
        payload_types,
        tracks: (0..tracks).map(|_| Track::default()).collect(),
        conns: HashMap::new(),
        with_tail: Vec::new(),
        readers: HashMap::new(),
        mmsg: MmsgSender::new(MMSG_BATCH),
        stats: Stats::default(),
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut scratch = [0u8; 64];
    loop {
        while let Ok(cmd) = commands.try_recv() {
            b.command(cmd);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut got = 0;
        while got < RECV_BURST {
            match source.recv(&mut buf) {
                Ok(n) => {
                    got += 1;
                    if let Some(packet) = buf.get(..n) {
                        b.packet(packet);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP errors queued on the socket and the like: not fatal for a receiver.
                Err(_) => break,
            }
        }
        let deadline = b.flush_expired(Instant::now());
        b.retry_tails();
        if got == RECV_BURST {
            continue;
        }
        let timeout = deadline.map_or(IDLE_POLL_MS, |at| {
            let ms = at.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
            i32::try_from(ms).unwrap_or(IDLE_POLL_MS).min(IDLE_POLL_MS)
        });
        fds.clear();
        fds.push(libc::pollfd { fd: source.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        fds.push(libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        for id in &b.with_tail {
            if let Some(out) = b.conns.get(id) {
                fds.push(libc::pollfd { fd: out.fd, events: libc::POLLOUT, revents: 0 });
            }
        }
        sys::poll(&mut fds, timeout)?;
        if fds.get(1).is_some_and(|f| f.revents != 0) {
            while wake.recv(&mut scratch).is_ok() {}
        }
    }
    Ok(b.stats)
}

impl Blaster {
    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Handover { conn, fd, bytes } => {
                let mut out = TcpOut { fd, tail: Vec::new(), tail_pos: 0, dead: false };
                out.push_tail(&bytes);
                if !out.flush_tail() && !out.dead {
                    self.with_tail.push(conn);
                }
                self.conns.insert(conn, out);
            }
            Command::Join { reader, conn, tracks } => {
                self.leave(reader);
                let mut joined = Vec::new();
                for (i, dest) in tracks.iter().enumerate() {
                    let (Some(dest), Some(track)) = (dest, self.tracks.get_mut(i)) else {
                        continue;
                    };
                    match *dest {
                        Dest::Udp(addr) => {
                            track.udp.push(addr);
                            track.udp_readers.push(reader);
                        }
                        Dest::Tcp(channel) => track.tcp.push(TcpDest { reader, conn, channel }),
                    }
                    joined.push(i);
                }
                self.readers.insert(reader, joined);
                self.stats.readers_max = self.stats.readers_max.max(self.readers.len() as u64);
            }
            Command::Leave { reader } => self.leave(reader),
            Command::Write { conn, bytes } => {
                if let Some(out) = self.conns.get_mut(&conn) {
                    let had_tail = out.has_tail();
                    out.push_tail(&bytes);
                    if !had_tail && !out.flush_tail() && !out.dead {
                        self.with_tail.push(conn);
                    }
                }
            }
            Command::Close { conn, stream } => {
                self.conns.remove(&conn);
                self.with_tail.retain(|c| *c != conn);
                let gone: Vec<u64> = self
                    .tracks
                    .iter()
                    .flat_map(|t| t.tcp.iter().filter(|d| d.conn == conn).map(|d| d.reader))
                    .collect();
                for reader in gone {
                    self.leave(reader);
                }
                // The fd is closed only now that nothing here refers to it.
                drop(stream);
            }
        }
    }

    fn leave(&mut self, reader: u64) {
        let Some(tracks) = self.readers.remove(&reader) else { return };
        for i in tracks {
            let Some(track) = self.tracks.get_mut(i) else { continue };
            if let Some(pos) = track.udp_readers.iter().position(|r| *r == reader) {
                track.udp.swap_remove(pos);
                track.udp_readers.swap_remove(pos);
            }
            track.tcp.retain(|d| d.reader != reader);
            if !track.has_readers() {
                clear_frame(track);
            }
        }
    }

    /// One packet from the source.
    fn packet(&mut self, packet: &[u8]) {
        self.stats.received += 1;
        if packet.len() < 12 {
            return;
        }
        let pt = packet[1] & 0x7f;
        let marker = packet[1] & 0x80 != 0;
        let rtptime = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let index = self.payload_types.iter().position(|p| p.contains(&pt)).unwrap_or(0);
        let Some(mut track) = self.tracks.get_mut(index).map(std::mem::take) else { return };
        if !track.has_readers() {
            self.tracks[index] = track;
            return;
        }
        if !track.packets.is_empty() && track.frame_rtptime != rtptime {
            // The previous frame's marker was lost: send what is held.
            self.flush_frame(&mut track);
        }
        let batch_udp = self.mode.batches_frames() && !track.udp.is_empty();
        if !batch_udp && !track.udp.is_empty() {
            self.send_now(&track.udp, packet);
        }
        if batch_udp || !track.tcp.is_empty() {
            if batch_udp && !track.extends_run(packet.len()) {
                self.flush_run(&mut track);
            }
            if track.packets.is_empty() {
                track.frame_rtptime = rtptime;
                track.held_since = Some(Instant::now());
            }
            let start = track.arena.len();
            track.arena.extend_from_slice(packet);
            track.packets.push(start..track.arena.len());
            if batch_udp && track.run_complete() {
                self.flush_run(&mut track);
            }
            if marker {
                self.flush_frame(&mut track);
            }
        }
        self.tracks[index] = track;
    }

    /// Sends one packet to every UDP reader right away (`sendto`, `sendmmsg`).
    fn send_now(&mut self, dests: &[RawAddr], packet: &[u8]) {
        match self.mode {
            SendMode::Sendto => {
                self.stats.send_calls += dests.len() as u64;
                for dest in dests {
                    match manifold_udp::send_to(&self.send, packet, dest) {
                        Ok(_) => self.stats.datagrams_sent += 1,
                        Err(_) => self.stats.send_errors += 1,
                    }
                }
            }
            _ => self.send_to_many(packet, dests),
        }
    }

    fn send_to_many(&mut self, packet: &[u8], dests: &[RawAddr]) {
        self.stats.send_calls += dests.len().div_ceil(MMSG_BATCH) as u64;
        match self.mmsg.send_to_many(&self.send, &[IoSlice::new(packet)], dests) {
            Ok(sent) => {
                self.stats.datagrams_sent += sent.sent as u64;
                self.stats.send_errors += (dests.len() - sent.sent) as u64;
            }
            Err(_) => self.stats.send_errors += dests.len() as u64,
        }
    }

    /// Sends the held UDP run to every UDP reader (frame-batching modes).
    fn flush_run(&mut self, track: &mut Track) {
        let run = track.packets.get(track.run_start..).unwrap_or_default();
        if run.is_empty() || track.udp.is_empty() {
            track.run_start = track.packets.len();
            return;
        }
        let segments: Vec<IoSlice<'_>> =
            run.iter().map(|r| IoSlice::new(&track.arena[r.clone()])).collect();
        let n = segments.len() as u64;
        let dests = &track.udp;
        if let [single] = run {
            // A single (odd-sized) packet: one packet to many readers per `sendmmsg`.
            self.send_to_many(&track.arena[single.clone()], dests);
        } else if self.mode == SendMode::Gso {
            self.stats.send_calls += dests.len() as u64;
            for dest in dests {
                match manifold_udp::send_gso(&self.send, dest, &segments) {
                    Ok(_) => self.stats.datagrams_sent += n,
                    Err(_) => self.stats.send_errors += n,
                }
            }
        } else {
            self.stats.send_calls += dests.len().div_ceil(MMSG_BATCH) as u64;
            match self.mmsg.send_gso_to_many(&self.send, &segments, dests) {
                Ok(sent) => {
                    self.stats.datagrams_sent += sent.sent as u64 * n;
                    self.stats.send_errors += (dests.len() - sent.sent) as u64 * n;
                }
                Err(_) => self.stats.send_errors += dests.len() as u64 * n,
            }
        }
        track.run_start = track.packets.len();
        if track.tcp.is_empty() {
            clear_frame(track);
        }
    }

    /// The held frame is complete (or overdue): sends the UDP rest and the TCP readers' copy.
    fn flush_frame(&mut self, track: &mut Track) {
        if self.mode.batches_frames() {
            self.flush_run(track);
        }
        if !track.tcp.is_empty() && !track.packets.is_empty() {
            self.write_tcp(track);
        }
        clear_frame(track);
    }

    /// Writes the held frame to each interleaved reader: one gathered `sendmsg` per reader
    /// (per [`TCP_PACKETS_PER_WRITE`] packets).
    fn write_tcp(&mut self, track: &Track) {
        let mut headers: Vec<[u8; 4]> = Vec::with_capacity(track.packets.len());
        let mut channel_of_headers = None;
        for dest in &track.tcp {
            let Some(out) = self.conns.get_mut(&dest.conn) else { continue };
            let total = track.packets.len() as u64;
            let had_tail = out.has_tail();
            if out.dead || !out.flush_tail() {
                self.stats.tcp_dropped += total;
                continue;
            }
            if channel_of_headers != Some(dest.channel) {
                headers.clear();
                headers.extend(track.packets.iter().map(|r| {
                    let len = u16::try_from(r.len()).unwrap_or(u16::MAX);
                    manifold_rtsp::codec::interleaved_header(
                        manifold_rtsp::ChannelId(dest.channel),
                        len,
                    )
                }));
                channel_of_headers = Some(dest.channel);
            }
            let mut done = 0;
            while done < track.packets.len() {
                let end = (done + TCP_PACKETS_PER_WRITE).min(track.packets.len());
                let mut iov = Vec::with_capacity((end - done) * 2);
                for (header, range) in headers[done..end].iter().zip(&track.packets[done..end]) {
                    iov.push(IoSlice::new(header));
                    iov.push(IoSlice::new(&track.arena[range.clone()]));
                }
                let wanted: usize = iov.iter().map(|s| s.len()).sum();
                let written = match sys::send_vectored(out.fd, &iov) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(_) => {
                        out.dead = true;
                        0
                    }
                };
                if written == wanted {
                    self.stats.tcp_sent += (end - done) as u64;
                    done = end;
                    continue;
                }
                // Whole packets written, then the one cut short: its rest must follow.
                let mut left = written;
                let mut i = done;
                while i < end {
                    let len = 4 + track.packets[i].len();
                    if left < len {
                        break;
                    }
                    left -= len;
                    i += 1;
                }
                self.stats.tcp_sent += (i - done) as u64;
                if left > 0 && i < end {
                    let mut rest = Vec::with_capacity(4 + track.packets[i].len() - left);
                    rest.extend_from_slice(&headers[i][left.min(4)..]);
                    let body = &track.arena[track.packets[i].clone()];
                    rest.extend_from_slice(&body[left.saturating_sub(4)..]);
                    out.push_tail(&rest);
                    self.stats.tcp_sent += 1;
                    i += 1;
                }
                self.stats.tcp_dropped += (track.packets.len() - i) as u64;
                break;
            }
            if out.has_tail() && !had_tail && !out.dead {
                self.with_tail.push(dest.conn);
            }
        }
    }

    /// Sends frames held longer than [`FRAME_HOLD`]; returns the next such deadline.
    fn flush_expired(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for i in 0..self.tracks.len() {
            let Some(since) = self.tracks[i].held_since else { continue };
            let due = since + FRAME_HOLD;
            if due <= now {
                let mut track = std::mem::take(&mut self.tracks[i]);
                self.flush_frame(&mut track);
                self.tracks[i] = track;
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// Writes what the sockets with a tail now take.
    fn retry_tails(&mut self) {
        if self.with_tail.is_empty() {
            return;
        }
        let conns = &mut self.conns;
        self.with_tail.retain(|id| {
            let Some(out) = conns.get_mut(id) else { return false };
            !out.flush_tail() && !out.dead
        });
    }
}

fn clear_frame(track: &mut Track) {
    track.arena.clear();
    track.packets.clear();
    track.run_start = 0;
    track.held_since = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track_with(lens: &[usize]) -> Track {
        let mut t = Track::default();
        for &n in lens {
            let start = t.arena.len();
            t.arena.resize(start + n, 0);
            t.packets.push(start..start + n);
        }
        t
    }

    #[test]
    fn runs_grow_with_equal_sizes_and_close_on_a_shorter_packet() {
        let t = track_with(&[1200, 1200]);
        assert!(t.extends_run(1200));
        assert!(t.extends_run(300));
        assert!(!t.extends_run(1300));
        assert!(!t.run_complete());
        let t = track_with(&[1200, 1200, 300]);
        assert!(t.run_complete());
        assert!(!t.extends_run(300));
        let t = track_with(&[]);
        assert!(t.extends_run(20));
        let t = track_with(&[20]);
        assert!(t.extends_run(8));
        assert!(!t.extends_run(1200));
    }

    #[test]
    fn runs_stop_at_the_gso_limits() {
        let t = track_with(&[100; GSO_MAX_SEGMENTS]);
        assert!(t.run_complete());
        assert!(!t.extends_run(100));
        let t = track_with(&[1200; 54]);
        assert!(!t.extends_run(1200));
    }
}
