//! SuperServer's core: the typed operations behind every transport (HTTP
//! API, CLI, dashboard), the configuration, and the errors they share.
//! Nothing here knows about HTTP.

pub mod config;
pub mod error;
pub mod ids;
pub mod request;
mod run;
mod sandboxes;
mod service;

pub use config::Config;
pub use error::{CoreError, Result};
pub use sandboxes::FileContent;
pub use service::{now_ms, Counters, Helper, Service};
pub use superserver_runtime::ratelimit::RateLimit;
pub use superserver_runtime::OutputChunk;
