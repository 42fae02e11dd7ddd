//! `manifold-perf`: runs the scenarios in `perf/scenarios/` and writes their results.
//!
//! For each reader count of a scenario's ladder and each target (the raw blaster with
//! `sendto`, `sendmmsg` or GSO; the relay at one shard and at every shard; GStreamer's RTSP
//! server), it starts the same synthetic stream (`manifold source rtp://`), the target fed by
//! it, and the same generator (`manifold load`), and samples the target's CPU time and
//! memory from /proc. It writes the results as JSON (schema `manifold-perf/1`, which
//! `manifold compare` reads), the scenario's section of `perf/RESULTS.md` and a cost-growth
//! SVG. Exit code: 0 when every run worked and the scenario's gate held, 99 when the gate
//! failed, 1 on an error.

mod markdown;
mod measure;
mod process;
mod procfs;
mod results;
mod scenario;
mod svg;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;

use measure::{Bench, CpuPlan, Programs};
use results::ScenarioResult;
use scenario::{Scenario, Target};

/// Runs perf scenarios: the relay beside the raw send limit and GStreamer's RTSP server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Scenario files (`perf/scenarios/*.toml`).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Where `manifold` and `manifold-perf-blaster` are (default: beside this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where the results JSON and the SVG go.
    #[arg(long, default_value = "perf/results")]
    out: PathBuf,
    /// The Markdown file whose scenario section is rewritten; `-` for none.
    #[arg(long, default_value = "perf/RESULTS.md")]
    results_md: String,
    /// Logs, SDP files and generator reports of each run (default: a fresh temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Only these targets (comma-separated names), whatever the scenario lists.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Only these reader counts (comma-separated), whatever the scenario's ladder.
    #[arg(long, value_delimiter = ',')]
    readers: Vec<u32>,
    /// GStreamer's peer script.
    #[arg(long, default_value = "perf/peers/gst_rtsp_relay.py")]
    gst_script: PathBuf,
    /// The Python that has GStreamer's bindings (Debian's, not a virtualenv's).
    #[arg(long, default_value = "/usr/bin/python3")]
    python: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(99),
        Err(e) => {
            eprintln!("manifold-perf: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs every scenario; true when all passed.
fn run(args: &Args) -> anyhow::Result<bool> {
    let programs = programs(args)?;
    let mut all_passed = true;
    for path in &args.scenarios {
        let mut scenario = Scenario::load(path)?;
        if !args.readers.is_empty() {
            scenario.readers.ladder = args.readers.clone();
        }
        if !args.targets.is_empty() {
            let wanted = args
                .targets
                .iter()
                .map(|n| Target::from_name(n).with_context(|| format!("unknown target {n:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            scenario.run.targets.retain(|t| wanted.contains(t));
        }
        scenario.validate()?;
        let result = run_scenario(args, &programs, scenario)?;
        let failed = !result.failures.is_empty();
        if failed && result.scenario.gate.is_none() {
            anyhow::bail!("{} of the runs of {} failed", result.failures.len(), path.display());
        }
        all_passed &= result.passed;
    }
    Ok(all_passed)
}

fn programs(args: &Args) -> anyhow::Result<Programs> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?.parent().context("no folder for this program")?.into(),
    };
    let find = |name: &str| {
        let p = bin_dir.join(name);
        anyhow::ensure!(p.is_file(), "{} not found (build it, or give --bin-dir)", p.display());
        Ok(p)
    };
    Ok(Programs {
        manifold: find("manifold")?,
        blaster: find("manifold-perf-blaster")?,
        gst_script: args.gst_script.clone(),
        python: args.python.clone(),
    })
}

fn run_scenario(
    args: &Args,
    programs: &Programs,
    scenario: Scenario,
) -> anyhow::Result<ScenarioResult> {
    let machine = procfs::Machine::read();
    let cpus = CpuPlan::for_machine(machine.nproc);
    let work = match &args.work_dir {
        Some(d) => d.join(&scenario.name),
        None => std::env::temp_dir().join(format!(
            "manifold-perf-{}-{}",
            scenario.name,
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    eprintln!("manifold-perf: scenario {} (logs in {})", scenario.name, work.display());
    let started_unix =
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut result =
        ScenarioResult::new(scenario.clone(), machine, cpus.clone(), git_commit(), started_unix);
    let bench = Bench { scenario: &scenario, programs, cpus: &cpus, dir: &work };
    let mut jobs: Vec<(Target, u32, bool)> = Vec::new();
    for &readers in &scenario.readers.ladder {
        for &target in &scenario.run.targets {
            let too_many = scenario.run.gstreamer_max_readers.is_some_and(|max| readers > max);
            if target == Target::Gstreamer && too_many {
                result.skipped.push(format!(
                    "gstreamer at {readers} readers: above the scenario's gstreamer_max_readers"
                ));
                continue;
            }
            jobs.push((target, readers, false));
        }
    }
    if scenario.readers.idle > 0 {
        for target in [Target::Relay1, Target::Gstreamer] {
            if scenario.run.targets.contains(&target) {
                jobs.push((target, scenario.readers.idle, true));
            }
        }
    }
    for (target, readers, idle) in jobs {
        let what = format!("{target} at {readers} {}readers", if idle { "idle " } else { "" });
        eprintln!("manifold-perf: {what} ...");
        match bench.measure(target, readers, idle) {
            Ok(m) => {
                eprintln!(
                    "manifold-perf:   {} packets, server {:.2} CPU-s, {:.0} packets/CPU-s, \
                     loss {:.4}%, RSS {} → {} KiB",
                    m.delivered_packets,
                    m.server_cpu_s,
                    m.packets_per_cpu_s,
                    m.loss_ratio * 100.0,
                    m.rss_base_kib,
                    m.rss_peak_kib
                );
                if idle {
                    result.idle.push(m);
                } else {
                    result.runs.push(m);
                }
            }
            Err(e) => {
                eprintln!("manifold-perf:   FAILED: {e:#}");
                result.failures.push(format!("{what}: {e:#}"));
            }
        }
    }
    result.machine.load_end = procfs::load_average();
    result.conclude();
    write_outputs(args, &result)?;
    for v in &result.verdicts {
        eprintln!(
            "manifold-perf: gate {}: {} (measured {:.4})",
            if v.passed { "pass" } else { "FAIL" },
            v.rule,
            v.value
        );
    }
    Ok(result)
}

fn write_outputs(args: &Args, result: &ScenarioResult) -> anyhow::Result<()> {
    let name = &result.scenario.name;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json_path = args.out.join(format!("{name}.json"));
    write(&json_path, &(serde_json::to_string_pretty(result)? + "\n"))?;
    eprintln!("manifold-perf: wrote {}", json_path.display());
    let svg_name = match svg::cost_growth(result) {
        Some(svg) => {
            let path = args.out.join(format!("{name}-cost.svg"));
            write(&path, &svg)?;
            eprintln!("manifold-perf: wrote {}", path.display());
            Some(path)
        }
        None => None,
    };
    let section = |md: &Path| {
        let rel = svg_name.as_ref().map(|svg| relative(svg, md.parent().unwrap_or(Path::new("."))));
        markdown::section(result, rel.as_deref())
    };
    if args.results_md == "-" {
        println!("{}", section(Path::new(".")));
    } else {
        let md = PathBuf::from(&args.results_md);
        let doc = std::fs::read_to_string(&md).unwrap_or_default();
        let text = section(&md);
        write(&md, &markdown::splice(&doc, name, &text))?;
        println!("{text}");
        eprintln!("manifold-perf: updated {}", md.display());
    }
    Ok(())
}

/// `path` as seen from `dir` when it lies under it (for the Markdown image link).
fn relative(path: &Path, dir: &Path) -> String {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (p, d) = (canon(path), canon(dir));
    p.strip_prefix(&d).unwrap_or(&p).display().to_string()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    // Through a temporary file, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}
