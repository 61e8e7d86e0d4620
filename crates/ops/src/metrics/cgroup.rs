//! Finding and reading a cgroup's accounting files, in either layout:
//! v1 (one hierarchy per controller under `/sys/fs/cgroup/<controller>`) or
//! v2 (the unified hierarchy, at `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::parse;

/// Where one cgroup's accounting files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    /// v1 directories by controller (`cpuacct`, `memory`, `blkio`).
    pub v1: HashMap<String, PathBuf>,
    /// The v2 directory, if the cgroup exists in a unified hierarchy.
    pub v2: Option<PathBuf>,
}

/// What a cgroup's files say at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupReading {
    pub cpu_ns: Option<u64>,
    pub memory: Option<u64>,
    pub memory_limit: Option<u64>,
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
}

impl CgroupPaths {
    /// The cgroup of `pid`, from `/proc/<pid>/cgroup`, under `root`
    /// (normally `/sys/fs/cgroup`).
    pub fn of_pid(root: &Path, pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Some(Self::from_proc_cgroup(root, &text))
    }

    /// Resolves the text of a `/proc/<pid>/cgroup` file under `root`.
    pub fn from_proc_cgroup(root: &Path, text: &str) -> Self {
        let (v1, v2) = parse::pid_cgroup(text);
        let mut out = Self::default();
        for c in ["cpuacct", "cpu", "memory", "blkio"] {
            if let Some(p) = v1.get(c) {
                let dir = root.join(c).join(p.trim_start_matches('/'));
                if dir.is_dir() {
                    out.v1.insert(c.to_string(), dir);
                }
            }
        }
        if let Some(p) = v2 {
            out.v2 = [root.join("unified"), root.to_path_buf()]
                .into_iter()
                .map(|base| base.join(p.trim_start_matches('/')))
                .find(|d| d.join("cgroup.procs").is_file() && d != root);
        }
        out
    }

    /// A cgroup named by its path relative to each hierarchy's root (e.g.
    /// `superserver/<instance>/<sandbox>`), in whichever layouts have it.
    pub fn named(root: &Path, rel: &str) -> Self {
        let mut out = Self::default();
        for c in ["cpuacct", "cpu", "memory", "blkio"] {
            let dir = root.join(c).join(rel);
            if dir.is_dir() {
                out.v1.insert(c.to_string(), dir);
            }
        }
        out.v2 = [root.join("unified").join(rel), root.join(rel)]
            .into_iter()
            .find(|d| d.join("cgroup.procs").is_file() && d.join("cpu.stat").is_file());
        out
    }

    fn v1_file(&self, ctrl: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.v1.get(ctrl)?.join(file)).ok()
    }

    fn v2_file(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.v2.as_ref()?.join(file)).ok()
    }

    /// Reads CPU, memory and block I/O, v1 files first, v2 for what v1 lacks.
    pub fn read(&self) -> CgroupReading {
        let cpu_ns = self
            .v1_file("cpuacct", "cpuacct.usage")
            .or_else(|| self.v1_file("cpu", "cpuacct.usage"))
            .and_then(|t| t.trim().parse().ok())
            .or_else(|| self.v2_file("cpu.stat").and_then(|t| parse::cpu_stat_usage_ns(&t)));
        let memory = self
            .v1_file("memory", "memory.usage_in_bytes")
            .or_else(|| self.v2_file("memory.current"))
            .and_then(|t| t.trim().parse().ok());
        let memory_limit = self
            .v1_file("memory", "memory.limit_in_bytes")
            .or_else(|| self.v2_file("memory.max"))
            .and_then(|t| parse::memory_limit(&t));
        let io = self
            .v1_file("blkio", "blkio.throttle.io_service_bytes")
            .map(|t| parse::blkio_service_bytes(&t))
            .or_else(|| self.v2_file("io.stat").map(|t| parse::io_stat(&t)));
        CgroupReading { cpu_ns, memory, memory_limit, io_read: io.map(|(r, _)| r), io_write: io.map(|(_, w)| w) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_v2_layouts() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // v1: cpuacct and memory; v2 (unified): io only.
        let cpu = r.join("cpuacct/docker/abc");
        let mem = r.join("memory/docker/abc");
        let uni = r.join("unified/system.slice/docker-abc.scope");
        for d in [&cpu, &mem, &uni] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(cpu.join("cpuacct.usage"), "5000000\n").unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "1048576\n").unwrap();
        std::fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(uni.join("cgroup.procs"), "1\n").unwrap();
        std::fs::write(uni.join("io.stat"), "8:0 rbytes=10 wbytes=20\n").unwrap();
        let p = CgroupPaths::from_proc_cgroup(
            r,
            "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/system.slice/docker-abc.scope\n",
        );
        let got = p.read();
        assert_eq!(got.cpu_ns, Some(5_000_000));
        assert_eq!(got.memory, Some(1 << 20));
        assert_eq!(got.memory_limit, None);
        assert_eq!((got.io_read, got.io_write), (Some(10), Some(20)));

        // Pure v2 at the root.
        let v2 = r.join("superserver/i1/sb1");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("cgroup.procs"), "").unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 7\n").unwrap();
        std::fs::write(v2.join("memory.current"), "4096\n").unwrap();
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        let got = CgroupPaths::named(r, "superserver/i1/sb1").read();
        assert_eq!(got.cpu_ns, Some(7000));
        assert_eq!(got.memory, Some(4096));
    }
}
