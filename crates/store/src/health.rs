//! Changes of the services' health.

use rusqlite::params;

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// One recorded health change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEventRecord {
    /// Assigned by the store (0 on insert).
    pub id: i64,
    pub at_ms: i64,
    pub service_id: String,
    /// `healthy`, `starting`, `unhealthy` or `down`.
    pub status: String,
    pub reason: String,
}

const COLUMNS: &str = "id, at_ms, service_id, status, reason";

fn row(r: &rusqlite::Row<'_>) -> Result<HealthEventRecord> {
    Ok(HealthEventRecord {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        service_id: r.get(2)?,
        status: r.get(3)?,
        reason: r.get(4)?,
    })
}

impl Store {
    /// Records health changes, in one commit.
    pub async fn insert_health_events(&self, events: Vec<HealthEventRecord>) -> Result<()> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO health_events (at_ms, service_id, status, reason) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in &events {
                stmt.execute(params![e.at_ms, e.service_id, e.status, e.reason])?;
            }
            Ok(())
        })
        .await
    }

    /// One service's changes at or after `from_ms`, newest first, at most
    /// `limit`; plus the last change before `from_ms` (the status the
    /// window starts in), if any, last in the list.
    pub async fn health_history(
        &self,
        service_id: String,
        from_ms: i64,
        limit: usize,
    ) -> Result<Vec<HealthEventRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut out = query_all(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM health_events WHERE service_id = ?1 AND at_ms >= ?2
                     ORDER BY at_ms DESC, id DESC LIMIT ?3"
                ),
                params![service_id, from_ms, limit],
                row,
            )?;
            out.extend(query_all(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM health_events WHERE service_id = ?1 AND at_ms < ?2
                     ORDER BY at_ms DESC, id DESC LIMIT 1"
                ),
                params![service_id, from_ms],
                row,
            )?);
            Ok(out)
        })
        .await
    }

    /// The latest change of every service (where a restarted server resumes).
    pub async fn latest_health(&self) -> Result<Vec<HealthEventRecord>> {
        self.read(|c| {
            query_all(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM health_events WHERE id IN
                     (SELECT max(id) FROM health_events GROUP BY service_id)"
                ),
                [],
                row,
            )
        })
        .await
    }

    /// Forgets changes older than `before_ms` (retention).
    pub async fn prune_health_events(&self, before_ms: i64) -> Result<usize> {
        self.write(move |c| Ok(c.execute("DELETE FROM health_events WHERE at_ms < ?1", params![before_ms])?)).await
    }
}
