//! The files API inside the sandbox: put, get and list under `/workspace`
//! and `/tmp`. Paths are resolved with `openat2(RESOLVE_BENEATH)`, so `..`,
//! absolute paths and symlinks can never lead out of the allowed directory.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use superserver_wire::FileEntry;

use crate::proto::FileErrorKind;
use crate::spec::{SANDBOX_UID, WORKSPACE};
use crate::sys;

/// Directories the files API may touch.
const ALLOWED_BASES: &[&str] = &[WORKSPACE, "/tmp"];

pub type FileResult<T> = Result<T, (FileErrorKind, String)>;

fn err(kind: FileErrorKind, msg: impl Into<String>) -> (FileErrorKind, String) {
    (kind, msg.into())
}

/// Splits a request path into an allowed base directory and a relative path.
/// Relative paths are relative to `/workspace`.
pub fn split_path(path: &str) -> FileResult<(&'static str, PathBuf)> {
    let p = Path::new(path);
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(err(FileErrorKind::Outside, format!("{path}: `..` is not allowed in paths")));
    }
    if !p.is_absolute() {
        let rel: PathBuf = p.components().filter(|c| matches!(c, Component::Normal(_))).collect();
        return Ok((WORKSPACE, rel));
    }
    for base in ALLOWED_BASES {
        if let Ok(rest) = p.strip_prefix(base) {
            return Ok((base, rest.to_path_buf()));
        }
    }
    Err(err(FileErrorKind::Outside, format!("{path}: only paths under /workspace and /tmp are accessible")))
}

fn map_io(path: &str, e: std::io::Error) -> (FileErrorKind, String) {
    let kind = match e.raw_os_error() {
        Some(libc::ENOENT) => FileErrorKind::NotFound,
        Some(libc::EXDEV) | Some(libc::ELOOP) => FileErrorKind::Outside,
        Some(libc::EISDIR) => FileErrorKind::IsDirectory,
        Some(libc::ENOTDIR) => FileErrorKind::NotDirectory,
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => FileErrorKind::NoSpace,
        _ => FileErrorKind::Other,
    };
    let msg = match kind {
        FileErrorKind::Outside => format!("{path}: the path leads outside the sandbox's files area"),
        FileErrorKind::NotFound => format!("{path}: no such file or directory"),
        FileErrorKind::NoSpace => format!("{path}: the sandbox's disk is full"),
        _ => format!("{path}: {e}"),
    };
    (kind, msg)
}

fn open_base(base: &str) -> std::io::Result<OwnedFd> {
    let f = File::open(base)?;
    Ok(OwnedFd::from(f))
}

/// Creates the missing parent directories of `rel` beneath `base`.
fn ensure_parents(base: &OwnedFd, rel: &Path, path: &str) -> FileResult<()> {
    let Some(parent) = rel.parent() else { return Ok(()) };
    let mut prefix = PathBuf::new();
    for comp in parent.components() {
        prefix.push(comp);
        match sys::open_beneath(base.as_fd(), &prefix, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(map_io(path, e)),
        }
        // Create it inside its (already checked) parent.
        let parent_fd = match prefix.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(pp) => sys::open_beneath(base.as_fd(), pp, libc::O_PATH | libc::O_DIRECTORY, 0),
            None => sys::open_beneath(base.as_fd(), Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0),
        }
        .map_err(|e| map_io(path, e))?;
        let name = prefix.file_name().map(Path::new).unwrap_or(Path::new("."));
        sys::mkdir_at(parent_fd.as_fd(), name, 0o755).map_err(|e| map_io(path, e))?;
        let dir = sys::open_beneath(base.as_fd(), &prefix, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| map_io(path, e))?;
        sys::fchown(dir.as_fd(), SANDBOX_UID, SANDBOX_UID).map_err(|e| map_io(path, e))?;
    }
    Ok(())
}

