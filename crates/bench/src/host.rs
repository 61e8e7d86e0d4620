//! What the host says about itself: machine, `/proc/meminfo`, per-process memory.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// One line describing the machine: cores, CPU model, memory, kernel, OS.
pub fn machine() -> String {
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = read_trim("/proc/sys/kernel/osrelease");
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = MemInfo::read().map(|m| m.kib("MemTotal") as f64 / 1024.0 / 1024.0).unwrap_or(0.0);
    let os = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| "unknown OS".into());
    format!("nproc {nproc} · {cpu} · {mem_gib:.1} GiB RAM · kernel {kernel} · {os} · {}", cgroup2_favordynmods())
}

/// Whether the cgroup2 root has `favordynmods` (cheap cgroup migrations;
/// the server turns it on at its first start unless configured not to).
fn cgroup2_favordynmods() -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let opts = info.lines().filter_map(|l| l.split_once(" - ").map(|(_, r)| r)).find(|r| r.starts_with("cgroup2 "));
    match opts.and_then(|r| r.split(' ').nth(2)) {
        Some(o) if o.split(',').any(|f| f == "favordynmods") => "cgroup2 favordynmods on at start".into(),
        Some(_) => "cgroup2 favordynmods off at start".into(),
        None => "no cgroup2 mount".into(),
    }
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// A snapshot of `/proc/meminfo`, in KiB.
#[derive(Debug, Clone, Default)]
pub struct MemInfo {
    fields: BTreeMap<String, u64>,
}

impl MemInfo {
    pub fn read() -> Option<Self> {
        let text = fs::read_to_string("/proc/meminfo").ok()?;
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            if let Some(n) = v.split_whitespace().next().and_then(|n| n.parse().ok()) {
                fields.insert(k.trim().to_string(), n);
            }
        }
        Some(Self { fields })
    }

    /// A field in KiB (0 when absent).
    pub fn kib(&self, key: &str) -> u64 {
        self.fields.get(key).copied().unwrap_or(0)
    }

    /// Memory the kernel cannot hand to a new workload without swapping:
    /// `MemTotal − MemAvailable` (KiB). Reclaimable page cache does not count;
    /// anonymous memory, tmpfs/shmem, page tables, kernel stacks and
    /// unreclaimable slab (namespaces, mounts, cgroups) do.
    pub fn used(&self) -> i64 {
        self.kib("MemTotal") as i64 - self.kib("MemAvailable") as i64
    }

    /// Cross-check: `MemTotal − MemFree − Buffers − Cached − SReclaimable + Shmem`
    /// (KiB): everything but reclaimable caches, tmpfs counted as used.
    pub fn used_no_cache(&self) -> i64 {
        let k = |f: &str| self.kib(f) as i64;
        k("MemTotal") - k("MemFree") - k("Buffers") - k("Cached") - k("SReclaimable") + k("Shmem")
    }
}

