//! `/sandboxes`: live sandboxes, creating one, running commands in it with
//! streaming output, files up and down, deleting it; the run history.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use superserver_core::now_ms;
use superserver_wire::{CreateSandboxRequest, ExecutionInfo, Limits, Role, SandboxInfo};

use super::{error_page, see_other, CsrfForm};
use crate::layout::{self, ago, badge, empty, Nav};
use crate::session::Page;
use crate::svg::path_segment;
use crate::WebState;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    all: bool,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

fn outcome(e: &ExecutionInfo) -> Markup {
    let (text, class) = match (e.exit_code, e.signal, e.timed_out, e.oom_killed, &e.error) {
        (_, _, _, _, Some(_)) => ("not started".to_string(), "unhealthy"),
        (_, _, true, _, _) => ("timed out".to_string(), "unhealthy"),
        (_, _, _, true, _) => ("out of memory".to_string(), "unhealthy"),
        (Some(0), _, _, _, _) => ("exit 0".to_string(), "healthy"),
        (Some(c), _, _, _, _) => (format!("exit {c}"), "starting"),
        (None, Some(s), _, _, _) => (format!("signal {s}"), "unhealthy"),
        _ => ("unknown".to_string(), "down"),
    };
    let cls = match class {
        "healthy" => "ok",
        "starting" => "warn",
        "unhealthy" => "bad",
        _ => "off",
    };
    html! { span class={"badge " (cls)} { (text) } }
}

fn history(list: &[ExecutionInfo], now: i64, show_tenant: bool) -> Markup {
    html! {
        div.tablewrap { table #runs {
            thead { tr {
                th { "Command" } th { "Outcome" } th { "Started" } th { "Duration" } th { "CPU" } th { "Peak memory" } th { "Output" }
                th { "Sandbox" } @if show_tenant { th { "Tenant" } }
            } }
            tbody { @for e in list { tr {
                td { code { (e.command.join(" ")) } }
                td { (outcome(e)) }
                td { (ago(e.started_at_ms, now)) }
                td { (format!("{:.1} ms", e.duration_ms)) }
                td { (format!("{:.1} ms", e.cpu_ms)) }
                td { (mib(e.peak_memory_bytes)) }
                td { (e.stdout_bytes) " + " (e.stderr_bytes) " B" }
                td { a href={"/sandboxes/" (path_segment(&e.sandbox_id))} { (e.sandbox_id) } }
                @if show_tenant { td { (e.tenant_id) } }
            } } }
        } }
    }
}

/// `GET /sandboxes`.
pub(crate) async fn list(State(st): State<WebState>, page: Page, Query(q): Query<ListQuery>) -> Response {
    let c = &page.caller;
    let all = q.all && c.is_admin();
    let (sandboxes, runs) = match (st.svc.list_sandboxes(c, all).await, st.svc.executions(c, all, None, 50).await) {
        (Ok(s), Ok(r)) => (s, r.executions),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    let now = now_ms();
    let live: Vec<&SandboxInfo> = sandboxes.iter().filter(|s| s.ended_at_ms.is_none()).collect();
    let may_create = c.role >= Role::Member;
    let body = html! {
        h1 { "Sandboxes and runs" }
        @if c.is_admin() {
            p { @if all { a href="/sandboxes" { "Show only my tenant's" } } @else { a href="/sandboxes?all=true" { "Show every tenant's" } } }
        }
        @if may_create {
            form.inline #create method="post" action="/sandboxes" {
                input type="hidden" name="csrf" value=(page.csrf);
                label { "Image " input type="text" name="image" value="host" size="14"; }
                label { "TTL (minutes) " input type="number" name="ttl_minutes" value="30" min="1" max="1440"; }
                label { "Memory (MiB) " input type="number" name="memory_mb" min="16" placeholder="default"; }
                button type="submit" { "Create a sandbox" }
            }
        }
        h2 { "Live sandboxes" }
        @if live.is_empty() {
            (empty("No persistent sandboxes.", html! {
                @if may_create { "Create one above, or from the CLI: " code { "superserver sandbox create" } "." }
                @else { "Members of your tenant can create them." }
            }))
        } @else {
            div.tablewrap { table #sandboxes {
                thead { tr { th { "Sandbox" } th { "Image" } th { "State" } th { "Commands" } th { "Created" } th { "Expires" } @if all { th { "Tenant" } } } }
                tbody { @for s in &live { tr {
                    td { a href={"/sandboxes/" (path_segment(&s.id))} { (s.id) } }
                    td { (s.image) }
                    td { (badge(s.state.as_str())) }
                    td { (s.exec_count) }
                    td { (ago(s.created_at_ms, now)) }
                    td { @if let Some(x) = s.expires_at_ms { (layout::utc(x)) } @else { "—" } }
                    @if all { td { (s.tenant_id) } }
                } } }
            } }
        }
        h2 { "Run history" }
        @if runs.is_empty() {
            (empty("No runs yet.", html! { "Run a command: " code { "superserver run -- echo hello" } ", or in a sandbox here." }))
        } @else { (history(&runs, now, all)) }
    };
    Html(layout::refreshing("Sandboxes", Nav::Sandboxes, c, &page.csrf, layout::Live::Every(15), body).into_string())
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: String,
    image: Option<String>,
    ttl_minutes: Option<String>,
    memory_mb: Option<String>,
}

