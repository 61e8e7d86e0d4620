//! `/v1/usage`, `/v1/usage/export`, `/v1/quotas`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use superserver_core::UsageQuery;
use superserver_wire::{ErrorResponse, QuotaList, UsageReport};
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// Start (unix ms, RFC 3339 or YYYY-MM-DD); default the start of this month (UTC).
    pub from: Option<String>,
    /// End, exclusive; default now.
    pub to: Option<String>,
    /// `day` (default), `key`, `sandbox` or `tenant`.
    pub group_by: Option<String>,
    /// Tenant name or id; admins only for another tenant (default: the
    /// caller's own; an admin's default is every tenant).
    pub tenant: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

impl UsageParams {
    fn query(self) -> UsageQuery {
        UsageQuery { from: self.from, to: self.to, group_by: self.group_by, tenant: self.tenant }
    }
}

/// Usage (executions, wall and CPU time, GB-seconds, output) in a time range, grouped.
#[utoipa::path(
    get,
    path = "/v1/usage",
    params(UsageParams),
    responses((status = 200, description = "JSON, or CSV with `format=csv`", body = UsageReport), (status = 400, body = ErrorResponse)),
    tag = "usage"
)]
pub async fn usage(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Response> {
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(st.svc.usage(&caller, &q.query()).await?).into_response()),
        "csv" => Ok(csv_response(st.svc.usage_csv(&caller, &q.query()).await?, "usage.csv")),
        other => Err(ApiError::bad_request(format!("format `{other}`: use json or csv"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub tenant: Option<String>,
}

/// Usage as meter events a billing system imports (CSV: tenant, meter,
/// quantity, unit, period per UTC day). Owners and admins.
#[utoipa::path(get, path = "/v1/usage/export", params(ExportParams), responses((status = 200, description = "CSV", content_type = "text/csv")), tag = "usage")]
pub async fn export(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let q = UsageQuery { from: q.from, to: q.to, group_by: None, tenant: q.tenant };
    Ok(csv_response(st.svc.usage_export(&caller, &q).await?, "usage-export.csv"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QuotaParams {
    /// Tenant name or id (admins; default the caller's, every tenant for an admin).
    pub tenant: Option<String>,
}

/// Quota state: used, limit and reset time of each quota.
#[utoipa::path(get, path = "/v1/quotas", params(QuotaParams), responses((status = 200, body = QuotaList)), tag = "usage")]
pub async fn quotas(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<QuotaParams>,
) -> ApiResult<Json<QuotaList>> {
    Ok(Json(st.svc.quotas(&caller, q.tenant.as_deref())?))
}

fn csv_response(body: String, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}
