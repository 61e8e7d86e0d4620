//! SVG drawn on the server: the service map. Every label is escaped by
//! `maud`; colours come from a fixed set of classes, never from the data.

use std::collections::HashMap;

use maud::{html, Markup};
use superserver_wire::{EdgeKind, MapNode, ServiceKind, ServiceMap};

const CELL_W: f64 = 200.0;
const CELL_H: f64 = 90.0;
const NODE_W: f64 = 160.0;
const NODE_H: f64 = 44.0;
/// Characters of a name shown in a node (the full name is in its tooltip).
const LABEL_CHARS: usize = 20;

/// Percent-encodes a path segment (service ids hold `:` and may hold anything
/// a container name or an executable's name can).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn health_class(n: &MapNode) -> &'static str {
    match n.health.as_deref().unwrap_or(n.state.as_str()) {
        "healthy" | "running" | "active" => "ok",
        "starting" | "restarting" | "activating" => "warn",
        "unhealthy" | "failed" => "bad",
        _ => "off",
    }
}

fn kind_label(k: ServiceKind) -> &'static str {
    match k {
        ServiceKind::Container => "container",
        ServiceKind::Unit => "unit",
        ServiceKind::Process => "process",
    }
}

fn short(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(LABEL_CHARS - 1).collect::<String>())
    }
}

/// The service map: nodes on a grid (most connected first, so the busy
/// part sits top-left), edges as lines, coloured by health.
pub(crate) fn service_map(map: &ServiceMap) -> Markup {
    let mut degree: HashMap<&str, usize> = HashMap::new();
    for e in &map.edges {
        *degree.entry(e.from.as_str()).or_default() += 1;
        *degree.entry(e.to.as_str()).or_default() += 1;
    }
    let mut nodes: Vec<&MapNode> = map.nodes.iter().collect();
    nodes.sort_by(|a, b| {
        let (da, db) = (degree.get(a.id.as_str()).unwrap_or(&0), degree.get(b.id.as_str()).unwrap_or(&0));
        db.cmp(da).then(a.kind.cmp(&b.kind)).then(a.name.cmp(&b.name))
    });
    let cols = ((nodes.len() as f64).sqrt().ceil() as usize).clamp(1, 6);
    let rows = nodes.len().div_ceil(cols).max(1);
    let pos: HashMap<&str, (f64, f64)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (c, r) = ((i % cols) as f64, (i / cols) as f64);
            (n.id.as_str(), (c * CELL_W + CELL_W / 2.0, r * CELL_H + CELL_H / 2.0))
        })
        .collect();
    let (w, h) = (cols as f64 * CELL_W, rows as f64 * CELL_H);
    html! {
        svg.map xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (w) " " (h)} width=(w) height=(h) role="img"
            aria-label={"Service map: " (map.nodes.len()) " services, " (map.edges.len()) " connections"} {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrow" {}
                }
            }
            @for e in &map.edges {
                @if let (Some(a), Some(b)) = (pos.get(e.from.as_str()), pos.get(e.to.as_str())) {
                    @let directed = e.kind != EdgeKind::Network;
                    line class={"edge " (edge_class(e.kind))} x1=(a.0) y1=(a.1) x2=(b.0) y2=(b.1)
                        marker-end=[directed.then_some("url(#arrow)")] {
                        title { (e.from) " → " (e.to) " (" (edge_class(e.kind)) " " (e.detail) ")" }
                    }
                }
            }
            @for n in &nodes {
                @let (x, y) = pos[n.id.as_str()];
                a href={"/services/" (path_segment(&n.id))} {
                    g class={"node " (health_class(n))} {
                        title { (n.id) " — " (n.health.as_deref().unwrap_or(&n.state)) }
                        rect x=(x - NODE_W / 2.0) y=(y - NODE_H / 2.0) width=(NODE_W) height=(NODE_H) rx="8" {}
                        text x=(x) y=(y - 3.0) class="name" { (short(&n.name)) }
                        text x=(x) y=(y + 13.0) class="kind" { (kind_label(n.kind)) " · " (n.health.as_deref().unwrap_or(&n.state)) }
                    }
                }
            }
        }
    }
}

fn edge_class(k: EdgeKind) -> &'static str {
    match k {
        EdgeKind::Tcp => "tcp",
        EdgeKind::Network => "network",
        EdgeKind::DependsOn => "depends_on",
    }
}

