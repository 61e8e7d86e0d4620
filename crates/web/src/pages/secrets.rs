//! `/secrets`: custody secrets — names, bound hosts, how they are sent and
//! which sandboxes held them; never values. Owners set and remove them
//! (the value goes in through a password field and is never shown again).

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use superserver_core::now_ms;
use superserver_wire::{PutSecretRequest, Role};

use super::{error_page, see_other};
use crate::layout::{self, ago, empty, Nav};
use crate::session::Page;
use crate::svg::path_segment;
use crate::WebState;

/// `GET /secrets`.
pub(crate) async fn page(State(st): State<WebState>, page: Page) -> Response {
    let c = &page.caller;
    let secrets = match st.svc.list_secrets(c).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let now = now_ms();
    let can_manage = c.role >= Role::Owner;
    let body = html! {
        h1 { "Secrets" }
        p.muted {
            "A sandbox given a secret sees only a placeholder in its environment. The egress proxy puts the value in "
            "place of the placeholder on requests to the secret's hosts, blocks the placeholder anywhere else, and "
            "masks the value in responses. Values are sealed at rest and never shown."
        }
        @if secrets.is_empty() {
            (empty("No secrets yet.", html! {
                "Set one below or with " code { "printf %s \"$TOKEN\" | superserver secrets set NAME --host api.example.com" }
                ", then give it to a sandbox with " code { "--secret NAME" } "."
            }))
        } @else {
            table #secrets {
                thead { tr {
                    th { "Name" } th { "Tenant" } th { "Hosts" } th { "Sent as" } th { "Updated" } th { "Held by" }
                    @if can_manage { th { "Actions" } }
                } }
                tbody { @for s in &secrets {
                    tr data-name=(s.name) {
                        td { code { (s.name) } }
                        td { (s.tenant) }
                        td { @for h in &s.hosts { span.badge { (h) } " " } }
                        td {
                            @match (&s.header, &s.template) {
                                (Some(h), Some(t)) => { code { (h) ": " (t) } },
                                (Some(h), None) => { code { (h) ": {value}" } },
                                _ => { span.muted { "where the placeholder is" } },
                            }
                        }
                        td { (ago(s.updated_at_ms, now)) @if let Some(by) = &s.updated_by { br; span.muted { (by) } } }
                        td {
                            @if s.used_by.is_empty() { span.muted { "no sandbox yet" } }
                            @for u in s.used_by.iter().take(5) {
                                a href={"/sandboxes/" (path_segment(&u.sandbox_id))} { (u.sandbox_id) }
                                " " span.muted { (u.state.as_deref().unwrap_or("")) " · " (ago(u.at_ms, now)) } br;
                            }
                            @if s.used_by.len() > 5 { span.muted { "and " (s.used_by.len() - 5) " more" } }
                        }
                        @if can_manage {
                            td {
                                @if s.tenant == c.tenant.name {
                                    form method="post" action={"/secrets/" (path_segment(&s.name)) "/delete"}
                                        data-confirm={"Remove secret " (s.name) "? Sandboxes holding it keep it until they end."} {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
        @if can_manage {
            section aria-labelledby="set-h" {
                h2 #set-h { "Set a secret" }
                form.inline #set-secret method="post" action="/secrets" autocomplete="off" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label { "Name " input type="text" name="name" required pattern="[A-Za-z_][A-Za-z0-9_]{0,63}" placeholder="GITHUB_TOKEN"; }
                    label { "Value " input type="password" name="value" required minlength="8" autocomplete="new-password"; }
                    label { "Hosts (comma separated) " input type="text" name="hosts" required placeholder="api.github.com, *.example.com"; }
                    label { "Header (optional) " input type="text" name="header" placeholder="Authorization"; }
                    label { "Template (optional) " input type="text" name="template" placeholder="Bearer {value}"; }
                    button type="submit" { "Set secret" }
                }
            }
        }
    };
    Html(layout::page("Secrets", Nav::Secrets, c, &page.csrf, body).into_string()).into_response()
}

#[derive(Deserialize)]
pub(crate) struct SecretForm {
    csrf: String,
    name: String,
    value: String,
    hosts: String,
    header: Option<String>,
    template: Option<String>,
}

/// `POST /secrets`.
pub(crate) async fn set(State(st): State<WebState>, page: Page, Form(f): Form<SecretForm>) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let req = PutSecretRequest {
        value: f.value,
        hosts: f.hosts.split([',', ' ', '\n']).map(str::trim).filter(|h| !h.is_empty()).map(str::to_string).collect(),
        header: f.header.filter(|h| !h.trim().is_empty()).map(|h| h.trim().to_string()),
        template: f.template.filter(|t| !t.trim().is_empty()),
    };
    match st.svc.put_secret(&page.caller, f.name.trim(), req).await {
        Ok(_) => see_other("/secrets"),
        Err(e) => error_page(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// `POST /secrets/{name}/delete`.
pub(crate) async fn delete(
    State(st): State<WebState>,
    page: Page,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    match st.svc.delete_secret(&page.caller, &name).await {
        Ok(()) => see_other("/secrets"),
        Err(e) => error_page(e),
    }
}
