//! Custody secrets (`/v1/secrets`): a value the server keeps sealed and
//! sends only to the hosts it is bound to. The API never returns a value.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/secrets/{name}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecretRequest {
    /// The value (8 bytes to 64 KiB, no NUL).
    pub value: String,
    /// Names (`api.example.com`) and `*.suffix` patterns the value may be
    /// sent to; at least one.
    pub hosts: Vec<String>,
    /// The request header the value goes in on requests to those hosts,
    /// e.g. `Authorization` (added when the sandbox does not send it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The header's value with `{value}` where the secret goes, e.g.
    /// `Bearer {value}`; the bare value without one. Needs `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl std::fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretRequest")
            .field("value", &"<redacted>")
            .field("hosts", &self.hosts)
            .field("header", &self.header)
            .field("template", &self.template)
            .finish()
    }
}

/// A sandbox that held a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretUser {
    pub sandbox_id: String,
    /// When the sandbox was given the secret.
    pub at_ms: i64,
    /// `running`, `destroyed`, `expired`, `lost` (absent if unrecorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `oneshot` or `persistent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A secret as the API shows it: everything but its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    pub name: String,
    /// The tenant it belongs to (its name).
    pub tenant: String,
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Who last set it (`key key_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// The sandboxes that held it most recently, newest first.
    #[serde(default)]
    pub used_by: Vec<SecretUser>,
}

/// `GET /v1/secrets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretInfo>,
}
