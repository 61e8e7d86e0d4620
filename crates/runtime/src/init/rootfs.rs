//! Builds the sandbox's root filesystem inside its private mount namespace
//! and switches into it.
//!
//! Layout of the `host` image: a size-limited tmpfs as `/`, holding the
//! writable `/workspace` and `/tmp`; the `/etc` the runtime generated at
//! start (see [`crate::etc`]) bound read-only; the host's
//! `/usr` (and the merged-usr symlinks or directories next to it) bound
//! read-only; a minimal `/dev`; a fresh `/proc` with the sensitive parts
//! masked. The tmpfs root itself is remounted read-only at the end, so only
//! `/workspace`, `/tmp` and `/dev/shm` stay writable.
//!
//! A `dir:` image is an overlay of the directory (read-only lower) and an
//! upper layer on the size-limited tmpfs: the whole root is writable and the
//! directory itself is never modified.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::network::Network;
use crate::spec::{Image, SetupSpec, SANDBOX_UID};
use crate::sys::{self, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC};

/// Host directories that make up the `host` image's system view.
const HOST_SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// `/proc` files that are replaced by an empty file, and directories
/// replaced by an empty read-only tmpfs.
const PROC_MASKED_FILES: &[&str] =
    &["kcore", "sysrq-trigger", "kmsg", "keys", "timer_list", "sched_debug", "latency_stats", "kallsyms"];
const PROC_MASKED_DIRS: &[&str] = &["acpi", "scsi", "firmware", "bus/pci"];
/// `/proc` directories made read-only.
const PROC_READONLY: &[&str] = &["sys", "bus", "fs", "irq"];

/// Device nodes bound from the host into `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// What the host offers that every sandbox's root is built from, looked up
/// once (by the zygote, before its first clone: its inits inherit the
/// answer) instead of some thirty `stat`s per sandbox. A change of the
/// host's top-level layout (a new `/lib32`) shows in sandboxes created after
/// the zygote restarts.
struct HostLayout {
    /// `HOST_SYSTEM_DIRS` that exist: a symlink's target, or `None` for a
    /// directory to bind.
    system: Vec<(&'static str, Option<PathBuf>)>,
    proc_readonly: Vec<&'static str>,
    proc_masked_files: Vec<&'static str>,
    proc_masked_dirs: Vec<&'static str>,
}

fn host_layout() -> &'static HostLayout {
    static LAYOUT: OnceLock<HostLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let system = HOST_SYSTEM_DIRS
            .iter()
            .filter_map(|&name| {
                let path = Path::new("/").join(name);
                let meta = fs::symlink_metadata(&path).ok()?;
                if meta.file_type().is_symlink() {
                    Some((name, Some(fs::read_link(&path).ok()?)))
                } else {
                    meta.is_dir().then_some((name, None))
                }
            })
            .collect();
        // Entries of the kernel's procfs, the same in every instance of it.
        let proc = Path::new("/proc");
        let existing = |names: &[&'static str]| names.iter().copied().filter(|n| proc.join(n).exists()).collect();
        HostLayout {
            system,
            proc_readonly: existing(PROC_READONLY),
            proc_masked_files: existing(PROC_MASKED_FILES),
            proc_masked_dirs: PROC_MASKED_DIRS.iter().copied().filter(|n| proc.join(n).is_dir()).collect(),
        }
    })
}

/// Looks the host's layout up now, so that sandboxes cloned from this
/// process inherit it.
pub fn prepare() {
    host_layout();
}

/// Sets up every namespace-local resource and pivots into the new root.
/// Runs in the sandbox's init, after the zygote wrote its id maps.
pub fn setup(spec: &SetupSpec, image_tree: Option<OwnedFd>) -> io::Result<()> {
    sys::unshare(libc::CLONE_NEWCGROUP).map_err(ctx("unshare cgroup namespace"))?;
    sys::set_hostname(&spec.hostname).map_err(ctx("sethostname"))?;
    if spec.network == Network::None {
        // A governed namespace comes configured (and is not ours to change).
        sys::interface_up("lo").map_err(ctx("bring up lo"))?;
    }

    sys::mount(None, Path::new("/"), None, MS_REC | MS_PRIVATE, None).map_err(ctx("make / private"))?;
    let t = &spec.root_mount;
    let size = format!("size={}m,mode=755", spec.limits.disk_mb.max(1));
    sys::mount(Some("tmpfs"), t, Some("tmpfs"), MS_NOSUID | MS_NODEV, Some(&size))?;

    let root = match &spec.image {
        Image::Host => {
            host_root(t, &spec.etc_dir)?;
            t.clone()
        }
        Image::Dir(_) => {
            let tree = image_tree.ok_or_else(|| io::Error::other("the zygote sent no image mount for a dir: image"))?;
            let root = overlay_root(t, tree)?;
            if spec.network == Network::Governed {
                governed_resolv_conf(&root).map_err(ctx("resolv.conf of the image"))?;
            }
            root
        }
    };
    for dir in ["workspace", "tmp", "proc", "dev"] {
        mkdir(&root.join(dir), 0o755)?;
    }
    let workspace = root.join("workspace");
    std::os::unix::fs::chown(&workspace, Some(SANDBOX_UID), Some(SANDBOX_UID))?;
    // Root inside has no capabilities (no DAC override): let it write too.
    fs::set_permissions(&workspace, fs::Permissions::from_mode(0o777))?;
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    dev(&root.join("dev"))?;
    // An empty, unreadable directory to cover /proc entries with.
    let empty = t.join(".empty");
    mkdir(&empty, 0o000)?;
    proc(&root.join("proc"), &empty)?;

    let host_image = matches!(spec.image, Image::Host);
    if host_image {
        // Separate mounts so they stay writable when the root turns read-only.
        for dir in ["workspace", "tmp"] {
            sys::bind(&root.join(dir), &root.join(dir))?;
        }
    }
    std::env::set_current_dir(&root)?;
    sys::pivot_to_cwd()?;
    if host_image {
        sys::remount_bind(Path::new("/"), MS_RDONLY | MS_NOSUID | MS_NODEV).map_err(ctx("remount / read-only"))?;
    }
    Ok(())
}

