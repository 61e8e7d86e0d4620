//! Egress governance: a sandbox's network mode and policy, and the audit
//! events of what it tried to reach.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `"network"` of a run or a persistent sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `none` (the default: loopback only) or `policy` (governed egress).
    #[serde(default)]
    pub mode: NetworkMode,
    /// What may be reached; everything else is unknown (see `on_unknown`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<EgressRule>,
    /// What may never be reached: deny wins over allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<EgressRule>,
    /// What happens to a destination no rule matches. Default `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unknown: Option<OnUnknown>,
    /// Which events are kept. Default `blocks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<EgressLogLevel>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// No network: loopback only.
    #[default]
    None,
    /// Every connection and DNS query goes through the egress proxy.
    Policy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnknown {
    #[default]
    Deny,
    /// Hold the connection while a person decides (`/v1/approvals`).
    Ask,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EgressLogLevel {
    /// Only counts are kept.
    Off,
    /// Denials are kept.
    #[default]
    Blocks,
    /// Every connection and query is kept.
    Full,
}

/// One allow or deny rule. As a string: `host[:port]` where host is a name,
/// `*.suffix`, an IPv4 address or a CIDR, e.g. `api.example.com`,
/// `*.example.com:443`, `10.0.0.0/8:5432`. As an object it can also name
/// ports, HTTP methods and path prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EgressRule {
    Short(String),
    Full(EgressRuleSpec),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressRuleSpec {
    /// A name, `*.suffix`, an IPv4 address or a CIDR.
    pub host: String,
    /// Ports the rule covers; empty is every port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// HTTP methods the rule covers (upper case); empty is every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Path prefixes the rule covers; empty is every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// What the proxy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EgressDecision {
    Allow,
    Deny,
}

impl EgressDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// One connection attempt or DNS query of a sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EgressEvent {
    /// Monotonic id: events after a given one have higher ids.
    pub id: i64,
    pub at_ms: i64,
    pub tenant: String,
    pub sandbox_id: String,
    /// The one-shot run or exec it belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// `dns`, `tcp`, `http`, `https` or `tls`.
    pub protocol: String,
    /// The name asked for or reached (DNS name, SNI or `Host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The address the sandbox connected to (as it saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub decision: EgressDecision,
    /// The rule that decided, or why nothing allowed it (`default deny`,
    /// `private address`, `dns tunnelling` …).
    pub rule: String,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub duration_ms: f64,
}

/// `GET /v1/egress/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EgressEventList {
    pub events: Vec<EgressEvent>,
}

/// What one sandbox (or run) reached, in its results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EgressSummary {
    /// Names (or addresses) reached, each once, sorted.
    pub hosts: Vec<String>,
    pub connections: u64,
    pub denials: u64,
    pub dns_queries: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// A connection held until a person decides (`on_unknown: ask`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: String,
    pub tenant: String,
    pub sandbox_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub requested_at_ms: i64,
    /// When the connection is denied if nobody decides.
    pub expires_at_ms: i64,
    pub state: ApprovalState,
    /// Who decided (an API key id, a dashboard user, or `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    AllowedOnce,
    AllowedAlways,
    Denied,
    /// Nobody decided in time: denied.
    Expired,
}

/// `GET /v1/approvals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    AllowOnce,
    /// Allow, and add the destination to the sandbox's policy.
    AllowAlways,
    Deny,
}

/// `POST /v1/approvals/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideApprovalRequest {
    pub decision: ApprovalDecision,
}
