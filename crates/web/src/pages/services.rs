//! `/services`, `/services/{id}`, `/anomalies` (admins: the host's view).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use superserver_core::now_ms;
use superserver_wire::{Anomaly, Service as Svc};

use super::error_page;
use crate::layout::{self, ago, badge, empty, Nav};
use crate::session::Page;
use crate::svg::{self, path_segment};
use crate::WebState;

fn state_of(s: &Svc) -> String {
    match (&s.container, &s.unit) {
        (Some(c), _) => c.state.clone(),
        (None, Some(u)) => format!("{}/{}", u.active_state, u.sub_state),
        _ => "running".into(),
    }
}

fn ports(s: &Svc) -> String {
    let p: Vec<String> = s.ports.iter().map(|p| format!("{}:{}", p.address, p.port)).collect();
    if p.is_empty() {
        "—".into()
    } else {
        p.join(", ")
    }
}

/// `GET /services`.
pub(crate) async fn list(State(st): State<WebState>, page: Page) -> Response {
    let c = &page.caller;
    let (list, health) = match (st.svc.services(c), st.svc.health_list(c)) {
        (Ok(l), Ok(h)) => (l, h),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    let now = now_ms();
    let by_id: HashMap<&str, _> = health.services.iter().map(|h| (h.service.as_str(), h)).collect();
    let body = html! {
        h1 { "Services" }
        @if list.services.is_empty() {
            (empty("No services discovered yet.", html! { "Containers, systemd units and processes with listening sockets appear here within seconds of starting." }))
        } @else {
            div.tablewrap {
                table {
                    thead { tr { th { "Service" } th { "Kind" } th { "State" } th { "Health" } th { "Ports" } } }
                    tbody {
                        @for s in &list.services {
                            tr {
                                td { a href={"/services/" (path_segment(&s.id))} { (s.id) } }
                                td { (format!("{:?}", s.kind).to_lowercase()) }
                                td { (state_of(s)) }
                                td {
                                    @if let Some(h) = by_id.get(s.id.as_str()) {
                                        (badge(h.status.as_str())) " " span.muted title=(h.reason) { (ago(h.since_ms, now)) }
                                    } @else { "—" }
                                }
                                td { (ports(s)) }
                            }
                        }
                    }
                }
            }
        }
        @for n in &list.notes { p.muted { "Note: " (n) } }
    };
    Html(layout::refreshing("Services", Nav::Services, c, &page.csrf, layout::Live::Services, body).into_string())
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    /// Metric range: `1h` (default), `6h`, `24h`, `7d`.
    range: Option<String>,
    /// Log search words.
    q: Option<String>,
    /// Log level and above.
    level: Option<String>,
}

const RANGES: [(&str, i64); 4] =
    [("1h", 3_600_000), ("6h", 6 * 3_600_000), ("24h", 86_400_000), ("7d", 7 * 86_400_000)];

fn unit_of(metric: &str) -> &'static str {
    if metric.ends_with("percent") || metric.starts_with("fs.used_percent") {
        "%"
    } else if metric.contains("bytes_per_s") {
        "B/s"
    } else if metric.contains("bytes") {
        "B"
    } else {
        ""
    }
}

/// The service's metric charts over the chosen range.
async fn metrics_section(st: &WebState, page: &Page, id: &str, range: &str) -> Markup {
    let c = &page.caller;
    let span = RANGES.iter().find(|r| r.0 == range).map_or(RANGES[0].1, |r| r.1);
    let prefix = format!("{id}/");
    let names: Vec<String> = match st.svc.metric_series(c).await {
        Ok(l) => l.series.into_iter().map(|s| s.name).filter(|n| n.starts_with(&prefix)).collect(),
        Err(_) => Vec::new(),
    };
    let now = now_ms();
    let mut charts = Vec::new();
    for name in &names {
        if let Ok(r) = st.svc.metric_query(c, name, Some(now - span), Some(now), None).await {
            charts.push((name.trim_start_matches(&prefix).to_string(), r.points));
        }
    }
    html! {
        section #metrics {
            h2 { "Metrics" }
            nav.tabs aria-label="Range" {
                @for (r, _) in RANGES {
                    a href={"?range=" (r) "#metrics"} aria-current=[(r == range).then_some("page")] { (r) }
                }
            }
            @if charts.is_empty() {
                p.muted { "No metrics for this service yet: they are sampled every " code { "metrics.interval_seconds" } " while it runs." }
            } @else {
                div.charts {
                    @for (metric, points) in &charts {
                        figure { figcaption { (metric) } (svg::line_chart(metric, points, unit_of(metric), false)) }
                    }
                }
            }
        }
    }
}

