//! `superserver usage [export]` and `superserver quotas`: what tenants used
//! and how much of their plan is left.

use superserver_client::UsageQuery;
use superserver_wire::{QuotaList, UsageReport, UsageTotals};

use super::output::{human_bytes, now_ms, number, print_json, print_table, print_text, until, utc};
use super::ClientOpts;

const TIME_HELP: &str = "unix milliseconds, RFC 3339 or YYYY-MM-DD";

/// Options of `superserver usage`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct UsageArgs {
    /// Start, inclusive (default: the start of this month, UTC).
    #[arg(long, value_name = "TIME", long_help = format!("Start, inclusive: {TIME_HELP} (default: the start of this month, UTC)."))]
    pub from: Option<String>,
    /// End, exclusive (default: now).
    #[arg(long, value_name = "TIME", long_help = format!("End, exclusive: {TIME_HELP} (default: now)."))]
    pub to: Option<String>,
    /// How to group the totals.
    #[arg(long, value_name = "GROUP", value_parser = ["day", "key", "sandbox", "tenant"])]
    pub group_by: Option<String>,
    /// Tenant name or id (admin keys; default: the key's own tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the report as CSV.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
}

/// Subcommands of `superserver usage`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum UsageCmd {
    /// Print usage as meter events for a billing system: CSV, one row per tenant, meter and UTC day.
    Export {
        /// Start, inclusive: unix milliseconds, RFC 3339 or YYYY-MM-DD.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End, exclusive, in the same forms.
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Tenant name or id (admin keys; default: the key's own tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// `superserver usage` (a table, `--json` or `--csv`) or `usage export`
/// (CSV); exit code 0, or 1 after an error.
pub async fn usage(opts: &ClientOpts, args: UsageArgs, cmd: Option<UsageCmd>) -> anyhow::Result<i32> {
    Ok(opts.finish(run_usage(opts, args, cmd).await))
}

async fn run_usage(opts: &ClientOpts, args: UsageArgs, cmd: Option<UsageCmd>) -> anyhow::Result<()> {
    let client = opts.client()?;
    if let Some(UsageCmd::Export { from, to, tenant }) = cmd {
        let csv = client.usage_export(from.as_deref(), to.as_deref(), tenant.as_deref()).await?;
        print_text(&csv);
        return Ok(());
    }
    let query = UsageQuery { from: args.from, to: args.to, group_by: args.group_by, tenant: args.tenant };
    if args.csv {
        print_text(&client.usage_csv(&query).await?);
        return Ok(());
    }
    let report = client.usage(&query).await?;
    if opts.json {
        return print_json(&serde_json::to_value(&report)?);
    }
    print_text(&format!("Usage from {} to {} UTC, by {}\n", utc(report.from_ms), utc(report.to_ms), report.group_by));
    let (headers, rows) = usage_table(&report);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print_table(&headers, &rows);
    Ok(())
}

fn usage_table(r: &UsageReport) -> (Vec<String>, Vec<Vec<String>>) {
    let mut headers = vec![r.group_by.to_uppercase()];
    let by_tenant = r.group_by == "tenant";
    if !by_tenant {
        headers.push("TENANT".into());
    }
    headers.extend(["EXECUTIONS", "WALL S", "CPU S", "GB-S", "PEAK MEMORY", "OUTPUT"].map(String::from));
    let mut rows: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| {
            let mut row = vec![if by_tenant { g.tenant.clone() } else { g.group.clone() }];
            if !by_tenant {
                row.push(g.tenant.clone());
            }
            row.extend(totals_cells(&g.totals));
            row
        })
        .collect();
    let mut total = vec!["TOTAL".to_owned()];
    if !by_tenant {
        total.push(String::new());
    }
    total.extend(totals_cells(&r.totals));
    rows.push(total);
    (headers, rows)
}

fn totals_cells(t: &UsageTotals) -> Vec<String> {
    vec![
        t.executions.to_string(),
        number(t.wall_seconds),
        number(t.cpu_seconds),
        number(t.gb_seconds),
        human_bytes(t.peak_memory_bytes_max),
        human_bytes(t.output_bytes),
    ]
}

/// `superserver quotas`: each quota's use in the current period; exit code 0,
/// or 1 after an error.
pub async fn quotas(opts: &ClientOpts, tenant: Option<String>) -> anyhow::Result<i32> {
    let result = async {
        let list = opts.client()?.quotas(tenant.as_deref()).await?;
        if opts.json {
            return print_json(&serde_json::to_value(&list)?);
        }
        print_table(&["TENANT", "PLAN", "QUOTA", "USED", "LIMIT", "USE", "RESETS"], &quota_rows(&list, now_ms()));
        Ok(())
    };
    Ok(opts.finish(result.await))
}

fn quota_rows(list: &QuotaList, now: i64) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for t in &list.tenants {
        for q in &t.quotas {
            let share = match q.limit {
                Some(0) => "-".to_owned(),
                Some(limit) => format!("{:.0}%", q.used * 100.0 / limit as f64),
                None => "-".to_owned(),
            };
            rows.push(vec![
                t.tenant.clone(),
                t.plan.clone(),
                q.quota.clone(),
                number(q.used),
                q.limit.map_or_else(|| "unlimited".into(), |l| l.to_string()),
                share,
                q.resets_at_ms.map_or_else(|| "-".into(), |at| until(at, now)),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use superserver_wire::{QuotaState, TenantQuotas, UsageGroup};

    use super::*;

    fn totals(executions: u64) -> UsageTotals {
        UsageTotals {
            executions,
            wall_seconds: 12.5,
            cpu_seconds: 0.25,
            gb_seconds: 3.0,
            peak_memory_bytes_max: 64 << 20,
            output_bytes: 2048,
        }
    }

    fn report(group_by: &str) -> UsageReport {
        UsageReport {
            from_ms: 0,
            to_ms: 86_400_000,
            group_by: group_by.into(),
            groups: vec![UsageGroup {
                group: "2026-11-23".into(),
                tenant_id: "tn_1".into(),
                tenant: "acme".into(),
                totals: totals(3),
            }],
            totals: totals(3),
        }
    }

    #[test]
    fn usage_table_has_a_total_row() {
        let (headers, rows) = usage_table(&report("day"));
        assert_eq!(headers, ["DAY", "TENANT", "EXECUTIONS", "WALL S", "CPU S", "GB-S", "PEAK MEMORY", "OUTPUT"]);
        assert_eq!(rows[0], ["2026-11-23", "acme", "3", "12.5", "0.25", "3", "64.0 MiB", "2.0 KiB"]);
        assert_eq!(rows[1][..3], ["TOTAL", "", "3"]);
        let (headers, rows) = usage_table(&report("tenant"));
        assert_eq!(headers[..2], ["TENANT", "EXECUTIONS"]);
        assert_eq!(rows[0][..2], ["acme", "3"]);
    }

    #[test]
    fn quota_rows_show_share_and_reset() {
        let list = QuotaList {
            tenants: vec![TenantQuotas {
                tenant_id: "tn_1".into(),
                tenant: "acme".into(),
                plan: "free".into(),
                period_start_ms: 0,
                quotas: vec![
                    QuotaState {
                        quota: "executions".into(),
                        used: 250.0,
                        limit: Some(1000),
                        resets_at_ms: Some(3_661_000),
                        resets_at: None,
                    },
                    QuotaState {
                        quota: "concurrent_sandboxes".into(),
                        used: 1.0,
                        limit: None,
                        resets_at_ms: None,
                        resets_at: None,
                    },
                ],
            }],
        };
        let rows = quota_rows(&list, 61_000);
        assert_eq!(rows[0], ["acme", "free", "executions", "250", "1000", "25%", "in 1h0m"]);
        assert_eq!(rows[1], ["acme", "free", "concurrent_sandboxes", "1", "unlimited", "-", "-"]);
    }
}
