//! Many concurrent writers through the one writer thread.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::{execution, sandbox};
use superserver_store::{Store, StoreError};
use superserver_wire::SandboxKind;

const WRITERS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_inserts_are_all_committed_and_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("sb_{i:04}");
                store
                    .record_oneshot(
                        sandbox(&id, SandboxKind::Oneshot, i as i64),
                        execution(&format!("ex_{i:04}"), &id, i as i64),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Every acknowledged write is visible to readers at once…
    assert_eq!(store.list_sandboxes(true, usize::MAX).await.unwrap().len(), WRITERS);
    assert_eq!(store.count_executions().await.unwrap(), WRITERS as u64);
    drop(store);

    // …and after reopening.
    let store = Store::open(tmp.path()).unwrap();
    let all = store.list_sandboxes(true, usize::MAX).await.unwrap();
    assert_eq!(all.len(), WRITERS);
    assert!(all.iter().all(|s| s.exec_count == 1));
    assert_eq!(all.first().unwrap().id, format!("sb_{:04}", WRITERS - 1));
    assert_eq!(store.count_executions().await.unwrap(), WRITERS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_failing_write_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 0)).await.unwrap();

    // Good executions with bad ones (unknown sandbox) in among them, all in
    // flight at once so that they share transactions. (That one failing
    // operation in a shared transaction is rolled back alone is shown
    // deterministically by the writer's unit tests.)
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            let sandbox_id = if i % 50 == 7 { "sb_ghost" } else { "sb_1" };
            let rec = execution(&format!("ex_{i:03}"), sandbox_id, i);
            tokio::spawn(async move { (sandbox_id, store.insert_execution(rec).await) })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        match task.await.unwrap() {
            ("sb_1", result) => result.unwrap(),
            (_, result) => {
                assert!(matches!(result, Err(StoreError::SandboxNotFound(_))), "{result:?}");
                failed += 1;
            }
        }
    }
    assert_eq!(failed, 4);
    assert_eq!(store.count_executions().await.unwrap(), 196);
    assert_eq!(store.get_sandbox("sb_1").await.unwrap().unwrap().exec_count, 196);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_run_alongside_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                store.insert_sandbox(sandbox(&format!("sb_{i}"), SandboxKind::Persistent, i)).await?;
            }
            Ok::<_, StoreError>(())
        })
    };
    // Counts only grow: each read sees a committed prefix of the writes.
    let mut last = 0;
    while !writer.is_finished() {
        let n = store.list_sandboxes(false, usize::MAX).await.unwrap().len();
        assert!(n >= last, "{n} < {last}");
        last = n;
    }
    writer.await.unwrap().unwrap();
    assert_eq!(store.running_sandboxes().await.unwrap().len(), 200);
}

#[tokio::test]
async fn close_flushes_queued_writes_then_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let pending: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.insert_sandbox(sandbox(&format!("sb_{i}"), SandboxKind::Oneshot, i)).await },
            )
        })
        .collect();
    // Let every task queue its write before closing.
    tokio::task::yield_now().await;
    let mut ok = 0;
    store.close().await;
    for task in pending {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Closed) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let err = store.insert_sandbox(sandbox("sb_late", SandboxKind::Oneshot, 0)).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");

    // Exactly the acknowledged writes are in the database.
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.list_sandboxes(true, usize::MAX).await.unwrap().len(), ok);
}
