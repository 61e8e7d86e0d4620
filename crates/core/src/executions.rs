//! The run history: recorded commands across sandboxes.

use superserver_wire::{ExecutionInfo, ExecutionList, Role};

use crate::error::{CoreError, Result};
use crate::service::Service;
use crate::tenancy::Caller;

impl Service {
    /// `GET /v1/executions`: the caller's tenant's commands, newest first;
    /// every tenant's with `all` (admins).
    pub async fn executions(
        &self,
        caller: &Caller,
        all: bool,
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<ExecutionList> {
        caller.require(Role::Viewer, "reading the run history")?;
        if all && !caller.is_admin() {
            return Err(CoreError::Forbidden("only admins may list every tenant's runs (all=true)".into()));
        }
        let tenant = (!all).then(|| caller.tenant_id().to_string());
        let rows = self.inner.store.recent_executions(tenant, before_ms, limit.clamp(1, 1000)).await?;
        Ok(ExecutionList {
            executions: rows
                .into_iter()
                .map(|r| ExecutionInfo {
                    command: serde_json::from_str(&r.command_json).unwrap_or_default(),
                    id: r.id,
                    sandbox_id: r.sandbox_id,
                    tenant_id: r.tenant_id,
                    started_at_ms: r.started_at_ms,
                    duration_ms: r.duration_ms,
                    exit_code: r.exit_code,
                    signal: r.signal,
                    timed_out: r.timed_out,
                    oom_killed: r.oom_killed,
                    cpu_ms: r.cpu_ms,
                    peak_memory_bytes: r.peak_memory_bytes,
                    stdout_bytes: r.stdout_bytes,
                    stderr_bytes: r.stderr_bytes,
                    error: r.error,
                })
                .collect(),
        })
    }
}
