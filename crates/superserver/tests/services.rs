//! Discovery through the server: a process listening on loopback shows up in
//! `/v1/services` with its pid and command line, on the map, and its
//! appearance and disappearance become events; only admins see the host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::{Container, TESTSVC_IMAGE};
use common::{http_with_key, Server};
use superserver_wire::{ChangeKind, CreateKeyRequest, CreateTenantRequest, Role, ServiceEventList, ServiceList};

/// `python3 -m http.server` on a free loopback port, killed when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
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

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn services(s: &Server) -> ServiceList {
    s.http().get(format!("{}/v1/services", s.url)).send().await.unwrap().json().await.unwrap()
}

async fn events(s: &Server) -> ServiceEventList {
    s.http().get(format!("{}/v1/services/events", s.url)).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_listener_is_discovered_and_its_changes_recorded() {
    let s = Server::start_with("[discovery]\ninterval_seconds = 1\n").await;
    let mut py = Some(HttpServer::start());
    let (port, pid) = {
        let p = py.as_ref().unwrap();
        (p.port, p.child.id())
    };

    // Found, with its pid and command line.
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let list = services(&s).await;
        if let Some(sv) = list.services.iter().find(|sv| sv.ports.iter().any(|p| p.port == port)) {
            break sv.clone();
        }
        assert!(Instant::now() < deadline, "the listener on {port} was never discovered: {list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(found.pids.contains(&pid), "{found:?}");
    let proc = found.processes.iter().find(|p| p.pid == pid).unwrap();
    assert!(proc.cmdline.iter().any(|a| a == "http.server"), "{proc:?}");
    assert!(found.ports.iter().any(|p| p.port == port && p.address == "127.0.0.1"), "{found:?}");

    // The CLI lists it too, and shows it by id.
    for args in [vec!["services"], vec!["services", "show", found.id.as_str()]] {
        let out = Command::new(common::bin())
            .args(&args)
            .env("SUPERSERVER_URL", &s.url)
            .env("SUPERSERVER_API_KEY", &s.admin_key)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains(&found.id), "{args:?}: {stdout}");
    }
    // On the map, and in detail by id.
    let map: serde_json::Value =
        s.http().get(format!("{}/v1/services/map", s.url)).send().await.unwrap().json().await.unwrap();
    assert!(map["nodes"].as_array().unwrap().iter().any(|n| n["id"] == found.id.as_str()), "{map}");
    assert!(map["edges"].is_array());
    let detail = s.http().get(format!("{}/v1/services/{}", s.url, found.id)).send().await.unwrap();
    assert_eq!(detail.status(), 200);
    let missing = s.http().get(format!("{}/v1/services/process:nothing:1", s.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // Appeared, then gone once it stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events(&s).await.events.iter().any(|e| e.service == found.id && e.kind == ChangeKind::Appeared) {
        assert!(Instant::now() < deadline, "no `appeared` event for {}", found.id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    py.take();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !events(&s).await.events.iter().any(|e| e.service == found.id && e.kind == ChangeKind::Gone) {
        assert!(Instant::now() < deadline, "no `gone` event for {}", found.id);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!services(&s).await.services.iter().any(|sv| sv.id == found.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_the_hosts_services() {
    let s = Server::start().await;
    s.client
        .create_tenant(&CreateTenantRequest { name: "acme".into(), plan: Some("team".into()), ..Default::default() })
        .await
        .unwrap();
    let owner = s
        .client
        .create_key(&CreateKeyRequest { tenant: Some("acme".into()), role: Some(Role::Owner), ..Default::default() })
        .await
        .unwrap();
    for path in ["/v1/services", "/v1/services/map", "/v1/services/events", "/v1/services/container:x"] {
        let res = http_with_key(&owner.key).get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
    assert_eq!(s.http().get(format!("{}/v1/services", s.url)).send().await.unwrap().status(), 200);
}

/// Waits until `pred` holds for the service list.
async fn wait_for(s: &Server, what: &str, pred: impl Fn(&ServiceList) -> bool) -> ServiceList {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = services(s).await;
        if pred(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {list:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_container_is_discovered_with_ports_labels_and_state_changes() {
    let s = Server::start_with("[discovery]\ninterval_seconds = 1\n").await;
    // Labels as compose writes them, and a hostile-looking label value, which is data.
    let c = Container::run(
        "ss-test-discovery-web",
        &[
            "-p",
            "127.0.0.1::8080",
            "--label",
            "com.docker.compose.project=shop",
            "--label",
            "com.docker.compose.service=web",
            "--label",
            "com.docker.compose.depends_on=db:service_started:false",
            "--label",
            "note=<script>alert(1)</script>",
        ],
    );
    let id = format!("container:{}", c.name);
    let list = wait_for(&s, "discovering the container", |l| {
        l.services.iter().any(|sv| sv.id == id && sv.container.as_ref().is_some_and(|k| k.state == "running"))
    })
    .await;
    let sv = list.services.iter().find(|sv| sv.id == id).unwrap();
    let info = sv.container.as_ref().unwrap();
    assert_eq!(info.id, c.id);
    assert_eq!(info.image, TESTSVC_IMAGE);
    assert!(info.image_digest.starts_with("sha256:"), "{info:?}");
    let published = info.ports.iter().find(|p| p.port == 8080).expect("port 8080 exposed");
    assert!(published.host_port.is_some_and(|p| p > 0), "{published:?}");
    let compose = info.compose.as_ref().expect("compose labels read");
    assert_eq!((compose.project.as_str(), compose.service.as_str()), ("shop", "web"));
    assert_eq!(compose.depends_on[0].service, "db");
    assert_eq!(info.labels["note"], "<script>alert(1)</script>");
    assert!(info.pid.is_some(), "{info:?}");

    // Stopping it is a state change, recorded as an event.
    c.docker("stop -t 1");
    wait_for(&s, "seeing the container exited", |l| {
        l.services.iter().any(|sv| sv.id == id && sv.container.as_ref().is_some_and(|k| k.state == "exited"))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let evs = events(&s).await.events;
        if let Some(e) = evs.iter().find(|e| e.service == id && e.kind == ChangeKind::StateChanged) {
            assert_eq!(e.before.as_deref(), Some("running"));
            assert_eq!(e.after.as_deref(), Some("exited"));
            break;
        }
        assert!(Instant::now() < deadline, "no state_changed event for {id}: {evs:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
