//! Anomalies the detectors found.

use rusqlite::params;

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// One stored anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyRecord {
    /// Assigned by the store (0 on insert).
    pub id: i64,
    pub at_ms: i64,
    pub service_id: String,
    pub kind: String,
    pub summary: String,
    /// JSON.
    pub evidence: String,
}

/// Which anomalies to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnomalyFilter {
    pub service_id: Option<String>,
    pub kind: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: usize,
}

fn row(r: &rusqlite::Row<'_>) -> Result<AnomalyRecord> {
    Ok(AnomalyRecord {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        service_id: r.get(2)?,
        kind: r.get(3)?,
        summary: r.get(4)?,
        evidence: r.get(5)?,
    })
}

impl Store {
    /// Stores an anomaly; returns its id.
    pub async fn insert_anomaly(&self, a: AnomalyRecord) -> Result<i64> {
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO anomalies (at_ms, service_id, kind, summary, evidence) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![a.at_ms, a.service_id, a.kind, a.summary, a.evidence])?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    /// Anomalies matching `f`, newest first.
    pub async fn list_anomalies(&self, f: AnomalyFilter) -> Result<Vec<AnomalyRecord>> {
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(
                c,
                "SELECT id, at_ms, service_id, kind, summary, evidence FROM anomalies
                 WHERE (?1 IS NULL OR service_id = ?1) AND (?2 IS NULL OR kind = ?2)
                   AND at_ms >= coalesce(?3, 0) AND at_ms <= coalesce(?4, 9223372036854775807)
                 ORDER BY at_ms DESC, id DESC LIMIT ?5",
                params![f.service_id, f.kind, f.from_ms, f.to_ms, limit],
                row,
            )
        })
        .await
    }

    /// Forgets anomalies older than `before_ms` (retention).
    pub async fn prune_anomalies(&self, before_ms: i64) -> Result<usize> {
        self.write(move |c| Ok(c.execute("DELETE FROM anomalies WHERE at_ms < ?1", params![before_ms])?)).await
    }
}
