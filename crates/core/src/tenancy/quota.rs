//! Quota accounting, in memory, started from the store's usage at start-up
//! and moved in the same step as each decision, under one lock: a check and
//! its reservation are atomic, so 20 concurrent requests with one execution
//! left give exactly one success.
//!
//! Executions count when they are reserved (before the command starts) and
//! stay counted once recorded; a reservation released without a recorded
//! execution (the sandbox could not be created) gives its unit back. CPU and
//! GB-seconds are known only afterwards: a command may start while some are
//! left and end past the limit; the next one is then refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use superserver_store::TenantUsage;
use superserver_wire::{PlanLimits, Quota, QuotaState};

use super::plans::{month_of, rfc3339};
use crate::error::{CoreError, Result};

/// The periodic quotas, as named in errors and reports.
pub const EXECUTIONS: &str = "executions";
pub const CPU_SECONDS: &str = "cpu_seconds";
pub const GB_SECONDS: &str = "gb_seconds";
pub const CONCURRENT: &str = "concurrent_sandboxes";

/// Percentages of a quota at which a warning goes out.
pub const WARN_AT: [u32; 2] = [80, 100];

#[derive(Debug, Default)]
struct Counters {
    period_start: i64,
    period_end: i64,
    /// Recorded plus reserved.
    executions: u64,
    cpu_ms: f64,
    gb_seconds: f64,
    /// Persistent sandboxes alive plus one-shot runs in progress.
    sandboxes: u64,
    /// Warnings already produced this period: (quota, percent).
    warned: HashSet<(&'static str, u32)>,
}

impl Counters {
    fn roll(&mut self, now_ms: i64) {
        if now_ms >= self.period_end || now_ms < self.period_start {
            let (start, end) = month_of(now_ms);
            self.period_start = start;
            self.period_end = end;
            self.executions = 0;
            self.cpu_ms = 0.0;
            self.gb_seconds = 0.0;
            self.warned.clear();
        }
    }
}

/// A quota crossed by a recorded execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    pub quota: &'static str,
    pub percent: u32,
    pub used: f64,
    pub limit: u64,
    pub period_start_ms: i64,
    pub resets_at_ms: i64,
}

/// What one command used, for the quotas.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    pub cpu_ms: f64,
    pub gb_seconds: f64,
}

#[derive(Clone, Default)]
pub struct Quotas {
    inner: Arc<Mutex<HashMap<String, Counters>>>,
}

