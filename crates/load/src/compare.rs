//! `manifold compare base.json new.json --max-regression 10%`: a CI regression gate between
//! two `--json` reports, with a readable diff.
//!
//! Latencies (every histogram metric's percentiles), loss and errors are lower-is-better;
//! rates (setups, packets and bits per second) are higher-is-better. A row regressed when it
//! moved the wrong way by more than the allowed share of the base value. Latency changes
//! smaller than `--ignore-below` (absolute) never count: a p99 going from 40 µs to 60 µs is
//! +50% and noise.
//!
//! It also compares two results of the perf harness (`manifold-perf`, schema
//! [`PERF_SCHEMA`]): their `gate` objects name each value and the direction that is better;
//! a value the base has and the new result lacks counts as regressed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::quantity::parse_duration;

/// Flags of `manifold compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline report (`manifold load --json`, or a `manifold-perf` result).
    pub base: PathBuf,
    /// The report to judge.
    pub new: PathBuf,
    /// Largest allowed regression of any row, e.g. `10%` or `0.1`.
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    pub max_regression: f64,
    /// Percentiles compared for every latency metric (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "p50,p90,p99,p99_9")]
    pub percentiles: Vec<String>,
    /// Latency changes smaller than this never count as regressions.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub ignore_below: std::time::Duration,
}

/// Why the comparison could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not a `manifold load` JSON report.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl CompareError {
    /// The process exit code (1).
    pub fn exit_code(&self) -> i32 {
        crate::EXIT_ERROR
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Latencies, loss, errors.
    Lower,
    /// Rates.
    Higher,
}

/// One compared value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it is, e.g. `e2e p99` or `setups_per_s`.
    pub name: String,
    /// `"us"` for latencies, `""` otherwise.
    pub unit: &'static str,
    /// Base value.
    pub base: f64,
    /// New value.
    pub new: f64,
    /// Which way is better.
    pub better: Better,
    /// Relative change in the bad direction (positive = worse); infinite when the base is 0
    /// and the new value is worse.
    pub worse_by: f64,
    /// Whether it regressed beyond the limit.
    pub regressed: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Every row, in report order.
    pub rows: Vec<Row>,
    /// The limit.
    pub max_regression: f64,
}

impl Comparison {
    /// Whether any row regressed beyond the limit.
    pub fn regressed(&self) -> bool {
        self.rows.iter().any(|r| r.regressed)
    }

    /// 0 when nothing regressed, 99 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.regressed() {
            crate::EXIT_THRESHOLD
        } else {
            crate::EXIT_PASS
        }
    }

    /// The readable diff.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<34} {:>14} {:>14} {:>10}  verdict (limit {:.1}%)",
            "metric",
            "base",
            "new",
            "change",
            self.max_regression * 100.0
        );
        for r in &self.rows {
            let show = |v: f64| {
                if r.unit == "us" {
                    format!("{:.3} ms", v / 1000.0)
                } else if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.4}")
                }
            };
            let change = if r.new.is_nan() {
                "missing".to_owned()
            } else if r.base == 0.0 {
                if r.new == 0.0 {
                    "=".to_owned()
                } else {
                    "from 0".to_owned()
                }
            } else {
                format!("{:+.1}%", (r.new - r.base) / r.base * 100.0)
            };
            let verdict = if r.regressed {
                "REGRESSED"
            } else if r.worse_by < 0.0 {
                "better"
            } else {
                "ok"
            };
            let _ = writeln!(
                out,
                "{:<34} {:>14} {:>14} {:>10}  {verdict}",
                r.name,
                show(r.base),
                show(r.new),
                change
            );
        }
        let n = self.rows.iter().filter(|r| r.regressed).count();
        if n == 0 {
            let _ = writeln!(out, "\nno regression beyond {:.1}%", self.max_regression * 100.0);
        } else {
            let _ = writeln!(out, "\n{n} regression(s) beyond {:.1}%", self.max_regression * 100.0);
        }
        out
    }
}

/// Parses `10%` or `0.1` as a share.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}`: expected e.g. 10% or 0.1"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("`{s}` must be a non-negative share"));
    }
    Ok(v)
}

/// The schema of the perf harness's results (`perf/harness`).
pub const PERF_SCHEMA: &str = "manifold-perf/1";

