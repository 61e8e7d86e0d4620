//! The outbox: notifications (webhooks, e-mails) written durably where
//! they arise and delivered by a background worker, so none is lost across
//! a crash and none is queued twice (`event_id` + `destination` is unique).

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::records::{count_from_sql, query_all};
use crate::store::Store;

/// A notification to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    /// Unique per event: the receiver's idempotency key.
    pub event_id: String,
    /// `webhook:<name>` or `email:<address>`.
    pub destination: String,
    pub event_type: String,
    pub tenant_id: Option<String>,
    /// JSON.
    pub payload: String,
    pub created_at_ms: i64,
}

/// A queued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub destination: String,
    pub event_type: String,
    pub tenant_id: Option<String>,
    pub payload: String,
    pub created_at_ms: i64,
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    pub failed_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, event_id, destination, event_type, tenant_id, payload, created_at_ms, attempts, \
     next_attempt_at_ms, delivered_at_ms, failed_at_ms, last_error";

impl Store {
    /// Queue notifications; ones already queued (same event and destination)
    /// are left alone. Returns how many were new.
    pub async fn enqueue(&self, rows: Vec<NewOutbox>) -> Result<usize> {
        self.write(move |c| enqueue(c, &rows)).await
    }

    /// Up to `limit` undelivered notifications due at `now_ms`, oldest first.
    pub async fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM outbox
                     WHERE delivered_at_ms IS NULL AND failed_at_ms IS NULL AND next_attempt_at_ms <= ?1
                     ORDER BY next_attempt_at_ms, id LIMIT ?2"
                ),
                params![now_ms, limit],
                row,
            )
        })
        .await
    }

    /// When the next undelivered notification is due, if any.
    pub async fn outbox_next_due(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT min(next_attempt_at_ms) FROM outbox WHERE delivered_at_ms IS NULL AND failed_at_ms IS NULL",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )?)
        })
        .await
    }

    /// Every notification of an event type (newest first), for inspection.
    pub async fn outbox_list(&self, limit: usize) -> Result<Vec<OutboxRow>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(c, &format!("SELECT {COLUMNS} FROM outbox ORDER BY id DESC LIMIT ?1"), [limit], row)
        })
        .await
    }

    /// Record one delivery attempt's outcome: delivered, to be retried at
    /// `retry_at_ms`, or given up.
    pub async fn outbox_attempted(&self, id: i64, at_ms: i64, outcome: Attempt) -> Result<()> {
        self.write(move |c| {
            match &outcome {
                Attempt::Delivered => c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, delivered_at_ms = ?2, last_error = NULL WHERE id = ?1",
                    params![id, at_ms],
                )?,
                Attempt::Retry { at_ms: next, error } => c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at_ms = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, next, error],
                )?,
                Attempt::GaveUp { error } => c.execute(
                    "UPDATE outbox SET attempts = attempts + 1, failed_at_ms = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, at_ms, error],
                )?,
            };
            Ok(())
        })
        .await
    }

    /// Reports the executions not reported yet, in one transaction: sums
    /// them per tenant, queues what `build` makes of the sums, and marks them
    /// reported. An execution is in exactly one report, whatever crashes.
    /// Returns the notifications queued.
    pub async fn report_usage<F>(&self, build: F) -> Result<usize>
    where
        F: Fn(&[UsageBatchTenant]) -> Vec<NewOutbox> + Send + 'static,
    {
        self.write(move |c| {
            let tenants = query_all(
                c,
                "SELECT tenant_id, count(*), coalesce(sum(duration_ms), 0.0), coalesce(sum(cpu_ms), 0.0),
                        coalesce(sum(gb_seconds), 0.0), coalesce(sum(stdout_bytes + stderr_bytes), 0),
                        min(started_at_ms), max(started_at_ms)
                 FROM executions WHERE usage_reported = 0 GROUP BY tenant_id ORDER BY tenant_id",
                [],
                |r| {
                    Ok(UsageBatchTenant {
                        tenant_id: r.get(0)?,
                        executions: count_from_sql(r, 1, "executions")?,
                        wall_ms: r.get(2)?,
                        cpu_ms: r.get(3)?,
                        gb_seconds: r.get(4)?,
                        output_bytes: count_from_sql(r, 5, "output bytes")?,
                        first_started_at_ms: r.get(6)?,
                        last_started_at_ms: r.get(7)?,
                    })
                },
            )?;
            if tenants.is_empty() {
                return Ok(0);
            }
            let rows = build(&tenants);
            let queued = enqueue(c, &rows)?;
            c.execute("UPDATE executions SET usage_reported = 1 WHERE usage_reported = 0", [])?;
            Ok(queued)
        })
        .await
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered,
    Retry { at_ms: i64, error: String },
    GaveUp { error: String },
}

/// One tenant's executions not reported yet, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageBatchTenant {
    pub tenant_id: String,
    pub executions: u64,
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub gb_seconds: f64,
    pub output_bytes: u64,
    pub first_started_at_ms: i64,
    pub last_started_at_ms: i64,
}

pub(crate) fn enqueue(c: &Connection, rows: &[NewOutbox]) -> Result<usize> {
    let mut stmt = c.prepare_cached(
        "INSERT OR IGNORE INTO outbox
             (event_id, destination, event_type, tenant_id, payload, created_at_ms, next_attempt_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    let mut new = 0;
    for r in rows {
        new +=
            stmt.execute(params![r.event_id, r.destination, r.event_type, r.tenant_id, r.payload, r.created_at_ms])?;
    }
    Ok(new)
}

fn row(r: &rusqlite::Row<'_>) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        destination: r.get(2)?,
        event_type: r.get(3)?,
        tenant_id: r.get(4)?,
        payload: r.get(5)?,
        created_at_ms: r.get(6)?,
        attempts: r.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
        next_attempt_at_ms: r.get(8)?,
        delivered_at_ms: r.get(9)?,
        failed_at_ms: r.get(10)?,
        last_error: r.get(11)?,
    })
}
