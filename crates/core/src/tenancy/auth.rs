//! Authentication from an in-memory copy of the key and tenant tables (the
//! server is their only writer, and updates the copy in the same operation
//! that commits a change), per-key rate limits, and last-used times flushed
//! to the store in batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use superserver_store::{KeyRecord, TenantRecord, ADMIN_TENANT_ID};
use superserver_wire::{KeyInfo, PlanLimits, PlanOverrides, Role};

use super::caller::{Caller, TenantEntry};
use super::keys;
use crate::error::{CoreError, Result};

/// An API key as the server holds it in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEntry {
    pub id: String,
    pub tenant_id: String,
    pub prefix: String,
    pub hash: [u8; 32],
    pub role: Role,
    pub name: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_by: Option<String>,
    /// As last read from the store; newer uses are in [`Auth::last_used`].
    pub last_used_at_ms: Option<i64>,
}

impl KeyEntry {
    pub fn from_record(r: &KeyRecord) -> Result<Self> {
        let role = Role::parse(&r.role)
            .ok_or_else(|| CoreError::Internal(format!("key {} has an unknown role {:?}", r.id, r.role)))?;
        Ok(Self {
            id: r.id.clone(),
            tenant_id: r.tenant_id.clone(),
            prefix: r.prefix.clone(),
            hash: r.hash,
            role,
            name: r.name.clone(),
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            revoked_at_ms: r.revoked_at_ms,
            created_by: r.created_by.clone(),
            last_used_at_ms: r.last_used_at_ms,
        })
    }
}

/// A token bucket.
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Auth {
    enabled: bool,
    plans: BTreeMap<String, PlanLimits>,
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    tenants: RwLock<HashMap<String, Arc<TenantEntry>>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Keys used since the last flush, with when.
    used: Mutex<HashMap<String, i64>>,
    /// Every last-used time seen since start (for listings between flushes).
    last_used: Mutex<HashMap<String, i64>>,
}

impl Auth {
    pub fn new(
        enabled: bool,
        plans: BTreeMap<String, PlanLimits>,
        tenants: &[TenantRecord],
        keys: &[KeyRecord],
    ) -> Result<Self> {
        let auth = Self {
            enabled,
            plans,
            keys: RwLock::default(),
            tenants: RwLock::default(),
            buckets: Mutex::default(),
            used: Mutex::default(),
            last_used: Mutex::default(),
        };
        for t in tenants {
            auth.put_tenant(t)?;
        }
        for k in keys {
            auth.put_key(KeyEntry::from_record(k)?);
        }
        Ok(auth)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn plans(&self) -> &BTreeMap<String, PlanLimits> {
        &self.plans
    }

    /// Resolves a tenant record against the plans.
    pub fn entry(&self, t: &TenantRecord) -> Result<TenantEntry> {
        let overrides: PlanOverrides = serde_json::from_str(&t.overrides_json)
            .map_err(|e| CoreError::Internal(format!("tenant {} has unreadable overrides: {e}", t.id)))?;
        let limits = self.plans.get(&t.plan).map(|p| p.with(&overrides));
        if limits.is_none() {
            tracing::error!(tenant = %t.name, plan = %t.plan, "tenant's plan is not defined in the config");
        }
        Ok(TenantEntry {
            id: t.id.clone(),
            name: t.name.clone(),
            plan: t.plan.clone(),
            email: t.email.clone(),
            overrides,
            limits,
            suspended: t.suspended,
            created_at_ms: t.created_at_ms,
            default_network: t
                .default_network_json
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| CoreError::Internal(format!("tenant {} has an unreadable default network: {e}", t.id)))?,
        })
    }

    /// Adds or replaces a tenant in the cache.
    pub fn put_tenant(&self, t: &TenantRecord) -> Result<Arc<TenantEntry>> {
        let e = Arc::new(self.entry(t)?);
        write(&self.tenants).insert(e.id.clone(), e.clone());
        Ok(e)
    }

    pub fn put_key(&self, k: KeyEntry) {
        write(&self.keys).insert(k.prefix.clone(), Arc::new(k));
    }

