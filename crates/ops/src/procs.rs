//! Processes under `/proc`: which pids own which socket inodes, which network
//! namespace each lives in, and per pid its executable, command line, uid,
//! name, cgroup and Docker container.
//!
//! Processes vanish and some deny access while being scanned; such a pid is
//! skipped, never failing the whole scan.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::ProcessInfo;

/// Who owns which sockets.
#[derive(Debug, Clone, Default)]
pub struct SocketOwners {
    /// Socket inode → pids holding a descriptor to it (sorted).
    pub inode_pids: HashMap<u64, Vec<u32>>,
    /// Network namespace inode → one pid living in it (the lowest), for reading
    /// that namespace's `/proc/<pid>/net` tables.
    pub netns_pid: BTreeMap<u64, u32>,
    /// pid → its network namespace inode.
    pub pid_netns: HashMap<u32, u64>,
}

/// Scans every `/proc/<pid>/fd/*` under `proc_root` for `socket:[N]` links.
/// Fails only if `proc_root` itself cannot be listed.
/// Processes in a network namespace whose first process's cgroup path
/// contains `ignore_cgroup` are skipped.
pub fn scan_sockets(proc_root: &Path, ignore_cgroup: Option<&str>) -> Result<SocketOwners> {
    let entries = std::fs::read_dir(proc_root).map_err(|source| Error::Read { path: proc_root.into(), source })?;
    let mut pids: Vec<u32> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    let mut owners = SocketOwners::default();
    let mut ignored = std::collections::BTreeSet::new();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        if let Some(ns) = link_inode(&dir.join("ns/net"), "net:[") {
            if ignored.contains(&ns) {
                continue;
            }
            if !owners.netns_pid.contains_key(&ns) {
                if let Some(skip) = ignore_cgroup {
                    if std::fs::read_to_string(dir.join("cgroup")).is_ok_and(|c| c.contains(skip)) {
                        ignored.insert(ns);
                        continue;
                    }
                }
            }
            owners.netns_pid.entry(ns).or_insert(pid);
            owners.pid_netns.insert(pid, ns);
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Some(inode) = link_inode(&fd.path(), "socket:[") {
                let holders = owners.inode_pids.entry(inode).or_default();
                if holders.last() != Some(&pid) {
                    holders.push(pid);
                }
            }
        }
    }
    Ok(owners)
}

/// Reads a link like `socket:[123]` and returns 123 if it has `prefix`.
pub(crate) fn link_inode(path: &Path, prefix: &str) -> Option<u64> {
    let target = std::fs::read_link(path).ok()?;
    target.to_str()?.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
}

/// Reads one process's details; `None` if it vanished or denies access.
pub fn read_process(proc_root: &Path, pid: u32, users: &HashMap<u32, String>) -> Option<ProcessInfo> {
    let dir = proc_root.join(pid.to_string());
    let (name, uid) = parse_status(&std::fs::read_to_string(dir.join("status")).ok()?);
    let exe = std::fs::read_link(dir.join("exe")).ok().map(|p| p.to_string_lossy().into_owned());
    let cmdline = std::fs::read(dir.join("cmdline")).map(|b| parse_cmdline(&b)).unwrap_or_default();
    let cgroup_text = std::fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
    let cgroup = parse_cgroup(&cgroup_text);
    let container_id = cgroup_text.lines().find_map(|l| container_id_from_cgroup(l.splitn(3, ':').nth(2)?));
    Some(ProcessInfo {
        pid,
        name,
        exe,
        cmdline,
        uid,
        user: uid.and_then(|u| users.get(&u).cloned()),
        cgroup,
        container_id,
    })
}

/// `Name:` and the real uid from `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> (String, Option<u32>) {
    let mut name = String::new();
    let mut uid = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Name:") {
            name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("Uid:") {
            uid = v.split_whitespace().next().and_then(|u| u.parse().ok());
        }
    }
    (name, uid)
}

