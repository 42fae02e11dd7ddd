//! `manifold-perf-floor`: what the kernel charges a reader for each packet, beside what it
//! charges a sender, in one run on one machine: the ceiling of any load generator built on
//! kernel sockets (perf/RESULTS.md, "The floor under the generator's cost").
//!
//! Two pinned threads and nothing else. The sender, like the relay, hands every reader each
//! frame of a 25 frames/s stream at once: over UDP one `UDP_SEGMENT` (GSO) message per reader,
//! batched with `sendmmsg`; over TCP one `write` of the frame, interleaved framing included, per
//! reader. The reader, like `manifold load`, does no more than receive: over UDP it drains every
//! socket (`UDP_GRO` and kernel timestamps on) with `recvmmsg` on a fixed read interval; over
//! TCP it reads each connection when epoll says it is readable, one `read` per wake-up. Neither
//! looks at the bytes.
//!
//! A frame's packets go as one message, or as the parts a run names: `1+3` is a datagram and
//! then a GSO message of three (over TCP, two writes), the shape the relay gives its synthetic
//! stream at 1 Mbit/s, whose first packet is shorter than the rest.
//!
//! For each run it prints both threads' CPU time over the same window and the packets the
//! reader received in it; `ceiling` is the reader's packets per CPU-second over the sender's,
//! the figure `perf/gen-cost` calls `ratio`. A generator that reads through the kernel does all
//! the reader does here and more, against a server that does at least what the sender does.
//!
//! ```text
//! manifold-perf-floor [--seconds 10] [--read-interval-ms 50] [--packet 1400] [RUN ...]
//!   RUN = udp|tcp:READERS:PACKETS[+PACKETS...], e.g. udp:5000:1 udp:1000:1+3 tcp:1000:4
//! ```
//!
//! Everything runs on 127.0.0.1 and stops by itself.

use std::io::{self, IoSlice, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use manifold_sys::epoll::{self, Epoll};
use manifold_sys::limits::{raise_nofile, thread_cpu_time};
use manifold_sys::pin_to_cpu;
use manifold_udp::{set_gro, set_timestamps, MmsgSender, RawAddr, RecvBatch};

/// RTSP interleaved framing ahead of every packet over TCP (`$`, channel, length).
const INTERLEAVED_HEADER: usize = 4;
/// Frames per second of every stream.
const FPS: u32 = 25;
/// Most packets a frame may have (a GSO message holds at most 64 segments and 64 KiB).
const MAX_PACKETS_PER_FRAME: usize = 32;
/// Readers beyond this crowd the open-files limit (two descriptors per TCP reader).
const MAX_READERS: usize = 15_000;
/// `recvmmsg` batch of the UDP reader, as the generator's.
const RECV_BATCH: usize = 64;
/// Read buffer of the TCP reader, as the generator's largest connection buffer.
const TCP_READ_BUF: usize = 128 * 1024;
/// Time before the window, so sockets, caches and the kernel's allocators settle.
const WARM_UP: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(about = "The cheapest kernel-socket reader beside the cheapest sender, in one run")]
struct Args {
    /// Length of the measured window of each run.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    seconds: u64,
    /// How often the UDP reader drains its sockets (the generator's `--udp-read-interval`).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    read_interval_ms: u64,
    /// Bytes of every packet's payload (the relay's synthetic stream at 1 Mbit/s: 1,426).
    #[arg(long, default_value_t = 1400,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(12..=1472))]
    packet: usize,
    /// CPU of the sending thread.
    #[arg(long, default_value_t = 0)]
    sender_cpu: usize,
    /// CPU of the reading thread.
    #[arg(long, default_value_t = 1)]
    reader_cpu: usize,
    /// Runs, each TRANSPORT:READERS:PACKETS (udp or tcp; PACKETS is a frame's packets, or its
    /// parts sent one message or write each, e.g. 1+3).
    #[arg(default_values_t = ["udp:1000:1+3".to_owned(), "udp:5000:1".to_owned(),
        "tcp:1000:4".to_owned(), "tcp:5000:1".to_owned()])]
    runs: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

