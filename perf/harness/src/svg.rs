//! The cost-growth plot: server CPU and memory against the reader count, one line per
//! target, as a standalone SVG for a person to look at beside RESULTS.md.

use std::fmt::Write as _;

use crate::results::ScenarioResult;
use crate::scenario::Target;

const W: f64 = 900.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 50.0;
const GAP: f64 = 70.0;
const COLORS: [&str; 7] =
    ["#888888", "#b07aa1", "#59a14f", "#76b7b2", "#e15759", "#f28e2b", "#4e79a7"];

/// One panel: a value per (target, readers).
struct Panel {
    title: &'static str,
    unit: &'static str,
    value: fn(&crate::measure::Measurement) -> f64,
}

const PANELS: [Panel; 2] = [
    Panel {
        title: "Server CPU with every reader playing",
        unit: "% of one core",
        value: |m| m.steady_cpu_share * 100.0,
    },
    Panel {
        title: "Server resident memory, peak",
        unit: "MiB",
        value: |m| m.rss_peak_kib as f64 / 1024.0,
    },
];

/// The SVG, or `None` when there is fewer than one line of two points to draw.
pub(crate) fn cost_growth(result: &ScenarioResult) -> Option<String> {
    let mut ladder = result.scenario.readers.ladder.clone();
    ladder.sort_unstable();
    ladder.dedup();
    let lines: Vec<(usize, Target, Vec<&crate::measure::Measurement>)> = Target::ALL
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let mut pts: Vec<_> = result.runs.iter().filter(|m| m.target == t).collect();
            pts.sort_by_key(|m| m.readers);
            (i, t, pts)
        })
        .filter(|(_, _, pts)| !pts.is_empty())
        .collect();
    if ladder.len() < 2 || lines.iter().all(|(_, _, p)| p.len() < 2) {
        return None;
    }
    let (lo, hi) = (f64::from(ladder[0]), f64::from(*ladder.last()?));
    let log = hi / lo >= 10.0;
    let plot_w = W - LEFT - RIGHT;
    let x_of = |r: f64| {
        let f = if log { (r.ln() - lo.ln()) / (hi.ln() - lo.ln()) } else { (r - lo) / (hi - lo) };
        LEFT + f * plot_w
    };
    let height = TOP + 2.0 * PANEL_H + GAP + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"15\">Cost growth, scenario {} ({} readers, \
         {:.2} Mbit/s)</text>",
        escape(&result.scenario.name),
        escape(&result.scenario.readers.transport),
        result.scenario.stream.bitrate as f64 / 1e6
    );
    for (p, panel) in PANELS.iter().enumerate() {
        let top = TOP + p as f64 * (PANEL_H + GAP);
        let bottom = top + PANEL_H;
        let max = lines
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|m| (panel.value)(m)))
            .fold(0.0_f64, f64::max);
        let y_max = nice_ceiling(max);
        let y_of = |v: f64| bottom - v / y_max * PANEL_H;
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"13\">{} ({})</text>",
            top - 8.0,
            panel.title,
            panel.unit
        );
        let _ = writeln!(
            s,
            "<rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{plot_w:.1}\" height=\"{PANEL_H}\" \
             fill=\"none\" stroke=\"#333\"/>"
        );
        for i in 0..=4 {
            let v = y_max * f64::from(i) / 4.0;
            let y = y_of(v);
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT + plot_w,
                LEFT - 6.0,
                y + 4.0,
                trim(v)
            );
        }
        for &r in &ladder {
            let x = x_of(f64::from(r));
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\" \
                 stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{r}</text>",
                bottom + 16.0
            );
        }
        for (i, target, pts) in &lines {
            let color = COLORS[*i % COLORS.len()];
            let coords: Vec<String> = pts
                .iter()
                .map(|m| format!("{:.1},{:.1}", x_of(f64::from(m.readers)), y_of((panel.value)(m))))
                .collect();
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                coords.join(" ")
            );
            for c in &coords {
                let (x, y) = c.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(s, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{color}\"/>");
            }
            if p == 0 {
                let ly = TOP + 10.0 + *i as f64 * 18.0;
                let lx = LEFT + plot_w + 16.0;
                let _ = writeln!(
                    s,
                    "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" \
                     stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    lx + 20.0,
                    lx + 26.0,
                    ly + 4.0,
                    target
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">readers{}</text>",
        LEFT + plot_w / 2.0,
        height - 8.0,
        if log { " (log scale)" } else { "" }
    );
    s.push_str("</svg>\n");
    Some(s)
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|&c| c >= v).unwrap_or(10.0 * p)
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::{measurement, result};

    #[test]
    fn draws_one_line_per_target_over_the_ladder() {
        let mut runs = Vec::new();
        for (n, cpu) in [(100, 0.02), (1000, 0.2)] {
            for t in [Target::BlasterSendto, Target::Relay1] {
                let mut m = measurement(t, n, 1.0);
                m.steady_cpu_share = if t == Target::Relay1 { cpu / 3.0 } else { cpu };
                runs.push(m);
            }
        }
        let svg = cost_growth(&result(runs, "")).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 4, "2 targets × 2 panels");
        assert!(svg.contains(">relay-1</text>") && svg.contains(">blaster-sendto</text>"));
        assert!(svg.contains("readers (log scale)"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nothing_to_draw_from_one_rung() {
        let mut r = result(vec![measurement(Target::Relay1, 100, 1.0)], "");
        r.scenario.readers.ladder = vec![100];
        assert!(cost_growth(&r).is_none());
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.3), 1.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(22.0), 25.0);
        assert_eq!(nice_ceiling(60.0), 100.0);
    }
}
