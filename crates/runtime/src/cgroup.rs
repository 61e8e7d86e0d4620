//! Control groups for sandboxes, on cgroup v2 (unified) or v1 (one hierarchy
//! per controller). Every sandbox gets one group (one directory per v1
//! hierarchy) under `<parent>/<instance>`, where the limits are set and from
//! which its processes are counted and killed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use superserver_wire::EffectiveLimits;

use crate::sys;

/// v1 controllers a sandbox joins; `memory` and `pids` are required. Each
/// hierarchy costs a directory and a process migration per sandbox, so only
/// the ones that limit (memory, pids, cpu) or kill (freezer) are joined; CPU
/// time comes from the commands' rusage. (Where cpuacct is co-mounted with
/// cpu, it comes along.)
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "freezer"];
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone)]
enum Layout {
    /// One unified hierarchy mounted at this path.
    V2 { mount: PathBuf },
    /// Controller name → mount point of its hierarchy.
    V1 { mounts: Vec<(&'static str, PathBuf)> },
}

/// The cgroup tree of one SuperServer instance.
#[derive(Debug, Clone)]
pub struct Cgroups {
    layout: Layout,
    /// Path of the instance's parent group, relative to each hierarchy root.
    parent: PathBuf,
    /// The cgroup2 mount, with its superblock options, whether or not the
    /// sandboxes use it (v1 hosts often have one beside the v1 hierarchies).
    v2_mount: Option<(PathBuf, String)>,
}

/// Whether moving a process into a cgroup is cheap on this host.
///
/// Every migration, in any hierarchy, takes the kernel's global
/// `cgroup_threadgroup_rwsem` for writing; by default that first waits for an
/// RCU grace period whenever no other migration happened in the last one —
/// 5 to 30 ms on an idle host, paid by each sandbox and each command that gets
/// its own group. The cgroup2 option `favordynmods` keeps the lock in the
/// mode where writers do not wait, at the cost of a memory barrier in every
/// fork and exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Migrations {
    /// `favordynmods` is on; `enabled_now` when this start turned it on.
    Fast { enabled_now: bool },
    /// It is off, and why.
    Slow { reason: String },
}

impl Migrations {
    /// For `/v1/status`.
    pub fn describe(&self) -> String {
        match self {
            Self::Fast { .. } => "fast (cgroup2 favordynmods)".into(),
            Self::Slow { reason } => format!("slow: may wait an RCU grace period ({reason})"),
        }
    }
}

/// Memory still charged to a finished sandbox's group above which the group
/// is removed rather than kept for the next sandbox: the page cache and
/// kernel objects its processes left count against the next one's limit
/// until reclaimed.
const SPARE_MAX_RESIDUE_BYTES: u64 = 8 << 20;

/// One sandbox's group.
#[derive(Debug, Clone)]
pub struct SandboxCgroup {
    /// The group's directory in each hierarchy (one for v2).
    dirs: Vec<PathBuf>,
    /// v1: controller name → the group's directory in that controller's hierarchy.
    by_controller: Vec<(&'static str, PathBuf)>,
    v2: bool,
    /// OOM kills the group had counted before this sandbox got it (a group
    /// is reused by later sandboxes; the kernel's count is cumulative).
    oom_base: u64,
    /// The group's path relative to each hierarchy's root.
    rel: PathBuf,
    /// The limits written to the group (none yet for a group only opened).
    applied: Option<EffectiveLimits>,
}

impl Cgroups {
    /// Finds the cgroup hierarchies from `/proc/self/mountinfo` and creates
    /// the parent group `parent` (e.g. `superserver/<instance>`) in each.
    pub fn detect(parent: &Path) -> io::Result<Self> {
        let info = fs::read_to_string("/proc/self/mountinfo")?;
        let mut v2 = None;
        let mut v2_mount = None;
        let mut v1: Vec<(&'static str, PathBuf)> = Vec::new();
        for line in info.lines() {
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let mount_point = left.split(' ').nth(4).map(unescape_mount_path);
            let mut rf = right.split(' ');
            let (Some(fstype), _, Some(opts)) = (rf.next(), rf.next(), rf.next()) else { continue };
            let Some(mount_point) = mount_point else { continue };
            match fstype {
                "cgroup2" => {
                    v2_mount.get_or_insert_with(|| (mount_point.clone(), opts.to_string()));
                    v2 = Some(mount_point);
                }
                "cgroup" => {
                    for c in V1_CONTROLLERS {
                        if opts.split(',').any(|o| o == *c) && !v1.iter().any(|(n, _)| n == c) {
                            v1.push((c, mount_point.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        let has = |c: &str| v1.iter().any(|(n, _)| *n == c);
        let layout = match v2 {
            Some(mount) if v2_has_controllers(&mount) => Layout::V2 { mount },
            _ if has("memory") && has("pids") => Layout::V1 { mounts: v1 },
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no usable cgroup hierarchy: need cgroup v2 with the memory, pids and cpu \
                     controllers, or cgroup v1 memory and pids hierarchies",
                ))
            }
        };
        let cg = Self { layout, parent: parent.to_path_buf(), v2_mount };
        cg.create_parent()?;
        Ok(cg)
    }

    /// Whether cgroup migrations are cheap ([`Migrations`]), turning the
    /// cgroup2 option `favordynmods` on first if `enable`. The option belongs
    /// to the host's one cgroup2 root, so it stays on for the whole host until
    /// reboot; the root's other options are kept as they are.
    pub fn migrations(&self, enable: bool) -> Migrations {
        let Some((mount, opts)) = &self.v2_mount else {
            return Migrations::Slow { reason: "no cgroup2 mount to set favordynmods on".into() };
        };
        let Some(flags) = favordynmods_options(opts) else {
            return Migrations::Fast { enabled_now: false };
        };
        if !enable {
            return Migrations::Slow { reason: "[sandbox] cgroup_favordynmods = false".into() };
        }
        let supported = fs::read_to_string("/sys/kernel/cgroup/features")
            .map(|f| f.lines().any(|l| l.trim() == "favordynmods"))
            .unwrap_or(false);
        if !supported {
            return Migrations::Slow { reason: "the kernel has no favordynmods (it came in Linux 6.0)".into() };
        }
        if let Err(e) = sys::reconfigure_fs(mount, &flags) {
            return Migrations::Slow { reason: format!("cannot set favordynmods: {e}") };
        }
        // Outside the host's cgroup namespace the kernel ignores the option
        // without an error: believe only what the mount table says now.
        let now_on = fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
            info.lines().any(|l| {
                let Some((left, right)) = l.split_once(" - ") else { return false };
                left.split(' ').nth(4).map(unescape_mount_path).as_deref() == Some(mount.as_path())
                    && right.split(' ').nth(2).is_some_and(|o| o.split(',').any(|f| f == "favordynmods"))
            })
        });
        if now_on {
            Migrations::Fast { enabled_now: true }
        } else {
            Migrations::Slow {
                reason: "the kernel did not take favordynmods (not the host's cgroup namespace?)".into(),
            }
        }
    }

    /// `"v2"` or `"v1"`.
    pub fn version(&self) -> &'static str {
        match self.layout {
            Layout::V2 { .. } => "v2",
            Layout::V1 { .. } => "v1",
        }
    }

    fn parent_dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V2 { mount } => vec![mount.join(&self.parent)],
            Layout::V1 { mounts } => {
                let mut dirs: Vec<PathBuf> = Vec::new();
                for (_, m) in mounts {
                    let d = m.join(&self.parent);
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
                dirs
            }
        }
    }

    fn create_parent(&self) -> io::Result<()> {
        match &self.layout {
            Layout::V2 { mount } => {
                // Enable the controllers on every level from the root down.
                let mut dir = mount.clone();
                enable_v2_controllers(&dir)?;
                for part in self.parent.components() {
                    dir.push(part);
                    mkdir_exist_ok(&dir)?;
                    enable_v2_controllers(&dir)?;
                }
            }
            Layout::V1 { .. } => {
                for dir in self.parent_dirs() {
                    fs::create_dir_all(&dir)?;
                }
            }
        }
        Ok(())
    }

    /// Creates the group `name` with `limits` applied.
    pub fn create(&self, name: &str, limits: &EffectiveLimits) -> io::Result<SandboxCgroup> {
        let mut group = self.open(name);
        for dir in &group.dirs {
            mkdir_exist_ok(dir)?;
        }
        if let Err(e) = group.apply_limits(limits) {
            let _ = group.remove();
            return Err(e);
        }
        Ok(group)
    }

    /// Takes the spare group `name` (one [`SandboxCgroup::recycle`] kept,
    /// carrying the limits `had`) for a new sandbox with `limits`, writing
    /// only the limits that differ. Reusing a group instead of creating one
    /// spares the kernel a memory cgroup's allocation and, above all, its
    /// offlining, which walks every superblock's LRU lists under the cgroup
    /// mutex: with a thousand sandboxes alive that stalls every other
    /// sandbox's creation. Skipping an unchanged CPU quota spares another
    /// walk: setting one checks the quotas of every group on the host.
    pub fn reuse(&self, name: &str, had: &EffectiveLimits, limits: &EffectiveLimits) -> io::Result<SandboxCgroup> {
        let mut group = self.open(name);
        if !group.dirs.iter().all(|d| d.is_dir()) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("spare cgroup {name} is gone")));
        }
        group.oom_base = group.oom_kills_total();
        group.applied = Some(*had);
        group.apply_limits(limits)?;
        Ok(group)
    }

