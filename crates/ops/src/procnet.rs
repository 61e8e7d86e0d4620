//! Parser for the kernel's socket tables `/proc/net/{tcp,tcp6,udp,udp6}`
//! (or `/proc/<pid>/net/…` for another network namespace).
//!
//! Keeps listening TCP sockets (state `0A`), bound UDP sockets (state `07`
//! with a zero remote address) and established TCP connections (state `01`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::Proto;

/// What a socket is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketState {
    /// TCP `LISTEN`.
    Listen,
    /// UDP socket bound to a local address and not connected.
    Bound,
    /// TCP `ESTABLISHED`.
    Established,
}

/// One row of a socket table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Socket {
    pub proto: Proto,
    pub state: SocketState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Socket inode, matching `socket:[N]` links under `/proc/<pid>/fd`.
    pub inode: u64,
    pub uid: u32,
}

/// Reads `tcp`, `tcp6`, `udp` and `udp6` under `net_dir` (e.g. `/proc/net`).
/// A missing table (no IPv6) is skipped.
pub fn read_sockets(net_dir: &Path) -> Result<Vec<Socket>> {
    read_tables(net_dir, &[("tcp", Proto::Tcp), ("tcp6", Proto::Tcp), ("udp", Proto::Udp), ("udp6", Proto::Udp)])
}

/// Reads the named tables under `net_dir`; a missing one is skipped.
pub fn read_tables(net_dir: &Path, tables: &[(&str, Proto)]) -> Result<Vec<Socket>> {
    let mut out = Vec::new();
    for &(file, proto) in tables {
        let path = net_dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(parse_table(&text, proto)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Read { path, source }),
        }
    }
    Ok(out)
}

/// Parses one table's text (header line included), keeping the sockets of
/// interest. IPv4 and IPv6 are told apart by the address length.
pub fn parse_table(text: &str, proto: Proto) -> Result<Vec<Socket>> {
    let mut out = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        if let Some(socket) = parse_line(line, proto)? {
            out.push(socket);
        }
    }
    Ok(out)
}

/// Parses one row; `None` when the socket is in a state discovery ignores.
pub fn parse_line(line: &str, proto: Proto) -> Result<Option<Socket>> {
    let bad = |reason: &str| Error::Malformed {
        what: format!("/proc/net/{proto:?}").to_lowercase(),
        line: line.to_owned(),
        reason: reason.to_owned(),
    };
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 {
        return Err(bad("fewer than 10 fields"));
    }
    let local = parse_addr(fields[1]).ok_or_else(|| bad("bad local address"))?;
    let remote = parse_addr(fields[2]).ok_or_else(|| bad("bad remote address"))?;
    let st = u8::from_str_radix(fields[3], 16).map_err(|_| bad("bad state"))?;
    let uid = fields[7].parse().map_err(|_| bad("bad uid"))?;
    let inode = fields[9].parse().map_err(|_| bad("bad inode"))?;
    let state = match (proto, st) {
        (Proto::Tcp, 0x0A) => SocketState::Listen,
        (Proto::Tcp, 0x01) => SocketState::Established,
        (Proto::Udp, 0x07) if remote.ip().is_unspecified() && remote.port() == 0 => SocketState::Bound,
        _ => return Ok(None),
    };
    Ok(Some(Socket { proto, state, local, remote, inode, uid }))
}

/// Decodes `HEXADDR:HEXPORT`: an IPv4 address is one little-endian u32, an
/// IPv6 address four little-endian u32 words; the port is big-endian hex.
pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.to_le_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = addr.get(i * 8..i * 8 + 8)?;
                chunk.copy_from_slice(&u32::from_str_radix(word, 16).ok()?.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 20 4 30 10 -1
   2: 0A00020F:0016 0100000A:C350 06 00000000:00000000 03:00000F3E 00000000     0        0 0 3 0000000000000000
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000100007F:E0F2 01 00000000:00000000 00:00000000 00000000     0        0 779 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 780 1 0000000000000000 100 0 0 10 0
";

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 4242 2 0000000000000000 0
  101: 0F02000A:8F2C 0100000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0
";

    const UDP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  200: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 5555 2 0000000000000000 0
";

    #[test]
    fn tcp_listen_and_established() {
        let s = parse_table(TCP, Proto::Tcp).unwrap();
        assert_eq!(s.len(), 2, "TIME_WAIT row is dropped");
        assert_eq!(s[0].state, SocketState::Listen);
        assert_eq!(s[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!((s[0].uid, s[0].inode), (1000, 12345));
        assert_eq!(s[1].state, SocketState::Established);
        assert_eq!(s[1].local, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(s[1].remote, "127.0.0.1:8080".parse().unwrap());
    }

    #[test]
    fn tcp6_addresses() {
        let s = parse_table(TCP6, Proto::Tcp).unwrap();
        assert_eq!(s[0].local, "[::]:80".parse().unwrap());
        assert_eq!(s[0].uid, 33);
        assert_eq!(s[1].local, "[::1]:8081".parse().unwrap());
        assert_eq!(s[2].state, SocketState::Established);
        assert_eq!(s[2].local, "[::ffff:127.0.0.1]:8081".parse().unwrap());
        assert_eq!(s[2].remote, "[::ffff:127.0.0.1]:57586".parse().unwrap());
        assert_eq!(s[3].local, "[2001:db8::1]:443".parse().unwrap());
    }

    #[test]
    fn udp_bound_only() {
        let s = parse_table(UDP, Proto::Udp).unwrap();
        assert_eq!(s.len(), 1, "connected UDP socket is dropped");
        assert_eq!(s[0].state, SocketState::Bound);
        assert_eq!(s[0].local, "127.0.0.53:53".parse().unwrap());
        assert_eq!((s[0].uid, s[0].inode), (101, 4242));
        let s6 = parse_table(UDP6, Proto::Udp).unwrap();
        assert_eq!(s6[0].local, "[::]:5353".parse().unwrap());
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_line("   0: zz:1F90 00000000:0000 0A 0 0 0 0 0 1", Proto::Tcp).is_err());
        assert!(parse_line("   0: 0100007F:1F90", Proto::Tcp).is_err());
        assert!(parse_addr("0100007F").is_none());
        assert!(parse_addr("0100:0050").is_none());
    }

    #[test]
    fn reads_fixture_directory_without_ipv6() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tcp"), TCP).unwrap();
        std::fs::write(dir.path().join("udp"), UDP).unwrap();
        let s = read_sockets(dir.path()).unwrap();
        assert_eq!(s.len(), 3);
    }
}
