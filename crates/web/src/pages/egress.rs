//! `/egress`: the approvals queue of held connections (allow once, allow
//! always, deny), hosts reached and refused per sandbox, and the live event
//! stream with filters. A tenant sees its own; an admin sees everyone's.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use superserver_core::egress::EgressQuery;
use superserver_core::now_ms;
use superserver_wire::{Approval, ApprovalDecision, ApprovalState, EgressDecision, EgressEvent};

use super::{error_page, see_other};
use crate::layout::{self, ago, empty, Nav};
use crate::session::Page;
use crate::svg::path_segment;
use crate::WebState;

/// Events shown on the page (newer ones stream in).
const SHOWN: usize = 200;

#[derive(Debug, Deserialize)]
pub(crate) struct Filter {
    sandbox: Option<String>,
    decision: Option<String>,
}

fn destination(name: &Option<String>, address: &Option<String>, port: Option<u16>) -> String {
    let host = name.clone().or_else(|| address.clone()).unwrap_or_else(|| "?".into());
    match port {
        Some(p) if p != 0 => format!("{host}:{p}"),
        _ => host,
    }
}

fn decision_badge(d: EgressDecision) -> Markup {
    let class = if d == EgressDecision::Allow { "ok" } else { "bad" };
    html! { span class={"badge " (class)} { (d.as_str()) } }
}

fn event_row(e: &EgressEvent) -> Markup {
    let request = match (&e.method, &e.path) {
        (Some(m), Some(p)) => format!("{m} {p}"),
        _ => String::new(),
    };
    html! {
        tr data-id=(e.id) {
            td { time datetime=(layout::utc(e.at_ms)) { (layout::utc(e.at_ms)) } }
            td { (decision_badge(e.decision)) }
            td { a href={"/sandboxes/" (path_segment(&e.sandbox_id))} { (e.sandbox_id) } }
            td { (e.protocol) }
            td { (destination(&e.name, &e.address, e.port)) }
            td { (request) }
            td { (e.rule) }
            td.num { (e.bytes_out) " / " (e.bytes_in) }
        }
    }
}

