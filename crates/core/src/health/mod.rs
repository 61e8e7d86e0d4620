//! Service health: Docker's health checks, SuperServer's own probes
//! (`[[health.probes]]`), whether the service runs, and crash loops, folded
//! into one status per discovered service. Changes are stored (uptime and
//! history come from them) and broadcast to whoever watches (alerts).

mod assess;
pub mod config;
mod probe;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use superserver_ops::Snapshot;
use superserver_store::HealthEventRecord;
use superserver_wire::{
    CrashLoop, HealthEvent, HealthList, HealthStatus, HealthSummary, ProbeState, Role, Service as DiscoveredService,
    ServiceHealth, ServiceKind, Uptime,
};
use tokio::sync::broadcast;

use self::assess::{assess, uptime_percent, CrashRule, ProbeTrack, Tracked};
use self::config::ProbeConfig;
use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// Restart times kept per service (crash-loop evidence).
const MAX_RESTARTS_KEPT: usize = 64;
/// A service gone this long is forgotten (its history stays in the store).
const FORGET_AFTER_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Health state shared by the probes, discovery and the API.
pub(crate) struct Health {
    tracked: Mutex<HashMap<String, Tracked>>,
    /// The last recorded status of each service when the server started.
    resumed: Mutex<HashMap<String, (HealthStatus, i64)>>,
    client: OnceLock<reqwest::Client>,
    /// Every recorded change, as it happens.
    pub changes: broadcast::Sender<HealthEvent>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            tracked: Mutex::default(),
            resumed: Mutex::default(),
            client: OnceLock::new(),
            changes: broadcast::channel(256).0,
        }
    }
}

