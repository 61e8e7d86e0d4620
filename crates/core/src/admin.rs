//! Tenants, API keys, plans and the audit log: the administrative
//! operations. Every change commits together with its audit entry, then
//! updates the in-memory copy authentication reads.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use superserver_store::{AuditRecord, KeyRecord, TenantRecord, ADMIN_TENANT_ID};
use superserver_wire::{
    AuditEntry, AuditList, CreateKeyRequest, CreateTenantRequest, CreatedKey, KeyInfo, KeyList, PlanList, Role,
    SandboxState, TenantInfo, TenantList, UpdateTenantRequest, WhoAmI,
};

use crate::error::{CoreError, Result};
use crate::ids;
use crate::service::{now_ms, Service};
use crate::tenancy::{keys, Caller, KeyEntry};

/// Name of the file the bootstrap admin key is written to, in the data dir.
pub const ADMIN_KEY_FILE: &str = "admin.key";

impl Service {
    /// When no admin key works (a new data directory, or every admin key
    /// expired), creates one, writes it to `DATA_DIR/admin.key` (mode 0600)
    /// and keeps it for the binary to show once. Whoever can restart the
    /// server can read its data directory anyway: this is the way back in.
    pub(crate) async fn bootstrap(&self) -> Result<()> {
        if !self.inner.auth.enabled() || self.active_admin_keys(now_ms()) > 0 {
            return Ok(());
        }
        let new = keys::generate();
        let now = now_ms();
        let rec = KeyRecord {
            id: ids::new_id("key"),
            tenant_id: ADMIN_TENANT_ID.to_string(),
            prefix: new.prefix.clone(),
            hash: new.hash,
            role: Role::Admin.as_str().to_string(),
            name: Some("bootstrap admin key".into()),
            created_at_ms: now,
            expires_at_ms: None,
            last_used_at_ms: None,
            revoked_at_ms: None,
            created_by: None,
        };
        let path = self.inner.cfg.data_dir.join(ADMIN_KEY_FILE);
        write_secret(&path, &new.key)
            .map_err(|e| CoreError::Config(format!("cannot write the admin key to {}: {e}", path.display())))?;
        let audit = audit(None, "key.create", &rec.id, serde_json::json!({"role": "admin", "bootstrap": true}));
        self.inner.store.insert_key(rec.clone(), audit).await?;
        self.inner.auth.put_key(KeyEntry::from_record(&rec)?);
        tracing::info!(key = %new.prefix, file = %path.display(), "created the admin API key");
        *self.inner.bootstrap_key.lock().unwrap_or_else(|e| e.into_inner()) = Some(new.key);
        Ok(())
    }

    fn active_admin_keys(&self, now: i64) -> usize {
        self.inner
            .auth
            .keys()
            .iter()
            .filter(|k| k.role == Role::Admin && k.revoked_at_ms.is_none() && k.expires_at_ms.is_none_or(|e| e > now))
            .count()
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&self, caller: &Caller) -> Result<WhoAmI> {
        let key = match &caller.key_id {
            Some(id) => {
                let k = self.inner.auth.key_by_id(id).ok_or_else(|| CoreError::KeyNotFound(id.clone()))?;
                self.inner.auth.key_info(&k)
            }
            None => KeyInfo {
                id: String::new(),
                prefix: "(authentication off)".into(),
                tenant_id: caller.tenant.id.clone(),
                tenant: caller.tenant.name.clone(),
                role: caller.role,
                name: None,
                created_at_ms: 0,
                expires_at_ms: None,
                last_used_at_ms: None,
                revoked_at_ms: None,
            },
        };
        Ok(WhoAmI { key, tenant: caller.tenant.info() })
    }

    /// `GET /v1/plans`.
    pub fn plans(&self, _caller: &Caller) -> PlanList {
        PlanList { plans: self.inner.auth.plans().clone() }
    }

    /// `POST /v1/tenants` (admin).
    pub async fn create_tenant(&self, caller: &Caller, req: CreateTenantRequest) -> Result<TenantInfo> {
        caller.require(Role::Admin, "creating tenants")?;
        validate_name(&req.name)?;
        let plan = req.plan.unwrap_or_else(|| self.inner.cfg.tenants.default_plan.clone());
        self.check_plan(&plan)?;
        let email = normalize_email(req.email)?;
        let overrides = req.overrides.unwrap_or_default();
        let rec = TenantRecord {
            id: ids::new_id("tn"),
            name: req.name,
            plan,
            email,
            overrides_json: serde_json::to_string(&overrides).map_err(|e| CoreError::Internal(e.to_string()))?,
            suspended: false,
            created_at_ms: now_ms(),
            default_network_json: None,
        };
        self.check_limits(&rec)?;
        let details =
            serde_json::json!({"name": rec.name, "plan": rec.plan, "email": rec.email, "overrides": overrides});
        self.inner.store.insert_tenant(rec.clone(), audit(Some(caller), "tenant.create", &rec.id, details)).await?;
        Ok(self.inner.auth.put_tenant(&rec)?.info())
    }

