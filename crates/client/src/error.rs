//! Errors of the client and the decoding of the server's error bodies.

use std::fmt;
use std::time::Duration;

use superserver_wire::{ErrorBody, ErrorResponse};

/// Result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What can go wrong talking to a SuperServer.
///
/// The `Display` text of every variant is complete on its own (it already
/// names the underlying cause), so a front end prints it as is rather than
/// walking the `source()` chain. Answers of the server are [`Api`] unless they
/// say more: a refused key ([`Unauthorized`]), a role that may not make the
/// call ([`Forbidden`]), a spent quota ([`QuotaExceeded`]), a feature the
/// plan lacks ([`FeatureNotInPlan`]) or too many requests ([`RateLimited`]).
/// [`code`](Self::code) and [`status`](Self::status) answer for all of them.
///
/// No variant ever holds the API key.
///
/// [`Api`]: ClientError::Api
/// [`Unauthorized`]: ClientError::Unauthorized
/// [`Forbidden`]: ClientError::Forbidden
/// [`QuotaExceeded`]: ClientError::QuotaExceeded
/// [`FeatureNotInPlan`]: ClientError::FeatureNotInPlan
/// [`RateLimited`]: ClientError::RateLimited
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status and a `{"error": …}` body, or
    /// a streamed run ended with an `error` event (then `status` is the status
    /// of the streamed answer, normally 200).
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
    /// 401: no API key was sent, or the server does not accept it (unknown,
    /// revoked or expired).
    #[error("{message} ({code})")]
    Unauthorized { code: String, message: String },
    /// `forbidden`: the key is valid but its role may not make this call.
    #[error("{message} ({code})")]
    Forbidden { status: u16, code: String, message: String },
    /// `quota_exceeded`: a quota of the tenant is used up.
    #[error("{message} (quota_exceeded)")]
    QuotaExceeded { status: u16, message: String, quota: QuotaDetails },
    /// `feature_not_in_plan`: the tenant's plan does not include `feature`.
    #[error("{message} (feature_not_in_plan)")]
    FeatureNotInPlan { status: u16, message: String, feature: Option<String> },
    /// `rate_limited` (or a bare 429): too many requests; `retry_after` is how
    /// long to wait, from the body or the `Retry-After` header.
    #[error("{message} (rate_limited)")]
    RateLimited { status: u16, message: String, retry_after: Option<Duration> },
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
    /// The key given to [`crate::Client::with_api_key`] cannot be sent in an
    /// HTTP header (the message never shows the key).
    #[error("the API key cannot be used: {reason}")]
    InvalidApiKey { reason: &'static str },
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

/// What a `quota_exceeded` answer says about the quota; every field is
/// optional because older or proxied answers may lack it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaDetails {
    /// `executions`, `cpu_seconds`, `gb_seconds` or `concurrent_sandboxes`.
    pub name: Option<String>,
    pub limit: Option<u64>,
    pub used: Option<f64>,
    /// When the quota resets (RFC 3339); absent for `concurrent_sandboxes`.
    pub resets_at: Option<String>,
    /// The same instant in unix milliseconds.
    pub resets_at_ms: Option<i64>,
}

impl fmt::Display for QuotaDetails {
    /// `executions: 1000 of 1000 used, resets at 2026-12-01T00:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match (self.used, self.limit) {
            (Some(used), Some(limit)) => parts.push(format!("{} of {limit} used", number(used))),
            (Some(used), None) => parts.push(format!("{} used", number(used))),
            (None, Some(limit)) => parts.push(format!("limit {limit}")),
            (None, None) => {}
        }
        if let Some(at) = &self.resets_at {
            parts.push(format!("resets at {at}"));
        }
        match &self.name {
            Some(name) if parts.is_empty() => f.write_str(name),
            Some(name) => write!(f, "{name}: {}", parts.join(", ")),
            None => f.write_str(&parts.join(", ")),
        }
    }
}