/// Writes `data` to `path` (creating parents), owned by the sandbox user.
pub fn write(path: &str, data: &[u8], mode: u32) -> FileResult<u64> {
    let (base, rel) = split_path(path)?;
    if rel.as_os_str().is_empty() {
        return Err(err(FileErrorKind::IsDirectory, format!("{path}: is a directory")));
    }
    let base_fd = open_base(base).map_err(|e| map_io(path, e))?;
    ensure_parents(&base_fd, &rel, path)?;
    // O_NONBLOCK: a FIFO the sandbox planted must not block the init (which
    // serves everything else); only regular files are written.
    let fd = sys::open_beneath(
        base_fd.as_fd(),
        &rel,
        libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        mode & 0o7777,
    )
    .map_err(|e| map_io(path, e))?;
    let mut f = File::from(fd);
    if !f.metadata().map_err(|e| map_io(path, e))?.is_file() {
        return Err(err(FileErrorKind::Other, format!("{path}: not a regular file")));
    }
    f.set_len(0).map_err(|e| map_io(path, e))?;
    sys::fchown(f.as_fd(), SANDBOX_UID, SANDBOX_UID).map_err(|e| map_io(path, e))?;
    f.write_all(data).map_err(|e| map_io(path, e))?;
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| map_io(path, e))?;
    Ok(data.len() as u64)
}

/// What a path holds.
pub enum Content {
    File(Vec<u8>),
    Dir(Vec<FileEntry>),
}

/// Reads a file (at most `max_bytes`) or lists a directory.
pub fn read(path: &str, max_bytes: u64, list_only: bool) -> FileResult<Content> {
    let (base, rel) = split_path(path)?;
    let base_fd = open_base(base).map_err(|e| map_io(path, e))?;
    let rel = if rel.as_os_str().is_empty() { PathBuf::from(".") } else { rel };
    // O_NONBLOCK so a planted FIFO cannot block the init; checked below.
    let fd =
        sys::open_beneath(base_fd.as_fd(), &rel, libc::O_RDONLY | libc::O_NONBLOCK, 0).map_err(|e| map_io(path, e))?;
    let f = File::from(fd);
    let meta = f.metadata().map_err(|e| map_io(path, e))?;
    if meta.is_dir() {
        return list(f, path).map(Content::Dir);
    }
    if list_only {
        return Err(err(FileErrorKind::NotDirectory, format!("{path}: not a directory")));
    }
    if !meta.is_file() {
        return Err(err(FileErrorKind::Other, format!("{path}: not a regular file")));
    }
    if meta.len() > max_bytes {
        return Err(err(
            FileErrorKind::TooLarge,
            format!("{path}: {} bytes, more than the {max_bytes} that can be downloaded at once", meta.len()),
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(max_bytes + 1).read_to_end(&mut buf).map_err(|e| map_io(path, e))?;
    if buf.len() as u64 > max_bytes {
        return Err(err(FileErrorKind::TooLarge, format!("{path}: larger than {max_bytes} bytes")));
    }
    Ok(Content::File(buf))
}

fn list(dir: File, path: &str) -> FileResult<Vec<FileEntry>> {
    use std::os::fd::AsRawFd;
    // The descriptor is already resolved beneath the base; list through it.
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let rd = std::fs::read_dir(&fd_path).map_err(|e| map_io(path, e))?;
    let mut entries = Vec::new();
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        entries.push(FileEntry {
            name: e.file_name().to_string_lossy().into_owned(),
            kind: kind.into(),
            size: m.len(),
            mode: m.mode() & 0o7777,
            modified_ms: m.mtime() * 1000 + m.mtime_nsec() / 1_000_000,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_split_into_allowed_bases() {
        assert_eq!(split_path("a/b.txt").unwrap(), ("/workspace", PathBuf::from("a/b.txt")));
        assert_eq!(split_path("/workspace/x").unwrap(), ("/workspace", PathBuf::from("x")));
        assert_eq!(split_path("/tmp/y").unwrap(), ("/tmp", PathBuf::from("y")));
        assert_eq!(split_path("./z").unwrap(), ("/workspace", PathBuf::from("z")));
    }

    #[test]
    fn escapes_are_refused() {
        for p in ["../etc/passwd", "a/../../x", "/etc/passwd", "/workspacefoo/x", "/proc/1/root"] {
            let (kind, _) = split_path(p).expect_err(p);
            assert_eq!(kind, FileErrorKind::Outside, "{p}");
        }
    }
}
