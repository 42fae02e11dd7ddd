//! A scenario's results: every measurement, the ratios between targets at each reader count,
//! the gate's verdicts, and the values `manifold compare` gates on (schema [`SCHEMA`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::measure::{CpuPlan, Measurement};
use crate::procfs::Machine;
use crate::scenario::{split_ratio, Scenario, Target};

/// The JSON schema id; `manifold compare` knows it.
pub(crate) const SCHEMA: &str = "manifold-perf/1";

/// Ratios every run reports (numerator, denominator, the target for it).
pub(crate) const RATIOS: [(Target, Target, f64); 6] = [
    (Target::Relay1, Target::BlasterSendto, 3.0),
    (Target::Relay1, Target::BlasterSendmmsg, 3.0),
    (Target::Relay1, Target::BlasterGso, 0.8),
    (Target::Relay1, Target::BlasterGsoMmsg, 0.8),
    (Target::Relay1, Target::Gstreamer, 10.0),
    (Target::RelayAll, Target::Relay1, 0.9),
];

/// One ratio of packets per server CPU-second at one reader count.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ratio {
    /// `relay-1/blaster-sendto`.
    pub(crate) name: String,
    pub(crate) readers: u32,
    pub(crate) value: f64,
    /// What the issue asks of it, when it asks.
    pub(crate) target: Option<f64>,
}

/// A gate rule's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verdict {
    pub(crate) rule: String,
    pub(crate) value: f64,
    pub(crate) passed: bool,
}

/// A value for `manifold compare`, with the direction that is better.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateValue {
    pub(crate) value: f64,
    /// `higher` or `lower`.
    pub(crate) better: &'static str,
}

/// Everything a scenario run produced.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) schema: &'static str,
    pub(crate) scenario: Scenario,
    pub(crate) machine: Machine,
    pub(crate) cpus: CpuPlan,
    /// `git describe` of the tree measured, when known.
    pub(crate) commit: Option<String>,
    /// Seconds since the Unix epoch when the run began.
    pub(crate) started_unix: u64,
    pub(crate) runs: Vec<Measurement>,
    /// Idle-session memory runs (SETUP, no PLAY).
    pub(crate) idle: Vec<Measurement>,
    /// Runs that failed, with why.
    pub(crate) failures: Vec<String>,
    /// Runs left out on purpose, with why.
    pub(crate) skipped: Vec<String>,
    pub(crate) ratios: Vec<Ratio>,
    pub(crate) verdicts: Vec<Verdict>,
    /// What `manifold compare base.json new.json` compares.
    pub(crate) gate: BTreeMap<String, GateValue>,
    /// Every gate rule held and no run failed.
    pub(crate) passed: bool,
}

impl ScenarioResult {
    /// A result with no measurement yet.
    pub(crate) fn new(
        scenario: Scenario,
        machine: Machine,
        cpus: CpuPlan,
        commit: Option<String>,
        started_unix: u64,
    ) -> ScenarioResult {
        ScenarioResult {
            schema: SCHEMA,
            scenario,
            machine,
            cpus,
            commit,
            started_unix,
            runs: Vec::new(),
            idle: Vec::new(),
            failures: Vec::new(),
            skipped: Vec::new(),
            ratios: Vec::new(),
            verdicts: Vec::new(),
            gate: BTreeMap::new(),
            passed: false,
        }
    }

    /// Works out the ratios, verdicts and compare values from the measurements.
    pub(crate) fn conclude(&mut self) {
        self.ratios.clear();
        for &readers in &self.scenario.readers.ladder {
            for (a, b, target) in RATIOS {
                if let Some(value) = self.ratio(a, b, readers) {
                    let name = format!("{a}/{b}");
                    self.ratios.push(Ratio { name, readers, value, target: Some(target) });
                }
            }
        }
        self.verdicts.clear();
        self.gate.clear();
        if let Some(gate) = self.scenario.gate.clone() {
            for (key, min) in &gate.min_ratio {
                let Ok((a, b)) = split_ratio(key) else { continue };
                for &readers in &self.scenario.readers.ladder {
                    let value = self.ratio(a, b, readers).unwrap_or(0.0);
                    self.verdicts.push(Verdict {
                        rule: format!("{key} at {readers} readers >= {min}"),
                        value,
                        passed: value >= *min,
                    });
                    self.gate
                        .insert(format!("{key}@{readers}"), GateValue { value, better: "higher" });
                }
            }
            if let Some(max) = gate.max_relay_loss {
                for m in self.runs.iter().filter(|m| m.target.is_relay()) {
                    self.verdicts.push(Verdict {
                        rule: format!("{} loss at {} readers <= {max}", m.target, m.readers),
                        value: m.loss_ratio,
                        passed: m.loss_ratio <= max,
                    });
                }
            }
            for m in self.runs.iter().filter(|m| m.target.is_relay()) {
                self.gate.insert(
                    format!("{} packets_per_cpu_s@{}", m.target, m.readers),
                    GateValue { value: m.packets_per_cpu_s, better: "higher" },
                );
            }
        }
        self.passed = self.failures.is_empty() && self.verdicts.iter().all(|v| v.passed);
    }

