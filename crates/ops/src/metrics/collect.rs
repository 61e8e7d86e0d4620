//! The collector: one call reads every source once and returns the round's
//! samples; counters become rates against the previous round.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::cgroup::CgroupPaths;
use super::{parse, Sample};

/// What to sample besides the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The series prefix: a discovery service id or `sandbox:<id>`.
    pub service: String,
    pub kind: TargetKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A running container: its cgroup is found from its main pid, its
    /// network counters are that pid's namespace's.
    Container { pid: u32 },
    /// A process service (or unit): CPU and RSS summed over these pids.
    Processes { pids: Vec<u32> },
    /// A cgroup by path relative to each hierarchy's root (a sandbox).
    Cgroup { rel: String },
}

/// Samples the host and targets; keeps the previous readings of counters.
pub struct Collector {
    cgroup_root: PathBuf,
    filesystems: Vec<PathBuf>,
    started: Instant,
    prev: HashMap<String, (u64, f64)>,
    seen: HashSet<String>,
    /// Container pid → its cgroup, resolved once per pid.
    cgroups: HashMap<u32, CgroupPaths>,
    ticks_per_s: f64,
    page_size: u64,
    cores: f64,
}

impl Collector {
    /// A collector reporting the filesystems holding `filesystems` (e.g. `/`
    /// and the data dir; the same filesystem is reported once).
    pub fn new(filesystems: Vec<PathBuf>) -> Self {
        let sysconf = |v| nix::unistd::sysconf(v).ok().flatten().filter(|n| *n > 0);
        Self {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            filesystems,
            started: Instant::now(),
            prev: HashMap::new(),
            seen: HashSet::new(),
            cgroups: HashMap::new(),
            ticks_per_s: sysconf(nix::unistd::SysconfVar::CLK_TCK).map_or(100.0, |n| n as f64),
            page_size: sysconf(nix::unistd::SysconfVar::PAGE_SIZE).map_or(4096, |n| n as u64),
            cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        }
    }

    /// One round: the host, then each target. Sources that cannot be read
    /// are left out of the round.
    pub fn collect(&mut self, targets: &[Target]) -> Vec<Sample> {
        let now = self.started.elapsed().as_secs_f64();
        self.seen.clear();
        let mut out = Vec::with_capacity(32 + targets.len() * 7);
        self.host(now, &mut out);
        let mut pids_alive = HashSet::new();
        for t in targets {
            match &t.kind {
                TargetKind::Container { pid } => {
                    pids_alive.insert(*pid);
                    self.container(now, &t.service, *pid, &mut out);
                }
                TargetKind::Processes { pids } => self.processes(now, &t.service, pids, &mut out),
                TargetKind::Cgroup { rel } => {
                    let paths = CgroupPaths::named(&self.cgroup_root, rel);
                    self.cgroup(now, &t.service, &paths, &mut out);
                }
            }
        }
        let seen = std::mem::take(&mut self.seen);
        self.prev.retain(|k, _| seen.contains(k));
        self.seen = seen;
        self.cgroups.retain(|pid, _| pids_alive.contains(pid));
        out
    }

    /// Per-second rate of a counter since its previous reading.
    fn rate(&mut self, key: String, value: u64, now: f64) -> Option<f64> {
        self.seen.insert(key.clone());
        let prev = self.prev.insert(key, (value, now));
        let (pv, pt) = prev?;
        let dt = now - pt;
        (value >= pv && dt > 0.0).then(|| (value - pv) as f64 / dt)
    }

    fn host(&mut self, now: f64, out: &mut Vec<Sample>) {
        let mut push = |series: &str, value: f64| out.push(Sample { series: format!("host/{series}"), value });
        if let Some((busy, total)) = read("/proc/stat").and_then(|t| parse::proc_stat_cpu(&t)) {
            let key = "host/cpu".to_string();
            let prev = self.prev.insert(key.clone(), (busy, total as f64));
            self.seen.insert(key);
            if let Some((pb, pt)) = prev {
                let dt = total as f64 - pt;
                if busy >= pb && dt > 0.0 {
                    push("cpu.percent", 100.0 * (busy - pb) as f64 / dt);
                }
            }
        }
        if let Some(l) = read("/proc/loadavg").and_then(|t| parse::loadavg(&t)) {
            push("load.1", l[0]);
            push("load.5", l[1]);
            push("load.15", l[2]);
        }
        if let Some(m) = read("/proc/meminfo").map(|t| parse::meminfo(&t)) {
            let get = |k: &str| m.get(k).copied();
            if let (Some(total), Some(avail)) = (get("MemTotal"), get("MemAvailable")) {
                push("memory.total_bytes", total as f64);
                push("memory.available_bytes", avail as f64);
                push("memory.used_bytes", total.saturating_sub(avail) as f64);
                if total > 0 {
                    push("memory.used_percent", 100.0 * total.saturating_sub(avail) as f64 / total as f64);
                }
            }
            if let (Some(total), Some(free)) = (get("SwapTotal"), get("SwapFree")) {
                push("swap.total_bytes", total as f64);
                push("swap.used_bytes", total.saturating_sub(free) as f64);
            }
        }
        let mut devices = HashSet::new();
        for path in self.filesystems.clone() {
            let Ok(st) = nix::sys::statvfs::statvfs(&path) else { continue };
            if !devices.insert(st.filesystem_id()) {
                continue;
            }
            let frsize = st.fragment_size() as f64;
            let size = st.blocks() as f64 * frsize;
            let avail = st.blocks_available() as f64 * frsize;
            let used = size - st.blocks_free() as f64 * frsize;
            let p = path.display();
            out.push(Sample { series: format!("host/fs.size_bytes:{p}"), value: size });
            out.push(Sample { series: format!("host/fs.used_bytes:{p}"), value: used });
            if used + avail > 0.0 {
                out.push(Sample { series: format!("host/fs.used_percent:{p}"), value: 100.0 * used / (used + avail) });
            }
        }
        if let Some(text) = read("/proc/diskstats") {
            let disks = parse::diskstats(&text, is_physical_disk);
            let (r, w) = disks.iter().fold((0u64, 0u64), |(r, w), d| (r + d.1, w + d.2));
            self.push_rate(out, "host/disk.read_bytes_per_s", r, now);
            self.push_rate(out, "host/disk.write_bytes_per_s", w, now);
        }
        if let Some(text) = read("/proc/net/dev") {
            let ifs = parse::net_dev(&text, parse::host_interface);
            let (rx, tx) = ifs.iter().fold((0u64, 0u64), |(r, t), i| (r + i.1, t + i.2));
            self.push_rate(out, "host/net.rx_bytes_per_s", rx, now);
            self.push_rate(out, "host/net.tx_bytes_per_s", tx, now);
        }
    }