#[derive(Clone, Debug)]
struct Run {
    transport: Transport,
    readers: usize,
    /// A frame's packets, in the messages (UDP) or writes (TCP) that carry them.
    parts: Vec<usize>,
}

impl Run {
    fn packets_per_frame(&self) -> usize {
        self.parts.iter().sum()
    }
}

impl std::str::FromStr for Run {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Run> {
        let mut parts = s.split(':');
        let (Some(t), Some(r), Some(k), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("run {s:?}: expected TRANSPORT:READERS:PACKETS");
        };
        let transport = match t {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            _ => bail!("run {s:?}: transport must be udp or tcp"),
        };
        let readers: usize = r.parse().with_context(|| format!("run {s:?}: readers"))?;
        let parts = k
            .split('+')
            .map(|p| p.parse::<usize>().with_context(|| format!("run {s:?}: packets")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !(1..=MAX_READERS).contains(&readers) {
            bail!("run {s:?}: readers must be 1 to {MAX_READERS}");
        }
        let total: usize = parts.iter().sum();
        if parts.contains(&0) || total > MAX_PACKETS_PER_FRAME {
            bail!(
                "run {s:?}: every part needs a packet, and a frame at most {MAX_PACKETS_PER_FRAME}"
            );
        }
        Ok(Run { transport, readers, parts })
    }
}

/// Where both threads are: warming up, inside the measured window, or done.
struct Phase(AtomicU8);

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const DONE: u8 = 2;

impl Phase {
    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

/// One thread's account of the window: its CPU time and the packets it handled in it.
#[derive(Clone, Copy, Debug, Default)]
struct Account {
    cpu: Duration,
    packets: u64,
    /// Sender: packets the kernel refused or a full socket would not take (not retried).
    dropped: u64,
}

/// Counts a thread's packets and CPU time from the moment the window opens to its end.
#[derive(Default)]
struct Meter {
    started: Option<Duration>,
    account: Account,
}

impl Meter {
    /// Call once per loop turn; returns false when the run is over.
    fn tick(&mut self, phase: &Phase) -> bool {
        match phase.get() {
            MEASURING if self.started.is_none() => self.started = Some(thread_cpu_time()),
            DONE => {
                if let Some(start) = self.started {
                    self.account.cpu = thread_cpu_time().saturating_sub(start);
                }
                return false;
            }
            _ => {}
        }
        true
    }

    fn count(&mut self, packets: u64, dropped: u64) {
        if self.started.is_some() {
            self.account.packets += packets;
            self.account.dropped += dropped;
        }
    }
}

/// A thread's fixed-rate ticks from its start. A late thread catches up tick by tick, as a
/// server sends every frame however late.
struct Ticks {
    start: Instant,
    step: Duration,
    next: u32,
}

impl Ticks {
    /// Ticks every `step`, the first after `first` steps.
    fn new(step: Duration, first: u32) -> Ticks {
        Ticks { start: Instant::now(), step, next: first }
    }