    /// `GET /v1/tenants`: all for an admin, else the caller's own.
    pub fn list_tenants(&self, caller: &Caller) -> TenantList {
        let tenants = self.inner.auth.tenants();
        TenantList { tenants: tenants.iter().filter(|t| caller.sees(&t.id)).map(|t| t.info()).collect() }
    }

    /// `GET /v1/tenants/{tenant}` by name or id.
    pub fn get_tenant(&self, caller: &Caller, name_or_id: &str) -> Result<TenantInfo> {
        Ok(self.visible_tenant(caller, name_or_id)?.info())
    }

    fn visible_tenant(&self, caller: &Caller, name_or_id: &str) -> Result<std::sync::Arc<crate::tenancy::TenantEntry>> {
        self.inner
            .auth
            .find_tenant(name_or_id)
            .filter(|t| caller.sees(&t.id))
            .ok_or_else(|| CoreError::TenantNotFound(name_or_id.to_string()))
    }

    /// `PATCH /v1/tenants/{tenant}` (admin): plan, e-mail, overrides.
    pub async fn update_tenant(&self, caller: &Caller, t: &str, req: UpdateTenantRequest) -> Result<TenantInfo> {
        caller.require(Role::Admin, "changing tenants")?;
        let cur = self.visible_tenant(caller, t)?;
        let mut rec = self.tenant_record(&cur)?;
        let mut details = serde_json::Map::new();
        if let Some(plan) = req.plan {
            self.check_plan(&plan)?;
            details.insert("plan".into(), serde_json::json!({"from": rec.plan, "to": plan}));
            rec.plan = plan;
        }
        if let Some(email) = req.email {
            let email = normalize_email(Some(email))?;
            details.insert("email".into(), serde_json::json!({"from": rec.email, "to": email}));
            rec.email = email;
        }
        if let Some(o) = req.overrides {
            details.insert("overrides".into(), serde_json::json!({"from": cur.overrides, "to": o}));
            rec.overrides_json = serde_json::to_string(&o).map_err(|e| CoreError::Internal(e.to_string()))?;
        }
        if let Some(n) = req.default_network {
            details.insert("default_network".into(), serde_json::json!({"from": cur.default_network, "to": n}));
            let governed = n.mode == superserver_wire::NetworkMode::Policy;
            if governed {
                superserver_egress::Policy::compile(&n)
                    .map_err(|e| CoreError::InvalidRequest(format!("default_network: {e}")))?;
            }
            rec.default_network_json = governed
                .then(|| serde_json::to_string(&n))
                .transpose()
                .map_err(|e| CoreError::Internal(e.to_string()))?;
        }
        self.check_limits(&rec)?;
        self.save_tenant(caller, rec, "tenant.update", details.into()).await
    }

    /// `POST /v1/tenants/{tenant}/suspend` (admin): its keys get 403 and its
    /// running sandboxes are stopped.
    pub async fn suspend_tenant(&self, caller: &Caller, t: &str) -> Result<TenantInfo> {
        self.set_suspended(caller, t, true).await
    }

    /// `POST /v1/tenants/{tenant}/resume` (admin).
    pub async fn resume_tenant(&self, caller: &Caller, t: &str) -> Result<TenantInfo> {
        self.set_suspended(caller, t, false).await
    }

    async fn set_suspended(&self, caller: &Caller, t: &str, suspended: bool) -> Result<TenantInfo> {
        caller.require(Role::Admin, if suspended { "suspending tenants" } else { "resuming tenants" })?;
        let cur = self.visible_tenant(caller, t)?;
        if cur.id == ADMIN_TENANT_ID && suspended {
            return Err(CoreError::Conflict("the admin tenant cannot be suspended".into()));
        }
        let mut rec = self.tenant_record(&cur)?;
        rec.suspended = suspended;
        let action = if suspended { "tenant.suspend" } else { "tenant.resume" };
        let info = self.save_tenant(caller, rec, action, serde_json::json!({})).await?;
        if suspended {
            let mine: Vec<_> = {
                let mut live = self.lock_live();
                let ids: Vec<String> = live.values().filter(|l| l.tenant_id == cur.id).map(|l| l.id.clone()).collect();
                ids.iter().filter_map(|id| live.remove(id)).collect()
            };
            for l in mine {
                self.end_live(&l, SandboxState::Destroyed, "its tenant was suspended").await;
            }
        }
        Ok(info)
    }

