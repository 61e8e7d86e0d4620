//! Health, status, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use superserver_wire::StatusResponse;
use utoipa::OpenApi;

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::{metrics, AppState};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "ok")), tag = "system")]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: sandboxes can be created.
#[utoipa::path(
    get,
    path = "/readyz",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")),
    tag = "system"
)]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, &'static str) {
    if st.svc.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Backends, warm pool and sandbox figures.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusResponse)), tag = "system")]
pub async fn status(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<StatusResponse>> {
    Ok(Json(st.svc.status(&caller).await?))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text")), tag = "system")]
pub async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> ApiResult<impl IntoResponse> {
    if st.svc.config().auth.metrics_require_key {
        let h = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{fffd}"));
        st.svc.authenticate(h, None).map_err(|e| crate::extract::refused(&st, e))?;
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics::render(&st.svc)))
}

/// This API's OpenAPI document, generated from the code.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document")), tag = "system")]
pub async fn openapi(Auth(_caller): Auth) -> impl IntoResponse {
    Json(crate::openapi::ApiDoc::openapi())
}
