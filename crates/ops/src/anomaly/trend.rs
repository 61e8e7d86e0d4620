//! Trends: a least-squares line through a window of samples, to tell when a
//! resource will run out and whether it grows steadily.

use super::Point;

/// A fitted line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Change per hour.
    pub slope_per_hour: f64,
    /// The line's value at the last sample's time.
    pub last_value: f64,
    /// How well the line explains the samples (0 … 1).
    pub r2: f64,
    /// Time covered by the samples (ms).
    pub span_ms: i64,
}

/// Fits a line through `points` (at least 3, spread over time).
pub fn fit(points: &[Point]) -> Option<Fit> {
    if points.len() < 3 {
        return None;
    }
    let t0 = points[0].0;
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|(t, _)| (t - t0) as f64 / 3_600_000.0).collect();
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, v)| v).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, (_, y)) in xs.iter().zip(points) {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
        syy += (y - mean_y) * (y - mean_y);
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy == 0.0 { 1.0 } else { (sxy * sxy) / (sxx * syy) };
    let last_x = xs[xs.len() - 1];
    Some(Fit {
        slope_per_hour: slope,
        last_value: mean_y + slope * (last_x - mean_x),
        r2,
        span_ms: points[points.len() - 1].0 - t0,
    })
}

/// "Disk full soon": when, at the current pace, `used` reaches `capacity`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullRule {
    /// Warn when full within this many hours.
    pub within_hours: f64,
    /// The window must cover at least this long.
    pub min_span_ms: i64,
    /// And the line must explain the samples at least this well.
    pub min_r2: f64,
}

impl Default for FullRule {
    fn default() -> Self {
        Self { within_hours: 24.0, min_span_ms: 30 * 60_000, min_r2: 0.8 }
    }
}

/// Hours until `capacity` at the fitted pace, if it is reached within the rule's horizon.
pub fn hours_until_full(points: &[Point], capacity: f64, rule: FullRule) -> Option<f64> {
    let f = fit(points)?;
    if f.span_ms < rule.min_span_ms || f.r2 < rule.min_r2 || f.slope_per_hour <= 0.0 {
        return None;
    }
    let hours = ((capacity - f.last_value) / f.slope_per_hour).max(0.0);
    (hours <= rule.within_hours).then_some(hours)
}

/// "Memory grows steadily": a good straight line, rising fast enough.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthRule {
    pub min_span_ms: i64,
    pub min_r2: f64,
    /// Growth per hour relative to the first sample.
    pub min_fraction_per_hour: f64,
    /// And in absolute terms (bytes per hour for memory).
    pub min_per_hour: f64,
}

impl Default for GrowthRule {
    /// Over at least 30 minutes, r² ≥ 0.9, ≥ 10 % and ≥ 32 MiB per hour.
    fn default() -> Self {
        Self { min_span_ms: 30 * 60_000, min_r2: 0.9, min_fraction_per_hour: 0.10, min_per_hour: 32.0 * 1048576.0 }
    }
}

/// The fit, if the series grows steadily per the rule.
pub fn steady_growth(points: &[Point], rule: GrowthRule) -> Option<Fit> {
    let f = fit(points)?;
    let first = points[0].1.abs().max(1.0);
    let ok = f.span_ms >= rule.min_span_ms
        && f.r2 >= rule.min_r2
        && f.slope_per_hour >= rule.min_per_hour
        && f.slope_per_hour / first >= rule.min_fraction_per_hour;
    ok.then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const GIB: f64 = 1073741824.0;

    #[test]
    fn a_disk_filling_at_a_steady_pace_is_full_soon() {
        // 80 GiB used of 100, +1 GiB per hour over the last hour: full in 20 h.
        let pts: Vec<Point> = (0..=60).map(|m| (m * MIN, 80.0 * GIB + GIB * m as f64 / 60.0)).collect();
        let h = hours_until_full(&pts, 100.0 * GIB, FullRule::default()).expect("full within 24 h");
        assert!((h - 19.0).abs() < 0.01, "{h}");
        // The same pace with 200 GiB free is not a warning.
        assert_eq!(hours_until_full(&pts, 300.0 * GIB, FullRule::default()), None);
    }

    #[test]
    fn a_flat_or_shrinking_disk_is_not_filling() {
        let flat: Vec<Point> = (0..=60).map(|m| (m * MIN, 50.0 * GIB)).collect();
        assert_eq!(hours_until_full(&flat, 60.0 * GIB, FullRule::default()), None);
        let down: Vec<Point> = (0..=60).map(|m| (m * MIN, 50.0 * GIB - m as f64 * 1e6)).collect();
        assert_eq!(hours_until_full(&down, 60.0 * GIB, FullRule::default()), None);
    }

    #[test]
    fn too_short_a_window_says_nothing() {
        let pts: Vec<Point> = (0..=5).map(|m| (m * MIN, 99.0 * GIB + m as f64 * GIB)).collect();
        assert_eq!(hours_until_full(&pts, 100.0 * GIB, FullRule::default()), None);
    }

    #[test]
    fn steady_growth_is_told_from_noise() {
        let mib = 1048576.0;
        // 100 MiB growing 1 MiB per minute (+60 % an hour), a little jitter.
        let leak: Vec<Point> = (0..=40)
            .map(|m| (m * MIN, 100.0 * mib + m as f64 * mib + if m % 2 == 0 { 0.1 } else { -0.1 } * mib))
            .collect();
        let f = steady_growth(&leak, GrowthRule::default()).expect("a leak");
        assert!((f.slope_per_hour / mib - 60.0).abs() < 1.0, "{f:?}");
        // Sawtooth (allocate, free): no straight line.
        let saw: Vec<Point> = (0..=40).map(|m| (m * MIN, 100.0 * mib + (m % 10) as f64 * 20.0 * mib)).collect();
        assert_eq!(steady_growth(&saw, GrowthRule::default()), None);
        // Growth too slow to matter: 1 MiB an hour.
        let slow: Vec<Point> = (0..=40).map(|m| (m * MIN, 100.0 * mib + m as f64 * mib / 60.0)).collect();
        assert_eq!(steady_growth(&slow, GrowthRule::default()), None);
    }
}
