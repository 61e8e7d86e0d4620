//! `/v1/health`, `/v1/services/{id}/health`: the services' health (admin).

use axum::extract::{Path, State};
use axum::Json;
use superserver_wire::{ErrorResponse, HealthList, ServiceHealth};

use crate::error::ApiResult;
use crate::extract::Auth;
use crate::AppState;

/// Every discovered service's health: status, why, and since when.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = HealthList), (status = 403, body = ErrorResponse)), tag = "services")]
pub async fn list(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<HealthList>> {
    Ok(Json(st.svc.health_list(&caller)?))
}

/// One service's health: its probes' latest outcomes, Docker's health
/// check, crash loop, uptime over a day and a week, and its history.
#[utoipa::path(
    get,
    path = "/v1/services/{id}/health",
    params(("id" = String, Path, description = "Service id, e.g. `container:web`")),
    responses((status = 200, body = ServiceHealth), (status = 404, body = ErrorResponse)),
    tag = "services"
)]
pub async fn get(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceHealth>> {
    Ok(Json(st.svc.service_health(&caller, &id).await?))
}

/// Live changes of the host's services as server-sent events (admin):
/// `health` events (a [`superserver_wire::HealthEvent`]), `anomaly`
/// events (a [`superserver_wire::Anomaly`]) and `alert` events (a
/// [`superserver_wire::Alert`] opened or resolved), each as JSON, with a comment
/// every 15 s to keep proxies from closing the stream. A viewer too slow to
/// keep up misses events (and gets a `lagged` event saying how many).
#[utoipa::path(get, path = "/v1/services/stream", responses((status = 200, content_type = "text/event-stream", description = "health and anomaly events"), (status = 403, body = ErrorResponse)), tag = "services")]
pub async fn stream(
    State(st): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<
    axum::response::Sse<impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>>,
> {
    use axum::response::sse::{Event, KeepAlive};
    use futures::StreamExt;
    use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
    use tokio_stream::wrappers::BroadcastStream;

    st.svc.health_list(&caller)?;
    let lagged = |n: u64| Event::default().event("lagged").data(n.to_string());
    let health = BroadcastStream::new(st.svc.subscribe_health()).map(move |m| match m {
        Ok(ev) => Event::default().event("health").json_data(&ev).unwrap_or_else(|_| lagged(0)),
        Err(BroadcastStreamRecvError::Lagged(n)) => lagged(n),
    });
    let anomalies = BroadcastStream::new(st.svc.subscribe_anomalies()).map(move |m| match m {
        Ok(a) => Event::default().event("anomaly").json_data(&a).unwrap_or_else(|_| lagged(0)),
        Err(BroadcastStreamRecvError::Lagged(n)) => lagged(n),
    });
    let alerts = BroadcastStream::new(st.svc.subscribe_alerts()).map(move |m| match m {
        Ok(a) => Event::default().event("alert").json_data(&a).unwrap_or_else(|_| lagged(0)),
        Err(BroadcastStreamRecvError::Lagged(n)) => lagged(n),
    });
    let events = futures::stream::select(futures::stream::select(health, anomalies), alerts).map(Ok);
    Ok(axum::response::Sse::new(events).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))))
}
