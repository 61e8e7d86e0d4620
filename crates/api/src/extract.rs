//! Extractors whose rejections are [`ApiError`]s (JSON bodies that name the problem).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use serde::de::DeserializeOwned;
use superserver_core::sessions::{CSRF_HEADER, SESSION_COOKIE};

use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller: every `/v1` handler takes one. A request
/// without a valid key is answered 401 (403 for a suspended tenant, 429 over
/// the key's rate) before the handler runs.
pub struct Auth(pub superserver_core::Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let remote =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.to_string());
        // The dashboard's scripts call the API with the session cookie
        // instead of a key; a state change must then carry the CSRF token.
        if let (None, Some(session)) = (header, session_cookie(parts)) {
            let safe = matches!(parts.method, Method::GET | Method::HEAD);
            let csrf = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            return st
                .svc
                .authenticate_session(session, (!safe).then_some(csrf), remote)
                .map(|s| Auth(s.caller))
                .map_err(|e| refused(st, e));
        }
        st.svc.authenticate(header, remote).map(Auth).map_err(|e| refused(st, e))
    }
}

fn session_cookie(parts: &Parts) -> Option<&str> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == SESSION_COOKIE).then_some(v)
        },
    )
}

/// Counts an authentication refusal for `/metrics` and turns it into an answer.
pub(crate) fn refused(st: &AppState, e: superserver_core::CoreError) -> ApiError {
    st.svc.count_refusal(match &e {
        superserver_core::CoreError::Unauthenticated(_) => "unauthenticated",
        superserver_core::CoreError::RateLimited { .. } => "rate_limited",
        superserver_core::CoreError::TenantSuspended(_) => "tenant_suspended",
        _ => "forbidden",
    });
    ApiError::from(e)
}

/// A JSON body; unknown fields and type errors are answered with 400 naming them.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// A query string.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(v))
    }
}

/// How the client wants a run's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One JSON result when the command ends.
    Whole,
    /// NDJSON: one event per line as output is produced.
    Ndjson,
    /// Server-sent events.
    Sse,
}

impl Delivery {
    pub fn from_headers(h: &HeaderMap) -> Self {
        let accept = h.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if accept.contains(superserver_wire::NDJSON) {
            Self::Ndjson
        } else if accept.contains(superserver_wire::EVENT_STREAM) {
            Self::Sse
        } else {
            Self::Whole
        }
    }
}
