//! `manifold`: the relay (`serve`), the load generator (`load`), the synthetic publisher
//! (`source`), the one-command `demo`, and the report tools (`merge`, `compare`), in one binary.

mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use manifold_relay::ServeConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// manifold: an RTSP/RTP relay and an RTSP load generator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay: accept publishers and readers, fan streams out.
    Serve(Box<ServeArgs>),
    /// Simulate RTSP clients against any RTSP server and report what they experienced.
    Load(Box<manifold_load::LoadArgs>),
    /// Publish the synthetic H.264 stream (capture-time stamped) to an RTSP server, or send
    /// it as plain RTP/UDP to rtp://HOST:PORT.
    Source(manifold_load::SourceArgs),
    /// The relay with a synthetic stream and 1,000 simulated clients, in one command.
    Demo(demo::DemoArgs),
    /// One report (and thresholds) from the interval logs (`--hlog`) of several runs.
    Merge(manifold_load::merge::MergeArgs),
    /// Compare two JSON reports; exit 99 when a metric regressed more than allowed.
    Compare(manifold_load::compare::CompareArgs),
    /// Draw the latency percentile spectrum of a JSON report or an hlog as SVG.
    Plot(manifold_load::plot::PlotArgs),
}

/// Flags of `manifold serve`; each overrides the config file's value.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file (every flag has a key of the same name, with `_` for `-`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address every shard listens on for RTSP (default 0.0.0.0:8554; port 0 picks one).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Shards, one per core (default: every online CPU, or one per --cpus CPU).
    #[arg(long)]
    cores: Option<usize>,
    /// Pin the shards to exactly these CPUs, shard i to the i-th: a list like `1`, `0,1`,
    /// `2-3` or `0-1,6` (default: spread over every online CPU). --cores defaults to their
    /// count (and must equal it if given); each CPU must be online. In the config file:
    /// `cpus = [1]` or `cpus = "2-3"`.
    #[arg(long, value_name = "LIST", value_parser = manifold_relay::parse_cpu_list)]
    cpus: Option<RelayCpus>,
    /// Serve the built-in synthetic H.264 stream at this path (repeatable), e.g. /demo.
    #[arg(long)]
    synthetic: Vec<String>,
    /// Bitrate of the synthetic streams in bit/s (default: the clip's own, ~150 kbit/s).
    #[arg(long)]
    synthetic_bitrate: Option<u64>,
    /// Session timeout in seconds (default 60).
    #[arg(long)]
    session_timeout_secs: Option<u64>,
    /// Turn the GOP cache off: new readers wait for the next keyframe.
    #[arg(long)]
    no_gop_cache: bool,
    /// Serve Prometheus metrics (/metrics) and JSON (/api/v1/streams) on this address,
    /// e.g. 127.0.0.1:9090.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Most RTSP connections from one IP address (default 100); more are closed.
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Most RTSP sessions open at once (default 10000); a SETUP beyond gets 503.
    #[arg(long)]
    max_sessions: Option<usize>,
    /// Most RTSP sessions open at once from one IP address (default 1000; loopback exempt
    /// unless --limit-loopback); a SETUP beyond gets 503. Raise it for a load generator on
    /// another host.
    #[arg(long)]
    max_sessions_per_ip: Option<usize>,
    /// Publishing to a live path closes the old publisher instead of answering 403.
    #[arg(long)]
    publish_replace: bool,
    /// Also take RTSP over HTTP (the QuickTime tunnel) on this address, e.g. 0.0.0.0:8080
    /// (the RTSP port takes it too).
    #[arg(long, value_name = "ADDR")]
    http_tunnel_listen: Option<SocketAddr>,
    /// Serve RTSPS (RTSP over TLS; conventionally port 322) here, e.g. 0.0.0.0:322: interleaved
    /// or UDP media, and RTSP over HTTPS tunnels. Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    rtsps_listen: Option<SocketAddr>,
    /// Serve RTMPS publishers (RTMP over TLS, e.g. 0.0.0.0:1936) with --tls-cert and
    /// --tls-key; `rtmps://host:PORT/APP/STREAM` publishes `/APP/STREAM` like rtmp://.
    #[arg(long, value_name = "ADDR")]
    rtmps_listen: Option<SocketAddr>,
    /// The PEM certificate chain (leaf first) of --rtsps-listen and --rtmps-listen; SIGHUP
    /// reloads it.
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert; SIGHUP reloads it.
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Accept RTMP publishers here (e.g. 0.0.0.0:1935): rtmp://host/APP/STREAM publishes the
    /// RTSP path /APP/STREAM (credentials: ?user=U&pass=P on the URL).
    #[arg(long, value_name = "ADDR")]
    rtmp_listen: Option<SocketAddr>,
    /// Accept RTMPT publishers here (RTMP over HTTP, e.g. 0.0.0.0:8080):
    /// rtmpt://host:PORT/APP/STREAM publishes /APP/STREAM like rtmp://.
    #[arg(long, value_name = "ADDR")]
    rtmpt_listen: Option<SocketAddr>,
    /// Ask this HTTP endpoint who may read and publish: a POST of
    /// {user, password, path, action, ip, protocol} as JSON; a 2xx allows, anything else
    /// (or no answer within 3 s) denies. Replaces the config's [[user]] tables.
    #[arg(long, value_name = "URL")]
    auth_hook: Option<String>,
    /// Apply --max-connections-per-ip to loopback peers too (by default they are exempt).
    #[arg(long)]
    limit_loopback: bool,
    /// Offer multicast to readers, with groups from this IPv4 range, e.g. 239.255.42.0/24.
    #[arg(long)]
    multicast_range: Option<String>,
    /// Pull an upstream RTSP stream to a path (repeatable): PATH=URL, options after `#`,
    /// comma-separated: `udp` (default `tcp`: interleaved), `on-demand`, `basic` (answer a
    /// Basic-only upstream with the password in clear); e.g.
    /// /cam=rtsp://user:pass@10.0.0.5/stream#udp,on-demand.
    #[arg(long, value_parser = manifold_relay::PullConfig::parse_arg)]
    pull: Vec<manifold_relay::PullConfig>,
    /// Be an origin that sends readers to this edge (repeatable): rtsp://HOST:PORT#metrics=PORT,
    /// the edge's metrics endpoint (on the same host) telling its load. A reader's DESCRIBE
    /// gets 302 to the least-loaded healthy edge; publishers and the edges are served here.
    #[arg(long, value_name = "URL")]
    redirect_to: Vec<String>,
    /// Be an edge of the relay at this URL (rtsp://[user:pass@]host:port): a path nobody
    /// publishes here is pulled from it when a reader asks, and dropped after the last leaves.
    #[arg(long, value_name = "URL")]
    origin: Option<String>,
    /// Seconds an on-demand pull stays up after its last reader left (default 10).
    #[arg(long)]
    pull_grace_secs: Option<u64>,
    /// Receive raw RTP for a path (repeatable): PATH=ADDR:PORT (RTCP on PORT+1), each with
    /// an --rtp-sdp file, in the same order.
    #[arg(long)]
    rtp: Vec<String>,
    /// The SDP file describing the matching --rtp input (e.g. from ffmpeg -sdp_file).
    #[arg(long)]
    rtp_sdp: Vec<PathBuf>,
    /// Seconds a stream keeps its readers after its RTSP publisher left, for a republish with
    /// a compatible SDP to continue it (default 10; 0: readers get BYE at once).
    #[arg(long)]
    publish_grace_secs: Option<u64>,
}

