//! Measures delivered UDP datagrams per sender CPU-second for each send path of manifold-udp,
//! side by side in one run.
//!
//! A sender thread pinned to one CPU blasts frames of equal-sized packets to N receiving
//! sockets on 127.0.0.1 for a bounded time per path; a thread pinned to another CPU drains them
//! (epoll + `recvmmsg`, optionally with `UDP_GRO`) and counts datagrams. For each path it
//! prints the sender thread's CPU time, datagrams sent and delivered, delivered per sender
//! CPU-second and the ratio to `sendto` from the same run.
//!
//! Traffic goes to 127.0.0.1 only, and every phase stops by itself.

mod sys;

use std::error::Error;
use std::fmt::Write as _;
use std::io::{self, IoSlice};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use manifold_sys::epoll::{self, Epoll};
use manifold_sys::limits::thread_cpu_time;
use manifold_udp::{
    send_gso, send_to, set_gro, MmsgSender, RawAddr, RecvBatch, SendOutcome, UringSender,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Readers beyond this would crowd the 20,000 open-files cap (plus the relay's own).
const MAX_READERS: usize = 15_000;

const USAGE: &str = "\
manifold-perf-sendpath: delivered UDP datagrams per sender CPU-second, per send path

Options:
  --readers N          receiving sockets on 127.0.0.1 (default 1000, max 15000)
  --duration-ms MS     sending time per path (default 3000, max 60000)
  --rounds N           split each path's time into N slices, paths interleaved, so slow
                       drifts in machine load hit every path alike (default 3)
  --packet BYTES       datagram payload size (default 1200)
  --last BYTES         size of each frame's last packet (default: same as --packet)
  --frame N            packets per frame (default 8, max 64)
  --rcvbuf BYTES       SO_RCVBUF of each receiving socket (default: net.core.rmem_default);
                       larger buffers ride out stalls of a receiver thread sharing its CPU
  --mmsg-batch N       messages per sendmmsg (default 64)
  --uring-entries N    io_uring entries = readers per io_uring_enter (default 256)
  --sender-cpu N       CPU for the sender thread (default 0)
  --receiver-cpu N     CPU for the receiving thread (default 1)
  --paths LIST         comma-separated subset of: sendto,sendmmsg,gso,gso+gro,
                       sendmmsg-gso,sendmmsg-gso+gro,uring-gso,uring-gso+gro (default all)
  --json               also print the results as one JSON object
";

/// One way of getting a frame to every reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    SendTo,
    Sendmmsg,
    Gso,
    GsoGro,
    MmsgGso,
    MmsgGsoGro,
    Uring,
    UringGro,
}

impl Path {
    const ALL: [Path; 8] = [
        Path::SendTo,
        Path::Sendmmsg,
        Path::Gso,
        Path::GsoGro,
        Path::MmsgGso,
        Path::MmsgGsoGro,
        Path::Uring,
        Path::UringGro,
    ];

    fn name(self) -> &'static str {
        match self {
            Path::SendTo => "sendto",
            Path::Sendmmsg => "sendmmsg",
            Path::Gso => "gso",
            Path::GsoGro => "gso+gro",
            Path::MmsgGso => "sendmmsg-gso",
            Path::MmsgGsoGro => "sendmmsg-gso+gro",
            Path::Uring => "uring-gso",
            Path::UringGro => "uring-gso+gro",
        }
    }

    fn describe(self, cfg: &Config) -> String {
        let f = cfg.frame;
        match self {
            Path::SendTo => "`sendto`, one datagram per call".into(),
            Path::Sendmmsg => {
                format!("`sendmmsg` ×{} (one packet to many readers)", cfg.mmsg_batch)
            }
            Path::Gso => format!("GSO `sendmsg`, one per reader per {f}-packet frame"),
            Path::GsoGro => "the same, receivers with `UDP_GRO`".into(),
            Path::MmsgGso => format!(
                "`sendmmsg` ×{} of GSO messages (a frame to {} readers per call)",
                cfg.mmsg_batch, cfg.mmsg_batch
            ),
            Path::MmsgGsoGro => "the same, receivers with `UDP_GRO`".into(),
            Path::Uring => {
                format!("io_uring: {} GSO `SENDMSG`s per `io_uring_enter`", cfg.uring_entries)
            }
            Path::UringGro => "the same, receivers with `UDP_GRO`".into(),
        }
    }

    fn gro(self) -> bool {
        matches!(self, Path::GsoGro | Path::MmsgGsoGro | Path::UringGro)
    }
}

