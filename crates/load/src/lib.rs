//! The load generator runtime behind `manifold load`: simulated RTSP clients on pinned glommio
//! shards, an open-model arrival schedule measured against intended start times, HdrHistogram
//! metrics merged across shards, a report (table and JSON), thresholds and self-health.
//!
//! Entry point: [`run`] with [`LoadArgs`]; the [`Outcome`] gives the exit code (0 pass, 99 a
//! threshold failed, 1 one could not be judged); a [`LoadError`] means exit code 1.
//!
//! Modules, one concern each: [`args`] (flags), [`target`] (URL, probe DESCRIBE),
//! [`schedule`] (open-model arrivals, pacing), [`segment`] (`--segment`, `--start-at`: one
//! machine's slice of a run), `shard` (a shard's share of the schedule),
//! `client` (one session on a shard), `udp_media` (a shard's UDP reading), `grid` (the
//! shard's time grid, which UDP reads and session deadlines share), [`receiver`] (per-track packet accounting, sans-IO),
//! [`metrics`] (histograms and counts), [`threshold`], [`report`] (table, JSON), [`junit`],
//! [`hlog`] (interval log), [`health`] (self-health), [`progress`] (live line), [`workers`]
//! (`--processes`), [`server`] (`--server-pid`: what the run cost the server, sans-IO; its
//! /proc readings come from `sampler`), [`source`] (`manifold source`: the synthetic
//! publisher), [`merge`] and [`compare`] (reports from hlogs, regression gate), [`plot`] (SVG
//! percentile spectrum). Syscalls are manifold-sys's and manifold-udp's: this crate has no
//! `unsafe`.
//!
//! Where latencies start: `connect` and `setup` from the session's *intended* start (so a
//! generator or server that falls behind cannot hide it), each `rtt.*` from the request's
//! send, `first_rtp`/`first_keyframe` from PLAY's send, `e2e` from the capture time stamped
//! in the packet (same host clock), `gap` between consecutive packets of a track.

mod alarm;
pub mod args;
mod client;
pub mod compare;
mod grid;
pub mod guard;
pub mod health;
pub mod hlog;
pub mod junit;
pub mod merge;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod quantity;
mod read_pace;
pub mod receiver;
pub mod redirect;
pub mod report;
mod sampler;
pub mod schedule;
pub mod segment;
pub mod server;
mod shard;
pub mod source;
mod source_rtmp;
mod source_rtp;
pub mod target;
pub mod threshold;
mod udp_media;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};
use manifold_rtsp::auth::Credentials;
use manifold_rtsp::session::client::ClientConfig;

pub use args::{CpuList, LoadArgs, TransportChoice, UdpReadInterval, UdpReceive};
pub use report::Report;
pub use source::{SourceArgs, SourceError, SourceStats, SourceTransport};

use crate::health::{FdBudget, Health};
use crate::hlog::RunCounts;
use crate::metrics::Metrics;
use crate::progress::{Live, Progress};
use crate::report::RunConfig;
use crate::schedule::{Hold, Schedule, ScheduleConfig};
use crate::target::Target;
use crate::threshold::{Threshold, ThresholdError};
use crate::workers::WorkerSpec;

/// Exit code of a run whose thresholds all held.
pub const EXIT_PASS: i32 = 0;
/// Exit code of a run with a failed threshold.
pub const EXIT_THRESHOLD: i32 = 99;
/// Exit code of a run that could not be carried out.
pub const EXIT_ERROR: i32 = 1;

/// Time the shards get to come up before the first intended start.
const STARTUP_GRACE: Duration = Duration::from_millis(200);
/// Past the run's end plus the response timeout, what sessions still get before those not
/// finished are reported as stuck.
const STUCK_GRACE: Duration = Duration::from_secs(1);
/// Time worker processes get to start (and probe) before the shared start.
const WORKER_GRACE: Duration = Duration::from_millis(1500);
/// Entries of each shard's io_uring submission queue (glommio's default is 128). The kernel
/// sizes a ring's table of armed polls by it (32 buckets at 512, 8 at 128), and every cancel
/// walks one bucket: with thousands of sessions' sockets polled at once, a cancel walked
/// hundreds of entries, and the executor cancels one at each wake-up. Not more: for a user
/// without `CAP_IPC_LOCK` the rings count against `RLIMIT_MEMLOCK`, per user (often 8 MiB,
/// shared with a relay of the same user); glommio has three rings per shard, about 50 KiB each
/// at 512 entries, where 4,096 left `manifold demo` unable to start as uid 10001.
const RING_DEPTH: usize = 512;

