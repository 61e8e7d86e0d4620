//! Rate limiting for log lines that requests or sandboxes can trigger, so a
//! hostile client or sandbox cannot flood the server's log.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Window {
    start: Instant,
    passed: u32,
    suppressed: u64,
}

/// Lets at most `burst` events through per `period` and counts the rest.
pub struct RateLimit {
    period: Duration,
    burst: u32,
    window: Mutex<Option<Window>>,
}

impl RateLimit {
    pub const fn new(period: Duration, burst: u32) -> Self {
        Self { period, burst, window: Mutex::new(None) }
    }

    /// `Some(n)` if this event may be logged, `n` being how many were
    /// suppressed since the last one that was; `None` to stay quiet.
    pub fn check(&self) -> Option<u64> {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let w = w.get_or_insert(Window { start: now, passed: 0, suppressed: 0 });
        if now.duration_since(w.start) >= self.period {
            w.start = now;
            w.passed = 0;
        }
        if w.passed < self.burst {
            w.passed += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_a_burst_then_counts_what_it_suppressed() {
        let limit = RateLimit::new(Duration::from_millis(50), 2);
        assert_eq!(limit.check(), Some(0));
        assert_eq!(limit.check(), Some(0));
        assert_eq!(limit.check(), None);
        assert_eq!(limit.check(), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limit.check(), Some(2));
    }
}