/// Median of several snapshots taken `gap` apart, by [`MemInfo::used`]:
/// damps a transient allocation elsewhere on the host.
pub fn settled_meminfo(samples: usize, gap: std::time::Duration) -> Option<MemInfo> {
    let mut snaps = Vec::new();
    for i in 0..samples.max(1) {
        if i > 0 {
            std::thread::sleep(gap);
        }
        snaps.push(MemInfo::read()?);
    }
    snaps.sort_by_key(MemInfo::used);
    let mid = snaps.len() / 2;
    Some(snaps.swap_remove(mid))
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmRSS`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&text, field)
}

/// Proportional set size of a process (`/proc/PID/smaps_rollup`), in KiB:
/// its private pages plus its share of pages mapped by several processes.
pub fn pss_kib(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kib_field(&text, "Pss")
}

fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.split(':').next() == Some(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Direct children of `parent`: `(pid, argv joined by spaces)`.
pub fn children(parent: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if ppid(pid) == Some(parent) {
            let cmd = fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
                .unwrap_or_default();
            out.push((pid, cmd));
        }
    }
    out
}

/// Anonymous resident memory (`RssAnon`, KiB) of every process that is not
/// `root` or one of its descendants: what the rest of the host allocated, to
/// subtract from host-wide deltas.
pub fn anon_kib_outside(root: u32) -> u64 {
    let Ok(rd) = fs::read_dir("/proc") else { return 0 };
    let pids: Vec<u32> = rd.flatten().filter_map(|e| e.file_name().to_string_lossy().parse().ok()).collect();
    let parents: BTreeMap<u32, u32> = pids.iter().filter_map(|&p| ppid(p).map(|pp| (p, pp))).collect();
    pids.iter().filter(|&&p| !descends_from(&parents, p, root)).filter_map(|&p| status_kib(p, "RssAnon")).sum()
}

/// Whether `pid` is `root` or below it in the `child → parent` map.
fn descends_from(parents: &BTreeMap<u32, u32>, mut pid: u32, root: u32) -> bool {
    // Bounded walk up the tree (process trees here are a few levels deep).
    for _ in 0..64 {
        if pid == root {
            return true;
        }
        match parents.get(&pid) {
            Some(&pp) if pp != 0 => pid = pp,
            _ => return false,
        }
    }
    false
}

/// Memory cgroups that exist on the host, live or dying (`/proc/cgroups`).
pub fn memory_cgroups() -> Option<u64> {
    let text = fs::read_to_string("/proc/cgroups").ok()?;
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("memory"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: parse after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Processes on the host that disturb measurements (compilers, test runners
/// and linkers of other work on the same machine), as `name×count`.
pub fn busy_neighbours() -> Vec<String> {
    const NOISY: &[&str] = &["rustc", "cargo", "cargo-nextest", "cc", "ld", "rust-lld", "dockerd-build"];
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
    let me = std::process::id();
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == me {
            continue;
        }
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if NOISY.contains(&comm) {
            *counts.entry(comm.to_string()).or_default() += 1;
        }
    }
    counts.into_iter().map(|(k, v)| format!("{k}×{v}")).collect()
}

/// Memory charged to a cgroup (v2 `memory.current`, v1 `memory.usage_in_bytes`)
/// at `rel` below the hierarchy root, in bytes.
pub fn cgroup_memory_bytes(rel: &Path) -> Option<u64> {
    let candidates = [
        Path::new("/sys/fs/cgroup").join(rel).join("memory.current"),
        Path::new("/sys/fs/cgroup/memory").join(rel).join("memory.usage_in_bytes"),
    ];
    candidates.iter().find_map(|p| fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok()))
}

/// KiB → MiB.
pub fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_of_this_host_parses() {
        let m = MemInfo::read().expect("/proc/meminfo is readable on Linux");
        assert!(m.kib("MemTotal") > 0);
        assert!(m.used() > 0);
    }

    #[test]
    fn own_status_and_parent() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS").is_some());
        let parent = ppid(me).expect("this process has a parent");
        assert!(children(parent).iter().any(|(p, _)| *p == me));
    }

    #[test]
    fn tree_membership() {
        // 1 ← 10 ← 11 ← 12, 1 ← 20
        let parents: BTreeMap<u32, u32> = [(1, 0), (10, 1), (11, 10), (12, 11), (20, 1)].into_iter().collect();
        assert!(descends_from(&parents, 12, 10));
        assert!(descends_from(&parents, 10, 10));
        assert!(!descends_from(&parents, 20, 10));
        assert!(!descends_from(&parents, 1, 10));
        assert!(anon_kib_outside(std::process::id()) > 0);
    }

    #[test]
    fn kib_field_matches_whole_names() {
        let t = "VmRSS:\t  1234 kB\nRssAnon:\t 10 kB\n";
        assert_eq!(kib_field(t, "VmRSS"), Some(1234));
        assert_eq!(kib_field(t, "Rss"), None);
    }
}
