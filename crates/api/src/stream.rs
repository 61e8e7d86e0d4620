//! Answers for a command: whole, or streamed as NDJSON or server-sent events.
//!
//! The command always runs in its own task, so it completes and is recorded
//! even when the client goes away; a streaming client that goes away stops
//! the command (its output has nowhere to go).

use std::future::Future;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use superserver_core::{CoreError, OutputChunk};
use superserver_wire::{ExecResult, StreamEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{ApiError, ApiResult};
use crate::extract::Delivery;

/// Runs `op` (given the output sink) and answers as `delivery` asks.
pub async fn answer<F, Fut>(delivery: Delivery, op: F) -> ApiResult<Response>
where
    F: FnOnce(Option<mpsc::Sender<OutputChunk>>) -> Fut,
    Fut: Future<Output = Result<ExecResult, CoreError>> + Send + 'static,
{
    if delivery == Delivery::Whole {
        let task = tokio::spawn(op(None));
        let result = join(task).await?;
        return Ok(Json(result).into_response());
    }
    let (tx, rx) = mpsc::channel::<OutputChunk>(64);
    let task = tokio::spawn(op(Some(tx)));
    let events = events(rx, task);
    let (content_type, body) = match delivery {
        Delivery::Sse => ("text/event-stream", Body::from_stream(events.map(|e| Ok::<_, std::io::Error>(sse(&e))))),
        _ => (superserver_wire::NDJSON, Body::from_stream(events.map(|e| Ok::<_, std::io::Error>(ndjson(&e))))),
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

async fn join(task: JoinHandle<Result<ExecResult, CoreError>>) -> ApiResult<ExecResult> {
    match task.await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(CoreError::Internal(format!("command task failed: {e}")).into()),
    }
}

enum State {
    Output(mpsc::Receiver<OutputChunk>, JoinHandle<Result<ExecResult, CoreError>>),
    Done,
}

/// Output events while the command runs, then its result (or error).
fn events(
    rx: mpsc::Receiver<OutputChunk>,
    task: JoinHandle<Result<ExecResult, CoreError>>,
) -> impl Stream<Item = StreamEvent> + Send {
    stream::unfold(State::Output(rx, task), |state| async move {
        match state {
            State::Output(mut rx, task) => match rx.recv().await {
                Some(chunk) => {
                    let ev = match chunk {
                        OutputChunk::Stdout(b) => {
                            StreamEvent::Stdout { data: String::from_utf8_lossy(&b).into_owned() }
                        }
                        OutputChunk::Stderr(b) => {
                            StreamEvent::Stderr { data: String::from_utf8_lossy(&b).into_owned() }
                        }
                    };
                    Some((ev, State::Output(rx, task)))
                }
                None => {
                    let ev = match join(task).await {
                        Ok(r) => StreamEvent::Result(r),
                        Err(e) => StreamEvent::Error { error: e.body().error },
                    };
                    Some((ev, State::Done))
                }
            },
            State::Done => None,
        }
    })
}

fn ndjson(ev: &StreamEvent) -> Vec<u8> {
    let mut line = serde_json::to_vec(ev).unwrap_or_default();
    line.push(b'\n');
    line
}

fn sse(ev: &StreamEvent) -> Vec<u8> {
    let name = match ev {
        StreamEvent::Stdout { .. } => "stdout",
        StreamEvent::Stderr { .. } => "stderr",
        StreamEvent::Result(_) => "result",
        StreamEvent::Error { .. } => "error",
    };
    let data = serde_json::to_string(ev).unwrap_or_default();
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}
