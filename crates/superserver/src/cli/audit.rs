//! `superserver audit`: the newest entries of the admin audit log.

use superserver_wire::{AuditEntry, AuditList};

use super::output::{print_json, print_table, utc};
use super::ClientOpts;

/// Details longer than this are cut in the table (`--json` has them whole).
const DETAILS_MAX: usize = 80;

/// Prints the audit log (a table, or JSON with `--json`); exit code 0, or 1
/// after an error.
pub async fn audit(opts: &ClientOpts, limit: Option<u32>) -> anyhow::Result<i32> {
    let result = async {
        let list = opts.client()?.audit(limit).await?;
        if opts.json {
            return print_json(&serde_json::to_value(&list)?);
        }
        print_table(&["ID", "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "FROM", "DETAILS"], &rows(&list));
        Ok(())
    };
    Ok(opts.finish(result.await))
}

fn rows(list: &AuditList) -> Vec<Vec<String>> {
    list.entries.iter().map(row).collect()
}

fn row(e: &AuditEntry) -> Vec<String> {
    let actor = match (&e.actor_key_id, &e.actor_tenant) {
        (Some(key), Some(tenant)) => format!("{key} ({tenant})"),
        (Some(key), None) => key.clone(),
        (None, _) => "server".into(),
    };
    let details = match &e.details {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(map) if map.is_empty() => String::new(),
        other => shorten(&other.to_string(), DETAILS_MAX),
    };
    vec![
        e.id.to_string(),
        utc(e.at_ms),
        actor,
        e.action.clone(),
        e.target.clone(),
        e.remote_addr.clone().unwrap_or_else(|| "-".into()),
        details,
    ]
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_actor_and_details() {
        let entry = AuditEntry {
            id: 7,
            at_ms: 1_000,
            actor_key_id: Some("key_1".into()),
            actor_tenant: Some("root".into()),
            remote_addr: Some("127.0.0.1".into()),
            action: "tenant.create".into(),
            target: "acme".into(),
            details: serde_json::json!({"plan": "pro"}),
        };
        assert_eq!(
            row(&entry),
            ["7", "1970-01-01 00:00:01", "key_1 (root)", "tenant.create", "acme", "127.0.0.1", r#"{"plan":"pro"}"#]
        );
        let boot = AuditEntry {
            actor_key_id: None,
            actor_tenant: None,
            remote_addr: None,
            details: serde_json::Value::Null,
            ..entry
        };
        let r = row(&boot);
        assert_eq!((r[2].as_str(), r[5].as_str(), r[6].as_str()), ("server", "-", ""));
    }

    #[test]
    fn long_details_are_cut() {
        let text = "x".repeat(200);
        let short = shorten(&text, 10);
        assert_eq!(short.chars().count(), 10);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("abc", 10), "abc");
    }
}
