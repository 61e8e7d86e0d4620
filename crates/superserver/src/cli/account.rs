//! `superserver whoami` and `superserver plans`.

use superserver_wire::{KeyInfo, PlanList, WhoAmI};

use super::output::{now_ms, print_json, print_table, print_text, until, utc};
use super::tenants::{describe, limit_rows};
use super::ClientOpts;

/// `superserver whoami`: the key in use, its role and its tenant; exit code
/// 0, or 1 after an error.
pub async fn whoami(opts: &ClientOpts) -> anyhow::Result<i32> {
    let result = async {
        let me = opts.client()?.whoami().await?;
        if opts.json {
            return print_json(&serde_json::to_value(&me)?);
        }
        print_text(&whoami_text(&me, now_ms()));
        Ok(())
    };
    Ok(opts.finish(result.await))
}

fn whoami_text(me: &WhoAmI, now: i64) -> String {
    let mut out = format!("key:       {}\n", key_summary(&me.key, now));
    out.push_str(&format!("role:      {}\n", me.key.role));
    out.push_str("tenant:\n");
    for line in describe(&me.tenant, now).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// `key_1 (ssk_ab…, "ci"), expires … UTC (in …)`.
fn key_summary(k: &KeyInfo, now: i64) -> String {
    let mut text = format!("{} ({}…", k.id, k.prefix);
    if let Some(name) = &k.name {
        text.push_str(&format!(", \"{name}\""));
    }
    text.push(')');
    match k.expires_at_ms {
        Some(at) => text.push_str(&format!(", expires {} UTC ({})", utc(at), until(at, now))),
        None => text.push_str(", never expires"),
    }
    text
}

/// `superserver plans`: what each plan grants, one column per plan; exit
/// code 0, or 1 after an error.
pub async fn plans(opts: &ClientOpts) -> anyhow::Result<i32> {
    let result = async {
        let list = opts.client()?.plans().await?;
        if opts.json {
            return print_json(&serde_json::to_value(&list)?);
        }
        let (headers, rows) = plans_table(&list);
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        print_table(&headers, &rows);
        Ok(())
    };
    Ok(opts.finish(result.await))
}

/// Limits down, plans across: a few plans compare best side by side.
fn plans_table(list: &PlanList) -> (Vec<String>, Vec<Vec<String>>) {
    let mut headers = vec!["LIMIT".to_owned()];
    headers.extend(list.plans.keys().map(|name| name.to_uppercase()));
    let columns: Vec<Vec<(&str, String)>> = list.plans.values().map(limit_rows).collect();
    let Some(first) = columns.first() else {
        return (headers, Vec::new());
    };
    let rows = (0..first.len())
        .map(|i| {
            let mut row = vec![first[i].0.to_owned()];
            row.extend(columns.iter().map(|c| c[i].1.clone()));
            row
        })
        .collect();
    (headers, rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use superserver_wire::Quota;

    use super::*;
    use crate::cli::keys::tests::key;
    use crate::cli::tenants::tests::{limits, tenant};

    #[test]
    fn whoami_shows_key_role_and_tenant() {
        let me = WhoAmI { key: key(), tenant: tenant() };
        let text = whoami_text(&me, 61_000);
        assert!(
            text.starts_with(
                "key:       key_1 (ssk_ab…, \"ci\"), expires 1970-01-01 01:00:01 UTC (in 59m0s)\n\
                 role:      member\ntenant:\n  name:      acme\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n  limits:\n    executions per month"), "{text}");
    }

    #[test]
    fn plans_side_by_side() {
        let mut free = limits();
        free.executions_per_month = Quota::Limited(100);
        free.network = false;
        let mut pro = limits();
        pro.executions_per_month = Quota::Unlimited;
        pro.network = true;
        let list = PlanList { plans: BTreeMap::from([("free".into(), free), ("pro".into(), pro)]) };
        let (headers, rows) = plans_table(&list);
        assert_eq!(headers, ["LIMIT", "FREE", "PRO"]);
        assert_eq!(rows[0], ["executions per month", "100", "unlimited"]);
        assert!(rows.contains(&vec!["network".to_owned(), "no".to_owned(), "yes".to_owned()]), "{rows:?}");
        let empty = PlanList { plans: BTreeMap::new() };
        assert!(plans_table(&empty).1.is_empty());
    }
}
