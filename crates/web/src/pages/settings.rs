//! `/settings`: tenants and plans (admins), API keys (owners see their
//! tenant's, admins every tenant's). Every change is a form with the
//! session's CSRF token, checked here and by the core's role rules.

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use superserver_core::now_ms;
use superserver_wire::{CreateKeyRequest, CreateTenantRequest, CreatedKey, Role, UpdateTenantRequest};

use super::{error_page, see_other, CsrfForm};
use crate::layout::{self, ago, badge, Nav};
use crate::session::Page;
use crate::svg::path_segment;
use crate::WebState;

fn back() -> Response {
    see_other("/settings")
}

fn role_name(r: Role) -> String {
    format!("{r:?}").to_lowercase()
}

fn key_form(page: &Page, tenants: &[String]) -> Markup {
    let roles: Vec<Role> = Role::ALL.into_iter().filter(|r| *r <= page.caller.role).collect();
    html! {
        form.inline #new-key method="post" action="/settings/keys" {
            input type="hidden" name="csrf" value=(page.csrf);
            @if page.caller.is_admin() {
                label { "Tenant " select name="tenant" { @for t in tenants { option value=(t) { (t) } } } }
            }
            label { "Role " select name="role" { @for r in &roles { option value=(role_name(*r)) selected[*r == Role::Member] { (role_name(*r)) } } } }
            label { "Name " input type="text" name="name" maxlength="64" placeholder="ci-deploy"; }
            button type="submit" { "Create a key" }
        }
    }
}

/// `GET /settings`.
pub(crate) async fn page(State(st): State<WebState>, page: Page) -> Response {
    let c = &page.caller;
    if c.role < Role::Owner {
        return error_page(superserver_core::CoreError::Forbidden(
            "settings are for owners and admins; ask one of them for a key of that role".into(),
        ));
    }
    let keys = match st.svc.list_keys(c, None) {
        Ok(k) => k.keys,
        Err(e) => return error_page(e),
    };
    let tenants = st.svc.list_tenants(c).tenants;
    let plans = st.svc.plans(c).plans;
    let now = now_ms();
    let names: Vec<String> = tenants.iter().map(|t| t.name.clone()).collect();
    let body = html! {
        h1 { "Settings" }
        @if c.is_admin() {
            section {
                h2 { "Tenants" }
                form.inline #new-tenant method="post" action="/settings/tenants" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label { "Name " input type="text" name="name" required maxlength="64" placeholder="acme"; }
                    label { "Plan " select name="plan" { @for p in plans.keys() { option value=(p) { (p) } } } }
                    label { "E-mail " input type="email" name="email" placeholder="ops@acme.example"; }
                    button type="submit" { "Create tenant" }
                }
                div.tablewrap { table #tenants {
                    thead { tr { th { "Tenant" } th { "Plan" } th { "State" } th { "Created" } th { "Actions" } } }
                    tbody { @for t in &tenants { tr {
                        td { (t.name) br; span.muted { (t.id) } }
                        td {
                            form.row method="post" action={"/settings/tenants/" (path_segment(&t.name)) "/plan"} {
                                input type="hidden" name="csrf" value=(page.csrf);
                                select name="plan" aria-label={"Plan of " (t.name)} {
                                    @for p in plans.keys() { option value=(p) selected[*p == t.plan] { (p) } }
                                }
                                button type="submit" { "Set" }
                            }
                        }
                        td { @if t.suspended { (badge("down")) " suspended" } @else { (badge("healthy")) " active" } }
                        td { (ago(t.created_at_ms, now)) }
                        td {
                            @if t.id != superserver_core::ADMIN_TENANT {
                                form method="post" action={"/settings/tenants/" (path_segment(&t.name)) (if t.suspended { "/resume" } else { "/suspend" })}
                                    data-confirm=[(!t.suspended).then(|| format!("Suspend {}? Its sandboxes are destroyed and its keys refused.", t.name))] {
                                    input type="hidden" name="csrf" value=(page.csrf);
                                    button.danger[!t.suspended] type="submit" { @if t.suspended { "Resume" } @else { "Suspend" } }
                                }
                            }
                        }
                    } } }
                } }
            }
        }
        section {
            h2 { "API keys" }
            (key_form(&page, &names))
            div.tablewrap { table #keys {
                thead { tr { th { "Key" } th { "Tenant" } th { "Role" } th { "Name" } th { "Created" } th { "Last used" } th { "Expires" } th {} } }
                tbody { @for k in &keys { tr {
                    td { code { (k.prefix) "…" } }
                    td { (k.tenant) }
                    td { (role_name(k.role)) }
                    td { (k.name.as_deref().unwrap_or("—")) }
                    td { (ago(k.created_at_ms, now)) }
                    td { @if let Some(u) = k.last_used_at_ms { (ago(u, now)) } @else { "never" } }
                    td { @if let Some(x) = k.expires_at_ms { (layout::utc(x)) } @else { "never" } }
                    td {
                        @if k.revoked_at_ms.is_none() {
                            form method="post" action={"/settings/keys/" (path_segment(&k.id)) "/revoke"} data-confirm="Revoke this key? Programs using it stop working at once." {
                                input type="hidden" name="csrf" value=(page.csrf);
                                button.danger type="submit" { "Revoke" }
                            }
                        } @else { span.muted { "revoked" } }
                    }
                } } }
            } }
        }
        section {
            h2 { "Plans" }
            div.tablewrap { table {
                thead { tr { th { "Plan" } th { "Executions / month" } th { "CPU s / month" } th { "Concurrent" } th { "Max memory" } th { "Persistent" } th { "Network" } th { "Dashboard" } } }
                tbody { @for (name, p) in &plans { tr {
                    td { (name) }
                    td { (p.executions_per_month) }
                    td { (p.cpu_seconds_per_month) }
                    td { (p.concurrent_sandboxes) }
                    td { (p.max_memory_mb) " MiB" }
                    td { (if p.persistent_sandboxes { "yes" } else { "no" }) }
                    td { (if p.network { "yes" } else { "no" }) }
                    td { (if p.dashboard { "yes" } else { "no" }) }
                } } }
            } }
        }
    };
    Html(layout::page("Settings", Nav::Settings, c, &page.csrf, body).into_string()).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TenantForm {
    csrf: String,
    name: String,
    plan: Option<String>,
    email: Option<String>,
}

