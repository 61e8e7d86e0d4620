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

/// `umount2(2)`.
pub fn umount(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = cpath(target)?;
    // SAFETY: c is a valid C string.
    check(unsafe { libc::umount2(c.as_ptr(), flags) }).map(drop)
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