    /// The group `name`, whether or not it exists.
    pub fn open(&self, name: &str) -> SandboxCgroup {
        let by_controller = match &self.layout {
            Layout::V2 { .. } => Vec::new(),
            Layout::V1 { mounts } => mounts.iter().map(|(c, m)| (*c, m.join(&self.parent).join(name))).collect(),
        };
        SandboxCgroup {
            dirs: self.parent_dirs().into_iter().map(|d| d.join(name)).collect(),
            by_controller,
            v2: matches!(self.layout, Layout::V2 { .. }),
            oom_base: 0,
            rel: self.parent.join(name),
            applied: None,
        }
    }

    /// Removes the instance's parent group if no sandbox group is left in
    /// it (at shutdown). The shared `superserver` level stays.
    pub fn remove_parent(&self) {
        for dir in self.parent_dirs() {
            let _ = fs::remove_dir(dir);
        }
    }

    /// Names of the groups under this instance's parent (sandboxes of this
    /// or a previous run of the server).
    pub fn list(&self) -> Vec<String> {
        let mut names = Vec::new();
        for dir in self.parent_dirs() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
        }
        names
    }
}

impl SandboxCgroup {
    /// The group's path relative to each hierarchy's root, e.g.
    /// `superserver/<instance>/s12` (where a metrics collector finds it).
    pub fn rel_path(&self) -> &Path {
        &self.rel
    }