/// A `--cpus` value: clap would read a bare `Vec` as "the flag repeated".
type RelayCpus = Vec<usize>;

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args).map(|()| ExitCode::SUCCESS),
        Command::Load(args) => Ok(load(*args)),
        Command::Source(args) => source(&args),
        Command::Demo(args) => demo::run(args),
        Command::Merge(args) => Ok(merge(&args)),
        Command::Compare(args) => Ok(compare(&args)),
        Command::Plot(args) => {
            manifold_load::plot::plot(&args).context("manifold plot")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An exit code from the library's `i32` codes (0, 1, 99).
fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn source(args: &manifold_load::SourceArgs) -> anyhow::Result<ExitCode> {
    let stats = manifold_load::run_source(args).context("manifold source")?;
    if !args.quiet {
        eprintln!(
            "manifold source: sent {} frames, {} packets, {} bytes, {} failed sends",
            stats.frames, stats.packets, stats.bytes, stats.send_errors
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn merge(args: &manifold_load::merge::MergeArgs) -> ExitCode {
    let report = match manifold_load::merge::merge(&args.hlogs, &args.thresholds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("manifold merge: {e}");
            return exit_code(e.exit_code());
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        if let Err(e) = std::fs::write(path, report.to_json()) {
            eprintln!("manifold merge: writing {}: {e}", path.display());
            return exit_code(manifold_load::EXIT_ERROR);
        }
    }
    exit_code(report.exit_code())
}

fn compare(args: &manifold_load::compare::CompareArgs) -> ExitCode {
    use manifold_load::compare;
    match compare::read_pair(&args.base, &args.new) {
        Ok((base, new)) => {
            let c = compare::compare(&base, &new, args);
            print!("{}", c.table());
            exit_code(c.exit_code())
        }
        Err(e) => {
            eprintln!("manifold compare: {e}");
            exit_code(e.exit_code())
        }
    }
}

fn load(args: manifold_load::LoadArgs) -> ExitCode {
    match manifold_load::run(args) {
        Ok(outcome) => exit_code(outcome.exit_code()),
        Err(e) => {
            eprintln!("manifold load: {e}");
            exit_code(e.exit_code())
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            toml::from_str::<ServeConfig>(&text)
                .with_context(|| format!("parsing config {}", path.display()))?
        }
        None => ServeConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(cores) = args.cores {
        config.cores = cores;
    }
    if let Some(cpus) = args.cpus {
        config.cpus = cpus;
        if args.cores.is_none() {
            // --cpus alone: one shard per listed CPU, whatever the file said about cores.
            config.cores = 0;
        }
    }
    if !args.synthetic.is_empty() {
        config.synthetic = args.synthetic;
    }
    if let Some(t) = args.session_timeout_secs {
        config.session_timeout_secs = t;
    }
    if args.synthetic_bitrate.is_some() {
        config.synthetic_bitrate = args.synthetic_bitrate;
    }
    if args.no_gop_cache {
        config.gop_cache = false;
    }
    if args.metrics.is_some() {
        config.metrics = args.metrics;
    }
    if let Some(n) = args.max_connections_per_ip {
        config.max_connections_per_ip = n;
    }
    if let Some(n) = args.max_sessions {
        config.max_sessions = n;
    }
    if let Some(n) = args.max_sessions_per_ip {
        config.max_sessions_per_ip = n;
    }
    if args.publish_replace {
        config.publish_replace = true;
    }
    if args.auth_hook.is_some() {
        config.auth_hook = args.auth_hook;
    }
    if args.rtmp_listen.is_some() {
        config.rtmp_listen = args.rtmp_listen;
    }
    if args.rtmpt_listen.is_some() {
        config.rtmpt_listen = args.rtmpt_listen;
    }
    if args.http_tunnel_listen.is_some() {
        config.http_tunnel_listen = args.http_tunnel_listen;
    }
    if args.rtsps_listen.is_some() {
        config.rtsps_listen = args.rtsps_listen;
    }
    if args.rtmps_listen.is_some() {
        config.rtmps_listen = args.rtmps_listen;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
    }
    if args.tls_key.is_some() {
        config.tls_key = args.tls_key;
    }
    if args.limit_loopback {
        config.limit_loopback = true;
    }
    if args.multicast_range.is_some() {
        config.multicast_range = args.multicast_range;
    }
    if !args.pull.is_empty() {
        config.pull = args.pull;
    }
    if !args.redirect_to.is_empty() {
        config.redirect_to = args.redirect_to;
    }
    if args.origin.is_some() {
        config.origin = args.origin;
    }
    if let Some(g) = args.pull_grace_secs {
        config.pull_grace_secs = g;
    }
    if let Some(g) = args.publish_grace_secs {
        config.publish_grace_secs = g;
    }
    if args.rtp.len() != args.rtp_sdp.len() {
        anyhow::bail!(
            "each --rtp needs one --rtp-sdp (got {} and {})",
            args.rtp.len(),
            args.rtp_sdp.len()
        );
    }
    if !args.rtp.is_empty() {
        config.rtp = args
            .rtp
            .iter()
            .zip(args.rtp_sdp)
            .map(|(a, sdp)| manifold_relay::RtpInput::parse_arg(a, sdp))
            .collect::<Result<_, _>>()?;
    }
    manifold_relay::serve(config, |addr| {
        // Scripts and tests read the bound address from this line.
        println!("listening on {addr}");
    })
    .context("manifold serve")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_has_pulls_and_rtp_inputs() {
        let config: ServeConfig = toml::from_str(
            "pull_grace_secs = 5\n\
             [[pull]]\npath = \"/cam\"\nurl = \"rtsp://10.0.0.5/s\"\n\
             [[pull]]\npath = \"/lazy\"\nurl = \"rtsp://h/s\"\ntransport = \"udp\"\non_demand = true\n\
             [[rtp]]\npath = \"/raw\"\nlisten = \"0.0.0.0:5004\"\nsdp = \"raw.sdp\"\n",
        )
        .unwrap();
        assert_eq!(config.pull_grace_secs, 5);
        assert_eq!(config.pull.len(), 2);
        assert_eq!(config.pull[0].transport, manifold_relay::PullTransport::Tcp);
        assert!(!config.pull[0].on_demand);
        assert_eq!(config.pull[1].transport, manifold_relay::PullTransport::Udp);
        assert!(config.pull[1].on_demand);
        assert_eq!(config.rtp[0].listen, "0.0.0.0:5004".parse().unwrap());
        assert!(toml::from_str::<ServeConfig>("[[pull]]\npath = \"/a\"\nurl = \"x\"\nfoo = 1\n")
            .is_err());
    }

    #[test]
    fn config_file_pins_cpus_as_list_or_text() {
        let config: ServeConfig = toml::from_str("cpus = [1]\n").unwrap();
        assert_eq!((config.cores, config.cpus), (0, vec![1]));
        let config: ServeConfig = toml::from_str("cores = 2\ncpus = \"0-1\"\n").unwrap();
        assert_eq!((config.cores, config.cpus), (2, vec![0, 1]));
        assert!(toml::from_str::<ServeConfig>("cpus = \"1-0\"\n").is_err());
    }

    #[test]
    fn cpus_flag_parses_and_sets_the_shard_count() {
        let cli = Cli::try_parse_from(["manifold", "serve", "--cpus", "0-1"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert_eq!(args.cpus, Some(vec![0, 1]));
        assert!(Cli::try_parse_from(["manifold", "serve", "--cpus", "1,1"]).is_err());
    }

    #[test]
    fn config_file_covers_the_flags() {
        let config: ServeConfig = toml::from_str(
            "listen = \"127.0.0.1:9554\"\ncores = 2\nsynthetic = [\"/demo\"]\n\
             session_timeout_secs = 30\nreader_queue_packets = 100\n",
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9554".parse().unwrap());
        assert_eq!(config.cores, 2);
        assert_eq!(config.synthetic, ["/demo"]);
        assert_eq!(config.session_timeout_secs, 30);
        assert_eq!(config.reader_queue_packets, 100);
        assert_eq!(config.io_memory, ServeConfig::default().io_memory);
        assert!(
            toml::from_str::<ServeConfig>("lisen = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }
}
