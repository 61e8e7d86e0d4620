//! Relations between discovered services: established TCP connections,
//! shared user-defined Docker networks and compose `depends_on`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use crate::discover::HostScan;
use crate::model::{Edge, EdgeKind, Service};
use crate::procnet::SocketState;

/// Docker's built-in networks, which do not make containers related.
const DEFAULT_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// An IPv4-mapped IPv6 address as IPv4, anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// All edges, sorted.
pub fn edges(services: &[Service], host: &HostScan, pid_service: &HashMap<u32, String>) -> Vec<Edge> {
    let mut out = tcp_edges(services, host, pid_service);
    out.extend(network_edges(services));
    out.extend(depends_on_edges(services));
    out.sort();
    out
}

struct Listener<'a> {
    netns: u64,
    ip: IpAddr,
    port: u16,
    service: &'a str,
}

fn tcp_edges(services: &[Service], host: &HostScan, pid_service: &HashMap<u32, String>) -> Vec<Edge> {
    let owner = |pids: &[u32]| pids.iter().find_map(|p| pid_service.get(p).map(String::as_str));
    // Listening TCP sockets, and the addresses each network namespace has.
    let mut listeners: Vec<Listener> = Vec::new();
    let mut addrs: HashMap<u64, HashSet<IpAddr>> = HashMap::new();
    for s in &host.sockets {
        let ip = canonical(s.socket.local.ip());
        if !ip.is_unspecified() && !ip.is_loopback() {
            addrs.entry(s.netns).or_default().insert(ip);
        }
        if s.socket.state == SocketState::Listen && s.socket.proto == crate::model::Proto::Tcp {
            if let Some(service) = owner(host.holders(&s.socket)) {
                listeners.push(Listener { netns: s.netns, ip, port: s.socket.local.port(), service });
            }
        }
    }
    // Container addresses belong to the namespace of the container's processes.
    for svc in services {
        let Some(c) = &svc.container else { continue };
        let Some(ns) = svc.pids.iter().find_map(|p| host.owners.pid_netns.get(p)) else { continue };
        for ip in c.networks.iter().filter_map(|n| n.ip.as_deref()?.parse::<IpAddr>().ok()) {
            addrs.entry(*ns).or_default().insert(ip);
        }
    }
    let published: HashMap<u16, &str> = services
        .iter()
        .filter_map(|s| s.container.as_ref().map(|c| (s.id.as_str(), c)))
        .flat_map(|(id, c)| c.ports.iter().filter_map(move |p| Some((p.host_port?, id))))
        .collect();

    let accepts = |l: &Listener, netns: u64, ip: IpAddr, port: u16| {
        if l.port != port {
            return false;
        }
        let same_ns = l.netns == netns;
        if ip.is_loopback() {
            return same_ns && (l.ip == ip || l.ip.is_unspecified());
        }
        l.ip == ip || (l.ip.is_unspecified() && addrs.get(&l.netns).is_some_and(|a| a.contains(&ip)))
    };

    let mut counts: BTreeMap<(String, String, u16), u32> = BTreeMap::new();
    for s in host.sockets.iter().filter(|s| s.socket.state == SocketState::Established) {
        let Some(from) = owner(host.holders(&s.socket)) else { continue };
        let local = canonical(s.socket.local.ip());
        // The server's side of an accepted connection is not an outgoing one.
        if listeners.iter().any(|l| accepts(l, s.netns, local, s.socket.local.port()) && l.service == from) {
            continue;
        }
        let (ip, port) = (canonical(s.socket.remote.ip()), s.socket.remote.port());
        let to = listeners.iter().find(|l| accepts(l, s.netns, ip, port)).map(|l| l.service).or_else(|| {
            published.get(&port).copied().filter(|_| addrs.values().any(|a| a.contains(&ip)) || ip.is_loopback())
        });
        if let Some(to) = to.filter(|to| *to != from) {
            *counts.entry((from.to_owned(), to.to_owned(), port)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|((from, to, port), count)| Edge { kind: EdgeKind::Tcp, from, to, count, detail: port.to_string() })
        .collect()
}

fn network_edges(services: &[Service]) -> Vec<Edge> {
    let mut by_network: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for svc in services {
        let Some(c) = &svc.container else { continue };
        for n in c.networks.iter().filter(|n| !DEFAULT_NETWORKS.contains(&n.name.as_str())) {
            by_network.entry(n.name.as_str()).or_default().push(svc.id.as_str());
        }
    }
    let mut out = Vec::new();
    for (network, mut members) in by_network {
        members.sort_unstable();
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                out.push(Edge {
                    kind: EdgeKind::Network,
                    from: (*a).to_owned(),
                    to: (*b).to_owned(),
                    count: 1,
                    detail: network.to_owned(),
                });
            }
        }
    }
    out
}

fn depends_on_edges(services: &[Service]) -> Vec<Edge> {
    let compose: Vec<(&str, &crate::model::ComposeInfo)> =
        services.iter().filter_map(|s| Some((s.id.as_str(), s.container.as_ref()?.compose.as_ref()?))).collect();
    let mut out = Vec::new();
    for (from, c) in &compose {
        for dep in &c.depends_on {
            for (to, other) in &compose {
                if other.project == c.project && other.service == dep.service {
                    out.push(Edge {
                        kind: EdgeKind::DependsOn,
                        from: (*from).to_owned(),
                        to: (*to).to_owned(),
                        count: 1,
                        detail: dep.condition.clone(),
                    });
                }
            }
        }
    }
    out
}
