//! `manifold-perf-blaster`: the perf harness's "physical limit". It receives a plain RTP/UDP
//! stream (e.g. `manifold source rtp://…`, described by the SDP file the source wrote) and
//! serves it to RTSP readers at any path, doing no protocol work on the packet path: one
//! pinned thread receives each packet and sends it to every playing reader (see `packet`),
//! while a minimal but real RTSP control plane runs on another thread (see `control`).
//!
//! ```text
//! manifold-perf-blaster --listen 127.0.0.1:0 --rtp-in 127.0.0.1:5004 --sdp src.sdp \
//!     --send sendto|sendmmsg|gso|gso-mmsg [--cpu N] [--control-cpu M] [--verbose]
//! ```
//!
//! Stdout carries exactly two lines: `LISTEN <ip:port>` once the RTSP port listens, and on
//! SIGTERM/SIGINT a one-line JSON summary (`received`, `datagrams_sent`, `send_errors`,
//! `tcp_dropped`, `readers_max`, plus `tcp_sent`, `send_calls` and `send`), after which it
//! exits 0. Bad flags exit 2 with usage; a failure to start exits 1 with the reason on
//! stderr.

mod control;
mod packet;
mod sys;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::Context as _;
use clap::Parser;
use socket2::{Domain, Protocol, Socket, Type};

use crate::control::{ControlPlane, StreamInfo};
use crate::packet::{PacketPath, SendMode, Stats};

/// Receive buffer asked for the source socket (capped by `net.core.rmem_max`).
const SOURCE_RCVBUF: usize = 4 << 20;
/// Send buffer asked for the server-port socket (capped by `net.core.wmem_max`).
const SEND_SNDBUF: usize = 4 << 20;
/// Pending connections the RTSP listener queues (capped by `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 4096;
/// Attempts at finding a free even/odd server-port pair.
const PAIR_ATTEMPTS: usize = 64;

/// Raw RTP fan-out to RTSP readers with no protocol work on the packet path.
#[derive(Debug, Parser)]
#[command(name = "manifold-perf-blaster", version)]
struct Args {
    /// RTSP listen address, e.g. 127.0.0.1:0 (the bound address is printed as `LISTEN`).
    #[arg(long)]
    listen: SocketAddr,
    /// Where the source's RTP arrives, e.g. 127.0.0.1:5004 (the next port is bound for its
    /// RTCP, which is ignored).
    #[arg(long)]
    rtp_in: SocketAddr,
    /// The source's SDP file (served by DESCRIBE, controls rewritten to `trackID=N`).
    #[arg(long)]
    sdp: PathBuf,
    /// How UDP readers are sent to.
    #[arg(long, value_enum)]
    send: SendMode,
    /// CPU the packet thread is pinned to.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// CPU the control-plane thread is pinned to (default: not pinned).
    #[arg(long)]
    control_cpu: Option<usize>,
    /// Log connections and readers to stderr.
    #[arg(long, short)]
    verbose: bool,
}

