//! Tenants, API keys, plans, quotas, usage and the admin audit log.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::NetworkSpec;

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only: list and inspect sandboxes, executions and usage.
    Viewer,
    /// Run commands and manage sandboxes.
    Member,
    /// Everything in its tenant: keys, usage, sandboxes.
    Owner,
    /// Everything, in every tenant: tenants, plans, keys, the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Owner, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Owner => "owner",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quota: a number, or `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quota {
    Limited(u64),
    Unlimited,
}

impl utoipa::PartialSchema for Quota {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["unlimited"])))
            .description(Some("A non-negative number, or \"unlimited\""))
            .into()
    }
}

impl ToSchema for Quota {}

impl Quota {
    /// The limit, `None` when unlimited.
    pub fn limit(self) -> Option<u64> {
        match self {
            Quota::Limited(n) => Some(n),
            Quota::Unlimited => None,
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quota::Limited(n) => write!(f, "{n}"),
            Quota::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Quota {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Quota::Limited(n) => s.serialize_u64(*n),
            Quota::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Quota {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Quota::Limited(n)),
            Raw::Str(s) if s == "unlimited" => Ok(Quota::Unlimited),
            Raw::Str(s) => Err(serde::de::Error::custom(format!(
                "`{s}` is not a quota: use a non-negative number or \"unlimited\""
            ))),
        }
    }
}

/// Everything a plan grants. Plans are defined in the server's config
/// (`[plans.NAME]`); a tenant may override any field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Commands run (one-shot runs and execs) per calendar month (UTC).
    pub executions_per_month: Quota,
    /// CPU time of those commands per month, in seconds.
    pub cpu_seconds_per_month: Quota,
    /// Memory × wall time per month: the sandbox's memory limit in GB times
    /// the command's wall time in seconds.
    pub gb_seconds_per_month: Quota,
    /// Largest memory limit a sandbox may have, MiB.
    pub max_memory_mb: u64,
    /// Sandboxes alive at once: persistent ones plus one-shot runs in progress.
    pub concurrent_sandboxes: Quota,
    /// Longest command timeout, seconds.
    pub max_timeout_seconds: u64,
    /// Whether persistent sandboxes may be created.
    pub persistent_sandboxes: bool,
    /// Longest TTL of a persistent sandbox, seconds.
    pub max_ttl_seconds: u64,
    /// Whether sandboxes may have governed network access (`network.mode = policy`).
    pub network: bool,
    /// Whether the web dashboard may be used (else the API only).
    pub dashboard: bool,
    /// Requests per second each API key may make (sustained).
    pub requests_per_second: f64,
    /// Requests a key may make in a burst above the sustained rate.
    pub request_burst: u32,
    /// Higher is served first when the warm pool is short.
    pub priority: u8,
}

/// Per-tenant changes to its plan: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executions_per_month: Option<Quota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds_per_month: Option<Quota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gb_seconds_per_month: Option<Quota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_sandboxes: Option<Quota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_sandboxes: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

impl PlanOverrides {
    pub fn is_empty(&self) -> bool {
        *self == PlanOverrides::default()
    }
}

impl PlanLimits {
    /// This plan with `o` applied.
    pub fn with(&self, o: &PlanOverrides) -> PlanLimits {
        PlanLimits {
            executions_per_month: o.executions_per_month.unwrap_or(self.executions_per_month),
            cpu_seconds_per_month: o.cpu_seconds_per_month.unwrap_or(self.cpu_seconds_per_month),
            gb_seconds_per_month: o.gb_seconds_per_month.unwrap_or(self.gb_seconds_per_month),
            max_memory_mb: o.max_memory_mb.unwrap_or(self.max_memory_mb),
            concurrent_sandboxes: o.concurrent_sandboxes.unwrap_or(self.concurrent_sandboxes),
            max_timeout_seconds: o.max_timeout_seconds.unwrap_or(self.max_timeout_seconds),
            persistent_sandboxes: o.persistent_sandboxes.unwrap_or(self.persistent_sandboxes),
            max_ttl_seconds: o.max_ttl_seconds.unwrap_or(self.max_ttl_seconds),
            network: o.network.unwrap_or(self.network),
            dashboard: o.dashboard.unwrap_or(self.dashboard),
            requests_per_second: o.requests_per_second.unwrap_or(self.requests_per_second),
            request_burst: o.request_burst.unwrap_or(self.request_burst),
            priority: o.priority.unwrap_or(self.priority),
        }
    }
}

/// `GET /v1/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanList {
    pub plans: BTreeMap<String, PlanLimits>,
}

/// `POST /v1/tenants`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Unique name: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
    pub name: String,
    /// Plan name (default: the server's `tenants.default_plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Where quota warnings are e-mailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<PlanOverrides>,
}

