//! The dashboard's side of sessions (kept by the core, see
//! `superserver_core::sessions`): reading the cookie, and the [`Page`]
//! extractor every logged-in page takes.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use superserver_core::sessions::{same_token, SESSION_COOKIE};
use superserver_core::Caller;

use crate::WebState;

/// The login form's double-submit cookie.
pub(crate) const LOGIN_COOKIE: &str = "ss_login";

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// A logged-in request: the caller its key authenticates as, the session's
/// id and CSRF token. Without a live session, a redirect to the login page.
pub(crate) struct Page {
    pub caller: Caller,
    pub session: String,
    pub csrf: String,
}

/// Where a request without a session goes.
pub(crate) fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response()
}

pub(crate) fn remote(parts: &Parts) -> Option<String> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.to_string())
}

impl FromRequestParts<WebState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, Self::Rejection> {
        let id = cookie(parts, SESSION_COOKIE).ok_or_else(to_login)?.to_string();
        match st.svc.authenticate_session(&id, None, remote(parts)) {
            Ok(s) => Ok(Page { caller: s.caller, session: id, csrf: s.csrf }),
            Err(e) => {
                tracing::debug!(error = %e, "no dashboard session");
                Err(to_login())
            }
        }
    }
}

impl Page {
    /// The refusal of a state change whose form token is not the session's.
    pub(crate) fn csrf_refusal(&self, presented: Option<&str>) -> Option<Response> {
        match presented {
            Some(t) if same_token(t, &self.csrf) => None,
            _ => Some(
                (
                    StatusCode::FORBIDDEN,
                    "This request did not carry the page's security token (CSRF). Reload the page and try again.",
                )
                    .into_response(),
            ),
        }
    }
}