#[derive(Clone, Debug)]
struct Config {
    readers: usize,
    duration: Duration,
    rounds: usize,
    packet: usize,
    last: usize,
    frame: usize,
    rcvbuf: Option<usize>,
    mmsg_batch: usize,
    uring_entries: u32,
    sender_cpu: usize,
    receiver_cpu: usize,
    paths: Vec<Path>,
    json: bool,
}

fn parse_args() -> Result<Config> {
    let mut cfg = Config {
        readers: 1000,
        duration: Duration::from_millis(3000),
        rounds: 3,
        packet: 1200,
        last: 0,
        frame: 8,
        rcvbuf: None,
        mmsg_batch: 64,
        uring_entries: 256,
        sender_cpu: 0,
        receiver_cpu: 1,
        paths: Path::ALL.to_vec(),
        json: false,
    };
    let mut last = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--json" {
            cfg.json = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let num = || -> Result<usize> {
            value.parse::<usize>().map_err(|e| format!("{flag} {value}: {e}").into())
        };
        match flag.as_str() {
            "--readers" => cfg.readers = num()?,
            "--duration-ms" => cfg.duration = Duration::from_millis(num()? as u64),
            "--rounds" => cfg.rounds = num()?,
            "--packet" => cfg.packet = num()?,
            "--last" => last = Some(num()?),
            "--frame" => cfg.frame = num()?,
            "--rcvbuf" => cfg.rcvbuf = Some(num()?),
            "--mmsg-batch" => cfg.mmsg_batch = num()?,
            "--uring-entries" => cfg.uring_entries = u32::try_from(num()?)?,
            "--sender-cpu" => cfg.sender_cpu = num()?,
            "--receiver-cpu" => cfg.receiver_cpu = num()?,
            "--paths" => {
                cfg.paths = value
                    .split(',')
                    .map(|name| {
                        Path::ALL
                            .into_iter()
                            .find(|p| p.name() == name.trim())
                            .ok_or_else(|| format!("unknown path {name:?}\n\n{USAGE}"))
                    })
                    .collect::<std::result::Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag}\n\n{USAGE}").into()),
        }
    }
    cfg.last = last.unwrap_or(cfg.packet);
    if !(1..=MAX_READERS).contains(&cfg.readers) {
        return Err(format!("--readers must be 1..={MAX_READERS}").into());
    }
    if cfg.duration.is_zero() || cfg.duration > Duration::from_secs(60) {
        return Err("--duration-ms must be 1..=60000".into());
    }
    if !(1..=100).contains(&cfg.rounds)
        || cfg.duration < Duration::from_millis(cfg.rounds as u64 * 10)
    {
        return Err("--rounds must be 1..=100, with at least 10 ms per round".into());
    }
    if !(1..=64).contains(&cfg.frame) {
        return Err("--frame must be 1..=64".into());
    }
    if cfg.packet == 0 || cfg.last == 0 || cfg.last > cfg.packet {
        return Err("--packet must be > 0 and --last 1..=--packet".into());
    }
    if cfg.packet * cfg.frame > manifold_udp::GSO_MAX_BYTES_V4 {
        return Err("a frame must fit one GSO send (64 KiB)".into());
    }
    Ok(cfg)
}

/// What the sender thread did in one phase.
#[derive(Default)]
struct SendStats {
    cpu: Duration,
    wall: Duration,
    frames: u64,
    sent: u64,
    failed: u64,
    would_block: u64,
    syscalls: u64,
}

/// What the receiving thread saw in one phase.
#[derive(Default)]
struct RecvStats {
    datagrams: u64,
    messages: u64,
    bytes: u64,
    truncated: u64,
    cpu: Duration,
}

/// CPU-time counters of the sender's CPU that our thread's clock may not see.
#[derive(Default, Clone, Copy)]
struct CpuCounters {
    /// softirq jiffies on the sender CPU (/proc/stat).
    softirq_ticks: u64,
    /// CPU ticks of that CPU's ksoftirqd (delivery work deferred off the sender thread).
    ksoftirqd_ticks: u64,
}

