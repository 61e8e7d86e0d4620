//! Server configuration: a TOML file, `SUPERSERVER_…` environment variables
//! and flags (the binary layers the last two on top of the file).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use superserver_notify::{SmtpConfig, WebhookEndpoint};
use superserver_wire::{EffectiveLimits, Limits, PlanOverrides};

use crate::error::{CoreError, Result};

/// The whole configuration. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP API listens on. Any address with authentication on
    /// (the default); loopback only with it off.
    pub listen: SocketAddr,
    /// Where the store and the runtime's files live.
    pub data_dir: PathBuf,
    /// `pretty` or `json` log lines.
    pub log_format: String,
    pub limits: LimitsConfig,
    pub sandbox: SandboxConfig,
    pub pool: PoolSettings,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub tenants: TenantsConfig,
    /// Changes to the built-in plans (`free`, `developer`, `team`,
    /// `enterprise`) and plans of your own (starting from `free`).
    pub plans: BTreeMap<String, PlanOverrides>,
    /// Receivers of usage events and quota warnings.
    pub webhooks: Vec<WebhookEndpoint>,
    /// Where quota warning e-mails go out (none without it).
    pub smtp: Option<SmtpConfig>,
    pub billing: BillingConfig,
    pub discovery: DiscoveryConfig,
    pub health: crate::health::config::HealthConfig,
    pub anomaly: crate::anomaly::config::AnomalyConfig,
    /// Alert rules and channels.
    pub alerts: crate::alerts::AlertsConfig,
    pub logs: crate::logs::LogsConfig,
    pub metrics: crate::metrics::MetricsConfig,
    /// Governed networking of `policy`-mode sandboxes.
    pub egress: crate::egress::EgressConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Look at the host's containers, units and listening processes.
    pub enabled: bool,
    /// Seconds between two looks.
    pub interval_seconds: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self { enabled: true, interval_seconds: 10 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require an API key on every `/v1` call. Off only for a single-user
    /// server on loopback (every caller is then the admin).
    pub enabled: bool,
    /// Require a key (any role) for `/metrics` too.
    pub metrics_require_key: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsConfig {
    /// Plan of a tenant created without one.
    pub default_plan: String,
    /// Tenants named in `/metrics` labels; the rest are summed as `_other`.
    pub max_metric_tenants: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// How often new usage is reported to the webhooks (`usage.reported`), seconds.
    pub usage_report_interval_seconds: u64,
    /// Delivery attempts of a notification before it is given up.
    pub max_delivery_attempts: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { enabled: true, metrics_require_key: false }
    }
}

impl Default for TenantsConfig {
    fn default() -> Self {
        Self { default_plan: "free".into(), max_metric_tenants: 50 }
    }
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self { usage_report_interval_seconds: 60, max_delivery_attempts: 20 }
    }
}

