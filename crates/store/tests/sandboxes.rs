//! Sandbox rows through the public API, on real database files.

#![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

mod common;

use common::sandbox;
use superserver_store::{Store, StoreError};
use superserver_wire::{EffectiveLimits, SandboxKind, SandboxState};

fn open() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

fn ids(records: &[superserver_store::SandboxRecord]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[tokio::test]
async fn insert_then_get_round_trips_every_field() {
    let (_tmp, store) = open();
    let rec = superserver_store::SandboxRecord {
        image: "dir:/srv/rootfs/alpine".into(),
        limits: EffectiveLimits {
            memory_mb: u64::from(u32::MAX) + 7,
            pids: u32::MAX,
            cpu_percent: 250,
            disk_mb: 1 << 40,
        },
        env_json: r#"{"A":"1","B":"two words"}"#.into(),
        expires_at_ms: Some(9_000),
        host_pid: Some(4242),
        ..sandbox("sb_full", SandboxKind::Persistent, 1_000)
    };
    store.insert_sandbox(rec.clone()).await.unwrap();
    assert_eq!(store.get_sandbox("sb_full").await.unwrap(), Some(rec));
    assert_eq!(store.get_sandbox("sb_missing").await.unwrap(), None);
}

#[tokio::test]
async fn ended_fields_round_trip_and_exec_count_is_derived() {
    let (_tmp, store) = open();
    let rec = superserver_store::SandboxRecord {
        state: SandboxState::Expired,
        ended_at_ms: Some(5),
        end_reason: Some("ttl".into()),
        exec_count: 41, // ignored: the store counts executions itself
        ..sandbox("sb_old", SandboxKind::Persistent, 1)
    };
    store.insert_sandbox(rec.clone()).await.unwrap();
    let got = store.get_sandbox("sb_old").await.unwrap().unwrap();
    assert_eq!(got, superserver_store::SandboxRecord { exec_count: 0, ..rec });
}

#[tokio::test]
async fn duplicate_id_is_refused() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Oneshot, 1)).await.unwrap();
    let err = store.insert_sandbox(sandbox("sb_1", SandboxKind::Oneshot, 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
    assert_eq!(store.get_sandbox("sb_1").await.unwrap().unwrap().created_at_ms, 1);
}

#[tokio::test]
async fn list_is_newest_first_limited_and_filtered() {
    let (_tmp, store) = open();
    for (i, id) in ["sb_a", "sb_b", "sb_c", "sb_d"].into_iter().enumerate() {
        store.insert_sandbox(sandbox(id, SandboxKind::Persistent, i as i64 * 10)).await.unwrap();
    }
    // Same creation time as sb_d: the later insert counts as newer.
    store.insert_sandbox(sandbox("sb_e", SandboxKind::Oneshot, 30)).await.unwrap();
    assert!(store.end_sandbox("sb_c", SandboxState::Destroyed, "deleted", 100).await.unwrap());

    let all = store.list_sandboxes(true, 100).await.unwrap();
    assert_eq!(ids(&all), ["sb_e", "sb_d", "sb_c", "sb_b", "sb_a"]);
    let running = store.list_sandboxes(false, 100).await.unwrap();
    assert_eq!(ids(&running), ["sb_e", "sb_d", "sb_b", "sb_a"]);
    assert_eq!(ids(&store.list_sandboxes(true, 2).await.unwrap()), ["sb_e", "sb_d"]);
    assert_eq!(ids(&store.list_sandboxes(false, 0).await.unwrap()), Vec::<&str>::new());

    let oldest_first = store.running_sandboxes().await.unwrap();
    assert_eq!(ids(&oldest_first), ["sb_a", "sb_b", "sb_d", "sb_e"]);
}

#[tokio::test]
async fn pid_is_set_cleared_and_refused_for_unknown_sandbox() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.set_sandbox_pid("sb_1", Some(777)).await.unwrap();
    assert_eq!(store.get_sandbox("sb_1").await.unwrap().unwrap().host_pid, Some(777));
    store.set_sandbox_pid("sb_1", None).await.unwrap();
    assert_eq!(store.get_sandbox("sb_1").await.unwrap().unwrap().host_pid, None);

    let err = store.set_sandbox_pid("sb_nope", Some(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::SandboxNotFound(ref id) if id == "sb_nope"), "{err}");
}

