//! Execution rows through the public API, on real database files.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::{execution, sandbox};
use superserver_store::{ExecutionRecord, Store, StoreError};
use superserver_wire::{SandboxKind, SandboxState};

fn open() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

#[tokio::test]
async fn insert_then_list_round_trips_every_field() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    let rec = ExecutionRecord {
        command_json: r#"["sh","-c","yes | head -c 10G"]"#.into(),
        duration_ms: 12_345.678,
        exit_code: None,
        signal: Some(9),
        timed_out: true,
        oom_killed: true,
        cpu_ms: 9_999.25,
        peak_memory_bytes: u64::from(u32::MAX) * 3,
        stdout_bytes: 10 << 30,
        stderr_bytes: 17,
        stdout_truncated: true,
        stderr_truncated: false,
        error: Some("killed after 10s".into()),
        ..execution("ex_1", "sb_1", 5)
    };
    store.insert_execution(rec.clone()).await.unwrap();
    assert_eq!(store.list_executions("sb_1", 10).await.unwrap(), [rec]);
}

#[tokio::test]
async fn list_is_per_sandbox_newest_first_and_limited() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.insert_sandbox(sandbox("sb_2", SandboxKind::Persistent, 1)).await.unwrap();
    for (id, at) in [("ex_a", 10), ("ex_b", 30), ("ex_c", 20), ("ex_d", 30)] {
        store.insert_execution(execution(id, "sb_1", at)).await.unwrap();
    }
    store.insert_execution(execution("ex_other", "sb_2", 99)).await.unwrap();

    let ids = |v: Vec<ExecutionRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_executions("sb_1", 10).await.unwrap()), ["ex_d", "ex_b", "ex_c", "ex_a"]);
    assert_eq!(ids(store.list_executions("sb_1", 2).await.unwrap()), ["ex_d", "ex_b"]);
    assert!(store.list_executions("sb_none", 10).await.unwrap().is_empty());
    assert_eq!(store.count_executions().await.unwrap(), 5);
}

#[tokio::test]
async fn exec_count_follows_the_executions() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    for i in 0..3 {
        store.insert_execution(execution(&format!("ex_{i}"), "sb_1", i)).await.unwrap();
    }
    let count = |s: &Store| {
        let s = s.clone();
        async move { s.get_sandbox("sb_1").await.unwrap().unwrap().exec_count }
    };
    assert_eq!(count(&store).await, 3);
    // A refused execution is not counted.
    assert!(store.insert_execution(execution("ex_0", "sb_1", 9)).await.is_err());
    assert_eq!(count(&store).await, 3);
    assert_eq!(store.list_sandboxes(true, 1).await.unwrap()[0].exec_count, 3);
}

#[tokio::test]
async fn unknown_sandbox_is_refused() {
    let (_tmp, store) = open();
    let err = store.insert_execution(execution("ex_1", "sb_ghost", 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::SandboxNotFound(ref id) if id == "sb_ghost"), "{err}");
    assert_eq!(store.count_executions().await.unwrap(), 0);
}

#[tokio::test]
async fn record_oneshot_writes_both_rows() {
    let (_tmp, store) = open();
    let sb = superserver_store::SandboxRecord {
        state: SandboxState::Destroyed,
        ended_at_ms: Some(20),
        end_reason: Some("run finished".into()),
        ..sandbox("sb_run", SandboxKind::Oneshot, 10)
    };
    store.record_oneshot(sb.clone(), execution("ex_run", "sb_run", 11)).await.unwrap();
    let got = store.get_sandbox("sb_run").await.unwrap().unwrap();
    assert_eq!(got, superserver_store::SandboxRecord { exec_count: 1, ..sb });
    assert_eq!(store.list_executions("sb_run", 5).await.unwrap()[0].id, "ex_run");
}

#[tokio::test]
async fn record_oneshot_is_all_or_nothing() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.insert_execution(execution("ex_dup", "sb_1", 1)).await.unwrap();

    // The execution id is taken: the sandbox row must not stay behind.
    let sb = sandbox("sb_run", SandboxKind::Oneshot, 2);
    let err = store.record_oneshot(sb, execution("ex_dup", "sb_run", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    assert_eq!(store.get_sandbox("sb_run").await.unwrap(), None);

    // The execution names another, unknown sandbox: neither row stays.
    let sb = sandbox("sb_run", SandboxKind::Oneshot, 2);
    let err = store.record_oneshot(sb, execution("ex_new", "sb_other", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::SandboxNotFound(_)), "{err}");
    assert_eq!(store.get_sandbox("sb_run").await.unwrap(), None);
    assert_eq!(store.count_executions().await.unwrap(), 1);
}
