//! Sending one webhook.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;

use crate::error::error_chain;
use crate::{
    sign, DeliveryError, WebhookEndpoint, ATTEMPT_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
};

/// `User-Agent` of webhook requests: `SuperServer/<version>`.
pub const USER_AGENT: &str = concat!("SuperServer/", env!("CARGO_PKG_VERSION"));

/// Connect timeout of [`http_client`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a failed answer's body quoted in the error message.
const MAX_BODY_SNIPPET: usize = 200;

/// A message to deliver (a row of the server's durable outbox).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Unique per event; also sent as the idempotency key.
    pub event_id: String,
    /// E.g. `"quota.warning"`, `"usage.reported"`.
    pub event_type: String,
    /// When the event happened, Unix milliseconds.
    pub created_at_ms: i64,
    /// The JSON payload, sent as-is.
    pub body: Vec<u8>,
    /// 1 for the first try.
    pub attempt: u32,
}

/// The HTTP client for webhooks: rustls with the system's roots, no proxy
/// from the environment, redirects not followed (a receiver answering 3xx
/// gets a permanent error, see [`deliver_webhook`]), 5 s connect timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        // Fails only if the TLS backend cannot start, which a fixed rustls setup rules out.
        .expect("a rustls client with fixed settings builds")
}

/// Sends one webhook: `POST` the body to the endpoint's URL with
/// `Content-Type: application/json`, `User-Agent: SuperServer/<version>`, the
/// signature, event id, event type, idempotency key and attempt headers, all
/// within the endpoint's `timeout_ms`.
///
/// - 2xx → `Ok`.
/// - 408, 409, 425, 429, 5xx, timeouts, connection errors → retryable error.
/// - Any other answer → permanent error: 410 Gone and other 4xx, and 3xx
///   (redirects are not followed: the endpoint's URL needs updating).
///
/// The message names the endpoint and the status or error, and quotes at
/// most 200 bytes of the answer's body. It never contains the URL.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(endpoint = %ep.name, event_id = %d.event_id, attempt = d.attempt)
)]
pub async fn deliver_webhook(
    client: &reqwest::Client,
    ep: &WebhookEndpoint,
    secret: &[u8],
    d: &Delivery,
) -> Result<(), DeliveryError> {
    let what = format!("webhook {:?}", ep.name);
    let headers = headers(&what, secret, d)?;
    let timeout = Duration::from_millis(ep.timeout_ms);
    let request = client.post(&ep.url).timeout(timeout).headers(headers).body(d.body.clone());
    let response = request.send().await.map_err(|e| request_error(&what, timeout, e))?;
    let status = response.status();
    if status.is_success() {
        tracing::debug!(%status, "webhook delivered");
        return Ok(());
    }
    let location = response.headers().get(LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let snippet = body_snippet(response).await;
    let err = status_error(&what, status, location.as_deref(), &snippet);
    tracing::debug!(%status, retryable = err.retryable, "webhook refused");
    Err(err)
}

fn headers(what: &str, secret: &[u8], d: &Delivery) -> Result<HeaderMap, DeliveryError> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(0));
    let value = |field: &str, v: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| DeliveryError::permanent(format!("{what}: {field} {v:?} is not a valid HTTP header value")))
    };
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(name(SIGNATURE_HEADER), value("signature", &sign(secret, now_s, &d.body))?);
    h.insert(name(EVENT_ID_HEADER), value("event id", &d.event_id)?);
    h.insert(name(EVENT_TYPE_HEADER), value("event type", &d.event_type)?);
    h.insert(name(IDEMPOTENCY_HEADER), value("event id", &d.event_id)?);
    h.insert(name(ATTEMPT_HEADER), HeaderValue::from(d.attempt));
    Ok(h)
}

fn name(constant: &'static str) -> HeaderName {
    HeaderName::from_bytes(constant.as_bytes()).expect("the header name constants are valid tokens")
}

fn request_error(what: &str, timeout: Duration, e: reqwest::Error) -> DeliveryError {
    let e = e.without_url();
    if e.is_timeout() {
        DeliveryError::transient(format!("{what}: no answer within {} ms", timeout.as_millis()))
    } else if e.is_builder() {
        DeliveryError::permanent(format!("{what}: invalid request: {}", error_chain(&e)))
    } else if e.is_connect() {
        DeliveryError::transient(format!("{what}: cannot connect: {}", error_chain(&e)))
    } else {
        DeliveryError::transient(format!("{what}: request failed: {}", error_chain(&e)))
    }
}

fn status_error(what: &str, status: StatusCode, location: Option<&str>, snippet: &str) -> DeliveryError {
    let code = status.as_u16();
    let body = if snippet.is_empty() { String::new() } else { format!(": {snippet}") };
    if status.is_redirection() {
        let to = location.map(|l| format!(" to {:?}", truncate(l, MAX_BODY_SNIPPET))).unwrap_or_default();
        return DeliveryError::permanent(format!(
            "{what}: HTTP {status} redirect{to} not followed; update the endpoint's url{body}"
        ));
    }
    let message = format!("{what}: HTTP {status}{body}");
    if status.is_server_error() || matches!(code, 408 | 409 | 425 | 429) {
        DeliveryError::transient(message)
    } else {
        DeliveryError::permanent(message)
    }
}

/// The first bytes of the answer's body, as printable text on one line.
async fn body_snippet(mut response: reqwest::Response) -> String {
    let mut buf = Vec::new();
    // The request's timeout also bounds the body; a read error ends the snippet.
    while buf.len() < MAX_BODY_SNIPPET {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    buf.truncate(MAX_BODY_SNIPPET);
    printable(&String::from_utf8_lossy(&buf))
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    printable(&s[..end])
}

/// Control characters (newlines…) become spaces so a body cannot forge log lines.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let retryable = |code: u16| status_error("w", StatusCode::from_u16(code).unwrap(), None, "").retryable;
        for code in [408, 409, 425, 429, 500, 502, 503, 504, 599] {
            assert!(retryable(code), "{code} should be retryable");
        }
        for code in [300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 410, 413, 422, 451] {
            assert!(!retryable(code), "{code} should be permanent");
        }
    }

    #[test]
    fn messages_are_bounded_and_single_line() {
        let e = status_error("webhook \"b\"", StatusCode::BAD_GATEWAY, None, "oops");
        assert_eq!(e.message, "webhook \"b\": HTTP 502 Bad Gateway: oops");
        let e = status_error("w", StatusCode::FOUND, Some("https://x/\nfake log line"), "");
        assert!(e.message.contains("redirect to \"https://x/ fake log line\" not followed"), "{}", e.message);
        assert_eq!(truncate(&"é".repeat(150), 201).len(), 200);
        assert_eq!(printable("a\r\nb\u{7}"), "a  b");
    }

    #[test]
    fn header_names_are_valid() {
        for constant in [SIGNATURE_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, IDEMPOTENCY_HEADER, ATTEMPT_HEADER] {
            assert_eq!(name(constant).as_str(), constant.to_ascii_lowercase());
        }
    }

    #[test]
    fn invalid_header_values_are_permanent_errors() {
        let d = Delivery {
            event_id: "evt\n1".into(),
            event_type: "quota.warning".into(),
            created_at_ms: 0,
            body: b"{}".to_vec(),
            attempt: 1,
        };
        let e = headers("webhook \"b\"", b"k", &d).unwrap_err();
        assert!(!e.retryable && e.message.contains("event id"), "{e}");
    }
}
