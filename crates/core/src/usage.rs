//! Usage reports, quota state, the billing export and per-tenant metrics.

use std::collections::HashMap;
use std::fmt::Write;

use superserver_store::{UsageGroupBy, UsageRow};
use superserver_wire::{QuotaList, Role, TenantQuotas, UsageGroup, UsageReport, UsageTotals};

use crate::error::{CoreError, Result};
use crate::service::{now_ms, Service};
use crate::tenancy::{plans, Caller, Used};

/// A usage query as the API receives it.
#[derive(Debug, Clone, Default)]
pub struct UsageQuery {
    /// Unix ms, RFC 3339 or `YYYY-MM-DD`; default: the start of this month.
    pub from: Option<String>,
    /// Default: now.
    pub to: Option<String>,
    /// `day` (default), `key`, `sandbox` or `tenant`.
    pub group_by: Option<String>,
    /// Tenant name or id (admins; others may name only their own).
    pub tenant: Option<String>,
}

/// Per-tenant figures for `/metrics`, since the server started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantMetrics {
    pub executions: u64,
    pub cpu_seconds: f64,
    pub gb_seconds: f64,
}

impl Service {
    /// `GET /v1/usage`.
    pub async fn usage(&self, caller: &Caller, q: &UsageQuery) -> Result<UsageReport> {
        caller.require(Role::Viewer, "reading usage")?;
        let (from_ms, to_ms) = self.range(q)?;
        let group_by = match q.group_by.as_deref().unwrap_or("day") {
            "day" => UsageGroupBy::Day,
            "key" => UsageGroupBy::Key,
            "sandbox" => UsageGroupBy::Sandbox,
            "tenant" => UsageGroupBy::Tenant,
            other => {
                return Err(CoreError::InvalidRequest(format!("group_by `{other}`: use day, key, sandbox or tenant")))
            }
        };
        let tenant = self.usage_tenant(caller, q.tenant.as_deref())?;
        let rows = self.inner.store.usage(tenant, from_ms, to_ms, group_by).await?;
        let mut totals = UsageTotals::default();
        let groups = rows
            .iter()
            .map(|r| {
                let t = totals_of(r);
                add(&mut totals, &t);
                UsageGroup {
                    group: r.group.clone(),
                    tenant_id: r.tenant_id.clone(),
                    tenant: self.tenant_name(&r.tenant_id),
                    totals: t,
                }
            })
            .collect();
        Ok(UsageReport { from_ms, to_ms, group_by: q.group_by.clone().unwrap_or_else(|| "day".into()), groups, totals })
    }

    /// `GET /v1/usage?format=csv`.
    pub async fn usage_csv(&self, caller: &Caller, q: &UsageQuery) -> Result<String> {
        let r = self.usage(caller, q).await?;
        let mut out = String::from(
            "group,tenant_id,tenant,executions,wall_seconds,cpu_seconds,gb_seconds,peak_memory_bytes_max,output_bytes\n",
        );
        for g in &r.groups {
            let t = &g.totals;
            let _ = writeln!(
                out,
                "{},{},{},{},{:.3},{:.3},{:.6},{},{}",
                csv(&g.group),
                csv(&g.tenant_id),
                csv(&g.tenant),
                t.executions,
                t.wall_seconds,
                t.cpu_seconds,
                t.gb_seconds,
                t.peak_memory_bytes_max,
                t.output_bytes
            );
        }
        Ok(out)
    }

    /// `GET /v1/usage/export`: meter events a billing system imports, one
    /// row per tenant, meter and UTC day.
    pub async fn usage_export(&self, caller: &Caller, q: &UsageQuery) -> Result<String> {
        caller.require(Role::Owner, "exporting usage")?;
        let (from_ms, to_ms) = self.range(q)?;
        let tenant = self.usage_tenant(caller, q.tenant.as_deref())?;
        let mut rows = Vec::new();
        for t in self.visible_tenant_ids(caller, tenant.as_deref()) {
            rows.extend(self.inner.store.usage(Some(t), from_ms, to_ms, UsageGroupBy::Day).await?);
        }
        let mut out = String::from("tenant_id,tenant,meter,quantity,unit,period_start,period_end\n");
        for r in &rows {
            let start = plans::parse_time(&r.group).map_err(CoreError::Internal)?;
            let (ps, pe) = (plans::rfc3339(start), plans::rfc3339(start + 86_400_000));
            let t = totals_of(r);
            let meters: [(&str, String, &str); 5] = [
                ("executions", t.executions.to_string(), "count"),
                ("cpu_seconds", format!("{:.3}", t.cpu_seconds), "second"),
                ("gb_seconds", format!("{:.6}", t.gb_seconds), "gigabyte_second"),
                ("wall_seconds", format!("{:.3}", t.wall_seconds), "second"),
                ("output_bytes", t.output_bytes.to_string(), "byte"),
            ];
            for (meter, qty, unit) in meters {
                let name = csv(&self.tenant_name(&r.tenant_id));
                let _ = writeln!(out, "{},{name},{meter},{qty},{unit},{ps},{pe}", csv(&r.tenant_id));
            }
        }
        Ok(out)
    }

