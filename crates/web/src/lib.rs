//! SuperServer's web dashboard, served by the binary itself at `/`.
//!
//! Server-rendered HTML (`maud`: compiled templates that escape every
//! interpolated string), a small hand-written script, SVG drawn on the
//! server, assets embedded in the binary. The pages call the same typed core
//! operations as the HTTP API, as the logged-in key's caller, so a role sees
//! and may do exactly what it may through the API.
//!
//! Sessions: log in with an API key; the session lives in server memory,
//! named by a random id in an `HttpOnly`, `SameSite=Strict` cookie; every
//! state change carries the session's CSRF token. Every response carries a
//! strict Content-Security-Policy (no inline script or style), no framing
//! and no sniffing.
#![forbid(unsafe_code)]

mod assets;
mod headers;
mod layout;
mod pages;
mod session;
mod svg;

use axum::routing::{get, post};
use axum::Router;
use superserver_core::Service;

/// Shared state of the dashboard's handlers.
#[derive(Clone)]
pub struct WebState {
    pub svc: Service,
}

/// The dashboard's routes, to be merged with the API's router.
pub fn router(svc: Service) -> Router {
    let state = WebState { svc };
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/services", get(pages::services::list))
        .route("/services/{id}", get(pages::services::detail))
        .route("/anomalies", get(pages::services::anomalies))
        .route("/sandboxes", get(pages::sandboxes::list).post(pages::sandboxes::create))
        .route("/sandboxes/{id}", get(pages::sandboxes::detail))
        .route("/sandboxes/{id}/delete", post(pages::sandboxes::delete))
        .route("/usage", get(pages::usage::page))
        .route("/egress", get(pages::egress::page))
        .route("/egress/approvals/{id}", post(pages::egress::decide))
        .route("/secrets", get(pages::secrets::page).post(pages::secrets::set))
        .route("/secrets/{name}/delete", post(pages::secrets::delete))
        .route("/alerts", get(pages::alerts::list))
        .route("/alerts/{id}/ack", post(pages::alerts::ack))
        .route("/alerts/{id}/silence", post(pages::alerts::silence))
        .route("/settings", get(pages::settings::page))
        .route("/settings/tenants", post(pages::settings::create_tenant))
        .route("/settings/tenants/{name}/plan", post(pages::settings::set_plan))
        .route("/settings/tenants/{name}/{action}", post(pages::settings::suspend_or_resume))
        .route("/settings/keys", post(pages::settings::create_key))
        .route("/settings/keys/{id}/revoke", post(pages::settings::revoke_key))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}
