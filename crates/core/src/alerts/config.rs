//! `[alerts]`: rules (what to watch) and channels (whom to tell).
//!
//! ```toml
//! [[alerts.rules]]
//! name = "down"
//! kind = "service_down"        # service_down | anomaly | metric
//! for_seconds = 60             # how long the condition must hold
//! severity = "critical"        # info | warning | critical
//! cooldown_seconds = 3600      # between two notifications of one alert
//! channels = ["ops"]           # default: every channel
//! services = ["container:*"]   # globs on the service id; default: all
//! compose_projects = ["shop"]  # default: any
//!
//! [[alerts.channels]]
//! name = "ops"
//! kind = "webhook"             # webhook | slack | email
//! url = "https://hooks.example.com/alerts"
//! secret_file = "/run/secrets/alerts-hook"
//! ```

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use superserver_notify::WebhookEndpoint;
use superserver_wire::{AnomalyKind, RuleKind, Severity};

/// Longest rule or channel name.
const MAX_NAME: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules and notify.
    pub enabled: bool,
    /// Seconds between two evaluations of the service_down and metric rules.
    pub evaluate_interval_seconds: u64,
    /// Log lines quoted in an alert's context.
    pub log_lines: usize,
    /// Rules; when none are given, [`default_rules`].
    pub rules: Vec<RuleConfig>,
    pub channels: Vec<ChannelConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { enabled: true, evaluate_interval_seconds: 5, log_lines: 20, rules: Vec::new(), channels: Vec::new() }
    }
}

/// Comparison of a metric rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// One `[[alerts.rules]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique; part of each alert's fingerprint.
    pub name: String,
    pub kind: RuleKind,
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// Least time between two notifications of one alert (repeats while it
    /// fires, or a new alert of the same rule and service), default 3600.
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u64,
    /// Channel names; default every channel.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Globs (`*`, `?`) on the service id; default all.
    #[serde(default)]
    pub services: Vec<String>,
    /// Compose projects; default any (a service outside compose matches only when this is empty).
    #[serde(default)]
    pub compose_projects: Vec<String>,
    /// service_down and metric: how long the condition must hold (default 60 and 0).
    #[serde(default)]
    pub for_seconds: Option<u64>,
    /// anomaly: kinds it covers; default all.
    #[serde(default)]
    pub anomaly_kinds: Vec<AnomalyKind>,
    /// metric: the series, compared with `op` and `value`.
    #[serde(default)]
    pub series: Option<String>,
    #[serde(default)]
    pub op: Option<Op>,
    #[serde(default)]
    pub value: Option<f64>,
    /// metric: the alert resolves only once the series is back past this
    /// (hysteresis); default `value`.
    #[serde(default)]
    pub clear_value: Option<f64>,
    /// metric: the service the alert is about (default `host`).
    #[serde(default)]
    pub service: Option<String>,
}

fn default_severity() -> Severity {
    Severity::Warning
}
fn default_cooldown() -> u64 {
    3600
}

/// Rules used when `[[alerts.rules]]` is absent: any service down for 60 s
/// (critical), and every anomaly (warning).
pub fn default_rules() -> Vec<RuleConfig> {
    let base = |name: &str, kind, severity, for_seconds| RuleConfig {
        name: name.into(),
        kind,
        severity,
        cooldown_seconds: default_cooldown(),
        channels: None,
        services: Vec::new(),
        compose_projects: Vec::new(),
        for_seconds,
        anomaly_kinds: Vec::new(),
        series: None,
        op: None,
        value: None,
        clear_value: None,
        service: None,
    };
    vec![
        base("service_down", RuleKind::ServiceDown, Severity::Critical, Some(60)),
        base("anomaly", RuleKind::Anomaly, Severity::Warning, None),
        egress_rule(),
    ]
}

/// Requests stopped for carrying a secret (critical; one alert per sandbox).
fn egress_rule() -> RuleConfig {
    RuleConfig {
        name: "egress_secret".into(),
        kind: RuleKind::Egress,
        severity: Severity::Critical,
        cooldown_seconds: default_cooldown(),
        channels: None,
        services: Vec::new(),
        compose_projects: Vec::new(),
        for_seconds: None,
        anomaly_kinds: Vec::new(),
        series: None,
        op: None,
        value: None,
        clear_value: None,
        service: None,
    }
}

/// Kind of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Signed JSON, like `[[webhooks]]`.
    Webhook,
    /// A Slack-compatible incoming webhook (`{"text", "blocks"}`).
    Slack,
    /// E-mail through `[smtp]`.
    Email,
}

