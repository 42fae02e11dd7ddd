//! `manifold`: the relay (`serve`) and, later, the load generator, in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    Serve(ServeArgs),
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
    /// Shards, one per core (default: every online CPU).
    #[arg(long)]
    cores: Option<usize>,
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
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
