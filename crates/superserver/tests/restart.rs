//! A server killed with `kill -9` mid-run leaves nothing running, and the
//! next start cleans up what is left and reports the lost sandboxes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{argv, Server};
use superserver_wire::{CreateSandboxRequest, RunRequest, SandboxState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_leaks_nothing_and_reports_lost_sandboxes() {
    let mut s = Server::start_with("[pool]\nsize = 0").await;
    let persistent = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    s.exec(&persistent, &["sh", "-c", "setsid sleep 1000 & echo bg"]).await;
    // A one-shot run in flight when the server dies.
    let client = s.client.clone();
    let inflight = tokio::spawn(async move {
        client.run(&RunRequest { command: argv(&["sh", "-c", "sleep 1000 & sleep 1000"]), ..Default::default() }).await
    });
    // Wait until both sandboxes have processes on the host.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.sandbox_processes().len() < 4 {
        assert!(Instant::now() < deadline, "sandboxes never started: {:?}", s.sandbox_processes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!s.host_cgroups().is_empty());
    s.kill9();
    assert!(inflight.await.unwrap().is_err(), "the in-flight run cannot have succeeded");

    // Every sandbox process dies with the server (parent-death signals).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.sandbox_processes().is_empty() {
        assert!(Instant::now() < deadline, "processes survived the server: {:?}", s.sandbox_processes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Empty cgroups are all that is left, until the next start removes them.
    let left = s.host_cgroups();
    assert!(!left.is_empty(), "the cgroups of the killed server are expected to remain until restart");

    s.spawn().await;
    s.assert_no_sandbox_leftovers(true).await;
    let st = s.client.status().await.unwrap();
    assert!(st.sandboxes_lost.contains(&persistent), "{:?}", st.sandboxes_lost);
    let info = s.client.get_sandbox(&persistent).await.unwrap();
    assert_eq!(info.state, SandboxState::Lost);
    assert!(info.end_reason.unwrap().contains("stopped"));
    // The restarted server works.
    assert_eq!(s.run(&["echo", "back"]).await.stdout, "back\n");
    s.stop().await;
    s.assert_no_sandbox_leftovers(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_destroys_everything() {
    let mut s = Server::start().await;
    let id = s.client.create_sandbox(&CreateSandboxRequest::default()).await.unwrap().id;
    s.exec(&id, &["sh", "-c", "sleep 1000 &"]).await;
    s.stop().await;
    s.assert_no_sandbox_leftovers(true).await;
    s.spawn().await;
    let info = s.client.get_sandbox(&id).await.unwrap();
    assert_eq!(info.state, SandboxState::Lost, "a persistent sandbox cannot survive a stop");
    s.stop().await;
    s.assert_no_sandbox_leftovers(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_zygote_is_replaced() {
    let s = Server::start_with("[pool]\nsize = 0").await;
    assert_eq!(s.run(&["echo", "before"]).await.stdout, "before\n");
    // The zygote is a child of the server's keeper thread: look through every thread.
    let mut zygotes = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{}/task", s.pid())).unwrap().flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for p in children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            if std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().contains("__zygote") {
                zygotes.push(p);
            }
        }
    }
    assert_eq!(zygotes.len(), 1, "exactly one zygote expected");
    std::process::Command::new("kill").arg("-9").arg(zygotes[0].to_string()).status().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.run(&["echo", "after"]).await.stdout, "after\n");
}