    fn file(&self, controller_hint: &str, name: &str) -> Option<PathBuf> {
        if self.v2 {
            return self.dirs.first().map(|d| d.join(name));
        }
        // v1: the file lives in the hierarchy that carries the controller.
        self.by_controller.iter().find(|(c, _)| *c == controller_hint).map(|(_, d)| d.join(name))
    }

    fn write(&self, controller: &str, name: &str, value: &str) -> io::Result<()> {
        match self.file(controller, name) {
            Some(p) => {
                fs::write(&p, value).map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", p.display())))
            }
            None => Ok(()),
        }
    }

    fn read(&self, controller: &str, name: &str) -> Option<String> {
        self.file(controller, name).and_then(|p| fs::read_to_string(p).ok())
    }

    /// The limits the group carries.
    pub fn limits(&self) -> Option<&EffectiveLimits> {
        self.applied.as_ref()
    }

    /// Writes `l` to the group: every limit for a new group, only those
    /// that differ from what it carries for a reused one. Writing a CPU
    /// quota makes the kernel check every group's quota on the host
    /// (`tg_set_cfs_bandwidth`), so an unchanged one is not rewritten.
    fn apply_limits(&mut self, l: &EffectiveLimits) -> io::Result<()> {
        let had = self.applied.take();
        let changed = |f: fn(&EffectiveLimits) -> u64| had.as_ref().is_none_or(|h| f(h) != f(l));
        let mem = (l.memory_mb * 1024 * 1024).to_string();
        let quota = u64::from(l.cpu_percent) * CPU_PERIOD_US / 100;
        let memory = changed(|x| x.memory_mb);
        let pids = changed(|x| u64::from(x.pids));
        let cpu = changed(|x| u64::from(x.cpu_percent));
        if self.v2 {
            if memory {
                self.write("", "memory.max", &mem)?;
                self.write("", "memory.swap.max", "0").or_else(ignore_missing)?;
            }
            if pids {
                self.write("", "pids.max", &l.pids.to_string())?;
            }
            if cpu {
                self.write("", "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
            }
        } else {
            if memory {
                // The memory+swap limit may never be below the memory
                // limit: lift it first, whichever way the limit moves.
                if had.is_some() {
                    self.write("memory", "memory.memsw.limit_in_bytes", "-1").or_else(ignore_missing)?;
                }
                self.write("memory", "memory.limit_in_bytes", &mem)?;
                // Swap included in the limit where the kernel accounts it.
                self.write("memory", "memory.memsw.limit_in_bytes", &mem).or_else(ignore_missing)?;
            }
            if pids {
                self.write("pids", "pids.max", &l.pids.to_string())?;
            }
            if cpu {
                // The period is the kernel's default (100 ms): only the quota is set.
                self.write("cpu", "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        self.applied = Some(*l);
        Ok(())
    }

    /// Hands the group to the sandbox's root (host uid `owner`), so its init
    /// can create a child group per command. On v2 moving a process between
    /// the group and a child needs write access to the group's `cgroup.procs`
    /// too. The limits stay owned by host root.
    pub fn delegate(&self, owner: u32) -> io::Result<()> {
        for dir in &self.dirs {
            std::os::unix::fs::chown(dir, Some(owner), Some(owner))?;
            if self.v2 {
                std::os::unix::fs::chown(dir.join("cgroup.procs"), Some(owner), Some(owner))?;
            }
        }
        Ok(())
    }

    /// Files a process id is written to so that it joins the group.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Number of OOM kills in the group since this sandbox got it.
    pub fn oom_kills(&self) -> u64 {
        self.oom_kills_total().saturating_sub(self.oom_base)
    }

    /// The kernel's count of OOM kills in the group, over all its users.
    fn oom_kills_total(&self) -> u64 {
        let (ctl, file, key) =
            if self.v2 { ("", "memory.events", "oom_kill ") } else { ("memory", "memory.oom_control", "oom_kill ") };
        self.read(ctl, file)
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok())))
            .unwrap_or(0)
    }

    /// Makes the group of a finished sandbox (its init has exited) ready for
    /// another: removes the child groups its init made, checks that no
    /// process is left, thaws it, resets its peak, and gives the directories
    /// back to `owner` with their original mode. `Ok(false)` when it should
    /// be removed instead: a process is still in it, or more memory than
    /// [`SPARE_MAX_RESIDUE_BYTES`] is still charged to it.
    pub fn recycle(&self, owner: u32) -> io::Result<bool> {
        for dir in self.tree() {
            if !self.dirs.contains(&dir) {
                match fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => return Ok(false),
                }
            }
        }
        if !self.pids().is_empty() {
            return Ok(false);
        }
        let usage = if self.v2 { "memory.current" } else { "memory.usage_in_bytes" };
        match self.read("memory", usage).and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(bytes) if bytes <= SPARE_MAX_RESIDUE_BYTES => {}
            _ => return Ok(false),
        }
        if self.v2 {
            self.write("", "cgroup.freeze", "0").or_else(ignore_missing)?;
        } else {
            self.write("freezer", "freezer.state", "THAWED")?;
            self.write("memory", "memory.max_usage_in_bytes", "0")?;
            self.write("memory", "memory.memsw.max_usage_in_bytes", "0").or_else(ignore_missing)?;
            self.write("memory", "memory.failcnt", "0")?;
        }
        use std::os::unix::fs::PermissionsExt;
        for dir in &self.dirs {
            std::os::unix::fs::chown(dir, Some(owner), Some(owner))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        }
        Ok(true)
    }

    /// The group's directories and those of its child groups (per-command
    /// groups), deepest first.
    fn tree(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        walk(&e.path(), out);
                    }
                }
            }
            out.push(dir.to_path_buf());
        }
        let mut out = Vec::new();
        for d in &self.dirs {
            walk(d, &mut out);
        }
        out
    }

    /// Every process id in the group and its child groups, across hierarchies.
    pub fn pids(&self) -> Vec<libc::pid_t> {
        let mut pids = Vec::new();
        for f in self.tree().into_iter().map(|d| d.join("cgroup.procs")) {
            if let Ok(s) = fs::read_to_string(f) {
                for p in s.lines().filter_map(|l| l.trim().parse().ok()) {
                    if !pids.contains(&p) {
                        pids.push(p);
                    }
                }
            }
        }
        pids
    }

    /// Kills every process in the group, including ones that left their
    /// session or process group.
    pub fn kill_all(&self) {
        if self.v2 {
            if self.write("", "cgroup.kill", "1").is_ok() {
                return;
            }
        } else {
            let _ = self.write("freezer", "freezer.state", "FROZEN");
        }
        for pid in self.pids() {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        if !self.v2 {
            let _ = self.write("freezer", "freezer.state", "THAWED");
        }
    }

    /// Kills what is left and removes the group's directories. Retries while
    /// the kernel is still tearing processes down.
    pub fn remove(&self) -> io::Result<()> {
        let mut last_err = None;
        for attempt in 0..200 {
            last_err = None;
            for dir in self.tree() {
                match fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => last_err = Some(e),
                }
            }
            if last_err.is_none() {
                return Ok(());
            }
            if attempt % 10 == 0 {
                self.kill_all();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("cgroup removal failed")))
    }
}