    async fn save_tenant(
        &self,
        caller: &Caller,
        rec: TenantRecord,
        action: &str,
        details: serde_json::Value,
    ) -> Result<TenantInfo> {
        let target = rec.id.clone();
        let saved = self.inner.store.update_tenant(rec, audit(Some(caller), action, &target, details)).await;
        let saved = saved.map_err(|e| match e {
            superserver_store::StoreError::NotFound(what) => CoreError::TenantNotFound(what),
            e => e.into(),
        })?;
        Ok(self.inner.auth.put_tenant(&saved)?.info())
    }

    fn tenant_record(&self, t: &crate::tenancy::TenantEntry) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: t.id.clone(),
            name: t.name.clone(),
            plan: t.plan.clone(),
            email: t.email.clone(),
            overrides_json: serde_json::to_string(&t.overrides).map_err(|e| CoreError::Internal(e.to_string()))?,
            suspended: t.suspended,
            created_at_ms: t.created_at_ms,
            default_network_json: t
                .default_network
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| CoreError::Internal(e.to_string()))?,
        })
    }

    /// The tenant's plan with its overrides must be one the config could
    /// define: a zero request rate or memory would lock the tenant out.
    fn check_limits(&self, rec: &TenantRecord) -> Result<()> {
        let entry = self.inner.auth.entry(rec)?;
        crate::tenancy::plans::validate(&rec.plan, entry.limits()?)
            .map_err(|e| CoreError::InvalidRequest(format!("overrides: {e}")))
    }

    fn check_plan(&self, plan: &str) -> Result<()> {
        if self.inner.auth.plans().contains_key(plan) {
            return Ok(());
        }
        let known: Vec<&str> = self.inner.auth.plans().keys().map(String::as_str).collect();
        Err(CoreError::InvalidRequest(format!("plan `{plan}` does not exist (plans: {})", known.join(", "))))
    }

    /// `POST /v1/keys`: an admin for any tenant and role; an owner for its
    /// own tenant, up to `owner`.
    pub async fn create_key(&self, caller: &Caller, req: CreateKeyRequest) -> Result<CreatedKey> {
        caller.require(Role::Owner, "creating API keys")?;
        let tenant = match &req.tenant {
            Some(t) => self.visible_tenant(caller, t)?,
            None => caller.tenant.clone(),
        };
        let role = req.role.unwrap_or(Role::Member);
        if role > caller.role {
            return Err(CoreError::Forbidden(format!(
                "{} key cannot create {} key",
                crate::tenancy::article(caller.role),
                crate::tenancy::article(role)
            )));
        }
        if role == Role::Admin && tenant.id != ADMIN_TENANT_ID {
            return Err(CoreError::InvalidRequest("admin keys belong to the admin tenant".into()));
        }
        let now = now_ms();
        if req.expires_at_ms.is_some_and(|e| e <= now) {
            return Err(CoreError::InvalidRequest("expires_at_ms is in the past".into()));
        }
        if let Some(name) = &req.name {
            if name.len() > 200 || name.chars().any(char::is_control) {
                return Err(CoreError::InvalidRequest("name: at most 200 characters, no control characters".into()));
            }
        }
        let new = keys::generate();
        let rec = KeyRecord {
            id: ids::new_id("key"),
            tenant_id: tenant.id.clone(),
            prefix: new.prefix.clone(),
            hash: new.hash,
            role: role.as_str().to_string(),
            name: req.name,
            created_at_ms: now,
            expires_at_ms: req.expires_at_ms,
            last_used_at_ms: None,
            revoked_at_ms: None,
            created_by: caller.key_id.clone(),
        };
        let details = serde_json::json!({
            "tenant": tenant.name, "role": role, "prefix": rec.prefix, "expires_at_ms": rec.expires_at_ms,
        });
        self.inner.store.insert_key(rec.clone(), audit(Some(caller), "key.create", &rec.id, details)).await?;
        let entry = KeyEntry::from_record(&rec)?;
        let info = self.inner.auth.key_info(&entry);
        self.inner.auth.put_key(entry);
        Ok(CreatedKey { key: new.key, info })
    }

    /// `GET /v1/keys`: an admin's of every tenant (or `tenant`), an owner's of its own.
    pub fn list_keys(&self, caller: &Caller, tenant: Option<&str>) -> Result<KeyList> {
        caller.require(Role::Owner, "listing API keys")?;
        let only = tenant.map(|t| self.visible_tenant(caller, t)).transpose()?;
        let keys = self.inner.auth.keys();
        Ok(KeyList {
            keys: keys
                .iter()
                .filter(|k| caller.sees(&k.tenant_id) && only.as_ref().is_none_or(|t| t.id == k.tenant_id))
                .map(|k| self.inner.auth.key_info(k))
                .collect(),
        })
    }

    /// `DELETE /v1/keys/{id}`: revokes at once.
    pub async fn revoke_key(&self, caller: &Caller, id: &str) -> Result<KeyInfo> {
        caller.require(Role::Owner, "revoking API keys")?;
        let k = self
            .inner
            .auth
            .key_by_id(id)
            .filter(|k| caller.sees(&k.tenant_id))
            .ok_or_else(|| CoreError::KeyNotFound(id.to_string()))?;
        if k.role > caller.role {
            return Err(CoreError::Forbidden(format!(
                "{} key cannot revoke {} key",
                crate::tenancy::article(caller.role),
                crate::tenancy::article(k.role)
            )));
        }
        if k.role == Role::Admin && k.revoked_at_ms.is_none() && self.active_admin_keys(now_ms()) <= 1 {
            return Err(CoreError::Conflict(
                "this is the last working admin key: create another admin key before revoking it".into(),
            ));
        }
        let details = serde_json::json!({"prefix": k.prefix, "tenant_id": k.tenant_id});
        let rec = self.inner.store.revoke_key(id, now_ms(), audit(Some(caller), "key.revoke", id, details)).await?;
        let entry = KeyEntry::from_record(&rec)?;
        let info = self.inner.auth.key_info(&entry);
        self.inner.auth.put_key(entry);
        Ok(info)
    }

    /// `GET /v1/audit` (admin): newest first.
    pub async fn audit_log(&self, caller: &Caller, before: Option<i64>, limit: usize) -> Result<AuditList> {
        caller.require(Role::Admin, "reading the audit log")?;
        let rows = self.inner.store.list_audit(before, limit.clamp(1, 1000)).await?;
        Ok(AuditList {
            entries: rows
                .into_iter()
                .map(|r| AuditEntry {
                    id: r.id,
                    at_ms: r.at_ms,
                    actor_key_id: r.actor_key_id,
                    actor_tenant: r.actor_tenant,
                    remote_addr: r.remote_addr,
                    action: r.action,
                    target: r.target,
                    details: serde_json::from_str(&r.details_json).unwrap_or(serde_json::Value::Null),
                })
                .collect(),
        })
    }
}

