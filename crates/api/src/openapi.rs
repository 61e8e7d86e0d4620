//! The OpenAPI document, generated from the handlers and wire types.

use utoipa::OpenApi;

use crate::handlers::{alerts, anomalies, files, health, metrics, run, sandboxes, services, system, tenancy, usage};

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
        tenancy::whoami,
        tenancy::plans,
        tenancy::create_tenant,
        tenancy::list_tenants,
        tenancy::get_tenant,
        tenancy::update_tenant,
        tenancy::suspend_tenant,
        tenancy::resume_tenant,
        tenancy::create_key,
        tenancy::list_keys,
        tenancy::revoke_key,
        tenancy::audit,
        tenancy::outbox,
        usage::usage,
        usage::export,
        usage::quotas,
        services::list,
        services::map,
        services::get,
        services::events,
        health::list,
        sandboxes::executions,
        health::get,
        health::stream,
        anomalies::list,
        alerts::list,
        alerts::get,
        alerts::ack,
        alerts::silence,
        alerts::list_silences,
        alerts::create_silence,
        alerts::delete_silence,
        crate::handlers::logs::search,
        crate::handlers::logs::templates,
        crate::handlers::egress::events,
        crate::handlers::egress::approvals,
        crate::handlers::egress::decide,
        crate::handlers::secrets::put,
        crate::handlers::secrets::list,
        crate::handlers::secrets::get,
        crate::handlers::secrets::delete,
        metrics::series,
        metrics::query,
    ),
    components(schemas(superserver_wire::StreamEvent)),
    tags(
        (name = "runs", description = "One-shot runs"),
        (name = "sandboxes", description = "Persistent sandboxes"),
        (name = "files", description = "Files in persistent sandboxes"),
        (name = "system", description = "Health, status, metrics"),
        (name = "tenancy", description = "Tenants, API keys, plans, the audit log"),
        (name = "usage", description = "Usage metering, quotas, billing export"),
        (name = "services", description = "The host's services: discovery, map, changes"),
        (name = "alerts", description = "Alerts about the host's services, and silences"),
        (name = "logs", description = "Followed logs: search, live tail, templates"),
        (name = "egress", description = "Governed network access: audit events and approvals"),
        (name = "secrets", description = "Custody secrets: sealed values sent only to their hosts, by the egress proxy"),
        (name = "metrics", description = "Time series of the host, containers, processes and sandboxes"),
    ),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct ApiDoc;

/// Every `/v1` call takes `Authorization: Bearer <API key>`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("An API key, `ssk_…`")).build(),
            ),
        );
    }
}
