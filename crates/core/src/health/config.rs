//! `[health]`: crash-loop detection and the probes SuperServer runs against
//! the services it discovered.

use serde::{Deserialize, Serialize};
use superserver_wire::ProbeKind;

/// `[health]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// A service that restarted this many times within
    /// `crash_loop_window_seconds` is unhealthy, however its probes went.
    pub crash_loop_restarts: u32,
    pub crash_loop_window_seconds: u64,
    /// Days of health history kept (uptime looks back 7 days at most).
    pub history_days: u64,
    /// `[[health.probes]]`.
    pub probes: Vec<ProbeConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { crash_loop_restarts: 3, crash_loop_window_seconds: 300, history_days: 90, probes: Vec::new() }
    }
}

/// One `[[health.probes]]` entry: a check run against every running service
/// whose id matches `service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Unique name, shown in reasons (`probe web: HTTP 503`).
    pub name: String,
    /// Service id, or a glob over ids with `*` (`container:web-*`).
    pub service: String,
    pub kind: ProbeKind,
    /// `http`: the URL (`http://` or `https://`); `{host}` becomes the
    /// service's address (a container's IP, else 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http`: the status expected (default: any 2xx or 3xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// `http`: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    /// `tcp`: `host:port` to connect to; `{host}` as for `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `command`: argv run in a fresh sandbox (no network); healthy on exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Failures in a row before the service is unhealthy.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds after the service started during which failures do not count.
    #[serde(default)]
    pub start_period_seconds: u64,
}

fn default_interval() -> u64 {
    10
}
fn default_timeout() -> u64 {
    5
}
fn default_retries() -> u32 {
    3
}

impl HealthConfig {
    /// Checks every probe; the message names the probe and the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.crash_loop_restarts == 0 || self.crash_loop_window_seconds == 0 {
            return Err("health.crash_loop_restarts and health.crash_loop_window_seconds must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.probes {
            p.validate().map_err(|e| format!("health.probes `{}`: {e}", p.name))?;
            if !names.insert(p.name.as_str()) {
                return Err(format!("health.probes: the name `{}` is used twice", p.name));
            }
        }
        Ok(())
    }
}

impl ProbeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Err("name must be 1 to 64 characters".into());
        }
        if self.service.is_empty() {
            return Err("service must name a service id or a glob such as `container:web-*`".into());
        }
        if self.interval_seconds == 0 || self.timeout_seconds == 0 || self.retries == 0 {
            return Err("interval_seconds, timeout_seconds and retries must be at least 1".into());
        }
        let only = |field: &str, set: bool| {
            if set {
                Err(format!("`{field}` does not apply to a {:?} probe", self.kind).to_lowercase())
            } else {
                Ok(())
            }
        };
        match self.kind {
            ProbeKind::Http => {
                let url = self.url.as_deref().ok_or("an http probe needs `url`")?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("url `{url}` must start with http:// or https://"));
                }
                if let Some(s) = self.expect_status {
                    if !(100..=599).contains(&s) {
                        return Err(format!("expect_status {s} is not an HTTP status"));
                    }
                }
                only("address", self.address.is_some())?;
                only("command", self.command.is_some())
            }
            ProbeKind::Tcp => {
                let a = self.address.as_deref().ok_or("a tcp probe needs `address` (host:port)")?;
                if a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                    return Err(format!("address `{a}` must be host:port"));
                }
                only("url", self.url.is_some())?;
                only("command", self.command.is_some())
            }
            ProbeKind::Command => {
                let c = self.command.as_deref().unwrap_or_default();
                if c.is_empty() || c[0].is_empty() {
                    return Err("a command probe needs `command`, a non-empty argv array".into());
                }
                only("url", self.url.is_some())?;
                only("address", self.address.is_some())
            }
        }
    }

    /// Whether the probe applies to the service `id`.
    pub fn matches(&self, id: &str) -> bool {
        glob_match(&self.service, id)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(toml_text: &str) -> Result<(), String> {
        let cfg: HealthConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        cfg.validate()
    }

    #[test]
    fn globs_match_ids() {
        assert!(glob_match("container:web", "container:web"));
        assert!(!glob_match("container:web", "container:web-1"));
        assert!(glob_match("container:web-*", "container:web-1"));
        assert!(glob_match("*", "unit:nginx.service"));
        assert!(glob_match("*:web*", "container:web-2"));
        assert!(glob_match("a*b*c", "a-b-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn probes_are_validated_with_their_name() {
        assert!(probe("[[probes]]\nname='w'\nservice='container:w'\nkind='http'\nurl='http://{host}:80/'").is_ok());
        let e = probe("[[probes]]\nname='w'\nservice='container:w'\nkind='http'").unwrap_err();
        assert!(e.contains("`w`") && e.contains("needs `url`"), "{e}");
        let e = probe("[[probes]]\nname='t'\nservice='x'\nkind='tcp'\naddress='nope'").unwrap_err();
        assert!(e.contains("host:port"), "{e}");
        let e = probe("[[probes]]\nname='c'\nservice='x'\nkind='command'\ncommand=[]").unwrap_err();
        assert!(e.contains("non-empty argv"), "{e}");
        let e = probe("[[probes]]\nname='c'\nservice='x'\nkind='tcp'\naddress='a:1'\nurl='http://x'").unwrap_err();
        assert!(e.contains("`url` does not apply"), "{e}");
        let e = probe("[[probes]]\nname='a'\nservice='x'\nkind='tcp'\naddress='a:1'\n[[probes]]\nname='a'\nservice='y'\nkind='tcp'\naddress='a:1'").unwrap_err();
        assert!(e.contains("used twice"), "{e}");
        let e = probe("[[probes]]\nname='a'\nservice='x'\nkind='tcp'\naddress='a:1'\nretries=0").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = probe("[[probes]]\nname='a'\nservice='x'\nkind='smtp'").unwrap_err();
        assert!(e.contains("smtp"), "{e}");
    }
}