    /// Sleeps until the next tick (not at all when it has passed).
    fn wait(&mut self) {
        let at = self.start + self.step * self.next;
        self.next += 1;
        let now = Instant::now();
        if at > now {
            thread::sleep(at - now);
        }
    }
}

fn pin(cpu: usize, who: &str) {
    if let Err(e) = pin_to_cpu(cpu) {
        eprintln!("warning: cannot pin the {who} to CPU {cpu}: {e}");
    }
}

/// The UDP sender: every frame, each part of it to every reader in turn, one message a reader
/// (a GSO message when the part has more than one packet), batched with `sendmmsg`.
fn send_udp(
    run: &Run,
    packet: usize,
    dests: &[RawAddr],
    cpu: usize,
    phase: &Phase,
) -> io::Result<Account> {
    pin(cpu, "sender");
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let payload = vec![0x80u8; packet * run.packets_per_frame()];
    let segments: Vec<IoSlice<'_>> = payload.chunks(packet).map(IoSlice::new).collect();
    let mut sender = MmsgSender::new(64);
    let mut meter = Meter::default();
    let mut frames = Ticks::new(Duration::from_secs(1) / FPS, 0);
    while meter.tick(phase) {
        frames.wait();
        let mut first = 0;
        for &part in &run.parts {
            let part_segments = &segments[first..first + part];
            first += part;
            let per = part as u64;
            let mut rest = dests;
            while !rest.is_empty() {
                let batch = &rest[..rest.len().min(sender.batch())];
                let done = if part == 1 {
                    sender.send_to_many(&socket, part_segments, batch)?
                } else {
                    sender.send_gso_to_many(&socket, part_segments, batch)?
                };
                // A full socket buffer drops the batch's rest for this frame, as a server would.
                let taken = if done.would_block { batch.len() } else { done.consumed().max(1) };
                meter.count(done.sent as u64 * per, (taken - done.sent) as u64 * per);
                rest = &rest[taken.min(rest.len())..];
            }
        }
    }
    Ok(meter.account)
}

/// The UDP reader: every read interval, every socket drained with `recvmmsg`.
fn read_udp(sockets: &[UdpSocket], interval: Duration, cpu: usize, phase: &Phase) -> Account {
    pin(cpu, "reader");
    let mut batch = RecvBatch::new(RECV_BATCH, 65_535);
    let mut meter = Meter::default();
    let mut reads = Ticks::new(interval, 1);
    while meter.tick(phase) {
        reads.wait();
        for socket in sockets {
            while let Ok(got) = batch.recv(socket) {
                let packets: usize = batch.messages().map(|m| m.datagram_count()).sum();
                meter.count(packets as u64, 0);
                if got < RECV_BATCH {
                    break;
                }
            }
        }
    }
    meter.account
}

/// The TCP sender: every frame, each part of it, interleaved framing included, in one `write`
/// to every reader.
fn send_tcp(
    run: &Run,
    packet: usize,
    streams: &mut [TcpStream],
    cpu: usize,
    phase: &Phase,
) -> Account {
    pin(cpu, "sender");
    let writes: Vec<Vec<u8>> =
        run.parts.iter().map(|&n| vec![b'$'; (INTERLEAVED_HEADER + packet) * n]).collect();
    let mut meter = Meter::default();
    let mut frames = Ticks::new(Duration::from_secs(1) / FPS, 0);
    while meter.tick(phase) {
        frames.wait();
        for (bytes, &part) in writes.iter().zip(&run.parts) {
            for stream in streams.iter_mut() {
                // A reader so far behind that its buffer is full loses the part; a partial write
                // counts whole, as the stream's framing does not matter here.
                match stream.write(bytes) {
                    Ok(n) if n > 0 => meter.count(part as u64, 0),
                    _ => meter.count(0, part as u64),
                }
            }
        }
    }
    meter.account
}

/// The TCP reader: one `read` per connection each time epoll reports it readable.
fn read_tcp(
    streams: &mut [TcpStream],
    packet: usize,
    cpu: usize,
    phase: &Phase,
) -> io::Result<Account> {
    pin(cpu, "reader");
    let poller = Epoll::new()?;
    for (i, s) in streams.iter().enumerate() {
        poller.add(s, i as u64, false)?;
    }
    let mut events = epoll::events(1024);
    let mut buf = vec![0u8; TCP_READ_BUF];
    let mut meter = Meter::default();
    let mut bytes = 0u64;
    let packet = (INTERLEAVED_HEADER + packet) as u64;
    while meter.tick(phase) {
        let ready = poller.wait(&mut events, 20)?;
        for event in &events[..ready] {
            let Some(stream) = streams.get_mut(event.u64 as usize) else { continue };
            match stream.read(&mut buf) {
                Ok(n) => {
                    // Whole packets only; a packet split across reads counts when it completes.
                    let before = bytes / packet;
                    bytes += n as u64;
                    meter.count(bytes / packet - before, 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(meter.account)
}

/// Runs `sender` and `reader` on their threads through warm-up, the window and the end.
fn measure<S, R>(seconds: u64, sender: S, reader: R) -> anyhow::Result<(Account, Account)>
where
    S: FnOnce(&Phase) -> anyhow::Result<Account> + Send,
    R: FnOnce(&Phase) -> anyhow::Result<Account> + Send,
{
    let phase = Phase(AtomicU8::new(WARMING));
    thread::scope(|scope| {
        let sent = scope.spawn(|| sender(&phase));
        let read = scope.spawn(|| reader(&phase));
        thread::sleep(WARM_UP);
        phase.0.store(MEASURING, Ordering::Release);
        thread::sleep(Duration::from_secs(seconds));
        phase.0.store(DONE, Ordering::Release);
        let sent = sent.join().map_err(|_| anyhow::anyhow!("the sender panicked"))??;
        let read = read.join().map_err(|_| anyhow::anyhow!("the reader panicked"))??;
        Ok((sent, read))
    })
}

fn run_udp(run: &Run, args: &Args) -> anyhow::Result<(Account, Account)> {
    let sockets = (0..run.readers)
        .map(|_| {
            let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
            s.set_nonblocking(true)?;
            set_gro(&s, true)?;
            set_timestamps(&s, true)?;
            Ok(s)
        })
        .collect::<io::Result<Vec<_>>>()
        .context("binding the readers' UDP sockets")?;
    let dests = sockets
        .iter()
        .map(|s| s.local_addr().map(RawAddr::from))
        .collect::<io::Result<Vec<_>>>()?;
    let interval = Duration::from_millis(args.read_interval_ms);
    measure(
        args.seconds,
        |phase| Ok(send_udp(run, args.packet, &dests, args.sender_cpu, phase)?),
        |phase| Ok(read_udp(&sockets, interval, args.reader_cpu, phase)),
    )
}

fn run_tcp(run: &Run, args: &Args) -> anyhow::Result<(Account, Account)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr: SocketAddr = listener.local_addr()?;
    let mut servers = Vec::with_capacity(run.readers);
    let mut clients = Vec::with_capacity(run.readers);
    for _ in 0..run.readers {
        let client = TcpStream::connect(addr).context("connecting a reader")?;
        let (server, _) = listener.accept()?;
        server.set_nodelay(true)?;
        server.set_nonblocking(true)?;
        client.set_nonblocking(true)?;
        servers.push(server);
        clients.push(client);
    }
    measure(
        args.seconds,
        |phase| Ok(send_tcp(run, args.packet, &mut servers, args.sender_cpu, phase)),
        |phase| Ok(read_tcp(&mut clients, args.packet, args.reader_cpu, phase)?),
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runs = args.runs.iter().map(|r| r.parse()).collect::<anyhow::Result<Vec<Run>>>()?;
    raise_nofile().context("raising the open-files limit")?;
    println!(
        "{:<9} {:>7} {:>6} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "transport",
        "readers",
        "frame",
        "sent",
        "received",
        "dropped",
        "send_cpu",
        "read_cpu",
        "send_ns",
        "read_ns",
        "ceiling"
    );
    for run in runs {
        let (sent, read) = match run.transport {
            Transport::Udp => run_udp(&run, &args)?,
            Transport::Tcp => run_tcp(&run, &args)?,
        };
        let parts: Vec<String> = run.parts.iter().map(ToString::to_string).collect();
        // Both per packet the reader received, as perf/gen-cost counts them.
        let per = |cpu: Duration| cpu.as_secs_f64() * 1e9 / read.packets.max(1) as f64;
        let (send_ns, read_ns) = (per(sent.cpu), per(read.cpu));
        println!(
            "{:<9} {:>7} {:>6} {:>10} {:>10} {:>8} {:>9.3} {:>9.3} {:>9.0} {:>9.0} {:>8.2}",
            match run.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            },
            run.readers,
            parts.join("+"),
            sent.packets,
            read.packets,
            sent.dropped,
            sent.cpu.as_secs_f64(),
            read.cpu.as_secs_f64(),
            send_ns,
            read_ns,
            send_ns / read_ns.max(f64::MIN_POSITIVE),
        );
    }
    Ok(())
}
