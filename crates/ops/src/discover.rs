//! One discovery pass: read `/proc`, the Docker engine and systemd
//! concurrently, and assemble services and edges.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{ContainerInfo, ListenPort, ProcessInfo, Proto, Service, ServiceKind, Snapshot, UnitInfo};
use crate::procnet::{Socket, SocketState};
use crate::procs::SocketOwners;
use crate::{docker, edges, procnet, procs, systemd};

/// Where discovery looks. The defaults are the real host paths.
#[derive(Debug, Clone)]
pub struct Options {
    /// procfs mount (default `/proc`).
    pub proc_root: PathBuf,
    /// Docker engine socket (default `/var/run/docker.sock`).
    pub docker_socket: PathBuf,
    /// Exists when systemd is init (default `/run/systemd/system`).
    pub systemd_dir: PathBuf,
    /// For user names of uids (default `/etc/passwd`).
    pub passwd: PathBuf,
    /// Network namespaces whose first process has this in its cgroup path
    /// are left out (the server's own sandboxes: reading a namespace's
    /// socket tables walks the kernel's global tables, so each costs).
    pub ignore_cgroup: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            proc_root: "/proc".into(),
            docker_socket: "/var/run/docker.sock".into(),
            systemd_dir: "/run/systemd/system".into(),
            passwd: "/etc/passwd".into(),
            ignore_cgroup: None,
        }
    }
}

/// A socket and the network namespace (inode) it was read in.
#[derive(Debug, Clone)]
pub struct NsSocket {
    pub netns: u64,
    pub socket: Socket,
}

/// What `/proc` told: sockets of every network namespace and who owns them.
#[derive(Debug, Clone, Default)]
pub struct HostScan {
    pub sockets: Vec<NsSocket>,
    pub owners: SocketOwners,
    pub notes: Vec<String>,
}

