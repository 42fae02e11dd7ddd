//! Command-line flags of `manifold load` ([`LoadArgs`]) and the small value parsers they use
//! (durations, rates, transports, hold-time distributions).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::quantity::{parse_duration, parse_rate};
use crate::schedule::{ArrivalProcess, Hold};
use crate::segment::{Segment, StartAt};

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

    /// Ramp-down, e.g. `10s`: during the run's last 10 s no session arrives, and the sessions
    /// still playing end one by one, evenly spread over them (each with a normal TEARDOWN), so
    /// the concurrency falls linearly to 0 at the end. Ramp-up plus ramp-down must fit in the
    /// duration. Default 0: every session still playing ends at the end of the run.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub ramp_down: Duration,

    /// How the first `clients` arrivals are spaced: `uniform` (evenly, at `--rate`) or
    /// `poisson` (exponential gaps with the same mean, drawn from `--seed`).
    #[arg(long, default_value = "uniform")]
    pub arrivals: ArrivalProcess,

    /// Media transport: `udp`, `tcp` (interleaved), `mix:70` (70% UDP), or `http` (every
    /// client through an RTSP-over-HTTP tunnel: a GET connection receives responses and
    /// interleaved media, a POST connection carries the requests in base64; over TLS for
    /// `rtsps://` URLs).
    #[arg(long, short = 't', default_value = "udp")]
    pub transport: TransportChoice,

    /// `rtsps://`: trust the server certificates that chain to this PEM file (a private CA,
    /// or the self-signed certificate itself) instead of the system's roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub tls_ca: Option<PathBuf>,

    /// `rtsps://`: accept any server certificate, unchecked (labs and tests only; the
    /// connection is encrypted but not authenticated).
    #[arg(long)]
    pub insecure: bool,

    /// Number of generator shards (pinned threads); default: online CPUs, or the length of
    /// `--cpus`.
    #[arg(long)]
    pub shards: Option<usize>,

    /// Pin the shards to exactly these CPUs, one shard per CPU: `1`, `0,1`, `2-3`, `0,2-3`.
    /// Every CPU must be online. With `--processes`, every worker pins its shards to the
    /// same list. Default: the shards spread over all online CPUs.
    #[arg(long)]
    pub cpus: Option<CpuList>,

    /// Setup only: each session does DESCRIBE and SETUP of every track, holds its hold time
    /// without PLAY, then TEARDOWN (to measure a server's memory per idle session). No media
    /// is expected: media metrics stay empty, and `setup` ends at the last SETUP's answer.
    #[arg(long)]
    pub no_play: bool,

    /// Send no RTCP receiver reports. By default each playing session reports every track's
    /// loss and jitter as players do (RFC 3550 intervals, about every 4 s, randomised; on the
    /// track's RTCP port over UDP, on its RTP channel + 1 interleaved).
    #[arg(long)]
    pub no_rtcp: bool,

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

    /// A playing session that receives no media for this long on any of its audio or video
    /// tracks (none at all after PLAY was answered: `no_media`; none since the last packet:
    /// `stalled`) fails.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub media_timeout: Duration,

    /// A start later than this behind its intended time counts as behind schedule.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub behind_tolerance: Duration,

    /// Seed of the hold-time and transport-mix draws (runs with one seed are repeatable).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Receive buffer of each UDP RTP socket, bytes: the most it holds between two reads.
    /// The default holds a 4 Mbit/s stream's 2 s GOP replayed at once by a server's cache, or
    /// 0.8 s of a 20 Mbit/s one. A limit, not an allocation: the kernel charges only what is
    /// queued. Past `net.core.rmem_max` only as root (`SO_RCVBUFFORCE`); else the generator
    /// warns that the kernel capped it.
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub udp_rcvbuf: usize,

    /// How often each UDP RTP socket is read: every datagram keeps the time the kernel
    /// received it (`SO_TIMESTAMPNS`), so reading in batches costs no accuracy, and one read
    /// per interval takes every frame that came meanwhile (instead of a wake-up and three
    /// system calls per frame); the receive buffer (`--udp-rcvbuf`) must hold one interval of
    /// the stream. `0`: read as soon as anything arrives. `auto`: every 50 ms, then 100 and
    /// 200 ms while the fullest receive buffer stays under an eighth of its size for 4 s, and
    /// back as soon as one passes half or the kernel drops a datagram. `auto` costs the
    /// generator less at thousands of readers, but on the server's own host the server then
    /// pays more per packet (its datagrams wait longer in the generator's sockets); see
    /// perf/RESULTS.md, "Reading less often".
    #[arg(long, default_value = "50ms", value_parser = UdpReadInterval::parse)]
    pub udp_read_interval: UdpReadInterval,

    /// How a shard reads its UDP sockets every `--udp-read-interval`. `batch`: one `recvmmsg`
    /// per socket, with GRO handing over a frame's datagrams as one message (the cheaper of
    /// the two in perf/RESULTS.md). `ring`: every socket armed once on a multishot io_uring
    /// of the shard's own, all read by one `io_uring_enter` per interval, one datagram per
    /// 2 KiB buffer (64 MiB per shard; longer datagrams count as malformed); the server then
    /// does the wake-up per datagram it does for players that wait in poll. `ring` falls back
    /// to `batch` where io_uring cannot (Linux before 6.1, `kernel.io_uring_disabled`).
    #[arg(long, value_enum, default_value_t = UdpReceive::Batch)]
    pub udp_receive: UdpReceive,

    /// glommio's io_memory per shard, bytes: the slab of its file-I/O buffers, which the
    /// generator does not use; not registered with io_uring, so no locked memory.
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

    /// Watch this local process (the server under test) during the run: its CPU time and
    /// resident memory, read from /proc, give delivered packets per server CPU-second, the
    /// server's CPU share and its memory per session in the report (thresholds
    /// `server.pkts_per_cpu_s`, `server.cpu`, `server.cpu_s`, `server.rss_peak_kib`,
    /// `server.rss_per_session_kib`). Repeatable, for a server of several processes.
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,

    /// Split the load over this many worker processes (each has its own open-file limit and
    /// shards), merged into one report. Re-runs this binary with these arguments.
    #[arg(long, default_value_t = 1)]
    pub processes: u32,

    /// Run only segment `I/N` (I from 0 to N-1) of this schedule, on one of N machines:
    /// the sessions whose index in the full run is I modulo N, with their arrival times,
    /// holds and transports (same flags and `--seed` on every machine). `manifold merge` of
    /// the N `--hlog` files is the whole run's report.
    #[arg(long, value_name = "I/N")]
    pub segment: Option<Segment>,

    /// Wall-clock time the schedule starts at, so that segments on several machines start
    /// together: RFC 3339 (`2026-12-07T05:00:00Z`) or Unix seconds. Waits until then; an
    /// error when more than 5 s in the past.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<StartAt>,

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
            ramp_down: Duration::ZERO,
            arrivals: ArrivalProcess::Uniform,
            transport: TransportChoice::Udp,
            tls_ca: None,
            insecure: false,
            shards: None,
            cpus: None,
            no_play: false,
            no_rtcp: false,
            user: None,
            password: None,
            no_basic: false,
            options: false,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            media_timeout: Duration::from_secs(5),
            behind_tolerance: Duration::from_millis(10),
            seed: 1,
            udp_rcvbuf: 2 * 1024 * 1024,
            udp_read_interval: UdpReadInterval::Every(Duration::from_millis(50)),
            udp_receive: UdpReceive::Batch,
            io_memory: 1 << 20,
            json: None,
            hlog: None,
            junit: None,
            thresholds: Vec::new(),
            server_pids: Vec::new(),
            processes: 1,
            segment: None,
            start_at: None,
            worker: None,
            quiet: false,
        }
    }

    /// How long the first `clients` arrivals take: `clients / --rate`, else `--ramp`.
    pub fn ramp_up(&self) -> Duration {
        match self.rate {
            Some(rate) => {
                Duration::try_from_secs_f64(f64::from(self.clients) / rate).unwrap_or(Duration::MAX)
            }
            None => self.ramp,
        }
    }

    /// Checks what clap cannot check flag by flag: a ramp-down must leave room for the
    /// ramp-up within the duration.
    pub fn check(&self) -> Result<(), String> {
        if self.ramp_down.is_zero() {
            return Ok(());
        }
        let up = self.ramp_up();
        if up.saturating_add(self.ramp_down) > self.duration {
            let up_text = match self.rate {
                Some(rate) => format!("the ramp-up of {} clients at {rate}/s", self.clients),
                None => "--ramp".to_owned(),
            };
            return Err(format!(
                "{up_text} ({:.3}s) and --ramp-down ({:.3}s) do not fit in --duration ({:.3}s)",
                up.as_secs_f64(),
                self.ramp_down.as_secs_f64(),
                self.duration.as_secs_f64()
            ));
        }
        Ok(())
    }
}

