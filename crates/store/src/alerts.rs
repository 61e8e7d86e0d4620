//! Alerts, their history and silences. A change of an alert and the
//! notifications it queues are committed together: whatever crashes, a
//! notification is queued exactly when its alert's change is recorded.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::outbox::{enqueue, NewOutbox};
use crate::records::query_all;
use crate::store::Store;

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub id: String,
    pub fingerprint: String,
    pub rule: String,
    /// `service_down`, `anomaly`, `metric`.
    pub rule_kind: String,
    pub service_id: String,
    /// `info`, `warning`, `critical`.
    pub severity: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub summary: String,
    pub started_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_at_ms: Option<i64>,
    pub notifications: u32,
    pub last_notified_at_ms: Option<i64>,
    /// JSON.
    pub context: String,
}

/// One entry of an alert's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEventRecord {
    pub alert_id: String,
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

/// A silence as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    pub id: String,
    pub rule: Option<String>,
    pub service_id: Option<String>,
    pub until_ms: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// What is known about a fingerprint when a signal arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertView {
    /// Its firing alert, if any.
    pub open: Option<AlertRecord>,
    /// When any alert of the fingerprint last notified (for the cooldown).
    pub last_notified_at_ms: Option<i64>,
    /// Silences active at the time of the change.
    pub silences: Vec<SilenceRecord>,
}

/// The change a decision makes, committed in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertWrite {
    /// Inserted, or updated by id (its identity fields stay; a second firing
    /// alert of a fingerprint is refused by the schema).
    pub upsert: Option<AlertRecord>,
    pub events: Vec<AlertEventRecord>,
    pub outbox: Vec<NewOutbox>,
}

const COLUMNS: &str = "id, fingerprint, rule, rule_kind, service_id, severity, state, summary, started_at_ms, \
     resolved_at_ms, acked_by, acked_at_ms, notifications, last_notified_at_ms, context";
const SILENCE_COLUMNS: &str = "id, rule, service_id, until_ms, reason, created_by, created_at_ms";

