//! Wire types of service health (`/v1/health`, `/v1/services/{id}/health`):
//! what SuperServer concludes from Docker's health checks, its own probes,
//! the service's state and its restarts.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A service's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Running, and every check it has passes (or it has none).
    Healthy,
    /// Running, within its start period, checks not passing yet.
    Starting,
    /// Running, but a check fails, or it restarts in a loop.
    Unhealthy,
    /// Not running: the container exited, the unit failed, the process is gone.
    Down,
}

impl HealthStatus {
    /// The snake_case name used on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Starting => "starting",
            Self::Unhealthy => "unhealthy",
            Self::Down => "down",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "healthy" => Self::Healthy,
            "starting" => Self::Starting,
            "unhealthy" => Self::Unhealthy,
            "down" => Self::Down,
            _ => return None,
        })
    }
}

/// How a probe checks a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// An HTTP request; healthy on the expected status (and body text).
    Http,
    /// A TCP connect.
    Tcp,
    /// A command run in a fresh sandbox; healthy on exit code 0.
    Command,
}

/// The outcome of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProbeResult {
    pub at_ms: i64,
    pub ok: bool,
    pub latency_ms: u64,
    /// What was seen: `HTTP 200`, `connected`, `exit 0`, or the failure.
    pub message: String,
}

/// A configured probe as it applies to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProbeState {
    /// The probe's name from the configuration.
    pub name: String,
    pub kind: ProbeKind,
    /// The URL, address or command probed, with `{host}` resolved.
    pub target: String,
    /// Failures in a row (the service is unhealthy once they reach `retries`).
    pub consecutive_failures: u32,
    pub retries: u32,
    /// The latest outcome, if the probe ran yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<ProbeResult>,
}

/// Restarts seen within the crash-loop window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrashLoop {
    pub restarts: u32,
    pub window_seconds: u64,
}

/// One change of a service's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthEvent {
    pub id: i64,
    pub at_ms: i64,
    pub service: String,
    pub status: HealthStatus,
    /// Why, in words: `probe web: HTTP 503`, `crash loop: 5 restarts in 300 s` …
    pub reason: String,
}

/// Share of time a service was healthy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Uptime {
    /// Percent of the last 24 hours (of the part SuperServer watched).
    pub day_percent: f64,
    /// Percent of the last 7 days (of the part SuperServer watched).
    pub week_percent: f64,
}

/// A service's health now, in brief (`GET /v1/health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthSummary {
    pub service: String,
    pub status: HealthStatus,
    pub reason: String,
    /// Since when the service has had this status.
    pub since_ms: i64,
}

/// `GET /v1/health`: every known service's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthList {
    pub services: Vec<HealthSummary>,
}

/// `GET /v1/services/{id}/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceHealth {
    pub service: String,
    pub status: HealthStatus,
    pub reason: String,
    pub since_ms: i64,
    /// Docker's own health status, for a container with a `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_health: Option<String>,
    /// Set while the service restarts in a loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_loop: Option<CrashLoop>,
    /// Configured probes that apply to the service.
    pub probes: Vec<ProbeState>,
    pub uptime: Uptime,
    /// Latest changes, newest first.
    pub history: Vec<HealthEvent>,
}
