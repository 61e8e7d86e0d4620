//! Rate spikes: events are counted in fixed buckets; a closed bucket is a
//! spike when it is far above the rolling baseline of the previous buckets
//! (robust z-score: distance from the median in units of the scaled median
//! absolute deviation) **and** above an absolute floor.

use std::collections::VecDeque;

/// Settings of a [`RateSpike`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRule {
    /// Width of a bucket.
    pub bucket_ms: i64,
    /// Closed buckets the baseline is computed over.
    pub baseline_buckets: usize,
    /// Closed buckets needed before anything is judged (warm-up).
    pub min_baseline_buckets: usize,
    /// Robust z-score a bucket must exceed.
    pub z: f64,
    /// Events a bucket must hold, whatever the baseline.
    pub floor: u64,
}

impl Default for RateRule {
    /// 1-minute buckets, a one-hour baseline judged after 5 minutes, z > 5,
    /// and at least 10 events in the minute.
    fn default() -> Self {
        Self { bucket_ms: 60_000, baseline_buckets: 60, min_baseline_buckets: 5, z: 5.0, floor: 10 }
    }
}

/// A spike: the bucket that was too high, and what it was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Start of the bucket (ms).
    pub bucket_start_ms: i64,
    pub count: u64,
    /// Median count per bucket of the baseline.
    pub baseline_median: f64,
    pub z: f64,
    /// The baseline buckets and the spike, oldest first (start ms, count).
    pub window: Vec<(i64, f64)>,
}

/// One rate being watched.
#[derive(Debug, Clone)]
pub struct RateSpike {
    rule: RateRule,
    /// Closed buckets, oldest first.
    closed: VecDeque<(i64, u64)>,
    current_start: Option<i64>,
    current: u64,
}

impl RateSpike {
    pub fn new(rule: RateRule) -> Self {
        Self { rule, closed: VecDeque::new(), current_start: None, current: 0 }
    }

    /// Counts `n` events at `at_ms`. Returns a spike if this closed a bucket
    /// that was one.
    pub fn add(&mut self, at_ms: i64, n: u64) -> Option<Spike> {
        let spike = self.advance(at_ms);
        self.current += n;
        spike
    }

    /// Moves time forward to `now_ms` (closing buckets with no events), so a
    /// burst is judged when its bucket ends even if nothing follows it.
    pub fn advance(&mut self, now_ms: i64) -> Option<Spike> {
        let start = now_ms - now_ms.rem_euclid(self.rule.bucket_ms);
        let Some(cur) = self.current_start else {
            self.current_start = Some(start);
            return None;
        };
        if start <= cur {
            return None;
        }
        // Close the current bucket and judge it; fill the gap with empty ones.
        let spike = self.judge(cur, self.current);
        self.push(cur, self.current);
        let mut b = cur + self.rule.bucket_ms;
        let mut gaps = 0;
        while b < start && gaps <= self.rule.baseline_buckets {
            self.push(b, 0);
            b += self.rule.bucket_ms;
            gaps += 1;
        }
        self.current_start = Some(start);
        self.current = 0;
        spike
    }

    fn push(&mut self, start: i64, count: u64) {
        self.closed.push_back((start, count));
        while self.closed.len() > self.rule.baseline_buckets {
            self.closed.pop_front();
        }
    }

    fn judge(&self, start: i64, count: u64) -> Option<Spike> {
        if self.closed.len() < self.rule.min_baseline_buckets || count < self.rule.floor {
            return None;
        }
        let mut counts: Vec<f64> = self.closed.iter().map(|(_, c)| *c as f64).collect();
        let median = median_of(&mut counts);
        let mut dev: Vec<f64> = counts.iter().map(|c| (c - median).abs()).collect();
        // 1.4826 scales the MAD to a standard deviation for normal data; a
        // floor of 1 event keeps a perfectly flat baseline from dividing by 0.
        let mad = (median_of(&mut dev) * 1.4826).max(1.0);
        let z = (count as f64 - median) / mad;
        if z <= self.rule.z {
            return None;
        }
        let mut window: Vec<(i64, f64)> = self.closed.iter().map(|(s, c)| (*s, *c as f64)).collect();
        window.push((start, count as f64));
        Some(Spike { bucket_start_ms: start, count, baseline_median: median, z, window })
    }
}

fn median_of(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn feed(d: &mut RateSpike, minute: i64, n: u64) -> Option<Spike> {
        d.add(minute * MIN + 1_000, n)
    }

    #[test]
    fn a_burst_over_a_steady_baseline_is_a_spike_when_its_minute_ends() {
        let mut d = RateSpike::new(RateRule::default());
        for m in 0..30 {
            assert_eq!(feed(&mut d, m, 2 + (m as u64 % 3)), None);
        }
        assert_eq!(feed(&mut d, 30, 200), None, "judged only when the bucket closes");
        let s = d.advance(31 * MIN).expect("a spike");
        assert_eq!(s.count, 200);
        assert_eq!(s.bucket_start_ms, 30 * MIN);
        assert!(s.z > 5.0 && (2.0..=4.0).contains(&s.baseline_median), "{s:?}");
        assert_eq!(s.window.last(), Some(&((30 * MIN), 200.0)));
    }

    #[test]
    fn a_quiet_service_does_not_page_under_the_floor() {
        let mut d = RateSpike::new(RateRule::default());
        for m in 0..30 {
            feed(&mut d, m, 0);
        }
        // 9 errors after silence: a huge z-score, but under the floor of 10.
        feed(&mut d, 30, 9);
        assert_eq!(d.advance(31 * MIN), None);
    }

    #[test]
    fn nothing_is_judged_during_warm_up() {
        let mut d = RateSpike::new(RateRule::default());
        feed(&mut d, 0, 1);
        feed(&mut d, 1, 1);
        feed(&mut d, 2, 500);
        assert_eq!(d.advance(3 * MIN), None);
    }

    #[test]
    fn a_noisy_baseline_needs_a_bigger_burst() {
        let mut d = RateSpike::new(RateRule::default());
        for m in 0..60 {
            feed(&mut d, m, if m % 2 == 0 { 10 } else { 50 });
        }
        feed(&mut d, 60, 80);
        assert_eq!(d.advance(61 * MIN), None, "80 is within the noise of 10..50");
        feed(&mut d, 61, 400);
        assert!(d.advance(62 * MIN).is_some());
    }

    #[test]
    fn silent_gaps_count_as_empty_buckets() {
        let mut d = RateSpike::new(RateRule { floor: 5, ..RateRule::default() });
        feed(&mut d, 0, 1);
        // Ten silent minutes, then a burst.
        feed(&mut d, 11, 50);
        assert!(d.advance(12 * MIN).is_some());
    }
}
