//! SuperServer's core: the typed operations behind every transport (HTTP
//! API, CLI, dashboard), the configuration, and the errors they share.
//! Nothing here knows about HTTP.

mod admin;
pub mod config;
mod discovery;
pub mod error;
pub mod ids;
mod notify;
pub mod request;
mod run;
mod sandboxes;
mod service;
pub mod tenancy;
mod usage;

pub use admin::ADMIN_KEY_FILE;
pub use config::Config;
pub use error::{CoreError, Result};
pub use notify::{QUOTA_WARNING, USAGE_REPORTED};
pub use sandboxes::FileContent;
pub use service::{now_ms, Counters, Helper, Service};
pub use superserver_runtime::ratelimit::RateLimit;
pub use superserver_runtime::OutputChunk;
pub use tenancy::Caller;
pub use usage::{TenantMetrics, UsageQuery};
