//! One measurement: a source, one target serving its stream, and `manifold load` reading it;
//! the target's CPU time and memory sampled from /proc while the generator runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use crate::process::{free_rtp_port, pinned, wait_file, Proc};
use crate::procfs;
use crate::scenario::{Scenario, Target};

/// Where the programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// `manifold` (serve, load, source).
    pub(crate) manifold: PathBuf,
    /// `manifold-perf-blaster`.
    pub(crate) blaster: PathBuf,
    /// `perf/peers/gst_rtsp_relay.py`.
    pub(crate) gst_script: PathBuf,
    /// The Python with GStreamer's introspection bindings (Debian's).
    pub(crate) python: PathBuf,
}

/// Which CPUs each side gets. On two cores: servers on CPU 0 (the relay's second shard on
/// CPU 1), the source and the generator on CPU 1.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CpuPlan {
    pub(crate) server: String,
    pub(crate) all: String,
    pub(crate) generator: String,
}

impl CpuPlan {
    pub(crate) fn for_machine(nproc: usize) -> CpuPlan {
        let last = nproc.saturating_sub(1);
        CpuPlan {
            server: "0".into(),
            all: if last == 0 { "0".into() } else { format!("0-{last}") },
            generator: last.to_string(),
        }
    }
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) samples: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p99_9_us: u64,
    pub(crate) max_us: u64,
}

/// What one target did for one reader count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measurement {
    pub(crate) target: Target,
    pub(crate) readers: u32,
    pub(crate) transport: String,
    /// The generator's ramp and run length for this rung, seconds.
    pub(crate) ramp_s: u32,
    pub(crate) duration_s: u32,
    /// Sessions that only SETUP (memory per idle session), no media.
    pub(crate) idle: bool,
    /// The server's CPU time from the generator's start to its end, seconds.
    pub(crate) server_cpu_s: f64,
    /// Wall time of the generator run, seconds.
    pub(crate) wall_s: f64,
    /// Server CPU-seconds per second with every reader playing (after the ramp).
    pub(crate) steady_cpu_share: f64,
    /// Packets the readers received (every session, whole run).
    pub(crate) delivered_packets: u64,
    /// `delivered_packets / server_cpu_s`.
    pub(crate) packets_per_cpu_s: f64,
    /// Server RSS before the readers came, and the most while they were there, KiB.
    pub(crate) rss_base_kib: u64,
    pub(crate) rss_peak_kib: u64,
    /// `(peak - base) / readers`, bytes.
    pub(crate) rss_per_reader_b: f64,
    /// End-to-end latency (capture time in the source to arrival at the reader; GOP-cache
    /// replays excluded), when the readers saw our extension.
    pub(crate) e2e: Option<Latency>,
    /// PLAY to first packet.
    pub(crate) first_packet: Option<Latency>,
    pub(crate) loss_ratio: f64,
    pub(crate) sessions_ok: u64,
    pub(crate) sessions_failed: u64,
    pub(crate) errors: u64,
    /// The generator's own verdict on whether it limited the run, and why.
    pub(crate) generator_limited: bool,
    pub(crate) generator_reasons: Vec<String>,
    /// The generator's JSON report.
    pub(crate) report: PathBuf,
}

/// Everything one measurement needs.
pub(crate) struct Bench<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) programs: &'a Programs,
    pub(crate) cpus: &'a CpuPlan,
    /// Logs, SDP files and generator reports go here.
    pub(crate) dir: &'a Path,
}

/// Sampling period of the server's CPU and memory.
const SAMPLE: Duration = Duration::from_millis(100);
/// File descriptors one simulated UDP client costs the generator (TCP + RTP + RTCP).
const FDS_PER_UDP_CLIENT: u64 = 3;
/// Descriptors a generator process may give its sessions (the hard limit is 20,000).
const FDS_PER_PROCESS: u64 = 18_000;

