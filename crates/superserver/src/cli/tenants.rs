//! `superserver tenants …`: create, list, show, re-plan, suspend and resume
//! tenants (admin keys only).

use std::time::Duration;

use superserver_wire::{CreateTenantRequest, PlanLimits, PlanOverrides, TenantInfo, UpdateTenantRequest};

use super::output::{age, human_duration, now_ms, number, print_json, print_table, print_text, utc};
use super::ClientOpts;

/// Subcommands of `superserver tenants`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum TenantsCmd {
    /// Create a tenant.
    Create {
        /// Unique name: 1–64 of a-z 0-9 - _ . starting with a letter or digit.
        name: String,
        /// Plan (default: the server's `tenants.default_plan`); see `superserver plans`.
        #[arg(long)]
        plan: Option<String>,
        /// Where quota warnings are e-mailed.
        #[arg(long)]
        email: Option<String>,
    },
    /// List tenants.
    #[command(visible_alias = "list")]
    Ls,
    /// Show a tenant: plan, state and the limits it gets.
    #[command(visible_alias = "get")]
    Show {
        /// Tenant name or id.
        tenant: String,
    },
    /// Move a tenant to another plan.
    SetPlan {
        /// Tenant name or id.
        tenant: String,
        /// The new plan; see `superserver plans`.
        plan: String,
    },
    /// Suspend a tenant: its keys are refused until it is resumed.
    Suspend {
        /// Tenant name or id.
        tenant: String,
    },
    /// Resume a suspended tenant.
    Resume {
        /// Tenant name or id.
        tenant: String,
    },
}

/// Runs a `tenants` subcommand; exit code 0, or 1 after an error.
pub async fn tenants(opts: &ClientOpts, cmd: TenantsCmd) -> anyhow::Result<i32> {
    Ok(opts.finish(dispatch(opts, cmd).await))
}

async fn dispatch(opts: &ClientOpts, cmd: TenantsCmd) -> anyhow::Result<()> {
    let client = opts.client()?;
    let (info, done) = match cmd {
        TenantsCmd::Create { name, plan, email } => {
            let req = CreateTenantRequest { name, plan, email, overrides: None };
            (client.create_tenant(&req).await?, "created")
        }
        TenantsCmd::Ls => {
            let list = client.list_tenants().await?;
            if opts.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            let now = now_ms();
            let rows: Vec<_> = list.tenants.iter().map(|t| tenant_row(t, now)).collect();
            print_table(&["NAME", "ID", "PLAN", "STATE", "EMAIL", "AGE"], &rows);
            return Ok(());
        }
        TenantsCmd::Show { tenant } => {
            let info = client.get_tenant(&tenant).await?;
            if opts.json {
                return print_json(&serde_json::to_value(&info)?);
            }
            print_text(&describe(&info, now_ms()));
            return Ok(());
        }
        TenantsCmd::SetPlan { tenant, plan } => {
            let req = UpdateTenantRequest { plan: Some(plan), ..Default::default() };
            (client.update_tenant(&tenant, &req).await?, "moved")
        }
        TenantsCmd::Suspend { tenant } => (client.suspend_tenant(&tenant).await?, "suspended"),
        TenantsCmd::Resume { tenant } => (client.resume_tenant(&tenant).await?, "resumed"),
    };
    if opts.json {
        return print_json(&serde_json::to_value(&info)?);
    }
    print_text(&format!("{done} tenant {} ({}): plan {}, {}\n", info.name, info.id, info.plan, state(&info)));
    Ok(())
}

fn state(t: &TenantInfo) -> &'static str {
    if t.suspended {
        "suspended"
    } else {
        "active"
    }
}

fn tenant_row(t: &TenantInfo, now: i64) -> Vec<String> {
    vec![
        t.name.clone(),
        t.id.clone(),
        t.plan.clone(),
        state(t).into(),
        t.email.clone().unwrap_or_else(|| "-".into()),
        age(t.created_at_ms, now),
    ]
}

