//! Persistent sandboxes: create, list, inspect, exec, files, delete.

use std::sync::Arc;
use std::time::Instant;

use superserver_runtime::{Image, OutputChunk, PathContent};
use superserver_store::SandboxRecord;
use superserver_wire::{
    CreateSandboxRequest, ExecRequest, ExecResult, FileList, Role, SandboxInfo, SandboxKind, SandboxState,
};
use tokio::sync::mpsc;

use crate::error::{CoreError, Result};
use crate::ids;
use crate::request;
use crate::run::execution_record;
use crate::service::{now_ms, Live, Service};
use crate::tenancy::{Caller, Used};

/// What a path in a sandbox holds.
pub enum FileContent {
    File(Vec<u8>),
    Dir(FileList),
}

impl Service {
    /// `POST /v1/sandboxes`.
    pub async fn create_sandbox(&self, caller: &Caller, req: CreateSandboxRequest) -> Result<SandboxInfo> {
        caller.require(Role::Member, "creating sandboxes")?;
        if self.inner.cancel.is_cancelled() {
            return Err(CoreError::ShuttingDown);
        }
        let cfg = &self.inner.cfg;
        let plan = caller.tenant.limits()?;
        caller.require_feature(plan.persistent_sandboxes, "persistent sandboxes")?;
        let image = Image::parse(req.image.as_deref().unwrap_or(&cfg.sandbox.default_image))?;
        let limits = self.plan_limits(plan, req.limits.as_ref())?;
        request::validate_env(&req.env, "env")?;
        let policy = self.requested_policy(caller, plan, req.network.as_ref())?;
        let network = Self::network_of(&policy);
        let held = self.requested_secrets(caller, &policy, &req.secrets, &req.env).await?;
        let dlp = match &policy {
            Some(_) => self.dlp_scanner(caller.tenant_id()).await?,
            None => None,
        };
        let mut env = req.env;
        if policy.is_some() {
            let mut pairs: Vec<(String, String)> = env.clone().into_iter().collect();
            request::add_default_env(&mut pairs, crate::egress::proxy_env());
            env = pairs.into_iter().collect();
        }
        if let Some(h) = &held {
            env.extend(h.env.iter().cloned());
        }
        let max_ttl = cfg.sandbox.max_ttl_seconds.min(plan.max_ttl_seconds);
        let ttl = req.ttl_seconds.unwrap_or(cfg.sandbox.default_ttl_seconds.min(max_ttl));
        if ttl == 0 || ttl > max_ttl {
            let why = if max_ttl < cfg.sandbox.max_ttl_seconds { " (the plan's max_ttl_seconds)" } else { "" };
            return Err(CoreError::LimitExceeded(format!("ttl_seconds = {ttl} must be between 1 and {max_ttl}{why}")));
        }
        let slot = self
            .inner
            .quotas
            .reserve_sandbox(caller.tenant_id(), plan)
            .inspect_err(|_| self.count_refusal("quota_exceeded"))?;
        let lease = self.inner.pool.acquire(&image, &limits, network, plan.priority).await?;
        let created_at_ms = now_ms();
        let expires_at_ms = created_at_ms + (ttl as i64) * 1000;
        let sb = lease.sandbox();
        let record = SandboxRecord {
            id: sb.id.clone(),
            tenant_id: caller.tenant_id().to_string(),
            kind: SandboxKind::Persistent,
            state: SandboxState::Running,
            image: image.name(),
            limits,
            env_json: serde_json::to_string(&env).unwrap_or_else(|_| "{}".into()),
            created_at_ms,
            expires_at_ms: Some(expires_at_ms),
            ended_at_ms: None,
            end_reason: None,
            host_pid: Some(i64::from(sb.pid)),
            exec_count: 0,
        };
        let custody = held.as_ref().map(|h| h.custody.clone());
        let egress = policy.map(|p| self.attach_egress(sb, caller.tenant_id(), p, custody, dlp)).transpose()?;
        let mut info = record.info();
        self.inner.store.insert_sandbox(record).await?;
        if let Some(h) = held {
            self.inner
                .store
                .record_sandbox_secrets(&info.id, caller.tenant_id(), h.names.clone(), created_at_ms)
                .await?;
            info.secrets = h.names;
        }
        let live = Arc::new(Live {
            id: info.id.clone(),
            tenant_id: caller.tenant_id().to_string(),
            env,
            egress,
            secrets: info.secrets.clone(),
            limits,
            expires_at_ms,
            cgroup: lease.sandbox().cgroup_path().to_path_buf(),
            lease: tokio::sync::RwLock::new(Some(lease)),
            _slot: slot,
        });
        self.lock_live().insert(info.id.clone(), live);
        // A suspension that raced this creation either found the sandbox
        // among the live ones, or marked the tenant before this check.
        if self.inner.auth.tenant(caller.tenant_id()).is_none_or(|t| t.suspended) {
            let ours = self.lock_live().remove(&info.id);
            if let Some(l) = ours {
                self.end_live(&l, SandboxState::Destroyed, "its tenant was suspended").await;
            }
            return Err(CoreError::TenantSuspended(caller.tenant.name.clone()));
        }
        Ok(info)
    }

