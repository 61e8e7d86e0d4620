//! Custody secrets (sealed values and where they may go) and which
//! sandboxes held them. Every change commits together with its audit entry.

use rusqlite::{params, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::records::{limit_to_sql, query_all};
use crate::store::Store;
use crate::tenants::{insert_audit, AuditRecord};

/// A custody secret as recorded: its value only sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub tenant_id: String,
    pub name: String,
    /// nonce || ciphertext || tag.
    pub sealed: Vec<u8>,
    /// Which key sealed it.
    pub key_id: String,
    pub hosts: Vec<String>,
    pub header: Option<String>,
    pub template: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub updated_by: Option<String>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .field("key_id", &self.key_id)
            .field("hosts", &self.hosts)
            .field("header", &self.header)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// A sandbox that held a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    pub sandbox_id: String,
    pub at_ms: i64,
    /// The sandbox's state (`running`, `destroyed`, …), if it is recorded.
    pub state: Option<String>,
    pub kind: Option<String>,
}

const COLUMNS: &str =
    "tenant_id, name, sealed, key_id, hosts_json, header, template, created_at_ms, updated_at_ms, updated_by";

fn row(r: &Row<'_>) -> Result<SecretRecord> {
    let hosts: String = r.get(4)?;
    let name: String = r.get(1)?;
    Ok(SecretRecord {
        tenant_id: r.get(0)?,
        sealed: r.get(2)?,
        key_id: r.get(3)?,
        hosts: serde_json::from_str(&hosts)
            .map_err(|e| StoreError::Corrupt(format!("secrets.hosts_json of {name}: {e}")))?,
        name,
        header: r.get(5)?,
        template: r.get(6)?,
        created_at_ms: r.get(7)?,
        updated_at_ms: r.get(8)?,
        updated_by: r.get(9)?,
    })
}

impl Store {
    /// Creates or replaces a secret (keeping its creation time); returns
    /// whether it is new.
    pub async fn put_secret(&self, rec: SecretRecord, audit: AuditRecord) -> Result<bool> {
        self.write(move |c| {
            let hosts = serde_json::to_string(&rec.hosts).unwrap_or_else(|_| "[]".into());
            let existed: Option<i64> = c
                .prepare_cached("SELECT created_at_ms FROM secrets WHERE tenant_id = ?1 AND name = ?2")?
                .query_row(params![rec.tenant_id, rec.name], |r| r.get(0))
                .optional()?;
            c.prepare_cached(
                "INSERT INTO secrets (tenant_id, name, sealed, key_id, hosts_json, header, template,
                   created_at_ms, updated_at_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id,
                   hosts_json = excluded.hosts_json, header = excluded.header, template = excluded.template,
                   updated_at_ms = excluded.updated_at_ms, updated_by = excluded.updated_by",
            )?
            .execute(params![
                rec.tenant_id,
                rec.name,
                rec.sealed,
                rec.key_id,
                hosts,
                rec.header,
                rec.template,
                existed.unwrap_or(rec.created_at_ms),
                rec.updated_at_ms,
                rec.updated_by,
            ])?;
            insert_audit(c, &audit)?;
            Ok(existed.is_none())
        })
        .await
    }

