//! The OpenAPI document, generated from the handlers and wire types.

use utoipa::OpenApi;

use crate::handlers::{files, run, sandboxes, system};

#[derive(OpenApi)]
#[openapi(
    info(title = "SuperServer API", description = "Run untrusted code in isolated sandboxes on your own server."),
    paths(
        run::run,
        sandboxes::create,
        sandboxes::list,
        sandboxes::get,
        sandboxes::delete,
        sandboxes::exec,
        files::put,
        files::get,
        system::healthz,
        system::readyz,
        system::status,
        system::metrics,
        system::openapi,
    ),
    components(schemas(superserver_wire::StreamEvent)),
    tags(
        (name = "runs", description = "One-shot runs"),
        (name = "sandboxes", description = "Persistent sandboxes"),
        (name = "files", description = "Files in persistent sandboxes"),
        (name = "system", description = "Health, status, metrics"),
    )
)]
pub struct ApiDoc;