    /// `GET /v1/sandboxes`: the caller's tenant's (every tenant's for an
    /// admin), running ones or all recent ones with `all`.
    pub async fn list_sandboxes(&self, caller: &Caller, all: bool) -> Result<Vec<SandboxInfo>> {
        let store = &self.inner.store;
        let recs = match (caller.is_admin(), all) {
            (true, true) => store.list_sandboxes(true, 1000).await?,
            (true, false) => store.running_sandboxes().await?,
            (false, _) => store.list_tenant_sandboxes(caller.tenant_id(), all, 1000).await?,
        };
        Ok(recs.iter().filter(|r| all || r.kind == SandboxKind::Persistent).map(SandboxRecord::info).collect())
    }

    /// `GET /v1/sandboxes/{id}`. Another tenant's sandbox is not found.
    pub async fn get_sandbox(&self, caller: &Caller, id: &str) -> Result<SandboxInfo> {
        let mut info = self
            .inner
            .store
            .get_sandbox(id)
            .await?
            .filter(|r| caller.sees(&r.tenant_id))
            .map(|r| r.info())
            .ok_or_else(|| CoreError::SandboxNotFound(id.to_string()))?;
        let live = self.lock_live().get(id).cloned();
        info.egress = live.as_ref().and_then(|l| l.egress.as_ref().map(|s| s.summary()));
        info.secrets = live.map(|l| l.secrets.clone()).unwrap_or_default();
        Ok(info)
    }

    /// `DELETE /v1/sandboxes/{id}`: kills everything in it and frees it.
    pub async fn delete_sandbox(&self, caller: &Caller, id: &str) -> Result<SandboxInfo> {
        let info = self.get_sandbox(caller, id).await?;
        caller.require(Role::Member, "deleting sandboxes")?;
        let live = self.lock_live().remove(id);
        match live {
            Some(l) => self.end_live(&l, SandboxState::Destroyed, "deleted").await,
            // Not running here: deleting an ended sandbox is a no-op.
            None => return Ok(info),
        }
        self.get_sandbox(caller, id).await
    }

    async fn live(&self, caller: &Caller, id: &str) -> Result<Arc<Live>> {
        let live = self.lock_live().get(id).cloned();
        if let Some(l) = live.filter(|l| caller.sees(&l.tenant_id)) {
            return Ok(l);
        }
        let info = self.get_sandbox(caller, id).await?;
        Err(CoreError::SandboxNotRunning { id: id.to_string(), state: info.state.as_str().to_string() })
    }

