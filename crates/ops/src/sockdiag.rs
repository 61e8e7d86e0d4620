//! TCP sockets of a network namespace through a `NETLINK_SOCK_DIAG` dump,
//! filtered in the kernel to listening and established sockets.
//!
//! Every read of `/proc/<pid>/net/tcp*` walks the kernel's *global*
//! connection hash from its start, and reading a table to its end takes at
//! least two reads; a dump walks it once per address family. The netlink
//! socket is made inside the namespace (a throwaway thread joins it), which
//! needs the privileges the server has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

use crate::model::Proto;
use crate::procnet::{Socket, SocketState};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_ESTABLISHED: u8 = 1;
const TCP_LISTEN: u8 = 10;
const HEADER: usize = 16;
const DIAG_MSG: usize = 72;

/// The listening and established TCP sockets (IPv4 and IPv6) of the
/// network namespace at `ns_path` (`/proc/<pid>/ns/net`).
pub fn tcp_sockets(ns_path: &Path) -> std::io::Result<Vec<Socket>> {
    let ns = std::fs::File::open(ns_path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
            let fd =
                socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkSockDiag)?;
            let mut out = Vec::new();
            for (family, seq) in [(nix::libc::AF_INET as u8, 1u32), (nix::libc::AF_INET6 as u8, 2)] {
                send(fd.as_raw_fd(), &request(family, seq), MsgFlags::empty())?;
                dump(&fd, seq, &mut out)?;
            }
            Ok(out)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the socket dump thread panicked")))
    })
}

fn request(family: u8, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + 56);
    m.extend_from_slice(&((HEADER + 56) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // inet_diag_req_v2: family, protocol, ext, pad, states, then a zero id.
    m.extend_from_slice(&[family, nix::libc::IPPROTO_TCP as u8, 0, 0]);
    let states: u32 = (1 << TCP_LISTEN) | (1 << TCP_ESTABLISHED);
    m.extend_from_slice(&states.to_ne_bytes());
    m.extend_from_slice(&[0u8; 48]);
    m
}

fn dump(fd: &std::os::fd::OwnedFd, seq: u32, out: &mut Vec<Socket>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if n == 0 {
            return Err(std::io::Error::other("the socket dump ended early"));
        }
        let mut pos = 0;
        while pos + HEADER <= n {
            let len = u32::from_ne_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            let kind = u16::from_ne_bytes([buf[pos + 4], buf[pos + 5]]);
            let msg_seq = u32::from_ne_bytes([buf[pos + 8], buf[pos + 9], buf[pos + 10], buf[pos + 11]]);
            if len < HEADER || pos + len > n {
                return Err(std::io::Error::other("a malformed socket dump message"));
            }
            if msg_seq == seq {
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = buf
                            .get(pos + HEADER..pos + HEADER + 4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return Err(std::io::Error::from_raw_os_error(-code));
                    }
                    SOCK_DIAG_BY_FAMILY => {
                        if let Some(s) = parse(&buf[pos + HEADER..pos + len]) {
                            out.push(s);
                        }
                    }
                    _ => {}
                }
            }
            pos += (len + 3) & !3;
        }
    }
}

/// One `inet_diag_msg`.
fn parse(m: &[u8]) -> Option<Socket> {
    if m.len() < DIAG_MSG {
        return None;
    }
    let state = match m[1] {
        TCP_LISTEN => SocketState::Listen,
        TCP_ESTABLISHED => SocketState::Established,
        _ => return None,
    };
    let port = |at: usize| u16::from_be_bytes([m[at], m[at + 1]]);
    let addr = |at: usize| -> Option<IpAddr> {
        match m[0] as i32 {
            nix::libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(m[at], m[at + 1], m[at + 2], m[at + 3]))),
            nix::libc::AF_INET6 => {
                let b: [u8; 16] = m.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            _ => None,
        }
    };
    // id: sport(4) dport(6) src(8..24) dst(24..40) if(40) cookie(44); then
    // expires(52) rqueue(56) wqueue(60) uid(64) inode(68).
    let local = SocketAddr::new(addr(8)?, port(4));
    let remote = SocketAddr::new(addr(24)?, port(6));
    let u32_at = |at: usize| u32::from_ne_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
    Some(Socket { proto: Proto::Tcp, state, local, remote, inode: u64::from(u32_at(68)), uid: u32_at(64) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_finds_what_proc_net_tcp_lists() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let dumped = tcp_sockets(Path::new("/proc/self/ns/net")).unwrap();
        let listen = dumped.iter().find(|s| s.local.port() == port && s.state == SocketState::Listen).unwrap();
        let conn =
            dumped.iter().find(|s| s.state == SocketState::Established && s.local == c.local_addr().unwrap()).unwrap();
        assert_eq!(conn.remote.port(), port);
        // The same inodes as the kernel's text table.
        let text = crate::procnet::read_sockets(Path::new("/proc/self/net")).unwrap();
        for s in [listen, conn] {
            assert!(text.iter().any(|t| t.inode == s.inode && t.local == s.local && t.state == s.state), "{s:?}");
        }
    }
}
