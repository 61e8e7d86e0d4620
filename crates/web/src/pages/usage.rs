//! `/usage`: quota bars and usage over time, per tenant (admins see all).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use superserver_core::{now_ms, UsageQuery};

use super::error_page;
use crate::layout::{self, empty, Nav};
use crate::session::Page;
use crate::svg;
use crate::WebState;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize)]
pub(crate) struct UsageFilter {
    tenant: Option<String>,
}

/// `GET /usage`.
pub(crate) async fn page(State(st): State<WebState>, page: Page, Query(q): Query<UsageFilter>) -> Response {
    let c = &page.caller;
    let tenant = q.tenant.filter(|t| !t.is_empty()).or_else(|| (!c.is_admin()).then(|| c.tenant.name.clone()));
    let now = now_ms();
    let from = now - 30 * DAY_MS;
    let query = UsageQuery {
        from: Some(from.to_string()),
        to: Some(now.to_string()),
        group_by: Some("day".into()),
        tenant: tenant.clone(),
    };
    let (report, quotas) = match (st.svc.usage(c, &query).await, st.svc.quotas(c, tenant.as_deref())) {
        (Ok(r), Ok(q)) => (r, q),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    // Days with nothing are bars of 0, so the chart shows time evenly.
    let mut days: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for d in 0..=30 {
        let day = layout::utc(from + d * DAY_MS).chars().take(10).collect::<String>();
        days.insert(day, (0.0, 0.0, 0.0));
    }
    for g in &report.groups {
        let e = days.entry(g.group.clone()).or_default();
        e.0 += g.totals.executions as f64;
        e.1 += g.totals.cpu_seconds;
        e.2 += g.totals.gb_seconds;
    }
    let series = |f: fn(&(f64, f64, f64)) -> f64| days.iter().map(|(d, v)| (d.clone(), f(v))).collect::<Vec<_>>();
    let tenants = if c.is_admin() { st.svc.list_tenants(c).tenants } else { Vec::new() };
    let body = html! {
        h1 { "Usage" }
        @if c.is_admin() {
            form.filters method="get" action="/usage" {
                label { "Tenant "
                    select name="tenant" {
                        option value="" { "all tenants" }
                        @for t in &tenants { option value=(t.name) selected[tenant.as_deref() == Some(t.name.as_str())] { (t.name) } }
                    }
                }
                button type="submit" { "Show" }
            }
        }
        section {
            h2 { "Quotas this month" }
            @for t in &quotas.tenants {
                h3 { (t.tenant) " " span.muted { "plan " (t.plan) } }
                div.quotas {
                    @for qs in &t.quotas {
                        div.quota {
                            span.qname { (qs.quota) }
                            @if let Some(limit) = qs.limit {
                                meter min="0" max=(limit) value=(qs.used) high=((limit as f64) * 0.8) optimum="0"
                                    aria-label={(qs.quota) " used"} {}
                                span.qnum { (format!("{:.0}", qs.used)) " / " (limit) }
                            } @else {
                                span.qnum { (format!("{:.0}", qs.used)) " (no limit)" }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Last 30 days" @if let Some(t) = &tenant { " · " (t) } }
            @if report.totals.executions == 0 {
                (empty("No runs in the last 30 days.", html! { "Usage appears here as commands run: " code { "superserver run -- echo hi" } "." }))
            }
            dl.facts {
                dt { "Executions" } dd #total-executions { (report.totals.executions) }
                dt { "CPU" } dd { (format!("{:.2}", report.totals.cpu_seconds)) " s" }
                dt { "Memory × time" } dd { (format!("{:.3}", report.totals.gb_seconds)) " GB·s" }
                dt { "Output" } dd { (report.totals.output_bytes) " bytes" }
            }
            h3 { "Executions per day" }
            (svg::bars("Executions per day", &series(|v| v.0), "runs"))
            h3 { "CPU seconds per day" }
            (svg::bars("CPU seconds per day", &series(|v| v.1), "s"))
            p { a href={"/v1/usage?format=csv&from=" (from) "&to=" (now) @if let Some(t) = &tenant { "&tenant=" (t) }} download="usage.csv" { "Download as CSV" } }
        }
    };
    Html(layout::page("Usage", Nav::Usage, c, &page.csrf, body).into_string()).into_response()
}