impl HostScan {
    /// Pids holding the socket.
    pub fn holders(&self, s: &Socket) -> &[u32] {
        self.owners.inode_pids.get(&s.inode).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Scans sockets of every network namespace and maps them to pids. Never fails;
/// problems become notes.
pub fn scan_host(proc_root: &Path, ignore_cgroup: Option<&str>) -> HostScan {
    scan_host_cached(proc_root, ignore_cgroup, &mut SocketCache::default())
}

/// How many looks a network namespace's socket tables are reused for
/// before they are read again (the host's own are read every look).
///
/// Reading a namespace's `/proc/<pid>/net/tcp` walks the kernel's *global*
/// connection hash tables, sized by the host's memory, once per table and
/// per namespace: with dozens of containers that walk is nearly all of
/// discovery's cost. Listening sockets rarely change while a container
/// runs, and a namespace whose process changed is read again at once.
pub const NETNS_REFRESH_LOOKS: u64 = 6;

/// Socket tables of other network namespaces, kept between looks.
#[derive(Debug, Default)]
pub struct SocketCache {
    look: u64,
    entries: HashMap<u64, CachedNetns>,
    reads: u64,
}

impl SocketCache {
    /// How many namespaces' tables were read from the kernel so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// Whether the tables of `netns` are held.
    pub fn holds(&self, netns: u64) -> bool {
        self.entries.contains_key(&netns)
    }
}

#[derive(Debug)]
struct CachedNetns {
    /// The process the tables were read through.
    pid: u32,
    read_at_look: u64,
    sockets: Vec<Socket>,
}

/// The sockets of the namespace of the process at `pid_dir`: TCP through a
/// netlink dump (one walk of the kernel's tables per address family), UDP
/// from its (cheap) text tables; all from the text tables where the dump
/// is refused.
fn read_netns(pid_dir: &Path) -> crate::Result<Vec<Socket>> {
    let net = pid_dir.join("net");
    match crate::sockdiag::tcp_sockets(&pid_dir.join("ns/net")) {
        Ok(mut tcp) => {
            tcp.extend(procnet::read_tables(&net, &[("udp", Proto::Udp), ("udp6", Proto::Udp)])?);
            Ok(tcp)
        }
        Err(_) => procnet::read_sockets(&net),
    }
}

/// The socket tables of each `(netns, pid)`, read on as many threads as
/// there are CPUs (each read is a walk of the kernel's tables).
fn read_in_parallel(proc_root: &Path, due: &[(u64, u32)]) -> Vec<crate::Result<Vec<Socket>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(due.len().max(1));
    let chunk = due.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = due
            .chunks(chunk)
            .map(|part| {
                let handle = s.spawn(move || {
                    part.iter().map(|(_, pid)| read_netns(&proc_root.join(pid.to_string()))).collect::<Vec<_>>()
                });
                (part.len(), handle)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| {
                // One result per namespace, whatever happened to the thread.
                h.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| {
                            Err(crate::Error::Malformed {
                                what: "socket tables".into(),
                                line: String::new(),
                                reason: "a reader thread panicked".into(),
                            })
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// [`scan_host`] reusing `cache` for namespaces other than the host's.
pub fn scan_host_cached(proc_root: &Path, ignore_cgroup: Option<&str>, cache: &mut SocketCache) -> HostScan {
    cache.look += 1;
    let host_netns = procs::link_inode(&proc_root.join("1/ns/net"), "net:[");
    let mut scan = HostScan::default();
    match procs::scan_sockets(proc_root, ignore_cgroup) {
        Ok(owners) => scan.owners = owners,
        Err(e) => {
            scan.notes.push(format!("processes not scanned: {e}"));
            return scan;
        }
    }
    let look = cache.look;
    cache.entries.retain(|ns, _| scan.owners.netns_pid.contains_key(ns));
    let mut due: Vec<(u64, u32)> = Vec::new();
    for (&netns, &pid) in &scan.owners.netns_pid {
        if Some(netns) != host_netns {
            if let Some(c) = cache.entries.get(&netns) {
                let same_process = scan.owners.pid_netns.get(&c.pid) == Some(&netns);
                if same_process && look - c.read_at_look < NETNS_REFRESH_LOOKS {
                    scan.sockets.extend(c.sockets.iter().map(|s| NsSocket { netns, socket: s.clone() }));
                    continue;
                }
            }
        }
        due.push((netns, pid));
    }
    cache.reads += due.len() as u64;
    for ((netns, pid), read) in due.iter().copied().zip(read_in_parallel(proc_root, &due)) {
        match read {
            Ok(sockets) => {
                scan.sockets.extend(sockets.iter().map(|s| NsSocket { netns, socket: s.clone() }));
                if Some(netns) != host_netns {
                    // Spread the namespaces' next reads over the following
                    // looks (a namespace first seen is due again sooner), so
                    // no look reads them all at once.
                    let first = !cache.entries.contains_key(&netns);
                    let stagger = if first { netns % NETNS_REFRESH_LOOKS } else { 0 };
                    let read_at_look = look.saturating_sub(stagger);
                    cache.entries.insert(netns, CachedNetns { pid, read_at_look, sockets });
                }
            }
            Err(e) => scan.notes.push(format!("sockets of network namespace {netns} not read: {e}")),
        }
    }
    scan
}

/// Discovers everything on the host. Never fails: a source that cannot be read
/// (no Docker socket, no systemd) is left out with a note saying why.
pub async fn discover(opts: &Options) -> Snapshot {
    look(opts, Look::Full(Arc::new(Mutex::new(SocketCache::default())))).await
}

/// What one look covers.
#[derive(Debug, Clone)]
pub enum Look {
    /// Containers and units only: no processes, sockets or connections.
    /// Quick, for a first picture while the full look runs.
    ServicesOnly,
    /// Everything, reusing (and updating) the cached socket tables.
    Full(Arc<Mutex<SocketCache>>),
}

/// One look at the host.
pub async fn look(opts: &Options, what: Look) -> Snapshot {
    let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let (proc_root, ignore) = (opts.proc_root.clone(), opts.ignore_cgroup.clone());
    let host = tokio::task::spawn_blocking(move || match what {
        Look::ServicesOnly => HostScan::default(),
        Look::Full(cache) => {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            scan_host_cached(&proc_root, ignore.as_deref(), &mut cache)
        }
    });
    let containers = async {
        let docker = docker::connect(&opts.docker_socket).await?;
        docker::list_containers(&docker).await
    };
    let units = systemd::list_units(&opts.systemd_dir);
    let (host, containers, units) = tokio::join!(host, containers, units);

    let mut notes = Vec::new();
    let host =
        host.unwrap_or_else(|e| HostScan { notes: vec![format!("process scan failed: {e}")], ..Default::default() });
    notes.extend(host.notes.iter().cloned());
    let containers = containers.unwrap_or_else(|e| {
        notes.push(e.to_string());
        Vec::new()
    });
    let units = units.unwrap_or_else(|e| {
        notes.push(e.to_string());
        Vec::new()
    });

    let opts = opts.clone();
    let built = tokio::task::spawn_blocking(move || {
        let users = procs::read_users(&opts.passwd);
        build(&opts.proc_root, &host, containers, units, &users)
    })
    .await;
    let (services, edges) = built.unwrap_or_else(|e| {
        notes.push(format!("assembling services failed: {e}"));
        (Vec::new(), Vec::new())
    });
    Snapshot { at_ms, services, edges, notes }
}

/// Assembles services from the scans, then the edges between them.
fn build(
    proc_root: &Path,
    host: &HostScan,
    containers: Vec<ContainerInfo>,
    units: Vec<UnitInfo>,
    users: &HashMap<u32, String>,
) -> (Vec<Service>, Vec<crate::model::Edge>) {
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut by_container: HashMap<String, String> = HashMap::new();
    let mut published: HashMap<u16, String> = HashMap::new();
    let mut main_pids: BTreeSet<u32> = BTreeSet::new();
    for c in containers {
        let id = format!("container:{}", c.name);
        by_container.insert(c.id.clone(), id.clone());
        for p in &c.ports {
            if let Some(hp) = p.host_port {
                published.insert(hp, id.clone());
            }
        }
        main_pids.extend(c.pid);
        services.insert(id.clone(), new_service(id, ServiceKind::Container, c.name.clone(), Some(c), None));
    }
    let mut by_unit: HashMap<String, String> = HashMap::new();
    let mut unit_main: HashMap<u32, String> = HashMap::new();
    for u in units.into_iter().filter(|u| u.load_state == "loaded") {
        let id = format!("unit:{}", u.name);
        by_unit.insert(u.name.clone(), id.clone());
        if let Some(p) = u.main_pid {
            unit_main.insert(p, id.clone());
            main_pids.insert(p);
        }
        services.insert(id.clone(), new_service(id, ServiceKind::Unit, u.name.clone(), None, Some(u)));
    }

    // Listening sockets per pid.
    let mut listens: BTreeMap<u32, BTreeSet<ListenPort>> = BTreeMap::new();
    let mut interesting: BTreeSet<u32> = main_pids;
    for s in &host.sockets {
        for &pid in host.holders(&s.socket) {
            interesting.insert(pid);
            if s.socket.state != SocketState::Established {
                listens.entry(pid).or_default().insert(listen_port(&s.socket));
            }
        }
    }

    // Assign every interesting pid to a service.
    let mut pid_service: HashMap<u32, String> = HashMap::new();
    for pid in interesting {
        let Some(info) = procs::read_process(proc_root, pid, users) else { continue };
        let ports = listens.remove(&pid).unwrap_or_default();
        let exe_base = exe_basename(&info);
        let owner = info
            .container_id
            .as_ref()
            .and_then(|c| by_container.get(c).cloned())
            .or_else(|| unit_main.get(&pid).cloned())
            .or_else(|| unit_of_cgroup(info.cgroup.as_deref()).and_then(|u| by_unit.get(u).cloned()))
            .or_else(|| {
                // docker-proxy forwards a published port: it belongs to that container.
                (exe_base == "docker-proxy")
                    .then(|| ports.iter().find_map(|p| published.get(&p.port).cloned()))
                    .flatten()
            });
        let id = match owner {
            Some(id) => id,
            None => {
                let Some(first) = ports.iter().map(|p| p.port).min() else { continue };
                let id = format!("process:{exe_base}:{first}");
                services
                    .entry(id.clone())
                    .or_insert_with(|| new_service(id.clone(), ServiceKind::Process, exe_base.clone(), None, None));
                id
            }
        };
        let Some(svc) = services.get_mut(&id) else { continue };
        svc.ports.extend(ports);
        svc.pids.push(pid);
        svc.processes.push(info);
        pid_service.insert(pid, id);
    }

    for svc in services.values_mut() {
        if let Some(c) = &svc.container {
            for p in c.ports.iter().filter(|p| p.host_port.is_some()) {
                let address = p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
                svc.ports.push(ListenPort { proto: p.proto, address, port: p.host_port.unwrap_or(p.port) });
            }
        }
        svc.ports.sort();
        svc.ports.dedup();
        svc.pids.sort_unstable();
        svc.processes.sort_by_key(|p| p.pid);
    }
    let services: Vec<Service> = services.into_values().collect();
    let edges = edges::edges(&services, host, &pid_service);
    (services, edges)
}

fn new_service(
    id: String,
    kind: ServiceKind,
    name: String,
    container: Option<ContainerInfo>,
    unit: Option<UnitInfo>,
) -> Service {
    Service { id, kind, name, ports: Vec::new(), pids: Vec::new(), processes: Vec::new(), container, unit }
}

fn listen_port(s: &Socket) -> ListenPort {
    ListenPort { proto: s.proto, address: edges::canonical(s.local.ip()).to_string(), port: s.local.port() }
}

/// Basename of the executable, else the process name.
fn exe_basename(p: &ProcessInfo) -> String {
    p.exe
        .as_deref()
        .map(|e| e.trim_end_matches(" (deleted)"))
        .and_then(|e| Path::new(e).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.name.clone())
}

/// `…/nginx.service` → `nginx.service`.
fn unit_of_cgroup(cgroup: Option<&str>) -> Option<&str> {
    cgroup?.rsplit('/').find(|s| s.ends_with(".service"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/proc`: pid 1 in the host's namespace, `pid` in namespace
    /// 2000 holding socket 555, with `ports` listening there.
    fn fake_proc(root: &Path, pid: u32, ports: &[u16]) {
        use std::os::unix::fs::symlink;
        for (p, ns) in [(1u32, 1000u64), (pid, 2000)] {
            let dir = root.join(p.to_string());
            std::fs::create_dir_all(dir.join("ns")).unwrap();
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::create_dir_all(dir.join("net")).unwrap();
            let _ = std::fs::remove_file(dir.join("ns/net"));
            symlink(format!("net:[{ns}]"), dir.join("ns/net")).unwrap();
            std::fs::write(dir.join("cgroup"), "0::/\n").unwrap();
        }
        let _ = std::fs::remove_file(root.join(format!("{pid}/fd/3")));
        std::os::unix::fs::symlink("socket:[555]", root.join(format!("{pid}/fd/3"))).unwrap();
        let mut tcp =
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
                .to_string();
        for (i, port) in ports.iter().enumerate() {
            tcp.push_str(&format!(
                "   {i}: 0100007F:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0\n"
            ));
        }
        std::fs::write(root.join(format!("{pid}/net/tcp")), tcp).unwrap();
        std::fs::write(root.join("1/net/tcp"), "header\n").unwrap();
    }

    fn ports(scan: &HostScan) -> Vec<u16> {
        let mut p: Vec<u16> = scan.sockets.iter().filter(|s| s.netns == 2000).map(|s| s.socket.local.port()).collect();
        p.sort_unstable();
        p
    }

    #[test]
    fn other_namespaces_socket_tables_are_reused_until_due_or_their_process_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake_proc(root, 42, &[80]);
        let mut cache = SocketCache::default();
        let scan = scan_host_cached(root, None, &mut cache);
        assert_eq!(ports(&scan), [80]);
        assert_eq!(cache.reads(), 2, "the host's namespace and namespace 2000");
        assert!(cache.holds(2000) && !cache.holds(1000), "the host's own are never cached");

        // A new listener is not seen until the namespace is due again.
        fake_proc(root, 42, &[80, 443]);
        let mut looks = 1;
        loop {
            let reads = cache.reads();
            let scan = scan_host_cached(root, None, &mut cache);
            looks += 1;
            if ports(&scan) == [80, 443] {
                break;
            }
            assert_eq!(cache.reads(), reads + 1, "only the host's tables were read");
            assert!(looks <= NETNS_REFRESH_LOOKS + 1, "namespace 2000 was never read again");
        }

        // Another process in the namespace: read again at once.
        fake_proc(root, 42, &[80]);
        let scan = scan_host_cached(root, None, &mut cache);
        assert_eq!(ports(&scan), [80, 443], "still cached");
        std::fs::remove_dir_all(root.join("42")).unwrap();
        fake_proc(root, 43, &[8080]);
        let reads = cache.reads();
        let scan = scan_host_cached(root, None, &mut cache);
        assert_eq!(ports(&scan), [8080]);
        assert_eq!(cache.reads(), reads + 2);

        // A namespace that is gone is forgotten.
        std::fs::remove_dir_all(root.join("43")).unwrap();
        scan_host_cached(root, None, &mut cache);
        assert!(!cache.holds(2000));
    }

    #[test]
    fn unit_from_cgroup_path() {
        assert_eq!(unit_of_cgroup(Some("/system.slice/nginx.service")), Some("nginx.service"));
        assert_eq!(unit_of_cgroup(Some("/system.slice/php-fpm.service/pool")), Some("php-fpm.service"));
        assert_eq!(unit_of_cgroup(Some("/user.slice")), None);
        assert_eq!(unit_of_cgroup(None), None);
    }
}
