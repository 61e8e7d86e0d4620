//! Latency samples and their summary (nearest-rank percentiles).

use std::time::Duration;

/// Latencies of one measured loop, in the order they were taken.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    ms: Vec<f64>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self { ms: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
    }

    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// Appends another loop's samples.
    pub fn extend(&mut self, other: &Samples) {
        self.ms.extend_from_slice(&other.ms);
    }

    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }

    /// Percentiles, mean and extremes; `None` when nothing was measured.
    pub fn summary(&self) -> Option<Summary> {
        if self.is_empty() {
            return None;
        }
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        // Nearest rank: the smallest sample with at least q·n samples at or below it.
        let pct = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Summary {
            n,
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            mean: v.iter().sum::<f64>() / n as f64,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// Summary of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// One line: `p50 … p90 … p99 … mean … (n=…, max …)`.
    pub fn line(&self) -> String {
        format!(
            "p50 {} · p90 {} · p99 {} · mean {} · min {} · max {} (n={})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.mean),
            ms(self.min),
            ms(self.max),
            self.n
        )
    }
}

/// A duration in milliseconds with a precision that suits its size.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// `a / b` as a ratio, e.g. `0.41×`.
pub fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".into();
    }
    let r = a / b;
    if r < 10.0 {
        format!("{r:.2}×")
    } else {
        format!("{r:.0}×")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for i in 1..=100 {
            s.push(Duration::from_millis(i));
        }
        let sum = s.summary().expect("samples were pushed");
        assert_eq!(sum.n, 100);
        assert!((sum.p50 - 50.0).abs() < 1e-9);
        assert!((sum.p90 - 90.0).abs() < 1e-9);
        assert!((sum.p99 - 99.0).abs() < 1e-9);
        assert!((sum.mean - 50.5).abs() < 1e-9);
    }

    #[test]
    fn empty_has_no_summary() {
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn single_sample() {
        let mut s = Samples::default();
        s.push(Duration::from_micros(1500));
        let sum = s.summary().expect("one sample");
        assert!((sum.p99 - 1.5).abs() < 1e-9);
        assert_eq!(ratio(1.0, 4.0), "0.25×");
        assert_eq!(ratio(195.0, 1.5), "130×");
    }
}