impl Bench<'_> {
    /// Runs `target` with `readers` sessions (playing, or only set up when `idle`).
    pub(crate) fn measure(
        &self,
        target: Target,
        readers: u32,
        idle: bool,
    ) -> anyhow::Result<Measurement> {
        let tag = format!("{}-{}{}", target, readers, if idle { "-idle" } else { "" });
        let rtp_port = free_rtp_port()?;
        let sdp = self.dir.join(format!("{tag}.sdp"));
        let _ = std::fs::remove_file(&sdp);
        let mut source = self.start_source(rtp_port, &sdp, &tag)?;
        wait_file(&sdp, Duration::from_secs(10), &mut source)?;
        let (mut server, url) = self.start_target(target, rtp_port, &sdp, &tag)?;
        // Let the stream flow into the server before the baseline is read.
        std::thread::sleep(Duration::from_millis(1500));
        let pid = server.pid();
        let rss_base = procfs::rss_kib(pid).context("server gone before the run")?;
        let cpu_start = procfs::cpu_time(pid).context("server gone before the run")?;
        let report = self.dir.join(format!("{tag}.load.json"));
        let mut load = self.start_load(&url, readers, idle, &report, &tag)?;
        let t0 = Instant::now();
        let (ramp_s, duration_s) = self.scenario.timing(readers);
        let limit = Duration::from_secs(u64::from(duration_s) + 120);
        let mut samples: Vec<(Duration, Duration, u64)> = Vec::new();
        while load.running() {
            if t0.elapsed() > limit {
                bail!("{tag}: the generator is still running after {limit:?}; {}", load.tail());
            }
            match (procfs::cpu_time(pid), procfs::rss_kib(pid)) {
                (Some(cpu), Some(rss)) => samples.push((t0.elapsed(), cpu, rss)),
                _ => bail!("{tag}: the server exited during the run; {}", server.tail()),
            }
            std::thread::sleep(SAMPLE);
        }
        let wall = t0.elapsed();
        let cpu_end = procfs::cpu_time(pid).context("server gone at the end of the run")?;
        let status = load.wait(Duration::from_secs(1))?;
        // Exit 99 is a failed threshold; the harness sets none, so anything but 0 is wrong.
        if !status.success() {
            bail!("{tag}: manifold load failed ({status}); {}", load.tail());
        }
        server.stop();
        source.stop();
        let json = read_report(&report)?;
        let steady = steady_share(&samples, ramp_s, duration_s);
        let rss_peak = samples.iter().map(|s| s.2).max().unwrap_or(rss_base);
        let server_cpu_s = cpu_end.saturating_sub(cpu_start).as_secs_f64();
        let delivered = num(&json, &["media", "packets"]) as u64;
        Ok(Measurement {
            target,
            readers,
            transport: self.scenario.readers.transport.clone(),
            ramp_s,
            duration_s,
            idle,
            server_cpu_s,
            wall_s: wall.as_secs_f64(),
            steady_cpu_share: steady,
            delivered_packets: delivered,
            packets_per_cpu_s: if server_cpu_s > 0.0 {
                delivered as f64 / server_cpu_s
            } else {
                0.0
            },
            rss_base_kib: rss_base,
            rss_peak_kib: rss_peak,
            rss_per_reader_b: rss_peak.saturating_sub(rss_base) as f64 * 1024.0
                / f64::from(readers),
            e2e: latency(&json, "e2e"),
            first_packet: latency(&json, "first_rtp"),
            loss_ratio: num(&json, &["media", "loss_ratio"]),
            sessions_ok: num(&json, &["sessions", "ok"]) as u64,
            sessions_failed: num(&json, &["sessions", "failed"]) as u64,
            errors: num(&json, &["errors", "total"]) as u64,
            generator_limited: json
                .pointer("/health/generator_limited")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            generator_reasons: json
                .pointer("/health/reasons")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            report,
        })
    }

    fn start_source(&self, rtp_port: u16, sdp: &Path, tag: &str) -> anyhow::Result<Proc> {
        let s = &self.scenario.stream;
        let mut cmd = pinned(&self.cpus.generator, &self.programs.manifold);
        cmd.arg("source")
            .arg(format!("rtp://127.0.0.1:{rtp_port}"))
            .arg("--sdp-file")
            .arg(sdp)
            .args(["--bitrate", &s.bitrate.to_string()])
            .args(["--fps", &s.fps.to_string()])
            .args(["--gop", &s.gop.to_string()])
            .args(["--mtu", &s.mtu.to_string()])
            .arg("--quiet");
        Proc::spawn("manifold source", cmd, &self.dir.join(format!("{tag}.source.log")))
    }

    fn start_target(
        &self,
        target: Target,
        rtp_port: u16,
        sdp: &Path,
        tag: &str,
    ) -> anyhow::Result<(Proc, String)> {
        let log = self.dir.join(format!("{tag}.server.log"));
        let wait = Duration::from_secs(20);
        match target {
            Target::BlasterSendto
            | Target::BlasterSendmmsg
            | Target::BlasterGso
            | Target::BlasterGsoMmsg => {
                let mode = target.name().trim_start_matches("blaster-");
                let mut cmd = Command::new(&self.programs.blaster);
                cmd.args(["--listen", "127.0.0.1:0"])
                    .arg("--rtp-in")
                    .arg(format!("127.0.0.1:{rtp_port}"))
                    .arg("--sdp")
                    .arg(sdp)
                    .args(["--send", mode])
                    .args(["--cpu", &self.cpus.server, "--control-cpu", &self.cpus.server]);
                let mut p = Proc::spawn(target.name(), cmd, &log)?;
                let addr = p.wait_line("LISTEN ", wait)?;
                Ok((p, format!("rtsp://{addr}/perf")))
            }
            Target::Relay1 | Target::RelayAll => {
                let cpus =
                    if target == Target::Relay1 { &self.cpus.server } else { &self.cpus.all };
                let mut cmd = Command::new(&self.programs.manifold);
                cmd.args(["serve", "--listen", "127.0.0.1:0", "--cpus", cpus])
                    .arg("--rtp")
                    .arg(format!("/perf=127.0.0.1:{rtp_port}"))
                    .arg("--rtp-sdp")
                    .arg(sdp)
                    // The ladder goes past the default session limit (10,000).
                    .args(["--max-sessions", "100000"])
                    .env("RUST_LOG", "warn");
                let mut p = Proc::spawn(target.name(), cmd, &log)?;
                let addr = p.wait_line("listening on ", wait)?;
                Ok((p, format!("rtsp://{addr}/perf")))
            }
            Target::Gstreamer => {
                let mut cmd = pinned(&self.cpus.server, &self.programs.python);
                cmd.arg(&self.programs.gst_script)
                    .args(["--rtp-port", &rtp_port.to_string(), "--port", "0"])
                    .arg("--sdp")
                    .arg(sdp);
                let mut p = Proc::spawn(target.name(), cmd, &log)?;
                let port = p.wait_line("PORT ", wait)?;
                Ok((p, format!("rtsp://127.0.0.1:{port}/perf")))
            }
        }
    }

    fn start_load(
        &self,
        url: &str,
        readers: u32,
        idle: bool,
        report: &Path,
        tag: &str,
    ) -> anyhow::Result<Proc> {
        let (ramp_s, duration_s) = self.scenario.timing(readers);
        let transport = &self.scenario.readers.transport;
        let per_client = if transport == "tcp" { 1 } else { FDS_PER_UDP_CLIENT };
        let processes = (u64::from(readers) * per_client).div_ceil(FDS_PER_PROCESS).max(1);
        let mut cmd = Command::new(&self.programs.manifold);
        cmd.args(["load", url])
            .args(["--clients", &readers.to_string()])
            .args(["--duration", &format!("{duration_s}s")])
            .args(["--ramp", &format!("{ramp_s}s")])
            .args(["--transport", transport])
            .args(["--cpus", &self.cpus.generator])
            .args(["--processes", &processes.to_string()])
            .arg("--json")
            .arg(report)
            .arg("--quiet");
        if idle {
            cmd.arg("--no-play");
        }
        Proc::spawn("manifold load", cmd, &self.dir.join(format!("{tag}.load.log")))
    }
}

