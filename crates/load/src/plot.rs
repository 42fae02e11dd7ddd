//! `manifold plot report.json|run.hlog -o out.svg`: the percentile spectrum of end-to-end
//! latency and setup latency, one panel each, as a hand-written SVG for a person to look at.
//!
//! The x axis counts "nines" (`-log10(1 - q)`): 0 is the minimum, 1 is p90, 2 p99, up to 5
//! (p99.999), so the tail gets as much room as the body. From an hlog every point comes from
//! the full histogram; a JSON report only has its summary percentiles, drawn as a polyline
//! through them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::merge::read_hlog;
use crate::metrics::Metric;

/// Flags of `manifold plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// A `manifold load --json` report or an `--hlog` interval log.
    pub input: PathBuf,
    /// The SVG file to write.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Metrics to draw, one panel each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "e2e,setup")]
    pub metrics: Vec<String>,
}

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The input could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The input is neither a report nor an interval log, or has none of the metrics.
    #[error("{path}: {reason}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One panel's curve: (nines, microseconds) points, nines ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// Highest nines drawn (p99.999).
pub const MAX_NINES: f64 = 5.0;

/// The quantile at `nines`.
fn quantile(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// Reads the input (JSON when it starts with `{`, else an hlog) into one series per metric
/// present.
pub fn read_series(path: &Path, metrics: &[String]) -> Result<Vec<Series>, PlotError> {
    let bytes =
        std::fs::read(path).map_err(|source| PlotError::Io { path: path.to_owned(), source })?;
    let bad = |reason: String| PlotError::Input { path: path.to_owned(), reason };
    let mut out = Vec::new();
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        for name in metrics {
            let Some(m) = v.get("metrics").and_then(|m| m.get(name)) else { continue };
            let at = |k: &str| m.get(k).and_then(Value::as_f64);
            let mut points = Vec::new();
            for (k, nines) in [
                ("min", 0.0),
                ("p50", 2f64.log10()),
                ("p90", 1.0),
                ("p99", 2.0),
                ("p99_9", 3.0),
                ("p99_99", 4.0),
                ("max", MAX_NINES),
            ] {
                if let Some(us) = at(k) {
                    points.push((nines, us));
                }
            }
            if !points.is_empty() {
                out.push(Series { name: name.clone(), points });
            }
        }
    } else {
        let contents = read_hlog(path).map_err(|e| bad(e.to_string()))?;
        for name in metrics {
            let Some(metric) = Metric::from_name(name) else { continue };
            let h = contents.metrics.histogram(metric);
            if h.is_empty() {
                continue;
            }
            let steps = 250;
            let points = (0..=steps)
                .map(|i| {
                    let nines = MAX_NINES * f64::from(i) / f64::from(steps);
                    let q = quantile(nines);
                    (nines, h.value_at_quantile(q) as f64)
                })
                .collect();
            out.push(Series { name: name.clone(), points });
        }
    }
    if out.is_empty() {
        return Err(bad(format!("none of the metrics {metrics:?} has data")));
    }
    Ok(out)
}

/// A round step for an axis spanning `range` with about five ticks.
fn tick_step(range: f64) -> f64 {
    let raw = (range / 5.0).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The SVG text: one panel per series, stacked.
pub fn svg(series: &[Series], title: &str) -> String {
    const W: f64 = 760.0;
    const PANEL_H: f64 = 260.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 50.0;
    const GAP: f64 = 70.0;
    let plot_w = W - LEFT - RIGHT;
    let h = TOP + series.len() as f64 * (PANEL_H + GAP);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    for (i, series) in series.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL_H + GAP);
        let bottom = top + PANEL_H;
        let max_ms = series.points.iter().map(|p| p.1 / 1000.0).fold(0.0, f64::max);
        let step = tick_step(max_ms);
        let y_max = (max_ms / step).ceil().max(1.0) * step;
        let x = |nines: f64| LEFT + nines / MAX_NINES * plot_w;
        let y = |ms: f64| bottom - ms / y_max * PANEL_H;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-size="13">{} latency (ms) by percentile</text>"#,
            top - 8.0,
            escape(&series.name)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" stroke="#888"/>"##
        );
        let mut t = 0.0;
        while t <= y_max + step / 2.0 {
            let ty = y(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{}" y2="{ty:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + plot_w,
                LEFT - 6.0,
                ty + 4.0,
                trim_number(t)
            );
            t += step;
        }
        for (nines, label) in [
            (0.0, "0%"),
            (1.0, "90%"),
            (2.0, "99%"),
            (3.0, "99.9%"),
            (4.0, "99.99%"),
            (5.0, "99.999%"),
        ] {
            let tx = x(nines);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{top}" x2="{tx:.1}" y2="{bottom}" stroke="#ddd"/><text x="{tx:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                bottom + 16.0
            );
        }
        let path: Vec<String> = series
            .points
            .iter()
            .map(|&(n, us)| format!("{:.1},{:.1}", x(n), y(us / 1000.0)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#1f6feb" stroke-width="2"/>"##,
            path.join(" ")
        );
    }
    s.push_str("</svg>\n");
    s
}

