//! `deliver_webhook` against a real HTTP server on loopback that records what
//! it receives and answers according to the request path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use superserver_notify::{
    deliver_webhook, http_client, verify, Delivery, DeliveryError, WebhookEndpoint, ATTEMPT_HEADER,
    DEFAULT_TOLERANCE_S, EVENT_ID_HEADER, EVENT_TYPE_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, USER_AGENT,
};

const SECRET: &[u8] = b"whsec_integration";
/// Bound on every wait in these tests.
const TEST_BOUND: Duration = Duration::from_secs(20);
/// How long `/slow` takes to answer; far above the endpoint timeout used with it.
const SLOW_ANSWER: Duration = Duration::from_secs(5);

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// Records the request, then answers by path: `/ok` 204, `/status/<code>`
/// that status with a 500-byte body, `/slow` 200 after [`SLOW_ANSWER`],
/// `/redirect` 302 to `/ok`.
async fn receive(State(log): State<Log>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    log.lock().expect("log lock").push(Received { method, path: path.clone(), headers, body });
    if path == "/ok" {
        StatusCode::NO_CONTENT.into_response()
    } else if path == "/slow" {
        tokio::time::sleep(SLOW_ANSWER).await;
        StatusCode::OK.into_response()
    } else if path == "/redirect" {
        (StatusCode::FOUND, [(header::LOCATION, "/ok")]).into_response()
    } else if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse::<u16>().ok()) {
        (StatusCode::from_u16(code).expect("tests ask for valid statuses"), "E".repeat(500)).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn start_receiver() -> (SocketAddr, Log) {
    let log = Log::default();
    let app = Router::new().fallback(receive).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, log)
}

fn endpoint(url: String) -> WebhookEndpoint {
    WebhookEndpoint {
        name: "billing".into(),
        url,
        secret: Some(String::from_utf8(SECRET.to_vec()).expect("the test secret is UTF-8")),
        secret_file: None,
        events: vec!["*".into()],
        timeout_ms: 5_000,
    }
}

fn delivery() -> Delivery {
    Delivery {
        event_id: "evt_01HXAMPLE".into(),
        event_type: "quota.warning".into(),
        created_at_ms: 1_700_000_000_000,
        body: br#"{"type":"quota.warning","tenant":"t1","used":91,"limit":100}"#.to_vec(),
        attempt: 3,
    }
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, f).await.expect("the test's wait is bounded")
}

async fn deliver_to(ep: &WebhookEndpoint) -> Result<(), DeliveryError> {
    bounded(deliver_webhook(&http_client(), ep, SECRET, &delivery())).await
}

fn now_s() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs();
    i64::try_from(secs).expect("seconds fit in i64")
}

/// The single value of header `name`.
fn one<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    assert_eq!(values.len(), 1, "header {name} should appear once: {values:?}");
    values[0].to_str().expect("header values are ASCII")
}

#[tokio::test]
async fn delivers_signed_post_with_all_headers() {
    let (addr, log) = start_receiver().await;
    let ep = endpoint(format!("http://{addr}/ok"));
    ep.validate().unwrap();
    deliver_to(&ep).await.unwrap();

    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0];
    let d = delivery();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/ok");
    assert_eq!(r.body.as_ref(), d.body.as_slice(), "the body is sent as-is");
    assert_eq!(one(&r.headers, "content-type"), "application/json");
    assert_eq!(one(&r.headers, "user-agent"), USER_AGENT);
    assert!(USER_AGENT.starts_with("SuperServer/") && USER_AGENT.len() > "SuperServer/".len());
    assert_eq!(one(&r.headers, EVENT_ID_HEADER), "evt_01HXAMPLE");
    assert_eq!(one(&r.headers, EVENT_TYPE_HEADER), "quota.warning");
    assert_eq!(one(&r.headers, IDEMPOTENCY_HEADER), "evt_01HXAMPLE");
    assert_eq!(one(&r.headers, ATTEMPT_HEADER), "3");

    let signature = one(&r.headers, SIGNATURE_HEADER);
    verify(SECRET, signature, &r.body, now_s(), DEFAULT_TOLERANCE_S).unwrap();
    let t: i64 = signature.strip_prefix("t=").and_then(|s| s.split(',').next()).unwrap().parse().unwrap();
    assert!((now_s() - t).abs() <= 5, "t={t} should be the sending time");
    assert!(verify(b"wrong secret", signature, &r.body, now_s(), DEFAULT_TOLERANCE_S).is_err());
    assert!(verify(SECRET, signature, b"{}", now_s(), DEFAULT_TOLERANCE_S).is_err());
}

#[tokio::test]
async fn server_error_is_retryable_and_quotes_200_bytes_of_body() {
    let (addr, log) = start_receiver().await;
    let e = deliver_to(&endpoint(format!("http://{addr}/status/500"))).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("\"billing\"") && e.message.contains("500 Internal Server Error"), "{e}");
    assert!(e.message.contains(&"E".repeat(200)) && !e.message.contains(&"E".repeat(201)), "{e}");
    assert!(!e.message.contains(&addr.to_string()), "the message must not carry the URL: {e}");
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn gone_is_permanent() {
    let (addr, _log) = start_receiver().await;
    let e = deliver_to(&endpoint(format!("http://{addr}/status/410"))).await.unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(e.message.contains("\"billing\"") && e.message.contains("410 Gone"), "{e}");
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    let (addr, _log) = start_receiver().await;
    for code in [400, 401, 404] {
        let e = deliver_to(&endpoint(format!("http://{addr}/status/{code}"))).await.unwrap_err();
        assert!(!e.retryable && e.message.contains(&code.to_string()), "{code}: {e}");
    }
}

#[tokio::test]
async fn too_many_requests_and_conflict_are_retryable() {
    let (addr, _log) = start_receiver().await;
    for code in [408, 409, 425, 429, 503] {
        let e = deliver_to(&endpoint(format!("http://{addr}/status/{code}"))).await.unwrap_err();
        assert!(e.retryable && e.message.contains(&code.to_string()), "{code}: {e}");
    }
}

#[tokio::test]
async fn closed_port_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let e = deliver_to(&endpoint(format!("http://127.0.0.1:{port}/ok"))).await.unwrap_err();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("\"billing\"") && e.message.contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn slow_receiver_times_out_retryably() {
    let (addr, log) = start_receiver().await;
    let ep = WebhookEndpoint { timeout_ms: 300, ..endpoint(format!("http://{addr}/slow")) };
    let started = Instant::now();
    let e = deliver_to(&ep).await.unwrap_err();
    let took = started.elapsed();
    assert!(e.retryable, "{e}");
    assert!(e.message.contains("\"billing\"") && e.message.contains("300 ms"), "{e}");
    assert!(took < SLOW_ANSWER, "gave up after {took:?}, should be about 300 ms");
    assert_eq!(log.lock().unwrap().len(), 1, "the request reached the receiver");
}

/// A redirect is not followed: the delivery fails permanently (the endpoint's
/// URL needs updating) and the redirect target never sees the event.
#[tokio::test]
async fn redirect_is_not_followed() {
    let (addr, log) = start_receiver().await;
    let e = deliver_to(&endpoint(format!("http://{addr}/redirect"))).await.unwrap_err();
    assert!(!e.retryable, "{e}");
    assert!(e.message.contains("302 Found") && e.message.contains("not followed"), "{e}");
    let paths: Vec<String> = log.lock().unwrap().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/redirect"]);
}