/// The cgroup2 options to reconfigure with so that `favordynmods` is on and
/// every option set now stays set (a reconfiguration clears what it does not
/// name, such as systemd's `nsdelegate`); `None` if it is already on.
fn favordynmods_options(super_opts: &str) -> Option<Vec<&str>> {
    let mut flags: Vec<&str> = super_opts.split(',').filter(|o| !o.is_empty() && *o != "rw" && *o != "ro").collect();
    if flags.contains(&"favordynmods") {
        return None;
    }
    flags.push("favordynmods");
    Some(flags)
}

fn v2_has_controllers(mount: &Path) -> bool {
    let Ok(s) = fs::read_to_string(mount.join("cgroup.controllers")) else { return false };
    let have: Vec<&str> = s.split_whitespace().collect();
    ["memory", "pids", "cpu"].iter().all(|c| have.contains(c))
}

fn enable_v2_controllers(dir: &Path) -> io::Result<()> {
    fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu")
        .map_err(|e| io::Error::new(e.kind(), format!("enable controllers in {}: {e}", dir.display())))
}

fn mkdir_exist_ok(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(io::Error::new(e.kind(), format!("create cgroup {}: {e}", dir.display())))
        }
        _ => Ok(()),
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::EACCES) {
        Ok(())
    } else {
        Err(e)
    }
}

/// Undoes the octal escapes (`\040` for space …) of paths in mountinfo.
fn unescape_mount_path(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn favordynmods_keeps_the_roots_other_options() {
        assert_eq!(
            favordynmods_options("rw,nsdelegate,memory_recursiveprot"),
            Some(vec!["nsdelegate", "memory_recursiveprot", "favordynmods"])
        );
        assert_eq!(favordynmods_options("rw"), Some(vec!["favordynmods"]));
        assert_eq!(favordynmods_options("rw,favordynmods,nsdelegate"), None);
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
    }
}
