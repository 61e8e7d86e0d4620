//! Mounts and the root switch.

use std::io;
use std::path::Path;

use super::{check, cpath, cstr};

pub use libc::{MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT};

/// `mount(2)`. `source`, `fstype` and `data` are optional as in C.
pub fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstr).transpose()?;
    let fstype = fstype.map(cstr).transpose()?;
    let data = data.map(cstr).transpose()?;
    let target_c = cpath(target)?;
    let ptr = |c: &Option<std::ffi::CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid NUL-terminated string that
    // outlives the call.
    let ret = unsafe { libc::mount(ptr(&source), target_c.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) };
    check(ret).map(drop).map_err(|e| io::Error::new(e.kind(), format!("mount {}: {e}", target.display())))
}

/// Bind-mounts `source` onto `target`, recursively.
pub fn bind(source: &Path, target: &Path) -> io::Result<()> {
    let src = source.to_str().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "non-UTF-8 path"))?;
    mount(Some(src), target, None, MS_BIND | MS_REC, None)
}

/// Remounts the bind mount at `target` with `flags` (plus `MS_REMOUNT|MS_BIND`),
/// keeping the flags the kernel locked on it (a user namespace may not clear
/// `nosuid`, `nodev`, `noexec` or `rdonly` inherited from its parent).
pub fn remount_bind(target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let locked = statvfs_flags(target)?;
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags | locked, None)
}

/// The mount flags of the filesystem at `path` that must be kept on remount.
fn statvfs_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c = cpath(path)?;
    // SAFETY: statvfs is plain old data; zeroed is valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and st a valid writable statvfs.
    check(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, MS_RDONLY),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// Makes the current directory the root: `pivot_root(".", ".")` followed by a
/// lazy unmount of the old root stacked beneath it, so nothing of the host's
/// mount tree stays reachable.
pub fn pivot_to_cwd() -> io::Result<()> {
    let dot = cstr(".")?;
    // SAFETY: both arguments are valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } as libc::c_int)
        .map_err(|e| io::Error::new(e.kind(), format!("pivot_root: {e}")))?;
    // The old root is now mounted on top of the new one at "/": detach it.
    // SAFETY: dot is a valid C string.
    check(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) })
        .map_err(|e| io::Error::new(e.kind(), format!("detach old root: {e}")))?;
    std::env::set_current_dir("/")
}

/// `sethostname(2)`.
pub fn set_hostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe name's bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached, read-only, id-mapped copy of the mount at `path`: files owned
/// by host uid N appear owned by whatever N maps to in the user namespace
/// `userns` (so an image owned by host root belongs to the sandbox's root,
/// and an overlay on top can copy files up). Needs host privileges.
pub fn idmapped_tree(path: &Path, userns: std::os::fd::BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let c = cpath(path)?;
    // SAFETY: c is a valid C string; flags are plain integers.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("open_tree {}: {e}", path.display())));
    }
    // SAFETY: open_tree returned a new descriptor owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = super::cstr("")?;
    // SAFETY: tree is a valid mount fd, empty a valid C string, attr a valid
    // mount_attr of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("id-map {}: {e}", path.display())));
    }
    Ok(tree)
}

/// Attaches a detached mount (from [`idmapped_tree`]) at `target`.
pub fn attach_tree(tree: std::os::fd::BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = cpath(target)?;
    let empty = super::cstr("")?;
    // SAFETY: valid descriptors and C strings.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("attach image at {}: {e}", target.display())));
    }
    Ok(())
}

const FSPICK_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_CMD_RECONFIGURE: libc::c_uint = 7;

/// Reconfigures the filesystem mounted at `target` with exactly the flag
/// options `flags` (`fspick` + `fsconfig`). The mount's own attributes
/// (`nosuid`, `noexec`, …) are untouched, unlike a `mount -o remount`.
pub fn reconfigure_fs(target: &Path, flags: &[&str]) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let c = cpath(target)?;
    let fail = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{what} {}: {e}", target.display()))
    };
    // SAFETY: c is a valid C string; flags are plain integers.
    let fd = unsafe { libc::syscall(libc::SYS_fspick, libc::AT_FDCWD, c.as_ptr(), FSPICK_CLOEXEC) };
    if fd < 0 {
        return Err(fail("fspick"));
    }
    // SAFETY: fspick returned a new descriptor owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    for flag in flags {
        let key = cstr(flag)?;
        // SAFETY: fs is a valid fs context, key a valid C string; a flag takes no value.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_FLAG,
                key.as_ptr(),
                std::ptr::null::<u8>(),
                0,
            )
        };
        if ret < 0 {
            return Err(fail(&format!("set option {flag} on")));
        }
    }
    // SAFETY: as above; the command takes no key or value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_RECONFIGURE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if ret < 0 {
        return Err(fail("reconfigure"));
    }
    Ok(())
}
