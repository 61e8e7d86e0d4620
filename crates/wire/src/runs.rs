//! Wire types of the run history (`/v1/executions`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One recorded command: a one-shot run or an exec in a persistent sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionInfo {
    pub id: String,
    pub sandbox_id: String,
    pub tenant_id: String,
    /// The argv.
    pub command: Vec<String>,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub cpu_ms: f64,
    pub peak_memory_bytes: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Set when the command could not be started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/executions`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionList {
    pub executions: Vec<ExecutionInfo>,
}