/// Whether this kernel sets io_uring rings up with `IORING_SETUP_COOP_TASKRUN` (5.19+). The
/// shards' main rings then use it (glommio, patched in vendor/glommio): the CPU that delivers
/// a TCP segment leaves the read's completion for the shard's next system call, where it would
/// otherwise interrupt the shard's CPU with an IPI at every arrival. The server pays for
/// sending those IPIs (on loopback, the relay's CPU delivers the segment), so without this the
/// generator makes the server it measures look dearer: at 1,000 TCP readers both sides spent
/// about half the CPU per packet with it (perf/RESULTS.md, "COOP_TASKRUN").
fn coop_taskrun_supported() -> bool {
    let ring: std::io::Result<io_uring::IoUring> =
        io_uring::IoUring::builder().setup_coop_taskrun().build(2);
    ring.is_ok()
}

/// Why a run could not be carried out (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The URL is not usable.
    #[error("URL {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A threshold does not parse.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// Flags that do not go together, or name what is not there (a CPU not online).
    #[error("{0}")]
    Flags(String),
    /// The probe DESCRIBE failed: the server is not there or refuses us.
    #[error("server {peer}: DESCRIBE before the run failed: {reason}")]
    Probe {
        /// The server.
        peer: SocketAddr,
        /// What happened.
        reason: String,
    },
    /// The probe DESCRIBE was answered with a redirect (the probe follows it, see
    /// [`redirect`]).
    #[error("server {peer}: DESCRIBE before the run was redirected to {location}")]
    Redirected {
        /// The server.
        peer: SocketAddr,
        /// Where it sent us.
        location: String,
    },
    /// A redirect cannot be followed.
    #[error(transparent)]
    Redirect(#[from] redirect::RedirectError),
    /// Not one session fits the open-file limit.
    #[error(
        "generator side: the open-file limit ({soft} soft, {hard} hard) fits no session of \
         {per_session} descriptors"
    )]
    NoRoom {
        /// Soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
        /// Descriptors per session.
        per_session: u64,
    },
    /// The glommio shards could not be started or died.
    #[error("generator side: shard executor: {0}")]
    Executor(String),
    /// A `--server-pid` process cannot be watched.
    #[error(transparent)]
    ServerPid(#[from] server::ServerPidError),
    /// `--segment` or `--start-at` is unusable.
    #[error(transparent)]
    Segment(#[from] segment::SegmentError),
    /// The JSON report could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl LoadError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        EXIT_ERROR
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report (also printed, and written as JSON when asked).
    pub report: Report,
}

impl Outcome {
    /// 0 when every threshold held, 99 when one failed, 1 when one could not be judged.
    pub fn exit_code(&self) -> i32 {
        self.report.exit_code()
    }
}

/// Runs a load test as the flags say: prints the table to stdout (and a progress line to
/// stderr on a terminal), writes `--json`, and returns the outcome.
pub fn run(args: LoadArgs) -> Result<Outcome, LoadError> {
    let (outcome, raw) = execute_raw(&args)?;
    if args.worker.is_some() {
        let out = workers::WorkerOutput {
            metrics: raw.metrics.to_wire(),
            intervals: workers::WorkerOutput::wire_intervals(&raw.intervals),
            cpu_s: raw.cpu.as_secs_f64(),
            fits: raw.fits,
        };
        let line = serde_json::to_string(&out)
            .map_err(|e| LoadError::Executor(format!("worker output: {e}")))?;
        println!("{line}");
        return Ok(outcome);
    }
    print!("{}", outcome.report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, outcome.report.to_json())
            .map_err(|source| LoadError::Write { path: path.clone(), source })?;
    }
    if let Some(path) = &args.hlog {
        let start = SystemTime::now() - raw.wall;
        let counts = RunCounts::of(&raw.metrics, &outcome.report);
        hlog::write(path, &raw.intervals, start, Some(&counts))
            .map_err(|source| LoadError::Write { path: path.clone(), source })?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::to_xml(&outcome.report))
            .map_err(|source| LoadError::Write { path: path.clone(), source })?;
    }
    Ok(outcome)
}