#[tokio::test]
async fn end_sandbox_only_moves_a_running_sandbox() {
    let (_tmp, store) = open();
    store.insert_sandbox(sandbox("sb_1", SandboxKind::Persistent, 1)).await.unwrap();
    store.set_sandbox_pid("sb_1", Some(99)).await.unwrap();

    assert!(store.end_sandbox("sb_1", SandboxState::Expired, "ttl", 50).await.unwrap());
    let ended = store.get_sandbox("sb_1").await.unwrap().unwrap();
    assert_eq!(ended.state, SandboxState::Expired);
    assert_eq!(ended.end_reason.as_deref(), Some("ttl"));
    assert_eq!(ended.ended_at_ms, Some(50));
    assert_eq!(ended.host_pid, None);

    // Already ended: nothing changes, whatever the new state.
    assert!(!store.end_sandbox("sb_1", SandboxState::Destroyed, "deleted", 60).await.unwrap());
    assert_eq!(store.get_sandbox("sb_1").await.unwrap().unwrap(), ended);
    assert!(!store.end_sandbox("sb_nope", SandboxState::Destroyed, "x", 1).await.unwrap());

    let err = store.end_sandbox("sb_1", SandboxState::Running, "x", 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAnEndState(SandboxState::Running)), "{err}");
}

#[tokio::test]
async fn mark_running_lost_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let store = Store::open(tmp.path()).unwrap();
        store.insert_sandbox(sandbox("sb_p1", SandboxKind::Persistent, 1)).await.unwrap();
        store.insert_sandbox(sandbox("sb_p2", SandboxKind::Persistent, 2)).await.unwrap();
        store.insert_sandbox(sandbox("sb_o1", SandboxKind::Oneshot, 3)).await.unwrap();
        store.insert_sandbox(sandbox("sb_gone", SandboxKind::Persistent, 4)).await.unwrap();
        store.set_sandbox_pid("sb_p2", Some(1234)).await.unwrap();
        store.end_sandbox("sb_gone", SandboxState::Destroyed, "deleted", 10).await.unwrap();
        // The server "crashes": the store is dropped without close().
    }
    let store = Store::open(tmp.path()).unwrap();
    let pids: Vec<_> = store.running_sandboxes().await.unwrap().iter().map(|s| s.host_pid).collect();
    assert_eq!(pids, [None, Some(1234), None]);

    let lost = store.mark_running_lost("server restarted", 1_000).await.unwrap();
    assert_eq!(ids(&lost), ["sb_p1", "sb_p2"]);
    for rec in &lost {
        assert_eq!(rec.state, SandboxState::Lost);
        assert_eq!(rec.end_reason.as_deref(), Some("server restarted"));
        assert_eq!(rec.ended_at_ms, Some(1_000));
        assert_eq!(rec.host_pid, None);
        assert_eq!(store.get_sandbox(&rec.id).await.unwrap().as_ref(), Some(rec));
    }
    let oneshot = store.get_sandbox("sb_o1").await.unwrap().unwrap();
    assert_eq!(oneshot.state, SandboxState::Destroyed);
    assert_eq!(oneshot.end_reason.as_deref(), Some("server restarted"));
    let gone = store.get_sandbox("sb_gone").await.unwrap().unwrap();
    assert_eq!((gone.state, gone.ended_at_ms), (SandboxState::Destroyed, Some(10)));

    assert!(store.running_sandboxes().await.unwrap().is_empty());
    assert!(store.mark_running_lost("again", 2_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn lost_sandboxes_since() {
    let (_tmp, store) = open();
    for (id, kind) in [
        ("sb_early", SandboxKind::Persistent),
        ("sb_late", SandboxKind::Persistent),
        ("sb_oneshot", SandboxKind::Oneshot),
        ("sb_destroyed", SandboxKind::Persistent),
    ] {
        store.insert_sandbox(sandbox(id, kind, 1)).await.unwrap();
    }
    store.end_sandbox("sb_early", SandboxState::Lost, "crash", 100).await.unwrap();
    store.end_sandbox("sb_late", SandboxState::Lost, "crash", 200).await.unwrap();
    store.end_sandbox("sb_oneshot", SandboxState::Lost, "crash", 200).await.unwrap();
    store.end_sandbox("sb_destroyed", SandboxState::Destroyed, "deleted", 200).await.unwrap();

    assert_eq!(store.lost_sandboxes(0).await.unwrap(), ["sb_late", "sb_early"]);
    assert_eq!(store.lost_sandboxes(100).await.unwrap(), ["sb_late", "sb_early"]);
    assert_eq!(store.lost_sandboxes(101).await.unwrap(), ["sb_late"]);
    assert!(store.lost_sandboxes(201).await.unwrap().is_empty());
}
