//! `/v1/anomalies`: what departed from the services' baselines (admin).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use superserver_wire::{AnomalyList, ErrorResponse};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AnomaliesQuery {
    /// Only this service's anomalies.
    pub service: Option<String>,
    /// Only this kind (`error_rate_spike`, `crash_loop` …).
    pub kind: Option<String>,
    /// From this time (unix ms).
    pub from: Option<i64>,
    /// Up to this time (unix ms).
    pub to: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Anomalies with their evidence, newest first.
#[utoipa::path(
    get,
    path = "/v1/anomalies",
    params(AnomaliesQuery),
    responses((status = 200, body = AnomalyList), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    tag = "services"
)]
pub async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<AnomaliesQuery>,
) -> ApiResult<Json<AnomalyList>> {
    Ok(Json(st.svc.anomalies(&caller, q.service, q.kind, q.from, q.to, q.limit.unwrap_or(100)).await?))
}
