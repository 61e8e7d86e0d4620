//! The rows the store keeps, and their mapping to and from SQLite.

use rusqlite::Row;
use superserver_wire::{EffectiveLimits, SandboxInfo, SandboxKind, SandboxState};

use crate::error::{Result, StoreError};

/// A sandbox, one-shot or persistent, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    /// `sb_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant_id: String,
    pub kind: SandboxKind,
    pub state: SandboxState,
    pub image: String,
    pub limits: EffectiveLimits,
    /// JSON object of the sandbox's environment.
    pub env_json: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    /// Pid of the sandbox's init on the host, while it runs.
    pub host_pid: Option<i64>,
    /// Number of executions recorded for the sandbox. Derived by the store:
    /// ignored on insert, counted in the transaction that adds an execution.
    pub exec_count: u64,
}

impl SandboxRecord {
    /// The sandbox as the API shows it.
    pub fn info(&self) -> SandboxInfo {
        SandboxInfo {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            kind: self.kind,
            state: self.state,
            image: self.image.clone(),
            limits: self.limits,
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
            ended_at_ms: self.ended_at_ms,
            end_reason: self.end_reason.clone(),
            exec_count: self.exec_count,
            egress: None,
            secrets: Vec::new(),
        }
    }
}

/// One command run in a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// `ex_…`
    pub id: String,
    /// The sandbox it ran in; must exist.
    pub sandbox_id: String,
    /// The tenant it ran for.
    pub tenant_id: String,
    /// The API key that ran it (`None` with authentication off).
    pub key_id: Option<String>,
    /// JSON array: the argv.
    pub command_json: String,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub cpu_ms: f64,
    pub peak_memory_bytes: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub error: Option<String>,
    /// The sandbox's memory limit in GB × the wall time in seconds.
    pub gb_seconds: f64,
}

/// Columns of `sandboxes`, in the order [`sandbox_from_row`] reads them.
pub(crate) const SANDBOX_COLUMNS: &str = "id, kind, state, image, memory_mb, pids, cpu_percent, \
     disk_mb, env_json, created_at_ms, expires_at_ms, ended_at_ms, end_reason, host_pid, exec_count, tenant_id";

/// Columns of `executions`, in the order [`execution_from_row`] reads them.
pub(crate) const EXECUTION_COLUMNS: &str = "id, sandbox_id, command_json, started_at_ms, \
     duration_ms, exit_code, signal, timed_out, oom_killed, cpu_ms, peak_memory_bytes, \
     stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, error, tenant_id, key_id, gb_seconds";

/// A byte count as SQLite stores it: INTEGER is signed 64-bit, so counts past
/// `i64::MAX` (never reached in practice) are kept as `i64::MAX`.
pub(crate) fn count_to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn count_from_sql<T: TryFrom<i64>>(row: &Row<'_>, idx: usize, what: &str) -> Result<T> {
    let raw: i64 = row.get(idx)?;
    T::try_from(raw).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {raw}")))
}

pub(crate) fn sandbox_from_row(row: &Row<'_>) -> Result<SandboxRecord> {
    let id: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let state: String = row.get(2)?;
    let kind = SandboxKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("sandbox {id} has unknown kind {kind:?}")))?;
    let state = SandboxState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("sandbox {id} has unknown state {state:?}")))?;
    Ok(SandboxRecord {
        kind,
        state,
        image: row.get(3)?,
        limits: EffectiveLimits {
            memory_mb: count_from_sql(row, 4, "memory_mb")?,
            pids: count_from_sql(row, 5, "pids")?,
            cpu_percent: count_from_sql(row, 6, "cpu_percent")?,
            disk_mb: count_from_sql(row, 7, "disk_mb")?,
        },
        env_json: row.get(8)?,
        created_at_ms: row.get(9)?,
        expires_at_ms: row.get(10)?,
        ended_at_ms: row.get(11)?,
        end_reason: row.get(12)?,
        host_pid: row.get(13)?,
        exec_count: count_from_sql(row, 14, "exec_count")?,
        tenant_id: row.get(15)?,
        id,
    })
}

pub(crate) fn execution_from_row(row: &Row<'_>) -> Result<ExecutionRecord> {
    Ok(ExecutionRecord {
        id: row.get(0)?,
        sandbox_id: row.get(1)?,
        command_json: row.get(2)?,
        started_at_ms: row.get(3)?,
        duration_ms: row.get(4)?,
        exit_code: row.get(5)?,
        signal: row.get(6)?,
        timed_out: row.get(7)?,
        oom_killed: row.get(8)?,
        cpu_ms: row.get(9)?,
        peak_memory_bytes: count_from_sql(row, 10, "peak_memory_bytes")?,
        stdout_bytes: count_from_sql(row, 11, "stdout_bytes")?,
        stderr_bytes: count_from_sql(row, 12, "stderr_bytes")?,
        stdout_truncated: row.get(13)?,
        stderr_truncated: row.get(14)?,
        error: row.get(15)?,
        tenant_id: row.get(16)?,
        key_id: row.get(17)?,
        gb_seconds: row.get(18)?,
    })
}

/// Run `sql` with `params` and map every row with `map`.
pub(crate) fn query_all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// A `LIMIT` as SQLite takes it.
pub(crate) fn limit_to_sql(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The `detail` lines of `EXPLAIN QUERY PLAN sql`, every parameter bound to 0.
    pub(crate) fn query_plan(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = stmt.parameter_count();
        stmt.query_map(rusqlite::params_from_iter(std::iter::repeat_n(0, n)), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn huge_counts_saturate() {
        assert_eq!(count_to_sql(5), 5);
        assert_eq!(count_to_sql(u64::MAX), i64::MAX);
        assert_eq!(limit_to_sql(usize::MAX), i64::MAX);
    }

    #[test]
    fn unknown_state_is_corrupt() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err = conn
            .query_row(
                "SELECT 'sb_1', 'oneshot', 'zombie', 'host', 1, 1, 1, 1, '{}', 0, \
                 NULL, NULL, NULL, NULL, 0, 'tn_admin'",
                [],
                |row| Ok(sandbox_from_row(row)),
            )
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("zombie")), "{err}");
    }

    #[test]
    fn negative_count_is_corrupt() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let err = conn
            .query_row("SELECT -1", [], |row| Ok(count_from_sql::<u64>(row, 0, "stdout_bytes")))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("stdout_bytes")), "{err}");
    }
}