    /// `POST /v1/sandboxes/{id}/exec`.
    pub async fn exec(
        &self,
        caller: &Caller,
        id: &str,
        req: ExecRequest,
        sink: Option<mpsc::Sender<OutputChunk>>,
    ) -> Result<ExecResult> {
        let live = self.live(caller, id).await?;
        caller.require(Role::Member, "running commands")?;
        // The key's tenant pays, whatever sandbox the command runs in: an
        // admin's exec in another tenant's sandbox is the admin tenant's.
        let owner = caller.tenant.clone();
        let plan = owner.limits()?;
        let valid = request::validate(&self.inner.cfg, &req, &live.env, plan)?;
        let started = Instant::now();
        let started_ms = now_ms();
        let reservation = self
            .inner
            .quotas
            .reserve(&owner.id, plan, false, started_ms)
            .inspect_err(|_| self.count_refusal("quota_exceeded"))?;
        let guard = live.lease.read().await;
        let Some(lease) = guard.as_ref() else {
            return Err(CoreError::SandboxNotRunning { id: id.to_string(), state: "destroyed".into() });
        };
        let execution_id = ids::new_id("ex");
        if let Some(s) = &live.egress {
            // Concurrent commands share the sandbox's network: traffic is
            // attributed to the latest one.
            s.set_execution(Some(execution_id.clone()));
        }
        let out = self.exec_in(lease.sandbox(), valid, sink).await;
        drop(guard);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                if self.lock_live().get(id).is_none() {
                    // Killed with its sandbox (deleted, expired, suspended):
                    // it ran all the same, so it is recorded and counted.
                    let result = killed_result(id, started, &live.limits);
                    let record = execution_record(&owner.id, caller, &result, &req.command, started_ms, &live.limits);
                    let used = Used { cpu_ms: record.cpu_ms, gb_seconds: record.gb_seconds };
                    self.inner.store.insert_execution(record).await?;
                    self.metered(&owner, reservation, used, plan);
                    self.count(&result, false, started);
                    return Err(gone(id));
                }
                return Err(e);
            }
        };
        let mut result = request::result(&out, id, &execution_id);
        result.egress = live.egress.as_ref().map(|s| s.summary());
        let record = execution_record(&owner.id, caller, &result, &req.command, started_ms, &live.limits);
        let used = Used { cpu_ms: record.cpu_ms, gb_seconds: record.gb_seconds };
        self.inner.store.insert_execution(record).await?;
        self.metered(&owner, reservation, used, plan);
        self.count(&result, false, started);
        self.log_sandbox_output(&live.tenant_id, &result).await;
        Ok(result)
    }

    /// `PUT /v1/sandboxes/{id}/files?path=…`.
    pub async fn put_file(&self, caller: &Caller, id: &str, path: &str, data: &[u8], mode: Option<u32>) -> Result<u64> {
        let live = self.live(caller, id).await?;
        caller.require(Role::Member, "writing files")?;
        let mode = mode.unwrap_or(0o644);
        if mode > 0o7777 {
            return Err(CoreError::InvalidRequest(format!("mode {mode:o} is not a permission mode")));
        }
        validate_path(path)?;
        let guard = live.lease.read().await;
        let lease = guard.as_ref().ok_or_else(|| gone(id))?;
        Ok(lease.sandbox().write_file(path, data, mode).await?)
    }

    /// `GET /v1/sandboxes/{id}/files?path=…`: a file's bytes or a directory listing.
    pub async fn get_path(&self, caller: &Caller, id: &str, path: &str, list_only: bool) -> Result<FileContent> {
        let live = self.live(caller, id).await?;
        validate_path(path)?;
        let guard = live.lease.read().await;
        let lease = guard.as_ref().ok_or_else(|| gone(id))?;
        let sb = lease.sandbox();
        let to_list = |entries| FileList { path: path.to_string(), entries };
        if list_only {
            return Ok(FileContent::Dir(to_list(sb.list_dir(path).await?)));
        }
        match sb.read_path(path, self.inner.cfg.api.max_download_bytes).await? {
            PathContent::File(d) => Ok(FileContent::File(d)),
            PathContent::Dir(e) => Ok(FileContent::Dir(to_list(e))),
        }
    }
}

/// The result of a command killed because its sandbox went away: its
/// report went with the sandbox, so the CPU time is its bound, the sandbox's
/// CPU limit over the wall time.
fn killed_result(id: &str, started: Instant, limits: &superserver_wire::EffectiveLimits) -> ExecResult {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    ExecResult {
        execution_id: ids::new_id("ex"),
        sandbox_id: id.to_string(),
        signal: Some(9), // SIGKILL
        duration_ms,
        cpu_ms: duration_ms * f64::from(limits.cpu_percent) / 100.0,
        error: Some("the sandbox was destroyed while the command ran".into()),
        ..Default::default()
    }
}

fn gone(id: &str) -> CoreError {
    CoreError::SandboxNotRunning { id: id.to_string(), state: "destroyed".into() }
}

fn validate_path(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(CoreError::InvalidRequest("path is required, e.g. ?path=src/main.py".into()));
    }
    if path.contains('\0') || path.len() > 4096 {
        return Err(CoreError::InvalidRequest("path contains NUL or is longer than 4096 bytes".into()));
    }
    Ok(())
}