/// `PATCH /v1/tenants/{tenant}`: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// An empty string removes the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Replaces the tenant's overrides as a whole (`{}` clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<PlanOverrides>,
    /// The `network` of the tenant's runs and sandboxes that give none;
    /// `{"mode": "none"}` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network: Option<NetworkSpec>,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantInfo {
    pub id: String,
    pub name: String,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "PlanOverrides::is_empty")]
    pub overrides: PlanOverrides,
    /// The plan with the overrides applied: what is enforced.
    pub limits: PlanLimits,
    pub suspended: bool,
    pub created_at_ms: i64,
    /// The `network` of the tenant's runs and sandboxes that give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network: Option<NetworkSpec>,
}

/// `GET /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

/// `POST /v1/keys`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Tenant name or id (default: the caller's own tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Default `member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A label for people: what the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix time in milliseconds after which the key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
}

/// An API key as listed: never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    /// The key's first characters, as shown in lists (`ssk_…`).
    pub prefix: String,
    pub tenant_id: String,
    pub tenant: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
}

/// `POST /v1/keys` answer: the only time the key itself is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The secret. Store it now: the server keeps only its hash.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `GET /v1/whoami`: the caller's key, role and tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub key: KeyInfo,
    pub tenant: TenantInfo,
}

/// The state of one quota of a tenant in the current period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaState {
    /// `executions`, `cpu_seconds`, `gb_seconds` or `concurrent_sandboxes`.
    pub quota: String,
    pub used: f64,
    /// `None` when unlimited.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Start of the next period (unix ms); absent for `concurrent_sandboxes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at_ms: Option<i64>,
    /// The same instant in RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
}

/// Quota state of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TenantQuotas {
    pub tenant_id: String,
    pub tenant: String,
    pub plan: String,
    /// Start of the current period (unix ms).
    pub period_start_ms: i64,
    pub quotas: Vec<QuotaState>,
}

/// `GET /v1/quotas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuotaList {
    pub tenants: Vec<TenantQuotas>,
}

/// Usage summed over a set of executions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    pub executions: u64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub gb_seconds: f64,
    pub peak_memory_bytes_max: u64,
    pub output_bytes: u64,
}

/// One group of `GET /v1/usage?group_by=…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroup {
    /// The day (`2026-11-23`), key id or sandbox id, by `group_by`.
    pub group: String,
    pub tenant_id: String,
    pub tenant: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    pub from_ms: i64,
    pub to_ms: i64,
    /// `day`, `key`, `sandbox` or `tenant`.
    pub group_by: String,
    pub groups: Vec<UsageGroup>,
    pub totals: UsageTotals,
}

/// One entry of the admin audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    /// Key that made the change (`None` for the server itself, e.g. bootstrap).
    #[serde(default)]
    pub actor_key_id: Option<String>,
    #[serde(default)]
    pub actor_tenant: Option<String>,
    /// Address the request came from.
    #[serde(default)]
    pub remote_addr: Option<String>,
    /// E.g. `tenant.create`, `key.revoke`.
    pub action: String,
    /// The tenant or key changed.
    pub target: String,
    /// What changed.
    pub details: serde_json::Value,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

/// One notification in the outbox: a webhook delivery or an e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboxEntry {
    pub event_id: String,
    pub event_type: String,
    /// `webhook:<name>` or `email:<address>`.
    pub destination: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    pub created_at_ms: i64,
    pub attempts: u32,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    #[serde(default)]
    pub next_attempt_at_ms: Option<i64>,
    #[serde(default)]
    pub delivered_at_ms: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// `GET /v1/outbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutboxList {
    pub entries: Vec<OutboxEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_a_number_or_unlimited() {
        assert_eq!(serde_json::from_str::<Quota>("100").unwrap(), Quota::Limited(100));
        assert_eq!(serde_json::from_str::<Quota>("\"unlimited\"").unwrap(), Quota::Unlimited);
        let err = serde_json::from_str::<Quota>("\"lots\"").unwrap_err();
        assert!(err.to_string().contains("lots"), "{err}");
        assert_eq!(serde_json::to_string(&Quota::Unlimited).unwrap(), "\"unlimited\"");
        assert_eq!(serde_json::to_string(&Quota::Limited(7)).unwrap(), "7");
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Owner && Role::Owner < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn created_key_flattens_its_info() {
        let info = KeyInfo {
            id: "key_1".into(),
            prefix: "ssk_ab".into(),
            tenant_id: "tn_1".into(),
            tenant: "acme".into(),
            role: Role::Member,
            name: None,
            created_at_ms: 1,
            expires_at_ms: None,
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        let v = serde_json::to_value(CreatedKey { key: "ssk_secret".into(), info }).unwrap();
        assert_eq!(v["key"], "ssk_secret");
        assert_eq!(v["role"], "member");
        assert_eq!(v["tenant"], "acme");
    }
}
