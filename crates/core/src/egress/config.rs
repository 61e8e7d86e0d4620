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
    /// Intercept TLS to every named host (so content inspection sees all
    /// HTTPS), not only to hosts whose requests the policy decides by method
    /// or path and from sandboxes holding secrets. Clients that pin
    /// certificates then fail.
    pub intercept_all_tls: bool,
    /// Content inspection of outbound HTTP requests.
    pub dlp: DlpConfig,
}

/// `[egress.dlp]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DlpConfig {
    /// Scan requests' headers and bodies for custody secrets' values and
    /// for known secret patterns.
    pub enabled: bool,
    /// Rules in gitleaks' TOML format added to the built-in ones (a rule
    /// with a built-in id replaces it; `[extend] disabledRules` removes
    /// built-in ones). Each rule may say `action = "block"` (the default) or
    /// `"log"`.
    pub rules_file: Option<PathBuf>,
}

impl Default for DlpConfig {
    fn default() -> Self {
        Self { enabled: true, rules_file: None }
    }
}

impl DlpConfig {
    /// The rules in force, or `None` with inspection off.
    pub fn rules(&self) -> Result<Option<superserver_egress::DlpRules>> {
        if !self.enabled {
            return Ok(None);
        }
        let mut rules = superserver_egress::DlpRules::default_rules();
        if let Some(f) = &self.rules_file {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CoreError::Config(format!("egress.dlp.rules_file {}: {e}", f.display())))?;
            let extra = superserver_egress::DlpRules::from_toml(&text)
                .map_err(|e| CoreError::Config(format!("egress.dlp.rules_file {}: {e}", f.display())))?;
            rules.extend(extra);
        }
        Ok(Some(rules))
    }
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
            intercept_all_tls: false,
            dlp: DlpConfig::default(),
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
        self.dlp.rules()?;
        if let Some(f) = &self.extra_ca_file {
            if !f.is_file() {
                return Err(CoreError::Config(format!("egress.extra_ca_file {}: no such file", f.display())));
            }
        }
        Ok(())
    }
}
