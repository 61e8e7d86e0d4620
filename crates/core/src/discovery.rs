//! Continuous discovery of the host's services: a look at start, then one
//! every `discovery.interval_seconds`; the changes between two looks are
//! recorded as events. What discovery sees is the host's, so only admins may
//! read it.

use std::sync::Arc;
use std::time::Duration;

use superserver_ops::{Look, Options, Snapshot, SocketCache};
use superserver_store::ServiceEventRecord;
use superserver_wire::{
    ChangeKind, MapNode, Role, ServiceDetail, ServiceEvent, ServiceEventList, ServiceList, ServiceMap,
};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// The latest snapshot, shared with the API.
#[derive(Default)]
pub(crate) struct Discovered {
    latest: std::sync::RwLock<Option<Arc<Snapshot>>>,
    /// Woken after each look (tests and `refresh` wait on it).
    pub looked: tokio::sync::Notify,
}

impl Discovered {
    pub(crate) fn get(&self) -> Option<Arc<Snapshot>> {
        self.latest.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, s: Snapshot) -> Option<Arc<Snapshot>> {
        self.latest.write().unwrap_or_else(|e| e.into_inner()).replace(Arc::new(s))
    }
}

impl Service {
    /// Starts the discovery loop, if enabled.
    pub(crate) fn start_discovery(&self) {
        if !self.inner.cfg.discovery.enabled {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move { svc.discovery_loop().await });
    }

    async fn discovery_loop(self) {
        let every = Duration::from_secs(self.inner.cfg.discovery.interval_seconds.max(1));
        // The server's own sandboxes are not the host's services.
        let opts = Options { ignore_cgroup: Some("/superserver/".into()), ..Options::default() };
        // A quick first picture (containers and units, from Docker and
        // systemd) while the first full look reads every process and
        // socket table; the full look then replaces it without counting
        // as changes.
        let quick = superserver_ops::look(&opts, Look::ServicesOnly).await;
        self.inner.discovered.set(quick);
        let cache = Arc::new(std::sync::Mutex::new(SocketCache::default()));
        let mut first = true;
        loop {
            let snap = superserver_ops::look(&opts, Look::Full(cache.clone())).await;
            let previous = self.inner.discovered.set(snap.clone());
            if let Some(prev) = previous.filter(|_| !std::mem::take(&mut first)) {
                let changes = superserver_ops::diff(&prev, &snap);
                for c in changes.iter().filter(|c| c.kind == ChangeKind::Restarted) {
                    self.note_restart(&c.service, now_ms(), c.service.starts_with("container:"));
                }
                self.record_changes(changes).await;
            } else {
                tracing::info!(services = snap.services.len(), notes = ?snap.notes, "discovered the host's services");
            }
            self.observe_health(&snap).await;
            self.inner.discovered.looked.notify_waiters();
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn record_changes(&self, changes: Vec<superserver_wire::Change>) {
        if changes.is_empty() {
            return;
        }
        let at_ms = now_ms();
        let records: Vec<ServiceEventRecord> = changes
            .into_iter()
            .map(|c| ServiceEventRecord {
                id: 0,
                at_ms,
                service_id: c.service,
                kind: kind_name(c.kind),
                before: c.before,
                after: c.after,
            })
            .collect();
        for r in &records {
            tracing::info!(service = %r.service_id, kind = %r.kind, "service changed");
        }
        if let Err(e) = self.inner.store.insert_service_events(records).await {
            tracing::error!(error = %e, "cannot record service changes");
        }
    }

    fn snapshot(&self, caller: &Caller) -> Result<Arc<Snapshot>> {
        caller.require(Role::Admin, "reading the host's services")?;
        if !self.inner.cfg.discovery.enabled {
            return Err(CoreError::Unavailable("discovery is off (discovery.enabled = false)".into()));
        }
        Ok(self.inner.discovered.get().unwrap_or_default())
    }

    /// `GET /v1/services`.
    pub fn services(&self, caller: &Caller) -> Result<ServiceList> {
        let s = self.snapshot(caller)?;
        Ok(ServiceList { discovered_at_ms: s.at_ms, services: s.services.clone(), notes: s.notes.clone() })
    }

    /// `GET /v1/services/map`.
    pub fn service_map(&self, caller: &Caller) -> Result<ServiceMap> {
        let s = self.snapshot(caller)?;
        let nodes = s
            .services
            .iter()
            .map(|sv| {
                let (state, health) = match (&sv.container, &sv.unit) {
                    (Some(c), _) => (c.state.clone(), c.health.clone()),
                    (None, Some(u)) => (u.active_state.clone(), None),
                    _ => ("running".to_string(), None),
                };
                // SuperServer's own assessment, which folds in Docker's.
                let health = self.health_of(&sv.id).map(|h| h.status.as_str().to_string()).or(health);
                MapNode { id: sv.id.clone(), kind: sv.kind, name: sv.name.clone(), state, health }
            })
            .collect();
        Ok(ServiceMap { discovered_at_ms: s.at_ms, nodes, edges: s.edges.clone() })
    }

    /// `GET /v1/services/{id}`.
    pub async fn service(&self, caller: &Caller, id: &str) -> Result<ServiceDetail> {
        let s = self.snapshot(caller)?;
        let service = s
            .services
            .iter()
            .find(|sv| sv.id == id)
            .cloned()
            .ok_or_else(|| CoreError::ServiceNotFound(id.to_string()))?;
        let edges = s.edges.iter().filter(|e| e.from == id || e.to == id).cloned().collect();
        let events = self.service_events(caller, Some(id.to_string()), None, 50).await?.events;
        let health = self.health_of(id);
        Ok(ServiceDetail { service, edges, events, health })
    }

    /// `GET /v1/services/events`: changes, newest first.
    pub async fn service_events(
        &self,
        caller: &Caller,
        service: Option<String>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<ServiceEventList> {
        caller.require(Role::Admin, "reading the host's services")?;
        let rows = self.inner.store.list_service_events(service, before, limit.clamp(1, 1000)).await?;
        Ok(ServiceEventList {
            events: rows
                .into_iter()
                .filter_map(|r| {
                    Some(ServiceEvent {
                        id: r.id,
                        at_ms: r.at_ms,
                        kind: serde_json::from_value(serde_json::Value::String(r.kind)).ok()?,
                        service: r.service_id,
                        before: r.before,
                        after: r.after,
                    })
                })
                .collect(),
        })
    }

    /// Waits for the next look at the host (at most `timeout`).
    pub async fn wait_discovery(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inner.discovered.looked.notified()).await;
    }
}

fn kind_name(k: ChangeKind) -> String {
    match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{k:?}"),
    }
}
