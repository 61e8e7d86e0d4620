//! One-shot runs: a fresh sandbox, one command, the sandbox destroyed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use superserver_runtime::{ExecOutput, Image, OutputChunk, Sandbox};
use superserver_store::{ExecutionRecord, SandboxRecord};
use superserver_wire::{EffectiveLimits, ExecResult, Limits, PlanLimits, Role, RunRequest, SandboxKind, SandboxState};
use tokio::sync::mpsc;

use crate::error::{CoreError, Result};
use crate::ids;
use crate::request::{self, ValidExec};
use crate::service::{now_ms, Service};
use crate::tenancy::{Caller, Reservation, TenantEntry, Used};

impl Service {
    /// `POST /v1/run`. Output chunks go to `sink` as they are produced, if given.
    /// The execution, with its usage, is on disk before this returns.
    pub async fn run(
        &self,
        caller: &Caller,
        req: RunRequest,
        sink: Option<mpsc::Sender<OutputChunk>>,
    ) -> Result<ExecResult> {
        caller.require(Role::Member, "running commands")?;
        if self.inner.cancel.is_cancelled() {
            return Err(CoreError::ShuttingDown);
        }
        let cfg = &self.inner.cfg;
        let plan = caller.tenant.limits()?;
        let image = Image::parse(req.image.as_deref().unwrap_or(&cfg.sandbox.default_image))?;
        let limits = self.plan_limits(plan, req.limits.as_ref())?;
        let policy = self.requested_policy(caller, plan, req.network.as_ref())?;
        let network = Self::network_of(&policy);
        let mut valid = request::validate(cfg, &req.exec_part(), &BTreeMap::new(), plan)?;
        let held = self.requested_secrets(caller, &policy, &req.secrets, &req.env).await?;
        let dlp = match &policy {
            Some(_) => self.dlp_scanner(caller.tenant_id()).await?,
            None => None,
        };
        if policy.is_some() {
            request::add_default_env(&mut valid.params.env, crate::egress::proxy_env());
        }
        if let Some(h) = &held {
            valid.params.env.extend(h.env.iter().cloned());
        }
        let started = Instant::now();
        let created_at_ms = now_ms();
        let reservation = self
            .inner
            .quotas
            .reserve(caller.tenant_id(), plan, true, created_at_ms)
            .inspect_err(|_| self.count_refusal("quota_exceeded"))?;
        let lease = self.inner.pool.acquire(&image, &limits, network, plan.priority).await?;
        let sb = lease.sandbox();
        let execution_id = ids::new_id("ex");
        let egress = match policy {
            Some(p) => {
                let custody = held.as_ref().map(|h| h.custody.clone());
                let session = self.attach_egress(sb, caller.tenant_id(), p, custody, dlp)?;
                if let Some(h) = &held {
                    let names = h.names.clone();
                    self.inner.store.record_sandbox_secrets(&sb.id, caller.tenant_id(), names, created_at_ms).await?;
                }
                session.set_execution(Some(execution_id.clone()));
                Some(session)
            }
            None => None,
        };
        let outcome = self.exec_in(sb, valid, sink).await;
        let sandbox_id = sb.id.clone();
        let egress = egress.map(|s| {
            s.close();
            s.summary()
        });
        drop(lease);
        let out = outcome?;
        let mut result = request::result(&out, &sandbox_id, &execution_id);
        result.egress = egress;
        let ended = now_ms();
        let record = execution_record(caller.tenant_id(), caller, &result, &req.command, created_at_ms, &limits);
        let sandbox = SandboxRecord {
            id: sandbox_id,
            tenant_id: caller.tenant_id().to_string(),
            kind: SandboxKind::Oneshot,
            state: SandboxState::Destroyed,
            image: image.name(),
            limits,
            env_json: "{}".into(),
            created_at_ms,
            expires_at_ms: None,
            ended_at_ms: Some(ended),
            end_reason: Some("one-shot run finished".into()),
            host_pid: None,
            exec_count: 1,
        };
        let used = Used { cpu_ms: record.cpu_ms, gb_seconds: record.gb_seconds };
        self.inner.store.record_oneshot(sandbox, record).await?;
        self.metered(&caller.tenant, reservation, used, plan);
        self.count(&result, true, started);
        self.log_sandbox_output(caller.tenant_id(), &result).await;
        Ok(result)
    }

