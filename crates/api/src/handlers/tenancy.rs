//! `/v1/whoami`, `/v1/plans`, `/v1/tenants`, `/v1/keys`, `/v1/audit`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use superserver_wire::{
    AuditList, CreateKeyRequest, CreateTenantRequest, CreatedKey, ErrorResponse, KeyInfo, KeyList, OutboxList,
    PlanList, TenantInfo, TenantList, UpdateTenantRequest, WhoAmI,
};
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::AppState;

/// The caller's key, role and tenant (with the limits of its plan).
#[utoipa::path(get, path = "/v1/whoami", responses((status = 200, body = WhoAmI), (status = 401, body = ErrorResponse)), tag = "tenancy")]
pub async fn whoami(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<WhoAmI>> {
    Ok(Json(st.svc.whoami(&caller)?))
}

/// The plans this server offers, with every limit.
#[utoipa::path(get, path = "/v1/plans", responses((status = 200, body = PlanList)), tag = "tenancy")]
pub async fn plans(State(st): State<AppState>, Auth(caller): Auth) -> Json<PlanList> {
    Json(st.svc.plans(&caller))
}

/// Create a tenant (admin).
#[utoipa::path(
    post,
    path = "/v1/tenants",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, body = TenantInfo),
        (status = 400, description = "Invalid name, plan or e-mail", body = ErrorResponse),
        (status = 403, description = "Not an admin key", body = ErrorResponse),
        (status = 409, description = "The name is taken", body = ErrorResponse),
    ),
    tag = "tenancy"
)]
pub async fn create_tenant(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> ApiResult<(StatusCode, Json<TenantInfo>)> {
    Ok((StatusCode::CREATED, Json(st.svc.create_tenant(&caller, req).await?)))
}

/// Tenants: every one for an admin, the caller's own otherwise.
#[utoipa::path(get, path = "/v1/tenants", responses((status = 200, body = TenantList)), tag = "tenancy")]
pub async fn list_tenants(State(st): State<AppState>, Auth(caller): Auth) -> Json<TenantList> {
    Json(st.svc.list_tenants(&caller))
}

/// One tenant, by name or id.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    responses((status = 200, body = TenantInfo), (status = 404, body = ErrorResponse)),
    tag = "tenancy"
)]
pub async fn get_tenant(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(t): Path<String>,
) -> ApiResult<Json<TenantInfo>> {
    Ok(Json(st.svc.get_tenant(&caller, &t)?))
}

/// Change a tenant's plan, e-mail or overrides (admin).
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    request_body = UpdateTenantRequest,
    responses((status = 200, body = TenantInfo), (status = 400, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    tag = "tenancy"
)]
pub async fn update_tenant(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(t): Path<String>,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> ApiResult<Json<TenantInfo>> {
    Ok(Json(st.svc.update_tenant(&caller, &t, req).await?))
}

/// Suspend a tenant (admin): its keys get 403 and its sandboxes are stopped.
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/suspend",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    responses((status = 200, body = TenantInfo), (status = 404, body = ErrorResponse)),
    tag = "tenancy"
)]
pub async fn suspend_tenant(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(t): Path<String>,
) -> ApiResult<Json<TenantInfo>> {
    Ok(Json(st.svc.suspend_tenant(&caller, &t).await?))
}

/// Resume a suspended tenant (admin).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/resume",
    params(("tenant" = String, Path, description = "Tenant name or id")),
    responses((status = 200, body = TenantInfo), (status = 404, body = ErrorResponse)),
    tag = "tenancy"
)]
pub async fn resume_tenant(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(t): Path<String>,
) -> ApiResult<Json<TenantInfo>> {
    Ok(Json(st.svc.resume_tenant(&caller, &t).await?))
}

/// Create an API key: shown once in the answer, stored only as a hash.
#[utoipa::path(
    post,
    path = "/v1/keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, body = CreatedKey),
        (status = 403, description = "Needs an owner or admin key; no key above the caller's role", body = ErrorResponse),
        (status = 404, description = "No such tenant", body = ErrorResponse),
    ),
    tag = "tenancy"
)]
pub async fn create_key(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    Ok((StatusCode::CREATED, Json(st.svc.create_key(&caller, req).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Only this tenant's keys (name or id).
    pub tenant: Option<String>,
}

/// API keys (never the secrets): an owner's tenant's, or an admin's view of all.
#[utoipa::path(get, path = "/v1/keys", params(KeysQuery), responses((status = 200, body = KeyList), (status = 403, body = ErrorResponse)), tag = "tenancy")]
pub async fn list_keys(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<KeysQuery>,
) -> ApiResult<Json<KeyList>> {
    Ok(Json(st.svc.list_keys(&caller, q.tenant.as_deref())?))
}

/// Revoke an API key, at once.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    params(("id" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorResponse)),
    tag = "tenancy"
)]
pub async fn revoke_key(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyInfo>> {
    Ok(Json(st.svc.revoke_key(&caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries with ids below this (paging back).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The admin audit log, newest first (admin).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), responses((status = 200, body = AuditList), (status = 403, body = ErrorResponse)), tag = "tenancy")]
pub async fn audit(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    Ok(Json(st.svc.audit_log(&caller, q.before, q.limit.unwrap_or(100)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Webhook deliveries and e-mails with their state (pending, delivered,
/// failed), newest first (admin).
#[utoipa::path(get, path = "/v1/outbox", params(OutboxQuery), responses((status = 200, body = OutboxList), (status = 403, body = ErrorResponse)), tag = "tenancy")]
pub async fn outbox(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<OutboxQuery>,
) -> ApiResult<Json<OutboxList>> {
    Ok(Json(st.svc.outbox(&caller, q.limit.unwrap_or(100)).await?))
}