/// [`run`] without printing or writing anything.
pub fn execute(args: &LoadArgs) -> Result<Outcome, LoadError> {
    execute_raw(args).map(|(outcome, _)| outcome)
}

fn execute_raw(args: &LoadArgs) -> Result<(Outcome, Raw), LoadError> {
    let thresholds =
        args.thresholds.iter().map(|t| Threshold::parse(t)).collect::<Result<Vec<_>, _>>()?;
    args.check().map_err(LoadError::Flags)?;
    if args.server_pids.is_empty() {
        if let Some(t) = thresholds.iter().find(|t| t.expr.trim_start().starts_with("server.")) {
            return Err(LoadError::Flags(format!(
                "threshold `{t}` is on the server's figures: add --server-pid PID"
            )));
        }
    }
    if args.segment.is_some() && args.processes > 1 {
        return Err(segment::SegmentError::WithProcesses.into());
    }
    if let Some(at) = &args.start_at {
        // Before the probe, which could take the rest of the slack.
        at.instant(SystemTime::now(), Instant::now())?;
    }
    let pinned = pinned_cpus(args)?;
    let shards = args
        .shards
        .or(pinned.as_ref().map(Vec::len))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if let Some(cpus) = &pinned {
        if shards > cpus.len() {
            return Err(LoadError::Flags(format!(
                "--shards {shards} on --cpus {}: one shard per CPU, so --shards {} or fewer",
                CpuList::from_cpus(cpus.iter().copied()),
                cpus.len()
            )));
        }
    }
    let target = Target::resolve(&args.url)?;
    let user_agent = concat!("manifold-load/", env!("CARGO_PKG_VERSION"));
    let tunnel = args.transport == TransportChoice::Http;
    let dialer = target.dialer(args.tls_ca.as_deref(), args.insecure, tunnel, user_agent)?;
    let mut config = ClientConfig::play(args.url.clone());
    config.send_options = args.options;
    config.response_timeout = args.response_timeout;
    config.allow_basic = !args.no_basic;
    config.user_agent = Some(user_agent.to_owned());
    if let Some(user) = &args.user {
        config.credentials =
            Some(Credentials::new(user.clone(), args.password.clone().unwrap_or_default()));
    }
    let mut probe_config = config.clone();
    probe_config.send_options = false;
    probe_config.cnonce = "0a4f113b".to_owned();
    let tracks =
        redirect::probe(&dialer, probe_config, args.connect_timeout + args.response_timeout)?;
    // `--no-play`: held after the SETUPs, kept alive like any session, until TEARDOWN.
    config.start_after_setup = !args.no_play;

    let udp_share = match args.transport {
        TransportChoice::Udp => 1.0,
        TransportChoice::Tcp | TransportChoice::Http => 0.0,
        TransportChoice::Mix(p) => p / 100.0,
    };
    // A tunnel holds a GET and a POST connection.
    let connections = if dialer.tunnel.is_some() { 2 } else { 1 };
    let per_session = connections + if udp_share > 0.0 { 2 * tracks.len() as u64 } else { 0 };
    let fd = FdBudget::raise_and_measure(per_session, shards);
    if fd.fits == 0 {
        return Err(LoadError::NoRoom { soft: fd.soft, hard: fd.hard, per_session });
    }
    let worker = args.worker.as_deref().map(WorkerSpec::parse).transpose()?;
    let parts = worker.map_or(u64::from(args.processes.max(1)), |w| w.parts);
    let (clients, clipped) = match (worker, args.segment) {
        (Some(w), _) => (w.clients, 0),
        // The full run's schedule whatever this machine fits: the shards' cap counts what
        // does not fit as clipped, and the merge adds it up.
        (None, Some(seg)) => {
            if seg.share(args.clients) > fd.fits {
                eprintln!(
                    "manifold load: generator side: segment {seg} holds up to {} sessions; the \
                     open-file limit ({} soft, {} hard) fits {}: the rest will be clipped",
                    seg.share(args.clients),
                    fd.soft,
                    fd.hard,
                    fd.fits
                );
            }
            (args.clients, 0)
        }
        (None, None) => {
            let room = fd.fits.saturating_mul(parts);
            if u64::from(args.clients) > room {
                eprintln!(
                    "manifold load: generator side: the open-file limit ({} soft, {} hard) fits \
                     {} sessions of {} descriptors per process; running {} instead of {} \
                     (more --processes go further)",
                    fd.soft, fd.hard, fd.fits, per_session, room, args.clients
                );
                (u32::try_from(room).unwrap_or(u32::MAX), u64::from(args.clients) - room)
            } else {
                (args.clients, 0)
            }
        }
    };
    let rate = args.rate.unwrap_or_else(|| {
        let ramp = args.ramp.as_secs_f64();
        if ramp > 0.0 {
            f64::from(clients) / ramp
        } else {
            f64::INFINITY
        }
    });
    let hold = args.hold.unwrap_or(Hold::Fixed(args.duration));
    let schedule = Schedule::new(ScheduleConfig {
        clients,
        rate,
        duration: args.duration,
        ramp_down: args.ramp_down,
        process: args.arrivals,
        hold,
        udp_share,
        seed: args.seed,
    });

    let live = Arc::new(Live::default());
    // Workers re-run these arguments: only the parent watches the server.
    let sampler = match worker {
        Some(_) => None,
        None if args.server_pids.is_empty() => None,
        None => {
            let sessions = (parts == 1).then(|| live.clone());
            Some(sampler::Sampler::start(&args.server_pids, sessions)?)
        }
    };
    let cpu_before = sys_cpu();
    let (mut merged, intervals, cpu, wall, ran_on) = if worker.is_none() && parts > 1 {
        let start = match &args.start_at {
            Some(at) => {
                at.instant(SystemTime::now(), Instant::now())?;
                at.at
            }
            None => SystemTime::now() + WORKER_GRACE,
        };
        let outputs = workers::spawn_and_wait(parts, clients, start)?;
        let wall = SystemTime::now().duration_since(start).unwrap_or_default();
        let mut merged = Metrics::new();
        let mut intervals = Vec::new();
        let mut cpu = sys_cpu().saturating_sub(cpu_before);
        for o in &outputs {
            merged.merge(&Metrics::from_wire(&o.metrics));
            intervals.extend(o.blobs());
            cpu += Duration::try_from_secs_f64(o.cpu_s).unwrap_or_default();
        }
        // Every worker pinned its shards to --cpus (if given).
        (merged, intervals, cpu, wall, pinned.clone().unwrap_or_default())
    } else {
        let run_start = match (worker, &args.start_at) {
            (Some(w), _) => {
                let until = w.start().duration_since(SystemTime::now()).unwrap_or_default();
                Instant::now() + until
            }
            (None, Some(at)) => at.instant(SystemTime::now(), Instant::now())?,
            (None, None) => Instant::now() + STARTUP_GRACE,
        };
        let plan = shard::ShardPlan {
            shards,
            part: match (worker, args.segment) {
                (Some(w), _) => (w.index, w.parts),
                (None, Some(seg)) => (seg.index, seg.parts),
                (None, None) => (0, 1),
            },
            schedule,
            target: target.clone(),
            dialer: dialer.clone(),
            config,
            tracks: tracks.clone(),
            connect_timeout: args.connect_timeout,
            behind_tolerance: args.behind_tolerance,
            udp_rcvbuf: args.udp_rcvbuf,
            udp_read_interval: args.udp_read_interval,
            udp_ring: args.udp_receive == UdpReceive::Ring,
            seed: args.seed,
            run_start,
            run_end: run_start + args.duration,
            run_deadline: run_start + args.duration + args.response_timeout + STUCK_GRACE,
            media_timeout: args.media_timeout,
            cap: fd.fits.div_ceil(shards as u64),
            live: live.clone(),
            hlog: args.hlog.is_some(),
            no_play: args.no_play,
            no_rtcp: args.no_rtcp,
        };
        let placement = match &pinned {
            // One shard per listed CPU.
            Some(cpus) => PoolPlacement::Custom(
                cpus.iter()
                    .take(shards)
                    .map(|&cpu| {
                        CpuSet::online().map(|set| set.filter(|l| l.cpu == cpu)).map_err(|e| {
                            LoadError::Executor(format!("reading the online CPUs: {e}"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            None => PoolPlacement::MaxSpread(shards, CpuSet::online().ok()),
        };
        let next_shard = Arc::new(AtomicUsize::new(0));
        let handles = LocalExecutorPoolBuilder::new(placement)
            .io_memory(args.io_memory)
            // No file I/O here either: see the relay's executor.
            .register_io_memory(false)
            .ring_depth(RING_DEPTH)
            .coop_taskrun(coop_taskrun_supported())
            .on_all_shards(move || {
                let shard = next_shard.fetch_add(1, Ordering::Relaxed);
                shard::run_shard(plan, shard)
            })
            .map_err(|e| LoadError::Executor(e.to_string()))?;
        let progress = Progress::start(live, !args.quiet && worker.is_none(), args.duration);
        let results = handles.join_all();
        progress.stop();
        let wall = run_start.elapsed();
        let cpu = sys_cpu().saturating_sub(cpu_before);
        let mut merged = Metrics::new();
        let mut intervals = Vec::new();
        let mut ran_on = Vec::new();
        for r in results {
            let out = r.map_err(|e| LoadError::Executor(e.to_string()))?;
            merged.merge(&out.metrics);
            intervals.extend(out.intervals);
            ran_on.extend(out.cpus);
        }
        ran_on.sort_unstable();
        ran_on.dedup();
        (merged, intervals, cpu, wall, ran_on)
    };
    merged.counts.clipped += clipped;
    let server = sampler.map(|s| {
        let mut usage = s.stop();
        if parts > 1 {
            // The workers' open sessions are not seen from here: those that played, up to
            // the intended concurrency, stand for the peak.
            usage.peak_sessions = merged.counts.played.min(u64::from(clients));
        }
        usage
    });

    let threads = (shards as u64 * parts) as usize;
    let cores = match &pinned {
        Some(cpus) => cpus.len(),
        None => std::thread::available_parallelism().map_or(threads, |n| n.get()),
    }
    .min(threads);
    let health = Health::assess(&merged, cores, cpu, wall, fd);
    let run_config = RunConfig {
        url: target.display_url.clone(),
        clients: args.clients,
        rate,
        duration_s: args.duration.as_secs_f64(),
        ramp_down_s: args.ramp_down.as_secs_f64(),
        arrivals: args.arrivals.to_string(),
        no_play: args.no_play,
        cpus: ran_on,
        hold: hold.to_string(),
        transport: args.transport.to_string(),
        processes: parts,
        tracks: tracks.len(),
        seed: args.seed,
    };
    let report = Report::build_with_server(
        run_config,
        &merged,
        wall.as_secs_f64(),
        health,
        server.as_ref(),
        &thresholds,
    );
    let raw = Raw { metrics: merged, intervals, cpu, fits: fd.fits, wall };
    Ok((Outcome { report }, raw))
}

/// The measurements behind a report: what a worker hands its parent, and what `--hlog` needs.
struct Raw {
    metrics: Metrics,
    intervals: Vec<hlog::IntervalBlob>,
    cpu: Duration,
    fits: u64,
    wall: Duration,
}

/// The `--cpus` list, checked against the online CPUs; `None` without `--cpus`.
fn pinned_cpus(args: &LoadArgs) -> Result<Option<Vec<usize>>, LoadError> {
    let Some(list) = &args.cpus else { return Ok(None) };
    let online: Vec<usize> = CpuSet::online()
        .map_err(|e| LoadError::Flags(format!("--cpus {list}: cannot read the online CPUs: {e}")))?
        .iter()
        .map(|l| l.cpu)
        .collect();
    list.check_online(&online).map(|cpus| Some(cpus.to_vec())).map_err(LoadError::Flags)
}

fn sys_cpu() -> Duration {
    manifold_sys::limits::cpu_time()
}

/// `manifold source`: publishes the synthetic stream until the duration ends: to an RTSP
/// server (ANNOUNCE, RECORD, then TEARDOWN), as plain RTP for an `rtp://` URL, or over RTMP
/// for an `rtmp://` URL (publish, then unpublish).
pub fn run_source(args: &SourceArgs) -> Result<SourceStats, SourceError> {
    if source_rtp::is_rtp_url(&args.url) {
        source_rtp::run(args)
    } else if source_rtmp::is_rtmp_url(&args.url) {
        source_rtmp::run(args)
    } else {
        source::run_rtsp(args)
    }
}