/// `key: value` lines for `tenants show` and `whoami`, then the limits.
pub(crate) fn describe(t: &TenantInfo, now: i64) -> String {
    let mut lines =
        vec![("name", t.name.clone()), ("id", t.id.clone()), ("plan", t.plan.clone()), ("state", state(t).into())];
    if let Some(email) = &t.email {
        lines.push(("email", email.clone()));
    }
    lines.push(("created", format!("{} UTC ({} ago)", utc(t.created_at_ms), age(t.created_at_ms, now))));
    if !t.overrides.is_empty() {
        lines.push(("overrides", overrides_text(&t.overrides)));
    }
    let mut text: String = lines.into_iter().map(|(k, v)| format!("{:<11}{v}\n", format!("{k}:"))).collect();
    text.push_str("limits:\n");
    let limits = limit_rows(&t.limits);
    let width = limits.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in limits {
        text.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    text
}

/// `max_memory_mb=1024, network=true`, in the wire's field names.
fn overrides_text(o: &PlanOverrides) -> String {
    match serde_json::to_value(o) {
        Ok(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// What a plan grants, one `(label, value)` per limit.
pub(crate) fn limit_rows(l: &PlanLimits) -> Vec<(&'static str, String)> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let secs = |s: u64| human_duration(Duration::from_secs(s));
    vec![
        ("executions per month", l.executions_per_month.to_string()),
        ("CPU seconds per month", l.cpu_seconds_per_month.to_string()),
        ("GB-seconds per month", l.gb_seconds_per_month.to_string()),
        ("concurrent sandboxes", l.concurrent_sandboxes.to_string()),
        ("max memory", format!("{} MiB", l.max_memory_mb)),
        ("max timeout", secs(l.max_timeout_seconds)),
        ("persistent sandboxes", yes_no(l.persistent_sandboxes)),
        ("max TTL", secs(l.max_ttl_seconds)),
        ("network", yes_no(l.network)),
        ("dashboard", yes_no(l.dashboard)),
        ("requests per second", number(l.requests_per_second)),
        ("request burst", l.request_burst.to_string()),
        ("priority", l.priority.to_string()),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use superserver_wire::Quota;

    use super::*;

    pub(crate) fn limits() -> PlanLimits {
        PlanLimits {
            executions_per_month: Quota::Limited(1000),
            cpu_seconds_per_month: Quota::Unlimited,
            gb_seconds_per_month: Quota::Limited(500),
            max_memory_mb: 512,
            concurrent_sandboxes: Quota::Limited(4),
            max_timeout_seconds: 600,
            persistent_sandboxes: true,
            max_ttl_seconds: 86_400,
            network: false,
            dashboard: true,
            requests_per_second: 2.5,
            request_burst: 20,
            priority: 1,
        }
    }

    pub(crate) fn tenant() -> TenantInfo {
        TenantInfo {
            id: "tn_1".into(),
            name: "acme".into(),
            plan: "pro".into(),
            email: Some("ops@acme.test".into()),
            overrides: PlanOverrides { max_memory_mb: Some(1024), network: Some(true), ..Default::default() },
            limits: limits(),
            suspended: false,
            created_at_ms: 1_000,
            default_network: None,
        }
    }

    #[test]
    fn rows_show_state_and_missing_email() {
        let mut t = tenant();
        assert_eq!(tenant_row(&t, 61_000), ["acme", "tn_1", "pro", "active", "ops@acme.test", "1m0s"]);
        t.suspended = true;
        t.email = None;
        assert_eq!(tenant_row(&t, 61_000), ["acme", "tn_1", "pro", "suspended", "-", "1m0s"]);
    }

    #[test]
    fn describe_lists_fields_overrides_and_limits() {
        let text = describe(&tenant(), 61_000);
        assert!(text.starts_with("name:      acme\nid:        tn_1\nplan:      pro\nstate:     active\n"), "{text}");
        assert!(text.contains("created:   1970-01-01 00:00:01 UTC (1m0s ago)\n"), "{text}");
        assert!(text.contains("overrides: max_memory_mb=1024, network=true\n"), "{text}");
        assert!(text.contains("\nlimits:\n  executions per month   1000\n"), "{text}");
        assert!(text.contains("  CPU seconds per month  unlimited\n"), "{text}");
        assert!(text.contains("  max timeout            10m0s\n"), "{text}");
        assert!(text.contains("  requests per second    2.5\n"), "{text}");
    }
}
