//! Alerts: rules turn conditions of the host's services into alerts (one
//! open alert per rule and service), and alerts into notifications on the
//! configured channels, through the durable outbox.
//!
//! Inputs: [`Service::raise`] / [`Service::resolve`] with an [`AlertSignal`]
//! (the anomaly detectors call [`Service::report_anomaly`]); the
//! `service_down` rules are evaluated here from discovery's snapshots, and
//! the `metric` rules from a [`MetricSource`] once one is installed.

pub mod config;
mod decide;
mod deliver;
mod metric;
mod ops;
mod payload;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use superserver_store::AlertRecord;
use superserver_wire::{AlertChange, AlertContext, Anomaly, AnomalyKind, RuleKind, ServiceKind};

pub use config::{AlertsConfig, ChannelConfig, ChannelKind, RuleConfig};
pub use metric::MetricSource;

use crate::error::Result;
use crate::service::{now_ms, Service};
use decide::Policy;
use metric::{Step, Threshold};

/// Most services remembered as seen (running containers, process services).
const MAX_SEEN: usize = 10_000;

/// Event types of alert notifications.
pub const ALERT_FIRING: &str = "alert.firing";
pub const ALERT_RESOLVED: &str = "alert.resolved";

/// Which rules a signal is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalKind {
    /// Every `service_down` rule selecting the service.
    ServiceDown,
    /// Every `anomaly` rule covering the kind and selecting the service.
    Anomaly(AnomalyKind),
    /// The `metric` rule of that name.
    Metric { rule: String },
    /// Every `egress` rule (the service is `sandbox:<id>`).
    Egress,
}

/// A condition of one service, raised or ended.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSignal {
    pub kind: SignalKind,
    /// Service id (`container:web`).
    pub service: String,
    /// One line for humans.
    pub summary: String,
    /// What the caller knows; recent changes and a log excerpt are added
    /// when an alert opens.
    pub context: AlertContext,
}

/// Evaluation state, in memory (alerts themselves are in the store).
pub(crate) struct AlertsState {
    /// Alerts opened or resolved, as it happens (live views).
    pub changes: tokio::sync::broadcast::Sender<superserver_wire::Alert>,
    metric_source: RwLock<Option<Arc<dyn MetricSource>>>,
    thresholds: Mutex<HashMap<String, Threshold>>,
    /// `rule/service` → when it was first seen down.
    down_since: Mutex<HashMap<String, i64>>,
    /// Process services seen, to notice when one is gone, and containers
    /// seen running, so a container stopped before the server watched it
    /// (a deliberately stopped one) is not reported down.
    seen: Mutex<HashSet<String>>,
    /// Woken after each evaluation.
    pub evaluated: tokio::sync::Notify,
}

