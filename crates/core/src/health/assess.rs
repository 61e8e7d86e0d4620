//! What a service's health is, from what is known of it: whether it runs,
//! Docker's health check, its probes and its restarts. Pure functions over
//! [`Tracked`], so the rules are tested without a host.

use std::collections::{BTreeMap, VecDeque};

use superserver_wire::{HealthStatus, ProbeKind, ProbeResult};

/// What is known of one probe against one service.
#[derive(Debug, Clone)]
pub(crate) struct ProbeTrack {
    pub kind: ProbeKind,
    pub target: String,
    pub retries: u32,
    pub start_period_ms: i64,
    pub consecutive_failures: u32,
    pub last: Option<ProbeResult>,
}

/// What is known of one service.
#[derive(Debug, Clone)]
pub(crate) struct Tracked {
    /// Current conclusion, and since when.
    pub status: HealthStatus,
    pub reason: String,
    pub since_ms: i64,
    /// Whether the conclusion was ever recorded by this process or the last.
    pub recorded: bool,
    pub running: bool,
    /// Why it is not running (`container exited`, `unit failed`, `gone`).
    pub down_reason: String,
    /// When the service (re)started, for start periods.
    pub started_ms: i64,
    pub docker_health: Option<String>,
    /// When restarts were seen (one entry per restart).
    pub restarts: VecDeque<i64>,
    pub last_restart_count: Option<u64>,
    /// Probes by name.
    pub probes: BTreeMap<String, ProbeTrack>,
    /// When the service was last seen by discovery.
    pub seen_ms: i64,
}

impl Tracked {
    pub fn new(now_ms: i64) -> Self {
        Self {
            status: HealthStatus::Starting,
            reason: String::new(),
            since_ms: now_ms,
            recorded: false,
            running: true,
            down_reason: String::new(),
            started_ms: now_ms,
            docker_health: None,
            restarts: VecDeque::new(),
            last_restart_count: None,
            probes: BTreeMap::new(),
            seen_ms: now_ms,
        }
    }

    /// Notes `n` restarts at `now_ms`, keeping at most `keep` of them.
    pub fn restarted(&mut self, n: u64, now_ms: i64, keep: usize) {
        for _ in 0..n.min(keep as u64) {
            self.restarts.push_back(now_ms);
        }
        while self.restarts.len() > keep {
            self.restarts.pop_front();
        }
        self.started_ms = now_ms;
    }

    /// Restarts within `window_ms` before `now_ms`.
    pub fn restarts_within(&self, now_ms: i64, window_ms: i64) -> u32 {
        self.restarts.iter().filter(|t| **t > now_ms - window_ms).count() as u32
    }

    /// Records a probe outcome. A failure within the start period does not count.
    pub fn probed(&mut self, name: &str, result: ProbeResult) {
        let started = self.started_ms;
        if let Some(p) = self.probes.get_mut(name) {
            if result.ok {
                p.consecutive_failures = 0;
            } else if result.at_ms >= started + p.start_period_ms {
                p.consecutive_failures = p.consecutive_failures.saturating_add(1);
            }
            p.last = Some(result);
        }
    }
}

/// Crash-loop settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CrashRule {
    pub restarts: u32,
    pub window_ms: i64,
}

/// The service's health now, and why.
pub(crate) fn assess(t: &Tracked, now_ms: i64, crash: CrashRule) -> (HealthStatus, String) {
    let restarts = t.restarts_within(now_ms, crash.window_ms);
    if restarts >= crash.restarts {
        return (
            HealthStatus::Unhealthy,
            format!("crash loop: {restarts} restarts in the last {} s", crash.window_ms / 1000),
        );
    }
    if !t.running {
        return (HealthStatus::Down, t.down_reason.clone());
    }
    let mut waiting = None;
    for (name, p) in &t.probes {
        match &p.last {
            Some(last) if !last.ok && p.consecutive_failures >= p.retries => {
                return (HealthStatus::Unhealthy, format!("probe {name}: {}", last.message));
            }
            Some(last) if !last.ok && now_ms < t.started_ms + p.start_period_ms => {
                waiting.get_or_insert_with(|| format!("probe {name}: {} (in its start period)", last.message));
            }
            None => {
                waiting.get_or_insert_with(|| format!("probe {name}: not run yet"));
            }
            _ => {}
        }
    }
    match t.docker_health.as_deref() {
        Some("unhealthy") => return (HealthStatus::Unhealthy, "Docker health check failing".into()),
        Some("starting") => {
            waiting.get_or_insert_with(|| "Docker health check starting".into());
        }
        _ => {}
    }
    if let Some(w) = waiting {
        return (HealthStatus::Starting, w);
    }
    let failing: Vec<&String> =
        t.probes.iter().filter(|(_, p)| p.last.as_ref().is_some_and(|l| !l.ok)).map(|(n, _)| n).collect();
    let reason = match (t.probes.len(), t.docker_health.as_deref()) {
        (0, Some(h)) => format!("Docker health check {h}"),
        (0, None) => "running; no health check or probe".into(),
        (n, _) if failing.is_empty() => format!("{n} probe{} passing", if n == 1 { "" } else { "s" }),
        (n, _) => format!("{} of {n} probes failing, below their retries", failing.len()),
    };
    (HealthStatus::Healthy, reason)
}

