//! Command-line flags of `manifold load` ([`LoadArgs`]) and the small value parsers they use
//! (durations, rates, transports, hold-time distributions).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::schedule::Hold;

/// `manifold load URL`: simulated RTSP clients against any RTSP server.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The RTSP URL to play, e.g. `rtsp://user:pass@127.0.0.1:8554/test` (credentials in the
    /// userinfo are used for Digest/Basic and never sent on the wire).
    pub url: String,

    /// Target number of concurrent sessions.
    #[arg(long, short = 'c', default_value_t = 10)]
    pub clients: u32,

    /// Session arrival rate, e.g. `50/s` or `50` (default: `clients / ramp`).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// How long to run; arrivals stop and every session is torn down at the end.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// How long each session plays: `5s` (fixed), `uniform:2s-8s`, or `exp:5s` (exponential
    /// with that mean). Default: the whole run.
    #[arg(long)]
    pub hold: Option<Hold>,

    /// Ramp-up: the first `clients` sessions arrive evenly over this time (when `--rate` is
    /// not given).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub ramp: Duration,

    /// Media transport: `udp`, `tcp` (interleaved), or `mix:70` (70% UDP).
    #[arg(long, short = 't', default_value = "udp")]
    pub transport: TransportChoice,

    /// Number of generator shards (pinned threads); default: online CPUs.
    #[arg(long)]
    pub shards: Option<usize>,

    /// User name (overrides the URL's userinfo).
    #[arg(long)]
    pub user: Option<String>,

    /// Password (overrides the URL's userinfo).
    #[arg(long)]
    pub password: Option<String>,

    /// Refuse Basic authentication (it sends the password in clear); Digest only.
    #[arg(long)]
    pub no_basic: bool,

    /// Send OPTIONS before DESCRIBE.
    #[arg(long)]
    pub options: bool,

    /// How long to wait for the TCP connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// How long to wait for each RTSP response.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub response_timeout: Duration,

    /// A start later than this behind its intended time counts as behind schedule.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub behind_tolerance: Duration,

    /// Seed of the hold-time and transport-mix draws (runs with one seed are repeatable).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Receive buffer of each UDP RTP socket, bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    pub udp_rcvbuf: usize,

    /// glommio io_memory per shard, bytes (locked memory is capped at 8 MiB per user here).
    #[arg(long, default_value_t = 1 << 20)]
    pub io_memory: usize,

    /// Write the report as JSON (schema `manifold-load/1`) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write the histograms of every one-second interval to this file, in the HdrHistogram
    /// interval log format (tags are metric names, values microseconds).
    #[arg(long)]
    pub hlog: Option<PathBuf>,

    /// Write the thresholds as a JUnit XML test suite to this file (one test case each).
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// A pass/fail threshold, e.g. `e2e.p99<5ms`, `setup.p99.9<=200ms`, `errors<1`,
    /// `loss.ratio<0.01`; repeatable. Exit code 99 when one fails.
    #[arg(long = "threshold")]
    pub thresholds: Vec<String>,

    /// Split the load over this many worker processes (each has its own open-file limit and
    /// shards), merged into one report. Re-runs this binary with these arguments.
    #[arg(long, default_value_t = 1)]
    pub processes: u32,

    /// Internal: run as worker `INDEX/PARTS/START_UNIX_NS/CLIENTS` of `--processes`.
    #[arg(long, hide = true)]
    pub worker: Option<String>,

    /// No live progress line, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

impl LoadArgs {
    /// Flags with their defaults, for `url` (for tests and embedding).
    pub fn new(url: impl Into<String>) -> LoadArgs {
        LoadArgs {
            url: url.into(),
            clients: 10,
            rate: None,
            duration: Duration::from_secs(10),
            hold: None,
            ramp: Duration::from_secs(1),
            transport: TransportChoice::Udp,
            shards: None,
            user: None,
            password: None,
            no_basic: false,
            options: false,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            behind_tolerance: Duration::from_millis(10),
            seed: 1,
            udp_rcvbuf: 256 * 1024,
            io_memory: 1 << 20,
            json: None,
            hlog: None,
            junit: None,
            thresholds: Vec::new(),
            processes: 1,
            worker: None,
            quiet: false,
        }
    }
}

/// How the simulated clients receive media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransportChoice {
    /// Every client over UDP, with its own RTP/RTCP port pair per track.
    Udp,
    /// Every client interleaved on its RTSP connection.
    Tcp,
    /// This percentage (0-100) of clients over UDP, the rest interleaved.
    Mix(f64),
}

impl FromStr for TransportChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(TransportChoice::Udp),
            "tcp" | "interleaved" => Ok(TransportChoice::Tcp),
            other => {
                let pct = other
                    .strip_prefix("mix:")
                    .ok_or_else(|| format!("transport `{s}`: expected udp, tcp or mix:PERCENT"))?;
                let pct: f64 = pct
                    .trim_end_matches('%')
                    .parse()
                    .map_err(|_| format!("transport `{s}`: bad percentage"))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(format!("transport `{s}`: percentage must be 0-100"));
                }
                Ok(TransportChoice::Mix(pct))
            }
        }
    }
}

impl fmt::Display for TransportChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportChoice::Udp => f.write_str("udp"),
            TransportChoice::Tcp => f.write_str("tcp"),
            TransportChoice::Mix(p) => write!(f, "mix:{p}"),
        }
    }
}

/// Parses `1.5s`, `200ms`, `750us`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("duration `{s}`: expected e.g. 5s or 200ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("duration `{s}`: unknown unit `{u}`")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` out of range"))
}

/// Parses a rate: `50/s`, `50`, `3000/m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, p)) => (n, p.trim()),
        None => (t, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("rate `{s}`: expected e.g. 50/s"))?;
    let per_secs = match per {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        p => return Err(format!("rate `{s}`: unknown unit `/{p}`")),
    };
    let r = n / per_secs;
    if !(r > 0.0 && r.is_finite()) {
        return Err(format!("rate `{s}` must be positive"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn rates_and_transports() {
        assert_eq!(parse_rate("50/s").unwrap(), 50.0);
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert!(parse_rate("0").is_err());
        assert_eq!("mix:70".parse::<TransportChoice>().unwrap(), TransportChoice::Mix(70.0));
        assert_eq!("TCP".parse::<TransportChoice>().unwrap(), TransportChoice::Tcp);
        assert!("mix:170".parse::<TransportChoice>().is_err());
    }
}
