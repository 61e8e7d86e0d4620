//! `/metrics` in the Prometheus text exposition format.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use superserver_core::Service;

/// Renders every metric.
pub fn render(svc: &Service) -> String {
    let mut out = String::with_capacity(4096);
    let c = svc.counters();
    let rt = svc.runtime_stats();
    let pool = svc.pool_status();
    let mut m = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    m("superserver_up", "gauge", "1 while the server runs.", 1.0);
    m("superserver_ready", "gauge", "1 when sandboxes can be created.", f64::from(u8::from(svc.ready())));
    m("superserver_runs_total", "counter", "One-shot runs completed.", n(&c.runs));
    m("superserver_execs_total", "counter", "Commands run in persistent sandboxes.", n(&c.execs));
    m("superserver_command_timeouts_total", "counter", "Commands killed at their timeout.", n(&c.timeouts));
    m("superserver_command_oom_kills_total", "counter", "Commands killed for exceeding memory.", n(&c.oom_kills));
    m("superserver_command_start_failures_total", "counter", "Commands that could not start.", n(&c.failures));
    let runs = c.runs.load(Ordering::Relaxed);
    let mean = if runs == 0 { 0.0 } else { n(&c.run_us_total) / runs as f64 / 1e6 };
    m("superserver_run_seconds_mean", "gauge", "Mean time of a one-shot run, end to end.", mean);
    m("superserver_sandboxes_persistent", "gauge", "Persistent sandboxes running.", svc.running_count() as f64);
    m(
        "superserver_sandboxes_live",
        "gauge",
        "Sandboxes alive (pool included).",
        rt.live.load(Ordering::Relaxed) as f64,
    );
    m("superserver_sandboxes_created_total", "counter", "Sandboxes created.", n(&rt.created));
    m("superserver_sandboxes_destroyed_total", "counter", "Sandboxes destroyed.", n(&rt.destroyed));
    m("superserver_sandbox_create_failures_total", "counter", "Sandbox creations that failed.", n(&rt.create_failures));
    m(
        "superserver_sandbox_cleanup_failures_total",
        "counter",
        "Sandbox teardowns that left something.",
        n(&rt.cleanup_failures),
    );
    m(
        "superserver_sandbox_cgroups_reused_total",
        "counter",
        "Sandboxes given the empty cgroup of a finished one rather than a new one.",
        n(&rt.cgroups_reused),
    );
    m("superserver_sandbox_create_seconds_mean", "gauge", "Mean sandbox creation time.", pool.create_ms_mean / 1e3);
    m("superserver_sandbox_create_seconds_max", "gauge", "Longest sandbox creation time.", pool.create_ms_max / 1e3);
    m("superserver_pool_ready", "gauge", "Ready sandboxes in the warm pool.", pool.ready as f64);
    m("superserver_pool_creating", "gauge", "Sandboxes being created for the pool.", pool.creating as f64);
    m("superserver_pool_in_use", "gauge", "Sandboxes handed out and not yet destroyed.", pool.in_use as f64);
    m("superserver_pool_hits_total", "counter", "Sandboxes served ready from the pool.", pool.hits as f64);
    m("superserver_pool_misses_total", "counter", "Sandboxes created on the request path.", pool.misses as f64);
    m("superserver_pool_waiting", "gauge", "Requests waiting for a sandbox to be created.", pool.waiting as f64);
    tenants(&mut out, svc);
    resources(&mut out, svc);
    out
}

/// The latest sampling round: `superserver_resource{service,metric}` (the
/// host's and at most `metrics.max_exported_services` services).
fn resources(out: &mut String, svc: &Service) {
    let (values, left_out) = svc.metrics_current();
    let _ = writeln!(out, "# HELP superserver_resource Latest sampled value of each metric series (see /v1/metrics/series).\n# TYPE superserver_resource gauge");
    for (series, value) in values {
        let Some((service, metric)) = series.split_once('/') else { continue };
        let _ = writeln!(
            out,
            "superserver_resource{{service=\"{}\",metric=\"{}\"}} {value}",
            label(service),
            label(metric)
        );
    }
    let _ = writeln!(out, "# HELP superserver_resource_services_left_out Services not exported (metrics.max_exported_services).\n# TYPE superserver_resource_services_left_out gauge\nsuperserver_resource_services_left_out {left_out}");
}

/// Per-tenant figures, labelled by tenant name (bounded: the busiest
/// `tenants.max_metric_tenants`, the rest as `_other`), and refusals.
fn tenants(out: &mut String, svc: &Service) {
    let snapshot = svc.tenant_metrics_snapshot();
    type Series = (&'static str, &'static str, &'static str, fn(&superserver_core::TenantMetrics) -> f64);
    let series: [Series; 3] = [
        ("superserver_tenant_executions_total", "counter", "Commands run, by tenant, since the server started.", |t| {
            t.executions as f64
        }),
        ("superserver_tenant_cpu_seconds_total", "counter", "CPU time of commands, by tenant.", |t| t.cpu_seconds),
        ("superserver_tenant_gb_seconds_total", "counter", "Memory limit × wall time of commands, by tenant.", |t| {
            t.gb_seconds
        }),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (_, tenant, t) in &snapshot {
            let _ = writeln!(out, "{name}{{tenant=\"{}\"}} {}", label(tenant), value(t));
        }
    }
    let name = "superserver_requests_refused_total";
    let _ = writeln!(out, "# HELP {name} Requests refused before any work, by reason.\n# TYPE {name} counter");
    for (reason, n) in svc.refusals() {
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
