//! Execution rows.

use rusqlite::{params, Connection};

use crate::error::{Result, StoreError};
use crate::records::{
    count_to_sql, execution_from_row, limit_to_sql, query_all, ExecutionRecord, SandboxRecord, EXECUTION_COLUMNS,
};
use crate::sandboxes;
use crate::store::Store;

impl Store {
    /// Record an execution and count it on its sandbox, in one transaction.
    /// Fails with [`StoreError::SandboxNotFound`] if the sandbox is unknown.
    pub async fn insert_execution(&self, rec: ExecutionRecord) -> Result<()> {
        self.write(move |c| insert(c, &rec)).await
    }

    /// The hot path of a one-shot run: its sandbox and its execution, both or
    /// neither, in one commit.
    pub async fn record_oneshot(&self, sandbox: SandboxRecord, exec: ExecutionRecord) -> Result<()> {
        self.write(move |c| {
            sandboxes::insert(c, &sandbox)?;
            insert(c, &exec)
        })
        .await
    }

    /// Up to `limit` executions of a sandbox, newest first.
    pub async fn list_executions(&self, sandbox_id: &str, limit: usize) -> Result<Vec<ExecutionRecord>> {
        let sandbox_id = sandbox_id.to_owned();
        self.read(move |c| query_all(c, &list_sql(), params![sandbox_id, limit_to_sql(limit)], execution_from_row))
            .await
    }

    /// Up to `limit` executions started before `before_ms`, newest first, of
    /// one tenant or of all.
    pub async fn recent_executions(
        &self,
        tenant_id: Option<String>,
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>> {
        let before = before_ms.unwrap_or(i64::MAX);
        self.read(move |c| match tenant_id {
            Some(t) => query_all(
                c,
                &format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant_id = ?1 AND started_at_ms < ?2
                     ORDER BY started_at_ms DESC, rowid DESC LIMIT ?3"
                ),
                params![t, before, limit_to_sql(limit)],
                execution_from_row,
            ),
            None => query_all(
                c,
                &format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions WHERE started_at_ms < ?1
                     ORDER BY started_at_ms DESC, rowid DESC LIMIT ?2"
                ),
                params![before, limit_to_sql(limit)],
                execution_from_row,
            ),
        })
        .await
    }

    /// Executions recorded for one tenant.
    pub async fn count_tenant_executions(&self, tenant_id: &str) -> Result<u64> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let n: i64 =
                c.query_row("SELECT count(*) FROM executions WHERE tenant_id = ?1", [tenant_id], |r| r.get(0))?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("execution count {n}")))
        })
        .await
    }

    /// Executions recorded, over all sandboxes.
    pub async fn count_executions(&self) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c.query_row("SELECT count(*) FROM executions", [], |r| r.get(0))?;
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("execution count {n}")))
        })
        .await
    }
}

fn list_sql() -> String {
    format!(
        "SELECT {EXECUTION_COLUMNS} FROM executions WHERE sandbox_id = ?1
         ORDER BY started_at_ms DESC, rowid DESC LIMIT ?2"
    )
}

pub(crate) fn insert(c: &Connection, rec: &ExecutionRecord) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO executions ({EXECUTION_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?
    .execute(params![
        rec.id,
        rec.sandbox_id,
        rec.command_json,
        rec.started_at_ms,
        rec.duration_ms,
        rec.exit_code,
        rec.signal,
        rec.timed_out,
        rec.oom_killed,
        rec.cpu_ms,
        count_to_sql(rec.peak_memory_bytes),
        count_to_sql(rec.stdout_bytes),
        count_to_sql(rec.stderr_bytes),
        rec.stdout_truncated,
        rec.stderr_truncated,
        rec.error,
        rec.tenant_id,
        rec.key_id,
        rec.gb_seconds,
    ])
    .map_err(|e| match StoreError::from(e) {
        e if e.is_foreign_key_violation() => StoreError::SandboxNotFound(rec.sandbox_id.clone()),
        e => e,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_uses_index_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, 0).unwrap();
        let plan = crate::records::tests::query_plan(&conn, &list_sql());
        assert!(plan.iter().any(|p| p.contains("executions_by_sandbox")), "{plan:?}");
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }
}
