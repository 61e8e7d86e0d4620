//! Wire types of alerts (`/v1/alerts`, `/v1/silences`) and of the anomalies
//! the detectors hand to them.
//!
//! Service ids, summaries, log lines and templates come from the host and
//! are untrusted data.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether an alert's condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A container not running, a unit failed, a process service gone.
    ServiceDown,
    /// An anomaly detector's finding (by [`crate::AnomalyKind`]).
    Anomaly,
    /// A metric series past a threshold for a duration.
    Metric,
    /// A sandbox's request stopped by the egress proxy for carrying a
    /// secret where it may not go (a custody placeholder to an unbound
    /// host, or a secret found by content inspection).
    Egress,
}

/// A window of one metric series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricWindow {
    pub series: String,
    pub points: Vec<crate::MetricPoint>,
}

/// A recent change of the service (from discovery's events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertChange {
    pub at_ms: i64,
    /// `restarted`, `image_changed`, `state_changed`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// What was known around the service when the alert fired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertContext {
    /// Recent changes of the service, newest first.
    #[serde(default)]
    pub changes: Vec<AlertChange>,
    /// The service's last log lines.
    #[serde(default)]
    pub log_excerpt: Vec<String>,
    /// Metric windows (empty while no metric source is wired).
    #[serde(default)]
    pub metrics: Vec<MetricWindow>,
    /// The anomaly behind the alert, for an `anomaly` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<crate::Anomaly>,
    /// Why the context is incomplete (e.g. "docker logs: …").
    #[serde(default)]
    pub notes: Vec<String>,
}

/// An acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Ack {
    /// Key id of who acknowledged.
    pub by: String,
    pub at_ms: i64,
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertEvent {
    pub at_ms: i64,
    /// `fired`, `notified`, `suppressed`, `acked`, `silenced`, `resolved`.
    pub kind: String,
    /// Detail (channels notified, why suppressed, who acked).
    pub detail: String,
}

/// An alert: one (rule, service) condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: String,
    /// `rule` + `service` (+ anomaly kind): at most one open alert per fingerprint.
    pub fingerprint: String,
    pub rule: String,
    pub rule_kind: RuleKind,
    pub service: String,
    pub severity: Severity,
    pub state: AlertState,
    pub summary: String,
    pub started_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Ack>,
    /// Notifications sent for this alert (firing, repeats, resolved).
    pub notifications: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified_at_ms: Option<i64>,
    pub context: AlertContext,
}

/// `GET /v1/alerts/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertDetail {
    pub alert: Alert,
    /// Oldest first.
    pub history: Vec<AlertEvent>,
}

/// `GET /v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    /// Newest first.
    pub alerts: Vec<Alert>,
}

/// A silence: matching alerts notify nobody until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Silence {
    pub id: String,
    /// Rule name it covers; all rules if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Service id it covers; all services if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub until_ms: i64,
    pub reason: String,
    /// Key id of who made it.
    pub by: String,
    pub created_at_ms: i64,
}

/// `GET /v1/silences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SilenceList {
    /// Active silences, ending soonest first.
    pub silences: Vec<Silence>,
}

/// `POST /v1/silences` (and, without `rule`/`service`, `POST /v1/alerts/{id}/silence`).
/// Exactly one of `for_seconds` and `until` (Unix milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    #[serde(default)]
    pub reason: String,
}