impl Default for AlertsState {
    fn default() -> Self {
        Self {
            changes: tokio::sync::broadcast::channel(64).0,
            metric_source: RwLock::default(),
            thresholds: Mutex::default(),
            down_since: Mutex::default(),
            seen: Mutex::default(),
            evaluated: tokio::sync::Notify::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Service {
    /// Starts the rule evaluator, if alerts are enabled.
    pub(crate) fn start_alerts(&self) {
        if !self.inner.cfg.alerts.enabled {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move { svc.alerts_loop().await });
    }

    /// Installs the source the `metric` rules read.
    pub fn set_metric_source(&self, source: Arc<dyn MetricSource>) {
        *self.inner.alerts.metric_source.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Raises a condition: for each matching rule, opens an alert (or keeps
    /// the open one) and notifies as the rule's cooldown, acks and silences
    /// allow. Returns the alerts concerned.
    pub async fn raise(&self, signal: AlertSignal) -> Result<Vec<AlertRecord>> {
        let rules = self.rules_for(&signal.kind, &signal.service);
        self.raise_rules(rules, signal).await
    }

    async fn raise_rules(&self, rules: Vec<RuleConfig>, signal: AlertSignal) -> Result<Vec<AlertRecord>> {
        let mut out = Vec::new();
        let mut context: Option<String> = None;
        for rule in rules {
            let fp = fingerprint(&rule, &signal.kind, &signal.service);
            let ctx = match &context {
                Some(c) => c.clone(),
                None if self.inner.store.alert_is_firing(fp.clone()).await? => "{}".to_string(),
                None => {
                    let c = self.enrich(signal.context.clone(), &signal.service).await;
                    let c = serde_json::to_string(&c).unwrap_or_else(|_| "{}".into());
                    context = Some(c.clone());
                    c
                }
            };
            let policy = Policy {
                rule: rule.name.clone(),
                rule_kind: kind_str(rule.kind).into(),
                severity: enum_str(&rule.severity),
                cooldown_ms: rule.cooldown_seconds.saturating_mul(1000) as i64,
            };
            let (svc, service, summary, new_id) =
                (self.clone(), signal.service.clone(), signal.summary.clone(), crate::ids::new_id("al"));
            let now = now_ms();
            let channels = rule.channels.clone();
            let fp2 = fp.clone();
            let (decision, queued) = self
                .inner
                .store
                .alert_transition(fp, now, move |view| {
                    let rows = |a: &AlertRecord, n| payload::rows(&svc.inner.cfg, channels.as_deref(), a, n, now);
                    let r = decide::Raised {
                        fingerprint: &fp2,
                        service: &service,
                        summary: &summary,
                        context: &ctx,
                        new_id: &new_id,
                        now,
                    };
                    decide::on_raise(view, &policy, &r, &rows)
                })
                .await?;
            if decision.opened {
                tracing::warn!(rule = %rule.name, service = %signal.service, "alert firing");
                if let Some(a) = &decision.alert {
                    let _ = self.inner.alerts.changes.send(payload::to_wire(a));
                }
            }
            if queued > 0 {
                self.inner.outbox_wake.notify_one();
            }
            out.extend(decision.alert);
        }
        Ok(out)
    }

    /// Ends a condition: resolves the open alerts of the matching rules
    /// (with a `resolved` notification where the alert had notified).
    pub async fn resolve(&self, kind: SignalKind, service: &str, why: &str) -> Result<Vec<AlertRecord>> {
        let mut out = Vec::new();
        for rule in self.rules_for(&kind, service) {
            let fp = fingerprint(&rule, &kind, service);
            out.extend(self.resolve_fingerprint(fp, why).await?);
        }
        Ok(out)
    }

    async fn resolve_fingerprint(&self, fp: String, why: &str) -> Result<Option<AlertRecord>> {
        let (svc, why, now) = (self.clone(), why.to_string(), now_ms());
        let (decision, queued) = self
            .inner
            .store
            .alert_transition(fp, now, move |view| {
                let channels = view.open.as_ref().and_then(|a| svc.rule_channels(&a.rule));
                let rows = |a: &AlertRecord, n| payload::rows(&svc.inner.cfg, channels.as_deref(), a, n, now);
                decide::on_resolve(view, now, &why, &rows)
            })
            .await?;
        if let Some(a) = &decision.alert {
            tracing::info!(rule = %a.rule, service = %a.service_id, "alert resolved");
            let _ = self.inner.alerts.changes.send(payload::to_wire(a));
        }
        if queued > 0 {
            self.inner.outbox_wake.notify_one();
        }
        Ok(decision.alert)
    }

    /// Alerts as they open and resolve.
    pub fn subscribe_alerts(&self) -> tokio::sync::broadcast::Receiver<superserver_wire::Alert> {
        self.inner.alerts.changes.subscribe()
    }

    /// An anomaly detector's finding: raises the `anomaly` rules covering its kind.
    pub async fn report_anomaly(&self, anomaly: Anomaly) -> Result<Vec<AlertRecord>> {
        let signal = AlertSignal {
            kind: SignalKind::Anomaly(anomaly.kind),
            service: anomaly.service.clone(),
            summary: anomaly.summary.clone(),
            context: AlertContext {
                metrics: if anomaly.evidence.window.is_empty() {
                    Vec::new()
                } else {
                    vec![superserver_wire::MetricWindow {
                        series: anomaly.evidence.series.clone().unwrap_or_else(|| anomaly.kind.as_str().to_string()),
                        points: anomaly.evidence.window.clone(),
                    }]
                },
                anomaly: Some(anomaly),
                ..AlertContext::default()
            },
        };
        self.raise(signal).await
    }

    fn rule_channels(&self, rule: &str) -> Option<Vec<String>> {
        self.inner.cfg.alerts.effective_rules().into_iter().find(|r| r.name == rule).and_then(|r| r.channels)
    }

    /// The rules a signal concerns.
    fn rules_for(&self, kind: &SignalKind, service: &str) -> Vec<RuleConfig> {
        let project = self.compose_project(service);
        self.inner
            .cfg
            .alerts
            .effective_rules()
            .into_iter()
            .filter(|r| rule_matches(r, kind, service, project.as_deref()))
            .collect()
    }

    fn compose_project(&self, service: &str) -> Option<String> {
        let snap = self.inner.discovered.get()?;
        let s = snap.services.iter().find(|s| s.id == service)?;
        s.container.as_ref()?.compose.as_ref().map(|c| c.project.clone())
    }

    /// Adds the service's recent changes and last log lines to a context.
    async fn enrich(&self, mut ctx: AlertContext, service: &str) -> AlertContext {
        match self.inner.store.list_service_events(Some(service.to_string()), None, 10).await {
            Ok(events) => ctx.changes.extend(events.into_iter().map(|e| AlertChange {
                at_ms: e.at_ms,
                kind: e.kind,
                before: e.before,
                after: e.after,
            })),
            Err(e) => ctx.notes.push(format!("recent changes unavailable: {e}")),
        }
        // The service's main figures over the last half hour.
        if ctx.metrics.is_empty() {
            let now = crate::service::now_ms();
            for metric in ["cpu.percent", "memory.bytes", "memory.rss_bytes"] {
                let series = format!("{service}/{metric}");
                if let Ok(points) = self.metric_window(&series, now - 30 * 60_000, now).await {
                    if !points.is_empty() {
                        ctx.metrics.push(superserver_wire::MetricWindow { series, points });
                    }
                }
            }
        }
        let lines = self.inner.cfg.alerts.log_lines;
        // The followed logs first (containers, configured files); a container
        // whose lines are not stored yet is asked directly.
        if ctx.log_excerpt.is_empty() && lines > 0 {
            match self.log_excerpt(service, crate::service::now_ms(), lines).await {
                Ok(l) => {
                    ctx.log_excerpt = l.into_iter().map(|l| format!("{} {}", l.stream, l.line)).collect();
                }
                Err(e) => ctx.notes.push(format!("stored logs unavailable: {e}")),
            }
        }
        if let (Some(name), true) = (service.strip_prefix("container:"), ctx.log_excerpt.is_empty() && lines > 0) {
            let socket = superserver_ops::Options::default().docker_socket;
            let tail = superserver_ops::log_tail::container_log_tail(&socket, name, lines);
            match tokio::time::timeout(Duration::from_secs(5), tail).await {
                Ok(Ok(l)) => ctx.log_excerpt = l,
                Ok(Err(e)) => ctx.notes.push(format!("container logs unavailable: {e}")),
                Err(_) => ctx.notes.push("container logs unavailable: no answer within 5 s".into()),
            }
        }
        ctx
    }

    async fn alerts_loop(self) {
        let every = Duration::from_secs(self.inner.cfg.alerts.evaluate_interval_seconds.max(1));
        loop {
            if let Err(e) = self.evaluate_service_down().await {
                tracing::warn!(error = %e, "service_down evaluation failed");
            }
            if let Err(e) = self.evaluate_metrics().await {
                tracing::warn!(error = %e, "metric rule evaluation failed");
            }
            self.inner.alerts.evaluated.notify_waiters();
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass of the `service_down` rules over discovery's latest snapshot.
    async fn evaluate_service_down(&self) -> Result<()> {
        let Some(snap) = self.inner.discovered.get() else { return Ok(()) };
        let now = now_ms();
        // What is down now, and why.
        let open = self.inner.store.firing_alerts(kind_str(RuleKind::ServiceDown).into()).await?;
        let firing: HashSet<String> = open.iter().map(|a| a.service_id.clone()).collect();
        let mut down: Vec<(String, String)> = Vec::new();
        let mut present = HashSet::new();
        {
            let mut known = lock(&self.inner.alerts.seen);
            for s in &snap.services {
                present.insert(s.id.clone());
                let running = s.container.as_ref().is_some_and(|c| c.state == "running");
                if (s.kind == ServiceKind::Process || running) && known.len() < MAX_SEEN {
                    known.insert(s.id.clone());
                }
                let why = match (&s.container, &s.unit) {
                    (Some(c), _) if !running && (known.contains(&s.id) || firing.contains(&s.id)) => {
                        Some(format!("container {} is {}", c.name, c.state))
                    }
                    (None, Some(u)) if u.active_state == "failed" => Some(format!("unit {} failed", u.name)),
                    // Running but failing its checks (probes, Docker's health
                    // check, a crash loop) is down for its users too.
                    _ => self
                        .health_of(&s.id)
                        .filter(|h| h.status == superserver_wire::HealthStatus::Unhealthy)
                        .map(|h| format!("{} is unhealthy: {}", s.id, h.reason)),
                };
                down.extend(why.map(|w| (s.id.clone(), w)));
            }
            down.extend(
                known
                    .iter()
                    .filter(|p| p.starts_with("process:") && !present.contains(*p))
                    .map(|p| (p.clone(), format!("process service {p} is gone"))),
            );
        }
        let rules: Vec<RuleConfig> =
            self.inner.cfg.alerts.effective_rules().into_iter().filter(|r| r.kind == RuleKind::ServiceDown).collect();
        let mut down_keys = HashSet::new();
        let mut due = Vec::new();
        {
            let mut since = lock(&self.inner.alerts.down_since);
            for (service, why) in &down {
                let project = snap
                    .services
                    .iter()
                    .find(|s| &s.id == service)
                    .and_then(|s| s.container.as_ref()?.compose.as_ref().map(|c| c.project.clone()));
                for r in rules.iter().filter(|r| r.selects(service, project.as_deref())) {
                    let key = fingerprint(r, &SignalKind::ServiceDown, service);
                    let first = *since.entry(key.clone()).or_insert(now);
                    down_keys.insert(key);
                    let for_ms = r.for_seconds.unwrap_or(60).saturating_mul(1000) as i64;
                    if now - first >= for_ms {
                        due.push((r.clone(), service.clone(), why.clone()));
                    }
                }
            }
            since.retain(|k, _| down_keys.contains(k));
        }
        for (rule, service, why) in due {
            let signal = AlertSignal {
                kind: SignalKind::ServiceDown,
                service: service.clone(),
                summary: why,
                context: AlertContext::default(),
            };
            // This rule only: another rule may want a longer duration.
            self.raise_rules(vec![rule], signal).await?;
        }
        for a in open {
            if !down_keys.contains(&a.fingerprint) {
                let why = if present.contains(&a.service_id) { "the service is up" } else { "the service is gone" };
                self.resolve_fingerprint(a.fingerprint, why).await?;
            }
        }
        Ok(())
    }

    /// One pass of the `metric` rules.
    async fn evaluate_metrics(&self) -> Result<()> {
        // The stored metrics' latest values, unless another source was installed.
        let source = self.inner.alerts.metric_source.read().unwrap_or_else(|e| e.into_inner()).clone();
        for r in self.inner.cfg.alerts.effective_rules().into_iter().filter(|r| r.kind == RuleKind::Metric) {
            let Some(series) = &r.series else { continue };
            let latest = match &source {
                Some(s) => s.latest(series),
                None => self.metric_latest(series),
            };
            let Some((at, v)) = latest else { continue };
            let step = lock(&self.inner.alerts.thresholds).entry(r.name.clone()).or_default().for_rule(&r, at, v);
            let service = r.service.clone().unwrap_or_else(|| "host".into());
            let kind = SignalKind::Metric { rule: r.name.clone() };
            match step {
                Step::Fire(v) => {
                    let summary = format!("{series} is {v} ({} {})", op_str(&r), r.value.unwrap_or_default());
                    self.raise(AlertSignal { kind, service, summary, context: AlertContext::default() }).await?;
                }
                Step::Resolve(v) => {
                    self.resolve(kind, &service, &format!("{series} is back to {v}")).await?;
                }
                Step::Hold => {}
            }
        }
        Ok(())
    }

    /// Waits for the next rule evaluation (at most `timeout`).
    pub async fn wait_alerts(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.alerts.evaluated.notified()).await;
    }
}

/// Whether a rule concerns a signal of `kind` about `service`.
fn rule_matches(r: &RuleConfig, kind: &SignalKind, service: &str, project: Option<&str>) -> bool {
    let kind_ok = match kind {
        SignalKind::ServiceDown => r.kind == RuleKind::ServiceDown,
        SignalKind::Anomaly(k) => {
            r.kind == RuleKind::Anomaly && (r.anomaly_kinds.is_empty() || r.anomaly_kinds.contains(k))
        }
        SignalKind::Metric { rule } => return r.kind == RuleKind::Metric && &r.name == rule,
        SignalKind::Egress => r.kind == RuleKind::Egress,
    };
    kind_ok && r.selects(service, project)
}

/// `rule/service`, plus `/kind` for an anomaly: one open alert each.
fn fingerprint(rule: &RuleConfig, kind: &SignalKind, service: &str) -> String {
    match kind {
        SignalKind::Anomaly(k) => format!("{}/{service}/{}", rule.name, enum_str(k)),
        _ => format!("{}/{service}", rule.name),
    }
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn kind_str(k: RuleKind) -> &'static str {
    match k {
        RuleKind::ServiceDown => "service_down",
        RuleKind::Anomaly => "anomaly",
        RuleKind::Metric => "metric",
        RuleKind::Egress => "egress",
    }
}

fn op_str(r: &RuleConfig) -> String {
    r.op.map(|o| enum_str(&o)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml: &str) -> RuleConfig {
        toml::from_str(toml).expect("a valid rule")
    }

    #[test]
    fn rules_match_by_kind_anomaly_kind_glob_and_project() {
        let crash =
            rule("name = \"c\"\nkind = \"anomaly\"\nanomaly_kinds = [\"crash_loop\"]\nservices = [\"container:*\"]\n");
        let a = SignalKind::Anomaly(AnomalyKind::CrashLoop);
        assert!(rule_matches(&crash, &a, "container:web", None));
        assert!(!rule_matches(&crash, &SignalKind::Anomaly(AnomalyKind::DiskFullSoon), "container:web", None));
        assert!(!rule_matches(&crash, &a, "unit:web.service", None));
        assert!(!rule_matches(&crash, &SignalKind::ServiceDown, "container:web", None));
        let shop = rule("name = \"d\"\nkind = \"service_down\"\ncompose_projects = [\"shop\"]\n");
        assert!(rule_matches(&shop, &SignalKind::ServiceDown, "container:db", Some("shop")));
        assert!(!rule_matches(&shop, &SignalKind::ServiceDown, "container:db", Some("blog")));
        assert!(!rule_matches(&shop, &SignalKind::ServiceDown, "container:db", None));
        let m = rule("name = \"disk\"\nkind = \"metric\"\nseries = \"d\"\nop = \">\"\nvalue = 1\n");
        assert!(rule_matches(&m, &SignalKind::Metric { rule: "disk".into() }, "host", None));
        assert!(!rule_matches(&m, &SignalKind::Metric { rule: "cpu".into() }, "host", None));
        let any = fingerprint(&crash, &a, "container:web");
        assert_eq!(any, "c/container:web/crash_loop");
    }
}