/// `POST /settings/tenants`.
pub(crate) async fn create_tenant(State(st): State<WebState>, page: Page, Form(f): Form<TenantForm>) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let req = CreateTenantRequest {
        name: f.name.trim().to_string(),
        plan: f.plan.filter(|p| !p.is_empty()),
        email: f.email.filter(|e| !e.trim().is_empty()),
        ..CreateTenantRequest::default()
    };
    match st.svc.create_tenant(&page.caller, req).await {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PlanForm {
    csrf: String,
    plan: String,
}

/// `POST /settings/tenants/{name}/plan`.
pub(crate) async fn set_plan(
    State(st): State<WebState>,
    page: Page,
    Path(name): Path<String>,
    Form(f): Form<PlanForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let req = UpdateTenantRequest { plan: Some(f.plan), ..UpdateTenantRequest::default() };
    match st.svc.update_tenant(&page.caller, &name, req).await {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}

/// `POST /settings/tenants/{name}/suspend` and `/resume`.
pub(crate) async fn suspend_or_resume(
    State(st): State<WebState>,
    page: Page,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let done = match action.as_str() {
        "suspend" => st.svc.suspend_tenant(&page.caller, &name).await,
        "resume" => st.svc.resume_tenant(&page.caller, &name).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyForm {
    csrf: String,
    tenant: Option<String>,
    role: Option<String>,
    name: Option<String>,
}

/// `POST /settings/keys`: the new key is shown once.
pub(crate) async fn create_key(State(st): State<WebState>, page: Page, Form(f): Form<KeyForm>) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let role = match f.role.as_deref() {
        None | Some("") => None,
        Some(r) => match Role::ALL.into_iter().find(|x| role_name(*x) == r) {
            Some(x) => Some(x),
            None => {
                return error_page(superserver_core::CoreError::InvalidRequest(format!("role {r:?} is not a role")))
            }
        },
    };
    let req = CreateKeyRequest {
        tenant: f.tenant.filter(|t| !t.is_empty()),
        role,
        name: f.name.filter(|n| !n.trim().is_empty()),
        ..CreateKeyRequest::default()
    };
    let created: CreatedKey = match st.svc.create_key(&page.caller, req).await {
        Ok(k) => k,
        Err(e) => return error_page(e),
    };
    let body = html! {
        h1 { "New API key" }
        p { "This is the only time the key is shown: the server keeps only its hash. Store it now." }
        p { code #new-key-value.secret { (created.key) } }
        dl.facts {
            dt { "Tenant" } dd { (created.info.tenant) }
            dt { "Role" } dd { (role_name(created.info.role)) }
        }
        p { a href="/settings" { "Back to settings" } }
    };
    Html(layout::page("New key", Nav::Settings, &page.caller, &page.csrf, body).into_string()).into_response()
}

/// `POST /settings/keys/{id}/revoke`.
pub(crate) async fn revoke_key(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    match st.svc.revoke_key(&page.caller, &id).await {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}
