//! Governed networking: the network namespace of a `policy`-mode sandbox.
//!
//! The namespace is made and configured by the server, on a thread of its
//! own, before the sandbox exists; it belongs to the host's user namespace,
//! so root inside the sandbox has no capability over it and can change
//! neither its routes nor its firewall. Its only interface is `lo`, which
//! also carries the default route and an ordinary-looking address
//! ([`SANDBOX_ADDR`]). nftables rules in the namespace redirect every TCP
//! connection to a non-local address to the proxy listener and every DNS
//! query to the resolver socket — both sockets the server opened inside the
//! namespace and keeps — and drop all other traffic that would leave
//! (UDP other than DNS, ICMP, IPv6). Nothing of it exists outside the
//! namespace: no veth, no host route, no host firewall rule; it goes away
//! with the last descriptor that refers to it.

use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::sys;

/// How a sandbox reaches the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Network {
    /// Loopback only.
    #[default]
    None,
    /// Through the egress proxy only.
    Governed,
}

/// The sandbox's own address, the source of its connections.
pub const SANDBOX_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The resolver named in the sandbox's `resolv.conf` (any non-local address
/// would do: all DNS is redirected).
pub const RESOLVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// Port of the proxy listener on the namespace's loopback.
pub const PROXY_PORT: u16 = 15001;
/// Port of the resolver socket on the namespace's loopback.
pub const DNS_PORT: u16 = 15053;

/// A prepared network namespace and the server's sockets inside it.
#[derive(Debug)]
pub struct GovernedNet {
    netns: OwnedFd,
    /// Accepts every TCP connection the sandbox opens to a non-local address
    /// (and explicit proxy requests to `127.0.0.1:PROXY_PORT`).
    pub tcp: TcpListener,
    /// Receives every DNS query the sandbox sends.
    pub dns: UdpSocket,
}

impl GovernedNet {
    pub fn netns(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }
}

/// The nftables rules of a governed namespace.
fn ruleset() -> String {
    format!(
        "table ip superserver {{\n\
         \tchain to_proxy {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\tip daddr 127.0.0.0/8 return\n\
         \t\tfib daddr type local return\n\
         \t\tudp dport 53 redirect to :{DNS_PORT}\n\
         \t\tmeta l4proto tcp redirect to :{PROXY_PORT}\n\
         \t}}\n\
         \tchain only_loopback {{\n\
         \t\ttype filter hook output priority 0; policy drop;\n\
         \t\tip daddr 127.0.0.0/8 accept\n\
         \t\tfib daddr type local accept\n\
         \t}}\n\
         }}\n\
         table ip6 superserver {{\n\
         \tchain only_loopback {{\n\
         \t\ttype filter hook output priority 0; policy drop;\n\
         \t\tip6 daddr ::1 accept\n\
         \t}}\n\
         }}\n"
    )
}

/// Finds the `nft` program, or says how to get it.
pub fn find_nft() -> Result<PathBuf> {
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain(["/usr/sbin", "/sbin"].into_iter().map(PathBuf::from))
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RuntimeError::Unavailable(
                "governed networking needs nftables: install the `nftables` package (the `nft` program)".into(),
            )
        })
}

/// Makes and configures a governed namespace. Blocking (a few
/// milliseconds); runs on a fresh thread, since joining a namespace is per
/// thread and the thread is thrown away afterwards.
pub fn prepare(nft: &Path) -> Result<GovernedNet> {
    let nft = nft.to_path_buf();
    std::thread::Builder::new()
        .name("netns-prepare".into())
        .spawn(move || prepare_here(&nft))
        .map_err(RuntimeError::Io)?
        .join()
        .map_err(|_| RuntimeError::Setup("network namespace preparation panicked".into()))?
}

fn prepare_here(nft: &Path) -> Result<GovernedNet> {
    let step = |what: &'static str| move |e: io::Error| RuntimeError::Setup(format!("governed network: {what}: {e}"));
    sys::unshare(libc::CLONE_NEWNET).map_err(step("new network namespace"))?;
    sys::interface_up("lo").map_err(step("bring up lo"))?;
    sys::add_host_address("lo:1", SANDBOX_ADDR).map_err(step("address"))?;
    sys::add_default_route("lo").map_err(step("default route"))?;
    apply_rules(nft).map_err(step("nftables rules"))?;
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, PROXY_PORT)).map_err(step("proxy listener"))?;
    tcp.set_nonblocking(true).map_err(step("proxy listener"))?;
    let dns = UdpSocket::bind((Ipv4Addr::LOCALHOST, DNS_PORT)).map_err(step("resolver socket"))?;
    dns.set_nonblocking(true).map_err(step("resolver socket"))?;
    let netns = sys::current_netns().map_err(step("open namespace"))?;
    Ok(GovernedNet { netns, tcp, dns })
}

fn apply_rules(nft: &Path) -> io::Result<()> {
    use std::io::Write;
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(ruleset().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "nft failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