fn ctx(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    match fs::create_dir(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), format!("mkdir {}: {e}", path.display()))),
    }
}

/// Binds directory `src` read-only at `dst`.
fn bind_ro(src: &Path, dst: &Path) -> io::Result<()> {
    mkdir(dst, 0o755)?;
    sys::bind(src, dst)?;
    sys::remount_bind(dst, MS_RDONLY | MS_NOSUID | MS_NODEV)
}

fn host_root(t: &Path, etc: &Path) -> io::Result<()> {
    // The host's system directories: the same symlink where it is one (the
    // merged-usr `/bin -> usr/bin`), else a read-only bind.
    for (name, link) in &host_layout().system {
        match link {
            Some(target) => symlink(target, t.join(name))?,
            None => bind_ro(&Path::new("/").join(name), &t.join(name))?,
        }
    }
    // One read-only bind of the /etc the runtime prepared at start.
    bind_ro(etc, &t.join("etc"))?;
    mkdir(&t.join("root"), 0o700)?;
    mkdir(&t.join("var"), 0o755)?;
    symlink("/tmp", t.join("var/tmp"))?;
    mkdir(&t.join("run"), 0o755)?;
    Ok(())
}

fn overlay_root(t: &Path, tree: OwnedFd) -> io::Result<PathBuf> {
    for d in ["lower", "upper", "work", "root"] {
        mkdir(&t.join(d), 0o755)?;
    }
    // The image, id-mapped so its root-owned files belong to our root and
    // can be copied up into the overlay.
    let lower = t.join("lower");
    sys::attach_tree(tree.as_fd(), &lower)?;
    drop(tree);
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.display(),
        t.join("upper").display(),
        t.join("work").display()
    );
    let root = t.join("root");
    sys::mount(Some("overlay"), &root, Some("overlay"), MS_NOSUID | MS_NODEV, Some(&opts))
        .map_err(ctx("overlay mount of the image"))?;
    Ok(root)
}

/// Points the image's resolver at the governed namespace's (in the
/// overlay: the image itself is not changed). An image whose `/etc` is not
/// a directory keeps what it has.
fn governed_resolv_conf(root: &Path) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let etc = root.join("etc");
    match fs::symlink_metadata(&etc) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(()),
        Err(_) => mkdir(&etc, 0o755)?,
    }
    let path = etc.join("resolv.conf");
    // Whatever the image has there (a file, a symlink) is replaced, never followed.
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let text = crate::etc::resolv_conf(Some(crate::network::RESOLVER_ADDR));
    fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path)?.write_all(text.as_bytes())
}

/// `/dev` as a directory of the root (no filesystem of its own: every
/// superblock a sandbox adds makes memory-cgroup teardown slower host-wide).
/// It turns read-only with the root of a `host` image; `/dev/shm` is a bind
/// of itself so it stays writable, sharing the root's size limit.
fn dev(dev: &Path) -> io::Result<()> {
    for name in DEVICES {
        let target = dev.join(name);
        fs::write(&target, b"")?;
        sys::bind(&Path::new("/dev").join(name), &target).map_err(ctx("bind device"))?;
    }
    let pts = dev.join("pts");
    mkdir(&pts, 0o755)?;
    sys::mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MS_NOSUID | MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .map_err(ctx("mount devpts"))?;
    symlink("pts/ptmx", dev.join("ptmx"))?;
    let shm = dev.join("shm");
    mkdir(&shm, 0o1777)?;
    fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777))?;
    sys::bind(&shm, &shm)?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(name))?;
    }
    Ok(())
}

fn proc(proc: &Path, empty: &Path) -> io::Result<()> {
    sys::mount(Some("proc"), proc, Some("proc"), MS_NOSUID | MS_NODEV | MS_NOEXEC, None).map_err(ctx("mount /proc"))?;
    let layout = host_layout();
    for name in &layout.proc_readonly {
        let p = proc.join(name);
        sys::bind(&p, &p)?;
        sys::remount_bind(&p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)?;
    }
    for name in &layout.proc_masked_files {
        sys::bind(Path::new("/dev/null"), &proc.join(name))?;
    }
    for name in &layout.proc_masked_dirs {
        // A bind of an empty directory: cheaper than a tmpfs per mask.
        let p = proc.join(name);
        sys::bind(empty, &p)?;
        sys::remount_bind(&p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)?;
    }
    Ok(())
}
