//! Tenants, API keys and the admin audit log. Every change to a tenant or a
//! key commits together with its audit entry.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Result, StoreError};
use crate::records::query_all;
use crate::store::Store;

/// The tenant every server has: the bootstrap admin key belongs to it.
pub const ADMIN_TENANT_ID: &str = "tn_admin";

/// A tenant as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    /// `tn_…`
    pub id: String,
    pub name: String,
    pub plan: String,
    pub email: Option<String>,
    /// JSON object of the plan fields this tenant overrides.
    pub overrides_json: String,
    pub suspended: bool,
    pub created_at_ms: i64,
    /// JSON of the `network` its requests get when they give none.
    pub default_network_json: Option<String>,
}

/// An API key as recorded: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// `key_…`
    pub id: String,
    pub tenant_id: String,
    /// The key's visible start, unique.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
    pub role: String,
    pub name: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_by: Option<String>,
}

/// One entry of the admin audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the store (0 on insert).
    pub id: i64,
    pub at_ms: i64,
    pub actor_key_id: Option<String>,
    pub actor_tenant: Option<String>,
    pub remote_addr: Option<String>,
    /// E.g. `tenant.create`.
    pub action: String,
    pub target: String,
    /// JSON object.
    pub details_json: String,
}

const TENANT_COLUMNS: &str = "id, name, plan, email, overrides_json, suspended, created_at_ms, default_network_json";
const KEY_COLUMNS: &str = "id, tenant_id, prefix, hash, role, name, created_at_ms, expires_at_ms, \
     last_used_at_ms, revoked_at_ms, created_by";
const AUDIT_COLUMNS: &str = "id, at_ms, actor_key_id, actor_tenant, remote_addr, action, target, details_json";

