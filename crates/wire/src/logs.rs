//! Wire types of the logs API (`/v1/logs`, `/v1/logs/templates`). Every line
//! and template is untrusted data from a container, a file or a sandbox.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One stored log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    pub id: i64,
    /// Milliseconds since the Unix epoch (the engine's timestamp for containers).
    pub at_ms: i64,
    /// `container:<name>`, a configured file service, or `sandbox:<id>`.
    pub service: String,
    /// `stdout`, `stderr` or `file`.
    pub stream: String,
    /// `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `unknown`.
    pub level: String,
    pub template_id: i64,
    /// The template the line was mined into, variables as `<*>`.
    pub template: String,
    /// The line, at most 8 KiB (longer lines end in `…`).
    pub line: String,
}

/// Answer of `GET /v1/logs`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogList {
    pub lines: Vec<LogLine>,
}

/// A log template of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogTemplate {
    pub id: i64,
    pub service: String,
    pub text: String,
    /// Level of the first line of the template.
    pub level: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Lines assigned to it.
    pub count: i64,
}

/// Answer of `GET /v1/logs/templates`: most frequent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogTemplateList {
    pub templates: Vec<LogTemplate>,
}
