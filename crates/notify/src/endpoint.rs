//! A configured webhook receiver.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{read_secret_file, validate_timeout, REDACTED};

/// Longest accepted endpoint name.
const MAX_NAME_LEN: usize = 100;

/// One configured webhook receiver (a `[[webhooks]]` table of the config).
///
/// ```toml
/// name = "billing"
/// url = "https://billing.example.com/hooks/superserver"
/// secret_file = "/run/secrets/billing-hook"   # or: secret = "..."
/// events = ["quota.*", "usage.reported"]      # default ["*"]
/// timeout_ms = 10000                          # default
/// ```
///
/// `Debug` redacts the secret; `Serialize` keeps it (use [`Self::redacted`]
/// before logging a serialized config).
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Unique label, used in logs and the outbox.
    pub name: String,
    /// The receiver's URL, `http://` or `https://`.
    pub url: String,
    /// HMAC key. Exactly one of `secret` and `secret_file` is required.
    pub secret: Option<String>,
    /// A file holding the HMAC key (surrounding whitespace is trimmed).
    pub secret_file: Option<PathBuf>,
    /// Event types this receiver gets: `"*"` (all, the default), an exact
    /// type (`"usage.reported"`) or a prefix (`"quota.*"`).
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// Bound on one whole delivery (connect, send, answer); default 10 000.
    #[serde(default = "crate::config::default_timeout_ms")]
    pub timeout_ms: u64,
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}

impl WebhookEndpoint {
    /// Checks the endpoint; the message names the endpoint and the problem.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.trim().is_empty() {
            return Err(format!("webhook endpoint with url scheme {:?}: name must not be empty", self.scheme()));
        }
        if name.len() > MAX_NAME_LEN || name.trim() != name || name.chars().any(char::is_control) {
            return Err(format!(
                "webhook endpoint {name:?}: name must be at most {MAX_NAME_LEN} bytes, \
                 without control characters or surrounding spaces"
            ));
        }
        let what = format!("webhook endpoint {name:?}");
        validate_url(&what, &self.url)?;
        match (&self.secret, &self.secret_file) {
            (None, None) => return Err(format!("{what}: set secret or secret_file (the HMAC signing key)")),
            (Some(_), Some(_)) => return Err(format!("{what}: set only one of secret and secret_file")),
            (Some(s), None) if s.trim().is_empty() => return Err(format!("{what}: secret must not be empty")),
            _ => {}
        }
        if self.events.is_empty() {
            return Err(format!(
                "{what}: events is empty, so the endpoint would receive nothing (use [\"*\"] for all)"
            ));
        }
        if let Some(bad) = self.events.iter().find(|p| !valid_pattern(p)) {
            return Err(format!(
                "{what}: event pattern {bad:?} is invalid: use \"*\", an event type (\"usage.reported\") \
                 or a prefix ending in \".*\" (\"quota.*\")"
            ));
        }
        validate_timeout(&what, self.timeout_ms)
    }

    /// Checks every endpoint and that names are unique.
    pub fn validate_all(endpoints: &[Self]) -> Result<(), String> {
        let mut seen = HashSet::new();
        for ep in endpoints {
            ep.validate()?;
            if !seen.insert(ep.name.as_str()) {
                return Err(format!("webhook endpoint {:?}: name is used by more than one endpoint", ep.name));
            }
        }
        Ok(())
    }

    /// The HMAC key: `secret`, or the trimmed contents of `secret_file`.
    pub fn resolve_secret(&self) -> Result<Vec<u8>, String> {
        let what = format!("webhook endpoint {:?}", self.name);
        match (&self.secret, &self.secret_file) {
            (Some(s), None) if !s.trim().is_empty() => Ok(s.as_bytes().to_vec()),
            (None, Some(path)) => read_secret_file(&format!("{what}: secret_file"), path).map(String::into_bytes),
            _ => Err(format!("{what}: set exactly one non-empty secret or secret_file")),
        }
    }

    /// Whether this endpoint receives events of type `event_type`: `"*"`
    /// matches all, `"quota.*"` every type starting with `quota.`, anything
    /// else only itself.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|p| pattern_matches(p, event_type))
    }

    /// A copy with the secret replaced by a placeholder, for logging.
    pub fn redacted(&self) -> Self {
        Self { secret: self.secret.as_ref().map(|_| REDACTED.to_owned()), url: redact_url(&self.url), ..self.clone() }
    }

    fn scheme(&self) -> &str {
        self.url.split_once(':').map_or("", |(s, _)| s)
    }
}