/// A list of CPU numbers (`--cpus`): `1`, `0,1`, `2-3`, `0,2-3`; sorted, without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The CPUs, ascending.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// The CPUs, or an error naming the first one that is not in `online`.
    pub fn check_online(&self, online: &[usize]) -> Result<&[usize], String> {
        match self.0.iter().find(|c| !online.contains(c)) {
            Some(cpu) => Err(format!(
                "--cpus {self}: CPU {cpu} is not online (online: {})",
                CpuList::from_cpus(online.iter().copied())
            )),
            None => Ok(&self.0),
        }
    }

    /// A list of these CPUs.
    pub fn from_cpus(cpus: impl IntoIterator<Item = usize>) -> CpuList {
        let mut v: Vec<usize> = cpus.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        CpuList(v)
    }
}

impl FromStr for CpuList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("CPU list `{s}`: {why} (e.g. 1, 0,1, 2-3)");
        let mut cpus = Vec::new();
        for part in s.split(',').map(str::trim) {
            let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad("expected numbers"));
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if b < a {
                        return Err(bad("a range must go upwards"));
                    }
                    if b - a >= 1 << 16 {
                        return Err(bad("range too long"));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
        Ok(CpuList::from_cpus(cpus))
    }
}

impl fmt::Display for CpuList {
    /// Compact form: runs of consecutive CPUs as ranges (`0-3,6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            if start != self.0[0] {
                f.write_str(",")?;
            }
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