    pub async fn get_secret(&self, tenant_id: &str, name: &str) -> Result<Option<SecretRecord>> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM secrets WHERE tenant_id = ?1 AND name = ?2"))?
                .query_row(params![tenant_id, name], |r| Ok(row(r)))
                .optional()?
                .transpose()
        })
        .await
    }

    /// A tenant's secrets (every tenant's with `None`), by tenant and name.
    pub async fn list_secrets(&self, tenant_id: Option<String>) -> Result<Vec<SecretRecord>> {
        self.read(move |c| {
            query_all(
                c,
                &format!("SELECT {COLUMNS} FROM secrets WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY tenant_id, name"),
                params![tenant_id],
                row,
            )
        })
        .await
    }

    /// Removes a secret; returns whether there was one.
    pub async fn delete_secret(&self, tenant_id: &str, name: &str, audit: AuditRecord) -> Result<bool> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM secrets WHERE tenant_id = ?1 AND name = ?2")?
                .execute(params![tenant_id, name])?;
            if n > 0 {
                insert_audit(c, &audit)?;
            }
            Ok(n > 0)
        })
        .await
    }

    /// Records which secrets a sandbox holds.
    pub async fn record_sandbox_secrets(
        &self,
        sandbox_id: &str,
        tenant_id: &str,
        names: Vec<String>,
        at_ms: i64,
    ) -> Result<()> {
        let (sandbox_id, tenant_id) = (sandbox_id.to_string(), tenant_id.to_string());
        self.write(move |c| {
            let mut st = c.prepare_cached(
                "INSERT OR IGNORE INTO sandbox_secrets (sandbox_id, tenant_id, name, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for n in &names {
                st.execute(params![sandbox_id, tenant_id, n, at_ms])?;
            }
            Ok(())
        })
        .await
    }

    /// The sandboxes that held a tenant's secret, newest first.
    pub async fn secret_uses(&self, tenant_id: &str, name: &str, limit: usize) -> Result<Vec<SecretUse>> {
        let (tenant_id, name) = (tenant_id.to_string(), name.to_string());
        self.read(move |c| {
            query_all(
                c,
                "SELECT u.sandbox_id, u.at_ms, s.state, s.kind FROM sandbox_secrets u
                   LEFT JOIN sandboxes s ON s.id = u.sandbox_id
                 WHERE u.tenant_id = ?1 AND u.name = ?2 ORDER BY u.at_ms DESC LIMIT ?3",
                params![tenant_id, name, limit_to_sql(limit)],
                |r| Ok(SecretUse { sandbox_id: r.get(0)?, at_ms: r.get(1)?, state: r.get(2)?, kind: r.get(3)? }),
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(action: &str) -> AuditRecord {
        AuditRecord {
            id: 0,
            at_ms: 1,
            actor_key_id: None,
            actor_tenant: None,
            remote_addr: None,
            action: action.into(),
            target: "API_TOKEN".into(),
            details_json: "{}".into(),
        }
    }

    fn rec(at: i64) -> SecretRecord {
        SecretRecord {
            tenant_id: "tn_a".into(),
            name: "API_TOKEN".into(),
            sealed: vec![1, 2, 3],
            key_id: "k1".into(),
            hosts: vec!["api.example.com".into()],
            header: Some("Authorization".into()),
            template: Some("Bearer {value}".into()),
            created_at_ms: at,
            updated_at_ms: at,
            updated_by: Some("key_1".into()),
        }
    }

    #[tokio::test]
    async fn secrets_round_trip_keep_creation_and_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.put_secret(rec(10), audit("secret.set")).await.unwrap());
        let mut second = rec(20);
        second.hosts.push("*.example.org".into());
        assert!(!store.put_secret(second, audit("secret.set")).await.unwrap());
        let got = store.get_secret("tn_a", "API_TOKEN").await.unwrap().unwrap();
        assert_eq!((got.created_at_ms, got.updated_at_ms, got.hosts.len()), (10, 20, 2));
        assert!(!format!("{got:?}").contains("[1, 2, 3]"));
        assert_eq!(store.list_secrets(Some("tn_b".into())).await.unwrap().len(), 0);
        assert_eq!(store.list_secrets(None).await.unwrap().len(), 1);
        store.record_sandbox_secrets("sb_1", "tn_a", vec!["API_TOKEN".into()], 30).await.unwrap();
        let uses = store.secret_uses("tn_a", "API_TOKEN", 10).await.unwrap();
        assert_eq!(uses[0].sandbox_id, "sb_1");
        assert!(store.delete_secret("tn_a", "API_TOKEN", audit("secret.delete")).await.unwrap());
        assert!(!store.delete_secret("tn_a", "API_TOKEN", audit("secret.delete")).await.unwrap());
        assert!(store.get_secret("tn_a", "API_TOKEN").await.unwrap().is_none());
        let actions: Vec<String> = store.list_audit(None, 10).await.unwrap().into_iter().map(|a| a.action).collect();
        assert_eq!(actions, ["secret.delete", "secret.set", "secret.set"]);
    }
}
