//! `--junit FILE`: the thresholds as a JUnit XML test suite, one test case each (failed ones
//! carry the measured value), plus one test case for the run itself that fails when sessions
//! failed, so CI systems show a load run like any other test run.

use std::fmt::Write as _;

use crate::report::Report;

/// The JUnit XML text of a report.
pub fn to_xml(report: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let time = report.elapsed_s;
    let run_ok = report.errors.total == 0;
    let _ = write!(
        cases,
        "  <testcase classname=\"manifold-load\" name=\"sessions\" time=\"{time:.3}\">"
    );
    if !run_ok {
        failures += 1;
        let _ = write!(
            cases,
            "<failure message=\"{} of {} sessions failed\">{}</failure>",
            report.errors.total,
            report.sessions.started,
            escape(&report.errors.samples.join("\n"))
        );
    }
    cases.push_str("</testcase>\n");
    for v in &report.thresholds {
        let _ = write!(
            cases,
            "  <testcase classname=\"manifold-load.threshold\" name=\"{}\" time=\"0\">",
            escape(&v.threshold)
        );
        if !v.passed {
            failures += 1;
            let actual = v.actual.map_or_else(|| "no data".to_owned(), |a| format!("{a}"));
            let _ = write!(
                cases,
                "<failure message=\"{} failed: actual {}, limit {}\"/>",
                escape(&v.threshold),
                escape(&actual),
                v.limit
            );
        }
        cases.push_str("</testcase>\n");
    }
    let tests = report.thresholds.len() + 1;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"manifold load \
         {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.3}\">\n{cases}\
         </testsuite>\n</testsuites>\n",
        escape(&report.config.url)
    )
}

/// XML text and attribute escaping.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
