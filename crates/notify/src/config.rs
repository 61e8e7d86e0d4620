//! Helpers shared by the configuration types ([`crate::WebhookEndpoint`],
//! [`crate::SmtpConfig`]).

use std::path::Path;

/// Default of `timeout_ms` for webhook endpoints and the SMTP server.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Largest accepted `timeout_ms`: a stuck receiver must not hold a delivery
/// worker for long.
pub(crate) const MAX_TIMEOUT_MS: u64 = 300_000;

pub(crate) fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Checks a `timeout_ms` setting; `what` names the config section.
pub(crate) fn validate_timeout(what: &str, timeout_ms: u64) -> Result<(), String> {
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(format!("{what}: timeout_ms must be between 1 and {MAX_TIMEOUT_MS} (got {timeout_ms})"));
    }
    Ok(())
}

/// Reads a secret from a file: its contents with surrounding whitespace (a
/// trailing newline) trimmed. Errors name `what` and the path, never the
/// contents.
pub(crate) fn read_secret_file(what: &str, path: &Path) -> Result<String, String> {
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    let secret = raw.trim();
    if secret.is_empty() {
        return Err(format!("{what}: {} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// Placeholder shown instead of a secret in `Debug` output and
/// `redacted()` copies.
pub(crate) const REDACTED: &str = "<redacted>";