    /// `GET /v1/quotas`: the caller's tenant, or (admin) one or every tenant.
    pub fn quotas(&self, caller: &Caller, tenant: Option<&str>) -> Result<QuotaList> {
        caller.require(Role::Viewer, "reading quotas")?;
        let tenant = self.usage_tenant(caller, tenant)?;
        let now = now_ms();
        let mut out = Vec::new();
        for t in self.inner.auth.tenants() {
            if !caller.sees(&t.id) || tenant.as_ref().is_some_and(|id| *id != t.id) {
                continue;
            }
            let Some(limits) = &t.limits else { continue };
            let (period_start_ms, quotas) = self.inner.quotas.state(&t.id, limits, now);
            out.push(TenantQuotas {
                tenant_id: t.id.clone(),
                tenant: t.name.clone(),
                plan: t.plan.clone(),
                period_start_ms,
                quotas,
            });
        }
        Ok(QuotaList { tenants: out })
    }

    fn range(&self, q: &UsageQuery) -> Result<(i64, i64)> {
        let now = now_ms();
        let parse = |s: &Option<String>, name: &str, default: i64| -> Result<i64> {
            s.as_deref()
                .map(|v| plans::parse_time(v).map_err(|e| CoreError::InvalidRequest(format!("{name}: {e}"))))
                .transpose()
                .map(|v| v.unwrap_or(default))
        };
        let from = parse(&q.from, "from", plans::month_of(now).0)?;
        let to = parse(&q.to, "to", now + 1)?;
        if from >= to {
            return Err(CoreError::InvalidRequest("`from` must be before `to`".into()));
        }
        Ok((from, to))
    }

    /// The tenant id a usage query is about: `None` for all (admins only).
    fn usage_tenant(&self, caller: &Caller, named: Option<&str>) -> Result<Option<String>> {
        match named {
            Some(t) => {
                let t = self
                    .inner
                    .auth
                    .find_tenant(t)
                    .filter(|e| caller.sees(&e.id))
                    .ok_or_else(|| CoreError::TenantNotFound(t.to_string()))?;
                Ok(Some(t.id.clone()))
            }
            None if caller.is_admin() => Ok(None),
            None => Ok(Some(caller.tenant_id().to_string())),
        }
    }

    fn visible_tenant_ids(&self, caller: &Caller, only: Option<&str>) -> Vec<String> {
        self.inner
            .auth
            .tenants()
            .iter()
            .filter(|t| caller.sees(&t.id) && only.is_none_or(|o| o == t.id))
            .map(|t| t.id.clone())
            .collect()
    }

    pub(crate) fn tenant_name(&self, id: &str) -> String {
        self.inner.auth.tenant(id).map(|t| t.name.clone()).unwrap_or_default()
    }

    /// Adds a recorded execution to the tenant's `/metrics` figures.
    pub(crate) fn tenant_metrics(&self, tenant_id: &str, used: Used) {
        let mut m = self.inner.tenant_metrics.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(tenant_id.to_string()).or_default();
        e.executions += 1;
        e.cpu_seconds += used.cpu_ms / 1000.0;
        e.gb_seconds += used.gb_seconds;
    }

    /// Per-tenant figures for `/metrics`: the `max` tenants with the most
    /// executions by name, the rest summed as `_other` (bounded label
    /// cardinality).
    pub fn tenant_metrics_snapshot(&self) -> Vec<(String, String, TenantMetrics)> {
        let max = self.inner.cfg.tenants.max_metric_tenants;
        let m: HashMap<String, TenantMetrics> =
            self.inner.tenant_metrics.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut v: Vec<(String, TenantMetrics)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.executions.cmp(&a.1.executions).then_with(|| a.0.cmp(&b.0)));
        let mut out: Vec<(String, String, TenantMetrics)> = Vec::new();
        let mut other = TenantMetrics::default();
        for (i, (id, t)) in v.into_iter().enumerate() {
            if i < max {
                out.push((id.clone(), self.tenant_name(&id), t));
            } else {
                other.executions += t.executions;
                other.cpu_seconds += t.cpu_seconds;
                other.gb_seconds += t.gb_seconds;
            }
        }
        if other.executions > 0 {
            out.push(("_other".into(), "_other".into(), other));
        }
        out
    }

    /// Requests refused per reason, for `/metrics`.
    pub fn count_refusal(&self, reason: &'static str) {
        let mut m = self.inner.refusals.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason).or_default() += 1;
    }

    pub fn refusals(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> =
            self.inner.refusals.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, *v)).collect();
        v.sort();
        v
    }
}

fn totals_of(r: &UsageRow) -> UsageTotals {
    UsageTotals {
        executions: r.executions,
        wall_seconds: r.wall_ms / 1000.0,
        cpu_seconds: r.cpu_ms / 1000.0,
        gb_seconds: r.gb_seconds,
        peak_memory_bytes_max: r.peak_memory_bytes_max,
        output_bytes: r.output_bytes,
    }
}

fn add(acc: &mut UsageTotals, t: &UsageTotals) {
    acc.executions += t.executions;
    acc.wall_seconds += t.wall_seconds;
    acc.cpu_seconds += t.cpu_seconds;
    acc.gb_seconds += t.gb_seconds;
    acc.peak_memory_bytes_max = acc.peak_memory_bytes_max.max(t.peak_memory_bytes_max);
    acc.output_bytes += t.output_bytes;
}

/// A CSV field: quoted when it holds a comma, quote or line break; a
/// leading `= + - @` is prefixed with `'` so spreadsheets do not run it.
fn csv(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv("acme"), "acme");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("=cmd()"), "'=cmd()");
    }
}
