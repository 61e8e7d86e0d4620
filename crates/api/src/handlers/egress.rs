//! `/v1/egress/events` (the audit trail of governed sandboxes' traffic) and
//! `/v1/approvals` (connections held for a person's decision).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::StreamExt;
use serde::Deserialize;
use superserver_core::egress::EgressQuery;
use superserver_wire::{
    Approval, ApprovalList, DecideApprovalRequest, EgressDecision, EgressEvent, EgressEventList, ErrorResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Only this sandbox's events.
    pub sandbox: Option<String>,
    /// Only this execution's events.
    pub execution: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// From this time, milliseconds since the Unix epoch (inclusive).
    pub from: Option<i64>,
    /// Up to this time, milliseconds since the Unix epoch (inclusive).
    pub to: Option<i64>,
    /// Only events with a larger id (to page on).
    pub after: Option<i64>,
    /// At most this many (default 1000, at most 10000).
    pub limit: Option<usize>,
    /// Stream stored and then new events as server-sent events (`event: egress`).
    pub follow: Option<bool>,
    /// `json` (default) or `jsonl` (one event per line, for export).
    pub format: Option<String>,
}

/// Egress audit events, oldest first: every connection attempt and DNS
/// query of governed sandboxes that their policy's `log` level keeps.
#[utoipa::path(
    get,
    path = "/v1/egress/events",
    params(EventsParams),
    responses((status = 200, body = EgressEventList), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    tag = "egress"
)]
pub async fn events(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<EventsParams>,
) -> ApiResult<Response> {
    let decision = match p.decision.as_deref() {
        None => None,
        Some(d) => Some(
            EgressDecision::parse(d)
                .ok_or_else(|| ApiError::bad_request(format!("decision `{d}`: use allow or deny")))?,
        ),
    };
    let jsonl = match p.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(f) => return Err(ApiError::bad_request(format!("format `{f}`: use json or jsonl"))),
    };
    let q = EgressQuery {
        sandbox: p.sandbox,
        execution: p.execution,
        decision,
        from_ms: p.from,
        to_ms: p.to,
        after_id: p.after,
        limit: p.limit.unwrap_or(1000),
        newest: false,
    };
    if p.follow == Some(true) {
        let rx = st.svc.follow_egress(&caller, q).await?;
        let events = ReceiverStream::new(rx).map(|e| Ok::<_, std::io::Error>(sse(&e)));
        let open = futures::stream::once(async { Ok::<_, std::io::Error>(b": following\n\n".to_vec()) });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(Body::from_stream(open.chain(events)))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()));
    }
    let events = st.svc.egress_events(&caller, q).await?;
    if jsonl {
        let mut body = Vec::new();
        for e in &events {
            body.extend(serde_json::to_vec(e).unwrap_or_default());
            body.push(b'\n');
        }
        return Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response());
    }
    Ok(Json(EgressEventList { events }).into_response())
}

fn sse(e: &EgressEvent) -> Vec<u8> {
    let data = serde_json::to_string(e).unwrap_or_default();
    format!("id: {}\nevent: egress\ndata: {data}\n\n", e.id).into_bytes()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsParams {
    /// Stream approvals as they are requested and decided (`event: approval`).
    pub follow: Option<bool>,
}

/// Approvals: pending ones first (oldest first), then recently decided ones;
/// or, with `follow=true`, each as it is requested and decided.
#[utoipa::path(
    get,
    path = "/v1/approvals",
    params(ApprovalsParams),
    responses((status = 200, body = ApprovalList), (status = 403, body = ErrorResponse)),
    tag = "egress"
)]
pub async fn approvals(
    State(st): State<AppState>,
    Auth(caller): Auth,
    ApiQuery(p): ApiQuery<ApprovalsParams>,
) -> ApiResult<Response> {
    let list = st.svc.approvals(&caller)?;
    if p.follow != Some(true) {
        return Ok(Json(ApprovalList { approvals: list }).into_response());
    }
    let mut rx = st.svc.subscribe_approvals();
    let (tx, out) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        loop {
            let a = match rx.recv().await {
                Ok(a) => a,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if !caller.sees(&a.tenant) {
                continue;
            }
            let data = serde_json::to_string(&a).unwrap_or_default();
            if tx.send(format!("event: approval\ndata: {data}\n\n").into_bytes()).await.is_err() {
                return;
            }
        }
    });
    let open = futures::stream::once(async { Ok::<_, std::io::Error>(b": following\n\n".to_vec()) });
    let events = ReceiverStream::new(out).map(Ok::<_, std::io::Error>);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(open.chain(events)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

/// Decides a held connection: `allow_once`, `allow_always` (adds the
/// destination to the sandbox's policy) or `deny`.
#[utoipa::path(
    post,
    path = "/v1/approvals/{id}",
    request_body = DecideApprovalRequest,
    params(("id" = String, Path, description = "Approval id")),
    responses(
        (status = 200, body = Approval),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Already decided", body = ErrorResponse)
    ),
    tag = "egress"
)]
pub async fn decide(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DecideApprovalRequest>,
) -> ApiResult<Json<Approval>> {
    Ok(Json(st.svc.decide_approval(&caller, &id, req.decision).await?))
}