    fn run(&self, target: Target, readers: u32) -> Option<&Measurement> {
        self.runs.iter().find(|m| m.target == target && m.readers == readers)
    }

    /// Packets per server CPU-second of `a` over `b`, both at `readers`.
    pub(crate) fn ratio(&self, a: Target, b: Target, readers: u32) -> Option<f64> {
        let (a, b) = (self.run(a, readers)?, self.run(b, readers)?);
        (b.packets_per_cpu_s > 0.0).then(|| a.packets_per_cpu_s / b.packets_per_cpu_s)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::measure::Latency;

    pub(crate) fn measurement(target: Target, readers: u32, ppcs: f64) -> Measurement {
        Measurement {
            target,
            readers,
            transport: "udp".into(),
            ramp_s: 1,
            duration_s: 5,
            idle: false,
            server_cpu_s: 1.0,
            wall_s: 6.0,
            steady_cpu_share: 0.25,
            delivered_packets: ppcs as u64,
            packets_per_cpu_s: ppcs,
            rss_base_kib: 10_000,
            rss_peak_kib: 12_000,
            rss_per_reader_b: 2_000.0 * 1024.0 / f64::from(readers),
            e2e: Some(Latency { samples: 10, p50_us: 80, p99_us: 400, p99_9_us: 900, max_us: 950 }),
            first_packet: None,
            loss_ratio: 0.0,
            sessions_ok: u64::from(readers),
            sessions_failed: 0,
            errors: 0,
            generator_limited: false,
            generator_reasons: Vec::new(),
            report: "x.json".into(),
        }
    }

    pub(crate) fn result(runs: Vec<Measurement>, gate: &str) -> ScenarioResult {
        let text = format!(
            "name = \"t\"\ndescription = \"d\"\n[stream]\nbitrate = 1000000\n[readers]\n\
             ladder = [100, 1000]\ntransport = \"udp\"\n[run]\nduration_s = 5\nramp_s = 1\n\
             targets = [\"blaster-sendto\", \"relay-1\"]\n{gate}"
        );
        let scenario: Scenario = toml::from_str(&text).unwrap();
        scenario.validate().unwrap();
        let machine = Machine {
            nproc: 2,
            cpu: "cpu".into(),
            kernel: "k".into(),
            load_start: 0.5,
            load_end: 0.7,
        };
        let mut r = ScenarioResult::new(scenario, machine, CpuPlan::for_machine(2), None, 0);
        r.runs = runs;
        r
    }

    #[test]
    fn ratios_and_gate_at_every_rung() {
        let runs = vec![
            measurement(Target::BlasterSendto, 100, 200_000.0),
            measurement(Target::Relay1, 100, 500_000.0),
            measurement(Target::BlasterSendto, 1000, 250_000.0),
            measurement(Target::Relay1, 1000, 250_000.0),
        ];
        let mut r = result(
            runs,
            "[gate]\nmin_ratio = { \"relay-1/blaster-sendto\" = 1.5 }\nmax_relay_loss = 0.001",
        );
        r.conclude();
        let at = |n| r.ratios.iter().find(|x| x.readers == n).unwrap().value;
        assert_eq!((at(100), at(1000)), (2.5, 1.0));
        // 2.5 passes, 1.0 fails the 1.5 floor; loss rules pass.
        assert_eq!(r.verdicts.iter().filter(|v| !v.passed).count(), 1);
        assert!(!r.passed);
        assert_eq!(r.gate["relay-1/blaster-sendto@100"].value, 2.5);
        assert_eq!(r.gate["relay-1 packets_per_cpu_s@1000"].better, "higher");
    }

    #[test]
    fn a_missing_run_fails_the_gate_instead_of_passing_it() {
        let runs = vec![measurement(Target::Relay1, 100, 500_000.0)];
        let mut r = result(runs, "[gate]\nmin_ratio = { \"relay-1/blaster-sendto\" = 1.5 }");
        r.conclude();
        assert!(!r.passed);
        let mut plain = result(vec![measurement(Target::Relay1, 100, 1.0)], "");
        plain.conclude();
        assert!(plain.passed && plain.verdicts.is_empty());
    }
}
