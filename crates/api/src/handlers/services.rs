//! `/v1/services`: what runs on the host and how it connects (admin).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use superserver_wire::{ErrorResponse, ServiceDetail, ServiceEventList, ServiceList, ServiceMap};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

/// The host's services as discovery last saw them: containers, systemd
/// units, listening processes (admin).
#[utoipa::path(get, path = "/v1/services", responses((status = 200, body = ServiceList), (status = 403, body = ErrorResponse)), tag = "services")]
pub async fn list(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<ServiceList>> {
    Ok(Json(st.svc.services(&caller)?))
}

/// The service map: nodes with their state, and the edges between them
/// (TCP connections, shared Docker networks, compose dependencies).
#[utoipa::path(get, path = "/v1/services/map", responses((status = 200, body = ServiceMap), (status = 403, body = ErrorResponse)), tag = "services")]
pub async fn map(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<ServiceMap>> {
    Ok(Json(st.svc.service_map(&caller)?))
}

/// One service, its edges and its latest changes.
#[utoipa::path(
    get,
    path = "/v1/services/{id}",
    params(("id" = String, Path, description = "Service id, e.g. `container:web`")),
    responses((status = 200, body = ServiceDetail), (status = 404, body = ErrorResponse)),
    tag = "services"
)]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceDetail>> {
    Ok(Json(st.svc.service(&caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only this service's changes.
    pub service: Option<String>,
    /// Changes with ids below this (paging back).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Changes discovery saw (appeared, gone, restarted, state, health or image
/// changed), newest first.
#[utoipa::path(get, path = "/v1/services/events", params(EventsQuery), responses((status = 200, body = ServiceEventList)), tag = "services")]
pub async fn events(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<ServiceEventList>> {
    Ok(Json(st.svc.service_events(&caller, q.service, q.before, q.limit.unwrap_or(100)).await?))
}