/// NUL-separated `/proc/<pid>/cmdline` → argv.
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// The process's cgroup path from `/proc/<pid>/cgroup`: the unified (`0::`)
/// path unless it is the root, else the `name=systemd` one, else the first
/// non-root path.
pub fn parse_cgroup(text: &str) -> Option<String> {
    let entries: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let non_root = |p: &&str| *p != "/" && !p.is_empty();
    let pick = |ctrl: &str| entries.iter().find(|(c, p)| *c == ctrl && non_root(p)).map(|(_, p)| *p);
    pick("")
        .or_else(|| pick("name=systemd"))
        .or_else(|| entries.iter().map(|(_, p)| *p).find(non_root))
        .or_else(|| entries.first().map(|(_, p)| *p))
        .map(str::to_owned)
}

/// The Docker container id a cgroup path names: `/docker/<64hex>`,
/// `…/docker-<64hex>.scope`, or `…/<64hex>` under a parent whose name
/// mentions docker or containerd.
pub fn container_id_from_cgroup(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for (i, seg) in segments.iter().enumerate() {
        if let Some(id) = seg.strip_prefix("docker-").and_then(|s| s.strip_suffix(".scope")) {
            if is_container_id(id) {
                return Some(id.to_owned());
            }
        }
        if is_container_id(seg) && segments[..i].iter().any(|p| p.contains("docker") || p.contains("containerd")) {
            return Some((*seg).to_owned());
        }
    }
    None
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// uid → user name from a passwd file (unreadable: empty).
pub fn read_users(passwd: &Path) -> HashMap<u32, String> {
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            Some((f.nth(1)?.parse().ok()?, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn container_id_forms() {
        assert_eq!(container_id_from_cgroup(&format!("/docker/{ID}")).as_deref(), Some(ID));
        assert_eq!(container_id_from_cgroup(&format!("/system.slice/docker-{ID}.scope")).as_deref(), Some(ID));
        assert_eq!(
            container_id_from_cgroup(&format!("/system.slice/containerd.service/moby/{ID}")).as_deref(),
            Some(ID)
        );
        assert_eq!(container_id_from_cgroup(&format!("/docker/buildkit/{ID}")).as_deref(), Some(ID));
        assert_eq!(container_id_from_cgroup(&format!("/user.slice/{ID}")), None, "no docker parent");
        assert_eq!(container_id_from_cgroup("/docker/abc"), None, "too short");
        assert_eq!(container_id_from_cgroup(&format!("/docker/{}", ID.to_uppercase())), None, "not lower hex");
        assert_eq!(container_id_from_cgroup("/system.slice/nginx.service"), None);
    }

    #[test]
    fn cgroup_v1_hybrid_and_v2() {
        let v1 = format!("12:pids:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n");
        assert_eq!(parse_cgroup(&v1), Some(format!("/docker/{ID}")));
        let v2 = "0::/system.slice/nginx.service\n";
        assert_eq!(parse_cgroup(v2).as_deref(), Some("/system.slice/nginx.service"));
        assert_eq!(parse_cgroup("0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup(""), None);
    }

    #[test]
    fn status_and_cmdline() {
        let status = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_status(status), ("python3".to_owned(), Some(1000)));
        assert_eq!(parse_cmdline(b"python3\0-m\0http.server\0"), vec!["python3", "-m", "http.server"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn passwd() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        std::fs::write(&p, "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n").unwrap();
        let users = read_users(&p);
        assert_eq!(users.get(&33).map(String::as_str), Some("www-data"));
    }

    #[test]
    fn scans_own_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let owners = scan_sockets(Path::new("/proc"), None).unwrap();
        let me = std::process::id();
        assert!(owners.inode_pids.values().any(|pids| pids.contains(&me)), "{listener:?} not found");
        assert!(owners.pid_netns.contains_key(&me));
        let info = read_process(Path::new("/proc"), me, &HashMap::new()).unwrap();
        assert_eq!(info.pid, me);
        assert!(!info.cmdline.is_empty());
    }
}