/// A usage figure: whole numbers without decimals, else up to three.
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl ClientError {
    /// The server's error code, for the variants that carry a server answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } | Self::Unauthorized { code, .. } | Self::Forbidden { code, .. } => Some(code),
            Self::QuotaExceeded { .. } => Some(QUOTA_EXCEEDED),
            Self::FeatureNotInPlan { .. } => Some(FEATURE_NOT_IN_PLAN),
            Self::RateLimited { .. } => Some(RATE_LIMITED),
            _ => None,
        }
    }

    /// The HTTP status, for the variants that carry a server answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Api { status, .. }
            | Self::Forbidden { status, .. }
            | Self::QuotaExceeded { status, .. }
            | Self::FeatureNotInPlan { status, .. }
            | Self::RateLimited { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's message, for the variants that carry a server answer.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::QuotaExceeded { message, .. }
            | Self::FeatureNotInPlan { message, .. }
            | Self::RateLimited { message, .. } => Some(message),
            _ => None,
        }
    }
}

const QUOTA_EXCEEDED: &str = "quota_exceeded";
const FEATURE_NOT_IN_PLAN: &str = "feature_not_in_plan";
const RATE_LIMITED: &str = "rate_limited";
const FORBIDDEN: &str = "forbidden";

/// The error for a server answer: its status, its decoded error body and the
/// wait from a `Retry-After` header, if any.
pub(crate) fn from_body(status: u16, body: ErrorBody, retry_after: Option<Duration>) -> ClientError {
    let ErrorBody { code, message, quota, limit, used, resets_at, resets_at_ms, feature, retry_after_seconds } = body;
    match code.as_str() {
        QUOTA_EXCEEDED => ClientError::QuotaExceeded {
            status,
            message,
            quota: QuotaDetails { name: quota, limit, used, resets_at, resets_at_ms },
        },
        FEATURE_NOT_IN_PLAN => ClientError::FeatureNotInPlan { status, message, feature },
        RATE_LIMITED => ClientError::RateLimited {
            status,
            message,
            retry_after: retry_after_seconds.map(Duration::from_secs).or(retry_after),
        },
        _ if status == 401 => ClientError::Unauthorized { code, message },
        _ if status == 429 => ClientError::RateLimited { status, message, retry_after },
        // Other 403s (e.g. `path_not_allowed`) are about the request, not the key.
        FORBIDDEN => ClientError::Forbidden { status, code, message },
        _ => ClientError::Api { status, code, message },
    }
}

/// Builds the error for a non-2xx answer from its status, body and
/// `Retry-After` wait.
///
/// The body should be `{"error": {"code", "message", …}}`; anything else (a
/// proxy's HTML page, an empty body) still yields an error whose code is
/// `http_<status>` and whose message is the body text or the status reason.
pub(crate) fn api_error(status: u16, reason: Option<&str>, body: &[u8], retry_after: Option<Duration>) -> ClientError {
    if let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) {
        return from_body(status, parsed.error, retry_after);
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
    from_body(status, ErrorBody { code: format!("http_{status}"), message, ..Default::default() }, retry_after)
}

