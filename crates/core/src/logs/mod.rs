//! Logs: followers (containers, files, sandbox runs) feed one pipeline that
//! bounds each line, detects its level, mines its template (one Drain miner
//! per service, template ids stable across restarts), stores the batch with
//! its followers' cursors in one commit, then publishes each line to live
//! subscribers (the SSE tail, the anomaly detector).
//!
//! Host logs are admin-only; a tenant reads its own sandboxes' logs.

mod config;
mod containers;
mod files;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use superserver_ops::logs::{bound_line, detect_level, Level, Miner, MinerOptions};
use superserver_store::{LogCursor, LogFilter, LogLineRecord, TemplateUpdate};
use superserver_wire::{ExecResult, LogLine, LogList, LogTemplate, LogTemplateList, Role};
use tokio::sync::{broadcast, mpsc};

pub use config::{LogFiles, LogsConfig};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::Caller;

/// Lines a batch takes at most.
const BATCH: usize = 4096;
/// Lines queued between followers and the pipeline.
const QUEUE: usize = 16_384;
/// Events a slow live subscriber may fall behind before it loses some.
const BROADCAST: usize = 4096;

/// A line as a follower read it.
pub(crate) struct Raw {
    pub service: String,
    pub tenant_id: Option<String>,
    pub stream: &'static str,
    pub at_ms: i64,
    pub line: String,
    pub source: Option<Source>,
}

/// Where the follower is after this line.
pub(crate) enum Source {
    Cursor(LogCursor),
}

/// One ingested line, as live subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub id: i64,
    pub service: String,
    /// The tenant whose sandbox wrote it; `None` for host logs.
    pub tenant_id: Option<String>,
    pub at_ms: i64,
    /// `stdout`, `stderr` or `file`.
    pub stream: &'static str,
    pub level: Level,
    pub template_id: i64,
    pub template: String,
    /// The line started a new template.
    pub new_template: bool,
    pub line: String,
}

impl LogEvent {
    fn wire(&self) -> LogLine {
        LogLine {
            id: self.id,
            at_ms: self.at_ms,
            service: self.service.clone(),
            stream: self.stream.to_string(),
            level: self.level.as_str().to_string(),
            template_id: self.template_id,
            template: self.template.clone(),
            line: self.line.clone(),
        }
    }
}

/// The logs' shared state in [`crate::service::Inner`].
pub(crate) struct Logs {
    tx: mpsc::Sender<Raw>,
    rx: Mutex<Option<mpsc::Receiver<Raw>>>,
    events: broadcast::Sender<Arc<LogEvent>>,
}

impl Default for Logs {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (events, _) = broadcast::channel(BROADCAST);
        Self { tx, rx: Mutex::new(Some(rx)), events }
    }
}

/// A search of `GET /v1/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub service: Option<String>,
    /// Words that must all appear.
    pub q: Option<String>,
    /// This level and the more severe ones (`unknown`: only those).
    pub level: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: usize,
}

struct Pipeline {
    miners: HashMap<String, Miner>,
    levels: HashMap<i64, Level>,
    next_id: i64,
}

