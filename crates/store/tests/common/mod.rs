//! Records for the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use superserver_store::{ExecutionRecord, SandboxRecord};
use superserver_wire::{EffectiveLimits, SandboxKind, SandboxState};

pub fn sandbox(id: &str, kind: SandboxKind, created_at_ms: i64) -> SandboxRecord {
    SandboxRecord {
        id: id.to_owned(),
        tenant_id: "tn_admin".to_owned(),
        kind,
        state: SandboxState::Running,
        image: "host".to_owned(),
        limits: EffectiveLimits { memory_mb: 512, pids: 256, cpu_percent: 100, disk_mb: 1024 },
        env_json: r#"{"LANG":"C.UTF-8"}"#.to_owned(),
        created_at_ms,
        expires_at_ms: None,
        ended_at_ms: None,
        end_reason: None,
        host_pid: None,
        exec_count: 0,
    }
}

pub fn execution(id: &str, sandbox_id: &str, started_at_ms: i64) -> ExecutionRecord {
    ExecutionRecord {
        id: id.to_owned(),
        sandbox_id: sandbox_id.to_owned(),
        tenant_id: "tn_admin".to_owned(),
        key_id: Some("key_test".to_owned()),
        gb_seconds: 0.5 * 1.5 / 1000.0,
        command_json: r#"["echo","hi"]"#.to_owned(),
        started_at_ms,
        duration_ms: 1.5,
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        oom_killed: false,
        cpu_ms: 0.75,
        peak_memory_bytes: 4 << 20,
        stdout_bytes: 3,
        stderr_bytes: 0,
        stdout_truncated: false,
        stderr_truncated: false,
        error: None,
    }
}