/// Reads a JSON report: `manifold load --json` or a `manifold-perf` result.
pub fn read_report(path: &Path) -> Result<Value, CompareError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| CompareError::Read { path: path.to_owned(), source })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CompareError::Format { path: path.to_owned(), reason: e.to_string() })?;
    match value.get("schema").and_then(Value::as_str) {
        Some(s) if s == crate::report::SCHEMA || s == PERF_SCHEMA => Ok(value),
        other => Err(CompareError::Format {
            path: path.to_owned(),
            reason: format!(
                "schema {:?}, expected {:?} (a `manifold load --json` report) or {:?} (a \
                 `manifold-perf` result)",
                other.unwrap_or("none"),
                crate::report::SCHEMA,
                PERF_SCHEMA
            ),
        }),
    }
}

/// Reads the two reports to compare and checks they are of the same kind.
pub fn read_pair(base: &Path, new: &Path) -> Result<(Value, Value), CompareError> {
    let (b, n) = (read_report(base)?, read_report(new)?);
    let schema = |v: &Value| v.get("schema").and_then(Value::as_str).unwrap_or("").to_owned();
    if schema(&b) != schema(&n) {
        return Err(CompareError::Format {
            path: new.to_owned(),
            reason: format!(
                "schema {:?}, but the base {} is {:?}: compare reports of the same kind",
                schema(&n),
                base.display(),
                schema(&b)
            ),
        });
    }
    Ok((b, n))
}

/// Metrics that measure the generator, not the server: shown nowhere, gated never.
const GENERATOR_METRICS: [&str; 2] = ["timer_lag", "start_lag"];

/// Plain values compared: JSON path, name, which way is better.
const VALUES: [(&[&str], &str, Better); 7] = [
    (&["errors", "total"], "errors", Better::Lower),
    (&["sessions", "failed"], "sessions.failed", Better::Lower),
    (&["media", "loss_ratio"], "loss.ratio", Better::Lower),
    (&["media", "duplicates"], "duplicates", Better::Lower),
    (&["setups_per_s"], "setups_per_s", Better::Higher),
    (&["media", "packets_per_s"], "packets_per_s", Better::Higher),
    (&["media", "bits_per_s"], "bits_per_s", Better::Higher),
];

/// Compares two reports.
pub fn compare(base: &Value, new: &Value, args: &CompareArgs) -> Comparison {
    if base.get("schema").and_then(Value::as_str) == Some(PERF_SCHEMA) {
        return compare_gates(base, new, args);
    }
    let mut rows = Vec::new();
    let slack_us = args.ignore_below.as_secs_f64() * 1e6;
    let empty = serde_json::Map::new();
    let base_metrics = base.get("metrics").and_then(Value::as_object).unwrap_or(&empty);
    let new_metrics = new.get("metrics").and_then(Value::as_object).unwrap_or(&empty);
    for (name, b) in base_metrics {
        if GENERATOR_METRICS.contains(&name.as_str()) {
            continue;
        }
        let Some(n) = new_metrics.get(name) else { continue };
        for p in &args.percentiles {
            let (Some(bv), Some(nv)) =
                (b.get(p).and_then(Value::as_f64), n.get(p).and_then(Value::as_f64))
            else {
                continue;
            };
            let mut row = judge(format!("{name} {p}"), "us", bv, nv, Better::Lower, args);
            if (nv - bv).abs() < slack_us {
                row.regressed = false;
            }
            rows.push(row);
        }
    }
    for (path, name, better) in VALUES {
        let at = |v: &Value| path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_f64);
        if let (Some(bv), Some(nv)) = (at(base), at(new)) {
            rows.push(judge(name.to_owned(), "", bv, nv, better, args));
        }
    }
    Comparison { rows, max_regression: args.max_regression }
}

