//! Anomaly detection: the detectors of `superserver_ops::anomaly`, fed with
//! the services' log lines (by the log pipeline), their health changes and
//! their metric trends. Each finding is stored with its evidence, broadcast
//! (alerts listen), and listed by `GET /v1/anomalies`.

pub mod config;
mod detect;
mod trends;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use superserver_store::{AnomalyFilter, AnomalyRecord};
use superserver_wire::{Anomaly, AnomalyEvidence, AnomalyKind, AnomalyList, HealthStatus, Role};
use tokio::sync::broadcast;

pub(crate) use self::detect::LineSeen;
use self::detect::{Detectors, Found};
use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// Shared anomaly state.
pub(crate) struct Anomalies {
    detectors: Mutex<Detectors>,
    /// When each (service, kind, key) was last reported.
    reported: Mutex<HashMap<(String, AnomalyKind, String), i64>>,
    /// Every stored anomaly, as it is found.
    pub found: broadcast::Sender<Anomaly>,
}

impl Anomalies {
    pub fn new(cfg: &config::AnomalyConfig) -> Self {
        Self {
            detectors: Mutex::new(Detectors::new(cfg.clone())),
            reported: Mutex::default(),
            found: broadcast::channel(256).0,
        }
    }

    fn detectors(&self) -> std::sync::MutexGuard<'_, Detectors> {
        self.detectors.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Anomalies of the same (service, kind, key) remembered at most.
const MAX_REPORTED: usize = 50_000;

impl Service {
    /// Starts the health feed, the bucket ticker and retention.
    pub(crate) fn start_anomalies(&self) {
        if !self.inner.cfg.anomaly.enabled {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move { svc.anomaly_health_feed().await });
        let svc = self.clone();
        tokio::spawn(async move { svc.anomaly_ticker().await });
        let svc = self.clone();
        tokio::spawn(async move { svc.trend_loop().await });
    }

    /// One log line of a host service, as the log pipeline ingested it.
    /// Findings are stored in the background; the caller is not held up.
    pub(crate) fn observe_line(&self, line: LineSeen<'_>) {
        if !self.inner.cfg.anomaly.enabled {
            return;
        }
        let mut found = Vec::new();
        self.inner.anomalies.detectors().line(line, &mut found);
        self.spawn_record(found);
    }

    fn spawn_record(&self, found: Vec<Found>) {
        if found.is_empty() {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move {
            for f in found {
                svc.record_anomaly(f).await;
            }
        });
    }

    async fn anomaly_ticker(self) {
        let every = Duration::from_millis((self.inner.cfg.anomaly.bucket_seconds * 1000 / 4).max(250));
        let mut last_prune = 0;
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = now_ms();
            let mut found = Vec::new();
            self.inner.anomalies.detectors().tick(now, &mut found);
            for f in found {
                self.record_anomaly(f).await;
            }
            if now - last_prune > 3_600_000 {
                last_prune = now;
                let before = now - (self.inner.cfg.anomaly.retention_days as i64) * 86_400_000;
                if let Err(e) = self.inner.store.prune_anomalies(before).await {
                    tracing::warn!(error = %e, "cannot prune old anomalies");
                }
            }
        }
    }

