//! Service health through the real server: HTTP probes against a real
//! container, Docker's own health check, a crash loop that a passing check
//! cannot hide, TCP and command probes against a host process, uptime and
//! history, and bad probe configuration refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::Container;
use common::Server;
use superserver_wire::{Anomaly, AnomalyList, HealthStatus, ServiceHealth};

/// Waits until the service's health satisfies `pred`.
async fn wait_health(s: &Server, id: &str, what: &str, pred: impl Fn(&ServiceHealth) -> bool) -> ServiceHealth {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = None;
    loop {
        let res = s.http().get(format!("{}/v1/services/{id}/health", s.url)).send().await.unwrap();
        if res.status() == 200 {
            let h: ServiceHealth = res.json().await.unwrap();
            if pred(&h) {
                return h;
            }
            last = Some(h);
        }
        assert!(Instant::now() < deadline, "{id}: {what} never happened; last: {last:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for an anomaly of `kind` on `service`.
async fn wait_anomaly(s: &Server, service: &str, kind: &str) -> Anomaly {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list: AnomalyList = s
            .http()
            .get(format!("{}/v1/anomalies", s.url))
            .query(&[("service", service), ("kind", kind)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(a) = list.anomalies.into_iter().next() {
            return a;
        }
        assert!(Instant::now() < deadline, "no {kind} anomaly for {service}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn post(url: String) {
    let res = reqwest::Client::new().post(&url).send().await.unwrap();
    assert!(res.status().is_success(), "POST {url}: {}", res.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_probe_follows_a_container_into_failure_and_back() {
    let s = Server::start_with(
        r#"
[discovery]
interval_seconds = 1

[alerts]
evaluate_interval_seconds = 1

[[alerts.rules]]
name = "down"
kind = "service_down"
for_seconds = 1
services = ["container:ss-test-health-*"]

[[health.probes]]
name = "web"
service = "container:ss-test-health-*"
kind = "http"
url = "http://{host}:8080/health"
expect_body = "healthy"
interval_seconds = 1
timeout_seconds = 2
retries = 2
"#,
    )
    .await;
    let c = Container::run("ss-test-health-web", &[]);
    let id = "container:ss-test-health-web";
    let ip = c.ip();
    assert!(!ip.is_empty(), "the container has an address on the bridge");

    let h = wait_health(&s, id, "healthy", |h| h.status == HealthStatus::Healthy).await;
    let probe = h.probes.iter().find(|p| p.name == "web").expect("the probe applies");
    assert_eq!(probe.target, format!("http://{ip}:8080/health"));
    assert!(probe.last.as_ref().is_some_and(|l| l.ok && l.message == "HTTP 200"), "{probe:?}");

    // The service turns unhealthy: the probe fails twice in a row (Docker's
    // own check fails too; the probe is named first).
    post(format!("http://{ip}:8080/health/fail")).await;
    // Docker's own check may notice first; the probe's reason wins once it
    // has failed its retries.
    let h = wait_health(&s, id, "unhealthy by the probe", |h| {
        h.status == HealthStatus::Unhealthy && h.reason.starts_with("probe web: HTTP 503")
    })
    .await;
    assert!(h.probes[0].consecutive_failures >= 2, "{h:#?}");
    // Failing its checks while running is down for its users: an alert.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let alerts = s.client.alerts(Some("firing"), Some(id)).await.unwrap().alerts;
        if let Some(a) = alerts.first() {
            // The summary gives the reason at the moment it fired: the
            // probe's, or Docker's own check if that failed first.
            let why = ["is unhealthy: probe web: HTTP 503", "is unhealthy: Docker health check failing"];
            assert!(why.iter().any(|w| a.summary.contains(w)), "{a:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "no alert for the unhealthy service");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let map: serde_json::Value =
        s.http().get(format!("{}/v1/services/map", s.url)).send().await.unwrap().json().await.unwrap();
    let node = map["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap().clone();
    assert_eq!(node["health"], "unhealthy", "{node}");

    // And back: the alert resolves.
    post(format!("http://{ip}:8080/health/ok")).await;
    let h = wait_health(&s, id, "healthy again", |h| h.status == HealthStatus::Healthy).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.client.alerts(Some("firing"), Some(id)).await.unwrap().alerts.is_empty() {
        assert!(Instant::now() < deadline, "the alert never resolved");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let statuses: Vec<HealthStatus> = h.history.iter().map(|e| e.status).collect();
    assert!(statuses.starts_with(&[HealthStatus::Healthy, HealthStatus::Unhealthy]), "{statuses:?}");
    assert!(h.uptime.day_percent < 100.0 && h.uptime.day_percent > 0.0, "{:?}", h.uptime);
    assert_eq!(h.docker_health.as_deref().map(|d| d != "unhealthy"), Some(true), "{h:#?}");

    // Once more: four changes within the window are flapping, an anomaly
    // with the changes as evidence.
    post(format!("http://{ip}:8080/health/fail")).await;
    wait_health(&s, id, "unhealthy again", |h| h.status == HealthStatus::Unhealthy).await;
    post(format!("http://{ip}:8080/health/ok")).await;
    wait_health(&s, id, "healthy once more", |h| h.status == HealthStatus::Healthy).await;
    let flap = wait_anomaly(&s, id, "health_flapping").await;
    assert!(flap.evidence.figures["changes"] >= 4.0, "{flap:#?}");
    let unhealthy = flap.evidence.samples.iter().filter(|l| l.contains(" unhealthy (")).count();
    assert_eq!(unhealthy, 2, "{flap:#?}");

    // The CLI shows the list and the detail.
    let list = common::stdout_of(&s, &["services", "health"]);
    assert!(list.contains(id) && list.contains("healthy"), "{list}");
    let detail = common::stdout_of(&s, &["services", "health", id]);
    assert!(detail.contains("probe:    web") && detail.contains("uptime:"), "{detail}");

    // Stopped: down, with Docker's word for it.
    c.docker("stop -t 1");
    let h = wait_health(&s, id, "down", |h| h.status == HealthStatus::Down).await;
    assert_eq!(h.reason, "container exited", "{h:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_unhealthy_whatever_the_checks_say() {
    let s = Server::start_with("[discovery]\ninterval_seconds = 1\n[health]\ncrash_loop_restarts = 3\n").await;
    // Exits half a second after each start; Docker restarts it every time.
    let _c = Container::run("ss-test-health-crash", &["--restart", "always", "-e", "EXIT_AFTER_MS=500"]);
    let id = "container:ss-test-health-crash";
    let h = wait_health(&s, id, "a crash loop", |h| h.crash_loop.is_some()).await;
    assert_eq!(h.status, HealthStatus::Unhealthy, "{h:#?}");
    assert!(h.reason.starts_with("crash loop: "), "{h:#?}");
    assert!(h.crash_loop.as_ref().unwrap().restarts >= 3);

    // An anomaly too, with the restarts as evidence; the CLI lists it.
    let a = wait_anomaly(&s, id, "crash_loop").await;
    assert!(a.evidence.figures["restarts"] >= 3.0, "{a:#?}");
    assert!(a.summary.starts_with(&format!("{id}: restarted ")), "{a:#?}");
    let out = common::stdout_of(&s, &["services", "anomalies", "--kind", "crash_loop"]);
    assert!(out.contains("crash_loop") && out.contains(id), "{out}");
    // A kind that does not exist is a clear error.
    let res = s.http().get(format!("{}/v1/anomalies?kind=bogus", s.url)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("`bogus` is not an anomaly kind"), "{body}");
}

/// `python3 -m http.server` on a free loopback port, killed when dropped.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_command_probes_judge_a_host_process() {
    let py = PyServer::start();
    let port = py.port;
    let s = Server::start_with(&format!(
        r#"
[discovery]
interval_seconds = 1

[[health.probes]]
name = "tcp"
service = "process:*:{port}"
kind = "tcp"
address = "127.0.0.1:{port}"
interval_seconds = 1

[[health.probes]]
name = "cmd-ok"
service = "process:*:{port}"
kind = "command"
command = ["sh", "-c", "test -d /workspace"]
interval_seconds = 1

[[health.probes]]
name = "cmd-bad"
service = "process:*:{port}"
kind = "command"
command = ["sh", "-c", "echo broken >&2; exit 3"]
interval_seconds = 1
retries = 1
"#
    ))
    .await;
    let list = s.client.services().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut list = list;
    while !list.services.iter().any(|sv| sv.ports.iter().any(|p| p.port == port)) {
        assert!(Instant::now() < deadline, "the listener was never discovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
        list = s.client.services().await.unwrap();
    }
    let id = list.services.iter().find(|sv| sv.ports.iter().any(|p| p.port == port)).unwrap().id.clone();

    let h = wait_health(&s, &id, "all three probes run", |h| {
        h.probes.len() == 3 && h.probes.iter().all(|p| p.last.is_some())
    })
    .await;
    let by_name = |n: &str| h.probes.iter().find(|p| p.name == n).unwrap().last.clone().unwrap();
    assert!(by_name("tcp").ok && by_name("tcp").message == "connected", "{h:#?}");
    assert!(by_name("cmd-ok").ok && by_name("cmd-ok").message == "exit 0", "{h:#?}");
    assert!(!by_name("cmd-bad").ok && by_name("cmd-bad").message == "exit 3: broken", "{h:#?}");
    let h = wait_health(&s, &id, "unhealthy", |h| h.status == HealthStatus::Unhealthy).await;
    assert_eq!(h.reason, "probe cmd-bad: exit 3: broken");

    // Gone: down.
    drop(py);
    let h = wait_health(&s, &id, "down", |h| h.status == HealthStatus::Down).await;
    assert!(h.reason.starts_with("gone"), "{h:#?}");
    assert_eq!(h.history[0].status, HealthStatus::Down);
}

#[test]
fn bad_probe_configuration_is_refused_at_start() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[[health.probes]]\nname = \"web\"\nservice = \"container:web\"\nkind = \"http\"\n",
    )
    .unwrap();
    let out = Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("health.probes `web`: an http probe needs `url`"), "{err}");
}