fn cpu_counters(cpu: usize, ksoftirqd: Option<u32>) -> CpuCounters {
    let softirq_ticks = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let prefix = format!("cpu{cpu} ");
            let line = s.lines().find(|l| l.starts_with(&prefix))?.to_owned();
            line.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0);
    let ksoftirqd_ticks = ksoftirqd
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .and_then(|s| {
            // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    CpuCounters { softirq_ticks, ksoftirqd_ticks }
}

fn ksoftirqd_pid(cpu: usize) -> Option<u32> {
    let want = format!("ksoftirqd/{cpu}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == want).then_some(pid)
    })
}

/// Clock ticks per second for /proc tick counters.
const TICKS_PER_SEC: f64 = 100.0;

/// One path's results.
struct Row {
    path: Path,
    send: SendStats,
    recv: RecvStats,
    softirq: Duration,
    ksoftirqd: Duration,
    /// Delivered per sender CPU-second of each round, for the spread.
    per_round: Vec<f64>,
}

impl Row {
    /// Adds another round of the same path.
    fn merge(&mut self, o: Row) {
        let (s, r) = (&mut self.send, &o.send);
        s.cpu += r.cpu;
        s.wall += r.wall;
        s.frames += r.frames;
        s.sent += r.sent;
        s.failed += r.failed;
        s.would_block += r.would_block;
        s.syscalls += r.syscalls;
        let (s, r) = (&mut self.recv, &o.recv);
        s.datagrams += r.datagrams;
        s.messages += r.messages;
        s.bytes += r.bytes;
        s.truncated += r.truncated;
        s.cpu += r.cpu;
        self.softirq += o.softirq;
        self.ksoftirqd += o.ksoftirqd;
        self.per_round.extend(o.per_round);
    }
    fn round_spread(&self) -> (f64, f64) {
        let min = self.per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.per_round.iter().copied().fold(0.0, f64::max);
        (min, max)
    }
    fn delivered_per_cpu_s(&self) -> f64 {
        self.recv.datagrams as f64 / self.send.cpu.as_secs_f64().max(1e-9)
    }
    /// Delivered per CPU-second of the sender thread plus the sender CPU's ksoftirqd: receive
    /// work deferred there escapes the thread clock (io_uring's batches defer more of it).
    fn delivered_per_adj_cpu_s(&self) -> f64 {
        self.recv.datagrams as f64 / (self.send.cpu + self.ksoftirqd).as_secs_f64().max(1e-9)
    }
    fn sent_per_cpu_s(&self) -> f64 {
        self.send.sent as f64 / self.send.cpu.as_secs_f64().max(1e-9)
    }
    fn delivered_per_wall_s(&self) -> f64 {
        self.recv.datagrams as f64 / self.send.wall.as_secs_f64().max(1e-9)
    }
    fn datagrams_per_syscall(&self) -> f64 {
        self.send.sent as f64 / (self.send.syscalls.max(1)) as f64
    }
    fn lost(&self) -> u64 {
        self.send.sent.saturating_sub(self.recv.datagrams)
    }
}

/// The frame every reader gets: `frame` packets, distinct bytes each.
fn make_frame(cfg: &Config) -> Vec<Vec<u8>> {
    (0..cfg.frame)
        .map(|i| {
            let len = if i + 1 == cfg.frame { cfg.last } else { cfg.packet };
            (0..len).map(|j| (i * 31 + j) as u8).collect()
        })
        .collect()
}