/// The wait a `Retry-After` header asks for, when it is a number of seconds
/// (the HTTP-date form is not used by SuperServer and is ignored).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
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
        let err = api_error(404, Some("Not Found"), body, None);
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
        let err = api_error(502, Some("Bad Gateway"), b"<html>upstream down</html>\n", None);
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
        let err = api_error(503, Some("Service Unavailable"), b"", None);
        assert_eq!(err.to_string(), "HTTP 503 Service Unavailable (http_503)");
    }

    #[test]
    fn long_error_body_is_shortened() {
        let body = "x".repeat(10_000);
        let err = api_error(500, None, body.as_bytes(), None);
        let ClientError::Api { message, .. } = err else {
            panic!("expected Api");
        };
        assert!(message.len() < 1_000, "{}", message.len());
        assert!(message.ends_with('…'));
    }

    #[test]
    fn json_of_another_shape_is_not_mistaken_for_an_error_body() {
        let err = api_error(400, Some("Bad Request"), br#"{"detail":"nope"}"#, None);
        assert_eq!(err.code(), Some("http_400"));
    }

    fn body(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn quota_exceeded_keeps_the_figures() {
        let b = body(
            r#"{"error":{"code":"quota_exceeded","message":"the monthly executions quota is used up",
            "quota":"executions","limit":1000,"used":1000,"resets_at":"2026-12-01T00:00:00Z",
            "resets_at_ms":1796083200000}}"#,
        );
        let err = api_error(429, Some("Too Many Requests"), &b, Some(Duration::from_secs(5)));
        let ClientError::QuotaExceeded { status, message, quota } = &err else {
            panic!("expected QuotaExceeded, got {err:?}");
        };
        assert_eq!(*status, 429);
        assert_eq!(message, "the monthly executions quota is used up");
        assert_eq!(quota.name.as_deref(), Some("executions"));
        assert_eq!((quota.limit, quota.used, quota.resets_at_ms), (Some(1000), Some(1000.0), Some(1_796_083_200_000)));
        assert_eq!(quota.to_string(), "executions: 1000 of 1000 used, resets at 2026-12-01T00:00:00Z");
        assert_eq!(err.code(), Some("quota_exceeded"));
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.to_string(), "the monthly executions quota is used up (quota_exceeded)");
    }

    #[test]
    fn quota_details_show_what_they_have() {
        let q = QuotaDetails { name: Some("cpu_seconds".into()), used: Some(12.5), ..Default::default() };
        assert_eq!(q.to_string(), "cpu_seconds: 12.5 used");
        let q = QuotaDetails { name: Some("concurrent_sandboxes".into()), ..Default::default() };
        assert_eq!(q.to_string(), "concurrent_sandboxes");
        assert_eq!(QuotaDetails::default().to_string(), "");
        assert_eq!(number(0.0156), "0.016");
    }

    #[test]
    fn feature_and_forbidden_and_unauthorized() {
        let err = api_error(
            403,
            None,
            &body(r#"{"error":{"code":"feature_not_in_plan","message":"no network on free","feature":"network"}}"#),
            None,
        );
        assert!(matches!(&err, ClientError::FeatureNotInPlan { feature: Some(f), .. } if f == "network"), "{err:?}");
        let err = api_error(403, None, &body(r#"{"error":{"code":"forbidden","message":"needs admin"}}"#), None);
        assert!(matches!(err, ClientError::Forbidden { status: 403, .. }), "{err:?}");
        assert_eq!(err.to_string(), "needs admin (forbidden)");
        // A 403 about the request itself stays an ordinary API error.
        let err = api_error(403, None, &body(r#"{"error":{"code":"path_not_allowed","message":"no"}}"#), None);
        assert!(matches!(err, ClientError::Api { status: 403, .. }), "{err:?}");
        let err = api_error(401, None, &body(r#"{"error":{"code":"invalid_api_key","message":"unknown key"}}"#), None);
        assert!(matches!(&err, ClientError::Unauthorized { code, .. } if code == "invalid_api_key"), "{err:?}");
        assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_api_key")));
        let err = api_error(401, Some("Unauthorized"), b"", None);
        assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    }

    #[test]
    fn rate_limited_prefers_the_body_then_the_header() {
        let b = body(r#"{"error":{"code":"rate_limited","message":"slow down","retry_after_seconds":3}}"#);
        let err = api_error(429, None, &b, Some(Duration::from_secs(9)));
        assert!(matches!(err, ClientError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 3), "{err:?}");
        let b = body(r#"{"error":{"code":"rate_limited","message":"slow down"}}"#);
        let err = api_error(429, None, &b, Some(Duration::from_secs(9)));
        assert!(matches!(err, ClientError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 9), "{err:?}");
        let err = api_error(429, Some("Too Many Requests"), b"busy", parse_retry_after(" 2 "));
        assert!(matches!(err, ClientError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 2), "{err:?}");
        assert_eq!(err.code(), Some("rate_limited"));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
