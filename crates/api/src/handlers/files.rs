//! `/v1/sandboxes/{id}/files`: put and get files, list directories.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use superserver_core::FileContent;
use superserver_wire::{ErrorResponse, FileList, FileWritten};
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// Path relative to `/workspace`, or absolute under `/workspace` or `/tmp`.
    pub path: String,
    /// Permission bits in octal for a new file (default 644).
    #[serde(default)]
    pub mode: Option<String>,
    /// Answer with a directory listing (refuse a file).
    #[serde(default)]
    pub list: bool,
}

/// Upload a file (raw bytes body); parent directories are created.
#[utoipa::path(
    put,
    path = "/v1/sandboxes/{id}/files",
    params(("id" = String, Path, description = "Sandbox id"), FileQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = FileWritten),
        (status = 403, description = "The path leads outside /workspace and /tmp", body = ErrorResponse),
        (status = 507, description = "The sandbox's disk is full", body = ErrorResponse),
    ),
    tag = "files"
)]
pub async fn put(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FileQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<FileWritten>)> {
    let body = body?;
    let mode = match q.mode.as_deref() {
        None => None,
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .map_err(|_| ApiError::bad_request(format!("mode `{m}` is not an octal permission mode like 644")))?,
        ),
    };
    let size = st.svc.put_file(&caller, &id, &q.path, &body, mode).await?;
    Ok((StatusCode::CREATED, Json(FileWritten { path: q.path, size })))
}

/// Download a file (raw bytes) or list a directory (JSON).
#[utoipa::path(
    get,
    path = "/v1/sandboxes/{id}/files",
    params(("id" = String, Path, description = "Sandbox id"), FileQuery),
    responses(
        (status = 200, description = "File bytes (application/octet-stream) or a listing (application/json)", body = FileList),
        (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    ),
    tag = "files"
)]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> ApiResult<Response> {
    if q.mode.is_some() {
        return Err(ApiError::bad_request("mode applies to uploads only"));
    }
    Ok(match st.svc.get_path(&caller, &id, &q.path, q.list).await? {
        FileContent::File(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        FileContent::Dir(list) => Json(list).into_response(),
    })
}
