//! One cgroup per command in a persistent sandbox.
//!
//! The server delegates the sandbox's cgroup to the sandbox's root (chown),
//! and the init opens its directories before switching root. For each
//! command it creates a child group the command joins before exec; a timeout
//! or kill then reaches every process the command started, including ones
//! that daemonized or called `setsid`, and leaves other commands' processes
//! alone. The group also gives the command's own CPU time and peak memory.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys;

pub struct ExecGroups {
    /// The sandbox group's directory in each hierarchy.
    dirs: Vec<OwnedFd>,
    /// Groups whose removal failed (processes left in the background).
    stale: Vec<String>,
    /// The sandbox group's `pids.current`, kept open: one read tells
    /// whether anything but init is alive.
    tasks: Option<OwnedFd>,
}

impl ExecGroups {
    /// Opens the sandbox group's directories (the parents of its
    /// `cgroup.procs` files) in the hierarchies a command's group needs: on
    /// v2 the one hierarchy; on v1 the freezer (to kill a command's whole
    /// tree) and cpuacct where the sandbox joined it (its CPU time). Memory and pids stay accounted and
    /// limited at the sandbox level, which keeps a command's group cheap.
    pub fn open(procs_files: &[PathBuf]) -> Self {
        const USEFUL: &[&str] = &["cgroup.kill", "freezer.state", "cpuacct.usage"];
        let dirs = procs_files
            .iter()
            .filter_map(|f| f.parent())
            .filter(|d| USEFUL.iter().any(|f| d.join(f).exists()))
            .filter_map(|d| File::open(d).ok().map(OwnedFd::from))
            .collect();
        let tasks = procs_files
            .iter()
            .filter_map(|f| f.parent())
            .find_map(|d| File::open(d.join("pids.current")).ok().map(OwnedFd::from));
        Self { dirs, stale: Vec::new(), tasks }
    }

    /// Tasks in the sandbox's group and below, init included.
    fn task_count(&self) -> Option<u64> {
        let fd = self.tasks.as_ref()?;
        let mut buf = [0u8; 32];
        // From offset 0 the kernel generates the value afresh.
        let n = sys::pread(fd.as_fd(), &mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// Whether commands can be given groups here.
    pub fn available(&self) -> bool {
        !self.dirs.is_empty()
    }

    /// Processes in the sandbox's own group other than init (pid 1).
    fn ungrouped_pids(&self) -> Vec<libc::pid_t> {
        let Some(dir) = self.dirs.first() else { return Vec::new() };
        // Opened anew each time: cgroup v1 keeps the list an open file read
        // first and serves it again for up to a second (a stale answer).
        let Ok(fd) = sys::open_at(dir.as_fd(), Path::new("cgroup.procs"), libc::O_RDONLY) else { return Vec::new() };
        let mut s = String::new();
        if File::from(fd).read_to_string(&mut s).is_err() {
            return Vec::new();
        }
        s.lines().filter_map(|l| l.trim().parse().ok()).filter(|&p| p != 1).collect()
    }

    /// Whether any process besides init is alive in the sandbox (a running
    /// command, or a daemon some command left).
    pub fn others_present(&self) -> bool {
        !self.stale.is_empty() || self.task_count().map_or_else(|| !self.ungrouped_pids().is_empty(), |n| n > 1)
    }

    /// Kills every process in the sandbox's own group except init.
    pub fn kill_ungrouped(&self) {
        for _ in 0..10 {
            let pids = self.ungrouped_pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// Creates the group of command `id`; `None` if the cgroup is not delegated.
    pub fn create(&mut self, id: u32) -> Option<String> {
        if self.dirs.is_empty() {
            return None;
        }
        self.sweep();
        let name = format!("x{id}");
        for (i, dir) in self.dirs.iter().enumerate() {
            if sys::mkdir_at(dir.as_fd(), Path::new(&name), 0o755).is_err() {
                for d in &self.dirs[..i] {
                    let _ = sys::rmdir_at(d.as_fd(), Path::new(&name));
                }
                return None;
            }
        }
        Some(name)
    }

    /// `cgroup.procs` of group `name` in every hierarchy, open for writing:
    /// the command's process writes `0` to each to join.
    pub fn join_files(&self, name: &str) -> Vec<OwnedFd> {
        let path = PathBuf::from(name).join("cgroup.procs");
        self.dirs.iter().filter_map(|d| sys::open_at(d.as_fd(), &path, libc::O_WRONLY).ok()).collect()
    }

    fn read_file(&self, name: &str, file: &str) -> Option<String> {
        let path = PathBuf::from(name).join(file);
        for d in &self.dirs {
            if let Ok(fd) = sys::open_at(d.as_fd(), &path, libc::O_RDONLY) {
                let mut s = String::new();
                if File::from(fd).read_to_string(&mut s).is_ok() {
                    return Some(s);
                }
            }
        }
        None
    }

    fn write_file(&self, name: &str, file: &str, value: &str) -> bool {
        let path = PathBuf::from(name).join(file);
        self.dirs.iter().any(|d| {
            sys::open_at(d.as_fd(), &path, libc::O_WRONLY)
                .map(|fd| File::from(fd).write_all(value.as_bytes()).is_ok())
                .unwrap_or(false)
        })
    }

    fn pids(&self, name: &str) -> Vec<libc::pid_t> {
        self.read_file(name, "cgroup.procs")
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Kills every process of the group.
    pub fn kill(&self, name: &str) {
        if self.write_file(name, "cgroup.kill", "1") {
            return;
        }
        // v1: freeze so nothing forks while we kill, then thaw so they die.
        let frozen = self.write_file(name, "freezer.state", "FROZEN");
        for _ in 0..10 {
            let pids = self.pids(name);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
            if frozen {
                break;
            }
        }
        if frozen {
            self.write_file(name, "freezer.state", "THAWED");
        }
    }

    /// CPU time in microseconds and peak memory in bytes of the group, where
    /// the hierarchy reports them.
    pub fn usage(&self, name: &str) -> (Option<u64>, Option<u64>) {
        let num = |f: &str| self.read_file(name, f).and_then(|s| s.trim().parse::<u64>().ok());
        let cpu_us = num("cpuacct.usage").map(|ns| ns / 1000).or_else(|| {
            self.read_file(name, "cpu.stat")
                .and_then(|s| s.lines().find_map(|l| l.strip_prefix("usage_usec ").and_then(|v| v.trim().parse().ok())))
        });
        let peak = num("memory.max_usage_in_bytes").or_else(|| num("memory.peak"));
        (cpu_us, peak)
    }

    /// OOM kills of processes in the group.
    pub fn oom_kills(&self, name: &str) -> u64 {
        ["memory.oom_control", "memory.events"]
            .iter()
            .filter_map(|f| self.read_file(name, f))
            .find_map(|s| s.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok())))
            .unwrap_or(0)
    }

    /// Removes the group, or keeps it for later if processes remain in it.
    pub fn remove(&mut self, name: &str) {
        if !self.try_remove(name) {
            self.stale.push(name.to_string());
        }
    }

    fn try_remove(&self, name: &str) -> bool {
        let mut ok = true;
        for d in &self.dirs {
            match sys::rmdir_at(d.as_fd(), Path::new(name)) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(_) => ok = false,
            }
        }
        ok
    }

    /// Retries the removal of groups left behind earlier.
    pub fn sweep(&mut self) {
        let stale = std::mem::take(&mut self.stale);
        self.stale = stale.into_iter().filter(|n| !self.try_remove(n)).collect();
    }
}