fn run_sender(
    path: Path,
    cfg: &Config,
    duration: Duration,
    sock: &UdpSocket,
    dests: &[RawAddr],
) -> Result<SendStats> {
    if let Err(e) = manifold_sys::pin_to_cpu(cfg.sender_cpu) {
        eprintln!("warning: cannot pin sender to CPU {}: {e}", cfg.sender_cpu);
    }
    let frame = make_frame(cfg);
    let iov: Vec<IoSlice<'_>> = frame.iter().map(|p| IoSlice::new(p)).collect();
    let per_frame = cfg.frame as u64;
    let mut mmsg = MmsgSender::new(cfg.mmsg_batch);
    let mut ring = match path {
        Path::Uring | Path::UringGro => Some(UringSender::new(cfg.uring_entries)?),
        _ => None,
    };
    let readers = dests.len() as u64;
    let calls_per_fanout = |batch: usize| readers.div_ceil(batch as u64);
    let mut s = SendStats::default();
    let cpu0 = thread_cpu_time();
    let start = Instant::now();
    let deadline = start + duration;
    // Check the clock once per frame: a frame to all readers is the unit of work.
    while Instant::now() < deadline {
        match path {
            Path::SendTo => {
                for p in &frame {
                    for d in dests {
                        match send_to(sock, p, d) {
                            Ok(_) => s.sent += 1,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.would_block += 1,
                            Err(_) => s.failed += 1,
                        }
                    }
                }
                s.syscalls += readers * per_frame;
            }
            Path::Sendmmsg => {
                for p in &iov {
                    let r = mmsg.send_to_many(sock, std::slice::from_ref(p), dests)?;
                    s.sent += r.sent as u64;
                    s.failed += r.failed as u64;
                    s.would_block += (dests.len() - r.consumed()) as u64;
                }
                s.syscalls += calls_per_fanout(mmsg.batch()) * per_frame;
            }
            Path::Gso | Path::GsoGro => {
                for d in dests {
                    match send_gso(sock, d, &iov) {
                        Ok(_) => s.sent += per_frame,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            s.would_block += per_frame
                        }
                        Err(_) => s.failed += per_frame,
                    }
                }
                s.syscalls += readers;
            }
            Path::MmsgGso | Path::MmsgGsoGro => {
                let r = mmsg.send_gso_to_many(sock, &iov, dests)?;
                s.sent += r.sent as u64 * per_frame;
                s.failed += r.failed as u64 * per_frame;
                s.would_block += (dests.len() - r.consumed()) as u64 * per_frame;
                s.syscalls += calls_per_fanout(mmsg.batch());
            }
            Path::Uring | Path::UringGro => {
                let ring = ring.as_mut().ok_or("no ring")?;
                let entries = ring.entries();
                for o in ring.send_gso_to_many(sock, &iov, dests)? {
                    match o {
                        SendOutcome::Sent(_) => s.sent += per_frame,
                        SendOutcome::WouldBlock => s.would_block += per_frame,
                        SendOutcome::Failed(_) => s.failed += per_frame,
                    }
                }
                s.syscalls += calls_per_fanout(entries);
            }
        }
        s.frames += 1;
    }
    s.wall = start.elapsed();
    s.cpu = thread_cpu_time().saturating_sub(cpu0);
    Ok(s)
}

