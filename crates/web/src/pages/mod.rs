//! One module per page (or family of pages).

pub(crate) mod alerts;
pub(crate) mod egress;
pub(crate) mod login;
pub(crate) mod overview;
pub(crate) mod sandboxes;
pub(crate) mod secrets;
pub(crate) mod services;
pub(crate) mod settings;
pub(crate) mod usage;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use superserver_core::CoreError;

use crate::layout;

/// A form whose only field is the page's CSRF token (deletes, acks, revokes).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

/// `303 See Other` to `path`: where a form's change lands.
pub(crate) fn see_other(path: impl Into<String>) -> Response {
    (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, path.into())]).into_response()
}

/// A core error as a page: what went wrong and how to fix it.
pub(crate) fn error_page(e: CoreError) -> Response {
    let status = match &e {
        CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
        CoreError::ServiceNotFound(_)
        | CoreError::SandboxNotFound(_)
        | CoreError::AlertNotFound(_)
        | CoreError::SecretNotFound(_) => StatusCode::NOT_FOUND,
        CoreError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "dashboard page failed");
        "Something went wrong on the server; its log has the details.".to_string()
    } else {
        e.to_string()
    };
    let body = html! {
        h1 { "Cannot show this page" }
        p.error role="alert" { (message) }
        p { a href="/" { "Back to the overview" } }
    };
    (status, Html(layout::bare("Error", body).into_string())).into_response()
}
