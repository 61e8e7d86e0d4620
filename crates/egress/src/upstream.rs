//! Where an allowed connection goes: name resolution (the configured host
//! table first, then the host's resolver), the special-address guard, and
//! the connect itself.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Addresses that are never reached by name or address unless a rule names
/// them explicitly: this host, private networks, link-local (cloud metadata
/// at 169.254.169.254), loopback, multicast and reserved ranges.
pub fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_special_v4(v4),
            None => is_special_v6(v6),
        },
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking; the sandboxes' DNS answers
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let seg0 = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg0 & 0xfe00) == 0xfc00 // unique local
        || (seg0 & 0xffc0) == 0xfe80 // link local
}

/// The host's own addresses, refreshed at most once a minute.
#[derive(Default)]
pub struct HostAddresses {
    cached: Mutex<Option<(Instant, Vec<IpAddr>)>>,
}

impl HostAddresses {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = c.as_ref().is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(60));
        if !fresh {
            let addrs = nix::ifaddrs::getifaddrs()
                .map(|list| {
                    list.filter_map(|i| i.address)
                        .filter_map(|a| {
                            a.as_sockaddr_in()
                                .map(|s| IpAddr::V4(s.ip()))
                                .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                        })
                        .collect()
                })
                .unwrap_or_default();
            *c = Some((Instant::now(), addrs));
        }
        c.as_ref().is_some_and(|(_, addrs)| addrs.contains(&ip))
    }
}

/// How a destination resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub addr: SocketAddr,
    /// From the configured host table (trusted: the special-address guard
    /// does not apply).
    pub configured: bool,
}

/// Resolves names for the proxy.
pub struct Resolver {
    pub table: HashMap<String, IpAddr>,
    pub timeout: Duration,
}

impl Resolver {
    /// The address `name:port` reaches: the table's, or the host
    /// resolver's first (IPv4 preferred).
    pub async fn resolve(&self, name: &str, port: u16) -> Result<Resolved, String> {
        if let Some(ip) = self.table.get(name) {
            return Ok(Resolved { addr: SocketAddr::new(*ip, port), configured: true });
        }
        let lookup = tokio::time::timeout(self.timeout, tokio::net::lookup_host((name, port))).await;
        let addrs: Vec<SocketAddr> = match lookup {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => return Err(format!("cannot resolve {name}: {e}")),
            Err(_) => return Err(format!("resolving {name} timed out")),
        };
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .map(|a| Resolved { addr: *a, configured: false })
            .ok_or_else(|| format!("{name} has no address"))
    }
}

/// Connects with a timeout; the error says where and why.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("connect to {addr} timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "198.18.0.5",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_table_wins() {
        let r = Resolver {
            table: HashMap::from([("api.example.test".into(), "127.0.0.1".parse().unwrap())]),
            timeout: Duration::from_secs(1),
        };
        let got = r.resolve("api.example.test", 8443).await.unwrap();
        assert_eq!(got.addr, "127.0.0.1:8443".parse().unwrap());
        assert!(got.configured);
        assert!(r.resolve("no-such-name.invalid", 80).await.is_err());
    }
}
