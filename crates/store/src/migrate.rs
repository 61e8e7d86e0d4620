//! Numbered schema migrations, checked in as SQL files under `migrations/`.

use rusqlite::{params, Connection, TransactionBehavior};

use crate::error::{Result, StoreError};

/// One step of the schema.
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order. Append only.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: include_str!("../migrations/0001_init.sql") },
    Migration { version: 2, sql: include_str!("../migrations/0002_tenancy.sql") },
    Migration { version: 3, sql: include_str!("../migrations/0003_service_events.sql") },
    Migration { version: 4, sql: include_str!("../migrations/0004_health.sql") },
    Migration { version: 5, sql: include_str!("../migrations/0005_anomalies.sql") },
    Migration { version: 6, sql: include_str!("../migrations/0006_alerts.sql") },
    Migration { version: 7, sql: include_str!("../migrations/0007_logs.sql") },
    Migration { version: 8, sql: include_str!("../migrations/0008_metrics.sql") },
    Migration { version: 10, sql: include_str!("../migrations/0010_egress.sql") },
    Migration { version: 11, sql: include_str!("../migrations/0011_secrets.sql") },
];

/// The schema version this binary writes.
pub(crate) fn known_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Bring the database up to [`known_version`].
///
/// Runs in one IMMEDIATE transaction, so two processes opening the same
/// database at once cannot both apply a step. Refuses a database that a newer
/// binary has migrated further than this one knows.
pub(crate) fn migrate(conn: &mut Connection, now_ms: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER NOT NULL PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let current: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let known = known_version();
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![m.version, now_ms],
        )?;
        tracing::info!(version = m.version, "applied store migration");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one() {
        // Slices built side by side reserve their numbers (logs: 5), so a
        // branch may skip one; the order must still be strictly increasing.
        assert_eq!(MIGRATIONS.first().map(|m| m.version), Some(1));
        for (i, w) in MIGRATIONS.windows(2).enumerate() {
            assert!(w[1].version > w[0].version, "migration {} is misnumbered", i + 1);
        }
        assert!(MIGRATIONS.iter().all(|m| !m.sql.trim().is_empty()));
        assert_eq!(known_version(), MIGRATIONS.last().unwrap().version);
    }

    #[test]
    fn migrate_twice_applies_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        migrate(&mut conn, 2).unwrap();
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT version, applied_at_ms FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<(i64, i64)> = MIGRATIONS.iter().map(|m| (m.version, 1)).collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn newer_schema_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, 1).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (99, 5)", []).unwrap();
        let err = migrate(&mut conn, 2).unwrap_err();
        assert!(matches!(err, StoreError::SchemaTooNew { found: 99, known } if known == known_version()), "{err}");
    }
}
