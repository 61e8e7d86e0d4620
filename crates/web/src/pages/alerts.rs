//! `/alerts` (admins): firing and resolved alerts with their context, ack
//! and silence; the active silences.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use superserver_core::now_ms;
use superserver_wire::{Alert, AlertState, SilenceRequest};

use super::{error_page, see_other, CsrfForm};
use crate::layout::{self, ago, badge, empty, Nav};
use crate::session::Page;
use crate::svg::path_segment;
use crate::WebState;

#[derive(Debug, Deserialize)]
pub(crate) struct AlertFilter {
    state: Option<String>,
}

fn severity(a: &Alert) -> Markup {
    let (text, class) = match a.severity {
        superserver_wire::Severity::Critical => ("critical", "bad"),
        superserver_wire::Severity::Warning => ("warning", "warn"),
        superserver_wire::Severity::Info => ("info", "off"),
    };
    html! { span class={"badge " (class)} { (text) } }
}

fn alert_card(a: &Alert, csrf: &str, now: i64) -> Markup {
    let firing = a.state == AlertState::Firing;
    html! {
        li.alert #{"alert-" (a.id)} {
            div {
                (severity(a)) " "
                @if firing { (badge("unhealthy")) } @else { (badge("healthy")) }
                " " strong { (a.summary) }
            }
            div.muted {
                "rule " (a.rule) " · "
                a href={"/services/" (path_segment(&a.service))} { (a.service) }
                " · since " (ago(a.started_at_ms, now))
                @if let Some(r) = a.resolved_at_ms { " · resolved " (ago(r, now)) }
                " · " (a.notifications) " notification" @if a.notifications != 1 { "s" }
                @if let Some(ack) = &a.ack { " · acknowledged " (ago(ack.at_ms, now)) }
            }
            @if let Some(an) = &a.context.anomaly {
                div { "Anomaly: " span.kind { (an.kind.as_str()) } " " (an.summary) }
            }
            @if !a.context.changes.is_empty() {
                details {
                    summary { "Recent changes (" (a.context.changes.len()) ")" }
                    ul.list { @for ch in &a.context.changes {
                        li { (ch.kind) " " @if let Some(b) = &ch.before { span.muted { (b) } " → " } @if let Some(x) = &ch.after { (x) } " (" (ago(ch.at_ms, now)) ")" }
                    } }
                }
            }
            @if !a.context.log_excerpt.is_empty() {
                details {
                    summary { "Log excerpt (" (a.context.log_excerpt.len()) " lines)" }
                    pre.samples { @for l in &a.context.log_excerpt { (l) "\n" } }
                }
            }
            @if firing {
                div.actions {
                    @if a.ack.is_none() {
                        form method="post" action={"/alerts/" (path_segment(&a.id)) "/ack"} {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Acknowledge" }
                        }
                    }
                    form.row method="post" action={"/alerts/" (path_segment(&a.id)) "/silence"} {
                        input type="hidden" name="csrf" value=(csrf);
                        select name="hours" aria-label="Silence for" {
                            option value="1" { "1 hour" } option value="4" { "4 hours" } option value="24" { "1 day" } option value="168" { "1 week" }
                        }
                        input type="text" name="reason" required placeholder="reason" aria-label="Reason";
                        button type="submit" { "Silence" }
                    }
                }
            }
        }
    }
}

/// `GET /alerts`.
pub(crate) async fn list(State(st): State<WebState>, page: Page, Query(q): Query<AlertFilter>) -> Response {
    let c = &page.caller;
    let state = q.state.filter(|s| !s.is_empty()).unwrap_or_else(|| "firing".into());
    let (alerts, silences) = match (st.svc.alerts(c, Some(&state), None, 200).await, st.svc.silences(c).await) {
        (Ok(a), Ok(s)) => (a.alerts, s.silences),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    let now = now_ms();
    let tab = |s: &str, label: &str| {
        html! { a href={"/alerts?state=" (s)} aria-current=[(s == state).then_some("page")] { (label) } }
    };
    let body = html! {
        h1 { "Alerts" }
        nav.tabs aria-label="Which alerts" { (tab("firing", "Firing")) (tab("resolved", "Resolved")) (tab("all", "All")) }
        @if alerts.is_empty() {
            (empty(if state == "firing" { "Nothing is firing." } else { "No alerts." }, html! {
                "Alerts fire when a service goes down, an anomaly is found or a metric crosses its threshold; rules and channels are in "
                code { "[[alerts.rules]]" } " and " code { "[[alerts.channels]]" } "."
            }))
        } @else {
            ul.anomalies #alerts { @for a in &alerts { (alert_card(a, &page.csrf, now)) } }
        }
        h2 { "Silences" }
        @if silences.is_empty() { p.muted { "No active silences." } } @else {
            ul.list { @for s in &silences {
                li { "rule " (s.rule.as_deref().unwrap_or("any")) ", service " (s.service.as_deref().unwrap_or("any"))
                     " until " (layout::utc(s.until_ms)) " — " (s.reason) }
            } }
        }
    };
    Html(layout::refreshing("Alerts", Nav::Alerts, c, &page.csrf, layout::Live::Services, body).into_string())
        .into_response()
}

fn back() -> Response {
    see_other("/alerts")
}

/// `POST /alerts/{id}/ack`.
pub(crate) async fn ack(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    match st.svc.ack_alert(&page.caller, &id).await {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SilenceForm {
    csrf: String,
    hours: u64,
    reason: String,
}

/// `POST /alerts/{id}/silence`.
pub(crate) async fn silence(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let req = SilenceRequest {
        for_seconds: Some(f.hours.saturating_mul(3600)),
        reason: f.reason,
        ..SilenceRequest::default()
    };
    match st.svc.silence_alert(&page.caller, &id, req).await {
        Ok(_) => back(),
        Err(e) => error_page(e),
    }
}
