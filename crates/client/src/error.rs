//! Errors of the client and the decoding of the server's error bodies.

use superserver_wire::ErrorResponse;

/// Result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What can go wrong talking to a SuperServer.
///
/// The `Display` text of every variant is complete on its own (it already
/// names the underlying cause), so a front end prints it as is rather than
/// walking the `source()` chain.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status and a `{"error": …}` body, or
    /// a streamed run ended with an `error` event (then `status` is the status
    /// of the streamed answer, normally 200).
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
    /// No connection could be made to the server.
    #[error(
        "cannot connect to the SuperServer at {url} ({}): start it with `superserver serve`, \
         or set SUPERSERVER_URL (or --url) to the address it listens on",
        root_cause(source)
    )]
    Connect { url: String, source: reqwest::Error },
    /// The base URL given to [`crate::Client::new`] is not a usable http(s) URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The server's answer was not the JSON the API promises.
    #[error("unexpected answer from the server to {what}: {source}")]
    Decode { what: String, source: serde_json::Error },
    /// A streamed run or exec broke off or was malformed.
    #[error("broken event stream from the server: {0}")]
    Stream(String),
    /// The connection was made but the exchange failed (reset, closed early, …).
    #[error("request to the SuperServer at {url} failed: {}", chain(source))]
    Transport { url: String, source: reqwest::Error },
}

impl ClientError {
    /// The server's error code, for [`ClientError::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, for [`ClientError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Builds the error for a non-2xx answer from its status and body.
///
/// The body should be `{"error": {"code", "message"}}`; anything else (a proxy's
/// HTML page, an empty body) still yields an [`ClientError::Api`] whose code is
/// `http_<status>` and whose message is the body text or the status reason.
pub(crate) fn api_error(status: u16, reason: Option<&str>, body: &[u8]) -> ClientError {
    if let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) {
        return ClientError::Api { status, code: parsed.error.code, message: parsed.error.message };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("HTTP {status} {}", reason.unwrap_or("error"))
    } else {
        const MAX: usize = 512;
        let mut short: String = text.chars().take(MAX).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        format!("HTTP {status}: {short}")
    };
    ClientError::Api { status, code: format!("http_{status}"), message }
}

/// The innermost error of a chain, e.g. "Connection refused (os error 111)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Every message of an error chain, joined by ": ".
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_error_body() {
        let body =
            br#"{"error":{"code":"sandbox_not_found","message":"no sandbox sb_1; list them with GET /v1/sandboxes"}}"#;
        let err = api_error(404, Some("Not Found"), body);
        match &err {
            ClientError::Api { status, code, message } => {
                assert_eq!(*status, 404);
                assert_eq!(code, "sandbox_not_found");
                assert!(message.starts_with("no sandbox sb_1"));
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert_eq!(err.code(), Some("sandbox_not_found"));
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.to_string(), "no sandbox sb_1; list them with GET /v1/sandboxes (sandbox_not_found)");
    }

    #[test]
    fn non_json_error_body_keeps_text() {
        let err = api_error(502, Some("Bad Gateway"), b"<html>upstream down</html>\n");
        match err {
            ClientError::Api { status, code, message } => {
                assert_eq!(status, 502);
                assert_eq!(code, "http_502");
                assert_eq!(message, "HTTP 502: <html>upstream down</html>");
            }
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn empty_error_body_uses_reason() {
        let err = api_error(503, Some("Service Unavailable"), b"");
        assert_eq!(err.to_string(), "HTTP 503 Service Unavailable (http_503)");
    }

    #[test]
    fn long_error_body_is_shortened() {
        let body = "x".repeat(10_000);
        let err = api_error(500, None, body.as_bytes());
        let ClientError::Api { message, .. } = err else {
            panic!("expected Api");
        };
        assert!(message.len() < 1_000, "{}", message.len());
        assert!(message.ends_with('…'));
    }

    #[test]
    fn json_of_another_shape_is_not_mistaken_for_an_error_body() {
        let err = api_error(400, Some("Bad Request"), br#"{"detail":"nope"}"#);
        assert_eq!(err.code(), Some("http_400"));
    }
}
