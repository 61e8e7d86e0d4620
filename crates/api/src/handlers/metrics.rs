//! `/v1/metrics`: stored time series (host, containers, processes: admin;
//! a sandbox's: also its tenant).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use superserver_core::metrics::parse_duration_ms;
use superserver_wire::{ErrorResponse, MetricQueryResult, MetricSeriesList};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

/// The series the caller may read, with their latest values.
#[utoipa::path(get, path = "/v1/metrics/series", responses((status = 200, body = MetricSeriesList)), tag = "metrics")]
pub async fn series(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<MetricSeriesList>> {
    Ok(Json(st.svc.metric_series(&caller).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// Series name, e.g. `host/cpu.percent` or `container:web/memory.bytes`.
    pub series: String,
    /// Start, ms since the epoch (default: an hour before `to`).
    pub from: Option<i64>,
    /// End (exclusive), ms since the epoch (default: now).
    pub to: Option<i64>,
    /// Point width: `30s`, `1m`, `1h`, `1d` (default: the stored tier giving about 1500 points).
    pub step: Option<String>,
}

/// A series' points (avg/min/max) in a range; the stored tier is picked
/// from the range and step.
#[utoipa::path(
    get,
    path = "/v1/metrics/query",
    params(QueryParams),
    responses((status = 200, body = MetricQueryResult), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    tag = "metrics"
)]
pub async fn query(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<QueryParams>,
) -> ApiResult<Json<MetricQueryResult>> {
    let step = q.step.as_deref().map(parse_duration_ms).transpose()?;
    Ok(Json(st.svc.metric_query(&caller, &q.series, q.from, q.to, step).await?))
}