    /// Health changes: flapping, and entering a crash loop.
    async fn anomaly_health_feed(self) {
        let mut rx = self.subscribe_health();
        let mut history: HashMap<String, Vec<String>> = HashMap::new();
        // The last settled status (healthy, unhealthy, down) of each service:
        // flapping counts changes between those, not a service appearing or
        // passing through its start period.
        let mut settled: HashMap<String, HealthStatus> = HashMap::new();
        loop {
            let ev = tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                ev = rx.recv() => ev,
            };
            let ev = match ev {
                Ok(ev) => ev,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "anomaly detection missed health changes");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let h = history.entry(ev.service.clone()).or_default();
            h.push(format!("{} {} ({})", crate::tenancy::plans::rfc3339(ev.at_ms), ev.status.as_str(), ev.reason));
            if h.len() > 10 {
                h.remove(0);
            }
            let mut found = Vec::new();
            if ev.status != HealthStatus::Starting {
                let previous = settled.insert(ev.service.clone(), ev.status);
                if previous.is_some_and(|p| p != ev.status) {
                    self.inner.anomalies.detectors().health_change(&ev.service, ev.at_ms, h, &mut found);
                }
            }
            if ev.status == HealthStatus::Unhealthy {
                if let Some(c) = self.crash_loop_of(&ev.service) {
                    found.push(Found {
                        service: ev.service.clone(),
                        kind: AnomalyKind::CrashLoop,
                        key: String::new(),
                        summary: format!(
                            "{}: restarted {} times in the last {} s",
                            ev.service, c.restarts, c.window_seconds
                        ),
                        evidence: AnomalyEvidence {
                            samples: h.clone(),
                            figures: [
                                ("restarts".to_string(), f64::from(c.restarts)),
                                ("window_seconds".to_string(), c.window_seconds as f64),
                            ]
                            .into_iter()
                            .collect(),
                            ..AnomalyEvidence::default()
                        },
                    });
                }
            }
            for f in found {
                self.record_anomaly(f).await;
            }
        }
    }

    /// Stores and broadcasts a finding, unless the same one was reported
    /// within `anomaly.repeat_after_seconds`.
    pub(crate) async fn record_anomaly(&self, f: Found) -> Option<Anomaly> {
        let now = now_ms();
        {
            let repeat_ms = (self.inner.cfg.anomaly.repeat_after_seconds as i64) * 1000;
            let mut reported = self.inner.anomalies.reported.lock().unwrap_or_else(|e| e.into_inner());
            let key = (f.service.clone(), f.kind, f.key.clone());
            if reported.get(&key).is_some_and(|t| now - *t < repeat_ms) {
                return None;
            }
            if reported.len() >= MAX_REPORTED {
                reported.retain(|_, t| now - *t < repeat_ms);
            }
            reported.insert(key, now);
        }
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "{}".into());
        let rec = AnomalyRecord {
            id: 0,
            at_ms: now,
            service_id: f.service.clone(),
            kind: f.kind.as_str().into(),
            summary: f.summary.clone(),
            evidence,
        };
        let id = match self.inner.store.insert_anomaly(rec).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, service = %f.service, kind = f.kind.as_str(), "cannot store an anomaly");
                return None;
            }
        };
        tracing::info!(service = %f.service, kind = f.kind.as_str(), summary = %f.summary, "anomaly");
        let a = Anomaly { id, at_ms: now, service: f.service, kind: f.kind, summary: f.summary, evidence: f.evidence };
        let _ = self.inner.anomalies.found.send(a.clone());
        // The `anomaly` alert rules covering this kind fire (with the anomaly
        // as the alert's context).
        if let Err(e) = self.report_anomaly(a.clone()).await {
            tracing::error!(error = %e, service = %a.service, "cannot raise an alert for an anomaly");
        }
        Some(a)
    }

    /// Anomalies as they are found.
    pub fn subscribe_anomalies(&self) -> broadcast::Receiver<Anomaly> {
        self.inner.anomalies.found.subscribe()
    }

    /// `GET /v1/anomalies`: newest first.
    pub async fn anomalies(
        &self,
        caller: &Caller,
        service: Option<String>,
        kind: Option<String>,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        limit: usize,
    ) -> Result<AnomalyList> {
        caller.require(Role::Admin, "reading the host's services")?;
        if let Some(k) = &kind {
            if AnomalyKind::parse(k).is_none() {
                let known: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(CoreError::InvalidRequest(format!(
                    "kind `{k}` is not an anomaly kind (known: {})",
                    known.join(", ")
                )));
            }
        }
        let rows = self
            .inner
            .store
            .list_anomalies(AnomalyFilter { service_id: service, kind, from_ms, to_ms, limit: limit.clamp(1, 1000) })
            .await?;
        Ok(AnomalyList {
            anomalies: rows
                .into_iter()
                .filter_map(|r| {
                    Some(Anomaly {
                        id: r.id,
                        at_ms: r.at_ms,
                        service: r.service_id,
                        kind: AnomalyKind::parse(&r.kind)?,
                        summary: r.summary,
                        evidence: serde_json::from_str(&r.evidence).unwrap_or_default(),
                    })
                })
                .collect(),
        })
    }
}