/// Default and maximum resource limits of a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Limits of a sandbox whose request does not set them.
    pub default: EffectiveLimits,
    /// Largest limits a request may ask for.
    pub max: EffectiveLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Image used when a request names none.
    pub default_image: String,
    /// Command timeout when a request sets none (ms).
    pub default_timeout_ms: u64,
    /// Longest command timeout a request may ask for (ms).
    pub max_timeout_ms: u64,
    /// Lifetime of a persistent sandbox when the request sets none.
    pub default_ttl_seconds: u64,
    pub max_ttl_seconds: u64,
    /// Output kept per stream when the request sets no cap.
    pub default_max_output_bytes: u64,
    /// Largest per-stream output cap a request may ask for.
    pub max_output_bytes: u64,
    /// Most sandboxes alive at once, pool included.
    pub max_sandboxes: usize,
    /// First host uid/gid of the ranges mapped into sandboxes (65536 each).
    pub id_base: u32,
    /// Longest a sandbox may take to become ready (ms).
    pub setup_timeout_ms: u64,
    /// Turn on the host's cgroup2 option `favordynmods` at start (it stays
    /// on until reboot), so that placing a sandbox in its cgroup never waits
    /// for an RCU grace period (5-30 ms on an idle host).
    pub cgroup_favordynmods: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Ready sandboxes kept per image/limits profile (0 disables the pool).
    pub size: usize,
    /// Most profiles kept warm at once.
    pub max_profiles: usize,
    /// A profile unused this long stops being kept warm (the default profile always is).
    pub profile_idle_seconds: u64,
    /// Sandboxes created concurrently while refilling.
    pub parallel_creates: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest request body (JSON or uploaded file) in bytes.
    pub max_body_bytes: usize,
    /// Largest file a `GET …/files` answers with.
    pub max_download_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            data_dir: PathBuf::from("superserver-data"),
            log_format: "pretty".into(),
            limits: LimitsConfig::default(),
            sandbox: SandboxConfig::default(),
            pool: PoolSettings::default(),
            api: ApiConfig::default(),
            auth: AuthConfig::default(),
            tenants: TenantsConfig::default(),
            plans: BTreeMap::new(),
            webhooks: Vec::new(),
            smtp: None,
            billing: BillingConfig::default(),
            discovery: DiscoveryConfig::default(),
            health: Default::default(),
            anomaly: Default::default(),
            alerts: Default::default(),
            logs: crate::logs::LogsConfig::default(),
            metrics: Default::default(),
            egress: Default::default(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: EffectiveLimits { memory_mb: 512, pids: 256, cpu_percent: 100, disk_mb: 256 },
            max: EffectiveLimits { memory_mb: 16_384, pids: 16_384, cpu_percent: 6_400, disk_mb: 16_384 },
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            default_image: "host".into(),
            default_timeout_ms: 60_000,
            max_timeout_ms: 24 * 3_600_000,
            default_ttl_seconds: 3_600,
            max_ttl_seconds: 7 * 86_400,
            default_max_output_bytes: 1 << 20,
            max_output_bytes: 64 << 20,
            max_sandboxes: 4_096,
            id_base: 1_000_000_000,
            setup_timeout_ms: 10_000,
            cgroup_favordynmods: true,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { size: 8, max_profiles: 8, profile_idle_seconds: 600, parallel_creates: 2 }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { max_body_bytes: 64 << 20, max_download_bytes: 64 << 20 }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error naming the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CoreError::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<()> {
        if !self.auth.enabled && !self.listen.ip().is_loopback() {
            return Err(CoreError::Config(format!(
                "listen address {} is not loopback: with auth.enabled = false the API is only served on \
                 127.0.0.1 or ::1",
                self.listen
            )));
        }
        let plans = crate::tenancy::plans::resolve(&self.plans);
        for (name, p) in &plans {
            crate::tenancy::plans::validate(name, p).map_err(CoreError::Config)?;
        }
        if !plans.contains_key(&self.tenants.default_plan) {
            return Err(CoreError::Config(format!(
                "tenants.default_plan `{}` is not a plan (known: {})",
                self.tenants.default_plan,
                plans.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let mut names = std::collections::HashSet::new();
        for w in &self.webhooks {
            w.validate().map_err(|e| CoreError::Config(format!("webhooks: {e}")))?;
            w.resolve_secret().map_err(|e| CoreError::Config(format!("webhooks: {e}")))?;
            if !names.insert(w.name.as_str()) {
                return Err(CoreError::Config(format!("webhooks: the name `{}` is used twice", w.name)));
            }
        }
        if let Some(smtp) = &self.smtp {
            smtp.validate().map_err(|e| CoreError::Config(format!("smtp: {e}")))?;
        }
        self.health.validate().map_err(CoreError::Config)?;
        self.anomaly.validate().map_err(CoreError::Config)?;
        self.alerts.validate(self.smtp.is_some()).map_err(CoreError::Config)?;
        self.logs.validate()?;
        self.metrics.validate()?;
        self.egress.validate()?;
        if self.discovery.interval_seconds == 0 {
            return Err(CoreError::Config("discovery.interval_seconds must be at least 1".into()));
        }
        if self.billing.usage_report_interval_seconds == 0 || self.billing.max_delivery_attempts == 0 {
            return Err(CoreError::Config(
                "billing.usage_report_interval_seconds and billing.max_delivery_attempts must be at least 1".into(),
            ));
        }
        let d = &self.limits.default;
        let m = &self.limits.max;
        if d.memory_mb > m.memory_mb || d.pids > m.pids || d.cpu_percent > m.cpu_percent || d.disk_mb > m.disk_mb {
            return Err(CoreError::Config("limits.default exceeds limits.max".into()));
        }
        if d.memory_mb < 8 || d.pids < 4 || d.cpu_percent == 0 || d.disk_mb == 0 {
            return Err(CoreError::Config(
                "limits.default too small (memory_mb ≥ 8, pids ≥ 4, cpu_percent ≥ 1, disk_mb ≥ 1)".into(),
            ));
        }
        if !["pretty", "json"].contains(&self.log_format.as_str()) {
            return Err(CoreError::Config(format!("log_format `{}`: use pretty or json", self.log_format)));
        }
        if u64::from(self.sandbox.id_base) + 65_536 * self.sandbox.max_sandboxes as u64 > u64::from(u32::MAX) {
            return Err(CoreError::Config("sandbox.id_base + 65536 × max_sandboxes exceeds the uid range".into()));
        }
        Ok(())
    }

    /// Resolves a request's optional limits against the defaults and maxima.
    pub fn resolve_limits(&self, req: Option<&Limits>) -> Result<EffectiveLimits> {
        let d = self.limits.default;
        let m = self.limits.max;
        let r = req.copied().unwrap_or_default();
        let l = EffectiveLimits {
            memory_mb: r.memory_mb.unwrap_or(d.memory_mb),
            pids: r.pids.unwrap_or(d.pids),
            cpu_percent: r.cpu_percent.unwrap_or(d.cpu_percent),
            disk_mb: r.disk_mb.unwrap_or(d.disk_mb),
        };
        let over = |name: &str, v: u64, max: u64, min: u64| -> Result<()> {
            if v > max {
                return Err(CoreError::LimitExceeded(format!("limits.{name} = {v} exceeds the maximum {max}")));
            }
            if v < min {
                return Err(CoreError::InvalidRequest(format!("limits.{name} = {v} is below the minimum {min}")));
            }
            Ok(())
        };
        over("memory_mb", l.memory_mb, m.memory_mb, 8)?;
        over("pids", u64::from(l.pids), u64::from(m.pids), 4)?;
        over("cpu_percent", u64::from(l.cpu_percent), u64::from(m.cpu_percent), 1)?;
        over("disk_mb", l.disk_mb, m.disk_mb, 1)?;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<Config>("listn = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
        let err = toml::from_str::<Config>("[pool]\nsise = 3").unwrap_err();
        assert!(err.to_string().contains("sise"), "{err}");
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c: Config = toml::from_str("[pool]\nsize = 9\n").unwrap();
        assert_eq!(c.pool.size, 9);
        assert_eq!(c.pool.max_profiles, PoolSettings::default().max_profiles);
    }

    #[test]
    fn non_loopback_listen_needs_auth() {
        let c = Config { listen: "0.0.0.0:7070".parse().unwrap(), ..Config::default() };
        c.validate().unwrap();
        let c = Config { auth: AuthConfig { enabled: false, ..Default::default() }, ..c };
        assert!(c.validate().unwrap_err().to_string().contains("loopback"));
    }

    #[test]
    fn plans_are_checked() {
        let c: Config = toml::from_str("[plans.free]\nrequest_burst = 0\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("plans.free.request_burst"));
        let c: Config = toml::from_str("[tenants]\ndefault_plan = \"gold\"\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("gold"));
        let c: Config = toml::from_str("[plans.free]\nexecutions_per_month = \"unlimited\"\n").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn limits_resolve_and_are_bounded() {
        let c = Config::default();
        let l = c.resolve_limits(Some(&Limits { memory_mb: Some(64), ..Default::default() })).unwrap();
        assert_eq!(l.memory_mb, 64);
        assert_eq!(l.pids, c.limits.default.pids);
        let err = c.resolve_limits(Some(&Limits { memory_mb: Some(1 << 40), ..Default::default() })).unwrap_err();
        assert!(err.to_string().contains("memory_mb"), "{err}");
    }
}
