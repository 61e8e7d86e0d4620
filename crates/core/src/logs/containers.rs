//! Container followers: one task per running container discovery found,
//! started when it appears (or starts again), ended when its log stream
//! ends. Each line's engine timestamp is the cursor stored with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use superserver_store::LogCursor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Raw, Source};
use crate::service::Service;

struct Follower {
    task: JoinHandle<()>,
    /// Timestamp (ns) of the last line sent.
    last_ns: Arc<AtomicI64>,
}

impl Service {
    pub(super) async fn container_supervisor(self, saved: HashMap<String, LogCursor>, tx: mpsc::Sender<Raw>) {
        let socket = superserver_ops::Options::default().docker_socket;
        let docker = loop {
            match superserver_ops::logs::container::connect_for_follow(&socket).await {
                Ok(d) => break d,
                Err(e) => tracing::info!(error = %e, "container logs not followed for now"),
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        };
        let mut followers: HashMap<String, Follower> = HashMap::new();
        let mut last: HashMap<String, i64> = saved
            .into_iter()
            .filter_map(|(k, c)| k.strip_prefix("container:").map(|id| (id.to_string(), c.offset)))
            .collect();
        loop {
            let running: Vec<(String, String)> = self
                .inner
                .discovered
                .get()
                .map(|s| {
                    s.services
                        .iter()
                        .filter_map(|sv| sv.container.as_ref().map(|c| (sv, c)))
                        .filter(|(_, c)| c.state == "running")
                        .map(|(sv, c)| (c.id.clone(), sv.id.clone()))
                        .collect()
                })
                .unwrap_or_default();
            followers.retain(|id, f| {
                if f.task.is_finished() {
                    last.insert(id.clone(), f.last_ns.load(Ordering::Relaxed));
                    false
                } else {
                    true
                }
            });
            for (id, service) in running {
                if followers.contains_key(&id) {
                    continue;
                }
                let last_ns = Arc::new(AtomicI64::new(last.get(&id).copied().unwrap_or(0)));
                let task = tokio::spawn(follow(docker.clone(), id.clone(), service, last_ns.clone(), tx.clone()));
                followers.insert(id, Follower { task, last_ns });
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => break,
                _ = self.inner.discovered.looked.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        for f in followers.values() {
            f.task.abort();
        }
    }
}

async fn follow(docker: bollard::Docker, id: String, service: String, last_ns: Arc<AtomicI64>, tx: mpsc::Sender<Raw>) {
    let source = format!("container:{id}");
    let stream = superserver_ops::logs::container::follow(&docker, &id, last_ns.load(Ordering::Relaxed));
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        let l = match item {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "container log stream ended");
                return;
            }
        };
        last_ns.store(l.ts_ns, Ordering::Relaxed);
        let raw = Raw {
            service: service.clone(),
            tenant_id: None,
            stream: l.stream,
            at_ms: l.ts_ns / 1_000_000,
            line: l.line,
            source: Some(Source::Cursor(LogCursor { source: source.clone(), inode: 0, offset: l.ts_ns })),
        };
        if tx.send(raw).await.is_err() {
            return;
        }
    }
}