impl Health {
    /// The HTTP client of the probes, built on first use: no redirects
    /// followed (a 3xx answer is an answer), upstream certificates verified.
    fn http_client(&self) -> reqwest::Client {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("superserver-health/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.tracked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where `{host}` points for a service: a container's first network
/// address, else loopback.
fn host_of(s: &DiscoveredService) -> String {
    s.container
        .as_ref()
        .and_then(|c| c.networks.iter().find_map(|n| n.ip.clone()))
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// Whether the service runs, and if not, why.
fn running(s: &DiscoveredService) -> (bool, String) {
    match (s.kind, &s.container, &s.unit) {
        (ServiceKind::Container, Some(c), _) => (c.state == "running", format!("container {}", c.state)),
        (ServiceKind::Unit, _, Some(u)) => {
            let up = matches!(u.active_state.as_str(), "active" | "activating" | "reloading");
            (up, format!("unit {} ({})", u.active_state, u.sub_state))
        }
        _ => (true, String::new()),
    }
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn parse_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Service {
    fn crash_rule(&self) -> CrashRule {
        let h = &self.inner.cfg.health;
        CrashRule { restarts: h.crash_loop_restarts, window_ms: (h.crash_loop_window_seconds as i64) * 1000 }
    }

    /// Resumes from the recorded statuses and starts one task per probe.
    pub(crate) async fn start_health(&self) -> Result<()> {
        if !self.inner.cfg.discovery.enabled {
            return Ok(());
        }
        let latest = self.inner.store.latest_health().await?;
        *self.inner.health.resumed.lock().unwrap_or_else(|e| e.into_inner()) = latest
            .into_iter()
            .filter_map(|r| Some((r.service_id, (HealthStatus::parse(&r.status)?, r.at_ms))))
            .collect();
        for p in self.inner.cfg.health.probes.clone() {
            let svc = self.clone();
            tokio::spawn(async move { svc.probe_loop(p).await });
        }
        let svc = self.clone();
        tokio::spawn(async move { svc.prune_health_loop().await });
        Ok(())
    }

    async fn prune_health_loop(self) {
        loop {
            let before = now_ms() - (self.inner.cfg.health.history_days as i64) * DAY_MS;
            if let Err(e) = self.inner.store.prune_health_events(before).await {
                tracing::warn!(error = %e, "cannot prune the health history");
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        }
    }

    /// Probes every running service the probe applies to, every interval.
    async fn probe_loop(self, p: ProbeConfig) {
        let every = Duration::from_secs(p.interval_seconds);
        loop {
            let targets: Vec<(String, probe::Target)> = self
                .inner
                .discovered
                .get()
                .map(|snap| {
                    snap.services
                        .iter()
                        .filter(|s| p.matches(&s.id) && running(s).0)
                        .map(|s| (s.id.clone(), probe::target(&p, &host_of(s))))
                        .collect()
                })
                .unwrap_or_default();
            let (svc, probe) = (&self, &p);
            let results = futures::future::join_all(
                targets.iter().map(|(id, t)| async move { (id, svc.probe_once(probe, t).await) }),
            )
            .await;
            if !results.is_empty() {
                let now = now_ms();
                {
                    let mut tracked = self.inner.health.lock();
                    for ((id, result), (_, t)) in results.into_iter().zip(&targets) {
                        let entry = tracked.entry(id.clone()).or_insert_with(|| Tracked::new(now));
                        let track = entry.probes.entry(p.name.clone()).or_insert_with(|| ProbeTrack {
                            kind: p.kind,
                            target: t.target.clone(),
                            retries: p.retries,
                            start_period_ms: (p.start_period_seconds as i64) * 1000,
                            consecutive_failures: 0,
                            last: None,
                        });
                        track.target = t.target.clone();
                        entry.probed(&p.name, result);
                    }
                }
                self.settle_health(now).await;
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Folds a new look at the host into the services' health.
    pub(crate) async fn observe_health(&self, snap: &Snapshot) {
        let now = now_ms();
        let probes = &self.inner.cfg.health.probes;
        {
            let mut tracked = self.inner.health.lock();
            for s in &snap.services {
                let t = tracked.entry(s.id.clone()).or_insert_with(|| Tracked::new(now));
                let (up, why) = running(s);
                t.running = up;
                t.down_reason = why;
                t.seen_ms = now;
                t.docker_health = s.container.as_ref().and_then(|c| c.health.clone());
                if let Some(c) = &s.container {
                    if let Some(started) = c.started_at.as_deref().and_then(parse_ms) {
                        t.started_ms = started;
                    }
                    if let Some(prev) = t.last_restart_count {
                        if c.restart_count > prev {
                            t.restarted(c.restart_count - prev, now, MAX_RESTARTS_KEPT);
                        }
                    }
                    t.last_restart_count = Some(c.restart_count);
                }
                // Probes that apply but have not run yet make the service wait for them.
                for p in probes.iter().filter(|p| p.matches(&s.id)) {
                    t.probes.entry(p.name.clone()).or_insert_with(|| ProbeTrack {
                        kind: p.kind,
                        target: probe::target(p, &host_of(s)).target,
                        retries: p.retries,
                        start_period_ms: (p.start_period_seconds as i64) * 1000,
                        consecutive_failures: 0,
                        last: None,
                    });
                }
            }
            let present: std::collections::HashSet<&str> = snap.services.iter().map(|s| s.id.as_str()).collect();
            tracked.retain(|id, t| present.contains(id.as_str()) || now - t.seen_ms < FORGET_AFTER_MS);
            for (id, t) in tracked.iter_mut() {
                if !present.contains(id.as_str()) {
                    t.running = false;
                    t.down_reason = "gone: no longer discovered".into();
                }
            }
        }
        self.settle_health(now).await;
    }

    /// Notes restarts that discovery saw as changes (units and processes
    /// restarting under new pids; containers count through their restart count).
    pub(crate) fn note_restart(&self, service: &str, at_ms: i64, container: bool) {
        if container {
            return;
        }
        if let Some(t) = self.inner.health.lock().get_mut(service) {
            t.restarted(1, at_ms, MAX_RESTARTS_KEPT);
        }
    }

    /// Re-assesses every service; records and broadcasts the changes.
    async fn settle_health(&self, now: i64) {
        let crash = self.crash_rule();
        let mut records = Vec::new();
        {
            let resumed = self.inner.health.resumed.lock().unwrap_or_else(|e| e.into_inner());
            let mut tracked = self.inner.health.lock();
            for (id, t) in tracked.iter_mut() {
                let (status, reason) = assess(t, now, crash);
                if !t.recorded {
                    t.recorded = true;
                    if let Some((prev, since)) = resumed.get(id) {
                        if *prev == status {
                            t.status = status;
                            t.reason = reason;
                            t.since_ms = *since;
                            continue;
                        }
                    }
                } else if t.status == status {
                    t.reason = reason;
                    continue;
                }
                t.status = status;
                t.reason = reason.clone();
                t.since_ms = now;
                records.push(HealthEventRecord {
                    id: 0,
                    at_ms: now,
                    service_id: id.clone(),
                    status: status.as_str().into(),
                    reason,
                });
            }
        }
        if records.is_empty() {
            return;
        }
        for r in &records {
            tracing::info!(service = %r.service_id, status = %r.status, reason = %r.reason, "service health changed");
        }
        let events: Vec<HealthEvent> = records.iter().filter_map(event_of).collect();
        if let Err(e) = self.inner.store.insert_health_events(records).await {
            tracing::error!(error = %e, "cannot record health changes");
        }
        for e in events {
            let _ = self.inner.health.changes.send(e);
        }
    }

    /// Current status of a service, for the map.
    pub(crate) fn health_of(&self, id: &str) -> Option<HealthSummary> {
        self.inner.health.lock().get(id).filter(|t| t.recorded).map(|t| summary(id, t))
    }

    /// `GET /v1/health`.
    pub fn health_list(&self, caller: &Caller) -> Result<HealthList> {
        caller.require(Role::Admin, "reading the host's services")?;
        let mut services: Vec<HealthSummary> =
            self.inner.health.lock().iter().filter(|(_, t)| t.recorded).map(|(id, t)| summary(id, t)).collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));
        Ok(HealthList { services })
    }

    /// `GET /v1/services/{id}/health`.
    pub async fn service_health(&self, caller: &Caller, id: &str) -> Result<ServiceHealth> {
        caller.require(Role::Admin, "reading the host's services")?;
        let now = now_ms();
        let (mut out, current) = {
            let tracked = self.inner.health.lock();
            let t = tracked.get(id).filter(|t| t.recorded).ok_or_else(|| CoreError::ServiceNotFound(id.into()))?;
            let crash = self.crash_rule();
            let restarts = t.restarts_within(now, crash.window_ms);
            let probes = t
                .probes
                .iter()
                .map(|(name, p)| ProbeState {
                    name: name.clone(),
                    kind: p.kind,
                    target: p.target.clone(),
                    consecutive_failures: p.consecutive_failures,
                    retries: p.retries,
                    last: p.last.clone(),
                })
                .collect();
            let out = ServiceHealth {
                service: id.to_string(),
                status: t.status,
                reason: t.reason.clone(),
                since_ms: t.since_ms,
                docker_health: t.docker_health.clone(),
                crash_loop: (restarts >= crash.restarts)
                    .then_some(CrashLoop { restarts, window_seconds: (crash.window_ms / 1000) as u64 }),
                probes,
                uptime: Uptime { day_percent: 0.0, week_percent: 0.0 },
                history: Vec::new(),
            };
            (out, t.status)
        };
        let rows = self.inner.store.health_history(id.to_string(), now - 7 * DAY_MS, 10_000).await?;
        let mut changes: Vec<(i64, HealthStatus)> =
            rows.iter().filter_map(|r| Some((r.at_ms, HealthStatus::parse(&r.status)?))).collect();
        changes.sort_by_key(|c| c.0);
        out.uptime = Uptime {
            day_percent: uptime_percent(&changes, now - DAY_MS, now, current),
            week_percent: uptime_percent(&changes, now - 7 * DAY_MS, now, current),
        };
        out.history = rows.iter().filter(|r| r.at_ms >= now - 7 * DAY_MS).take(50).filter_map(event_of).collect();
        Ok(out)
    }

    /// The service's crash loop, if it is in one.
    pub(crate) fn crash_loop_of(&self, id: &str) -> Option<CrashLoop> {
        let crash = self.crash_rule();
        let now = now_ms();
        let tracked = self.inner.health.lock();
        let restarts = tracked.get(id)?.restarts_within(now, crash.window_ms);
        (restarts >= crash.restarts).then_some(CrashLoop { restarts, window_seconds: (crash.window_ms / 1000) as u64 })
    }

    /// Recorded changes as they happen.
    pub fn subscribe_health(&self) -> broadcast::Receiver<HealthEvent> {
        self.inner.health.changes.subscribe()
    }
}

fn summary(id: &str, t: &Tracked) -> HealthSummary {
    HealthSummary { service: id.to_string(), status: t.status, reason: t.reason.clone(), since_ms: t.since_ms }
}

fn event_of(r: &HealthEventRecord) -> Option<HealthEvent> {
    Some(HealthEvent {
        id: r.id,
        at_ms: r.at_ms,
        service: r.service_id.clone(),
        status: HealthStatus::parse(&r.status)?,
        reason: r.reason.clone(),
    })
}
