//! `/`: the first page after login.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use superserver_core::now_ms;
use superserver_wire::HealthStatus;

use super::error_page;
use crate::layout::{self, ago, badge, empty, Nav};
use crate::session::Page;
use crate::svg::{self, path_segment};
use crate::WebState;

/// The host's figures shown as sparklines: label, series, unit.
const HOST_SERIES: [(&str, &str, &str); 3] = [
    ("CPU", "host/cpu.percent", "%"),
    ("Memory", "host/memory.used_percent", "%"),
    ("Disk /", "host/fs.used_percent:/", "%"),
];

pub(crate) async fn page(State(st): State<WebState>, page: Page) -> Response {
    let c = &page.caller;
    let now = now_ms();
    let status = match st.svc.status(c).await {
        Ok(s) => s,
        Err(e) => return error_page(e),
    };
    let mut sparks = Vec::new();
    if c.is_admin() {
        for (_, series, _) in HOST_SERIES {
            if let Ok(r) = st.svc.metric_query(c, series, Some(now - 3_600_000), Some(now), Some(60_000)).await {
                sparks.push((series.to_string(), r.points));
            }
        }
    }
    let host = if c.is_admin() {
        let map = st.svc.service_map(c);
        let health = st.svc.health_list(c);
        let anomalies = st.svc.anomalies(c, None, None, None, None, 8).await;
        let alerts = st.svc.alerts(c, Some("firing"), None, 20).await;
        match (map, health, anomalies, alerts) {
            (Ok(m), Ok(h), Ok(a), Ok(f)) => Some((m, h, a, f.alerts)),
            (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => return error_page(e),
        }
    } else {
        None
    };
    let body = html! {
        h1 { "Overview" }
        @if let Some((map, health, anomalies, firing)) = &host {
            @let count = |s: HealthStatus| health.services.iter().filter(|h| h.status == s).count();
            section.cards aria-label="Health" {
                div.card { span.big { (map.nodes.len()) } " services" }
                div.card.ok { span.big { (count(HealthStatus::Healthy)) } " healthy" }
                div.card.bad { span.big { (count(HealthStatus::Unhealthy)) } " unhealthy" }
                div.card.off { span.big { (count(HealthStatus::Down)) } " down" }
            }
            section.cards #host aria-label="The host, last hour" {
                @for (label, series, unit) in HOST_SERIES {
                    div.card {
                        a href={"/services/host#metrics"} { (label) }
                        @match sparks.iter().find(|(s, _)| s == series) {
                            Some((_, points)) => {
                                @if let Some(p) = points.last() { span.big { (format!("{:.1}", p.avg)) " " (unit) } }
                                (svg::line_chart(label, points, unit, true))
                            }
                            None => { p.muted { "no data yet" } }
                        }
                    }
                }
            }
            section {
                h2 { "Service map" }
                @if map.nodes.is_empty() {
                    (empty("No services discovered yet.", html! {
                        "Discovery looks at the host's containers, systemd units and listening processes every "
                        "few seconds; start a service (e.g. " code { "docker run -d -p 8080:80 nginx" } ") and it appears here."
                    }))
                } @else {
                    div.mapbox { (svg::service_map(map)) }
                    p.legend {
                        (badge("healthy")) " " (badge("starting")) " " (badge("unhealthy")) " " (badge("down"))
                        " — discovered " (ago(map.discovered_at_ms as i64, now))
                    }
                }
            }
            @let troubled: Vec<_> = health.services.iter()
                .filter(|h| matches!(h.status, HealthStatus::Unhealthy | HealthStatus::Down)).collect();
            @if !troubled.is_empty() {
                section {
                    h2 { "Needs attention" }
                    ul.list {
                        @for h in &troubled {
                            li {
                                (badge(h.status.as_str())) " "
                                a href={"/services/" (path_segment(&h.service))} { (h.service) }
                                " — " (h.reason) " (" (ago(h.since_ms, now)) ")"
                            }
                        }
                    }
                }
            }
            section {
                h2 { "Open alerts" }
                @if firing.is_empty() {
                    p.muted { "Nothing is firing." }
                } @else {
                    ul.list #open-alerts {
                        @for a in firing {
                            li { (badge("unhealthy")) " " strong { (a.summary) } " (" (ago(a.started_at_ms, now)) ")"
                                 @if a.ack.is_some() { " · acknowledged" } }
                        }
                    }
                    p { a href="/alerts" { "All alerts" } }
                }
            }
            section {
                h2 { "Recent anomalies" }
                @if anomalies.anomalies.is_empty() {
                    (empty("No anomalies.", html! { "Error bursts, new kinds of errors, crash loops, flapping health and resource trends show up here with their evidence." }))
                } @else {
                    ul.list {
                        @for a in &anomalies.anomalies {
                            li { span.kind { (a.kind.as_str()) } " " (a.summary) " (" (ago(a.at_ms, now)) ")" }
                        }
                    }
                    p { a href="/anomalies" { "All anomalies" } }
                }
            }
        }
        section {
            h2 { "Sandboxes" }
            dl.facts {
                dt { "Warm pool" } dd { (status.pool.ready) " ready, " (status.pool.in_use) " in use, " (status.pool.waiting) " waiting" }
                dt { "Pool hits / misses" } dd { (status.pool.hits) " / " (status.pool.misses) }
                dt { "Sandboxes running" } dd { (status.sandboxes_running) }
                dt { "Executions" } dd { (status.executions_total) }
                dt { "Up" } dd { (status.uptime_seconds / 3600) " h " (status.uptime_seconds % 3600 / 60) " min" }
            }
        }
    };
    Html(
        layout::refreshing(
            "Overview",
            Nav::Overview,
            c,
            &page.csrf,
            if c.is_admin() { layout::Live::Services } else { layout::Live::Every(30) },
            body,
        )
        .into_string(),
    )
    .into_response()
}