fn run_receiver(
    socks: &[UdpSocket],
    gro: bool,
    cpu: usize,
    ready: &Barrier,
    stop: &AtomicBool,
) -> io::Result<RecvStats> {
    let pinned = manifold_sys::pin_to_cpu(cpu);
    let setup = (|| {
        let epoll = Epoll::new()?;
        for (i, s) in socks.iter().enumerate() {
            epoll.add(s, i as u64, false)?;
        }
        Ok::<_, io::Error>(epoll)
    })();
    // Release the sender even if setup failed, so the phase ends instead of hanging.
    ready.wait();
    if let Err(e) = pinned {
        eprintln!("warning: cannot pin receiver to CPU {cpu}: {e}");
    }
    let epoll = setup?;
    let mut batch = RecvBatch::new(16, if gro { 65_535 } else { 2048 });
    let mut events = epoll::events(512);
    let mut r = RecvStats::default();
    let cpu0 = thread_cpu_time();
    loop {
        let ready = epoll.wait(&mut events, 20)?;
        if ready == 0 {
            // Loopback delivery is done by the time the sender returns: idle after stop means
            // every queue is drained.
            if stop.load(Ordering::Acquire) {
                break;
            }
            continue;
        }
        for event in &events[..ready] {
            let Some(sock) = socks.get(event.u64 as usize) else {
                continue;
            };
            // Level-triggered: one batch per ready socket per round is fair and skips the
            // extra EAGAIN call; leftovers come back in the next round.
            match batch.recv(sock) {
                Ok(_) => {
                    for m in batch.messages() {
                        r.messages += 1;
                        r.datagrams += m.datagram_count() as u64;
                        r.bytes += m.data.len() as u64;
                        r.truncated += u64::from(m.truncated);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
    r.cpu = thread_cpu_time().saturating_sub(cpu0);
    Ok(r)
}

/// One round of one path: fresh sockets, `duration` of sending, then drain.
fn run_path(path: Path, cfg: &Config, duration: Duration, ksoftirqd: Option<u32>) -> Result<Row> {
    let socks = (0..cfg.readers)
        .map(|_| -> Result<UdpSocket> {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_nonblocking(true)?;
            if let Some(bytes) = cfg.rcvbuf {
                sys::set_rcvbuf(s.as_raw_fd(), bytes)?;
            }
            if path.gro() {
                set_gro(&s, true)?;
            }
            Ok(s)
        })
        .collect::<Result<Vec<_>>>()?;
    let dests =
        socks.iter().map(|s| Ok(RawAddr::from(s.local_addr()?))).collect::<Result<Vec<_>>>()?;
    let sender = UdpSocket::bind("127.0.0.1:0")?;
    let ready = Barrier::new(2);
    let stop = AtomicBool::new(false);
    let (send, recv, before, after) = std::thread::scope(|scope| {
        let rx = scope.spawn(|| run_receiver(&socks, path.gro(), cfg.receiver_cpu, &ready, &stop));
        ready.wait();
        let before = cpu_counters(cfg.sender_cpu, ksoftirqd);
        let send = std::thread::scope(|inner| {
            inner
                .spawn(|| {
                    run_sender(path, cfg, duration, &sender, &dests).map_err(|e| e.to_string())
                })
                .join()
        });
        let after = cpu_counters(cfg.sender_cpu, ksoftirqd);
        stop.store(true, Ordering::Release);
        let recv = rx.join();
        (send, recv, before, after)
    });
    let send = send.map_err(|_| "sender thread panicked")??;
    let recv = recv.map_err(|_| "receiver thread panicked")??;
    let ticks = |t: u64| Duration::from_secs_f64(t as f64 / TICKS_PER_SEC);
    let mut row = Row {
        path,
        send,
        recv,
        softirq: ticks(after.softirq_ticks.saturating_sub(before.softirq_ticks)),
        ksoftirqd: ticks(after.ksoftirqd_ticks.saturating_sub(before.ksoftirqd_ticks)),
        per_round: Vec::new(),
    };
    row.per_round.push(row.delivered_per_cpu_s());
    Ok(row)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    // Print errors with Display: the usage text has newlines.
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let cfg = parse_args()?;
    let (nofile, _) = manifold_sys::limits::raise_nofile()?;
    if (cfg.readers as u64) + 64 > nofile {
        return Err(format!(
            "{} readers need more than the open-files limit {nofile}",
            cfg.readers
        )
        .into());
    }
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = cpu_model();
    let kernel = sys::uname();
    let ksoftirqd = ksoftirqd_pid(cfg.sender_cpu);
    let command: Vec<String> = std::env::args().collect();
    let load_before = loadavg();

    // Round-robin over the paths so that load changing during the run (other builds on these
    // shared cores) falls on every path alike.
    let slice = cfg.duration / cfg.rounds as u32;
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..cfg.rounds {
        for &path in &cfg.paths {
            eprintln!("round {}/{}: {} for {slice:?}", round + 1, cfg.rounds, path.name());
            let row = run_path(path, &cfg, slice, ksoftirqd)?;
            match rows.iter_mut().find(|r| r.path == path) {
                Some(r) => r.merge(row),
                None => rows.push(row),
            }
        }
    }
    let load_after = loadavg();
    let base = rows.iter().find(|r| r.path == Path::SendTo).map(Row::delivered_per_cpu_s);
    let base_adj = rows.iter().find(|r| r.path == Path::SendTo).map(Row::delivered_per_adj_cpu_s);

    println!("command: `{}`", command.join(" "));
    println!();
    println!(
        "- machine: nproc {nproc}; CPU {cpu}; kernel {kernel}; open files soft limit {nofile}"
    );
    println!(
        "- conditions: {} readers on 127.0.0.1, {}-byte datagrams (last of each frame {}), \
         frames of {}, {:?} per path in {} interleaved rounds, sender pinned to CPU {}, \
         receiver thread pinned to CPU {}, receive buffers {}",
        cfg.readers,
        cfg.packet,
        cfg.last,
        cfg.frame,
        cfg.duration,
        cfg.rounds,
        cfg.sender_cpu,
        cfg.receiver_cpu,
        match cfg.rcvbuf {
            Some(b) => format!("SO_RCVBUF {b} (the kernel doubles it)"),
            None => format!(
                "net.core.rmem_default {}",
                std::fs::read_to_string("/proc/sys/net/core/rmem_default")
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default()
            ),
        }
    );
    println!("- load average before {load_before}, after {load_after}");
    println!();
    println!(
        "| path | sender CPU s | sent | delivered | lost | **delivered / sender CPU-s** | vs sendto | rounds min–max | ksoftirqd/{} s | delivered / (sender + ksoftirqd) CPU-s | vs sendto | sent / sender CPU-s | delivered / wall-s | datagrams / syscall | receiver CPU % |",
        cfg.sender_cpu
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in &rows {
        let ratio = base.map_or("n/a".into(), |b| format!("{:.2}×", r.delivered_per_cpu_s() / b));
        let ratio_adj =
            base_adj.map_or("n/a".into(), |b| format!("{:.2}×", r.delivered_per_adj_cpu_s() / b));
        let (lo, hi) = r.round_spread();
        println!(
            "| {} | {:.3} | {} | {} | {} | **{}** | {} | {}–{} | {:.2} | {} | {} | {} | {} | {:.1} | {:.0}% |",
            r.path.name(),
            r.send.cpu.as_secs_f64(),
            r.send.sent,
            r.recv.datagrams,
            r.lost(),
            fmt_rate(r.delivered_per_cpu_s()),
            ratio,
            fmt_rate(lo),
            fmt_rate(hi),
            r.ksoftirqd.as_secs_f64(),
            fmt_rate(r.delivered_per_adj_cpu_s()),
            ratio_adj,
            fmt_rate(r.sent_per_cpu_s()),
            fmt_rate(r.delivered_per_wall_s()),
            r.datagrams_per_syscall(),
            100.0 * r.recv.cpu.as_secs_f64() / r.send.wall.as_secs_f64().max(1e-9),
        );
    }
    println!();
    for r in &rows {
        println!("- `{}`: {}", r.path.name(), r.path.describe(&cfg));
    }
    for r in &rows {
        if r.send.failed > 0 || r.send.would_block > 0 || r.recv.truncated > 0 {
            println!(
                "\nnote: {}: {} datagrams refused, {} would-block, {} truncated messages",
                r.path.name(),
                r.send.failed,
                r.send.would_block,
                r.recv.truncated
            );
        }
    }

    if cfg.json {
        let mut j = String::new();
        let _ = write!(
            j,
            "{{\"command\":{},\"nproc\":{nproc},\"cpu\":{},\"kernel\":{},\"readers\":{},\"packet\":{},\"last\":{},\"frame\":{},\"rcvbuf\":{},\"duration_s\":{},\"rounds\":{},\"mmsg_batch\":{},\"uring_entries\":{},\"loadavg_before\":{},\"loadavg_after\":{},\"paths\":[",
            json_str(&command.join(" ")),
            json_str(&cpu),
            json_str(&kernel),
            cfg.readers,
            cfg.packet,
            cfg.last,
            cfg.frame,
            cfg.rcvbuf.map_or("null".into(), |b| b.to_string()),
            cfg.duration.as_secs_f64(),
            cfg.rounds,
            cfg.mmsg_batch,
            cfg.uring_entries,
            json_str(&load_before),
            json_str(&load_after),
        );
        for (i, r) in rows.iter().enumerate() {
            let rounds: Vec<String> = r.per_round.iter().map(|x| format!("{x:.0}")).collect();
            let _ = write!(
                j,
                "{}{{\"path\":{},\"sender_cpu_s\":{:.6},\"wall_s\":{:.6},\"frames\":{},\"sent\":{},\"failed\":{},\"would_block\":{},\"syscalls\":{},\"delivered\":{},\"messages\":{},\"bytes\":{},\"receiver_cpu_s\":{:.6},\"softirq_s\":{:.2},\"ksoftirqd_s\":{:.2},\"delivered_per_cpu_s\":{:.0},\"sent_per_cpu_s\":{:.0},\"delivered_per_adj_cpu_s\":{:.0},\"per_round\":[{}],\"vs_sendto\":{}}}",
                if i == 0 { "" } else { "," },
                json_str(r.path.name()),
                r.send.cpu.as_secs_f64(),
                r.send.wall.as_secs_f64(),
                r.send.frames,
                r.send.sent,
                r.send.failed,
                r.send.would_block,
                r.send.syscalls,
                r.recv.datagrams,
                r.recv.messages,
                r.recv.bytes,
                r.recv.cpu.as_secs_f64(),
                r.softirq.as_secs_f64(),
                r.ksoftirqd.as_secs_f64(),
                r.delivered_per_cpu_s(),
                r.sent_per_cpu_s(),
                r.delivered_per_adj_cpu_s(),
                rounds.join(","),
                base.map_or("null".into(), |b| format!(
                    "{:.3}",
                    r.delivered_per_cpu_s() / b
                )),
            );
        }
        j.push_str("]}");
        println!("\n{j}");
    }
    Ok(())
}