impl Service {
    /// Starts the pipeline, the retention loop and the followers, if enabled.
    pub(crate) fn start_logs(&self) {
        let cfg = &self.inner.cfg.logs;
        let Some(rx) = self.inner.logs.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        if !cfg.enabled {
            return;
        }
        let svc = self.clone();
        tokio::spawn(async move {
            let (pipeline, cursors) = match svc.load_logs_state().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the log templates; logs are not followed");
                    return;
                }
            };
            let cfg = svc.inner.cfg.logs.clone();
            files::spawn(cfg.clone(), cursors.clone(), svc.inner.logs.tx.clone(), svc.inner.cancel.clone());
            if cfg.containers && svc.inner.cfg.discovery.enabled {
                tokio::spawn(svc.clone().container_supervisor(cursors, svc.inner.logs.tx.clone()));
            }
            tokio::spawn(svc.clone().retention_loop());
            svc.pipeline(pipeline, rx).await;
        });
    }

    async fn load_logs_state(&self) -> Result<(Pipeline, HashMap<String, LogCursor>)> {
        let store = &self.inner.store;
        let mut p =
            Pipeline { miners: HashMap::new(), levels: HashMap::new(), next_id: store.max_template_id().await? };
        for t in store.log_templates(None, usize::MAX).await? {
            p.miners
                .entry(t.service)
                .or_insert_with(|| Miner::new(MinerOptions::default()))
                .restore(t.id as u64, &t.text);
            p.levels.insert(t.id, Level::parse(&t.level).unwrap_or(Level::Unknown));
        }
        let cursors = store.log_cursors().await?.into_iter().map(|c| (c.source.clone(), c)).collect();
        Ok((p, cursors))
    }

    async fn pipeline(self, mut p: Pipeline, mut rx: mpsc::Receiver<Raw>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
            }
            self.ingest(&mut p, std::mem::take(&mut batch)).await;
        }
    }

    async fn ingest(&self, p: &mut Pipeline, batch: Vec<Raw>) {
        let mut records = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut templates: HashMap<i64, TemplateUpdate> = HashMap::new();
        let mut cursors: HashMap<String, LogCursor> = HashMap::new();
        for raw in batch {
            let line = bound_line(&raw.line);
            let level = detect_level(&line);
            let miner = p.miners.entry(raw.service.clone()).or_insert_with(|| Miner::new(MinerOptions::default()));
            let next_id = &mut p.next_id;
            let mined = miner.add(&line, &mut || {
                *next_id += 1;
                *next_id as u64
            });
            let id = mined.id as i64;
            let text = miner.template(mined.id).unwrap_or_default();
            let t_level = *p.levels.entry(id).or_insert(level);
            let u = templates.entry(id).or_insert_with(|| TemplateUpdate {
                id,
                service: raw.service.clone(),
                text: String::new(),
                level: t_level.as_str().to_string(),
                seen_ms: raw.at_ms,
                count: 0,
            });
            u.text.clone_from(&text);
            u.seen_ms = u.seen_ms.max(raw.at_ms);
            u.count += 1;
            if let Some(Source::Cursor(c)) = raw.source {
                cursors.insert(c.source.clone(), c);
            }
            records.push(LogLineRecord {
                id: 0,
                at_ms: raw.at_ms,
                service: raw.service.clone(),
                tenant_id: raw.tenant_id.clone(),
                stream: raw.stream.to_string(),
                level: level.as_str().to_string(),
                template_id: id,
                line: line.clone(),
            });
            events.push(LogEvent {
                id: 0,
                service: raw.service,
                tenant_id: raw.tenant_id,
                at_ms: raw.at_ms,
                stream: raw.stream,
                level,
                template_id: id,
                template: text,
                new_template: mined.new,
                line,
            });
        }
        let stored = self
            .inner
            .store
            .insert_logs(records, templates.into_values().collect(), cursors.into_values().collect(), now_ms())
            .await;
        match stored {
            Ok(ids) => {
                for (mut ev, id) in events.into_iter().zip(ids) {
                    ev.id = id;
                    // The host's services' lines feed anomaly detection (a
                    // tenant's sandbox output is its own business).
                    if ev.tenant_id.is_none() {
                        self.observe_line(crate::anomaly::LineSeen {
                            service: &ev.service,
                            at_ms: ev.at_ms,
                            error: matches!(
                                ev.level,
                                superserver_ops::logs::Level::Error | superserver_ops::logs::Level::Fatal
                            ),
                            template_id: ev.template_id,
                            template: &ev.template,
                            new_template: ev.new_template,
                            line: &ev.line,
                        });
                    }
                    let _ = self.inner.logs.events.send(Arc::new(ev));
                }
            }
            Err(e) => tracing::error!(error = %e, lines = events.len(), "cannot store log lines"),
        }
    }

    async fn retention_loop(self) {
        let cfg = &self.inner.cfg.logs;
        let every = Duration::from_secs(cfg.prune_interval_seconds);
        loop {
            let before = now_ms() - (cfg.retention_hours as i64) * 3_600_000;
            let cap = (cfg.max_disk_mb as i64) << 20;
            match self.inner.store.prune_logs(before, cap).await {
                Ok(p) if p.by_age + p.by_size > 0 => {
                    tracing::info!(by_age = p.by_age, by_size = p.by_size, "removed old log lines")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "log retention failed"),
            }
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Every line as it is stored, for the anomaly detector and live tails.
    /// A subscriber that falls more than 4096 lines behind gets `Lagged`.
    pub fn subscribe_logs(&self) -> broadcast::Receiver<Arc<LogEvent>> {
        self.inner.logs.events.subscribe()
    }

    /// Records a sandbox command's output as logs of `sandbox:<id>`, readable
    /// by its tenant.
    pub(crate) async fn log_sandbox_output(&self, tenant_id: &str, r: &ExecResult) {
        if !self.inner.cfg.logs.enabled {
            return;
        }
        let at_ms = now_ms();
        let service = format!("sandbox:{}", r.sandbox_id);
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            for line in text.lines().filter(|l| !l.is_empty()) {
                let raw = Raw {
                    service: service.clone(),
                    tenant_id: Some(tenant_id.to_string()),
                    stream,
                    at_ms,
                    line: line.to_string(),
                    source: None,
                };
                if self.inner.logs.tx.send(raw).await.is_err() {
                    return;
                }
            }
        }
    }

    /// The filter a caller may search with: admins everything, others their
    /// tenant's sandboxes only.
    fn log_filter(&self, caller: &Caller, q: &LogQuery) -> Result<LogFilter> {
        caller.require(Role::Viewer, "reading logs")?;
        let is_host = q.service.as_deref().is_some_and(|s| !s.starts_with("sandbox:"));
        let tenant_id = if caller.is_admin() {
            None
        } else if is_host {
            caller.require(Role::Admin, "reading the host's logs")?;
            None
        } else {
            Some(caller.tenant_id().to_string())
        };
        let levels = match q.level.as_deref() {
            None | Some("") => Vec::new(),
            Some(l) => {
                let level = Level::parse(l).ok_or_else(|| {
                    CoreError::InvalidRequest(format!(
                        "level {l:?} is not one of fatal, error, warn, info, debug, trace, unknown"
                    ))
                })?;
                LEVELS
                    .iter()
                    .filter(|x| **x <= level && (level == Level::Unknown) == (**x == Level::Unknown))
                    .map(|x| x.as_str().to_string())
                    .collect()
            }
        };
        if let (Some(f), Some(t)) = (q.from_ms, q.to_ms) {
            if f >= t {
                return Err(CoreError::InvalidRequest("from must be before to".into()));
            }
        }
        Ok(LogFilter {
            service: q.service.clone(),
            tenant_id,
            q: q.q.clone().filter(|s| !s.trim().is_empty()),
            levels,
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            after_id: None,
            limit: q.limit.clamp(1, 10_000),
        })
    }

    /// `GET /v1/logs`: lines matching `q`, newest first.
    pub async fn logs(&self, caller: &Caller, q: LogQuery) -> Result<LogList> {
        let f = self.log_filter(caller, &q)?;
        let rows = self.inner.store.search_logs(f).await?;
        Ok(LogList { lines: rows.into_iter().map(|(r, t)| wire_line(r, t)).collect() })
    }

    /// `GET /v1/logs?follow=true`: lines matching `q` as they are stored,
    /// until the receiver is dropped or the server stops.
    pub fn tail_logs(&self, caller: &Caller, q: LogQuery) -> Result<mpsc::Receiver<LogLine>> {
        let f = self.log_filter(caller, &q)?;
        let words: Vec<String> = f.q.as_deref().unwrap_or("").split_whitespace().map(str::to_lowercase).collect();
        let mut events = self.subscribe_logs();
        let (tx, rx) = mpsc::channel(256);
        let cancel = self.inner.cancel.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tx.closed() => return,
                    ev = events.recv() => ev,
                };
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let matches = f.service.as_ref().is_none_or(|s| *s == ev.service)
                    && f.tenant_id.as_ref().is_none_or(|t| Some(t) == ev.tenant_id.as_ref())
                    && (f.levels.is_empty() || f.levels.iter().any(|l| l == ev.level.as_str()))
                    && (words.is_empty() || {
                        let lower = ev.line.to_lowercase();
                        words.iter().all(|w| lower.contains(w.as_str()))
                    });
                if matches && tx.send(ev.wire()).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// `GET /v1/logs/templates`.
    pub async fn log_templates(
        &self,
        caller: &Caller,
        service: Option<String>,
        limit: usize,
    ) -> Result<LogTemplateList> {
        let is_sandbox = service.as_deref().is_some_and(|s| s.starts_with("sandbox:"));
        if !is_sandbox {
            caller.require(Role::Admin, "reading the host's log templates")?;
        } else if !caller.is_admin() {
            // A sandbox's templates only to its tenant: it must have lines there.
            let q = LogQuery { service: service.clone(), limit: 1, ..LogQuery::default() };
            if self.logs(caller, q).await?.lines.is_empty() {
                return Ok(LogTemplateList { templates: Vec::new() });
            }
        }
        let rows = self.inner.store.log_templates(service, limit.clamp(1, 10_000)).await?;
        Ok(LogTemplateList {
            templates: rows
                .into_iter()
                .map(|t| LogTemplate {
                    id: t.id,
                    service: t.service,
                    text: t.text,
                    level: t.level,
                    first_seen_ms: t.first_seen_ms,
                    last_seen_ms: t.last_seen_ms,
                    count: t.count,
                })
                .collect(),
        })
    }

    /// Up to `n` lines of `service` at or before `around_ms`, oldest first:
    /// the log excerpt an alert carries.
    #[allow(dead_code)]
    pub(crate) async fn log_excerpt(&self, service: &str, around_ms: i64, n: usize) -> Result<Vec<LogLine>> {
        let f = LogFilter {
            service: Some(service.to_string()),
            to_ms: Some(around_ms + 1),
            limit: n.max(1),
            ..Default::default()
        };
        let mut rows: Vec<LogLine> =
            self.inner.store.search_logs(f).await?.into_iter().map(|(r, t)| wire_line(r, t)).collect();
        rows.reverse();
        Ok(rows)
    }
}

const LEVELS: [Level; 7] =
    [Level::Fatal, Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace, Level::Unknown];

fn wire_line(r: LogLineRecord, template: String) -> LogLine {
    LogLine {
        id: r.id,
        at_ms: r.at_ms,
        service: r.service,
        stream: r.stream,
        level: r.level,
        template_id: r.template_id,
        template,
        line: r.line,
    }
}
