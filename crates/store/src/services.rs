//! Changes of the host's services, as discovery saw them.

use rusqlite::params;

use crate::error::Result;
use crate::records::query_all;
use crate::store::Store;

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEventRecord {
    /// Assigned by the store (0 on insert).
    pub id: i64,
    pub at_ms: i64,
    pub service_id: String,
    /// `appeared`, `gone`, `restarted`, `state_changed`, `health_changed`, `image_changed`.
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

const COLUMNS: &str = "id, at_ms, service_id, kind, before, after";

impl Store {
    /// Records changes, in one commit.
    pub async fn insert_service_events(&self, events: Vec<ServiceEventRecord>) -> Result<()> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "INSERT INTO service_events (at_ms, service_id, kind, before, after) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &events {
                stmt.execute(params![e.at_ms, e.service_id, e.kind, e.before, e.after])?;
            }
            Ok(())
        })
        .await
    }

    /// Up to `limit` changes with ids below `before`, newest first, of one
    /// service or all.
    pub async fn list_service_events(
        &self,
        service_id: Option<String>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ServiceEventRecord>> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok(ServiceEventRecord {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    service_id: r.get(2)?,
                    kind: r.get(3)?,
                    before: r.get(4)?,
                    after: r.get(5)?,
                })
            };
            match service_id {
                Some(s) => query_all(
                    c,
                    &format!(
                        "SELECT {COLUMNS} FROM service_events WHERE service_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                    ),
                    params![s, before, limit],
                    map,
                ),
                None => query_all(
                    c,
                    &format!("SELECT {COLUMNS} FROM service_events WHERE id < ?1 ORDER BY id DESC LIMIT ?2"),
                    params![before, limit],
                    map,
                ),
            }
        })
        .await
    }
}