/// One `[[alerts.channels]]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// webhook, slack: where to POST.
    #[serde(default)]
    pub url: Option<String>,
    /// webhook: the HMAC key (or `secret_file`).
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// email: recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// webhook, slack: bound on one delivery, default 10 000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A Slack URL is a secret too.
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_file", &self.secret_file)
            .field("to", &self.to)
            .finish()
    }
}

impl ChannelConfig {
    /// The webhook endpoint a `webhook` or `slack` channel posts to.
    pub fn endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint {
            name: self.name.clone(),
            url: self.url.clone().unwrap_or_default(),
            secret: match self.kind {
                // Slack is not signed; the endpoint check wants a key.
                ChannelKind::Slack => Some("unsigned".into()),
                _ => self.secret.clone(),
            },
            secret_file: self.secret_file.clone(),
            events: vec!["*".into()],
            timeout_ms: self.timeout_ms,
        }
    }

    fn validate(&self, smtp: bool) -> Result<(), String> {
        let what = format!("alerts.channels {:?}", self.name);
        let url_only = |field: &str, set: bool| {
            if set {
                Err(format!("{what}: {field} is not used by a {:?} channel", self.kind))
            } else {
                Ok(())
            }
        };
        match self.kind {
            ChannelKind::Webhook => {
                self.endpoint().validate().map_err(|e| format!("{what}: {e}"))?;
                self.endpoint().resolve_secret().map_err(|e| format!("{what}: {e}"))?;
                url_only("to", !self.to.is_empty())
            }
            ChannelKind::Slack => {
                if self.url.is_none() {
                    return Err(format!("{what}: set url (the incoming webhook's URL)"));
                }
                self.endpoint().validate().map_err(|e| format!("{what}: {e}"))?;
                url_only("secret", self.secret.is_some() || self.secret_file.is_some())?;
                url_only("to", !self.to.is_empty())
            }
            ChannelKind::Email => {
                if !smtp {
                    return Err(format!("{what}: an email channel needs an [smtp] server"));
                }
                if self.to.is_empty() {
                    return Err(format!("{what}: set to (the recipients)"));
                }
                if let Some(bad) = self.to.iter().find(|a| !valid_address(a)) {
                    return Err(format!("{what}: {bad:?} is not an e-mail address"));
                }
                url_only("url", self.url.is_some())?;
                url_only("secret", self.secret.is_some() || self.secret_file.is_some())
            }
        }
    }
}

fn valid_address(a: &str) -> bool {
    a.len() <= 254
        && !a.chars().any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>' || c == ',')
        && a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= MAX_NAME && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl AlertsConfig {
    /// A copy without secrets (webhook keys, Slack URLs), for logging.
    pub fn redacted(&self) -> Self {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "<redacted>".to_string());
        let channels = self
            .channels
            .iter()
            .map(|c| ChannelConfig {
                secret: hide(&c.secret),
                url: if c.kind == ChannelKind::Slack {
                    hide(&c.url)
                } else {
                    c.url.as_deref().map(superserver_notify::redact_url)
                },
                ..c.clone()
            })
            .collect();
        Self { channels, ..self.clone() }
    }

    /// The rules in force.
    /// The rules in force. Secret alerts are always on: configured rules
    /// without an `egress` one get the default.
    pub fn effective_rules(&self) -> Vec<RuleConfig> {
        if self.rules.is_empty() {
            default_rules()
        } else if self.rules.iter().any(|r| r.kind == RuleKind::Egress) {
            self.rules.clone()
        } else {
            let mut rules = self.rules.clone();
            rules.push(egress_rule());
            rules
        }
    }

    /// Checks rules and channels; the message names the rule or channel and the problem.
    pub fn validate(&self, smtp: bool) -> Result<(), String> {
        if self.evaluate_interval_seconds == 0 {
            return Err("alerts.evaluate_interval_seconds must be at least 1".into());
        }
        if self.log_lines > 1000 {
            return Err("alerts.log_lines must be at most 1000".into());
        }
        let mut channels = HashSet::new();
        for c in &self.channels {
            if !valid_name(&c.name) {
                return Err(format!(
                    "alerts.channels {:?}: name must be 1 to {MAX_NAME} letters, digits, `_`, `-` or `.`",
                    c.name
                ));
            }
            if !channels.insert(c.name.as_str()) {
                return Err(format!("alerts.channels: the name {:?} is used twice", c.name));
            }
            c.validate(smtp)?;
        }
        let mut rules = HashSet::new();
        for r in &self.rules {
            let what = format!("alerts.rules {:?}", r.name);
            if !valid_name(&r.name) {
                return Err(format!("{what}: name must be 1 to {MAX_NAME} letters, digits, `_`, `-` or `.`"));
            }
            if !rules.insert(r.name.as_str()) {
                return Err(format!("alerts.rules: the name {:?} is used twice", r.name));
            }
            for ch in r.channels.iter().flatten() {
                if !channels.contains(ch.as_str()) {
                    return Err(format!("{what}: channel {ch:?} is not in [[alerts.channels]]"));
                }
            }
            if r.services.iter().any(|g| g.is_empty() || g.len() > 512) {
                return Err(format!("{what}: a services glob is empty or longer than 512 bytes"));
            }
            let metric_fields = r.series.is_some() || r.op.is_some() || r.value.is_some() || r.clear_value.is_some();
            match r.kind {
                RuleKind::Metric => {
                    let (Some(series), Some(op), Some(value)) = (&r.series, r.op, r.value) else {
                        return Err(format!(
                            "{what}: a metric rule needs series, op (\">\", \">=\", \"<\", \"<=\") and value"
                        ));
                    };
                    if series.is_empty() || !value.is_finite() {
                        return Err(format!("{what}: series must not be empty and value must be a number"));
                    }
                    if let Some(clear) = r.clear_value {
                        let wrong_side = match op {
                            Op::Gt | Op::Ge => clear > value,
                            Op::Lt | Op::Le => clear < value,
                        };
                        if !clear.is_finite() || wrong_side {
                            return Err(format!(
                                "{what}: clear_value {clear} must be on the healthy side of value {value} (hysteresis)"
                            ));
                        }
                    }
                }
                _ if metric_fields || r.service.is_some() => {
                    return Err(format!("{what}: series, op, value, clear_value and service are for metric rules"));
                }
                _ => {}
            }
            if r.kind != RuleKind::Anomaly && !r.anomaly_kinds.is_empty() {
                return Err(format!("{what}: anomaly_kinds is for anomaly rules"));
            }
            if r.kind == RuleKind::Anomaly && r.for_seconds.is_some() {
                return Err(format!("{what}: for_seconds is not used by anomaly rules"));
            }
        }
        Ok(())
    }
}

