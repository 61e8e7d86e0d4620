//! Wire types of the SuperServer HTTP API (`/v1`).
//!
//! Every request and response body the server speaks is defined here, once, and
//! used by the server, the CLI, the benchmark and the tests, so the API cannot
//! drift from its clients. Request types reject unknown fields.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod alerts;
mod anomaly;
mod egress;
mod health;
mod logs;
mod metrics;
mod ops;
mod runs;
mod secrets;
mod tenancy;
pub use alerts::*;
pub use anomaly::*;
pub use egress::*;
pub use health::*;
pub use logs::*;
pub use metrics::*;
pub use ops::*;
pub use runs::*;
pub use secrets::*;
pub use tenancy::*;

/// Media type for a streamed run or exec: one JSON [`StreamEvent`] per line.
pub const NDJSON: &str = "application/x-ndjson";
/// Media type for a streamed run or exec as server-sent events.
pub const EVENT_STREAM: &str = "text/event-stream";

/// Resource limits of a sandbox. Absent fields take the server's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory limit in MiB (the sandbox's processes are OOM-killed beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// Maximum number of processes and threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    /// CPU quota in percent of one core (100 = one full core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<u32>,
    /// Size of the writable storage (`/workspace`, `/tmp`, overlay upper) in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mb: Option<u64>,
}

/// Limits with every field resolved, as a sandbox actually runs with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct EffectiveLimits {
    pub memory_mb: u64,
    pub pids: u32,
    pub cpu_percent: u32,
    pub disk_mb: u64,
}

/// Who a command runs as inside the sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunAs {
    /// The unprivileged sandbox user (uid 1000 inside). The default.
    #[default]
    User,
    /// Root inside the sandbox: still without capabilities, and mapped to an
    /// unprivileged uid on the host.
    Root,
}

/// A file to place in the sandbox before the command runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileUpload {
    /// Path relative to `/workspace`, or absolute under `/workspace` or `/tmp`.
    pub path: String,
    /// File content, base64-encoded (standard alphabet, padded).
    pub content_base64: String,
    /// Permission bits, e.g. 493 (0o755). Default 0o644.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// The command part shared by a one-shot run and an exec in a persistent sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The argv array. Never joined by a shell: use `["sh","-c","…"]` for one.
    pub command: Vec<String>,
    /// Extra environment variables for this command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the sandbox. Default `/workspace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Text given to the command on its standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Bytes given to the command on its standard input, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_base64: Option<String>,
    /// Wall-clock limit for the command in milliseconds; the whole process
    /// tree is killed when it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Cap on each of stdout and stderr in bytes (default 1 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    /// Run as the sandbox user (default) or as root inside the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RunAs>,
    /// Files written before the command starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileUpload>,
}

/// `POST /v1/run`: create a fresh sandbox, run one command, destroy it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub command: Vec<String>,
    /// Root filesystem: `host` (default) or `dir:/path/to/rootfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RunAs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileUpload>,
    /// Network access: none (the default) or governed by a policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// Custody secrets the sandbox holds: each is in its environment as a
    /// placeholder the egress proxy swaps for the value on the way to the
    /// secret's hosts. Needs `network.mode = "policy"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl RunRequest {
    /// The command part of the run, as an exec in the fresh sandbox.
    pub fn exec_part(&self) -> ExecRequest {
        ExecRequest {
            command: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            stdin: self.stdin.clone(),
            stdin_base64: self.stdin_base64.clone(),
            timeout_ms: self.timeout_ms,
            max_output_bytes: self.max_output_bytes,
            user: self.user,
            files: self.files.clone(),
        }
    }
}

/// Outcome of one command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecResult {
    /// Id of the execution record.
    pub execution_id: String,
    pub sandbox_id: String,
    /// Exit status when the command exited normally; 127 when the executable
    /// was not found, 126 when it could not be executed.
    pub exit_code: Option<i32>,
    /// Signal number when the command was killed by a signal.
    pub signal: Option<i32>,
    /// Standard output as text (invalid UTF-8 replaced; see `stdout_base64`).
    pub stdout: String,
    pub stderr: String,
    /// Exact bytes of stdout, only when they are not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_base64: Option<String>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Total bytes the command wrote to each stream, kept or not.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub duration_ms: f64,
    pub cpu_ms: f64,
    pub peak_memory_bytes: u64,
    /// Set when the command could not be started (e.g. executable not found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a governed sandbox reached during the command (one-shot runs)
    /// or so far (persistent sandboxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressSummary>,
}

/// One line of a streamed run or exec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StreamEvent {
    /// A chunk of standard output (lossy UTF-8 text).
    Stdout { data: String },
    /// A chunk of standard error (lossy UTF-8 text).
    Stderr { data: String },
    /// The final result; always the last event of a successful stream.
    Result(ExecResult),
    /// The run failed before producing a result.
    Error { error: ErrorBody },
}