    fn push_rate(&mut self, out: &mut Vec<Sample>, series: &str, value: u64, now: f64) {
        if let Some(v) = self.rate(series.to_string(), value, now) {
            out.push(Sample { series: series.to_string(), value: v });
        }
    }

    fn container(&mut self, now: f64, service: &str, pid: u32, out: &mut Vec<Sample>) {
        let paths = match self.cgroups.get(&pid) {
            Some(p) => p.clone(),
            None => {
                let Some(p) = CgroupPaths::of_pid(&self.cgroup_root, pid) else { return };
                self.cgroups.insert(pid, p.clone());
                p
            }
        };
        self.cgroup(now, service, &paths, out);
        if let Some(text) = read(&format!("/proc/{pid}/net/dev")) {
            let ifs = parse::net_dev(&text, |n| n != "lo");
            let (rx, tx) = ifs.iter().fold((0u64, 0u64), |(r, t), i| (r + i.1, t + i.2));
            self.push_rate(out, &format!("{service}/net.rx_bytes_per_s"), rx, now);
            self.push_rate(out, &format!("{service}/net.tx_bytes_per_s"), tx, now);
        }
    }

    fn cgroup(&mut self, now: f64, service: &str, paths: &CgroupPaths, out: &mut Vec<Sample>) {
        let r = paths.read();
        if let Some(ns) = r.cpu_ns {
            if let Some(ns_per_s) = self.rate(format!("{service}/cpu"), ns, now) {
                out.push(Sample { series: format!("{service}/cpu.percent"), value: ns_per_s / 1e7 });
            }
        }
        if let Some(m) = r.memory {
            out.push(Sample { series: format!("{service}/memory.bytes"), value: m as f64 });
        }
        if let Some(l) = r.memory_limit {
            out.push(Sample { series: format!("{service}/memory.limit_bytes"), value: l as f64 });
        }
        if let (Some(rd), Some(wr)) = (r.io_read, r.io_write) {
            self.push_rate(out, &format!("{service}/blkio.read_bytes_per_s"), rd, now);
            self.push_rate(out, &format!("{service}/blkio.write_bytes_per_s"), wr, now);
        }
    }

    fn processes(&mut self, now: f64, service: &str, pids: &[u32], out: &mut Vec<Sample>) {
        let (mut ticks, mut rss, mut any) = (0u64, 0u64, false);
        for pid in pids {
            let (Some(t), Some(r)) = (
                read(&format!("/proc/{pid}/stat")).and_then(|t| parse::pid_stat_cpu_ticks(&t)),
                read(&format!("/proc/{pid}/statm")).and_then(|t| parse::statm_rss_pages(&t)),
            ) else {
                continue;
            };
            ticks += t;
            rss += r;
            any = true;
        }
        if !any {
            return;
        }
        // The key carries the pid set: a restart is not a negative rate.
        let key = format!("{service}/cpu{pids:?}");
        if let Some(tps) = self.rate(key, ticks, now) {
            out.push(Sample { series: format!("{service}/cpu.percent"), value: 100.0 * tps / self.ticks_per_s });
        }
        out.push(Sample { series: format!("{service}/memory.rss_bytes"), value: (rss * self.page_size) as f64 });
    }

    /// How many cores the host has (the host's `cpu.percent` is of all of
    /// them; other series' `cpu.percent` are of one core).
    pub fn cores(&self) -> f64 {
        self.cores
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Whole physical disks: `/sys/block/<dev>/device` exists (partitions, loop
/// and device-mapper devices would count the same bytes twice).
fn is_physical_disk(name: &str) -> bool {
    !name.contains('/') && Path::new("/sys/block").join(name).join("device").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_round_then_rates() {
        let mut c = Collector::new(vec![PathBuf::from("/")]);
        let first = c.collect(&[]);
        let names: Vec<&str> = first.iter().map(|s| s.series.as_str()).collect();
        assert!(names.contains(&"host/load.1"), "{names:?}");
        assert!(names.contains(&"host/memory.used_bytes"), "{names:?}");
        assert!(names.contains(&"host/fs.used_bytes:/"), "{names:?}");
        // Rates need two readings.
        assert!(!names.contains(&"host/net.rx_bytes_per_s"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = c.collect(&[Target {
            service: "process:self:0".into(),
            kind: TargetKind::Processes { pids: vec![std::process::id()] },
        }]);
        let names: Vec<&str> = second.iter().map(|s| s.series.as_str()).collect();
        assert!(names.contains(&"host/net.rx_bytes_per_s"), "{names:?}");
        let rss = second.iter().find(|s| s.series == "process:self:0/memory.rss_bytes").unwrap();
        assert!(rss.value > 0.0);
    }
}
