//! `[egress]`: how governed sandboxes reach the network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Names answered from this table rather than the host's resolver, e.g.
    /// `"api.internal.example" = "10.1.2.3"` (air-gapped sites, tests). These
    /// addresses are trusted: the guard against private and loopback
    /// addresses does not apply to them.
    pub hosts: BTreeMap<String, IpAddr>,
    /// Extra CA certificates (PEM) that upstream TLS certificates may chain to.
    pub extra_ca_file: Option<PathBuf>,
    /// Longest a connect or an upstream name lookup may take, milliseconds.
    pub connect_timeout_ms: u64,
    /// How long a connection waits for a person's decision (`on_unknown = "ask"`).
    pub approval_timeout_seconds: u64,
    /// Audit events older than this are removed.
    pub retention_days: u64,
    /// The key custody secrets are sealed with (created, mode 0600, on a
    /// first start); default `DATA_DIR/secrets.key`. Keep a copy: without
    /// it the stored secrets cannot be opened.
    pub secrets_key_file: Option<PathBuf>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            hosts: BTreeMap::new(),
            extra_ca_file: None,
            connect_timeout_ms: 10_000,
            approval_timeout_seconds: 30,
            retention_days: 30,
            secrets_key_file: None,
        }
    }
}

impl EgressConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        for name in self.hosts.keys() {
            if !superserver_egress::policy::is_dns_name(name) || name.to_ascii_lowercase() != *name {
                return Err(CoreError::Config(format!("egress.hosts: `{name}` is not a lower-case DNS name")));
            }
        }
        if self.connect_timeout_ms == 0 || self.approval_timeout_seconds == 0 || self.retention_days == 0 {
            return Err(CoreError::Config(
                "egress.connect_timeout_ms, egress.approval_timeout_seconds and egress.retention_days must be at least 1"
                    .into(),
            ));
        }
        if let Some(f) = &self.extra_ca_file {
            if !f.is_file() {
                return Err(CoreError::Config(format!("egress.extra_ca_file {}: no such file", f.display())));
            }
        }
        Ok(())
    }
}
