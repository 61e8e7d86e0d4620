//! The SMTP server e-mail notifications go through.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::config::{read_secret_file, validate_timeout, REDACTED};

const DEFAULT_SMTP_PORT: u16 = 587;

/// SMTP server for e-mail notifications (the `[smtp]` table of the config).
///
/// ```toml
/// host = "smtp.example.com"
/// port = 587                       # default
/// tls = "starttls"                 # none | starttls (default) | tls (implicit TLS, usually port 465)
/// username = "alerts"
/// password_file = "/run/secrets/smtp"   # or: password = "..."
/// from = "SuperServer <alerts@example.com>"
/// timeout_ms = 10000               # default; bounds one whole SMTP conversation
/// ```
///
/// `Debug` redacts the password; `Serialize` keeps it (use
/// [`Self::redacted`] before logging a serialized config).
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name (also the name its TLS certificate is checked against).
    pub host: String,
    /// Server port; default 587.
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Transport security; default `starttls`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// AUTH user name; with it, one of `password` and `password_file` is required.
    pub username: Option<String>,
    /// AUTH password.
    pub password: Option<String>,
    /// A file holding the AUTH password (surrounding whitespace is trimmed).
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `"SuperServer <alerts@example.com>"`.
    pub from: String,
    /// Bound on sending one e-mail (connect, TLS, AUTH, the whole
    /// conversation); default 10 000.
    #[serde(default = "crate::config::default_timeout_ms")]
    pub timeout_ms: u64,
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text. Credentials are then only accepted for a loopback host.
    None,
    /// Plain connection upgraded with STARTTLS, which is required: a server
    /// that does not offer it is refused (no downgrade).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

fn default_smtp_port() -> u16 {
    DEFAULT_SMTP_PORT
}

impl SmtpConfig {
    /// Checks the configuration; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let what = "smtp";
        if self.host.trim().is_empty() || self.host.trim() != self.host {
            return Err(format!("{what}: host must be a host name or address without spaces (got {:?})", self.host));
        }
        if self.port == 0 {
            return Err(format!("{what}: port must not be 0"));
        }
        self.from.parse::<Mailbox>().map_err(|e| {
            format!("{what}: from {:?} is not a valid address ({e}); e.g. \"Name <a@example.com>\"", self.from)
        })?;
        match (&self.username, &self.password, &self.password_file) {
            (None, None, None) => {}
            (None, _, _) => return Err(format!("{what}: password or password_file is set without username")),
            (Some(u), _, _) if u.is_empty() => return Err(format!("{what}: username must not be empty")),
            (Some(_), None, None) => return Err(format!("{what}: username needs password or password_file")),
            (Some(_), Some(_), Some(_)) => return Err(format!("{what}: set only one of password and password_file")),
            (Some(_), Some(p), None) if p.is_empty() => return Err(format!("{what}: password must not be empty")),
            (Some(_), _, _) => {
                if self.tls == SmtpTls::None && !is_loopback(&self.host) {
                    return Err(format!(
                        "{what}: tls = \"none\" would send the password in clear text to {:?}; \
                         use tls = \"starttls\" or \"tls\"",
                        self.host
                    ));
                }
            }
        }
        validate_timeout(what, self.timeout_ms)
    }

    /// The AUTH password: `password`, or the trimmed contents of
    /// `password_file`; `None` when no password is configured.
    pub fn resolve_password(&self) -> Result<Option<String>, String> {
        match (&self.password, &self.password_file) {
            (Some(p), None) => Ok(Some(p.clone())),
            (None, Some(path)) => read_secret_file("smtp: password_file", path).map(Some),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("smtp: set only one of password and password_file".to_owned()),
        }
    }

    /// A copy with the password replaced by a placeholder, for logging.
    pub fn redacted(&self) -> Self {
        Self { password: self.password.as_ref().map(|_| REDACTED.to_owned()), ..self.clone() }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("password_file", &self.password_file)
            .field("from", &self.from)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: Some("alerts".into()),
            password: Some("hunter2".into()),
            password_file: None,
            from: "SuperServer <alerts@example.com>".into(),
            timeout_ms: 10_000,
        }
    }

    fn validate_err(cfg: SmtpConfig) -> String {
        cfg.validate().expect_err("config should be invalid")
    }

    #[test]
    fn deserializes_with_defaults() {
        let cfg: SmtpConfig = serde_json::from_str(r#"{"host":"h","from":"a@example.com"}"#).unwrap();
        assert_eq!((cfg.port, cfg.tls, cfg.timeout_ms), (587, SmtpTls::Starttls, 10_000));
        let cfg: SmtpConfig = serde_json::from_str(r#"{"host":"h","from":"a@example.com","tls":"none"}"#).unwrap();
        assert_eq!(cfg.tls, SmtpTls::None);
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"host":"h","from":"a@b.c","tls":"ssl"}"#).is_err());
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"host":"h","from":"a@b.c","user":"x"}"#).is_err());
    }

    #[test]
    fn validate_accepts_good_configs() {
        config().validate().unwrap();
        SmtpConfig { username: None, password: None, tls: SmtpTls::None, ..config() }.validate().unwrap();
        SmtpConfig { host: "127.0.0.1".into(), tls: SmtpTls::None, ..config() }.validate().unwrap();
    }

    #[test]
    fn validate_errors_name_the_problem() {
        let e = validate_err(SmtpConfig { host: "".into(), ..config() });
        assert!(e.contains("smtp: host"), "{e}");
        let e = validate_err(SmtpConfig { port: 0, ..config() });
        assert!(e.contains("port"), "{e}");
        let e = validate_err(SmtpConfig { from: "not an address".into(), ..config() });
        assert!(e.contains("from \"not an address\""), "{e}");
        let e = validate_err(SmtpConfig { password: None, ..config() });
        assert!(e.contains("username needs password"), "{e}");
        let e = validate_err(SmtpConfig { username: None, ..config() });
        assert!(e.contains("without username"), "{e}");
        let e = validate_err(SmtpConfig { password_file: Some("/p".into()), ..config() });
        assert!(e.contains("only one of password and password_file"), "{e}");
        let e = validate_err(SmtpConfig { tls: SmtpTls::None, ..config() });
        assert!(e.contains("clear text"), "{e}");
        let e = validate_err(SmtpConfig { timeout_ms: 0, ..config() });
        assert!(e.contains("timeout_ms"), "{e}");
    }

    #[test]
    fn resolve_password_and_redaction() {
        assert_eq!(config().resolve_password().unwrap().as_deref(), Some("hunter2"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "file-pw\n").unwrap();
        let cfg = SmtpConfig { password: None, password_file: Some(path), ..config() };
        assert_eq!(cfg.resolve_password().unwrap().as_deref(), Some("file-pw"));
        assert!(!format!("{:?}", config()).contains("hunter2"));
        assert_eq!(config().redacted().password.as_deref(), Some(REDACTED));
    }
}
