//! `/v1/secrets`: custody secrets. Values go in and are never returned.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use superserver_wire::{ErrorResponse, PutSecretRequest, SecretInfo, SecretList};

use crate::error::ApiResult;
use crate::extract::{ApiJson, Auth};
use crate::AppState;

/// Create or replace a secret of the caller's tenant (owner role): its
/// value is sealed at rest and sent only to its hosts, by the egress proxy,
/// in place of the placeholder a sandbox holding it sees.
#[utoipa::path(
    put,
    path = "/v1/secrets/{name}",
    request_body = PutSecretRequest,
    params(("name" = String, Path, description = "Secret name (also its variable in a sandbox's environment)")),
    responses(
        (status = 201, description = "Created", body = SecretInfo),
        (status = 200, description = "Replaced", body = SecretInfo),
        (status = 400, body = ErrorResponse),
        (status = 403, body = ErrorResponse)
    ),
    tag = "secrets"
)]
pub async fn put(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<PutSecretRequest>,
) -> ApiResult<(StatusCode, Json<SecretInfo>)> {
    let (info, created) = st.svc.put_secret(&caller, &name, req).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(info)))
}

/// The caller's tenant's secrets (every tenant's for an admin): names,
/// bound hosts, headers and the sandboxes that held them; never values.
#[utoipa::path(get, path = "/v1/secrets", responses((status = 200, body = SecretList)), tag = "secrets")]
pub async fn list(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<SecretList>> {
    Ok(Json(SecretList { secrets: st.svc.list_secrets(&caller).await? }))
}

/// One secret, without its value.
#[utoipa::path(
    get,
    path = "/v1/secrets/{name}",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, body = SecretInfo), (status = 404, body = ErrorResponse)),
    tag = "secrets"
)]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(st.svc.get_secret(&caller, &name).await?))
}

/// Remove a secret. Sandboxes holding it keep it until they end.
#[utoipa::path(
    delete,
    path = "/v1/secrets/{name}",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 204), (status = 404, body = ErrorResponse)),
    tag = "secrets"
)]
pub async fn delete(State(st): State<AppState>, Auth(caller): Auth, Path(name): Path<String>) -> ApiResult<StatusCode> {
    st.svc.delete_secret(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