    /// Limits of a sandbox: the request's, bounded by the server and the plan.
    pub(crate) fn plan_limits(&self, plan: &PlanLimits, req: Option<&Limits>) -> Result<EffectiveLimits> {
        let cfg = &self.inner.cfg;
        let mut limits = cfg.resolve_limits(req)?;
        if limits.memory_mb > plan.max_memory_mb {
            if req.and_then(|l| l.memory_mb).is_some() {
                return Err(CoreError::LimitExceeded(format!(
                    "limits.memory_mb = {} exceeds the plan's max_memory_mb {}",
                    limits.memory_mb, plan.max_memory_mb
                )));
            }
            limits.memory_mb = plan.max_memory_mb;
        }
        Ok(limits)
    }

    /// Counts a recorded execution against its tenant's quotas and queues
    /// the warnings it triggers.
    pub(crate) fn metered(
        &self,
        tenant: &std::sync::Arc<TenantEntry>,
        reservation: Reservation,
        used: Used,
        plan: &PlanLimits,
    ) {
        let crossings = reservation.record(used, plan, now_ms());
        self.tenant_metrics(&tenant.id, used);
        if !crossings.is_empty() {
            let svc = self.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move { svc.warn_quota(&tenant, crossings).await });
        }
    }

    /// Writes the request's files, then runs the command.
    pub(crate) async fn exec_in(
        &self,
        sb: &Sandbox,
        valid: ValidExec,
        sink: Option<mpsc::Sender<OutputChunk>>,
    ) -> Result<ExecOutput> {
        for (path, data, mode) in &valid.files {
            sb.write_file(path, data, *mode).await?;
        }
        Ok(sb.exec(valid.params, sink).await?)
    }

    pub(crate) fn count(&self, r: &ExecResult, oneshot: bool, started: Instant) {
        let c = &self.inner.counters;
        if oneshot {
            c.runs.fetch_add(1, Ordering::Relaxed);
            c.run_us_total.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        } else {
            c.execs.fetch_add(1, Ordering::Relaxed);
        }
        if r.timed_out {
            c.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        if r.oom_killed {
            c.oom_kills.fetch_add(1, Ordering::Relaxed);
        }
        if r.error.is_some() {
            c.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The store's record of one command, with its usage: GB-seconds are the
/// sandbox's memory limit in GB (1024 MiB) × the wall time in seconds.
pub(crate) fn execution_record(
    tenant_id: &str,
    caller: &Caller,
    r: &ExecResult,
    command: &[String],
    started_at_ms: i64,
    limits: &EffectiveLimits,
) -> ExecutionRecord {
    ExecutionRecord {
        id: r.execution_id.clone(),
        sandbox_id: r.sandbox_id.clone(),
        tenant_id: tenant_id.to_string(),
        key_id: caller.key_id.clone(),
        gb_seconds: limits.memory_mb as f64 / 1024.0 * r.duration_ms / 1000.0,
        command_json: serde_json::to_string(command).unwrap_or_else(|_| "[]".into()),
        started_at_ms,
        duration_ms: r.duration_ms,
        exit_code: r.exit_code,
        signal: r.signal,
        timed_out: r.timed_out,
        oom_killed: r.oom_killed,
        cpu_ms: r.cpu_ms,
        peak_memory_bytes: r.peak_memory_bytes,
        stdout_bytes: r.stdout_bytes,
        stderr_bytes: r.stderr_bytes,
        stdout_truncated: r.stdout_truncated,
        stderr_truncated: r.stderr_truncated,
        error: r.error.clone(),
    }
}
