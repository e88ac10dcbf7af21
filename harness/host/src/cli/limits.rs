//! Range checks of numeric options, at parse time: clap names the flag in its message
//! (`invalid value '0' for '--jobs <JOBS>': 0 is not in 1..=256`) and exits 2 before anything
//! is built or booted.

use std::time::Duration;

/// The longest `--duration`/`--limit` accepted: 30 days (an `Instant` plus it cannot overflow).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A positive duration of at most [`MAX_DURATION`] (`90s`, `10m`, `2h`).
pub fn duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 90s, 10m, 2h)"))?;
    if d.is_zero() {
        return Err("a zero duration does nothing: give a positive one (e.g. 90s, 10m)".into());
    }
    if d > MAX_DURATION {
        return Err(format!(
            "more than {} is not a sensible bound",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// A fraction in (0, 1].
pub fn rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err(format!("{s} is not a rate in (0, 1] (e.g. 0.25)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_are_range_checked() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert!(duration("0s").is_err());
        assert!(duration("1000000d").is_err());
        assert!(duration("soon").is_err());
        assert_eq!(rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "1.5", "NaN", "inf"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
