//! `/v1/logs`: search and live tail of followed logs, and their templates.
//! Host logs are admin-only; a tenant reads its own sandboxes' logs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::StreamExt;
use serde::Deserialize;
use superserver_core::LogQuery;
use superserver_wire::{ErrorResponse, LogLine, LogList, LogTemplateList};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::{ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// Only this service (`container:web`, a file service, `sandbox:<id>`).
    pub service: Option<String>,
    /// Words that must all appear (full-text; never query syntax).
    pub q: Option<String>,
    /// This level and the more severe ones: `fatal`, `error`, `warn`,
    /// `info`, `debug`, `trace`; `unknown` for lines that declare none.
    pub level: Option<String>,
    /// From this time, milliseconds since the Unix epoch (inclusive).
    pub from: Option<i64>,
    /// Up to this time, milliseconds since the Unix epoch (exclusive).
    pub to: Option<i64>,
    /// At most this many lines (default 100, at most 10000).
    pub limit: Option<usize>,
    /// Stream new matching lines as server-sent events (`event: line`).
    pub follow: Option<bool>,
}

/// Stored log lines, newest first, with their template; or, with
/// `follow=true`, new lines as server-sent events.
#[utoipa::path(
    get,
    path = "/v1/logs",
    params(LogsParams),
    responses((status = 200, body = LogList), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    tag = "logs"
)]
pub async fn search(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<LogsParams>,
) -> ApiResult<Response> {
    let q = LogQuery {
        service: p.service,
        q: p.q,
        level: p.level,
        from_ms: p.from,
        to_ms: p.to,
        limit: p.limit.unwrap_or(100),
    };
    if p.follow != Some(true) {
        return Ok(Json(st.svc.logs(&caller, q).await?).into_response());
    }
    let rx = st.svc.tail_logs(&caller, q)?;
    let events = ReceiverStream::new(rx).map(|l| Ok::<_, std::io::Error>(sse(&l)));
    // A comment first, so clients see the stream open before any line.
    let open = futures::stream::once(async { Ok::<_, std::io::Error>(b": following\n\n".to_vec()) });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(open.chain(events)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

fn sse(l: &LogLine) -> Vec<u8> {
    // JSON has no raw newline, so a line cannot end the event early.
    let data = serde_json::to_string(l).unwrap_or_default();
    format!("event: line\ndata: {data}\n\n").into_bytes()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplatesParams {
    /// Only this service's templates.
    pub service: Option<String>,
    /// At most this many (default 100, at most 10000).
    pub limit: Option<usize>,
}

/// Log templates (Drain-mined, variables as `<*>`), most frequent first.
#[utoipa::path(
    get,
    path = "/v1/logs/templates",
    params(TemplatesParams),
    responses((status = 200, body = LogTemplateList), (status = 403, body = ErrorResponse)),
    tag = "logs"
)]
pub async fn templates(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<TemplatesParams>,
) -> ApiResult<Json<LogTemplateList>> {
    Ok(Json(st.svc.log_templates(&caller, p.service, p.limit.unwrap_or(100)).await?))
}
