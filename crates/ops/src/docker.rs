//! Containers through the Docker engine API (over the local Unix socket, API
//! version negotiated, so Docker Engine 20.10 / API 1.41 works).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::models::{ContainerInspectResponse, PortMap};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use bollard::Docker;
use futures::future::join_all;

use crate::error::{Error, Result};
use crate::model::{ComposeDependency, ComposeInfo, ContainerInfo, ContainerNetwork, ContainerPort, Proto};

/// Compose project label.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
/// Compose service label.
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
/// Compose `depends_on` label (`svc:condition:restart,…`).
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// Seconds a Docker API request may take.
const TIMEOUT_SECS: u64 = 10;

/// Connects to the engine at `socket` and negotiates the API version.
pub async fn connect(socket: &Path) -> Result<Docker> {
    if !socket.exists() {
        return Err(Error::DockerSocketAbsent(socket.into()));
    }
    let path = socket.to_string_lossy();
    let docker = Docker::connect_with_unix(&path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)?;
    Ok(docker.negotiate_version().await?)
}

/// Lists all containers (running or not) and inspects each, with its image digest.
pub async fn list_containers(docker: &Docker) -> Result<Vec<ContainerInfo>> {
    let summaries = docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).build())).await?;
    let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
    let inspects = join_all(ids.iter().map(|id| docker.inspect_container(id, None::<InspectContainerOptions>))).await;
    let mut digests: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for inspect in inspects {
        // A container removed between list and inspect is simply gone.
        let Ok(inspect) = inspect else { continue };
        let image_id = inspect.image.clone().unwrap_or_default();
        if !digests.contains_key(&image_id) {
            let digest = image_digest(docker, &image_id).await;
            digests.insert(image_id.clone(), digest);
        }
        let digest = digests.get(&image_id).cloned().unwrap_or_default();
        out.push(container_info(inspect, digest));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// First repo digest of an image, or its id if it has none (a local image).
async fn image_digest(docker: &Docker, image_id: &str) -> String {
    match docker.inspect_image(image_id).await {
        Ok(image) => image.repo_digests.and_then(|d| d.into_iter().next()).unwrap_or_else(|| image_id.to_owned()),
        Err(_) => image_id.to_owned(),
    }
}

/// Converts an inspect response into the model.
pub fn container_info(c: ContainerInspectResponse, image_digest: String) -> ContainerInfo {
    let config = c.config.unwrap_or_default();
    let state = c.state.unwrap_or_default();
    let net = c.network_settings.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let mut networks: Vec<ContainerNetwork> = net
        .networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| ContainerNetwork { name, ip: ep.ip_address.filter(|ip| !ip.is_empty()) })
        .collect();
    networks.sort();
    let running = state.running.unwrap_or(false);
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
        image: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        image_digest,
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        health: state.health.and_then(|h| h.status).map(|s| s.to_string()).filter(|s| !s.is_empty() && s != "none"),
        restart_count: c.restart_count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        started_at: state.started_at.filter(|s| !s.starts_with("0001-")),
        pid: state.pid.and_then(|p| u32::try_from(p).ok()).filter(|p| running && *p > 0),
        ports: ports(config.exposed_ports.unwrap_or_default(), net.ports.unwrap_or_default()),
        networks,
        compose: compose_info(&labels),
        labels,
    }
}

/// Exposed ports, each with its host bindings if published.
fn ports(exposed: Vec<String>, published: PortMap) -> Vec<ContainerPort> {
    let mut keys: Vec<String> = exposed;
    keys.extend(published.keys().cloned());
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let Some((port, proto)) = parse_port_key(&key) else { continue };
        let bindings = published.get(&key).cloned().flatten().unwrap_or_default();
        if bindings.is_empty() {
            out.push(ContainerPort { proto, port, host_ip: None, host_port: None });
        }
        for b in bindings {
            let host_port = b.host_port.and_then(|p| p.parse().ok());
            out.push(ContainerPort { proto, port, host_ip: b.host_ip, host_port });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `8080/tcp` → (8080, tcp). Other protocols (sctp) are skipped.
fn parse_port_key(key: &str) -> Option<(u16, Proto)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, proto))
}

/// Compose project, service and `depends_on` from the labels.
pub fn compose_info(labels: &BTreeMap<String, String>) -> Option<ComposeInfo> {
    Some(ComposeInfo {
        project: labels.get(LABEL_PROJECT)?.clone(),
        service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
        depends_on: labels.get(LABEL_DEPENDS_ON).map(|v| parse_depends_on(v)).unwrap_or_default(),
    })
}

/// Parses `svc:condition:restart,…` (condition defaults to `service_started`,
/// restart to false, as compose does when they are left out).
pub fn parse_depends_on(value: &str) -> Vec<ComposeDependency> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|entry| {
            let mut parts = entry.split(':');
            let service = parts.next().filter(|s| !s.is_empty())?.to_owned();
            let condition = parts.next().filter(|s| !s.is_empty()).unwrap_or("service_started").to_owned();
            let restart = parts.next().is_some_and(|r| r.eq_ignore_ascii_case("true"));
            Some(ComposeDependency { service, condition, restart })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortBinding;

    #[test]
    fn depends_on_label() {
        let deps = parse_depends_on("db:service_healthy:true, cache:service_started:false,web,");
        assert_eq!(deps.len(), 3);
        assert_eq!(
            deps[0],
            ComposeDependency { service: "db".into(), condition: "service_healthy".into(), restart: true }
        );
        assert_eq!(deps[1].service, "cache");
        assert!(!deps[1].restart);
        assert_eq!(deps[2].condition, "service_started");
        assert!(parse_depends_on("").is_empty());
    }

    #[test]
    fn compose_labels() {
        let mut labels = BTreeMap::new();
        assert!(compose_info(&labels).is_none());
        labels.insert(LABEL_PROJECT.into(), "shop".into());
        labels.insert(LABEL_SERVICE.into(), "api".into());
        labels.insert(LABEL_DEPENDS_ON.into(), "web:service_started:false".into());
        let c = compose_info(&labels).unwrap();
        assert_eq!((c.project.as_str(), c.service.as_str()), ("shop", "api"));
        assert_eq!(c.depends_on[0].service, "web");
    }

    #[test]
    fn exposed_and_published_ports() {
        let mut map = PortMap::new();
        let b = |ip: &str, port: &str| PortBinding { host_ip: Some(ip.into()), host_port: Some(port.into()) };
        map.insert("8080/tcp".into(), Some(vec![b("127.0.0.1", "32768")]));
        map.insert("53/udp".into(), None);
        let p = ports(vec!["8080/tcp".into(), "9000/tcp".into(), "1/sctp".into()], map);
        assert_eq!(p.len(), 3);
        assert!(p.contains(&ContainerPort {
            proto: Proto::Tcp,
            port: 8080,
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(32768)
        }));
        assert!(p.contains(&ContainerPort { proto: Proto::Tcp, port: 9000, host_ip: None, host_port: None }));
        assert!(p.contains(&ContainerPort { proto: Proto::Udp, port: 53, host_ip: None, host_port: None }));
    }
}
