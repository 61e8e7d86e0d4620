//! Opening, migrating and refusing databases.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use superserver_store::{Store, StoreError, DB_FILE};
use superserver_wire::SandboxKind;

fn migration_rows(dir: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
    let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

#[tokio::test]
async fn open_creates_the_data_dir_and_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/data");
    let store = Store::open(&dir).unwrap();
    assert_eq!(store.path(), dir.join(DB_FILE));
    assert!(dir.join(DB_FILE).is_file());
    assert_eq!(store.count_executions().await.unwrap(), 0);
    store.close().await;
    assert_eq!(migration_rows(&dir), vec![1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
}

#[tokio::test]
async fn reopening_applies_no_migration_twice_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.insert_sandbox(common::sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.close().await;
    for _ in 0..3 {
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.get_sandbox("sb_1").await.unwrap().is_some());
        store.close().await;
    }
    assert_eq!(migration_rows(tmp.path()), vec![1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
}

#[tokio::test]
async fn two_stores_on_one_database_both_work() {
    // A second process opening the same directory (say, `superserver` run
    // twice by mistake) must not corrupt or re-migrate it.
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open(tmp.path()).unwrap();
    let b = Store::open(tmp.path()).unwrap();
    a.insert_sandbox(common::sandbox("sb_a", SandboxKind::Persistent, 1)).await.unwrap();
    b.insert_sandbox(common::sandbox("sb_b", SandboxKind::Persistent, 2)).await.unwrap();
    assert_eq!(a.list_sandboxes(true, 10).await.unwrap().len(), 2);
    assert_eq!(b.list_sandboxes(true, 10).await.unwrap().len(), 2);
    a.close().await;
    b.close().await;
    assert_eq!(migration_rows(tmp.path()), vec![1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
}

#[test]
fn a_newer_schema_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Store::open(tmp.path()).unwrap());
    let conn = rusqlite::Connection::open(tmp.path().join(DB_FILE)).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, applied_at_ms) VALUES (999, 0)", []).unwrap();
    drop(conn);

    let err = Store::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 999, known: 11 }), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
    // Refusing leaves the database as it was.
    assert_eq!(migration_rows(tmp.path()), vec![1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 999]);
}
