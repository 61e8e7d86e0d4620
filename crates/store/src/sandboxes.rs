//! Sandbox rows.

use rusqlite::{params, Connection, OptionalExtension};
use superserver_wire::{SandboxKind, SandboxState};

use crate::error::{Result, StoreError};
use crate::records::{count_to_sql, limit_to_sql, query_all, sandbox_from_row, SandboxRecord, SANDBOX_COLUMNS};
use crate::store::Store;

impl Store {
    /// Record a new sandbox. Its `exec_count` is ignored (it starts at 0).
    pub async fn insert_sandbox(&self, rec: SandboxRecord) -> Result<()> {
        self.write(move |c| insert(c, &rec)).await
    }

    /// Set or clear the host pid of the sandbox's init.
    /// Fails with [`StoreError::SandboxNotFound`] for an unknown id.
    pub async fn set_sandbox_pid(&self, id: &str, pid: Option<i64>) -> Result<()> {
        let id = id.to_owned();
        self.write(move |c| {
            let changed = c.execute("UPDATE sandboxes SET host_pid = ?2 WHERE id = ?1", params![id, pid])?;
            if changed == 0 {
                return Err(StoreError::SandboxNotFound(id.clone()));
            }
            Ok(())
        })
        .await
    }

    /// End a `running` sandbox in `state` (destroyed, expired or lost) and
    /// clear its pid. Returns whether it was running (an unknown or already
    /// ended sandbox is left alone: `false`).
    pub async fn end_sandbox(&self, id: &str, state: SandboxState, reason: &str, ended_at_ms: i64) -> Result<bool> {
        if state == SandboxState::Running {
            return Err(StoreError::NotAnEndState(state));
        }
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE sandboxes
                 SET state = ?2, end_reason = ?3, ended_at_ms = ?4, host_pid = NULL
                 WHERE id = ?1 AND state = 'running'",
                params![id, state.as_str(), reason, ended_at_ms],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    /// The sandbox with this id, if any.
    pub async fn get_sandbox(&self, id: &str) -> Result<Option<SandboxRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {SANDBOX_COLUMNS} FROM sandboxes WHERE id = ?1");
            c.prepare_cached(&sql)?.query_row([id], |row| Ok(sandbox_from_row(row))).optional()?.transpose()
        })
        .await
    }

    /// Up to `limit` sandboxes, newest first: running ones only, or all.
    pub async fn list_sandboxes(&self, include_ended: bool, limit: usize) -> Result<Vec<SandboxRecord>> {
        let sql = if include_ended { LIST_ALL } else { LIST_RUNNING };
        self.read(move |c| query_all(c, &select(sql), [limit_to_sql(limit)], sandbox_from_row)).await
    }

    /// Up to `limit` sandboxes of one tenant, newest first: running ones only, or all.
    pub async fn list_tenant_sandboxes(
        &self,
        tenant_id: &str,
        include_ended: bool,
        limit: usize,
    ) -> Result<Vec<SandboxRecord>> {
        let sql = if include_ended { TENANT_ALL } else { TENANT_RUNNING };
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| query_all(c, &select(sql), params![tenant_id, limit_to_sql(limit)], sandbox_from_row)).await
    }

    /// Every running sandbox, oldest first.
    pub async fn running_sandboxes(&self) -> Result<Vec<SandboxRecord>> {
        self.read(|c| query_all(c, &select(RUNNING), [], sandbox_from_row)).await
    }

    /// At start-up after a crash: end every `running` sandbox — persistent
    /// ones as `lost`, one-shot ones as `destroyed` — with `reason` at
    /// `at_ms`, in one transaction. Returns the persistent ones, as stored now
    /// (their pid cleared; read [`Store::running_sandboxes`] first to find
    /// leftover processes).
    pub async fn mark_running_lost(&self, reason: &str, at_ms: i64) -> Result<Vec<SandboxRecord>> {
        let reason = reason.to_owned();
        self.write(move |c| {
            let sql = format!("{MARK_LOST} RETURNING {SANDBOX_COLUMNS}");
            let mut ended = query_all(c, &sql, params![reason, at_ms], sandbox_from_row)?;
            ended.retain(|s| s.kind == SandboxKind::Persistent);
            ended.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
            Ok(ended)
        })
        .await
    }

    /// Ids of persistent sandboxes lost at or after `since_ms`, most recent
    /// first.
    pub async fn lost_sandboxes(&self, since_ms: i64) -> Result<Vec<String>> {
        self.read(move |c| query_all(c, LOST_SINCE, [since_ms], |row| Ok(row.get(0)?))).await
    }
}

const LIST_ALL: &str = "ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1";
const LIST_RUNNING: &str = "WHERE state = 'running' ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1";
const TENANT_ALL: &str = "WHERE tenant_id = ?1 ORDER BY created_at_ms DESC, rowid DESC LIMIT ?2";
const TENANT_RUNNING: &str =
    "WHERE tenant_id = ?1 AND state = 'running' ORDER BY created_at_ms DESC, rowid DESC LIMIT ?2";
const RUNNING: &str = "WHERE state = 'running' ORDER BY created_at_ms, rowid";
const LOST_SINCE: &str = "SELECT id FROM sandboxes
     WHERE state = 'lost' AND kind = 'persistent' AND ended_at_ms >= ?1
     ORDER BY ended_at_ms DESC";
const MARK_LOST: &str = "UPDATE sandboxes
     SET state = CASE kind WHEN 'persistent' THEN 'lost' ELSE 'destroyed' END,
         end_reason = ?1, ended_at_ms = ?2, host_pid = NULL
     WHERE state = 'running'";

fn select(tail: &str) -> String {
    format!("SELECT {SANDBOX_COLUMNS} FROM sandboxes {tail}")
}

pub(crate) fn insert(c: &Connection, rec: &SandboxRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO sandboxes (id, kind, state, image, memory_mb, pids, cpu_percent, disk_mb,
             env_json, created_at_ms, expires_at_ms, ended_at_ms, end_reason, host_pid, tenant_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        rec.id,
        rec.kind.as_str(),
        rec.state.as_str(),
        rec.image,
        count_to_sql(rec.limits.memory_mb),
        rec.limits.pids,
        rec.limits.cpu_percent,
        count_to_sql(rec.limits.disk_mb),
        rec.env_json,
        rec.created_at_ms,
        rec.expires_at_ms,
        rec.ended_at_ms,
        rec.end_reason,
        rec.host_pid,
        rec.tenant_id,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query names an index (or the primary key): no full-table scan.
    #[test]
    fn queries_use_indexes() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, 0).unwrap();
        conn.execute_batch("ANALYZE").unwrap();
        let queries = [
            select("WHERE id = ?1"),
            select(LIST_ALL),
            select(LIST_RUNNING),
            select(RUNNING),
            select(TENANT_ALL),
            select(TENANT_RUNNING),
            LOST_SINCE.to_owned(),
            MARK_LOST.to_owned(),
        ];
        for sql in queries {
            let plan = crate::records::tests::query_plan(&conn, &sql);
            assert!(plan.iter().any(|p| p.contains("INDEX")), "{sql}\nuses no index: {plan:?}");
            assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{sql}\nsorts: {plan:?}");
        }
    }
}
