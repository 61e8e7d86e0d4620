//! A sandbox's egress policy, compiled from its [`NetworkSpec`]: what a
//! name, address, port, method and path may reach.
//!
//! Deny rules win over allow rules. A destination no rule matches is
//! *unknown*: denied, or held for a person's decision when the policy says
//! `on_unknown: ask`.

use std::net::Ipv4Addr;

use superserver_wire::{EgressLogLevel, EgressRule, EgressRuleSpec, NetworkSpec, OnUnknown};

use crate::error::{EgressError, Result};

/// What a rule's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// An exact name (lower case, no trailing dot).
    Name(String),
    /// `*.suffix`: any name ending in `.suffix` (not `suffix` itself).
    Wildcard(String),
    /// An IPv4 network (a single address is a /32).
    Net { addr: u32, mask: u32 },
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as the user wrote it, for audit events.
    pub text: String,
    host: HostPattern,
    ports: Vec<u16>,
    methods: Vec<String>,
    paths: Vec<String>,
}

/// What a connection looks like to the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The name the sandbox asked for (DNS, SNI or `Host`), lower case.
    pub name: Option<&'a str>,
    /// The address it connected to, when it used no name.
    pub ip: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by the named rule.
    Allow(String),
    /// Denied by the named rule.
    Deny(String),
    /// No rule matched.
    Unknown,
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
    pub on_unknown: OnUnknown,
    pub log: EgressLogLevel,
}

impl Policy {
    /// Compiles `spec`, naming the first bad rule.
    pub fn compile(spec: &NetworkSpec) -> Result<Self> {
        let compile_all = |rules: &[EgressRule], which: &str| {
            rules
                .iter()
                .map(|r| Rule::compile(r).map_err(|e| EgressError::InvalidRule(format!("{which}: {e}"))))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Self {
            allow: compile_all(&spec.allow, "allow")?,
            deny: compile_all(&spec.deny, "deny")?,
            on_unknown: spec.on_unknown.unwrap_or_default(),
            log: spec.log.unwrap_or_default(),
        })
    }

    /// Adds an allow rule (an approval's `allow_always`).
    pub fn add_allow(&mut self, rule: &EgressRule) -> Result<()> {
        self.allow.push(Rule::compile(rule)?);
        Ok(())
    }

    /// The verdict for a connection (or request) to `t`. A rule with methods
    /// or paths only matches when they are known and fit.
    pub fn decide(&self, t: &Target<'_>) -> Verdict {
        if let Some(r) = self.deny.iter().find(|r| r.matches_deny(t)) {
            return Verdict::Deny(r.text.clone());
        }
        if let Some(r) = self.allow.iter().find(|r| r.matches(t)) {
            return Verdict::Allow(r.text.clone());
        }
        Verdict::Unknown
    }

    /// The verdict for a DNS query of `name`: allowed when some allow rule
    /// names it (whatever its ports, methods or paths), denied when a deny
    /// rule covers the name entirely.
    pub fn decide_name(&self, name: &str) -> Verdict {
        if let Some(r) = self.deny.iter().find(|r| r.is_name_only() && r.host.matches_name(name)) {
            return Verdict::Deny(r.text.clone());
        }
        if let Some(r) = self.allow.iter().find(|r| r.host.matches_name(name)) {
            return Verdict::Allow(r.text.clone());
        }
        Verdict::Unknown
    }

    /// Whether an allow rule for this destination restricts methods or
    /// paths, so that HTTPS to it has to be inspected to be decided.
    pub fn needs_request_view(&self, name: &str) -> bool {
        self.allow.iter().chain(&self.deny).any(|r| r.host.matches_name(name) && !r.is_name_only_or_ports())
    }

    /// Whether an IP rule explicitly allows `ip` (private and host addresses
    /// are reachable only so).
    pub fn allows_address_explicitly(&self, ip: Ipv4Addr, port: u16) -> Option<String> {
        self.allow
            .iter()
            .find(|r| matches!(r.host, HostPattern::Net { .. }) && r.host.matches_ip(ip) && r.port_ok(Some(port)))
            .map(|r| r.text.clone())
    }
}

