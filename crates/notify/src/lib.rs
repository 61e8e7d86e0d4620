//! Notification delivery for SuperServer's billing hooks: signed webhooks and
//! e-mail.
//!
//! This crate sends one message per call and says whether a failure is worth
//! retrying; the server's durable outbox owns scheduling (see [`backoff`]),
//! and the configuration types ([`WebhookEndpoint`], [`SmtpConfig`]) are read
//! from the server's TOML config.
//!
//! # Webhooks
//!
//! [`deliver_webhook`] sends `POST <url>` with the event's JSON payload as the
//! raw body, `Content-Type: application/json`, `User-Agent:
//! SuperServer/<version>` and these headers:
//!
//! | Header                                              | Value                                                |
//! |-----------------------------------------------------|------------------------------------------------------|
//! | `SuperServer-Signature` ([`SIGNATURE_HEADER`])      | `t=<unix seconds>,v1=<hex HMAC-SHA256>`              |
//! | `SuperServer-Event-Id` ([`EVENT_ID_HEADER`])        | the event's unique id                                |
//! | `SuperServer-Event-Type` ([`EVENT_TYPE_HEADER`])    | e.g. `quota.warning`, `usage.reported`               |
//! | `Idempotency-Key` ([`IDEMPOTENCY_HEADER`])          | the event id again: every retry carries the same key |
//! | `SuperServer-Delivery-Attempt` ([`ATTEMPT_HEADER`]) | `1` for the first try, `2` for the first retry…      |
//!
//! Each attempt is signed anew (a fresh `t`). A delivery may arrive more than
//! once (a retry after a lost answer): receivers should deduplicate on the
//! event id.
//!
//! ## Verifying the signature (receivers)
//!
//! The signature header is `t=<t>,v1=<hex>` where `<hex>` is the lower-case
//! hex HMAC-SHA256, keyed with the endpoint's secret, of the bytes `<t>.`
//! followed by the raw request body (exactly as received, before any JSON
//! parsing). To verify:
//!
//! 1. split the header on `,` and each part on the first `=`; take `t` and
//!    every `v1` (ignore other keys: future schemes may add them);
//! 2. compute HMAC-SHA256 with the endpoint secret over `<t>.<raw body>`;
//! 3. compare it **in constant time** to each `v1` (hex-decoded); accept if
//!    one matches;
//! 4. reject if `|now - t| > 5 min` ([`DEFAULT_TOLERANCE_S`]), which bounds
//!    replays.
//!
//! [`verify`] does exactly this and can be used by Rust receivers and tests.
//!
//! ## Retries
//!
//! A 2xx answer is success. 408, 409, 425, 429, 5xx, timeouts and connection
//! errors are retryable; any other answer (4xx such as 400, 401, 404, 410 Gone,
//! and 3xx: redirects are never followed) is permanent. See
//! [`deliver_webhook`].
//!
//! # E-mail
//!
//! [`send_email`] sends a plain-text e-mail through the configured SMTP
//! server; its `Message-ID` is derived from the event id so that a resend is
//! recognisable. 5xx replies and invalid addresses are permanent; 4xx replies,
//! connection errors and timeouts are retryable.
#![forbid(unsafe_code)]

mod backoff;
mod config;
mod email;
mod endpoint;
mod error;
mod signature;
mod smtp_config;
mod webhook;

pub use backoff::backoff;
pub use email::{send_email, Email};
pub use endpoint::{redact_url, WebhookEndpoint};
pub use error::DeliveryError;
pub use signature::{
    sign, verify, ATTEMPT_HEADER, DEFAULT_TOLERANCE_S, EVENT_ID_HEADER, EVENT_TYPE_HEADER, IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
};
pub use smtp_config::{SmtpConfig, SmtpTls};
pub use webhook::{deliver_webhook, http_client, Delivery, USER_AGENT};