/// `*` matches any run of characters, `?` one; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl RuleConfig {
    /// Whether the rule covers a service (id and compose project).
    pub fn selects(&self, service: &str, compose_project: Option<&str>) -> bool {
        (self.services.is_empty() || self.services.iter().any(|g| glob(g, service)))
            && (self.compose_projects.is_empty()
                || compose_project.is_some_and(|p| self.compose_projects.iter().any(|c| c == p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("container:*", "container:web"));
        assert!(glob("*web*", "container:web-1"));
        assert!(glob("unit:?sh.service", "unit:ssh.service"));
        assert!(!glob("container:*", "unit:web"));
        assert!(glob("*", ""));
        assert!(!glob("a", "ab"));
    }

    fn parse(toml: &str) -> AlertsConfig {
        toml::from_str(toml).expect("valid toml")
    }

    #[test]
    fn bad_rules_are_named() {
        let c = parse("[[rules]]\nname = \"m\"\nkind = \"metric\"\nseries = \"cpu\"\n");
        assert!(c.validate(false).unwrap_err().contains("\"m\": a metric rule needs series, op"));
        let c = parse("[[rules]]\nname = \"d\"\nkind = \"service_down\"\nchannels = [\"nope\"]\n");
        assert!(c.validate(false).unwrap_err().contains("channel \"nope\" is not in"));
        let c = parse(
            "[[rules]]\nname = \"m\"\nkind = \"metric\"\nseries = \"cpu\"\nop = \">\"\nvalue = 90\nclear_value = 95\n",
        );
        assert!(c.validate(false).unwrap_err().contains("healthy side"));
        let c = parse("[[channels]]\nname = \"mail\"\nkind = \"email\"\nto = [\"a@b\"]\n");
        assert!(c.validate(false).unwrap_err().contains("needs an [smtp] server"));
        assert!(
            toml::from_str::<AlertsConfig>("[[rules]]\nname = \"x\"\nkind = \"service_down\"\nbogus = 1\n").is_err()
        );
        assert!(AlertsConfig::default().validate(false).is_ok());
        let kinds: Vec<RuleKind> = AlertsConfig::default().effective_rules().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RuleKind::ServiceDown, RuleKind::Anomaly, RuleKind::Egress]);
        // Secret alerts stay on when rules are configured without one.
        let c = parse("[[rules]]\nname = \"d\"\nkind = \"service_down\"\n");
        let names: Vec<String> = c.effective_rules().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["d", "egress_secret"]);
    }
}