impl Rule {
    fn compile(rule: &EgressRule) -> Result<Self> {
        let spec = match rule {
            EgressRule::Short(s) => parse_short(s)?,
            EgressRule::Full(spec) => spec.clone(),
        };
        let text = match rule {
            EgressRule::Short(s) => s.clone(),
            EgressRule::Full(_) => serde_json::to_string(&spec).unwrap_or_else(|_| spec.host.clone()),
        };
        let host = parse_host(&spec.host)?;
        for m in &spec.methods {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(EgressError::InvalidRule(format!(
                    "`{text}`: method `{m}` must be an upper-case HTTP method such as GET"
                )));
            }
        }
        for p in &spec.paths {
            if !p.starts_with('/') {
                return Err(EgressError::InvalidRule(format!("`{text}`: path `{p}` must start with `/`")));
            }
        }
        if spec.ports.contains(&0) {
            return Err(EgressError::InvalidRule(format!("`{text}`: port 0 is not a port")));
        }
        Ok(Self { text, host, ports: spec.ports, methods: spec.methods, paths: spec.paths })
    }

    fn port_ok(&self, port: Option<u16>) -> bool {
        self.ports.is_empty() || port.is_some_and(|p| self.ports.contains(&p))
    }

    fn host_ok(&self, t: &Target<'_>) -> bool {
        match (&self.host, t.name, t.ip) {
            (HostPattern::Net { .. }, _, Some(ip)) => self.host.matches_ip(ip),
            (HostPattern::Net { .. }, Some(name), None) => {
                name.parse::<Ipv4Addr>().is_ok_and(|ip| self.host.matches_ip(ip))
            }
            (_, Some(name), _) => self.host.matches_name(name),
            _ => false,
        }
    }

    fn request_ok(&self, t: &Target<'_>) -> bool {
        let method_ok = self.methods.is_empty() || t.method.is_some_and(|m| self.methods.iter().any(|x| x == m));
        let path_ok = self.paths.is_empty() || t.path.is_some_and(|p| self.paths.iter().any(|x| p.starts_with(x)));
        method_ok && path_ok
    }

    fn matches(&self, t: &Target<'_>) -> bool {
        self.host_ok(t) && self.port_ok(t.port) && self.request_ok(t)
    }

    /// A deny rule with methods or paths also matches while they are not yet
    /// known: a connection that might carry a denied request is not let
    /// through blind.
    fn matches_deny(&self, t: &Target<'_>) -> bool {
        let method_ok = self.methods.is_empty() || t.method.is_none_or(|m| self.methods.iter().any(|x| x == m));
        let path_ok = self.paths.is_empty() || t.path.is_none_or(|p| self.paths.iter().any(|x| p.starts_with(x)));
        self.host_ok(t) && self.port_ok(t.port) && method_ok && path_ok
    }

    fn is_name_only(&self) -> bool {
        self.ports.is_empty() && self.is_name_only_or_ports()
    }

    fn is_name_only_or_ports(&self) -> bool {
        self.methods.is_empty() && self.paths.is_empty()
    }
}

impl HostPattern {
    fn matches_name(&self, name: &str) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Wildcard(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            Self::Net { .. } => name.parse::<Ipv4Addr>().is_ok_and(|ip| self.matches_ip(ip)),
        }
    }

    fn matches_ip(&self, ip: Ipv4Addr) -> bool {
        match self {
            Self::Net { addr, mask } => u32::from(ip) & mask == *addr,
            _ => false,
        }
    }
}

/// `host[:port]` → a rule spec.
fn parse_short(s: &str) -> Result<EgressRuleSpec> {
    let s = s.trim();
    if s.contains("://") {
        return Err(EgressError::InvalidRule(format!("`{s}`: write a host, not a URL (e.g. `api.example.com:443`)")));
    }
    let (host, ports) = match s.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 =
                p.parse().map_err(|_| EgressError::InvalidRule(format!("`{s}`: `{p}` is not a port number")))?;
            (h.to_string(), vec![port])
        }
        None => (s.to_string(), Vec::new()),
    };
    Ok(EgressRuleSpec { host, ports, methods: Vec::new(), paths: Vec::new() })
}

fn parse_host(h: &str) -> Result<HostPattern> {
    let bad = |why: &str| EgressError::InvalidRule(format!("host `{h}`: {why}"));
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() {
        return Err(bad("is empty"));
    }
    if let Some((addr, bits)) = h.split_once('/') {
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("is not an IPv4 network such as 10.0.0.0/8"))?;
        let bits: u32 = bits.parse().ok().filter(|b| *b <= 32).ok_or_else(|| bad("the prefix length must be 0-32"))?;
        let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
        return Ok(HostPattern::Net { addr: u32::from(addr) & mask, mask });
    }
    if let Ok(addr) = h.parse::<Ipv4Addr>() {
        return Ok(HostPattern::Net { addr: u32::from(addr), mask: u32::MAX });
    }
    let (wild, name) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest.to_string()),
        None => (false, h.clone()),
    };
    if !is_dns_name(&name) {
        return Err(bad("is not a DNS name, `*.suffix`, IPv4 address or CIDR"));
    }
    Ok(if wild { HostPattern::Wildcard(name) } else { HostPattern::Name(name) })
}