fn trim_number(v: f64) -> String {
    let t = format!("{v:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Reads `args.input`, draws, writes `args.output`.
pub fn plot(args: &PlotArgs) -> Result<(), PlotError> {
    let series = read_series(&args.input, &args.metrics)?;
    let title = format!("latency percentile spectrum: {}", args.input.display());
    std::fs::write(&args.output, svg(&series, &title))
        .map_err(|source| PlotError::Io { path: args.output.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_and_ticks() {
        assert!((quantile(2.0) - 0.99).abs() < 1e-12);
        assert_eq!(tick_step(10.0), 2.0);
        assert_eq!(tick_step(0.7), 0.2);
    }

    #[test]
    fn svg_from_a_json_report() {
        let dir = std::env::temp_dir().join(format!("manifold-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("r.json");
        std::fs::write(
            &input,
            r#"{"metrics":{"e2e":{"min":100,"p50":500,"p90":900,"p99":2000,"p99_9":4000,"p99_99":8000,"max":9000}}}"#,
        )
        .unwrap();
        let output = dir.join("r.svg");
        plot(&PlotArgs {
            input,
            output: output.clone(),
            metrics: vec!["e2e".into(), "setup".into()],
        })
        .unwrap();
        let text = std::fs::read_to_string(&output).unwrap();
        assert!(text.starts_with("<svg"));
        assert_eq!(text.matches("<polyline").count(), 1);
        assert!(text.contains("99.999%"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The first point of a line is real data (the minimum at 0 nines, or the first
    /// percentile there is), never an invented (0%, 0 ms).
    #[test]
    fn lines_start_at_the_first_real_point() {
        let dir = std::env::temp_dir().join(format!("manifold-plot0-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let metrics = vec!["e2e".to_owned()];
        let json = dir.join("r.json");
        std::fs::write(
            &json,
            r#"{"metrics":{"e2e":{"min":2000,"p50":2500,"p90":2900,"p99":4000,"p99_9":6000,"p99_99":8000,"max":10000}}}"#,
        )
        .unwrap();
        let series = read_series(&json, &metrics).unwrap();
        let summary = [2000.0, 2500.0, 2900.0, 4000.0, 6000.0, 8000.0, 10000.0];
        assert_eq!(series[0].points.first(), Some(&(0.0, 2000.0)));
        let values: Vec<f64> = series[0].points.iter().map(|p| p.1).collect();
        assert_eq!(values, summary, "every point is one of the summary's");
        // The polyline starts at the minimum: x of 0 nines, y of 2 ms on a 10 ms axis.
        let text = svg(&series, "t");
        let line = text.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert!(line.starts_with(r#"<polyline points="80.0,258.0 "#), "{line}");
        assert_eq!(line.matches(',').count(), summary.len(), "{line}");

        // Without a minimum the line starts at p50 (0.3 nines), not at 0.
        std::fs::write(&json, r#"{"metrics":{"e2e":{"p50":2500,"p99":4000,"max":10000}}}"#)
            .unwrap();
        let series = read_series(&json, &metrics).unwrap();
        assert_eq!(series[0].points.len(), 3);
        assert_eq!(series[0].points[0], (2f64.log10(), 2500.0));

        // From an hlog, the full histogram: the line starts at its minimum.
        let hlog = dir.join("r.hlog");
        let mut rec = crate::hlog::IntervalRecorder::new();
        let mut m = crate::metrics::Metrics::new();
        for v in 0..1000u64 {
            m.record_us(Metric::E2e, 3000 + v);
        }
        rec.close(0, &m);
        crate::hlog::write(&hlog, &rec.blobs, std::time::SystemTime::now(), None).unwrap();
        let series = read_series(&hlog, &metrics).unwrap();
        let (nines, first) = series[0].points[0];
        assert_eq!(nines, 0.0);
        assert!((2990.0..=3010.0).contains(&first), "starts at {first} us");
        assert!(series[0].points.iter().all(|p| p.1 >= 2990.0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
