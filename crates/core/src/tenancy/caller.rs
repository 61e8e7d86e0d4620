//! Who is calling: the key, its role and its tenant, as every core
//! operation sees them.

use std::sync::Arc;

use superserver_wire::{PlanLimits, PlanOverrides, Role, TenantInfo};

use crate::error::{CoreError, Result};

/// A tenant as the server holds it in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantEntry {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub email: Option<String>,
    pub overrides: PlanOverrides,
    /// The plan with the overrides applied; `None` if the config no longer
    /// defines the plan (the tenant's requests are then refused).
    pub limits: Option<PlanLimits>,
    pub suspended: bool,
    pub created_at_ms: i64,
    /// The `network` of its requests that give none.
    pub default_network: Option<superserver_wire::NetworkSpec>,
}

impl TenantEntry {
    pub fn info(&self) -> TenantInfo {
        TenantInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            plan: self.plan.clone(),
            email: self.email.clone(),
            overrides: self.overrides.clone(),
            limits: self.limits.clone().unwrap_or_else(unconfigured_limits),
            suspended: self.suspended,
            created_at_ms: self.created_at_ms,
            default_network: self.default_network.clone(),
        }
    }

    /// The limits in force, or why there are none.
    pub fn limits(&self) -> Result<&PlanLimits> {
        self.limits.as_ref().ok_or_else(|| {
            CoreError::Forbidden(format!(
                "tenant {} is on plan `{}`, which this server's config does not define; an admin must set \
                 another plan",
                self.name, self.plan
            ))
        })
    }
}

/// Shown for a tenant whose plan is gone: nothing allowed.
fn unconfigured_limits() -> PlanLimits {
    use superserver_wire::Quota::Limited;
    PlanLimits {
        executions_per_month: Limited(0),
        cpu_seconds_per_month: Limited(0),
        gb_seconds_per_month: Limited(0),
        max_memory_mb: 0,
        concurrent_sandboxes: Limited(0),
        max_timeout_seconds: 0,
        persistent_sandboxes: false,
        max_ttl_seconds: 0,
        network: false,
        dashboard: false,
        requests_per_second: 0.0,
        request_burst: 0,
        priority: 0,
    }
}

/// "a member", "an owner".
pub fn article(role: Role) -> String {
    let a = if matches!(role, Role::Owner | Role::Admin) { "an" } else { "a" };
    format!("{a} {role}")
}

/// The authenticated caller of an operation.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` when authentication is off.
    pub key_id: Option<String>,
    pub role: Role,
    pub tenant: Arc<TenantEntry>,
    /// The address the request came from, for the audit log.
    pub remote_addr: Option<String>,
}

impl Caller {
    /// Fails unless the caller's role is at least `min`.
    pub fn require(&self, min: Role, action: &str) -> Result<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!(
                "{action} needs the {min} role or higher; this key is {} key",
                article(self.role)
            )))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may see things of tenant `tenant_id`.
    pub fn sees(&self, tenant_id: &str) -> bool {
        self.is_admin() || self.tenant.id == tenant_id
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant.id
    }

    /// A feature the caller's plan must include.
    pub fn require_feature(&self, allowed: bool, feature: &str) -> Result<()> {
        if allowed {
            Ok(())
        } else {
            Err(CoreError::FeatureNotInPlan { feature: feature.to_string(), plan: self.tenant.plan.clone() })
        }
    }
}
