//! Delays between delivery attempts.

use std::time::Duration;

/// First retry delay.
const BASE_MS: u64 = 1_000;
/// Largest delay before jitter.
const CAP_MS: u64 = 3_600_000;
/// Jitter, in thousandths of the delay, either way (±20 %).
const JITTER_PERMILLE: u64 = 200;

/// Delay before attempt `attempt + 1` after attempt `attempt` failed
/// (attempts count from 1; 0 is treated as 1).
///
/// The base delay doubles from 1 s (1, 2, 4, 8 … s) and is capped at 1 h;
/// the result is the base times a random factor in [0.8, 1.2], so retries
/// of many events failing together spread out. Capped delays therefore lie
/// between 48 and 72 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    let base = BASE_MS.saturating_mul(1 << doublings).min(CAP_MS);
    // A factor in [1000 - 200, 1000 + 200] thousandths; without randomness, no jitter.
    let factor = 1_000 - JITTER_PERMILLE + random_u64().map_or(JITTER_PERMILLE, |r| r % (2 * JITTER_PERMILLE + 1));
    Duration::from_millis(base * factor / 1_000)
}

fn random_u64() -> Option<u64> {
    let mut buf = [0u8; 8];
    getrandom::getrandom(&mut buf).ok()?;
    Some(u64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(base_s: f64) -> (Duration, Duration) {
        (Duration::from_secs_f64(base_s * 0.8), Duration::from_secs_f64(base_s * 1.2))
    }

    #[test]
    fn grows_exponentially_within_jitter_bounds() {
        for (attempt, base_s) in [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 512.0), (12, 2048.0)] {
            let (lo, hi) = bounds(base_s);
            for _ in 0..200 {
                let d = backoff(attempt);
                assert!(lo <= d && d <= hi, "attempt {attempt}: {d:?} not in [{lo:?}, {hi:?}]");
            }
        }
    }

    #[test]
    fn is_capped_at_one_hour_before_jitter() {
        let (lo, hi) = bounds(3600.0);
        for attempt in [13, 14, 20, 33, 64, u32::MAX] {
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(lo <= d && d <= hi, "attempt {attempt}: {d:?} not in [{lo:?}, {hi:?}]");
            }
        }
    }

    #[test]
    fn is_jittered() {
        let samples: std::collections::HashSet<Duration> = (0..100).map(|_| backoff(8)).collect();
        assert!(samples.len() > 10, "100 delays should not collapse to {} values", samples.len());
        let below = (0..400).filter(|_| backoff(8) < Duration::from_secs(128)).count();
        assert!((100..=300).contains(&below), "jitter should go both ways: {below}/400 below the base");
    }
}
