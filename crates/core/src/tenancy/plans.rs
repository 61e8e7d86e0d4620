//! The built-in plans, and the calendar-month periods quotas count in.

use std::collections::BTreeMap;

use superserver_wire::{PlanLimits, PlanOverrides, Quota};
use time::{Date, Month, OffsetDateTime, Time};

/// The plans every server knows, from the product brief: `free`,
/// `developer`, `team` and `enterprise`. The config may change any field of
/// these and add plans of its own.
pub fn builtin() -> BTreeMap<String, PlanLimits> {
    use Quota::{Limited, Unlimited};
    let free = PlanLimits {
        executions_per_month: Limited(100),
        cpu_seconds_per_month: Limited(600),
        gb_seconds_per_month: Limited(3_600),
        max_memory_mb: 512,
        concurrent_sandboxes: Limited(2),
        max_timeout_seconds: 60,
        persistent_sandboxes: false,
        max_ttl_seconds: 0,
        network: false,
        dashboard: false,
        requests_per_second: 5.0,
        request_burst: 10,
        priority: 0,
    };
    let developer = PlanLimits {
        executions_per_month: Limited(1_000),
        cpu_seconds_per_month: Limited(36_000),
        gb_seconds_per_month: Limited(72_000),
        max_memory_mb: 1_024,
        concurrent_sandboxes: Limited(5),
        max_timeout_seconds: 600,
        persistent_sandboxes: true,
        max_ttl_seconds: 3_600,
        network: true,
        dashboard: true,
        requests_per_second: 20.0,
        request_burst: 40,
        priority: 10,
    };
    let team = PlanLimits {
        executions_per_month: Limited(10_000),
        cpu_seconds_per_month: Limited(360_000),
        gb_seconds_per_month: Limited(720_000),
        max_memory_mb: 2_048,
        concurrent_sandboxes: Limited(20),
        max_timeout_seconds: 3_600,
        max_ttl_seconds: 86_400,
        requests_per_second: 100.0,
        request_burst: 200,
        ..developer.clone()
    };
    let enterprise = PlanLimits {
        executions_per_month: Unlimited,
        cpu_seconds_per_month: Unlimited,
        gb_seconds_per_month: Unlimited,
        max_memory_mb: 16_384,
        concurrent_sandboxes: Unlimited,
        max_timeout_seconds: 86_400,
        max_ttl_seconds: 7 * 86_400,
        requests_per_second: 1_000.0,
        request_burst: 2_000,
        priority: 20,
        ..team.clone()
    };
    BTreeMap::from([
        ("free".to_string(), free),
        ("developer".to_string(), developer),
        ("team".to_string(), team),
        ("enterprise".to_string(), enterprise),
    ])
}

/// The built-in plans with the config's `[plans.NAME]` changes applied. A
/// plan the built-ins do not have starts from `free`.
pub fn resolve(config: &BTreeMap<String, PlanOverrides>) -> BTreeMap<String, PlanLimits> {
    let mut plans = builtin();
    let base = plans.get("free").cloned().expect("free is a built-in plan");
    for (name, o) in config {
        let start = plans.get(name).cloned().unwrap_or_else(|| base.clone());
        plans.insert(name.clone(), start.with(o));
    }
    plans
}

/// Checks a plan's values.
pub fn validate(name: &str, p: &PlanLimits) -> Result<(), String> {
    if !(p.requests_per_second > 0.0 && p.requests_per_second.is_finite()) {
        return Err(format!("plans.{name}.requests_per_second must be a positive number"));
    }
    if p.request_burst == 0 {
        return Err(format!("plans.{name}.request_burst must be at least 1"));
    }
    if p.max_memory_mb < 8 {
        return Err(format!("plans.{name}.max_memory_mb must be at least 8"));
    }
    if p.max_timeout_seconds == 0 {
        return Err(format!("plans.{name}.max_timeout_seconds must be at least 1"));
    }
    if p.persistent_sandboxes && p.max_ttl_seconds == 0 {
        return Err(format!("plans.{name}: persistent_sandboxes needs max_ttl_seconds ≥ 1"));
    }
    Ok(())
}

/// The calendar month (UTC) holding `at_ms`: its start and the next one's,
/// in unix milliseconds.
pub fn month_of(at_ms: i64) -> (i64, i64) {
    let at = OffsetDateTime::from_unix_timestamp(at_ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let start = first_of(at.year(), at.month());
    let (y, m) =
        if at.month() == Month::December { (at.year() + 1, Month::January) } else { (at.year(), at.month().next()) };
    (start, first_of(y, m))
}

fn first_of(year: i32, month: Month) -> i64 {
    Date::from_calendar_date(year, month, 1)
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000)
        .unwrap_or(0)
}

/// RFC 3339 form of a unix-millisecond instant, e.g. `2026-12-01T00:00:00Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| ms.to_string())
}

/// Parses a time as the API accepts it: unix milliseconds, RFC 3339, or a
/// `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &fmt) {
        return Ok(d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() * 1000);
    }
    Err(format!("`{s}` is not a time: use unix milliseconds, RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plans_follow_the_brief_and_validate() {
        let p = builtin();
        assert_eq!(p["free"].executions_per_month, Quota::Limited(100));
        assert_eq!(p["free"].max_memory_mb, 512);
        assert!(!p["free"].network && !p["free"].persistent_sandboxes && !p["free"].dashboard);
        assert_eq!(p["developer"].executions_per_month, Quota::Limited(1_000));
        assert_eq!(p["developer"].max_ttl_seconds, 3_600);
        assert!(p["developer"].priority > p["free"].priority);
        assert_eq!(p["team"].executions_per_month, Quota::Limited(10_000));
        assert_eq!(p["team"].max_memory_mb, 2_048);
        assert_eq!(p["team"].max_ttl_seconds, 86_400);
        assert_eq!(p["enterprise"].executions_per_month, Quota::Unlimited);
        for (name, plan) in &p {
            validate(name, plan).unwrap();
        }
    }

    #[test]
    fn config_changes_and_adds_plans() {
        let cfg = BTreeMap::from([
            ("free".to_string(), PlanOverrides { executions_per_month: Some(Quota::Limited(5)), ..Default::default() }),
            ("startup".to_string(), PlanOverrides { max_memory_mb: Some(768), ..Default::default() }),
        ]);
        let p = resolve(&cfg);
        assert_eq!(p["free"].executions_per_month, Quota::Limited(5));
        assert_eq!(p["free"].max_memory_mb, 512);
        assert_eq!(p["startup"].max_memory_mb, 768);
        assert_eq!(p["startup"].executions_per_month, Quota::Limited(100));
    }

    #[test]
    fn months_are_utc_calendar_months() {
        let nov23 = parse_time("2026-11-23T19:00:00Z").unwrap();
        let (start, end) = month_of(nov23);
        assert_eq!(rfc3339(start), "2026-11-01T00:00:00Z");
        assert_eq!(rfc3339(end), "2026-12-01T00:00:00Z");
        let (_, end) = month_of(parse_time("2026-12-31").unwrap());
        assert_eq!(rfc3339(end), "2027-01-01T00:00:00Z");
    }

    #[test]
    fn times_parse_in_three_forms() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2026-11-01").unwrap(), parse_time("2026-11-01T00:00:00Z").unwrap());
        assert!(parse_time("yesterday").unwrap_err().contains("yesterday"));
    }
}
