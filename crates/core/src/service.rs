//! The service: every operation the API, the CLI and the dashboard perform,
//! typed, with no knowledge of HTTP.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use superserver_runtime::{Image, Lease, Pool, PoolConfig, Runtime, RuntimeConfig};
use superserver_store::Store;
use superserver_wire::{SandboxState, StatusResponse};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{CoreError, Result};
use crate::ids;
use crate::tenancy::{plans, Auth, Caller, Quotas, SandboxSlot};

/// A persistent sandbox alive in this process.
pub(crate) struct Live {
    pub id: String,
    pub tenant_id: String,
    pub env: BTreeMap<String, String>,
    pub limits: superserver_wire::EffectiveLimits,
    pub expires_at_ms: i64,
    /// Its cgroup, relative to each hierarchy's root (for metrics).
    pub cgroup: std::path::PathBuf,
    /// `None` once the sandbox is being destroyed.
    pub lease: tokio::sync::RwLock<Option<Lease>>,
    /// The egress session of a governed sandbox (ends with it).
    pub egress: Option<superserver_egress::Session>,
    /// The custody secrets it holds.
    pub secrets: Vec<String>,
    /// Its place among the tenant's concurrent sandboxes, given back when
    /// the sandbox ends.
    pub _slot: SandboxSlot,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub runs: AtomicU64,
    pub execs: AtomicU64,
    pub timeouts: AtomicU64,
    pub oom_kills: AtomicU64,
    pub failures: AtomicU64,
    pub run_us_total: AtomicU64,
}

pub(crate) struct Inner {
    pub cfg: Config,
    pub runtime: Runtime,
    pub pool: Pool,
    pub store: Store,
    pub live: Mutex<HashMap<String, Arc<Live>>>,
    pub started: Instant,
    pub cancel: CancellationToken,
    pub counters: Counters,
    pub executions_at_start: u64,
    pub auth: Auth,
    pub quotas: Quotas,
    /// The admin key made by this start, until the binary has shown it.
    pub bootstrap_key: Mutex<Option<String>>,
    /// Wakes the outbox worker when notifications are queued.
    pub outbox_wake: tokio::sync::Notify,
    pub tenant_metrics: Mutex<HashMap<String, crate::usage::TenantMetrics>>,
    pub refusals: Mutex<HashMap<&'static str, u64>>,
    pub discovered: crate::discovery::Discovered,
    pub health: crate::health::Health,
    pub anomalies: crate::anomaly::Anomalies,
    pub sessions: crate::sessions::Sessions,
    pub alerts: crate::alerts::AlertsState,
    pub logs: crate::logs::Logs,
    pub metrics: crate::metrics::MetricsState,
    pub egress: crate::egress::Egress,
}

/// The core service. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// How the service finds the helper binary it re-executes.
#[derive(Debug, Clone)]
pub struct Helper {
    pub exe: PathBuf,
    pub args: Vec<String>,
}