fn approval_card(a: &Approval, csrf: &str, can_decide: bool, now: i64) -> Markup {
    let request = match (&a.method, &a.path) {
        (Some(m), Some(p)) => format!(" {m} {p}"),
        _ => String::new(),
    };
    let pending = a.state == ApprovalState::Pending;
    let state = serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    html! {
        li.approval #{"approval-" (a.id)} {
            div {
                span class={"badge " (if pending { "warn" } else if matches!(a.state, ApprovalState::AllowedOnce | ApprovalState::AllowedAlways) { "ok" } else { "bad" })} { (state) }
                " " strong.dest { (destination(&a.name, &a.address, Some(a.port))) } (request)
            }
            div.muted {
                "sandbox " a href={"/sandboxes/" (path_segment(&a.sandbox_id))} { (a.sandbox_id) }
                " · asked " (ago(a.requested_at_ms, now))
                @if pending { " · denied at " (layout::utc(a.expires_at_ms)) " if nobody answers" }
                @if let Some(by) = &a.decided_by { " · by " (by) }
            }
            @if pending && can_decide {
                div.actions {
                    @for (value, label) in [("allow_once", "Allow once"), ("allow_always", "Allow always"), ("deny", "Deny")] {
                        form method="post" action={"/egress/approvals/" (path_segment(&a.id))} {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="decision" value=(value);
                            button type="submit" name="do" value=(value) { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /egress`.
pub(crate) async fn page(State(st): State<WebState>, page: Page, Query(f): Query<Filter>) -> Response {
    let c = &page.caller;
    let sandbox = f.sandbox.filter(|s| !s.is_empty());
    let decision = f.decision.as_deref().and_then(EgressDecision::parse);
    let q = EgressQuery { sandbox: sandbox.clone(), decision, limit: SHOWN, newest: true, ..Default::default() };
    let (events, hosts, approvals) =
        match (st.svc.egress_events(c, q).await, st.svc.egress_hosts(c, 24).await, st.svc.approvals(c)) {
            (Ok(e), Ok(h), Ok(a)) => (e, h, a),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error_page(e),
        };
    let now = now_ms();
    let can_decide = c.role >= superserver_wire::Role::Member;
    let (pending, decided): (Vec<&Approval>, Vec<&Approval>) =
        approvals.iter().partition(|a| a.state == ApprovalState::Pending);
    let last_id = events.last().map_or(0, |e| e.id);
    let body = html! {
        h1 { "Egress" }
        section #approvals aria-labelledby="approvals-h" {
            h2 #approvals-h { "Approvals" }
            @if pending.is_empty() {
                p.muted { "No connection is waiting. Sandboxes with " code { "\"on_unknown\": \"ask\"" }
                    " hold connections to unknown destinations here until someone decides." }
            } @else {
                ul.anomalies #pending { @for a in &pending { (approval_card(a, &page.csrf, can_decide, now)) } }
            }
            @if !decided.is_empty() {
                details {
                    summary { "Recently decided (" (decided.len()) ")" }
                    ul.anomalies { @for a in decided.iter().take(50) { (approval_card(a, &page.csrf, false, now)) } }
                }
            }
        }
        section aria-labelledby="hosts-h" {
            h2 #hosts-h { "Hosts per sandbox (last 24 h)" }
            @if hosts.is_empty() { p.muted { "No governed traffic yet." } } @else {
                table #egress-hosts {
                    thead { tr { th { "Sandbox" } th { "Host" } th { "Decision" } th.num { "Connections" } th.num { "Bytes out / in" } th { "Last" } } }
                    tbody { @for h in &hosts {
                        tr {
                            td { a href={"/egress?sandbox=" (path_segment(&h.sandbox_id))} { (h.sandbox_id) } }
                            td { (h.host) }
                            td { (decision_badge(h.decision)) }
                            td.num { (h.events) }
                            td.num { (h.bytes_out) " / " (h.bytes_in) }
                            td { (ago(h.last_at_ms, now)) }
                        }
                    } }
                }
            }
        }
        section aria-labelledby="events-h" {
            h2 #events-h { "Events" }
            form.row method="get" action="/egress" {
                input type="text" name="sandbox" value=[sandbox.as_deref()] placeholder="sandbox id" aria-label="Sandbox";
                select name="decision" aria-label="Decision" {
                    option value="" { "any decision" }
                    option value="allow" selected[decision == Some(EgressDecision::Allow)] { "allowed" }
                    option value="deny" selected[decision == Some(EgressDecision::Deny)] { "denied" }
                }
                button type="submit" { "Filter" }
            }
            @if events.is_empty() {
                (empty("No events yet.", html! {
                    "Run a command with " code { "--network" } " (or " code { "\"network\": {\"mode\": \"policy\"}" }
                    "); its connections and DNS queries appear here as they happen (denials only unless its "
                    code { "log" } " is " code { "full" } ")."
                }))
            }
            table #egress-events data-sandbox=[sandbox.as_deref()] data-decision=[decision.map(EgressDecision::as_str)] data-after=(last_id) {
                thead { tr { th { "Time (UTC)" } th { "Decision" } th { "Sandbox" } th { "Protocol" } th { "Destination" } th { "Request" } th { "Rule" } th.num { "Bytes out / in" } } }
                tbody { @for e in events.iter().rev() { (event_row(e)) } }
            }
        }
    };
    Html(layout::refreshing("Egress", Nav::Egress, c, &page.csrf, layout::Live::Egress, body).into_string())
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    csrf: String,
    decision: String,
}

/// `POST /egress/approvals/{id}`.
pub(crate) async fn decide(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    if let Some(r) = page.csrf_refusal(Some(&f.csrf)) {
        return r;
    }
    let decision = match f.decision.as_str() {
        "allow_once" => ApprovalDecision::AllowOnce,
        "allow_always" => ApprovalDecision::AllowAlways,
        "deny" => ApprovalDecision::Deny,
        other => {
            return error_page(superserver_core::CoreError::InvalidRequest(format!(
                "decision `{other}`: use allow_once, allow_always or deny"
            )))
        }
    };
    match st.svc.decide_approval(&page.caller, &id, decision).await {
        Ok(_) => see_other("/egress"),
        Err(e) => error_page(e),
    }
}
