//! The quantities flags and thresholds are written in: durations (`1.5s`, `200ms`) and rates
//! (`50/s`). One parser each, for every flag, threshold and hold that takes one.

use std::time::Duration;

/// Parses `1.5s`, `200ms`, `750us`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("duration `{s}`: expected e.g. 5s or 200ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "ns" => n / 1e9,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("duration `{s}`: unknown unit `{u}`")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` out of range"))
}

/// Parses a rate: `50/s`, `50`, `3000/m`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, p)) => (n, p.trim()),
        None => (t, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("rate `{s}`: expected e.g. 50/s"))?;
    let per_secs = match per {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        p => return Err(format!("rate `{s}`: unknown unit `/{p}`")),
    };
    let r = n / per_secs;
    if !(r > 0.0 && r.is_finite()) {
        return Err(format!("rate `{s}` must be positive"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("50/s").unwrap(), 50.0);
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert!(parse_rate("0").is_err());
    }
}