    pub fn tenant(&self, id: &str) -> Option<Arc<TenantEntry>> {
        read(&self.tenants).get(id).cloned()
    }

    /// A tenant by id or name.
    pub fn find_tenant(&self, name_or_id: &str) -> Option<Arc<TenantEntry>> {
        let tenants = read(&self.tenants);
        tenants.get(name_or_id).or_else(|| tenants.values().find(|t| t.name == name_or_id)).cloned()
    }

    pub fn tenants(&self) -> Vec<Arc<TenantEntry>> {
        let mut v: Vec<_> = read(&self.tenants).values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn key_by_id(&self, id: &str) -> Option<Arc<KeyEntry>> {
        read(&self.keys).values().find(|k| k.id == id).cloned()
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Vec<Arc<KeyEntry>> {
        let mut v: Vec<_> = read(&self.keys).values().cloned().collect();
        v.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        v
    }

    /// A key as listed.
    pub fn key_info(&self, k: &KeyEntry) -> KeyInfo {
        let seen = lock(&self.last_used).get(&k.id).copied();
        KeyInfo {
            id: k.id.clone(),
            prefix: k.prefix.clone(),
            tenant_id: k.tenant_id.clone(),
            tenant: self.tenant(&k.tenant_id).map(|t| t.name.clone()).unwrap_or_default(),
            role: k.role,
            name: k.name.clone(),
            created_at_ms: k.created_at_ms,
            expires_at_ms: k.expires_at_ms,
            last_used_at_ms: seen.max(k.last_used_at_ms),
            revoked_at_ms: k.revoked_at_ms,
        }
    }

    /// The caller presenting `authorization` (the header's value), at `now_ms`.
    pub fn authenticate(&self, authorization: Option<&str>, now_ms: i64) -> Result<Caller> {
        if !self.enabled {
            let tenant = self
                .tenant(ADMIN_TENANT_ID)
                .ok_or_else(|| CoreError::Internal("the admin tenant is missing from the store".into()))?;
            return Ok(Caller { key_id: None, role: Role::Admin, tenant, remote_addr: None });
        }
        let header = authorization
            .ok_or_else(|| CoreError::Unauthenticated("missing `Authorization: Bearer <API key>` header".into()))?;
        let key = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).map(str::trim).ok_or_else(
            || CoreError::Unauthenticated("malformed Authorization header: use `Bearer <API key>`".into()),
        )?;
        keys::check_shape(key).map_err(|m| CoreError::Unauthenticated(m.to_string()))?;
        let entry = read(&self.keys).get(keys::prefix_of(key)).cloned();
        // The same answer whether the prefix is unknown or the rest differs.
        let entry = entry
            .filter(|e| keys::matches(key, &e.hash))
            .ok_or_else(|| CoreError::Unauthenticated("unknown API key".into()))?;
        if entry.revoked_at_ms.is_some() {
            return Err(CoreError::Unauthenticated(format!("API key {}… was revoked", entry.prefix)));
        }
        if let Some(exp) = entry.expires_at_ms.filter(|&e| e <= now_ms) {
            return Err(CoreError::Unauthenticated(format!(
                "API key {}… expired at {}",
                entry.prefix,
                super::plans::rfc3339(exp)
            )));
        }
        let tenant = self
            .tenant(&entry.tenant_id)
            .ok_or_else(|| CoreError::Internal(format!("key {} names a missing tenant", entry.id)))?;
        if tenant.suspended {
            return Err(CoreError::TenantSuspended(tenant.name.clone()));
        }
        let limits = tenant.limits()?;
        self.take_token(&entry.id, limits.requests_per_second, limits.request_burst)?;
        lock(&self.used).insert(entry.id.clone(), now_ms);
        Ok(Caller { key_id: Some(entry.id.clone()), role: entry.role, tenant, remote_addr: None })
    }

    fn take_token(&self, key_id: &str, rate: f64, burst: u32) -> Result<()> {
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let b = buckets.entry(key_id.to_string()).or_insert(Bucket { tokens: f64::from(burst), at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(f64::from(burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
            Err(CoreError::RateLimited { retry_after_seconds: wait })
        }
    }

    /// Keys used since the last call, for the store.
    pub fn take_used(&self) -> Vec<(String, i64)> {
        let used: Vec<(String, i64)> = lock(&self.used).drain().collect();
        let mut seen = lock(&self.last_used);
        for (id, at) in &used {
            let e = seen.entry(id.clone()).or_insert(*at);
            *e = (*e).max(*at);
        }
        used
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(role: Role, plan: &str) -> (Auth, String) {
        let tenant = TenantRecord {
            id: "tn_1".into(),
            name: "acme".into(),
            plan: plan.into(),
            email: None,
            overrides_json: "{}".into(),
            suspended: false,
            created_at_ms: 0,
            default_network_json: None,
        };
        let k = keys::generate();
        let rec = KeyRecord {
            id: "key_1".into(),
            tenant_id: "tn_1".into(),
            prefix: k.prefix.clone(),
            hash: k.hash,
            role: role.as_str().into(),
            name: None,
            created_at_ms: 0,
            expires_at_ms: None,
            last_used_at_ms: None,
            revoked_at_ms: None,
            created_by: None,
        };
        (Auth::new(true, super::super::plans::builtin(), &[tenant], &[rec]).unwrap(), k.key)
    }

    fn unauth(r: Result<Caller>) -> String {
        match r {
            Err(CoreError::Unauthenticated(m)) => m,
            other => panic!("expected 401, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_key_authenticates_as_its_tenant_and_role() {
        let (auth, key) = setup(Role::Member, "team");
        let c = auth.authenticate(Some(&format!("Bearer {key}")), 1).unwrap();
        assert_eq!(c.role, Role::Member);
        assert_eq!(c.tenant.name, "acme");
        assert_eq!(auth.take_used(), vec![("key_1".to_string(), 1)]);
    }

    #[test]
    fn every_bad_credential_is_named() {
        let (auth, key) = setup(Role::Member, "team");
        assert!(unauth(auth.authenticate(None, 1)).contains("missing"));
        assert!(unauth(auth.authenticate(Some(&format!("Basic {key}")), 1)).contains("malformed"));
        assert!(unauth(auth.authenticate(Some("Bearer ssk_nope"), 1)).contains("malformed"));
        let mut other = keys::generate().key;
        assert!(unauth(auth.authenticate(Some(&format!("Bearer {other}")), 1)).contains("unknown"));
        // Same prefix, different secret: unknown too, not "revoked" or similar.
        other.replace_range(..key.len() - 5, &key[..key.len() - 5]);
        if other != key {
            assert!(unauth(auth.authenticate(Some(&format!("Bearer {other}")), 1)).contains("unknown"));
        }
    }

    #[test]
    fn revoked_and_expired_keys_are_refused() {
        let (auth, key) = setup(Role::Member, "team");
        let mut k = (*auth.key_by_id("key_1").unwrap()).clone();
        k.expires_at_ms = Some(100);
        auth.put_key(k.clone());
        auth.authenticate(Some(&format!("Bearer {key}")), 99).unwrap();
        assert!(unauth(auth.authenticate(Some(&format!("Bearer {key}")), 100)).contains("expired"));
        k.expires_at_ms = None;
        k.revoked_at_ms = Some(5);
        auth.put_key(k);
        assert!(unauth(auth.authenticate(Some(&format!("Bearer {key}")), 1)).contains("revoked"));
    }

    #[test]
    fn the_burst_is_allowed_then_requests_are_limited() {
        let (auth, key) = setup(Role::Member, "free");
        let burst = auth.plans()["free"].request_burst;
        let h = format!("Bearer {key}");
        for _ in 0..burst {
            auth.authenticate(Some(&h), 1).unwrap();
        }
        match auth.authenticate(Some(&h), 1) {
            Err(CoreError::RateLimited { retry_after_seconds }) => assert!(retry_after_seconds >= 1),
            other => panic!("expected rate limit, got {other:?}"),
        }
    }
}
