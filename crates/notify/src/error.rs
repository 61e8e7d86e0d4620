//! The error of one delivery attempt.

/// Why one delivery attempt failed, and whether trying again may help.
///
/// The message names the endpoint (or the SMTP server) and the cause; it never
/// contains a secret or the webhook URL (whose query may carry a token).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// `true` when a later attempt may succeed (timeouts, connection errors,
    /// 5xx, 429…); `false` when it will not (the receiver refused the
    /// message for good).
    pub retryable: bool,
    /// What happened, for logs and the outbox.
    pub message: String,
}

impl DeliveryError {
    /// A failure worth retrying later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { retryable: true, message: message.into() }
    }

    /// A failure that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { retryable: false, message: message.into() }
    }
}

/// `err` followed by its chain of sources, `": "`-separated, skipping a
/// source whose text its parent already shows.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
