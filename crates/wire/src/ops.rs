//! Wire types of host discovery (`/v1/services`, `/v1/services/map`): what runs
//! on the host, how it connects, and what changed between two looks.
//!
//! Produced by `superserver-ops`; every string in here (container names, labels,
//! command lines) comes from the host and is untrusted data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything discovery found on the host at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Discovered services, sorted by id.
    pub services: Vec<Service>,
    /// Relations between services, sorted.
    pub edges: Vec<Edge>,
    /// Why a source was skipped or incomplete ("docker socket absent", "systemd not running").
    pub notes: Vec<String>,
}

/// What a service is backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// A Docker container (id `container:<name>`).
    Container,
    /// A systemd service unit (id `unit:<name>`).
    Unit,
    /// A host process with listening sockets (id `process:<exe basename>:<first port>`).
    Process,
}

/// One discovered service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    /// Stable id: `container:<name>`, `unit:<name>` or `process:<exe basename>:<lowest listening port>`.
    pub id: String,
    pub kind: ServiceKind,
    /// Human name: the container name, the unit name or the executable's basename.
    pub name: String,
    /// Sockets the service listens on (TCP) or is bound to (UDP), sorted.
    pub ports: Vec<ListenPort>,
    /// Host pids of the service's processes that own sockets, sorted.
    pub pids: Vec<u32>,
    /// Those processes.
    pub processes: Vec<ProcessInfo>,
    /// Set for a container service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    /// Set for a systemd unit service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitInfo>,
}

/// Transport protocol of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// A listening TCP or bound UDP socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct ListenPort {
    pub proto: Proto,
    /// Bound address (`0.0.0.0` / `::` for all).
    pub address: String,
    pub port: u16,
}

/// A host process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProcessInfo {
    pub pid: u32,
    /// `Name:` from `/proc/<pid>/status`.
    pub name: String,
    /// Executable path (the target of `/proc/<pid>/exe`), if readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Command line as argv.
    pub cmdline: Vec<String>,
    /// Real uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// User name of `uid` from the host's `/etc/passwd`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The process's cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Full id of the Docker container the process runs in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

/// Docker's view of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContainerInfo {
    /// Full 64-hex container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference the container was created from.
    pub image: String,
    /// Image id (`sha256:…`).
    pub image_id: String,
    /// First repo digest of the image, or the image id for a local image without one.
    pub image_digest: String,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead` …
    pub state: String,
    /// Docker health status (`starting`, `healthy`, `unhealthy`) if the image has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub restart_count: u64,
    /// Start time as Docker reports it (RFC 3339), if it ever started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Main pid on the host while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Exposed ports and where they are published.
    pub ports: Vec<ContainerPort>,
    /// Networks the container is attached to.
    pub networks: Vec<ContainerNetwork>,
    pub labels: BTreeMap<String, String>,
    /// Set when the container belongs to a compose project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeInfo>,
}

/// A container port, exposed and possibly published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct ContainerPort {
    pub proto: Proto,
    /// Port inside the container.
    pub port: u16,
    /// Host address it is published on (empty string: all addresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Host port it is published on; absent if only exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
}

/// A network a container is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct ContainerNetwork {
    pub name: String,
    /// The container's address on it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// Compose labels of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComposeInfo {
    pub project: String,
    pub service: String,
    /// From `com.docker.compose.depends_on` (`svc:condition:restart,…`).
    pub depends_on: Vec<ComposeDependency>,
}

/// One entry of a compose `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComposeDependency {
    /// Compose service name depended on.
    pub service: String,
    /// `service_started`, `service_healthy`, `service_completed_successfully`.
    pub condition: String,
    /// Whether the dependent is restarted when the dependency is.
    pub restart: bool,
}

/// systemd's view of a service unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnitInfo {
    /// Unit name, e.g. `nginx.service`.
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
}

/// What relates two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Established TCP connections from `from` to a listening port of `to`.
    Tcp,
    /// Both containers are on the same user-defined Docker network (undirected; `from` < `to`).
    Network,
    /// Compose `depends_on`: `from` depends on `to`.
    DependsOn,
}

/// A relation between two services.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Edge {
    pub kind: EdgeKind,
    /// Service id.
    pub from: String,
    /// Service id.
    pub to: String,
    /// Number of established connections (`tcp`), else 1.
    pub count: u32,
    /// The port (`tcp`), network name (`network`) or condition (`depends_on`).
    pub detail: String,
}

/// Kind of a change between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Appeared,
    Gone,
    /// Start time or restart count changed, or a process service runs as new pids.
    Restarted,
    /// Container state (running, exited …) or unit active/sub state changed.
    StateChanged,
    HealthChanged,
    ImageChanged,
}

/// One change of a service between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    pub kind: ChangeKind,
    /// Service id.
    pub service: String,
    /// The relevant value(s) before, absent for `appeared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The relevant value(s) after, absent for `gone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `GET /v1/services`: the latest look at the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceList {
    /// When discovery last looked (unix ms); 0 before its first look.
    pub discovered_at_ms: u64,
    pub services: Vec<Service>,
    /// Sources skipped or incomplete, and why.
    pub notes: Vec<String>,
}

/// One node of the service map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapNode {
    pub id: String,
    pub kind: ServiceKind,
    pub name: String,
    /// Container state or unit active state; `running` for a listening process.
    pub state: String,
    /// Container health, when the container has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// `GET /v1/services/map`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceMap {
    pub discovered_at_ms: u64,
    pub nodes: Vec<MapNode>,
    pub edges: Vec<Edge>,
}

/// One recorded change of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceEvent {
    pub id: i64,
    pub at_ms: i64,
    pub service: String,
    pub kind: ChangeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `GET /v1/services/events`, `GET /v1/services/{id}` history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceEventList {
    pub events: Vec<ServiceEvent>,
}

/// `GET /v1/services/{id}`: the service now and its recent changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceDetail {
    pub service: Service,
    /// Edges from or to it.
    pub edges: Vec<Edge>,
    /// Its latest changes, newest first.
    pub events: Vec<ServiceEvent>,
    /// Its health now (`GET /v1/services/{id}/health` has the details).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::HealthSummary>,
}
