//! Usage: sums over the executions table, which records every command's
//! tenant, key, sandbox, times and resources in the commit that answers it.

use rusqlite::params;

use crate::error::Result;
use crate::records::{count_from_sql, query_all};
use crate::store::Store;

/// How usage rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroupBy {
    /// UTC day, `YYYY-MM-DD`.
    Day,
    Key,
    Sandbox,
    Tenant,
}

/// Usage of one group of executions.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The day, key id (`""` for none), sandbox id or tenant id.
    pub group: String,
    pub tenant_id: String,
    pub executions: u64,
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub gb_seconds: f64,
    pub peak_memory_bytes_max: u64,
    pub output_bytes: u64,
}

/// One tenant's usage in a period, for quota accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantUsage {
    pub tenant_id: String,
    pub executions: u64,
    pub cpu_ms: f64,
    pub gb_seconds: f64,
}

const SUMS: &str = "count(*), coalesce(sum(duration_ms), 0.0), coalesce(sum(cpu_ms), 0.0), \
     coalesce(sum(gb_seconds), 0.0), coalesce(max(peak_memory_bytes), 0), \
     coalesce(sum(stdout_bytes + stderr_bytes), 0)";

impl Store {
    /// Usage of executions started in `[from_ms, to_ms)`, of one tenant or
    /// all, grouped (tenant and group ascending).
    pub async fn usage(
        &self,
        tenant_id: Option<String>,
        from_ms: i64,
        to_ms: i64,
        group_by: UsageGroupBy,
    ) -> Result<Vec<UsageRow>> {
        let group = match group_by {
            UsageGroupBy::Day => "strftime('%Y-%m-%d', started_at_ms / 1000, 'unixepoch')",
            UsageGroupBy::Key => "coalesce(key_id, '')",
            UsageGroupBy::Sandbox => "sandbox_id",
            UsageGroupBy::Tenant => "tenant_id",
        };
        let filter = if tenant_id.is_some() {
            "tenant_id = ?3 AND started_at_ms >= ?1 AND started_at_ms < ?2"
        } else {
            "started_at_ms >= ?1 AND started_at_ms < ?2 AND ?3 IS NULL"
        };
        let sql = format!(
            "SELECT {group} AS g, tenant_id, {SUMS} FROM executions WHERE {filter}
             GROUP BY tenant_id, g ORDER BY tenant_id, g"
        );
        self.read(move |c| {
            query_all(c, &sql, params![from_ms, to_ms, tenant_id], |r| {
                Ok(UsageRow {
                    group: r.get(0)?,
                    tenant_id: r.get(1)?,
                    executions: count_from_sql(r, 2, "executions")?,
                    wall_ms: r.get(3)?,
                    cpu_ms: r.get(4)?,
                    gb_seconds: r.get(5)?,
                    peak_memory_bytes_max: count_from_sql(r, 6, "peak memory")?,
                    output_bytes: count_from_sql(r, 7, "output bytes")?,
                })
            })
        })
        .await
    }

    /// Every tenant's executions, CPU and GB-seconds since `from_ms`: where
    /// quota accounting starts after a restart.
    pub async fn usage_since(&self, from_ms: i64) -> Result<Vec<TenantUsage>> {
        self.read(move |c| {
            query_all(
                c,
                "SELECT tenant_id, count(*), coalesce(sum(cpu_ms), 0.0), coalesce(sum(gb_seconds), 0.0)
                 FROM executions WHERE started_at_ms >= ?1 GROUP BY tenant_id",
                [from_ms],
                |r| {
                    Ok(TenantUsage {
                        tenant_id: r.get(0)?,
                        executions: count_from_sql(r, 1, "executions")?,
                        cpu_ms: r.get(2)?,
                        gb_seconds: r.get(3)?,
                    })
                },
            )
        })
        .await
    }
}