/// Percent of `[from_ms, now_ms]` spent healthy, from changes sorted oldest
/// first (the first may precede `from_ms`: the status the window starts in).
/// Time before the first known change is not counted; with no change at all,
/// `current` decides.
pub(crate) fn uptime_percent(changes: &[(i64, HealthStatus)], from_ms: i64, now_ms: i64, current: HealthStatus) -> f64 {
    let Some(first) = changes.first() else {
        return if current == HealthStatus::Healthy { 100.0 } else { 0.0 };
    };
    let start = first.0.max(from_ms);
    let total = now_ms - start;
    if total <= 0 {
        return if current == HealthStatus::Healthy { 100.0 } else { 0.0 };
    }
    let mut healthy = 0;
    for (i, (at, status)) in changes.iter().enumerate() {
        let begin = (*at).max(start);
        let end = changes.get(i + 1).map_or(now_ms, |n| n.0).min(now_ms);
        if *status == HealthStatus::Healthy && end > begin {
            healthy += end - begin;
        }
    }
    (healthy as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRASH: CrashRule = CrashRule { restarts: 3, window_ms: 300_000 };

    fn probe(retries: u32, start_period_ms: i64) -> ProbeTrack {
        ProbeTrack {
            kind: ProbeKind::Http,
            target: "http://x/".into(),
            retries,
            start_period_ms,
            consecutive_failures: 0,
            last: None,
        }
    }

    fn result(at_ms: i64, ok: bool) -> ProbeResult {
        ProbeResult { at_ms, ok, latency_ms: 1, message: if ok { "HTTP 200" } else { "HTTP 503" }.into() }
    }

    #[test]
    fn a_running_service_without_checks_is_healthy() {
        let t = Tracked::new(0);
        assert_eq!(assess(&t, 1, CRASH).0, HealthStatus::Healthy);
    }

    #[test]
    fn probes_fail_after_their_retries_and_recover_at_once() {
        let mut t = Tracked::new(0);
        t.probes.insert("web".into(), probe(2, 0));
        assert_eq!(assess(&t, 1, CRASH), (HealthStatus::Starting, "probe web: not run yet".into()));
        t.probed("web", result(10, true));
        assert_eq!(assess(&t, 10, CRASH).0, HealthStatus::Healthy);
        t.probed("web", result(20, false));
        assert_eq!(assess(&t, 20, CRASH).0, HealthStatus::Healthy, "one failure is below the retries");
        t.probed("web", result(30, false));
        assert_eq!(assess(&t, 30, CRASH), (HealthStatus::Unhealthy, "probe web: HTTP 503".into()));
        t.probed("web", result(40, true));
        assert_eq!(assess(&t, 40, CRASH).0, HealthStatus::Healthy);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let mut t = Tracked::new(0);
        t.probes.insert("web".into(), probe(1, 1_000));
        t.probed("web", result(500, false));
        assert_eq!(assess(&t, 500, CRASH).0, HealthStatus::Starting);
        t.probed("web", result(1_500, false));
        assert_eq!(assess(&t, 1_500, CRASH).0, HealthStatus::Unhealthy);
    }

    #[test]
    fn a_crash_loop_is_unhealthy_whatever_the_probes_say() {
        let mut t = Tracked::new(0);
        t.probes.insert("web".into(), probe(1, 0));
        t.probed("web", result(1, true));
        t.docker_health = Some("healthy".into());
        t.restarted(2, 1_000, 64);
        assert_eq!(assess(&t, 1_000, CRASH).0, HealthStatus::Healthy);
        t.restarted(1, 2_000, 64);
        let (s, why) = assess(&t, 2_000, CRASH);
        assert_eq!(s, HealthStatus::Unhealthy);
        assert!(why.starts_with("crash loop: 3 restarts"), "{why}");
        // Also when Docker shows it between two restarts (not running).
        t.running = false;
        assert_eq!(assess(&t, 2_000, CRASH).0, HealthStatus::Unhealthy);
        // Quiet for a window: no longer a loop, and down is down.
        t.down_reason = "container restarting".into();
        assert_eq!(assess(&t, 400_000, CRASH), (HealthStatus::Down, "container restarting".into()));
    }

    #[test]
    fn docker_health_counts() {
        let mut t = Tracked::new(0);
        t.docker_health = Some("starting".into());
        assert_eq!(assess(&t, 1, CRASH).0, HealthStatus::Starting);
        t.docker_health = Some("unhealthy".into());
        assert_eq!(assess(&t, 1, CRASH).0, HealthStatus::Unhealthy);
        t.docker_health = Some("healthy".into());
        assert_eq!(assess(&t, 1, CRASH), (HealthStatus::Healthy, "Docker health check healthy".into()));
    }

    #[test]
    fn restarts_kept_are_bounded() {
        let mut t = Tracked::new(0);
        t.restarted(1_000_000, 5, 64);
        assert_eq!(t.restarts.len(), 64);
    }

    #[test]
    fn uptime_integrates_healthy_time() {
        use HealthStatus::*;
        // Healthy from 0, down at 60, healthy again at 90, now 100: 70 %.
        let changes = [(0, Healthy), (60, Down), (90, Healthy)];
        assert!((uptime_percent(&changes, 0, 100, Healthy) - 70.0).abs() < 1e-9);
        // The window starts at 50: 10 of 50 healthy before 60, 10 after 90: 40 %.
        assert!((uptime_percent(&changes, 50, 100, Healthy) - 40.0).abs() < 1e-9);
        assert_eq!(uptime_percent(&[], 0, 100, Healthy), 100.0);
        assert_eq!(uptime_percent(&[], 0, 100, Down), 0.0);
    }
}
