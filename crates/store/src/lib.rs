//! SuperServer's embedded store: one SQLite database in the data directory.
//!
//! - WAL mode, `synchronous=FULL`: a write is on disk before its future
//!   resolves, so the API may acknowledge it.
//! - One writer thread commits queued writes in groups (see [`writer`]); a
//!   small pool of read-only connections serves reads from blocking tasks.
//! - Numbered migrations under `migrations/`, tracked in `schema_migrations`;
//!   a database from a newer binary is refused.
//!
//! Every operation is an `async` method on [`Store`], a cheap `Clone` handle.
#![forbid(unsafe_code)]

mod alerts;
mod anomalies;
mod egress;
mod error;
mod executions;
mod health;
mod logs;
mod metrics;
mod migrate;
mod outbox;
mod pool;
mod records;
mod sandboxes;
mod secrets;
mod services;
mod store;
mod tenants;
mod usage;
mod writer;

pub use alerts::{AlertEventRecord, AlertRecord, AlertView, AlertWrite, SilenceRecord};
pub use anomalies::{AnomalyFilter, AnomalyRecord};
pub use egress::{EgressFilter, EgressHostRow};
pub use error::{Result, StoreError};
pub use health::HealthEventRecord;
pub use logs::{fts_query, LogCursor, LogFilter, LogLineRecord, Pruned, TemplateRecord, TemplateUpdate};
pub use metrics::{MaintainReport, MetricPoint, MetricSeriesRecord, MetricsRetention, NewSample, TIER_BUCKET_MS};
pub use outbox::{Attempt, NewOutbox, OutboxRow, UsageBatchTenant};
pub use records::{ExecutionRecord, SandboxRecord};
pub use secrets::{SecretRecord, SecretUse};
pub use services::ServiceEventRecord;
pub use store::{Store, DB_FILE};
pub use tenants::{AuditRecord, KeyRecord, TenantRecord, ADMIN_TENANT_ID};
pub use usage::{TenantUsage, UsageGroupBy, UsageRow};
