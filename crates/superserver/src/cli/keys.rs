//! `superserver keys …`: create, list and revoke API keys.

use superserver_wire::{CreateKeyRequest, CreatedKey, KeyInfo, Role};

use super::expiry::{parse_expiry, Expiry};
use super::output::{age, now_ms, print_json, print_table, print_text, until, utc};
use super::ClientOpts;

/// What a new key may do.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleArg {
    /// Everything, in every tenant.
    Admin,
    /// Everything in its tenant: keys, usage, sandboxes.
    Owner,
    /// Run commands and manage sandboxes.
    Member,
    /// Read only.
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Owner => Role::Owner,
            RoleArg::Member => Role::Member,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// Subcommands of `superserver keys`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum KeysCmd {
    /// Create an API key. The key is printed once on stdout; store it then.
    Create {
        /// Tenant name or id the key belongs to.
        #[arg(long)]
        tenant: String,
        /// What the key may do (default: member).
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// A label for people: what the key is for.
        #[arg(long, value_name = "LABEL")]
        name: Option<String>,
        /// When the key stops working: a duration from now (30d, 12h, 90m,
        /// 3600s) or a time (2026-12-31 for midnight UTC, or RFC 3339).
        #[arg(long, value_name = "DURATION|TIME", value_parser = parse_expiry)]
        expires: Option<Expiry>,
    },
    /// List API keys (never their secrets).
    #[command(visible_alias = "list")]
    Ls {
        /// Only this tenant's keys (name or id).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke an API key: it stops working at once.
    #[command(visible_alias = "rm")]
    Revoke {
        /// Key id (`key_…`, see `superserver keys ls`).
        id: String,
    },
}

/// Runs a `keys` subcommand; exit code 0, or 1 after an error.
pub async fn keys(opts: &ClientOpts, cmd: KeysCmd) -> anyhow::Result<i32> {
    Ok(opts.finish(dispatch(opts, cmd).await))
}

async fn dispatch(opts: &ClientOpts, cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Create { tenant, role, name, expires } => {
            let expires_at_ms = expires.map(|e| e.at_ms(now_ms())).transpose().map_err(anyhow::Error::msg)?;
            let req = CreateKeyRequest { tenant: Some(tenant), role: role.map(Role::from), name, expires_at_ms };
            let created = opts.client()?.create_key(&req).await?;
            if opts.json {
                return print_json(&serde_json::to_value(&created)?);
            }
            let (before, key, after) = created_text(&created);
            eprint!("{before}");
            print_text(&key);
            eprint!("{after}");
        }
        KeysCmd::Ls { tenant } => {
            let list = opts.client()?.list_keys(tenant.as_deref()).await?;
            if opts.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            let now = now_ms();
            let rows: Vec<_> = list.keys.iter().map(|k| key_row(k, now)).collect();
            print_table(&["ID", "PREFIX", "TENANT", "ROLE", "NAME", "STATE", "AGE", "EXPIRES", "LAST USED"], &rows);
        }
        KeysCmd::Revoke { id } => {
            let info = opts.client()?.revoke_key(&id).await?;
            if opts.json {
                return print_json(&serde_json::to_value(&info)?);
            }
            print_text(&format!(
                "revoked key {} ({}…, tenant {}, role {})\n",
                info.id, info.prefix, info.tenant, info.role
            ));
        }
    }
    Ok(())
}

/// The new key's report: a summary for stderr, the key alone for stdout (so
/// `KEY=$(superserver keys create …)` works), and the warning for stderr.
fn created_text(c: &CreatedKey) -> (String, String, String) {
    let k = &c.info;
    let mut about = vec![format!("role {}", k.role)];
    if let Some(name) = &k.name {
        about.push(format!("\"{name}\""));
    }
    about.push(match k.expires_at_ms {
        Some(at) => format!("expires {} UTC", utc(at)),
        None => "never expires".into(),
    });
    let before = format!("Created API key {} for tenant {} ({}):\n\n", k.id, k.tenant, about.join(", "));
    let after = "\nStore this key now: it will not be shown again (the server keeps only its hash).\n".to_owned();
    (before, format!("{}\n", c.key), after)
}

fn key_state(k: &KeyInfo, now: i64) -> &'static str {
    if k.revoked_at_ms.is_some() {
        "revoked"
    } else if k.expires_at_ms.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    }
}

fn key_row(k: &KeyInfo, now: i64) -> Vec<String> {
    let expires = match k.expires_at_ms {
        _ if k.revoked_at_ms.is_some() => "-".into(),
        Some(at) if at > now => until(at, now),
        Some(at) => utc(at),
        None => "never".into(),
    };
    vec![
        k.id.clone(),
        format!("{}…", k.prefix),
        k.tenant.clone(),
        k.role.to_string(),
        k.name.clone().unwrap_or_else(|| "-".into()),
        key_state(k, now).into(),
        age(k.created_at_ms, now),
        expires,
        k.last_used_at_ms.map_or_else(|| "never".into(), |at| format!("{} ago", age(at, now))),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key() -> KeyInfo {
        KeyInfo {
            id: "key_1".into(),
            prefix: "ssk_ab".into(),
            tenant_id: "tn_1".into(),
            tenant: "acme".into(),
            role: Role::Member,
            name: Some("ci".into()),
            created_at_ms: 1_000,
            expires_at_ms: Some(3_601_000),
            last_used_at_ms: None,
            revoked_at_ms: None,
        }
    }

    #[test]
    fn rows_show_state_expiry_and_last_use() {
        let mut k = key();
        assert_eq!(
            key_row(&k, 61_000),
            ["key_1", "ssk_ab…", "acme", "member", "ci", "active", "1m0s", "in 59m0s", "never"]
        );
        k.last_used_at_ms = Some(31_000);
        assert_eq!(key_row(&k, 61_000)[8], "30s ago");
        assert_eq!(key_row(&k, 3_601_000)[5], "expired");
        assert_eq!(key_row(&k, 3_601_000)[7], "1970-01-01 01:00:01");
        k.revoked_at_ms = Some(2_000);
        k.name = None;
        let row = key_row(&k, 61_000);
        assert_eq!((row[4].as_str(), row[5].as_str(), row[7].as_str()), ("-", "revoked", "-"));
        k.revoked_at_ms = None;
        k.expires_at_ms = None;
        assert_eq!(key_row(&k, 61_000)[7], "never");
    }

    #[test]
    fn created_key_is_alone_on_stdout_with_a_warning() {
        let created = CreatedKey { key: "ssk_secret".into(), info: key() };
        let (before, out, after) = created_text(&created);
        assert_eq!(out, "ssk_secret\n");
        assert_eq!(
            before,
            "Created API key key_1 for tenant acme (role member, \"ci\", expires 1970-01-01 01:00:01 UTC):\n\n"
        );
        assert!(after.contains("will not be shown again"), "{after}");
        assert!(!before.contains("ssk_secret") && !after.contains("ssk_secret"));
    }

    #[test]
    fn created_key_json_has_the_key_field() {
        let v = serde_json::to_value(CreatedKey { key: "ssk_secret".into(), info: key() }).expect("json");
        assert_eq!(v["key"], "ssk_secret");
        assert_eq!(v["id"], "key_1");
    }
}
