//! `/v1/alerts` and `/v1/silences`: alerts about the host's services (admin).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use superserver_wire::{Alert, AlertDetail, AlertList, ErrorResponse, Silence, SilenceList, SilenceRequest};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `firing` (default), `resolved` or `all`.
    pub state: Option<String>,
    /// Only this service's alerts (`container:web`).
    pub service: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/v1/alerts", params(AlertsQuery), responses((status = 200, body = AlertList), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)), tag = "alerts")]
pub async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> ApiResult<Json<AlertList>> {
    Ok(Json(st.svc.alerts(&caller, q.state.as_deref(), q.service, q.limit.unwrap_or(100)).await?))
}

/// One alert, its context and its history.
#[utoipa::path(get, path = "/v1/alerts/{id}", params(("id" = String, Path, description = "Alert id (`al_…`)")), responses((status = 200, body = AlertDetail), (status = 404, body = ErrorResponse)), tag = "alerts")]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AlertDetail>> {
    Ok(Json(st.svc.alert(&caller, &id).await?))
}

/// Acknowledge an alert: no more repeat notifications (its resolution is still sent).
#[utoipa::path(post, path = "/v1/alerts/{id}/ack", params(("id" = String, Path, description = "Alert id")), responses((status = 200, body = Alert), (status = 404, body = ErrorResponse)), tag = "alerts")]
pub async fn ack(State(st): State<AppState>, Auth(caller): Auth, Path(id): Path<String>) -> ApiResult<Json<Alert>> {
    Ok(Json(st.svc.ack_alert(&caller, &id).await?))
}

/// Silence the alert's rule on its service for a while (`for_seconds` or `until`, and a `reason`).
#[utoipa::path(post, path = "/v1/alerts/{id}/silence", params(("id" = String, Path, description = "Alert id")), request_body = SilenceRequest, responses((status = 201, body = Silence), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)), tag = "alerts")]
pub async fn silence(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SilenceRequest>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    Ok((StatusCode::CREATED, Json(st.svc.silence_alert(&caller, &id, req).await?)))
}

/// Active silences, ending soonest first.
#[utoipa::path(get, path = "/v1/silences", responses((status = 200, body = SilenceList), (status = 403, body = ErrorResponse)), tag = "alerts")]
pub async fn list_silences(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<SilenceList>> {
    Ok(Json(st.svc.silences(&caller).await?))
}

/// Silence a rule, a service or both (neither: everything).
#[utoipa::path(post, path = "/v1/silences", request_body = SilenceRequest, responses((status = 201, body = Silence), (status = 400, body = ErrorResponse)), tag = "alerts")]
pub async fn create_silence(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<SilenceRequest>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    Ok((StatusCode::CREATED, Json(st.svc.create_silence(&caller, req).await?)))
}

/// End a silence now.
#[utoipa::path(delete, path = "/v1/silences/{id}", params(("id" = String, Path, description = "Silence id (`si_…`)")), responses((status = 204), (status = 404, body = ErrorResponse)), tag = "alerts")]
pub async fn delete_silence(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.svc.delete_silence(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