/// A bar chart of `(label, value)` (e.g. days and executions), with the
/// largest value and the first and last labels as its axis.
pub(crate) fn bars(title: &str, points: &[(String, f64)], unit: &str) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    const PAD: f64 = 18.0;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let n = points.len().max(1) as f64;
    let slot = W / n;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H + 2.0 * PAD)} role="img"
            aria-label={(title) ": largest " (format!("{max:.2}")) " " (unit)} {
            text x="0" y="12" class="axis" { (format!("{max:.2}")) " " (unit) }
            @for (i, (label, v)) in points.iter().enumerate() {
                @let h = if max > 0.0 { v / max * H } else { 0.0 };
                rect class="bar" x=(i as f64 * slot + 1.0) y=(PAD + H - h) width=((slot - 2.0).max(1.0)) height=(h) {
                    title { (label) ": " (format!("{v:.2}")) " " (unit) }
                }
            }
            line class="baseline" x1="0" y1=(PAD + H) x2=(W) y2=(PAD + H) {}
            @if let (Some(first), Some(last)) = (points.first(), points.last()) {
                text x="0" y=(H + 2.0 * PAD - 2.0) class="axis" { (first.0) }
                text x=(W) y=(H + 2.0 * PAD - 2.0) class="axis end" { (last.0) }
            }
        }
    }
}

/// A line chart of a metric window: the average as a line over the band
/// between minimum and maximum, with the largest value and the time span as
/// its axis. `compact` draws a sparkline (no labels).
pub(crate) fn line_chart(title: &str, points: &[superserver_wire::MetricPoint], unit: &str, compact: bool) -> Markup {
    let (w, h, pad) = if compact { (160.0, 36.0, 2.0) } else { (600.0, 140.0, 18.0) };
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return html! { span.muted { "no data yet" } };
    };
    let (t0, t1) = (first.t_ms as f64, (last.t_ms as f64).max(first.t_ms as f64 + 1.0));
    let top = points.iter().map(|p| p.max).fold(f64::MIN, f64::max).max(1e-9);
    let x = |t: i64| (t as f64 - t0) / (t1 - t0) * w;
    let y = |v: f64| pad + h - (v / top).clamp(0.0, 1.0) * h;
    let path = |f: &dyn Fn(&superserver_wire::MetricPoint) -> f64| {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, x(p.t_ms), y(f(p))))
            .collect::<String>()
    };
    let band = {
        let up: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", x(p.t_ms), y(p.max))).collect();
        let down: Vec<String> = points.iter().rev().map(|p| format!("{:.1},{:.1}", x(p.t_ms), y(p.min))).collect();
        format!("M{} L{} Z", up.join(" L"), down.join(" L"))
    };
    let now = last.avg;
    html! {
        svg class={"line " (if compact { "spark" } else { "chart" })} xmlns="http://www.w3.org/2000/svg"
            viewBox={"0 0 " (w) " " (h + 2.0 * pad)} role="img"
            aria-label={(title) ": now " (format!("{now:.2}")) " " (unit) ", highest " (format!("{top:.2}"))} {
            title { (title) ": now " (format!("{now:.2}")) " " (unit) }
            path class="band" d=(band) {}
            path class="avg" d=(path(&|p| p.avg)) {}
            @if !compact {
                text x="0" y="12" class="axis" { (format!("{top:.2}")) " " (unit) }
                text x="0" y=(h + 2.0 * pad - 2.0) class="axis" { (crate::layout::utc(first.t_ms)) }
                text x=(w) y=(h + 2.0 * pad - 2.0) class="axis end" { (crate::layout::utc(last.t_ms)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use superserver_wire::Edge;

    #[test]
    fn hostile_names_are_escaped_and_ids_encoded() {
        let map = ServiceMap {
            discovered_at_ms: 0,
            nodes: vec![MapNode {
                id: "process:<img src=x onerror=alert(1)>:80".into(),
                kind: ServiceKind::Process,
                name: "<script>alert(1)</script>".into(),
                state: "running".into(),
                health: Some("\"><script>".into()),
            }],
            edges: vec![Edge { kind: EdgeKind::Tcp, from: "a".into(), to: "b".into(), count: 1, detail: "<b>".into() }],
        };
        let svg = service_map(&map).into_string();
        assert!(!svg.contains("<script>") && !svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(svg.contains("/services/process:%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E:80"), "{svg}");
        assert!(svg.contains("class=\"node off\""), "an unknown health gets a fixed class: {svg}");
        // SVG elements inside HTML are not void: each is closed, or the
        // labels would end up inside the rectangle and not be drawn.
        assert!(svg.contains("rx=\"8\"></rect><text"), "{svg}");
    }
}
