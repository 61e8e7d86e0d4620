//! `POST /v1/run`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use superserver_wire::{ErrorResponse, ExecResult, RunRequest};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth, Delivery};
use crate::{stream, AppState};

/// Run one command in a fresh sandbox, destroyed afterwards.
///
/// With `Accept: application/x-ndjson` (or `text/event-stream`) output is
/// streamed as it is produced, one event per line, ending with the result.
#[utoipa::path(
    post,
    path = "/v1/run",
    request_body = RunRequest,
    responses(
        (status = 200, description = "The command ran (whatever its exit code)", body = ExecResult),
        (status = 400, description = "Invalid request", body = ErrorResponse),
        (status = 401, description = "Missing, malformed, unknown, revoked or expired API key", body = ErrorResponse),
        (status = 403, description = "Role or plan does not allow it, or the tenant is suspended", body = ErrorResponse),
        (status = 422, description = "A limit is above the server's or the plan's maximum", body = ErrorResponse),
        (status = 429, description = "A quota is used up (`quota_exceeded`) or the key's request rate is exceeded (`rate_limited`, with `Retry-After`)", body = ErrorResponse),
        (status = 503, description = "At capacity or shutting down", body = ErrorResponse),
    ),
    tag = "runs"
)]
pub async fn run(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RunRequest>,
) -> ApiResult<Response> {
    let svc = st.svc.clone();
    stream::answer(Delivery::from_headers(&headers), move |sink| async move { svc.run(&caller, req, sink).await }).await
}