fn number(field: &str, v: Option<&str>) -> Result<Option<u64>, String> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| format!("{field} must be a whole number, not {s:?}")),
    }
}

/// `POST /sandboxes`: create, then show it.
pub(crate) async fn create(State(st): State<WebState>, page: Page, Form(f): Form<CreateForm>) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let ttl = match number("TTL", f.ttl_minutes.as_deref()) {
        Ok(v) => v.map(|m| m * 60),
        Err(e) => return error_page(superserver_core::CoreError::InvalidRequest(e)),
    };
    let memory_mb = match number("Memory", f.memory_mb.as_deref()) {
        Ok(v) => v,
        Err(e) => return error_page(superserver_core::CoreError::InvalidRequest(e)),
    };
    let req = CreateSandboxRequest {
        image: f.image.filter(|s| !s.trim().is_empty()),
        ttl_seconds: ttl,
        limits: memory_mb.map(|m| Limits { memory_mb: Some(m), ..Limits::default() }),
        ..CreateSandboxRequest::default()
    };
    match st.svc.create_sandbox(&page.caller, req).await {
        Ok(s) => see_other(format!("/sandboxes/{}", path_segment(&s.id))),
        Err(e) => error_page(e),
    }
}

/// `GET /sandboxes/{id}`.
pub(crate) async fn detail(State(st): State<WebState>, page: Page, Path(id): Path<String>) -> Response {
    let c = &page.caller;
    let s = match st.svc.get_sandbox(c, &id).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let runs: Vec<ExecutionInfo> = match st.svc.executions(c, c.is_admin(), None, 1000).await {
        Ok(r) => r.executions.into_iter().filter(|e| e.sandbox_id == s.id).take(50).collect(),
        Err(e) => return error_page(e),
    };
    let now = now_ms();
    let live = s.ended_at_ms.is_none();
    let may_act = c.role >= Role::Member && live;
    let body = html! {
        h1 { "Sandbox " span.muted { (s.id) } }
        dl.facts {
            dt { "State" } dd { (badge(s.state.as_str())) @if let Some(r) = &s.end_reason { " " (r) } }
            dt { "Image" } dd { (s.image) }
            dt { "Limits" } dd { (s.limits.memory_mb) " MiB, " (s.limits.cpu_percent) " % CPU, " (s.limits.pids) " pids, " (s.limits.disk_mb) " MiB disk" }
            dt { "Created" } dd { (ago(s.created_at_ms, now)) }
            @if let Some(x) = s.expires_at_ms { dt { "Expires" } dd { (layout::utc(x)) } }
        }
        @if may_act {
            section {
                h2 { "Run a command" }
                form #exec data-sandbox=(s.id) {
                    label for="cmd" { "Command (run as " code { "sh -c …" } ")" }
                    div.row {
                        input #cmd type="text" name="command" required placeholder="ls -la /workspace" autocomplete="off";
                        button type="submit" { "Run" }
                    }
                }
                p #exec-status.muted role="status" aria-live="polite" {}
                pre #exec-out.output tabindex="0" aria-label="Command output" {}
            }
            section {
                h2 { "Files" }
                form #upload data-sandbox=(s.id) {
                    label { "Upload to /workspace " input #file type="file" name="file" required; }
                    button type="submit" { "Upload" }
                }
                form method="get" action={"/v1/sandboxes/" (path_segment(&s.id)) "/files"} {
                    label { "Download " input type="text" name="path" value="/workspace/" required; }
                    button type="submit" { "Download" }
                }
                p #upload-status.muted role="status" aria-live="polite" {}
            }
            section {
                form method="post" action={"/sandboxes/" (path_segment(&s.id)) "/delete"} data-confirm="Delete this sandbox and everything in it?" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    button.danger type="submit" { "Delete sandbox" }
                }
            }
        }
        h2 { "Commands" }
        @if runs.is_empty() { p.muted { "No commands yet." } } @else { (history(&runs, now, false)) }
    };
    Html(layout::page("Sandbox", Nav::Sandboxes, c, &page.csrf, body).into_string()).into_response()
}

/// `POST /sandboxes/{id}/delete`.
pub(crate) async fn delete(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    match st.svc.delete_sandbox(&page.caller, &id).await {
        Ok(_) => see_other("/sandboxes"),
        Err(e) => error_page(e),
    }
}