/// How often a shard reads its UDP sockets (`--udp-read-interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpReadInterval {
    /// As seldom as the receive buffers allow, from 50 to 200 ms.
    Auto,
    /// This interval throughout (zero: as soon as anything arrives).
    Every(Duration),
}

impl UdpReadInterval {
    /// `auto`, or a duration (`50ms`, `0`).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(UdpReadInterval::Auto);
        }
        parse_duration(s).map(UdpReadInterval::Every).map_err(|e| format!("{e}, or auto"))
    }
}

/// How a shard reads its UDP sockets (`--udp-receive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UdpReceive {
    /// A `recvmmsg` per socket per interval, GRO on.
    Batch,
    /// One multishot io_uring per shard, one enter per interval.
    Ring,
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
    /// Every client interleaved through an RTSP-over-HTTP tunnel (a GET and a POST).
    Http,
}

impl FromStr for TransportChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(TransportChoice::Udp),
            "tcp" | "interleaved" => Ok(TransportChoice::Tcp),
            "http" => Ok(TransportChoice::Http),
            other => {
                let pct = other.strip_prefix("mix:").ok_or_else(|| {
                    format!("transport `{s}`: expected udp, tcp, http or mix:PERCENT")
                })?;
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
            TransportChoice::Http => f.write_str("http"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!("mix:70".parse::<TransportChoice>().unwrap(), TransportChoice::Mix(70.0));
        assert_eq!("TCP".parse::<TransportChoice>().unwrap(), TransportChoice::Tcp);
        assert_eq!("http".parse::<TransportChoice>().unwrap(), TransportChoice::Http);
        assert_eq!(TransportChoice::Http.to_string(), "http");
        assert!("mix:170".parse::<TransportChoice>().is_err());
    }

    #[test]
    fn udp_read_intervals() {
        let parse = UdpReadInterval::parse;
        assert_eq!(parse("auto"), Ok(UdpReadInterval::Auto));
        assert_eq!(parse("AUTO"), Ok(UdpReadInterval::Auto));
        assert_eq!(parse("200ms"), Ok(UdpReadInterval::Every(Duration::from_millis(200))));
        assert_eq!(parse("0"), Ok(UdpReadInterval::Every(Duration::ZERO)));
        let err = parse("soon").unwrap_err();
        assert!(err.contains("or auto"), "{err}");
        let default = LoadArgs::new("rtsp://h/x").udp_read_interval;
        assert_eq!(default, UdpReadInterval::Every(Duration::from_millis(50)));
    }

    #[test]
    fn cpu_lists() {
        let list = |s: &str| s.parse::<CpuList>().map(|l| l.cpus().to_vec());
        assert_eq!(list("1").unwrap(), [1]);
        assert_eq!(list("0,1").unwrap(), [0, 1]);
        assert_eq!(list("2-3").unwrap(), [2, 3]);
        assert_eq!(list("3, 0-1,1").unwrap(), [0, 1, 3]);
        for bad in ["", "a", "3-1", "1,,2", "-1", "0-99999999"] {
            assert!(list(bad).is_err(), "{bad:?} should not parse");
        }
        let l: CpuList = "0-3,6,8-9".parse().unwrap();
        assert_eq!(l.to_string(), "0-3,6,8-9");
        assert_eq!(l.check_online(&[0, 1, 2, 3, 6, 8, 9, 10]).unwrap(), [0, 1, 2, 3, 6, 8, 9]);
        let err = l.check_online(&[0, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap_err();
        assert!(err.contains("CPU 9 is not online (online: 0-8)"), "{err}");
    }

    #[test]
    fn ramps_must_fit_in_the_duration() {
        let mut a = LoadArgs::new("rtsp://127.0.0.1/x");
        a.duration = Duration::from_secs(10);
        a.ramp = Duration::from_secs(4);
        a.ramp_down = Duration::from_secs(6);
        assert_eq!(a.check(), Ok(()));
        a.ramp_down = Duration::from_millis(6001);
        let err = a.check().unwrap_err();
        assert!(err.contains("--ramp (4.000s) and --ramp-down (6.001s)"), "{err}");
        // With --rate, the ramp-up is clients / rate: 100 clients at 20/s take 5 s.
        a.rate = Some(20.0);
        a.clients = 100;
        a.ramp_down = Duration::from_secs(5);
        assert_eq!(a.ramp_up(), Duration::from_secs(5));
        assert_eq!(a.check(), Ok(()));
        a.clients = 101;
        assert!(a.check().unwrap_err().contains("101 clients at 20/s"));
        // No ramp-down: a ramp longer than the run is allowed as before (arrivals stop at
        // the end).
        a.ramp_down = Duration::ZERO;
        a.clients = 1000;
        assert_eq!(a.check(), Ok(()));
    }
}
