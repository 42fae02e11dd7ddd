//! Pass/fail thresholds: `e2e.p99<5ms`, `setup.p99.9<=200ms`, `gap.max<1s`, `errors<1`,
//! `loss.ratio<0.01` (or `<1%`), `sessions.ok>=20`.
//!
//! The left side is a histogram metric with a statistic (`pNN[.N..]`, `max`, `min`, `mean`,
//! `count`), or a plain value of the report (see `Report::value`; an unknown name does not
//! parse). On the right, durations take a unit (`us`, `ms`, `s`; a bare number is
//! milliseconds); other values are plain numbers, or percentages.
//!
//! A statistic of an empty histogram has no data and fails. A plain value that was not
//! measured (a report merged from interval logs without counts) cannot be judged: the
//! verdict says so, and the exit code is 1, never a pass.

use std::fmt;

use crate::metrics::{ErrorKind, Metric, Metrics};
use crate::quantity::parse_duration;

/// The plain values thresholds can name (see `Report::value`); besides these,
/// `errors.<kind>` and `errors.<status code>`.
pub const VALUE_NAMES: [&str; 28] = [
    "errors",
    "sessions.scheduled",
    "sessions.started",
    "sessions.ok",
    "sessions.failed",
    "sessions.played",
    "sessions.cut_by_hold",
    "sessions.no_keyframe",
    "sessions.no_sender_report",
    "behind_schedule",
    "clipped",
    "loss",
    "lost",
    "loss.ratio",
    "duplicates",
    "reordered",
    "foreign",
    "ssrc_changes",
    "wrong_payload_type",
    "sender_reports",
    "packets",
    "bytes",
    "packets_per_s",
    "bits_per_s",
    "setups_per_s",
    "rxq_drops",
    "generator_limited",
    "cpu",
];

/// What the run cost the server, with `--server-pid` (see `Report::value`): delivered packets
/// per server CPU-second, its CPU seconds, its CPU share of one core, its peak resident
/// memory and its memory growth per open session (KiB).
pub const SERVER_VALUE_NAMES: [&str; 5] = [
    "server.pkts_per_cpu_s",
    "server.cpu_s",
    "server.cpu",
    "server.rss_peak_kib",
    "server.rss_per_session_kib",
];

