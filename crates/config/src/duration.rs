//! Duration strings: a number and a unit, like `"100ms"`, `"1.5s"`, `"2m"` or `"0s"`.
//!
//! A bare number is refused on purpose: keepalived counts `advert_int` in seconds while people
//! tuning sub-second failover think in milliseconds, and a config that silently means the other
//! one is how a 100 ms advert becomes 100 s.

use std::time::Duration;

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;

/// Units accepted in duration strings, in the order they are listed in messages.
const UNITS: &[(&str, u128)] = &[
    ("ms", NANOS_PER_MS),
    ("s", NANOS_PER_S),
    ("m", 60 * NANOS_PER_S),
    ("h", 3600 * NANOS_PER_S),
];

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("durations contain no spaces")]
    Whitespace,
    #[error("durations cannot be negative")]
    Negative,
    #[error("a duration starts with a number")]
    MissingNumber,
    #[error("invalid number {0:?}")]
    InvalidNumber(String),
    #[error("missing unit (ms, s, m or h)")]
    MissingUnit,
    #[error("unknown unit {0:?} (use ms, s, m or h)")]
    UnknownUnit(String),
    #[error("finer than a nanosecond")]
    TooPrecise,
    #[error("too large")]
    Overflow,
}

/// Parse a duration string: digits, an optional fraction, then one of `ms`, `s`, `m`, `h`.
///
/// ```
/// use std::time::Duration;
/// use tandem_config::parse_duration;
/// assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("100").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.chars().any(char::is_whitespace) {
        return Err(DurationError::Whitespace);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(num_end);
    if number.is_empty() {
        return Err(DurationError::MissingNumber);
    }
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    // Both sides of a decimal point must have digits ("1.s" and ".5s" are typos more often
    // than intent), and there is at most one point.
    if int_part.is_empty()
        || (number.contains('.') && frac_part.is_empty())
        || frac_part.contains('.')
    {
        return Err(DurationError::InvalidNumber(number.to_string()));
    }
    if unit.is_empty() {
        return Err(DurationError::MissingUnit);
    }
    let Some(&(_, unit_nanos)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(DurationError::UnknownUnit(unit.to_string()));
    };

    // Exact integer arithmetic: "40.95s" must be exactly 4095 centiseconds, which floating
    // point does not promise.
    let int: u128 = int_part.parse().map_err(|_| DurationError::Overflow)?;
    let mut nanos = int.checked_mul(unit_nanos).ok_or(DurationError::Overflow)?;
    if !frac_part.is_empty() {
        // More than 12 fraction digits is below a nanosecond even in hours-free units; cap the
        // digit count before the power of ten can overflow.
        let frac_digits = frac_part.trim_end_matches('0');
        if frac_digits.len() > 12 {
            return Err(DurationError::TooPrecise);
        }
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| DurationError::TooPrecise)?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            let scaled = frac * unit_nanos;
            if scaled % scale != 0 {
                return Err(DurationError::TooPrecise);
            }
            nanos = nanos
                .checked_add(scaled / scale)
                .ok_or(DurationError::Overflow)?;
        }
    }
    let secs = u64::try_from(nanos / NANOS_PER_S).map_err(|_| DurationError::Overflow)?;
    // The remainder is below 10^9, so it always fits in u32.
    Ok(Duration::new(secs, (nanos % NANOS_PER_S) as u32))
}

/// Format a duration the way a config would spell it; `parse_duration` reads it back exactly.
///
/// Whole hours, minutes and seconds use the largest exact unit (`"2m"`, `"90s"`); below one
/// second it is milliseconds (`"100ms"`, `"0.5ms"`); otherwise seconds with a fraction
/// (`"1.5s"`, `"40.95s"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos % NANOS_PER_S == 0 {
        let secs = nanos / NANOS_PER_S;
        return if secs % 3600 == 0 {
            format!("{}h", secs / 3600)
        } else if secs % 60 == 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        };
    }
    if nanos < NANOS_PER_S {
        return format!("{}ms", decimal(nanos, NANOS_PER_MS, 6));
    }
    format!("{}s", decimal(nanos, NANOS_PER_S, 9))
}

/// `value / unit` as a decimal with trailing zeros trimmed; `digits` is log10(unit).
fn decimal(value: u128, unit: u128, digits: usize) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0digits$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse_duration("100ms"), Ok(ms(100)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("40.95s"), Ok(ms(40_950)));
        assert_eq!(parse_duration("0.01s"), Ok(ms(10)));
        assert_eq!(parse_duration("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.25m"), Ok(ms(75_000)));
        assert_eq!(parse_duration("1.000s"), Ok(ms(1000)));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn refuses_malformed_strings() {
        use DurationError::*;
        assert_eq!(parse_duration(""), Err(Empty));
        assert_eq!(parse_duration("100"), Err(MissingUnit));
        assert_eq!(parse_duration("ms"), Err(MissingNumber));
        assert_eq!(parse_duration("100 ms"), Err(Whitespace));
        assert_eq!(parse_duration(" 1s"), Err(Whitespace));
        assert_eq!(parse_duration("-1s"), Err(Negative));
        assert_eq!(parse_duration("1sec"), Err(UnknownUnit("sec".into())));
        assert_eq!(parse_duration("1S"), Err(UnknownUnit("S".into())));
        assert_eq!(parse_duration("1d"), Err(UnknownUnit("d".into())));
        assert_eq!(parse_duration("1m30s"), Err(UnknownUnit("m30s".into())));
        assert_eq!(parse_duration("1.s"), Err(InvalidNumber("1.".into())));
        assert_eq!(parse_duration(".5s"), Err(InvalidNumber(".5".into())));
        assert_eq!(parse_duration("1.2.3s"), Err(InvalidNumber("1.2.3".into())));
        assert_eq!(parse_duration("0.0000000001s"), Err(TooPrecise));
        assert_eq!(parse_duration("0.0001ms"), Ok(Duration::from_nanos(100)));
        assert_eq!(parse_duration("0.0000001ms"), Err(TooPrecise));
        assert_eq!(parse_duration("0.1234567890123s"), Err(TooPrecise));
    }

    #[test]
    fn refuses_overflow_without_panicking() {
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow)
        );
        // u64::MAX seconds is Duration's own limit and still representable.
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_duration("18446744073709551616s"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn format_uses_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(10)), "10ms");
        assert_eq!(format_duration(ms(999)), "999ms");
        assert_eq!(format_duration(ms(1000)), "1s");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(ms(40_950)), "40.95s");
        assert_eq!(format_duration(ms(90_000)), "90s");
        assert_eq!(format_duration(ms(120_000)), "2m");
        assert_eq!(format_duration(ms(3_600_000)), "1h");
        assert_eq!(format_duration(Duration::from_micros(500)), "0.5ms");
        assert_eq!(format_duration(Duration::from_nanos(1)), "0.000001ms");
    }

    #[test]
    fn format_round_trips() {
        let samples = [
            0u64,
            1,
            999,
            1_000,
            1_000_000,
            10_000_000,
            15_000_000,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            40_950_000_000,
            59_999_999_999,
            3_600_000_000_000,
            86_400_000_000_123,
        ];
        for n in samples {
            let d = Duration::from_nanos(n);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{n} ns");
        }
    }
}
