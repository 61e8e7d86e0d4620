//! `keys create --expires`: a duration from now (`30d`, `12h`, `90m`,
//! `3600s`) or an instant (RFC 3339, or `YYYY-MM-DD` for midnight UTC).

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::parse::parse_duration;

const HINT: &str = "use a duration from now (30d, 12h, 90m, 3600s) or a time (2026-12-31, 2026-12-31T18:00:00Z)";

/// When a key should stop working, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// This long after the key is created.
    In(Duration),
    /// At this unix time in milliseconds.
    At(i64),
}

/// Parses `--expires`: a time when it starts like a date (`YYYY-`), else a duration.
pub(crate) fn parse_expiry(text: &str) -> Result<Expiry, String> {
    let s = text.trim();
    let looks_like_date = s.len() >= 5 && s[..4].bytes().all(|b| b.is_ascii_digit()) && s.as_bytes()[4] == b'-';
    if !looks_like_date {
        return parse_duration(s).map(Expiry::In).map_err(|_| format!("{text:?} is not a duration or a time; {HINT}"));
    }
    if let Ok(at) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Expiry::At(unix_ms(at)));
    }
    if let Ok(day) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Ok(Expiry::At(unix_ms(day.midnight().assume_utc())));
    }
    Err(format!("{text:?} is not a time; {HINT} (a time needs a zone: Z or +02:00)"))
}

impl Expiry {
    /// The instant in unix milliseconds, for a key created `now_ms`; an
    /// instant that has already passed is refused.
    pub(crate) fn at_ms(self, now_ms: i64) -> Result<i64, String> {
        match self {
            Expiry::In(d) => {
                let ms = i64::try_from(d.as_millis()).map_err(|_| "the expiry is too far away".to_owned())?;
                now_ms.checked_add(ms).ok_or_else(|| "the expiry is too far away".to_owned())
            }
            Expiry::At(at) if at <= now_ms => {
                Err(format!("the expiry {} UTC has already passed; {HINT}", super::output::utc(at)))
            }
            Expiry::At(at) => Ok(at),
        }
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn durations_are_relative_to_now() {
        let now = 1_000;
        for (text, ms) in [("30d", 30 * DAY_MS), ("12h", 12 * 3_600_000), ("90m", 90 * 60_000), ("3600s", 3_600_000)] {
            let expiry = parse_expiry(text).expect(text);
            assert_eq!(expiry.at_ms(now), Ok(now + ms), "{text}");
        }
        assert_eq!(parse_expiry("1h30m").and_then(|e| e.at_ms(0)), Ok(5_400_000));
    }

    #[test]
    fn times_are_absolute() {
        assert_eq!(parse_expiry("2026-12-01"), Ok(Expiry::At(1_796_083_200_000)));
        assert_eq!(parse_expiry("2026-12-01T00:00:00Z"), Ok(Expiry::At(1_796_083_200_000)));
        assert_eq!(parse_expiry("2026-12-01T02:00:00+02:00"), Ok(Expiry::At(1_796_083_200_000)));
        assert_eq!(parse_expiry("2026-12-01T00:00:00.250Z"), Ok(Expiry::At(1_796_083_200_250)));
        assert_eq!(Expiry::At(5_000).at_ms(1_000), Ok(5_000));
    }

    #[test]
    fn past_times_and_garbage_are_refused() {
        let err = Expiry::At(1_000).at_ms(2_000).expect_err("past");
        assert!(err.contains("already passed") && err.contains("1970-01-01 00:00:01"), "{err}");
        for bad in ["", "soon", "30x", "2026-13-01", "2026-12-01T10:00:00", "0s"] {
            let err = parse_expiry(bad).expect_err(bad);
            assert!(err.contains("e.g.") || err.contains("30d"), "{bad:?}: {err}");
        }
    }
}