/// An audit entry by `caller` (`None`: the server itself).
pub(crate) fn audit_record(
    caller: Option<&Caller>,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> AuditRecord {
    audit(caller, action, target, details)
}

fn audit(caller: Option<&Caller>, action: &str, target: &str, details: serde_json::Value) -> AuditRecord {
    AuditRecord {
        id: 0,
        at_ms: now_ms(),
        actor_key_id: caller.and_then(|c| c.key_id.clone()),
        actor_tenant: caller.map(|c| c.tenant.name.clone()),
        remote_addr: caller.and_then(|c| c.remote_addr.clone()),
        action: action.to_string(),
        target: target.to_string(),
        details_json: details.to_string(),
    }
}

/// Tenant names: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok && !name.starts_with("tn_") {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(format!(
            "tenant name {name:?}: 1–64 of a-z 0-9 - _ ., starting with a letter or digit, not `tn_`"
        )))
    }
}

fn normalize_email(email: Option<String>) -> Result<Option<String>> {
    let Some(e) = email.map(|e| e.trim().to_string()).filter(|e| !e.is_empty()) else { return Ok(None) };
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if valid {
        Ok(Some(e))
    } else {
        Err(CoreError::InvalidRequest(format!("email {e:?} is not an address like ops@example.com")))
    }
}

/// Writes `secret` to `path` readable by the owner only, durably.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(format!("{secret}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_checked() {
        for ok in ["acme", "a", "team-7", "x.y_z"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "Acme", "-x", "tn_1", "a b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(normalize_email(Some(" ops@example.com ".into())).unwrap(), Some("ops@example.com".into()));
        assert_eq!(normalize_email(Some(String::new())).unwrap(), None);
        assert!(normalize_email(Some("nobody".into())).is_err());
        assert!(normalize_email(Some("a@b.c\r\nBcc: x@y.z".into())).is_err());
    }

    #[test]
    fn secrets_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(ADMIN_KEY_FILE);
        write_secret(&p, "ssk_x").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "ssk_x\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