/// A URL fit for a log: scheme, host and port only. Paths and queries of
/// webhook URLs often are the credential (chat incoming webhooks), and user
/// info always is.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return REDACTED.to_owned() };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if rest.len() > authority.len() || host.len() < authority.len() {
        format!("{scheme}://{host}/{REDACTED}")
    } else {
        format!("{scheme}://{host}")
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| REDACTED))
            .field("secret_file", &self.secret_file)
            .field("events", &self.events)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

fn validate_url(what: &str, url: &str) -> Result<(), String> {
    // The URL itself is left out of messages: its query may carry a token.
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{what}: url is not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{what}: url scheme {:?} is not supported; use http:// or https://", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{what}: url has no host"));
    }
    Ok(())
}

fn valid_pattern(p: &str) -> bool {
    if p == "*" {
        return true;
    }
    let exact = p.strip_suffix(".*").unwrap_or(p);
    !exact.is_empty() && !exact.contains('*') && !exact.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn pattern_matches(pattern: &str, event_type: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix('*') {
        // "quota.*" keeps its dot: it matches "quota.warning", not "quotas.x" or "quota".
        Some(prefix) => event_type.len() > prefix.len() && event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_logs_keep_only_scheme_host_and_port() {
        assert_eq!(
            redact_url("https://hooks.chat.example/services/T0/B0/XYZ"),
            "https://hooks.chat.example/<redacted>"
        );
        assert_eq!(redact_url("https://user:pw@h.example:8443"), "https://h.example:8443/<redacted>");
        assert_eq!(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(redact_url("http://h.example?token=1"), "http://h.example/<redacted>");
        assert_eq!(redact_url("not a url"), "<redacted>");
        let shown = format!("{:?} {:?}", endpoint(), endpoint().redacted());
        assert!(!shown.contains("token=abc") && !shown.contains("s3cret"), "{shown}");
    }

    fn endpoint() -> WebhookEndpoint {
        WebhookEndpoint {
            name: "billing".into(),
            url: "https://billing.example.com/hook?token=abc".into(),
            secret: Some("s3cret".into()),
            secret_file: None,
            events: all_events(),
            timeout_ms: 10_000,
        }
    }

    fn with_events(events: &[&str]) -> WebhookEndpoint {
        WebhookEndpoint { events: events.iter().map(|e| e.to_string()).collect(), ..endpoint() }
    }

    #[test]
    fn wants_star_exact_and_prefix() {
        let all = with_events(&["*"]);
        assert!(all.wants("quota.warning") && all.wants("usage.reported") && all.wants("x"));

        let some = with_events(&["quota.*", "usage.reported"]);
        assert!(some.wants("quota.warning"));
        assert!(some.wants("quota.exceeded.hard"));
        assert!(some.wants("usage.reported"));
        assert!(!some.wants("quota"), "a prefix pattern needs something after the dot");
        assert!(!some.wants("quotas.warning"));
        assert!(!some.wants("usage.reported.v2"), "an exact pattern is not a prefix");
        assert!(!some.wants("usage"));
        assert!(!with_events(&[]).wants("quota.warning"));
    }

    #[test]
    fn deserializes_with_defaults_and_rejects_unknown_fields() {
        let ep: WebhookEndpoint = serde_json::from_str(r#"{"name":"b","url":"http://h/","secret":"k"}"#).unwrap();
        assert_eq!(ep.events, vec!["*"]);
        assert_eq!(ep.timeout_ms, 10_000);
        let err = serde_json::from_str::<WebhookEndpoint>(r#"{"name":"b","url":"http://h/","secret":"k","x":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn validate_accepts_good_endpoint() {
        endpoint().validate().unwrap();
        with_events(&["quota.*", "usage.reported"]).validate().unwrap();
        WebhookEndpoint { url: "http://127.0.0.1:8080/x".into(), ..endpoint() }.validate().unwrap();
    }

    fn validate_err(ep: WebhookEndpoint) -> String {
        ep.validate().expect_err("endpoint should be invalid")
    }

    #[test]
    fn validate_errors_name_endpoint_and_problem() {
        let e = validate_err(WebhookEndpoint { url: "ftp://h/x".into(), ..endpoint() });
        assert!(e.contains("\"billing\"") && e.contains("scheme \"ftp\""), "{e}");
        let e = validate_err(WebhookEndpoint { url: "not a url".into(), ..endpoint() });
        assert!(e.contains("\"billing\"") && e.contains("not a valid URL"), "{e}");
        let e = validate_err(WebhookEndpoint { secret: None, ..endpoint() });
        assert!(e.contains("\"billing\"") && e.contains("secret_file"), "{e}");
        let e = validate_err(WebhookEndpoint { secret: Some(" ".into()), ..endpoint() });
        assert!(e.contains("secret must not be empty"), "{e}");
        let e = validate_err(WebhookEndpoint { secret_file: Some("/k".into()), ..endpoint() });
        assert!(e.contains("only one of secret and secret_file"), "{e}");
        let e = validate_err(WebhookEndpoint { name: " ".into(), ..endpoint() });
        assert!(e.contains("name must not be empty"), "{e}");
        let e = validate_err(WebhookEndpoint { name: "a\nb".into(), ..endpoint() });
        assert!(e.contains("control characters"), "{e}");
        let e = validate_err(with_events(&[]));
        assert!(e.contains("\"billing\"") && e.contains("events is empty"), "{e}");
        let e = validate_err(with_events(&["quota*"]));
        assert!(e.contains("pattern \"quota*\""), "{e}");
        let e = validate_err(WebhookEndpoint { timeout_ms: 0, ..endpoint() });
        assert!(e.contains("timeout_ms"), "{e}");
        assert!(!e.contains("token=abc"), "messages must not leak the URL: {e}");
    }

    #[test]
    fn validate_all_rejects_duplicate_names() {
        let e = WebhookEndpoint::validate_all(&[endpoint(), endpoint()]).unwrap_err();
        assert!(e.contains("\"billing\"") && e.contains("more than one"), "{e}");
        WebhookEndpoint::validate_all(&[endpoint(), WebhookEndpoint { name: "other".into(), ..endpoint() }]).unwrap();
    }

    #[test]
    fn resolve_secret_inline_and_from_trimmed_file() {
        assert_eq!(endpoint().resolve_secret().unwrap(), b"s3cret");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  from-file\n").unwrap();
        let ep = WebhookEndpoint { secret: None, secret_file: Some(path.clone()), ..endpoint() };
        assert_eq!(ep.resolve_secret().unwrap(), b"from-file");
        std::fs::write(&path, "\n").unwrap();
        let e = ep.resolve_secret().unwrap_err();
        assert!(e.contains("\"billing\"") && e.contains("empty"), "{e}");
        let missing = WebhookEndpoint { secret_file: Some(dir.path().join("nope")), ..ep };
        let e = missing.resolve_secret().unwrap_err();
        assert!(e.contains("cannot read") && e.contains("nope"), "{e}");
    }

    #[test]
    fn debug_and_redacted_hide_the_secret() {
        let ep = endpoint();
        assert!(!format!("{ep:?}").contains("s3cret"));
        assert_eq!(ep.redacted().secret.as_deref(), Some(REDACTED));
    }
}