/// Compares the `gate` values of two perf results.
fn compare_gates(base: &Value, new: &Value, args: &CompareArgs) -> Comparison {
    let empty = serde_json::Map::new();
    let gate = |v: &Value| v.get("gate").and_then(Value::as_object).unwrap_or(&empty).clone();
    let (base_gate, new_gate) = (gate(base), gate(new));
    let mut rows = Vec::new();
    for (name, b) in &base_gate {
        let better = match b.get("better").and_then(Value::as_str) {
            Some("lower") => Better::Lower,
            _ => Better::Higher,
        };
        let Some(bv) = b.get("value").and_then(Value::as_f64) else { continue };
        match new_gate.get(name).and_then(|n| n.get("value")).and_then(Value::as_f64) {
            Some(nv) => rows.push(judge(name.clone(), "", bv, nv, better, args)),
            // Gone from the new result: the run that produced it failed or was dropped.
            None => rows.push(Row {
                name: name.clone(),
                unit: "",
                base: bv,
                new: f64::NAN,
                better,
                worse_by: f64::INFINITY,
                regressed: true,
            }),
        }
    }
    Comparison { rows, max_regression: args.max_regression }
}

fn judge(
    name: String,
    unit: &'static str,
    base: f64,
    new: f64,
    better: Better,
    args: &CompareArgs,
) -> Row {
    let worse = match better {
        Better::Lower => new - base,
        Better::Higher => base - new,
    };
    let worse_by = if base != 0.0 {
        worse / base.abs()
    } else if worse > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Row { name, unit, base, new, better, worse_by, regressed: worse_by > args.max_regression }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CompareArgs {
        CompareArgs {
            base: PathBuf::new(),
            new: PathBuf::new(),
            max_regression: 0.1,
            percentiles: vec!["p50".into(), "p99".into()],
            ignore_below: std::time::Duration::from_millis(1),
        }
    }

    fn report(p99: u64, setups: f64, errors: u64) -> Value {
        serde_json::json!({
            "schema": crate::report::SCHEMA,
            "setups_per_s": setups,
            "errors": {"total": errors},
            "metrics": {
                "e2e": {"p50": 1000, "p99": p99},
                "timer_lag": {"p50": 1, "p99": 900_000},
            }
        })
    }

    #[test]
    fn equal_reports_pass() {
        let c = compare(&report(5000, 100.0, 0), &report(5000, 100.0, 0), &args());
        assert!(!c.regressed(), "{}", c.table());
        assert_eq!(c.exit_code(), 0);
        assert!(!c.table().contains("timer_lag"));
    }

    #[test]
    fn doubled_p99_fewer_setups_and_new_errors_regress() {
        let c = compare(&report(5000, 100.0, 0), &report(10_000, 100.0, 0), &args());
        assert!(c.regressed());
        assert_eq!(c.exit_code(), 99);
        assert!(c.table().contains("REGRESSED"));
        assert!(compare(&report(5000, 100.0, 0), &report(5000, 80.0, 0), &args()).regressed());
        assert!(compare(&report(5000, 100.0, 0), &report(5000, 100.0, 1), &args()).regressed());
        // Better in every way is no regression.
        assert!(!compare(&report(5000, 100.0, 3), &report(2000, 150.0, 0), &args()).regressed());
    }

    #[test]
    fn small_absolute_latency_changes_are_noise() {
        let c = compare(&report(40, 100.0, 0), &report(60, 100.0, 0), &args());
        assert!(!c.regressed(), "{}", c.table());
    }

    fn perf(ratio: f64, with_rate: bool) -> Value {
        let mut gate = serde_json::json!({
            "relay-1/blaster-sendto@500": {"value": ratio, "better": "higher"},
        });
        if with_rate {
            gate["relay-1 packets_per_cpu_s@500"] =
                serde_json::json!({"value": 600000.0, "better": "higher"});
        }
        serde_json::json!({"schema": PERF_SCHEMA, "gate": gate})
    }

    #[test]
    fn perf_results_compare_their_gate_values() {
        let mut a = args();
        a.max_regression = 0.4;
        assert!(!compare(&perf(2.5, true), &perf(2.0, true), &a).regressed());
        // Twice the cost per packet halves the ratio: beyond a 40% allowance.
        let halved = compare(&perf(2.5, true), &perf(1.25, true), &a);
        assert!(halved.regressed(), "{}", halved.table());
        // A value the new result lacks is a regression, shown as missing.
        let missing = compare(&perf(2.5, true), &perf(2.5, false), &a);
        assert!(missing.regressed());
        assert!(missing.table().contains("missing"), "{}", missing.table());
    }

    #[test]
    fn shares() {
        assert_eq!(parse_share("10%").unwrap(), 0.1);
        assert_eq!(parse_share("0.25").unwrap(), 0.25);
        assert!(parse_share("-1").is_err());
    }
}
