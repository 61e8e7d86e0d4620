//! SuperServer's HTTP API (`/v1`, JSON). Handlers parse and validate, call
//! one typed core operation, and map its error to a status; the router is
//! built by [`app`] so tests can drive it without a socket.
#![forbid(unsafe_code)]

pub mod error;
mod extract;
mod handlers;
pub mod metrics;
pub mod openapi;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{delete, get, post};
use axum::Router;
use superserver_core::Service;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub svc: Service,
}

/// Request ids: a per-process counter, prefixed so they stand out in logs.
#[derive(Clone, Default)]
struct Counter;

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("req-{n}")).ok().map(RequestId::new)
    }
}

/// The whole HTTP application.
pub fn app(svc: Service) -> Router {
    let body_limit = svc.config().api.max_body_bytes;
    let state = AppState { svc };
    let v1 = Router::new()
        .route("/run", post(handlers::run::run))
        .route("/sandboxes", post(handlers::sandboxes::create).get(handlers::sandboxes::list))
        .route("/sandboxes/{id}", get(handlers::sandboxes::get).delete(handlers::sandboxes::delete))
        .route("/sandboxes/{id}/exec", post(handlers::sandboxes::exec))
        .route("/sandboxes/{id}/files", get(handlers::files::get).put(handlers::files::put))
        .route("/executions", get(handlers::sandboxes::executions))
        .route("/status", get(handlers::system::status))
        .route("/whoami", get(handlers::tenancy::whoami))
        .route("/plans", get(handlers::tenancy::plans))
        .route("/tenants", post(handlers::tenancy::create_tenant).get(handlers::tenancy::list_tenants))
        .route("/tenants/{tenant}", get(handlers::tenancy::get_tenant).patch(handlers::tenancy::update_tenant))
        .route("/tenants/{tenant}/suspend", post(handlers::tenancy::suspend_tenant))
        .route("/tenants/{tenant}/resume", post(handlers::tenancy::resume_tenant))
        .route("/keys", post(handlers::tenancy::create_key).get(handlers::tenancy::list_keys))
        .route("/keys/{id}", delete(handlers::tenancy::revoke_key))
        .route("/audit", get(handlers::tenancy::audit))
        .route("/outbox", get(handlers::tenancy::outbox))
        .route("/usage", get(handlers::usage::usage))
        .route("/usage/export", get(handlers::usage::export))
        .route("/quotas", get(handlers::usage::quotas))
        .route("/services", get(handlers::services::list))
        .route("/metrics/series", get(handlers::metrics::series))
        .route("/metrics/query", get(handlers::metrics::query))
        .route("/services/map", get(handlers::services::map))
        .route("/services/stream", get(handlers::health::stream))
        .route("/services/events", get(handlers::services::events))
        .route("/services/{id}", get(handlers::services::get))
        .route("/services/{id}/health", get(handlers::health::get))
        .route("/health", get(handlers::health::list))
        .route("/anomalies", get(handlers::anomalies::list))
        .route("/alerts", get(handlers::alerts::list))
        .route("/alerts/{id}", get(handlers::alerts::get))
        .route("/alerts/{id}/ack", post(handlers::alerts::ack))
        .route("/alerts/{id}/silence", post(handlers::alerts::silence))
        .route("/silences", get(handlers::alerts::list_silences).post(handlers::alerts::create_silence))
        .route("/silences/{id}", delete(handlers::alerts::delete_silence))
        .route("/logs", get(handlers::logs::search))
        .route("/logs/templates", get(handlers::logs::templates))
        .route("/egress/events", get(handlers::egress::events))
        .route("/approvals", get(handlers::egress::approvals))
        .route("/approvals/{id}", post(handlers::egress::decide))
        .route("/secrets", get(handlers::secrets::list))
        .route(
            "/secrets/{name}",
            get(handlers::secrets::get).put(handlers::secrets::put).delete(handlers::secrets::delete),
        )
        .route("/openapi.json", get(handlers::system::openapi));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(handlers::system::healthz))
        .route("/readyz", get(handlers::system::readyz))
        .route("/metrics", get(handlers::system::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::debug_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_response(|res: &axum::response::Response, latency: Duration, _: &tracing::Span| {
                    tracing::debug!(
                        status = res.status().as_u16(),
                        latency_us = latency.as_micros() as u64,
                        "answered"
                    );
                }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(Counter))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
