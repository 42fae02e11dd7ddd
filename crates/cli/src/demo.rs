//! `manifold demo`: the relay serving the synthetic stream, and the load generator's clients
//! against it, in one command.
//!
//! The relay runs as a child process (this binary, `serve`): its own glommio pool, its own
//! locked-memory and open-file budget, and a clean SIGTERM shutdown at the end. The
//! generator runs in this process against `rtsp://127.0.0.1:PORT/demo`.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use manifold_load::args::parse_duration;
use manifold_load::{LoadArgs, TransportChoice};

/// The stream path the demo relay serves.
const DEMO_PATH: &str = "/demo";
/// How long the relay gets to come up.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long the relay gets to shut down after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Flags of `manifold demo`; the defaults are the README's demo.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Simulated clients (concurrent sessions).
    #[arg(long, short = 'c', default_value_t = 1000)]
    clients: u32,
    /// Length of the load run.
    #[arg(long, short = 'd', default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// The clients arrive evenly over this time (at most half the duration).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    ramp: Duration,
    /// Media transport of the clients: `udp`, `tcp`, or `mix:PERCENT` (that share over UDP).
    #[arg(long, short = 't', default_value = "mix:50")]
    transport: TransportChoice,
    /// Bitrate of the synthetic stream in bit/s (default: the clip's own, ~150 kbit/s).
    #[arg(long)]
    bitrate: Option<u64>,
    /// Relay shards (default: every online CPU).
    #[arg(long)]
    relay_cores: Option<usize>,
    /// Generator shards (default: every online CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// A pass/fail threshold as in `manifold load` (repeatable); none by default.
    #[arg(long = "threshold")]
    thresholds: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the interval histograms (HdrHistogram log) to this file.
    #[arg(long)]
    hlog: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    quiet: bool,
}

/// The relay child; SIGTERMed (then killed) if dropped while running, so no error path
/// leaves it behind.
struct RelayChild {
    child: Child,
}

impl RelayChild {
    /// SIGTERM, then the exit status; killed after [`STOP_LIMIT`].
    fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        manifold_sys::process::send_signal(self.child.id(), libc::SIGTERM)
            .context("signalling the relay")?;
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait()?;
                bail!("the relay did not stop within {STOP_LIMIT:?} of SIGTERM; killed ({status})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RelayChild {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && self.stop().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `manifold serve` with the synthetic stream on a free loopback port; returns it
/// once it accepts connections.
fn start_relay(args: &DemoArgs) -> anyhow::Result<(RelayChild, SocketAddr)> {
    // Best effort: the generator raises its own limit anyway, and reports what fits.
    if let Err(e) = manifold_sys::limits::raise_nofile() {
        eprintln!("manifold demo: cannot raise the open-file limit: {e}");
    }
    let exe = std::env::current_exe().context("finding this binary to run the relay")?;
    let mut command = Command::new(exe);
    command.args(["serve", "--listen", "127.0.0.1:0", "--synthetic", DEMO_PATH]);
    if let Some(cores) = args.relay_cores {
        command.arg("--cores").arg(cores.to_string());
    }
    if let Some(bitrate) = args.bitrate {
        command.arg("--synthetic-bitrate").arg(bitrate.to_string());
    }
    // The relay's info lines would scroll the progress away; the user's RUST_LOG wins.
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    manifold_sys::process::die_with_parent(&mut command);
    let mut child = command.spawn().context("starting the relay (manifold serve)")?;
    let stdout = child.stdout.take().context("the relay's stdout")?;
    let mut relay = RelayChild { child };

    // The relay prints `listening on ADDR` once every shard listens; keep draining its
    // stdout afterwards so it never blocks on a full pipe.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let deadline = Instant::now() + START_LIMIT;
    let addr: SocketAddr = loop {
        if let Some(status) = relay.child.try_wait()? {
            bail!("the relay exited before it listened ({status})");
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(a) => break a.parse().with_context(|| format!("relay address `{a}`"))?,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => bail!("the relay did not listen within {START_LIMIT:?}"),
        }
    };
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("the relay at {addr} does not accept connections");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((relay, addr))
}

/// Runs the demo; the exit code is the load run's (0 pass, 99 a threshold failed).
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (mut relay, addr) = start_relay(&args)?;
    let url = format!("rtsp://{addr}{DEMO_PATH}");
    let mut load = LoadArgs::new(url.clone());
    load.clients = args.clients;
    load.duration = args.duration;
    // A ramp longer than half the run would leave little time at full load.
    load.ramp = args.ramp.min(args.duration / 2);
    load.transport = args.transport;
    load.shards = args.shards;
    load.thresholds = args.thresholds.clone();
    load.json = args.json.clone();
    load.hlog = args.hlog.clone();
    load.quiet = args.quiet;
    // The relay is ours and local: the report shows what the run cost it.
    load.server_pids = vec![relay.child.id()];
    eprintln!(
        "manifold demo: relay (pid {}) serving the synthetic H.264 stream at {url}; \
         {} clients ({}) arriving over {:.1}s, for {:.1}s",
        relay.child.id(),
        load.clients,
        load.transport,
        load.ramp.as_secs_f64(),
        load.duration.as_secs_f64(),
    );
    let outcome = manifold_load::run(load);
    let status = relay.stop()?;
    let outcome = outcome.map_err(|e| anyhow::anyhow!("load generator: {e}"))?;
    if !status.success() {
        bail!("the relay exited with {status}");
    }
    eprintln!("manifold demo: relay stopped cleanly");
    Ok(crate::exit_code(outcome.exit_code()))
}