impl Service {
    /// Opens the store, starts the runtime (cleaning up after an unclean
    /// stop), records which persistent sandboxes were lost, starts the pool.
    pub async fn start(cfg: Config, helper: Helper) -> Result<Self> {
        cfg.validate()?;
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| CoreError::Config(format!("cannot create data dir {}: {e}", cfg.data_dir.display())))?;
        let instance = ids::instance_id(&cfg.data_dir).map_err(|e| {
            CoreError::Config(format!("cannot read the instance id in {}: {e}", cfg.data_dir.display()))
        })?;
        let store = Store::open(&cfg.data_dir)?;
        let rt_cfg = RuntimeConfig {
            run_dir: cfg.data_dir.join("run"),
            helper_exe: helper.exe,
            helper_args: helper.args,
            cgroup_parent: PathBuf::from("superserver").join(&instance),
            id_base: cfg.sandbox.id_base,
            max_sandboxes: cfg.sandbox.max_sandboxes,
            setup_timeout: Duration::from_millis(cfg.sandbox.setup_timeout_ms),
            cgroup_favordynmods: cfg.sandbox.cgroup_favordynmods,
        };
        let runtime = Runtime::start(rt_cfg)?;
        let lost = store.mark_running_lost("the server stopped while the sandbox was running", now_ms()).await?;
        if !lost.is_empty() {
            let ids: Vec<&str> = lost.iter().map(|r| r.id.as_str()).collect();
            tracing::warn!(lost = ?ids, "persistent sandboxes lost by the previous run");
        }
        let cancel = CancellationToken::new();
        let default_image = Image::parse(&cfg.sandbox.default_image)?;
        let pool = Pool::start(
            runtime.clone(),
            PoolConfig {
                size: cfg.pool.size,
                default_image,
                default_limits: cfg.limits.default,
                max_profiles: cfg.pool.max_profiles,
                profile_idle: Duration::from_secs(cfg.pool.profile_idle_seconds),
                parallel_creates: cfg.pool.parallel_creates,
            },
            || ids::new_id("sb"),
            cancel.child_token(),
        );
        let executions_at_start = store.count_executions().await?;
        let plans = plans::resolve(&cfg.plans);
        let auth = Auth::new(cfg.auth.enabled, plans, &store.list_tenants().await?, &store.list_keys().await?)?;
        let quotas = Quotas::default();
        let anomalies = crate::anomaly::Anomalies::new(&cfg.anomaly);
        let egress = crate::egress::Egress::new(&cfg.egress, &cfg.data_dir, &cfg.data_dir.join("run"))?;
        let now = now_ms();
        quotas.load(&store.usage_since(plans::month_of(now).0).await?, now);
        let svc = Self {
            inner: Arc::new(Inner {
                cfg,
                runtime,
                pool,
                store,
                live: Mutex::new(HashMap::new()),
                started: Instant::now(),
                cancel,
                counters: Counters::default(),
                executions_at_start,
                auth,
                quotas,
                bootstrap_key: Mutex::new(None),
                outbox_wake: tokio::sync::Notify::new(),
                tenant_metrics: Mutex::default(),
                refusals: Mutex::default(),
                discovered: Default::default(),
                health: Default::default(),
                anomalies,
                sessions: Default::default(),
                alerts: Default::default(),
                logs: Default::default(),
                metrics: Default::default(),
                egress,
            }),
        };
        svc.bootstrap().await?;
        let reaper = svc.clone();
        tokio::spawn(async move { reaper.expire_loop().await });
        let flusher = svc.clone();
        tokio::spawn(async move { flusher.flush_loop().await });
        svc.start_notifications();
        svc.start_health().await?;
        svc.start_anomalies();
        svc.start_discovery();
        svc.start_alerts();
        svc.start_logs();
        svc.start_metrics();
        svc.start_egress();
        Ok(svc)
    }

    /// The caller presenting `authorization` (an `Authorization` header value).
    pub fn authenticate(&self, authorization: Option<&str>, remote_addr: Option<String>) -> Result<Caller> {
        let mut caller = self.inner.auth.authenticate(authorization, now_ms())?;
        caller.remote_addr = remote_addr;
        Ok(caller)
    }

    /// Whether API keys are required.
    pub fn auth_enabled(&self) -> bool {
        self.inner.auth.enabled()
    }

    /// The admin key created at this start on an empty data directory, once.
    pub fn take_bootstrap_key(&self) -> Option<String> {
        self.inner.bootstrap_key.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Writes keys' last-used times to the store every few seconds.
    async fn flush_loop(self) {
        loop {
            let stop = tokio::select! {
                _ = self.inner.cancel.cancelled() => true,
                _ = tokio::time::sleep(Duration::from_secs(5)) => false,
            };
            let used = self.inner.auth.take_used();
            if !used.is_empty() {
                if let Err(e) = self.inner.store.touch_keys(used).await {
                    tracing::warn!(error = %e, "cannot record when API keys were last used");
                }
            }
            if stop {
                return;
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Whether sandboxes can be created right now.
    pub fn ready(&self) -> bool {
        self.inner.runtime.healthy() && !self.inner.cancel.is_cancelled()
    }

    /// Stops background work, destroys every sandbox, flushes the store.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let used = self.inner.auth.take_used();
        if !used.is_empty() {
            let _ = self.inner.store.touch_keys(used).await;
        }
        let live: Vec<Arc<Live>> = self.lock_live().drain().map(|(_, v)| v).collect();
        for l in live {
            self.end_live(&l, SandboxState::Lost, "the server was stopped").await;
        }
        self.inner.pool.drain().await;
        // Wait for background creation and destruction to finish.
        for _ in 0..1000 {
            if self.inner.runtime.stats().live.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.inner.runtime.shutdown();
        self.inner.store.close().await;
    }

    pub(crate) fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Live>>> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Destroys a live persistent sandbox and records how it ended.
    pub(crate) async fn end_live(&self, live: &Live, state: SandboxState, reason: &str) {
        if let Some(lease) = live.lease.read().await.as_ref() {
            // Ends running commands at once, so the write lock comes quickly.
            lease.sandbox().kill();
        }
        let lease = live.lease.write().await.take();
        if let Some(s) = &live.egress {
            s.close();
        }
        drop(lease);
        if let Err(e) = self.inner.store.end_sandbox(&live.id, state, reason, now_ms()).await {
            tracing::error!(sandbox = %live.id, error = %e, "cannot record the end of a sandbox");
        }
    }

    async fn expire_loop(self) {
        loop {
            tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let now = now_ms();
            let expired: Vec<Arc<Live>> = {
                let mut live = self.lock_live();
                let ids: Vec<String> = live.values().filter(|l| l.expires_at_ms <= now).map(|l| l.id.clone()).collect();
                ids.iter().filter_map(|id| live.remove(id)).collect()
            };
            for l in expired {
                tracing::info!(sandbox = %l.id, "sandbox TTL expired");
                self.end_live(&l, SandboxState::Expired, "its TTL expired").await;
            }
        }
    }

    /// `GET /v1/status`. Sandbox and execution figures are the caller's
    /// tenant's (every tenant's for an admin); the backends and the pool are
    /// the server's.
    pub async fn status(&self, caller: &Caller) -> Result<StatusResponse> {
        let since = now_ms() - 7 * 86_400_000;
        let mut lost = self.inner.store.lost_sandboxes(since).await?;
        if !caller.is_admin() {
            let mut mine = Vec::new();
            for id in lost {
                if self.inner.store.get_sandbox(&id).await?.is_some_and(|r| r.tenant_id == caller.tenant_id()) {
                    mine.push(id);
                }
            }
            lost = mine;
        }
        let c = &self.inner.counters;
        let (sandboxes_running, executions_total) = if caller.is_admin() {
            let execs =
                self.inner.executions_at_start + c.runs.load(Ordering::Relaxed) + c.execs.load(Ordering::Relaxed);
            (self.lock_live().len(), execs)
        } else {
            let running = self.lock_live().values().filter(|l| l.tenant_id == caller.tenant_id()).count();
            (running, self.inner.store.count_tenant_executions(caller.tenant_id()).await?)
        };
        Ok(StatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.inner.started.elapsed().as_secs(),
            backends: vec![self.inner.runtime.backend_status()],
            pool: self.inner.pool.status(),
            sandboxes_running,
            sandboxes_lost: lost,
            executions_total,
        })
    }

    /// Number of persistent sandboxes alive.
    pub fn running_count(&self) -> usize {
        self.lock_live().len()
    }

    /// Runtime figures for `/metrics`.
    pub fn runtime_stats(&self) -> &superserver_runtime::RuntimeStats {
        self.inner.runtime.stats()
    }

    /// Pool figures.
    pub fn pool_status(&self) -> superserver_wire::PoolStatus {
        self.inner.pool.status()
    }
}