/// Whether a threshold may name `name`: one of [`VALUE_NAMES`] or [`SERVER_VALUE_NAMES`], or
/// `errors.` with an error kind or a status code.
pub fn is_value_name(name: &str) -> bool {
    if VALUE_NAMES.contains(&name) || SERVER_VALUE_NAMES.contains(&name) {
        return true;
    }
    name.strip_prefix("errors.").is_some_and(|key| {
        ErrorKind::ALL.iter().any(|k| k.name() == key)
            || (key.len() == 3 && key.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// A statistic of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A percentile, 0-100.
    Percentile(f64),
    /// The largest value.
    Max,
    /// The smallest value.
    Min,
    /// The mean.
    Mean,
    /// How many values were recorded.
    Count,
}

/// What a threshold looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A statistic of a histogram metric.
    Metric(Metric, Stat),
    /// A named value of the report (counts, ratios, rates).
    Value(String),
}

/// The comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// Why a threshold does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold `{expr}`: {reason}")]
pub struct ThresholdError {
    /// The expression as given.
    pub expr: String,
    /// What is wrong.
    pub reason: String,
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as given.
    pub expr: String,
    /// What it looks at.
    pub subject: Subject,
    /// The comparison.
    pub op: Op,
    /// The limit: microseconds for duration statistics, else the plain number.
    pub limit: f64,
}

/// A threshold's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Verdict {
    /// The expression.
    pub threshold: String,
    /// The measured value (microseconds for durations); `None` when there was nothing to
    /// measure (an empty histogram, which fails, or a value not measured, which cannot be
    /// judged).
    pub actual: Option<f64>,
    /// Whether the threshold could be judged: `false` when its value was not measured at all
    /// (not a pass, and not a plain failure either: exit code 1).
    pub judged: bool,
    /// The limit, in the same unit.
    pub limit: f64,
    /// `"us"` for durations, `""` for plain numbers.
    pub unit: &'static str,
    /// Whether it held.
    pub passed: bool,
}

impl Threshold {
    /// Parses `LHS OP RHS`.
    pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
        let err =
            |reason: &str| ThresholdError { expr: expr.to_owned(), reason: reason.to_owned() };
        let at = expr.find(['<', '>']).ok_or_else(|| err("expected <, <=, > or >="))?;
        let (lhs, rest) = expr.split_at(at);
        let (op, rhs) = if let Some(r) = rest.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = rest.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            return Err(err("expected <, <=, > or >="));
        };
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        if lhs.is_empty() || rhs.is_empty() {
            return Err(err("both sides are needed"));
        }
        let subject = parse_subject(lhs).map_err(|r| err(&r))?;
        let limit = match &subject {
            Subject::Metric(_, Stat::Count) | Subject::Value(_) => parse_number(rhs),
            Subject::Metric(..) => parse_duration_us(rhs),
        }
        .map_err(|r| err(&r))?;
        Ok(Threshold { expr: expr.to_owned(), subject, op, limit })
    }

    /// Evaluates against merged metrics and the report's named values.
    pub fn evaluate(&self, metrics: &Metrics, value: &dyn Fn(&str) -> Option<f64>) -> Verdict {
        let (actual, judged) = match &self.subject {
            Subject::Metric(m, stat) => (stat_of(metrics, *m, *stat), true),
            Subject::Value(name) => {
                let v = value(name);
                (v, v.is_some())
            }
        };
        let unit = match self.subject {
            Subject::Metric(_, Stat::Count) | Subject::Value(_) => "",
            Subject::Metric(..) => "us",
        };
        Verdict {
            threshold: self.expr.clone(),
            actual,
            limit: self.limit,
            unit,
            judged,
            passed: actual.is_some_and(|a| self.op.holds(a, self.limit)),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// A statistic of one metric's histogram; `None` when it is empty (except `count`).
pub fn stat_of(metrics: &Metrics, metric: Metric, stat: Stat) -> Option<f64> {
    let h = metrics.histogram(metric);
    if stat == Stat::Count {
        return Some(h.len() as f64);
    }
    if h.is_empty() {
        return None;
    }
    Some(match stat {
        Stat::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
        Stat::Max => h.max() as f64,
        Stat::Min => h.min() as f64,
        Stat::Mean => h.mean(),
        Stat::Count => h.len() as f64,
    })
}

fn parse_subject(lhs: &str) -> Result<Subject, String> {
    // A metric name followed by `.STAT`; percentiles contain dots (`p99.9`), so try each
    // split point from the left.
    for (i, _) in lhs.match_indices('.') {
        let (name, stat) = (&lhs[..i], &lhs[i + 1..]);
        let Some(metric) = Metric::from_name(name) else { continue };
        let stat = match stat {
            "max" => Stat::Max,
            "min" => Stat::Min,
            "mean" | "avg" => Stat::Mean,
            "count" => Stat::Count,
            s => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("unknown statistic `{s}` of {name}"))?;
                Stat::Percentile(p)
            }
        };
        return Ok(Subject::Metric(metric, stat));
    }
    if Metric::from_name(lhs).is_some() {
        return Err(format!("`{lhs}` needs a statistic, e.g. {lhs}.p99"));
    }
    if !is_value_name(lhs) {
        return Err(format!(
            "unknown value `{lhs}`: expected a metric with a statistic (e.g. e2e.p99) or one \
             of {}, {}, errors.<kind>, errors.<status>",
            VALUE_NAMES.join(", "),
            SERVER_VALUE_NAMES.join(", ")
        ));
    }
    Ok(Subject::Value(lhs.to_owned()))
}

fn parse_number(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (s, 1.0),
    };
    num.trim().parse::<f64>().map(|n| n * scale).map_err(|_| format!("bad number `{s}`"))
}

fn parse_duration_us(s: &str) -> Result<f64, String> {
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // A bare number is milliseconds.
        return s.parse::<f64>().map(|ms| ms * 1000.0).map_err(|_| format!("bad number `{s}`"));
    }
    parse_duration(s).map(|d| d.as_secs_f64() * 1e6)
}
