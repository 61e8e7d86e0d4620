//! Every raw syscall and `unsafe` block of the runtime lives under this module,
//! behind safe functions. The rest of the crate never calls `libc` directly for
//! anything that needs `unsafe`.
//!
//! Most of these wrappers are used by the zygote and the sandbox init, which
//! are single-threaded processes: `fork` there is safe, and the children may
//! allocate.

mod creds;
mod fdio;
mod mount;
mod net;
mod process;

pub use creds::*;
pub use fdio::*;
pub use mount::*;
pub use net::*;
pub use process::*;

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Turns a `-1`-on-error return value into an `io::Result`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`check`] for `long`-returning syscalls.
fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path as a C string; a path with a NUL byte is an invalid-input error.
pub fn cpath(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A string as a C string; a string with a NUL byte is an invalid-input error.
pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains a NUL byte"))
}
