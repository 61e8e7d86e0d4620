//! Metric threshold rules: a series past `value` for `for_seconds` fires;
//! it resolves only once the series is back past `clear_value`
//! (hysteresis), so a value hovering at the threshold does not flap.

use super::config::{Op, RuleConfig};

/// Where metric rules read their series; the metrics store implements it.
pub trait MetricSource: Send + Sync {
    /// The latest sample of `series`: Unix milliseconds and value.
    fn latest(&self, series: &str) -> Option<(i64, f64)>;
}

/// What one sample did to a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    Fire(f64),
    Resolve(f64),
    Hold,
}

/// One metric rule's evaluation state.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Threshold {
    breaching_since: Option<i64>,
    firing: bool,
    last_at: Option<i64>,
}

impl Threshold {
    /// Feeds one sample (samples not newer than the last one are ignored).
    pub(crate) fn step(&mut self, op: Op, value: f64, clear: f64, for_ms: i64, at_ms: i64, v: f64) -> Step {
        if self.last_at.is_some_and(|t| at_ms <= t) || !v.is_finite() {
            return Step::Hold;
        }
        self.last_at = Some(at_ms);
        if op.holds(v, value) {
            let since = *self.breaching_since.get_or_insert(at_ms);
            if !self.firing && at_ms - since >= for_ms {
                self.firing = true;
                return Step::Fire(v);
            }
            return Step::Hold;
        }
        // Not breaching the threshold; resolved only past the clear value.
        let cleared = !op.holds(v, clear) && v != clear;
        if self.firing {
            if cleared {
                self.firing = false;
                self.breaching_since = None;
                return Step::Resolve(v);
            }
        } else {
            self.breaching_since = None;
        }
        Step::Hold
    }

    pub(crate) fn for_rule(&mut self, r: &RuleConfig, at_ms: i64, v: f64) -> Step {
        let (Some(op), Some(value)) = (r.op, r.value) else { return Step::Hold };
        let for_ms = r.for_seconds.unwrap_or(0).saturating_mul(1000) as i64;
        self.step(op, value, r.clear_value.unwrap_or(value), for_ms, at_ms, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_after_the_duration_only() {
        let mut t = Threshold::default();
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 0, 95.0), Step::Hold);
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 5_000, 96.0), Step::Hold);
        // Dipping below resets the clock.
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 6_000, 85.0), Step::Hold);
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 12_000, 95.0), Step::Hold);
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 22_000, 97.0), Step::Fire(97.0));
        // Still breaching: no second fire.
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 10_000, 23_000, 99.0), Step::Hold);
    }

    #[test]
    fn resolves_only_past_the_clear_value() {
        let mut t = Threshold::default();
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 0, 0, 91.0), Step::Fire(91.0));
        // Between clear and threshold: still firing (hysteresis).
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 0, 1, 85.0), Step::Hold);
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 0, 2, 80.0), Step::Hold);
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 0, 3, 79.0), Step::Resolve(79.0));
        assert_eq!(t.step(Op::Gt, 90.0, 80.0, 0, 4, 85.0), Step::Hold);
    }

    #[test]
    fn below_thresholds_and_stale_samples() {
        let mut t = Threshold::default();
        assert_eq!(t.step(Op::Lt, 10.0, 20.0, 0, 100, 5.0), Step::Fire(5.0));
        assert_eq!(t.step(Op::Lt, 10.0, 20.0, 0, 100, 50.0), Step::Hold, "same timestamp is ignored");
        assert_eq!(t.step(Op::Lt, 10.0, 20.0, 0, 101, f64::NAN), Step::Hold);
        assert_eq!(t.step(Op::Lt, 10.0, 20.0, 0, 102, 15.0), Step::Hold);
        assert_eq!(t.step(Op::Lt, 10.0, 20.0, 0, 103, 21.0), Step::Resolve(21.0));
    }
}