/// The service's latest log lines (searchable), tailed live.
async fn logs_section(st: &WebState, page: &Page, id: &str, q: &DetailQuery) -> Markup {
    let query = superserver_core::LogQuery {
        service: Some(id.to_string()),
        q: q.q.clone().filter(|s| !s.trim().is_empty()),
        level: q.level.clone().filter(|s| !s.is_empty()),
        from_ms: None,
        to_ms: None,
        limit: 100,
    };
    let searching = query.q.is_some() || query.level.is_some();
    let lines = st.svc.logs(&page.caller, query).await.map(|l| l.lines);
    html! {
        section #logs {
            h2 { "Logs" }
            form.filters method="get" action={"#logs"} {
                label { "Search " input type="search" name="q" value=[q.q.as_deref()] placeholder="words"; }
                label { "Level "
                    select name="level" {
                        option value="" { "any" }
                        @for l in ["fatal", "error", "warn", "info", "debug"] {
                            option value=(l) selected[q.level.as_deref() == Some(l)] { (l) " and worse" }
                        }
                    }
                }
                button type="submit" { "Search" }
            }
            @match lines {
                Err(e) => { p.error { (e.to_string()) } }
                Ok(lines) if lines.is_empty() => {
                    p.muted { @if searching { "No line matches." } @else { "No lines followed yet." } }
                }
                Ok(lines) => {
                    pre.logs #log-lines data-service=(id) data-live=[(!searching).then_some("tail")] tabindex="0" aria-label="Log lines, oldest first" {
                        @for l in lines.iter().rev() {
                            span class=(level_class(&l.level)) title=(l.template) { (layout::utc(l.at_ms)) " " (l.line) "\n" }
                        }
                    }
                }
            }
        }
    }
}

/// A CSS class for a level, from a fixed set.
fn level_class(level: &str) -> &'static str {
    match level {
        "fatal" => "fatal",
        "error" => "error",
        "warn" => "warn",
        _ => "info",
    }
}

/// `GET /services/{id}`.
pub(crate) async fn detail(
    State(st): State<WebState>,
    page: Page,
    Path(id): Path<String>,
    Query(dq): Query<DetailQuery>,
) -> Response {
    let c = &page.caller;
    let range = dq.range.clone().unwrap_or_else(|| "1h".into());
    if id == "host" {
        // The host itself: its metrics only.
        if let Err(e) = st.svc.services(c) {
            return error_page(e);
        }
        let body = html! { h1 { "The host" } (metrics_section(&st, &page, "host", &range).await) };
        return Html(layout::page("Host", Nav::Services, c, &page.csrf, body).into_string()).into_response();
    }
    let d = match st.svc.service(c, &id).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let metrics = metrics_section(&st, &page, &id, &range).await;
    let logs = logs_section(&st, &page, &id, &dq).await;
    let health = st.svc.service_health(c, &id).await.ok();
    let anomalies = st.svc.anomalies(c, Some(id.clone()), None, None, None, 20).await.map(|a| a.anomalies);
    let anomalies = match anomalies {
        Ok(a) => a,
        Err(e) => return error_page(e),
    };
    let now = now_ms();
    let s = &d.service;
    let body = html! {
        h1 { (s.name) " " span.muted { (s.id) } }
        @if let Some(h) = &health {
            section {
                h2 { "Health" }
                p { (badge(h.status.as_str())) " " (h.reason) " — since " (ago(h.since_ms, now)) }
                dl.facts {
                    dt { "Uptime" } dd { (format!("{:.2} %", h.uptime.day_percent)) " (24 h), " (format!("{:.2} %", h.uptime.week_percent)) " (7 d)" }
                    @if let Some(dh) = &h.docker_health { dt { "Docker health check" } dd { (dh) } }
                    @if let Some(cl) = &h.crash_loop { dt { "Crash loop" } dd { (cl.restarts) " restarts in " (cl.window_seconds) " s" } }
                }
                @if !h.probes.is_empty() {
                    div.tablewrap { table {
                        thead { tr { th { "Probe" } th { "Target" } th { "Last" } th { "Failures" } } }
                        tbody { @for p in &h.probes { tr {
                            td { (p.name) }
                            td { code { (p.target) } }
                            td { @match &p.last {
                                Some(l) => { (badge(if l.ok { "healthy" } else { "unhealthy" })) " " (l.message) " · " (l.latency_ms) " ms · " (ago(l.at_ms, now)) }
                                None => { "not run yet" }
                            } }
                            td { (p.consecutive_failures) " / " (p.retries) }
                        } } }
                    } }
                }
                @if !h.history.is_empty() {
                    h3 { "History" }
                    ul.list { @for e in &h.history { li { (badge(e.status.as_str())) " " (e.reason) " (" (ago(e.at_ms, now)) ")" } } }
                }
            }
        }
        section {
            h2 { "Details" }
            dl.facts {
                dt { "Ports" } dd { (ports(s)) }
                @if let Some(k) = &s.container {
                    dt { "Image" } dd { code { (k.image) } " " span.muted { (k.image_digest) } }
                    dt { "State" } dd { (k.state) }
                    dt { "Restarts" } dd { (k.restart_count) }
                    @if let Some(cp) = &k.compose { dt { "Compose" } dd { (cp.project) " / " (cp.service) } }
                    @if !k.labels.is_empty() {
                        dt { "Labels" }
                        dd { ul.labels { @for (lk, lv) in &k.labels { li { code { (lk) "=" (lv) } } } } }
                    }
                }
                @if let Some(u) = &s.unit {
                    dt { "Unit" } dd { (u.name) " — " (u.description) }
                    dt { "State" } dd { (u.active_state) "/" (u.sub_state) }
                }
            }
            @if !s.processes.is_empty() {
                h3 { "Processes" }
                ul.list { @for p in &s.processes { li { code { (p.pid) " " (p.cmdline.join(" ")) } } } }
            }
            @if !d.edges.is_empty() {
                h3 { "Connections" }
                ul.list { @for e in &d.edges {
                    li { a href={"/services/" (path_segment(&e.from))} { (e.from) } " → "
                         a href={"/services/" (path_segment(&e.to))} { (e.to) } " (" (format!("{:?}", e.kind).to_lowercase()) " " (e.detail) ")" }
                } }
            }
        }
        (metrics)
        (logs)
        section {
            h2 { "Anomalies" }
            @if anomalies.is_empty() { p.muted { "None recorded." } } @else { (anomaly_list(&anomalies, now)) }
        }
        section {
            h2 { "Changes" }
            @if d.events.is_empty() { p.muted { "No changes recorded yet." } } @else {
                ul.list { @for e in &d.events {
                    li { (format!("{:?}", e.kind).to_lowercase()) " "
                         @if let Some(b) = &e.before { span.muted { (b) } " → " }
                         @if let Some(a) = &e.after { (a) }
                         " (" (ago(e.at_ms, now)) ")" }
                } }
            }
        }
    };
    Html(layout::refreshing(&s.name, Nav::Services, c, &page.csrf, layout::Live::Services, body).into_string())
        .into_response()
}