fn main() {
    let args = match Args::try_parse() {
        Ok(args) => args,
        // --help and --version: printed to stdout, exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // Bad flags: the error and the usage, exit 2.
            let _ = e.print();
            eprintln!("\n{}", <Args as clap::CommandFactory>::command().render_usage());
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("manifold-perf-blaster: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    manifold_sys::limits::raise_nofile().context("raising the open-files limit")?;
    // Before any thread exists, so every thread inherits the mask and the signals wait for
    // the main thread's sigwait.
    manifold_sys::signal::block_shutdown_signals().context("blocking SIGINT/SIGTERM")?;

    let text = std::fs::read(&args.sdp)
        .with_context(|| format!("reading the SDP file {}", args.sdp.display()))?;
    let stream =
        StreamInfo::from_sdp(&text).with_context(|| format!("SDP file {}", args.sdp.display()))?;

    let source = udp_socket(args.rtp_in)
        .with_context(|| format!("binding the RTP input {}", args.rtp_in))?;
    let _ = source.set_recv_buffer_size(SOURCE_RCVBUF);
    let source: UdpSocket = source.into();
    source.set_nonblocking(true)?;
    // The source's RTCP: bound so its sender reports meet no ICMP errors, never read.
    let _source_rtcp = match args.rtp_in.port().checked_add(1) {
        Some(port) if args.rtp_in.port() != 0 => {
            let addr = SocketAddr::new(args.rtp_in.ip(), port);
            udp_socket(addr)
                .map_err(|e| eprintln!("manifold-perf-blaster: RTCP input {addr} not bound: {e}"))
                .ok()
        }
        _ => None,
    };

    let (send, _server_rtcp, server_port) = server_ports(args.listen.ip())
        .with_context(|| format!("binding an RTP/RTCP server-port pair on {}", args.listen.ip()))?;
    if args.send == SendMode::Gso || args.send == SendMode::GsoMmsg {
        anyhow::ensure!(
            manifold_udp::gso_supported(&send),
            "--send {:?}: this kernel has no UDP GSO (UDP_SEGMENT)",
            args.send
        );
    }

    let listener = listen(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;

    let (commands_tx, commands_rx) = crossbeam::channel::unbounded();
    let (wake_tx, wake_rx) = UnixDatagram::pair().context("creating the wake-up socket pair")?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let stop_wake = wake_tx.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));

    let path = PacketPath {
        source,
        send,
        payload_types: stream.payload_types.clone(),
        mode: args.send,
        commands: commands_rx,
        wake: wake_rx,
        stop: stop.clone(),
    };
    let cpu = args.cpu;
    let (ready_tx, ready_rx) = mpsc::channel();
    let packet_thread = std::thread::Builder::new()
        .name("blaster-packets".into())
        .spawn(move || -> Stats {
            if let Err(e) = manifold_sys::pin_to_cpu(cpu) {
                let _ = ready_tx.send(Err(format!("pinning the packet thread to CPU {cpu}: {e}")));
                return Stats::default();
            }
            let _ = ready_tx.send(Ok(()));
            match packet::run(path) {
                Ok(stats) => stats,
                Err(e) => {
                    eprintln!("manifold-perf-blaster: packet thread: {e}");
                    std::process::exit(1);
                }
            }
        })
        .context("starting the packet thread")?;
    ready_rx.recv().context("the packet thread did not start")?.map_err(anyhow::Error::msg)?;

    let plane = ControlPlane {
        listener,
        stream,
        server_port,
        commands: commands_tx,
        wake: wake_tx,
        verbose: args.verbose,
    };
    let control_cpu = args.control_cpu;
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("blaster-control".into())
        .spawn(move || {
            if let Some(cpu) = control_cpu {
                if let Err(e) = manifold_sys::pin_to_cpu(cpu) {
                    let _ =
                        ready_tx.send(Err(format!("pinning the control thread to CPU {cpu}: {e}")));
                    return;
                }
            }
            let _ = ready_tx.send(Ok(()));
            if let Err(e) = control::run(plane) {
                eprintln!("manifold-perf-blaster: control plane: {e}");
                std::process::exit(1);
            }
        })
        .context("starting the control thread")?;
    ready_rx.recv().context("the control thread did not start")?.map_err(anyhow::Error::msg)?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "LISTEN {local}")?;
    out.flush()?;
    drop(out);

    let sig = manifold_sys::signal::wait_shutdown_signal().context("waiting for SIGINT/SIGTERM")?;
    if args.verbose {
        eprintln!("manifold-perf-blaster: signal {sig}, stopping");
    }
    stop.store(true, Ordering::Relaxed);
    let _ = stop_wake.send(&[1]);
    let stats = packet_thread.join().map_err(|_| anyhow::anyhow!("the packet thread panicked"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", summary(&stats, args.send))?;
    out.flush()?;
    Ok(())
}

/// The summary line printed at exit.
fn summary(s: &Stats, mode: SendMode) -> String {
    let mode = clap::ValueEnum::to_possible_value(&mode)
        .map_or_else(|| format!("{mode:?}"), |v| v.get_name().to_owned());
    format!(
        "{{\"received\":{},\"datagrams_sent\":{},\"send_errors\":{},\"tcp_dropped\":{},\
         \"readers_max\":{},\"tcp_sent\":{},\"send_calls\":{},\"send\":\"{mode}\"}}",
        s.received,
        s.datagrams_sent,
        s.send_errors,
        s.tcp_dropped,
        s.readers_max,
        s.tcp_sent,
        s.send_calls
    )
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// Binds an even RTP server port and the RTCP port after it on `ip`: UDP readers are sent
/// from the first (non-blocking); the second is bound so readers' RTCP meets no ICMP errors,
/// and never read.
fn server_ports(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket, u16)> {
    let mut last_err =
        std::io::Error::new(std::io::ErrorKind::AddrInUse, "no free RTP/RTCP port pair");
    for _ in 0..PAIR_ATTEMPTS {
        let rtp = udp_socket(SocketAddr::new(ip, 0))?;
        let port = rtp.local_addr()?.as_socket().map_or(0, |a| a.port());
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match udp_socket(SocketAddr::new(ip, port + 1)) {
            Ok(rtcp) => {
                let _ = rtp.set_send_buffer_size(SEND_SNDBUF);
                rtp.set_nonblocking(true)?;
                return Ok((rtp.into(), rtcp.into(), port));
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// The RTSP listener: non-blocking, with a deep accept queue for connection storms.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_one_json_line() {
        let s = Stats {
            received: 1,
            datagrams_sent: 2,
            send_errors: 3,
            tcp_sent: 4,
            tcp_dropped: 5,
            readers_max: 6,
            send_calls: 7,
        };
        assert_eq!(
            summary(&s, SendMode::GsoMmsg),
            "{\"received\":1,\"datagrams_sent\":2,\"send_errors\":3,\"tcp_dropped\":5,\
             \"readers_max\":6,\"tcp_sent\":4,\"send_calls\":7,\"send\":\"gso-mmsg\"}"
        );
    }

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from([
            "b",
            "--listen",
            "127.0.0.1:0",
            "--rtp-in",
            "127.0.0.1:5004",
            "--sdp",
            "x.sdp",
            "--send",
            "gso",
            "--cpu",
            "1",
        ])
        .unwrap();
        assert_eq!(a.send, SendMode::Gso);
        assert_eq!(a.cpu, 1);
        assert!(Args::try_parse_from(["b", "--listen", "127.0.0.1:0"]).is_err());
        assert!(Args::try_parse_from([
            "b",
            "--listen",
            "x",
            "--rtp-in",
            "127.0.0.1:1",
            "--sdp",
            "s",
            "--send",
            "gso"
        ])
        .is_err());
    }
}
