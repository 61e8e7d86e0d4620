//! Flapping: a state that changes too often within a window (health going
//! healthy → unhealthy → healthy …).

use std::collections::VecDeque;

/// Settings of a [`Flapping`] detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapRule {
    /// Changes within `window_ms` that make a flap.
    pub changes: usize,
    pub window_ms: i64,
}

impl Default for FlapRule {
    /// 4 changes within 10 minutes.
    fn default() -> Self {
        Self { changes: 4, window_ms: 600_000 }
    }
}

/// Change times of one state.
#[derive(Debug, Clone)]
pub struct Flapping {
    rule: FlapRule,
    changes: VecDeque<i64>,
    /// Whether a flap was already reported for the current run of changes.
    reported: bool,
}

impl Flapping {
    pub fn new(rule: FlapRule) -> Self {
        Self { rule, changes: VecDeque::new(), reported: false }
    }

    /// Notes a change at `at_ms`; returns the number of changes in the window
    /// the first time it reaches the rule's count (once per run of flapping).
    pub fn change(&mut self, at_ms: i64) -> Option<usize> {
        self.changes.push_back(at_ms);
        while self.changes.front().is_some_and(|t| *t <= at_ms - self.rule.window_ms) {
            self.changes.pop_front();
        }
        while self.changes.len() > self.rule.changes.max(1) * 4 {
            self.changes.pop_front();
        }
        if self.changes.len() >= self.rule.changes {
            if !self.reported {
                self.reported = true;
                return Some(self.changes.len());
            }
        } else {
            self.reported = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_changes_in_ten_minutes_flap_once() {
        let mut f = Flapping::new(FlapRule::default());
        assert_eq!(f.change(0), None);
        assert_eq!(f.change(60_000), None);
        assert_eq!(f.change(120_000), None);
        assert_eq!(f.change(180_000), Some(4));
        assert_eq!(f.change(240_000), None, "reported once per run");
        // Quiet for a window, then slow changes: no flap.
        assert_eq!(f.change(2_000_000), None);
        assert_eq!(f.change(2_400_000), None);
        assert_eq!(f.change(2_800_000), None);
        assert_eq!(f.change(3_200_000), None);
    }
}