/// Whether `name` is a plausible DNS name (letters, digits, `-`, `_`, dots).
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        let spec = NetworkSpec {
            allow: allow.iter().map(|s| EgressRule::Short(s.to_string())).collect(),
            deny: deny.iter().map(|s| EgressRule::Short(s.to_string())).collect(),
            ..Default::default()
        };
        Policy::compile(&spec).unwrap()
    }

    fn name(n: &str, port: u16) -> Target<'_> {
        Target { name: Some(n), port: Some(port), ..Default::default() }
    }

    #[test]
    fn exact_wildcard_and_deny_wins() {
        let p = policy(&["api.example.com", "*.cdn.example.com:443"], &["evil.cdn.example.com"]);
        assert_eq!(p.decide(&name("api.example.com", 80)), Verdict::Allow("api.example.com".into()));
        assert_eq!(p.decide(&name("x.cdn.example.com", 443)), Verdict::Allow("*.cdn.example.com:443".into()));
        assert_eq!(p.decide(&name("x.cdn.example.com", 80)), Verdict::Unknown);
        assert_eq!(p.decide(&name("cdn.example.com", 443)), Verdict::Unknown, "the wildcard needs a label");
        assert_eq!(p.decide(&name("xcdn.example.com", 443)), Verdict::Unknown);
        assert_eq!(p.decide(&name("evil.cdn.example.com", 443)), Verdict::Deny("evil.cdn.example.com".into()));
        assert_eq!(p.decide_name("evil.cdn.example.com"), Verdict::Deny("evil.cdn.example.com".into()));
        assert_eq!(p.decide_name("other.example.com"), Verdict::Unknown);
    }

    #[test]
    fn cidr_rules_match_addresses() {
        let p = policy(&["10.1.0.0/16:5432", "192.0.2.7"], &[]);
        let ip = |a: [u8; 4], port| Target { ip: Some(Ipv4Addr::from(a)), port: Some(port), ..Default::default() };
        assert!(matches!(p.decide(&ip([10, 1, 3, 4], 5432)), Verdict::Allow(_)));
        assert_eq!(p.decide(&ip([10, 2, 3, 4], 5432)), Verdict::Unknown);
        assert_eq!(p.decide(&ip([10, 1, 3, 4], 22)), Verdict::Unknown);
        assert!(matches!(p.decide(&ip([192, 0, 2, 7], 1)), Verdict::Allow(_)));
        assert_eq!(p.allows_address_explicitly(Ipv4Addr::new(192, 0, 2, 7), 80).as_deref(), Some("192.0.2.7"));
    }

    #[test]
    fn methods_and_paths() {
        let spec = NetworkSpec {
            allow: vec![EgressRule::Full(EgressRuleSpec {
                host: "api.example.com".into(),
                ports: vec![],
                methods: vec!["GET".into()],
                paths: vec!["/v1/".into()],
            })],
            deny: vec![EgressRule::Full(EgressRuleSpec {
                host: "*.example.com".into(),
                methods: vec!["DELETE".into()],
                ..Default::default()
            })],
            ..Default::default()
        };
        let p = Policy::compile(&spec).unwrap();
        let req = |m, path| Target {
            name: Some("api.example.com"),
            port: Some(80),
            method: Some(m),
            path: Some(path),
            ..Default::default()
        };
        assert!(matches!(p.decide(&req("GET", "/v1/items")), Verdict::Allow(_)));
        assert_eq!(p.decide(&req("POST", "/v1/items")), Verdict::Unknown);
        assert_eq!(p.decide(&req("GET", "/admin")), Verdict::Unknown);
        assert!(matches!(p.decide(&req("DELETE", "/v1/items")), Verdict::Deny(_)));
        assert!(matches!(p.decide_name("api.example.com"), Verdict::Allow(_)), "DNS answers: a request may fit");
        assert!(p.needs_request_view("api.example.com"));
        assert!(!p.needs_request_view("other.org"));
    }

    #[test]
    fn bad_rules_are_named() {
        for (rule, needle) in [
            ("https://api.example.com", "not a URL"),
            ("api.example.com:http", "not a port"),
            ("10.0.0.0/40", "prefix length"),
            ("exa mple.com", "not a DNS name"),
            ("", "empty"),
        ] {
            let spec = NetworkSpec { allow: vec![EgressRule::Short(rule.into())], ..Default::default() };
            let err = Policy::compile(&spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{rule}: {err}");
        }
    }
}