/// `POST /v1/sandboxes`: create a persistent sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Environment given to every command in the sandbox.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Lifetime; the sandbox is destroyed when it expires. Default from config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Network access: none (the default) or governed by a policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// Custody secrets the sandbox holds: each is in its environment as a
    /// placeholder the egress proxy swaps for the value on the way to the
    /// secret's hosts. Needs `network.mode = "policy"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// State of a sandbox as recorded by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Running,
    /// Deleted by request or after a one-shot run.
    Destroyed,
    /// Destroyed because its TTL expired.
    Expired,
    /// The server stopped or crashed while it ran; it was cleaned up at the next start.
    Lost,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Destroyed => "destroyed",
            Self::Expired => "expired",
            Self::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "destroyed" => Self::Destroyed,
            "expired" => Self::Expired,
            "lost" => Self::Lost,
            _ => return None,
        })
    }
}

/// Whether a sandbox served one run or lives on between commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    Oneshot,
    Persistent,
}

impl SandboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oneshot => "oneshot",
            Self::Persistent => "persistent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oneshot" => Some(Self::Oneshot),
            "persistent" => Some(Self::Persistent),
            _ => None,
        }
    }
}

/// A sandbox as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxInfo {
    pub id: String,
    /// The tenant the sandbox belongs to.
    #[serde(default)]
    pub tenant_id: String,
    pub kind: SandboxKind,
    pub state: SandboxState,
    pub image: String,
    pub limits: EffectiveLimits,
    /// Unix time in milliseconds.
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
    /// Why the sandbox ended, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    pub exec_count: u64,
    /// What a governed sandbox has reached (while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<EgressSummary>,
    /// The custody secrets it holds (names; while it runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// `GET /v1/sandboxes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxList {
    pub sandboxes: Vec<SandboxInfo>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    pub size: u64,
    pub mode: u32,
    /// Modification time, unix milliseconds.
    pub modified_ms: i64,
}

/// `GET /v1/sandboxes/{id}/files?path=DIR` on a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub path: String,
    pub entries: Vec<FileEntry>,
}

/// `PUT /v1/sandboxes/{id}/files` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileWritten {
    pub path: String,
    pub size: u64,
}

/// Figures of the warm pool for one image/limits profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolProfileStatus {
    pub image: String,
    pub limits: EffectiveLimits,
    /// `none` or `policy`.
    #[serde(default)]
    pub network: String,
    pub target: usize,
    pub ready: usize,
    pub creating: usize,
}

/// Figures of the warm pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolStatus {
    pub ready: usize,
    pub creating: usize,
    pub in_use: usize,
    /// Requests waiting for a sandbox to be created for them (the pool was
    /// short), served by plan priority.
    #[serde(default)]
    pub waiting: usize,
    pub hits: u64,
    pub misses: u64,
    pub created: u64,
    pub destroyed: u64,
    pub create_failures: u64,
    /// Mean time to create one sandbox, recent window.
    pub create_ms_mean: f64,
    pub create_ms_max: f64,
    pub profiles: Vec<PoolProfileStatus>,
}

/// A sandbox backend and what it can enforce on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackendStatus {
    pub name: String,
    pub available: bool,
    /// Facts about enforcement (cgroup version, landlock ABI, …).
    pub features: BTreeMap<String, String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub version: String,
    pub uptime_seconds: u64,
    pub backends: Vec<BackendStatus>,
    pub pool: PoolStatus,
    pub sandboxes_running: usize,
    /// Persistent sandboxes that were running when the server last stopped
    /// uncleanly and could not be kept.
    pub sandboxes_lost: Vec<String>,
    pub executions_total: u64,
}

/// Body of every error answer: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `sandbox_not_found`.
    pub code: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// `quota_exceeded`: which quota (`executions`, `cpu_seconds`,
    /// `gb_seconds`, `concurrent_sandboxes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// `quota_exceeded`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// `quota_exceeded`: what is used of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<f64>,
    /// `quota_exceeded`: when the quota resets (RFC 3339), for periodic quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    /// The same instant, unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at_ms: Option<i64>,
    /// `feature_not_in_plan`: the feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    /// `rate_limited`: seconds to wait (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_request_rejects_unknown_fields() {
        let err = serde_json::from_str::<RunRequest>(r#"{"command":["true"],"comand":1}"#)
            .expect_err("unknown field must be refused");
        assert!(err.to_string().contains("comand"), "{err}");
    }

    #[test]
    fn stream_event_is_tagged() {
        let line = serde_json::to_string(&StreamEvent::Stdout { data: "hi".into() }).unwrap();
        assert_eq!(line, r#"{"type":"stdout","data":"hi"}"#);
        let res = StreamEvent::Result(ExecResult { exit_code: Some(0), ..Default::default() });
        let v: serde_json::Value = serde_json::to_value(&res).unwrap();
        assert_eq!(v["type"], "result");
        assert_eq!(v["exit_code"], 0);
    }

    #[test]
    fn limits_are_optional() {
        let l: Limits = serde_json::from_str(r#"{"memory_mb":64}"#).unwrap();
        assert_eq!(l.memory_mb, Some(64));
        assert_eq!(l.pids, None);
    }
}