impl Quotas {
    /// Starts from the usage recorded since the current period began.
    pub fn load(&self, usage: &[TenantUsage], now_ms: i64) {
        let mut map = self.lock();
        for u in usage {
            let c = map.entry(u.tenant_id.clone()).or_default();
            c.roll(now_ms);
            c.executions = u.executions;
            c.cpu_ms = u.cpu_ms;
            c.gb_seconds = u.gb_seconds;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counters>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one execution (and, for a one-shot run, one sandbox) of
    /// `tenant_id` under `limits`, or says which quota is exhausted.
    pub fn reserve(&self, tenant_id: &str, limits: &PlanLimits, sandbox: bool, now_ms: i64) -> Result<Reservation> {
        let mut map = self.lock();
        let c = map.entry(tenant_id.to_string()).or_default();
        c.roll(now_ms);
        let resets = Some(c.period_end);
        check(EXECUTIONS, limits.executions_per_month, c.executions as f64, 1.0, resets)?;
        check(CPU_SECONDS, limits.cpu_seconds_per_month, c.cpu_ms / 1000.0, f64::MIN_POSITIVE, resets)?;
        check(GB_SECONDS, limits.gb_seconds_per_month, c.gb_seconds, f64::MIN_POSITIVE, resets)?;
        if sandbox {
            check(CONCURRENT, limits.concurrent_sandboxes, c.sandboxes as f64, 1.0, None)?;
            c.sandboxes += 1;
        }
        c.executions += 1;
        Ok(Reservation {
            quotas: self.clone(),
            tenant_id: tenant_id.to_string(),
            period_start: c.period_start,
            sandbox,
            recorded: false,
        })
    }

    /// Reserves a persistent sandbox's place among the concurrent ones.
    pub fn reserve_sandbox(&self, tenant_id: &str, limits: &PlanLimits) -> Result<SandboxSlot> {
        let mut map = self.lock();
        let c = map.entry(tenant_id.to_string()).or_default();
        check(CONCURRENT, limits.concurrent_sandboxes, c.sandboxes as f64, 1.0, None)?;
        c.sandboxes += 1;
        Ok(SandboxSlot { quotas: self.clone(), tenant_id: tenant_id.to_string() })
    }

    /// The state of every quota of a tenant.
    pub fn state(&self, tenant_id: &str, limits: &PlanLimits, now_ms: i64) -> (i64, Vec<QuotaState>) {
        let mut map = self.lock();
        let c = map.entry(tenant_id.to_string()).or_default();
        c.roll(now_ms);
        let periodic = |quota: &str, used: f64, q: Quota| QuotaState {
            quota: quota.to_string(),
            used,
            limit: q.limit(),
            resets_at_ms: Some(c.period_end),
            resets_at: Some(rfc3339(c.period_end)),
        };
        let states = vec![
            periodic(EXECUTIONS, c.executions as f64, limits.executions_per_month),
            periodic(CPU_SECONDS, round3(c.cpu_ms / 1000.0), limits.cpu_seconds_per_month),
            periodic(GB_SECONDS, round3(c.gb_seconds), limits.gb_seconds_per_month),
            QuotaState {
                quota: CONCURRENT.to_string(),
                used: c.sandboxes as f64,
                limit: limits.concurrent_sandboxes.limit(),
                resets_at_ms: None,
                resets_at: None,
            },
        ];
        (c.period_start, states)
    }

    /// Warnings due for a tenant now that were not produced yet this
    /// period (after a restart, the ones whose notification may be missing;
    /// queuing is idempotent).
    pub fn pending_warnings(&self, tenant_id: &str, limits: &PlanLimits, now_ms: i64) -> Vec<Crossing> {
        let mut map = self.lock();
        let c = map.entry(tenant_id.to_string()).or_default();
        c.roll(now_ms);
        crossings(c, limits)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Fails if using `need` more of `quota` would go past it.
fn check(name: &str, quota: Quota, used: f64, need: f64, resets_at_ms: Option<i64>) -> Result<()> {
    let Quota::Limited(limit) = quota else { return Ok(()) };
    if used + need > limit as f64 {
        return Err(CoreError::QuotaExceeded { quota: name.to_string(), limit, used: round3(used), resets_at_ms });
    }
    Ok(())
}

/// Thresholds the counters have reached and that were not warned about
/// yet this period; marks them.
fn crossings(c: &mut Counters, limits: &PlanLimits) -> Vec<Crossing> {
    let values = [
        (EXECUTIONS, limits.executions_per_month, c.executions as f64),
        (CPU_SECONDS, limits.cpu_seconds_per_month, c.cpu_ms / 1000.0),
        (GB_SECONDS, limits.gb_seconds_per_month, c.gb_seconds),
    ];
    let mut out = Vec::new();
    for (quota, q, used) in values {
        let Quota::Limited(limit) = q else { continue };
        if limit == 0 {
            continue;
        }
        for pct in WARN_AT {
            let at = limit as f64 * f64::from(pct) / 100.0;
            if used >= at && c.warned.insert((quota, pct)) {
                out.push(Crossing {
                    quota,
                    percent: pct,
                    used: round3(used),
                    limit,
                    period_start_ms: c.period_start,
                    resets_at_ms: c.period_end,
                });
            }
        }
    }
    out
}

/// One reserved execution. Dropped without [`Reservation::record`], it is
/// given back.
pub struct Reservation {
    quotas: Quotas,
    tenant_id: String,
    period_start: i64,
    sandbox: bool,
    recorded: bool,
}

impl Reservation {
    /// The execution ran and is recorded: add what it used; returns the
    /// warnings it triggers.
    pub fn record(mut self, used: Used, limits: &PlanLimits, now_ms: i64) -> Vec<Crossing> {
        self.recorded = true;
        let mut map = self.quotas.lock();
        let c = map.entry(self.tenant_id.clone()).or_default();
        c.roll(now_ms);
        if c.period_start != self.period_start {
            // Started last month (its record says so too): it counts there,
            // and that period is over.
            return Vec::new();
        }
        c.cpu_ms += used.cpu_ms;
        c.gb_seconds += used.gb_seconds;
        crossings(c, limits)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut map = self.quotas.lock();
        let Some(c) = map.get_mut(&self.tenant_id) else { return };
        if self.sandbox {
            c.sandboxes = c.sandboxes.saturating_sub(1);
        }
        if !self.recorded && c.period_start == self.period_start {
            c.executions = c.executions.saturating_sub(1);
        }
    }
}

/// A persistent sandbox's place; given back when dropped.
pub struct SandboxSlot {
    quotas: Quotas,
    tenant_id: String,
}

impl Drop for SandboxSlot {
    fn drop(&mut self) {
        if let Some(c) = self.quotas.lock().get_mut(&self.tenant_id) {
            c.sandboxes = c.sandboxes.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(execs: u64) -> PlanLimits {
        let mut p = super::super::plans::builtin()["free"].clone();
        p.executions_per_month = Quota::Limited(execs);
        p.concurrent_sandboxes = Quota::Limited(2);
        p
    }

    #[test]
    fn reservations_are_exact_under_contention() {
        let q = Quotas::default();
        q.load(&[TenantUsage { tenant_id: "t".into(), executions: 9, cpu_ms: 0.0, gb_seconds: 0.0 }], 1);
        let limits = plan(10);
        let ok = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20)
                .map(|_| s.spawn(|| q.reserve("t", &limits, false, 1).map(|r| r.record(Used::default(), &limits, 1))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).filter(Result::is_ok).count()
        });
        assert_eq!(ok, 1);
        match q.reserve("t", &limits, false, 1) {
            Err(CoreError::QuotaExceeded { quota, limit, used, resets_at_ms }) => {
                assert_eq!((quota.as_str(), limit, used), (EXECUTIONS, 10, 10.0));
                assert_eq!(resets_at_ms, Some(month_of(1).1));
            }
            other => panic!("expected quota_exceeded, got {:?}", other.err()),
        }
    }

    #[test]
    fn an_unrecorded_reservation_is_given_back() {
        let q = Quotas::default();
        let limits = plan(1);
        drop(q.reserve("t", &limits, true, 1).unwrap());
        let r = q.reserve("t", &limits, true, 1).unwrap();
        r.record(Used::default(), &limits, 1);
        assert!(q.reserve("t", &limits, false, 1).is_err());
    }

    #[test]
    fn concurrent_sandboxes_are_bounded() {
        let q = Quotas::default();
        let limits = plan(100);
        let a = q.reserve_sandbox("t", &limits).unwrap();
        let _b = q.reserve("t", &limits, true, 1).unwrap();
        assert!(matches!(q.reserve_sandbox("t", &limits), Err(CoreError::QuotaExceeded { .. })));
        drop(a);
        q.reserve_sandbox("t", &limits).unwrap();
    }

    #[test]
    fn warnings_fire_once_at_80_and_100_percent() {
        let q = Quotas::default();
        let limits = plan(5);
        let mut seen = Vec::new();
        for _ in 0..5 {
            let r = q.reserve("t", &limits, false, 1).unwrap();
            seen.extend(r.record(Used::default(), &limits, 1).into_iter().map(|c| (c.quota, c.percent)));
        }
        assert_eq!(seen, vec![(EXECUTIONS, 80), (EXECUTIONS, 100)]);
        assert!(q.pending_warnings("t", &limits, 1).is_empty());
    }

    #[test]
    fn a_new_month_starts_from_zero() {
        let q = Quotas::default();
        let limits = plan(1);
        q.reserve("t", &limits, false, 1).unwrap().record(Used::default(), &limits, 1);
        assert!(q.reserve("t", &limits, false, 1).is_err());
        let next = month_of(1).1;
        q.reserve("t", &limits, false, next).unwrap();
    }
}
