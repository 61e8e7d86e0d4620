//! Acknowledged writes survive the store being dropped, and the process
//! being killed.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{execution, sandbox};
use superserver_store::Store;
use superserver_wire::SandboxKind;

#[tokio::test]
async fn written_then_dropped_then_reopened() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.insert_execution(execution("ex_1", "sb_1", 2)).await.unwrap();
    store.set_sandbox_pid("sb_1", Some(31337)).await.unwrap();
    let before = store.get_sandbox("sb_1").await.unwrap();
    let clone = store.clone();
    drop(store);
    drop(clone);

    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.get_sandbox("sb_1").await.unwrap(), before);
    assert_eq!(store.list_executions("sb_1", 10).await.unwrap().len(), 1);
}

const CHILD_DIR: &str = "SUPERSERVER_STORE_TEST_CHILD_DIR";
const KILL_AFTER: usize = 300;

/// Helper of `acknowledged_writes_survive_sigkill`: writes until killed,
/// printing each id once its write is acknowledged. Does nothing (and passes)
/// when run as an ordinary test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_writes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..100_000 {
                    let id = format!("sb_{w}_{i}");
                    store.insert_sandbox(sandbox(&id, SandboxKind::Persistent, i)).await.unwrap();
                    println!("acked {id}");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writes_until_killed", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, tmp.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        if let Some(id) = line.unwrap().strip_prefix("acked ") {
            acked.push(id.to_owned());
            if acked.len() == KILL_AFTER {
                child.kill().unwrap(); // SIGKILL: no destructor, no flush
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), KILL_AFTER, "the child stopped writing early");

    let store = Store::open(tmp.path()).unwrap();
    for id in &acked {
        assert!(store.get_sandbox(id).await.unwrap().is_some(), "acknowledged {id} was lost");
    }
}
