//! New error templates: the first line of a log template never seen before,
//! at error level, once the service's logs have been watched long enough that
//! "new" means new (not a service starting up).

use std::collections::HashMap;

/// Settings of [`NewTemplates`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewTemplateRule {
    /// How long a service's logs are watched before new templates count.
    pub warm_up_ms: i64,
    /// Most findings per service per `warm_up_ms` (a new release can bring
    /// many new templates at once: one finding names the first few).
    pub max_per_window: usize,
}

impl Default for NewTemplateRule {
    fn default() -> Self {
        Self { warm_up_ms: 5 * 60_000, max_per_window: 3 }
    }
}

/// Per-service first-seen bookkeeping.
#[derive(Debug, Default)]
pub struct NewTemplates {
    rule: NewTemplateRule,
    /// Service → (first line seen at, recent findings' times).
    services: HashMap<String, (i64, Vec<i64>)>,
}

impl NewTemplates {
    pub fn new(rule: NewTemplateRule) -> Self {
        Self { rule, services: HashMap::new() }
    }

    /// A line of `service` at `at_ms`: whether its template is new (as the
    /// miner said), and whether it is an error. True when it is a finding.
    pub fn line(&mut self, service: &str, at_ms: i64, new_template: bool, error: bool) -> bool {
        let entry = self.services.entry(service.to_string()).or_insert((at_ms, Vec::new()));
        if !(new_template && error) || at_ms < entry.0 + self.rule.warm_up_ms {
            return false;
        }
        let window = self.rule.warm_up_ms;
        entry.1.retain(|t| *t > at_ms - window);
        if entry.1.len() >= self.rule.max_per_window {
            return false;
        }
        entry.1.push(at_ms);
        true
    }

    /// Starts the service's warm-up at `at_ms` if it has none yet (e.g. when
    /// its templates were learnt by an earlier run).
    pub fn known_since(&mut self, service: &str, at_ms: i64) {
        self.services.entry(service.to_string()).or_insert((at_ms, Vec::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_error_templates_count_after_warm_up_and_are_bounded() {
        let mut n = NewTemplates::new(NewTemplateRule::default());
        assert!(!n.line("web", 0, true, true), "during warm-up");
        assert!(!n.line("web", 400_000, false, true), "a known template");
        assert!(!n.line("web", 400_000, true, false), "not an error");
        assert!(n.line("web", 400_000, true, true));
        assert!(n.line("web", 400_001, true, true));
        assert!(n.line("web", 400_002, true, true));
        assert!(!n.line("web", 400_003, true, true), "bounded per window");
        assert!(n.line("web", 800_000, true, true), "a new window");
        assert!(!n.line("db", 800_000, true, true), "another service warms up on its own");
    }
}
