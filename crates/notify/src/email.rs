//! Sending one e-mail through the configured SMTP server.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use crate::error::error_chain;
use crate::{DeliveryError, SmtpConfig, SmtpTls};

/// Longest event id used as is in a `Message-ID`; longer ones are hashed.
const MAX_PLAIN_SEED: usize = 128;

/// A plain-text e-mail.
#[derive(Debug, Clone)]
pub struct Email {
    /// The recipient, `a@example.com` or `Name <a@example.com>`.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The event id: the `Message-ID` is derived from it, so a resend of the
    /// same event carries the same `Message-ID` and is recognisable.
    pub message_id_seed: String,
}

/// Sends one e-mail through the SMTP server (lettre's tokio transport).
///
/// `cfg.timeout_ms` bounds the whole conversation (connect, TLS, AUTH,
/// sending). Permanent SMTP replies (5xx: unknown recipient, bad
/// credentials…) and invalid addresses give a non-retryable error; everything
/// else (4xx replies, connection and TLS errors, timeouts, an unreadable
/// `password_file`) is retryable.
#[tracing::instrument(level = "debug", skip_all, fields(smtp = %cfg.host, event_id = %email.message_id_seed))]
pub async fn send_email(cfg: &SmtpConfig, email: &Email) -> Result<(), DeliveryError> {
    let what = format!("smtp {}:{}", cfg.host, cfg.port);
    let message = build_message(&what, cfg, email)?;
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let transport = transport(&what, cfg, timeout)?;
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Ok(Ok(response)) => {
            tracing::debug!(code = %response.code(), "e-mail accepted");
            Ok(())
        }
        Ok(Err(e)) if e.is_permanent() => {
            Err(DeliveryError::permanent(format!("{what}: e-mail to {:?} refused: {}", email.to, error_chain(&e))))
        }
        Ok(Err(e)) => Err(DeliveryError::transient(format!("{what}: sending failed: {}", error_chain(&e)))),
        Err(_) => Err(DeliveryError::transient(format!("{what}: not done within {} ms", cfg.timeout_ms))),
    }
}

fn build_message(what: &str, cfg: &SmtpConfig, email: &Email) -> Result<Message, DeliveryError> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| DeliveryError::permanent(format!("{what}: from {:?} is not a valid address ({e})", cfg.from)))?;
    let to: Mailbox = email.to.parse().map_err(|e| {
        DeliveryError::permanent(format!("{what}: recipient {:?} is not a valid address ({e})", email.to))
    })?;
    let message_id = message_id(&email.message_id_seed, from.email.domain());
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.as_str())
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .body(email.text.clone())
        .map_err(|e| DeliveryError::permanent(format!("{what}: cannot build the e-mail: {e}")))
}

/// `<superserver.<seed>@<domain>>`, with the seed hashed unless it is a short
/// dot-atom of letters, digits, `-`, `_` and `.`.
fn message_id(seed: &str, domain: &str) -> String {
    let plain = !seed.is_empty()
        && seed.len() <= MAX_PLAIN_SEED
        && seed.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !seed.starts_with('.')
        && !seed.ends_with('.')
        && !seed.contains("..");
    let id = if plain { seed.to_owned() } else { hex::encode(&Sha256::digest(seed.as_bytes())[..16]) };
    format!("<superserver.{id}@{domain}>")
}

fn transport(
    what: &str,
    cfg: &SmtpConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryError> {
    type Transport = AsyncSmtpTransport<Tokio1Executor>;
    let tls_error = |e: lettre::transport::smtp::Error| {
        DeliveryError::permanent(format!("{what}: cannot set up TLS for this host: {}", error_chain(&e)))
    };
    let builder = match cfg.tls {
        SmtpTls::None => Transport::builder_dangerous(&cfg.host),
        SmtpTls::Starttls => Transport::starttls_relay(&cfg.host).map_err(tls_error)?,
        SmtpTls::Tls => Transport::relay(&cfg.host).map_err(tls_error)?,
    };
    let mut builder = builder.port(cfg.port).timeout(Some(timeout));
    if let Some(user) = &cfg.username {
        // Read on each send so a rotated password_file is picked up; a missing
        // file may be a secret not mounted yet, so it is retryable.
        let password = cfg.resolve_password().map_err(DeliveryError::transient)?.unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_stable_and_well_formed() {
        assert_eq!(message_id("evt_01HX-9.a", "example.com"), "<superserver.evt_01HX-9.a@example.com>");
        let hashed = message_id("evt 1 <weird>@x", "example.com");
        assert_eq!(hashed, message_id("evt 1 <weird>@x", "example.com"));
        assert_ne!(hashed, message_id("evt 2 <weird>@x", "example.com"));
        assert!(hashed.starts_with("<superserver.") && hashed.len() == "<superserver.@example.com>".len() + 32);
        for seed in ["", ".a", "a.", "a..b", "a@b", &"x".repeat(129)] {
            assert_eq!(message_id(seed, "d").len(), "<superserver.@d>".len() + 32, "{seed:?} should be hashed");
        }
    }

    #[tokio::test]
    async fn invalid_recipient_is_permanent() {
        let cfg = SmtpConfig {
            host: "127.0.0.1".into(),
            port: 1,
            tls: SmtpTls::None,
            username: None,
            password: None,
            password_file: None,
            from: "a@example.com".into(),
            timeout_ms: 1_000,
        };
        let email =
            Email { to: "not an address".into(), subject: "s".into(), text: "t".into(), message_id_seed: "e".into() };
        let e = send_email(&cfg, &email).await.unwrap_err();
        assert!(!e.retryable && e.message.contains("recipient \"not an address\""), "{e}");
    }
}