fn anomaly_list(list: &[Anomaly], now: i64) -> Markup {
    html! {
        ul.anomalies {
            @for a in list {
                li {
                    div { span.kind { (a.kind.as_str()) } " " strong { (a.summary) } " " span.muted { (ago(a.at_ms, now)) } }
                    @if let Some(t) = &a.evidence.template { div { "Template: " code { (t) } } }
                    @if !a.evidence.figures.is_empty() {
                        div.muted { @for (k, v) in &a.evidence.figures { (k) " " (format!("{v:.2}")) "; " } }
                    }
                    @if !a.evidence.samples.is_empty() {
                        pre.samples { @for l in &a.evidence.samples { (l) "\n" } }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnomalyFilter {
    service: Option<String>,
    kind: Option<String>,
}

/// `GET /anomalies`.
pub(crate) async fn anomalies(State(st): State<WebState>, page: Page, Query(q): Query<AnomalyFilter>) -> Response {
    let c = &page.caller;
    let service = q.service.filter(|s| !s.is_empty());
    let kind = q.kind.filter(|s| !s.is_empty());
    let list = match st.svc.anomalies(c, service.clone(), kind.clone(), None, None, 200).await {
        Ok(l) => l.anomalies,
        Err(e) => return error_page(e),
    };
    let now = now_ms();
    let body = html! {
        h1 { "Anomalies" }
        form.filters method="get" action="/anomalies" {
            label { "Service " input type="text" name="service" value=[service.as_deref()] placeholder="container:web"; }
            label { "Kind "
                select name="kind" {
                    option value="" { "any" }
                    @for k in superserver_wire::AnomalyKind::ALL {
                        option value=(k.as_str()) selected[kind.as_deref() == Some(k.as_str())] { (k.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if list.is_empty() {
            (empty("No anomalies match.", html! { "Error bursts, new kinds of errors, crash loops, flapping health and resource trends are recorded here with their evidence." }))
        } @else { (anomaly_list(&list, now)) }
    };
    Html(layout::page("Anomalies", Nav::Anomalies, c, &page.csrf, body).into_string()).into_response()
}
