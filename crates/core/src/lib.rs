//! SuperServer's core: the typed operations behind every transport (HTTP
//! API, CLI, dashboard), the configuration, and the errors they share.
//! Nothing here knows about HTTP.

mod admin;
pub mod alerts;
mod anomaly;
pub mod config;
mod discovery;
pub mod egress;
pub mod error;
mod executions;
mod health;
pub mod ids;
mod logs;
pub mod metrics;
mod notify;
pub mod request;
mod run;
mod sandboxes;
mod service;
pub mod sessions;
pub mod tenancy;
mod usage;

pub use admin::ADMIN_KEY_FILE;
pub use alerts::{AlertSignal, MetricSource, SignalKind};
pub use anomaly::config::AnomalyConfig;
pub use config::Config;
pub use error::{CoreError, Result};
pub use health::config::{HealthConfig, ProbeConfig};
pub use logs::{LogEvent, LogFiles, LogQuery, LogsConfig};
pub use notify::{QUOTA_WARNING, USAGE_REPORTED};
pub use sandboxes::FileContent;
pub use service::{now_ms, Counters, Helper, Service};
pub use superserver_runtime::ratelimit::RateLimit;
pub use superserver_runtime::OutputChunk;
pub use superserver_store::ADMIN_TENANT_ID as ADMIN_TENANT;
pub use tenancy::Caller;
pub use usage::{TenantMetrics, UsageQuery};
