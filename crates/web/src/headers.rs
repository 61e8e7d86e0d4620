//! Security headers on every dashboard response, and the time the server
//! took to answer it.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// No inline script or style, nothing from elsewhere, no framing, no
/// plugins, forms post only here.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers, and `Server-Timing: render;dur=MS`: the time
/// from the request reaching the dashboard's routes to its response being
/// ready (session check, the core's queries and the page's HTML, which is
/// built whole before it is sent), shown by browsers' developer tools and
/// read by the benchmark.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&server_timing(start.elapsed().as_secs_f64() * 1000.0)) {
        h.insert("server-timing", v);
    }
    res
}

/// The `Server-Timing` value for `ms` milliseconds of rendering.
fn server_timing(ms: f64) -> String {
    format!("render;dur={ms:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_is_in_milliseconds_with_microseconds() {
        assert_eq!(server_timing(12.3456), "render;dur=12.346");
        assert_eq!(server_timing(0.0), "render;dur=0.000");
    }

    #[tokio::test]
    async fn every_response_says_how_long_it_took() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    "page"
                }),
            )
            .layer(axum::middleware::from_fn(security_headers));
        let req = Request::builder().uri("/").body(axum::body::Body::empty()).expect("a valid request");
        let res = app.oneshot(req).await.expect("the router answers");
        let timing = res.headers().get("server-timing").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let ms: f64 = timing.strip_prefix("render;dur=").and_then(|v| v.parse().ok()).unwrap_or(-1.0);
        assert!((5.0..5000.0).contains(&ms), "{timing}");
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
