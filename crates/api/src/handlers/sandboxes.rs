//! `/v1/sandboxes`: persistent sandboxes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use superserver_wire::{CreateSandboxRequest, ErrorResponse, ExecRequest, ExecResult, SandboxInfo, SandboxList};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, Auth, Delivery};
use crate::{stream, AppState};

/// Create a persistent sandbox.
#[utoipa::path(
    post,
    path = "/v1/sandboxes",
    request_body = CreateSandboxRequest,
    responses(
        (status = 201, description = "Created", body = SandboxInfo),
        (status = 400, description = "Invalid request", body = ErrorResponse),
        (status = 422, description = "A limit is above the server's maximum", body = ErrorResponse),
    ),
    tag = "sandboxes"
)]
pub async fn create(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateSandboxRequest>,
) -> ApiResult<(StatusCode, Json<SandboxInfo>)> {
    Ok((StatusCode::CREATED, Json(st.svc.create_sandbox(&caller, req).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include ended sandboxes (destroyed, expired, lost, one-shot).
    #[serde(default)]
    pub all: bool,
}

/// List persistent sandboxes (running ones unless `all=true`).
#[utoipa::path(get, path = "/v1/sandboxes", params(ListQuery), responses((status = 200, body = SandboxList)), tag = "sandboxes")]
pub async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SandboxList>> {
    Ok(Json(SandboxList { sandboxes: st.svc.list_sandboxes(&caller, q.all).await? }))
}

/// Show one sandbox.
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{id}",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = SandboxInfo), (status = 404, body = ErrorResponse)),
    tag = "sandboxes"
)]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxInfo>> {
    Ok(Json(st.svc.get_sandbox(&caller, &id).await?))
}

/// Delete a sandbox: everything in it is killed and its files are gone.
#[utoipa::path(
    delete,
    path = "/v1/sandboxes/{id}",
    params(("id" = String, Path, description = "Sandbox id")),
    responses((status = 200, body = SandboxInfo), (status = 404, body = ErrorResponse)),
    tag = "sandboxes"
)]
pub async fn delete(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxInfo>> {
    Ok(Json(st.svc.delete_sandbox(&caller, &id).await?))
}

/// Run a command in a persistent sandbox (streams like `/v1/run`).
#[utoipa::path(
    post,
    path = "/v1/sandboxes/{id}/exec",
    params(("id" = String, Path, description = "Sandbox id")),
    request_body = ExecRequest,
    responses(
        (status = 200, body = ExecResult),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "The sandbox is not running", body = ErrorResponse),
    ),
    tag = "sandboxes"
)]
pub async fn exec(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ExecRequest>,
) -> ApiResult<Response> {
    let svc = st.svc.clone();
    stream::answer(Delivery::from_headers(&headers), move |sink| async move { svc.exec(&caller, &id, req, sink).await })
        .await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExecutionsQuery {
    /// Every tenant's runs (admins).
    #[serde(default)]
    pub all: bool,
    /// Runs started before this time (unix ms; paging back).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The run history: one-shot runs and execs, newest first.
#[utoipa::path(
    get,
    path = "/v1/executions",
    params(ExecutionsQuery),
    responses((status = 200, body = superserver_wire::ExecutionList), (status = 403, body = superserver_wire::ErrorResponse)),
    tag = "sandboxes"
)]
pub async fn executions(
    axum::extract::State(st): axum::extract::State<crate::AppState>,
    crate::extract::Auth(caller): crate::extract::Auth,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<ExecutionsQuery>,
) -> crate::error::ApiResult<axum::Json<superserver_wire::ExecutionList>> {
    Ok(axum::Json(st.svc.executions(&caller, q.all, q.before, q.limit.unwrap_or(100)).await?))
}
