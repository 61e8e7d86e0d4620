//! Metrics through the server: host series are stored and queryable, a
//! container's memory series follows a real leak, a sandbox's series is its
//! tenant's and hidden from other tenants, bad queries get clear errors, and
//! `/metrics` carries the current values. Needs root and a Docker engine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::docker::Container;
use common::{call, error_code, tenant_with_key, Server};
use reqwest::Method;
use superserver_wire::{MetricQueryResult, MetricSeriesList, Role};

const FAST: &str = "[discovery]\ninterval_seconds = 1\n[metrics]\ninterval_seconds = 1\n";

async fn series(s: &Server, key: &str) -> MetricSeriesList {
    let (status, v) = call(s, Some(key), Method::GET, "/v1/metrics/series", None).await;
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

/// Waits (bounded) until `name` is listed for `key`, and returns its latest value.
async fn wait_series(s: &Server, key: &str, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let l = series(s, key).await;
        if let Some(x) = l.series.iter().find(|x| x.name == name) {
            if pred(x.last_value) {
                return x.last_value;
            }
        }
        assert!(
            Instant::now() < deadline,
            "series {name} never satisfied the wait; have {:?}",
            l.series.iter().map(|x| (&x.name, x.last_value)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_container_series_are_stored_queryable_and_exported() {
    common::require_root();
    common::docker::require_docker();
    let s = Server::start_with(FAST).await;
    let admin = s.admin_key.clone();
    let c = Container::run("ss-metrics-leak", &[]);
    let mem = "container:ss-metrics-leak/memory.bytes";

    // Host series: a rate (needs two rounds) and a gauge.
    wait_series(&s, &admin, "host/cpu.percent", |v| (0.0..=100.0).contains(&v)).await;
    let used = wait_series(&s, &admin, "host/memory.used_bytes", |v| v > 0.0).await;
    assert!(used > 0.0);
    let (status, v) =
        call(&s, Some(&admin), Method::GET, "/v1/metrics/query?series=host/memory.used_bytes", None).await;
    assert_eq!(status, 200, "{v}");
    let q: MetricQueryResult = serde_json::from_value(v).unwrap();
    assert_eq!(q.tier, "raw");
    assert!(!q.points.is_empty());
    assert!(q.points.iter().all(|p| p.min <= p.avg && p.avg <= p.max && p.avg > 0.0));

    // The container's memory rises by the leak.
    let before = wait_series(&s, &admin, mem, |v| v > 0.0).await;
    let res = reqwest::Client::new().post(format!("http://{}:8080/leak?mb=64", c.ip())).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let after = wait_series(&s, &admin, mem, |v| v >= before + 50.0 * 1024.0 * 1024.0).await;
    assert!(after > before);
    let (status, v) =
        call(&s, Some(&admin), Method::GET, &format!("/v1/metrics/query?series={mem}&step=1m"), None).await;
    assert_eq!(status, 200, "{v}");
    let q: MetricQueryResult = serde_json::from_value(v).unwrap();
    assert_eq!(q.step_ms, 60_000);
    assert!(q.points.iter().any(|p| p.max >= after), "{q:?}");

    // Clear errors.
    let (status, v) = call(&s, Some(&admin), Method::GET, "/v1/metrics/query?series=host/nope", None).await;
    assert_eq!((status.as_u16(), error_code(&v)), (404, "series_not_found"), "{v}");
    let (status, v) =
        call(&s, Some(&admin), Method::GET, "/v1/metrics/query?series=host/load.1&from=2000&to=1000", None).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("before"), "{v}");
    let (status, v) = call(&s, Some(&admin), Method::GET, "/v1/metrics/query?series=host/load.1&step=1w", None).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("duration"), "{v}");
    let (status, v) = call(&s, Some(&admin), Method::GET, "/v1/metrics/query?from=1", None).await;
    assert_eq!(status, 400, "{v}");

    // The CLI lists series and shows one.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(common::bin())
            .args(args)
            .env("SUPERSERVER_URL", &s.url)
            .env("SUPERSERVER_API_KEY", &admin)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = cli(&["metrics", "ls"]);
    assert!(code == Some(0) && out.contains(mem), "{out} {err}");
    let (code, out, err) = cli(&["metrics", mem, "--since", "10m", "--step", "1m", "--json"]);
    assert_eq!(code, Some(0), "{out} {err}");
    let q: MetricQueryResult = serde_json::from_str(&out).unwrap();
    assert_eq!((q.series.as_str(), q.step_ms), (mem, 60_000));
    assert!(!q.points.is_empty());
    let (code, _, err) = cli(&["metrics", "host/nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not found"), "{err}");

    // Both endpoints are in the OpenAPI document.
    let doc: serde_json::Value =
        s.http().get(format!("{}/v1/openapi.json", s.url)).send().await.unwrap().json().await.unwrap();
    for path in ["/v1/metrics/series", "/v1/metrics/query"] {
        assert!(doc["paths"][path].is_object(), "openapi lacks {path}");
    }

    // Current values on /metrics, labels escaped.
    let text = s.http().get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("superserver_resource{service=\"host\",metric=\"memory.used_bytes\"}"), "{text}");
    assert!(
        text.contains("superserver_resource{service=\"container:ss-metrics-leak\",metric=\"memory.bytes\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_series_is_its_tenants_only() {
    common::require_root();
    let s = Server::start_with(FAST).await;
    let (alice, _) = tenant_with_key(&s, "metrics-alice", "developer", Role::Member).await;
    let (bob, _) = tenant_with_key(&s, "metrics-bob", "developer", Role::Member).await;
    let (status, v) = call(&s, Some(&alice), Method::POST, "/v1/sandboxes", Some(serde_json::json!({}))).await;
    assert!(status.is_success(), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let name = format!("sandbox:{id}/memory.bytes");

    wait_series(&s, &alice, &name, |_| true).await;
    let (status, v) = call(&s, Some(&alice), Method::GET, &format!("/v1/metrics/query?series={name}"), None).await;
    assert_eq!(status, 200, "{v}");
    // Alice sees only her sandbox's series, none of the host's.
    assert!(series(&s, &alice).await.series.iter().all(|x| x.name.starts_with("sandbox:")));

    // Bob sees nothing of it.
    assert!(series(&s, &bob).await.series.iter().all(|x| !x.name.contains(&id)));
    let (status, v) = call(&s, Some(&bob), Method::GET, &format!("/v1/metrics/query?series={name}"), None).await;
    assert_eq!((status.as_u16(), error_code(&v)), (404, "series_not_found"), "{v}");
    let (status, v) = call(&s, Some(&bob), Method::GET, "/v1/metrics/query?series=host/cpu.percent", None).await;
    assert_eq!((status.as_u16(), error_code(&v)), (404, "series_not_found"), "{v}");
    // The admin sees it too.
    assert!(series(&s, &s.admin_key).await.series.iter().any(|x| x.name == name));
}