impl Store {
    /// Record a new tenant. A taken name is [`StoreError::Duplicate`].
    pub async fn insert_tenant(&self, t: TenantRecord, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                t.id,
                t.name,
                t.plan,
                t.email,
                t.overrides_json,
                t.suspended,
                t.created_at_ms,
                t.default_network_json
            ])
            .map_err(|e| match StoreError::from(e) {
                e if e.is_unique_violation() => StoreError::Duplicate(format!("tenant {}", t.name)),
                e => e,
            })?;
            insert_audit(c, &audit)
        })
        .await
    }

    /// Replace a tenant's plan, e-mail, overrides and suspension; returns
    /// the tenant as stored now.
    pub async fn update_tenant(&self, t: TenantRecord, audit: AuditRecord) -> Result<TenantRecord> {
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE tenants SET plan = ?2, email = ?3, overrides_json = ?4, suspended = ?5,
                   default_network_json = ?6 WHERE id = ?1",
                params![t.id, t.plan, t.email, t.overrides_json, t.suspended, t.default_network_json],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("tenant {}", t.id)));
            }
            insert_audit(c, &audit)?;
            Ok(t.clone())
        })
        .await
    }

    /// Every tenant, by name.
    pub async fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        self.read(|c| query_all(c, &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY name"), [], tenant_from_row))
            .await
    }

    /// Record a new key.
    pub async fn insert_key(&self, k: KeyRecord, audit: AuditRecord) -> Result<()> {
        self.write(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))?
            .execute(params![
                k.id,
                k.tenant_id,
                k.prefix,
                k.hash.as_slice(),
                k.role,
                k.name,
                k.created_at_ms,
                k.expires_at_ms,
                k.last_used_at_ms,
                k.revoked_at_ms,
                k.created_by,
            ])
            .map_err(|e| match StoreError::from(e) {
                e if e.is_foreign_key_violation() => StoreError::NotFound(format!("tenant {}", k.tenant_id)),
                e => e,
            })?;
            insert_audit(c, &audit)
        })
        .await
    }

    /// Revoke a key (keeping the first revocation time); returns it as stored
    /// now. The last working admin key is never revoked
    /// ([`StoreError::LastAdminKey`]), checked in the same transaction.
    pub async fn revoke_key(&self, id: &str, at_ms: i64, audit: AuditRecord) -> Result<KeyRecord> {
        let id = id.to_owned();
        self.write(move |c| {
            let changed = c.execute(
                "UPDATE api_keys SET revoked_at_ms = coalesce(revoked_at_ms, ?2) WHERE id = ?1
                 AND (role != 'admin' OR revoked_at_ms IS NOT NULL OR EXISTS (
                     SELECT 1 FROM api_keys o WHERE o.role = 'admin' AND o.id != ?1 AND o.revoked_at_ms IS NULL
                     AND (o.expires_at_ms IS NULL OR o.expires_at_ms > ?2)))",
                params![id, at_ms],
            )?;
            let k = get_key(c, &id)?.ok_or_else(|| StoreError::NotFound(format!("key {id}")))?;
            if changed == 0 {
                return Err(StoreError::LastAdminKey);
            }
            insert_audit(c, &audit)?;
            Ok(k)
        })
        .await
    }

    /// Every key, oldest first (revoked and expired ones included).
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.read(|c| {
            query_all(c, &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at_ms, id"), [], key_from_row)
        })
        .await
    }

    /// Record when keys were last used (batched: it is not worth a commit per request).
    pub async fn touch_keys(&self, used: Vec<(String, i64)>) -> Result<()> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached(
                "UPDATE api_keys SET last_used_at_ms = max(coalesce(last_used_at_ms, 0), ?2) WHERE id = ?1",
            )?;
            for (id, at) in &used {
                stmt.execute(params![id, at])?;
            }
            Ok(())
        })
        .await
    }

    /// Append to the audit log on its own (changes that touch no tenant or key row).
    pub async fn insert_audit(&self, audit: AuditRecord) -> Result<()> {
        self.write(move |c| insert_audit(c, &audit)).await
    }

    /// Up to `limit` audit entries with ids below `before`, newest first.
    pub async fn list_audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        let before = before.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            query_all(
                c,
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT ?2"),
                params![before, limit],
                |r| {
                    Ok(AuditRecord {
                        id: r.get(0)?,
                        at_ms: r.get(1)?,
                        actor_key_id: r.get(2)?,
                        actor_tenant: r.get(3)?,
                        remote_addr: r.get(4)?,
                        action: r.get(5)?,
                        target: r.get(6)?,
                        details_json: r.get(7)?,
                    })
                },
            )
        })
        .await
    }
}

pub(crate) fn insert_audit(c: &Connection, a: &AuditRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO audit_log (at_ms, actor_key_id, actor_tenant, remote_addr, action, target, details_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.at_ms,
        a.actor_key_id,
        a.actor_tenant,
        a.remote_addr,
        a.action,
        a.target,
        a.details_json
    ])?;
    Ok(())
}

fn get_key(c: &Connection, id: &str) -> Result<Option<KeyRecord>> {
    c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?
        .query_row([id], |r| Ok(key_from_row(r)))
        .optional()?
        .transpose()
}

fn tenant_from_row(r: &Row<'_>) -> Result<TenantRecord> {
    Ok(TenantRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        plan: r.get(2)?,
        email: r.get(3)?,
        overrides_json: r.get(4)?,
        suspended: r.get(5)?,
        created_at_ms: r.get(6)?,
        default_network_json: r.get(7)?,
    })
}

fn key_from_row(r: &Row<'_>) -> Result<KeyRecord> {
    let id: String = r.get(0)?;
    let hash: Vec<u8> = r.get(3)?;
    let hash = <[u8; 32]>::try_from(hash.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("key {id} has a hash of {} bytes", hash.len())))?;
    Ok(KeyRecord {
        tenant_id: r.get(1)?,
        prefix: r.get(2)?,
        hash,
        role: r.get(4)?,
        name: r.get(5)?,
        created_at_ms: r.get(6)?,
        expires_at_ms: r.get(7)?,
        last_used_at_ms: r.get(8)?,
        revoked_at_ms: r.get(9)?,
        created_by: r.get(10)?,
        id,
    })
}