impl Store {
    /// Reads what is known about `fingerprint` at `now_ms`, lets `decide`
    /// choose the change, and commits it with its notifications, all in one
    /// transaction (so two signals of one fingerprint cannot both open an
    /// alert). `decide` may run more than once if the commit is retried.
    /// Returns the decision's result and how many notifications were new.
    pub async fn alert_transition<T, F>(&self, fingerprint: String, now_ms: i64, decide: F) -> Result<(T, usize)>
    where
        T: Send + 'static,
        F: Fn(AlertView) -> (AlertWrite, T) + Send + 'static,
    {
        self.write(move |c| {
            let view = AlertView {
                open: c
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM alerts WHERE fingerprint = ?1 AND state = 'firing'"),
                        [&fingerprint],
                        |r| Ok(alert_row(r)),
                    )
                    .optional()?
                    .transpose()?,
                last_notified_at_ms: c.query_row(
                    "SELECT max(last_notified_at_ms) FROM alerts WHERE fingerprint = ?1",
                    [&fingerprint],
                    |r| r.get(0),
                )?,
                silences: active_silences(c, now_ms)?,
            };
            let (w, out) = decide(view);
            let queued = apply(c, &w)?;
            Ok((out, queued))
        })
        .await
    }

    /// Changes one alert by id: `decide` sees it (or `None`) and the active silences.
    pub async fn alert_update<T, F>(&self, id: String, now_ms: i64, decide: F) -> Result<(T, usize)>
    where
        T: Send + 'static,
        F: Fn(Option<AlertRecord>, Vec<SilenceRecord>) -> (AlertWrite, T) + Send + 'static,
    {
        self.write(move |c| {
            let alert = get_alert(c, &id)?;
            let (w, out) = decide(alert, active_silences(c, now_ms)?);
            let queued = apply(c, &w)?;
            Ok((out, queued))
        })
        .await
    }

    /// Whether `fingerprint` has a firing alert.
    pub async fn alert_is_firing(&self, fingerprint: String) -> Result<bool> {
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM alerts WHERE fingerprint = ?1 AND state = 'firing'",
                [fingerprint],
                |r| r.get::<_, i64>(0),
            )? > 0)
        })
        .await
    }

    /// One alert.
    pub async fn get_alert(&self, id: String) -> Result<Option<AlertRecord>> {
        self.read(move |c| get_alert(c, &id)).await
    }

    /// Alerts newest first; `state` `firing`/`resolved` or all, of one service or all.
    pub async fn list_alerts(
        &self,
        state: Option<String>,
        service_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<AlertRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM alerts WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR service_id = ?2)
                     ORDER BY started_at_ms DESC, id DESC LIMIT ?3"
                ),
                params![state, service_id, limit],
                alert_row,
            )
        })
        .await
    }

    /// Firing alerts of a rule kind (the evaluators' starting state).
    pub async fn firing_alerts(&self, rule_kind: String) -> Result<Vec<AlertRecord>> {
        self.read(move |c| {
            query_all(
                c,
                &format!("SELECT {COLUMNS} FROM alerts WHERE state = 'firing' AND rule_kind = ?1 ORDER BY id"),
                [rule_kind],
                alert_row,
            )
        })
        .await
    }

    /// An alert's history, oldest first.
    pub async fn alert_events(&self, alert_id: String) -> Result<Vec<AlertEventRecord>> {
        self.read(move |c| {
            query_all(
                c,
                "SELECT alert_id, at_ms, kind, detail FROM alert_events WHERE alert_id = ?1 ORDER BY id",
                [alert_id],
                |r| Ok(AlertEventRecord { alert_id: r.get(0)?, at_ms: r.get(1)?, kind: r.get(2)?, detail: r.get(3)? }),
            )
        })
        .await
    }

    /// Records a silence.
    pub async fn insert_silence(&self, s: SilenceRecord) -> Result<()> {
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO silences ({SILENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![s.id, s.rule, s.service_id, s.until_ms, s.reason, s.created_by, s.created_at_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Silences still active at `now_ms`, ending soonest first.
    pub async fn list_silences(&self, now_ms: i64) -> Result<Vec<SilenceRecord>> {
        self.read(move |c| active_silences(c, now_ms)).await
    }

    /// Ends a silence now; false if there was no active one with that id.
    pub async fn end_silence(&self, id: String, now_ms: i64) -> Result<bool> {
        self.write(move |c| {
            Ok(c.execute("UPDATE silences SET until_ms = ?2 WHERE id = ?1 AND until_ms > ?2", params![id, now_ms])? > 0)
        })
        .await
    }
}

fn apply(c: &Connection, w: &AlertWrite) -> Result<usize> {
    if let Some(a) = &w.upsert {
        c.execute(
            &format!(
                "INSERT INTO alerts ({COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, summary = excluded.summary,
                     resolved_at_ms = excluded.resolved_at_ms, acked_by = excluded.acked_by,
                     acked_at_ms = excluded.acked_at_ms, notifications = excluded.notifications,
                     last_notified_at_ms = excluded.last_notified_at_ms, context = excluded.context"
            ),
            params![
                a.id,
                a.fingerprint,
                a.rule,
                a.rule_kind,
                a.service_id,
                a.severity,
                a.state,
                a.summary,
                a.started_at_ms,
                a.resolved_at_ms,
                a.acked_by,
                a.acked_at_ms,
                a.notifications,
                a.last_notified_at_ms,
                a.context
            ],
        )?;
    }
    let mut stmt =
        c.prepare_cached("INSERT INTO alert_events (alert_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)")?;
    for e in &w.events {
        stmt.execute(params![e.alert_id, e.at_ms, e.kind, e.detail])?;
    }
    enqueue(c, &w.outbox)
}

fn get_alert(c: &Connection, id: &str) -> Result<Option<AlertRecord>> {
    c.query_row(&format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"), [id], |r| Ok(alert_row(r)))
        .optional()?
        .transpose()
}

fn active_silences(c: &Connection, now_ms: i64) -> Result<Vec<SilenceRecord>> {
    query_all(
        c,
        &format!("SELECT {SILENCE_COLUMNS} FROM silences WHERE until_ms > ?1 ORDER BY until_ms, id"),
        [now_ms],
        |r| {
            Ok(SilenceRecord {
                id: r.get(0)?,
                rule: r.get(1)?,
                service_id: r.get(2)?,
                until_ms: r.get(3)?,
                reason: r.get(4)?,
                created_by: r.get(5)?,
                created_at_ms: r.get(6)?,
            })
        },
    )
}

fn alert_row(r: &rusqlite::Row<'_>) -> Result<AlertRecord> {
    Ok(AlertRecord {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        rule: r.get(2)?,
        rule_kind: r.get(3)?,
        service_id: r.get(4)?,
        severity: r.get(5)?,
        state: r.get(6)?,
        summary: r.get(7)?,
        started_at_ms: r.get(8)?,
        resolved_at_ms: r.get(9)?,
        acked_by: r.get(10)?,
        acked_at_ms: r.get(11)?,
        notifications: r.get::<_, i64>(12)?.clamp(0, i64::from(u32::MAX)) as u32,
        last_notified_at_ms: r.get(13)?,
        context: r.get(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> AlertRecord {
        AlertRecord {
            id: id.into(),
            fingerprint: "down/container:web".into(),
            rule: "down".into(),
            rule_kind: "service_down".into(),
            service_id: "container:web".into(),
            severity: "critical".into(),
            state: "firing".into(),
            summary: "exited".into(),
            started_at_ms: 1,
            resolved_at_ms: None,
            acked_by: None,
            acked_at_ms: None,
            notifications: 1,
            last_notified_at_ms: Some(1),
            context: "{}".into(),
        }
    }

    fn notification(id: &str) -> NewOutbox {
        NewOutbox {
            event_id: format!("alert.firing:{id}:1"),
            destination: "alert-webhook:ops".into(),
            event_type: "alert.firing".into(),
            tenant_id: None,
            payload: "{}".into(),
            created_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn one_open_alert_per_fingerprint_with_its_notification_in_the_same_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let fp = "down/container:web".to_string();
        // Two concurrent signals: the second sees the first's alert open.
        let open = |id: &'static str| {
            let store = store.clone();
            let fp = fp.clone();
            async move {
                store
                    .alert_transition(fp, 2, move |view| match view.open {
                        Some(a) => (AlertWrite::default(), a.id),
                        None => (
                            AlertWrite { upsert: Some(alert(id)), events: Vec::new(), outbox: vec![notification(id)] },
                            id.to_string(),
                        ),
                    })
                    .await
                    .unwrap()
            }
        };
        let (a, b) = tokio::join!(open("al_a"), open("al_b"));
        assert_eq!(a.0, b.0, "both signals name the same alert");
        assert_eq!(a.1 + b.1, 1, "one notification queued");
        assert_eq!(store.list_alerts(Some("firing".into()), None, 10).await.unwrap().len(), 1);
        assert_eq!(store.outbox_list(10).await.unwrap().len(), 1);
        // A second firing row for the fingerprint is refused by the schema.
        let dup = store
            .alert_transition(fp.clone(), 3, |_| (AlertWrite { upsert: Some(alert("al_c")), ..Default::default() }, ()))
            .await;
        assert!(dup.is_err(), "the unique index keeps one firing alert");
        assert!(store.alert_is_firing(fp).await.unwrap());
    }

    #[tokio::test]
    async fn silences_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = SilenceRecord {
            id: "si_1".into(),
            rule: None,
            service_id: Some("container:web".into()),
            until_ms: 100,
            reason: "r".into(),
            created_by: "k".into(),
            created_at_ms: 0,
        };
        store.insert_silence(s.clone()).await.unwrap();
        assert_eq!(store.list_silences(50).await.unwrap(), vec![s]);
        assert!(store.list_silences(100).await.unwrap().is_empty(), "over at until_ms");
        assert!(store.end_silence("si_1".into(), 60).await.unwrap());
        assert!(store.list_silences(60).await.unwrap().is_empty());
        assert!(!store.end_silence("si_1".into(), 61).await.unwrap());
    }
}