/// Server CPU-seconds per second between the end of the ramp (plus a second for stragglers)
/// and half a second before the end.
fn steady_share(samples: &[(Duration, Duration, u64)], ramp_s: u32, duration_s: u32) -> f64 {
    let from = Duration::from_secs_f64(f64::from(ramp_s) + 1.0);
    let to = Duration::from_secs_f64(f64::from(duration_s) - 0.5);
    let a = samples.iter().find(|s| s.0 >= from);
    let b = samples.iter().rev().find(|s| s.0 <= to);
    match (a, b) {
        (Some(a), Some(b)) if b.0 > a.0 => {
            b.1.saturating_sub(a.1).as_secs_f64() / (b.0 - a.0).as_secs_f64()
        }
        _ => 0.0,
    }
}

fn read_report(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if json.get("schema").and_then(Value::as_str) != Some("manifold-load/1") {
        bail!("{}: not a manifold-load/1 report", path.display());
    }
    Ok(json)
}

fn num(json: &Value, path: &[&str]) -> f64 {
    path.iter().try_fold(json, |v, k| v.get(k)).and_then(Value::as_f64).unwrap_or(0.0)
}

fn latency(json: &Value, metric: &str) -> Option<Latency> {
    let m = json.get("metrics")?.get(metric)?;
    let get = |k: &str| m.get(k).and_then(Value::as_u64);
    let samples = get("count")?;
    if samples == 0 {
        return None;
    }
    Some(Latency {
        samples,
        p50_us: get("p50")?,
        p99_us: get("p99")?,
        p99_9_us: get("p99_9")?,
        max_us: get("max")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: f64, cpu: f64) -> (Duration, Duration, u64) {
        (Duration::from_secs_f64(t), Duration::from_secs_f64(cpu), 0)
    }

    #[test]
    fn steady_share_uses_the_window_after_the_ramp() {
        // 0.1 CPU-s/s during a 2 s ramp, then 0.5 CPU-s/s.
        let mut samples = Vec::new();
        let mut cpu = 0.0;
        for i in 0..100 {
            let t = f64::from(i) * 0.1;
            samples.push(s(t, cpu));
            cpu += if t < 2.0 { 0.01 } else { 0.05 };
        }
        let share = steady_share(&samples, 2, 10);
        assert!((share - 0.5).abs() < 0.02, "{share}");
        assert_eq!(steady_share(&samples[..5], 2, 10), 0.0);
    }

    #[test]
    fn reads_latency_from_a_load_report() {
        let json: Value = serde_json::json!({
            "schema": "manifold-load/1",
            "metrics": { "e2e": { "count": 10, "p50": 100, "p99": 900, "p99_9": 950, "max": 999 },
                         "ttfb": { "count": 0, "p50": 0, "p99": 0, "p99_9": 0, "max": 0 } },
            "media": { "packets": 1234, "loss_ratio": 0.5 }
        });
        let e2e = latency(&json, "e2e").unwrap();
        assert_eq!((e2e.p50_us, e2e.p99_us, e2e.p99_9_us, e2e.max_us), (100, 900, 950, 999));
        assert!(latency(&json, "ttfb").is_none());
        assert!(latency(&json, "missing").is_none());
        assert_eq!(num(&json, &["media", "packets"]), 1234.0);
        assert_eq!(num(&json, &["media", "nothing"]), 0.0);
    }

    #[test]
    fn generator_on_the_last_cpu() {
        let two = CpuPlan::for_machine(2);
        assert_eq!(
            (two.server.as_str(), two.all.as_str(), two.generator.as_str()),
            ("0", "0-1", "1")
        );
        let one = CpuPlan::for_machine(1);
        assert_eq!((one.all.as_str(), one.generator.as_str()), ("0", "0"));
    }
}
