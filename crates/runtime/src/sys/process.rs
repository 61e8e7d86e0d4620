//! Processes: clone with namespaces, fork, exec, wait, signals.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::{check, check_long};

/// Namespace flags of a sandbox created by [`clone_sandbox`].
pub const SANDBOX_NS_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

/// Result of a fork-like call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// `clone(2)` with fork semantics (no new stack, `SIGCHLD` on exit) plus
/// namespace flags. Must only be called from a single-threaded process.
pub fn clone_with_flags(ns_flags: libc::c_int) -> io::Result<Forked> {
    let flags = (ns_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves like
    // fork(2): the child gets a copy of the address space. The caller is
    // single-threaded (zygote), so no lock can be held by another thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match check_long(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

/// `unshare(2)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with integer argument.
    check(unsafe { libc::unshare(flags) }).map(drop)
}

/// Terminates the calling process immediately, without running destructors
/// or flushing stdio: what a forked child that failed before exec must do.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Status and resource usage of a reaped child.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: libc::pid_t,
    /// Exit code when the child exited.
    pub code: Option<i32>,
    /// Signal when the child was killed.
    pub signal: Option<i32>,
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size in bytes.
    pub max_rss_bytes: u64,
}

/// `wait4(pid, WNOHANG)`: the next reaped child, or `None` when none is ready.
pub fn reap(pid: libc::pid_t) -> io::Result<Option<Reaped>> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: status and usage are valid writable locations.
    let ret = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    if ret == -1 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ECHILD) {
            return Ok(None);
        }
        return Err(err);
    }
    if ret == 0 {
        return Ok(None);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    Ok(Some(Reaped {
        pid: ret,
        code,
        signal,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_bytes: (usage.ru_maxrss as u64) * 1024,
    }))
}

/// `kill(2)`; a vanished process is not an error.
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::kill(pid, sig) };
    match check(ret) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// `setsid(2)`.
pub fn setsid() -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() }).map(drop)
}

/// `setpgid(0, 0)`: the caller leads a new process group of its session.
pub fn new_process_group() -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setpgid(0, 0) }).map(drop)
}

/// Blocks `SIGCHLD` and returns a signalfd that reports it.
pub fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain old data and sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
    }
    // SAFETY: set is initialised; the old mask is not requested.
    check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: set is initialised; -1 creates a new signalfd.
    let fd = check(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: fd was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Empties a signalfd and returns the sender of each signal read (for
/// `SIGCHLD`, the child that changed state). Signals of one kind pending at
/// once are merged into one, so a child can be missing from the list.
pub fn drain_signalfd_pids(fd: &OwnedFd) -> Vec<libc::pid_t> {
    let mut pids = Vec::new();
    // SAFETY: signalfd_siginfo is plain old data; zeroed is a valid value.
    let mut infos: [libc::signalfd_siginfo; 16] = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: infos is valid for writes of its whole size.
        let n = unsafe { libc::read(fd.as_raw_fd(), infos.as_mut_ptr().cast(), size * infos.len()) };
        if n <= 0 {
            break;
        }
        let read = n as usize / size;
        pids.extend(infos[..read].iter().map(|i| i.ssi_pid as libc::pid_t));
    }
    pids
}

/// Empties a signalfd (the siginfo content is not needed: children are reaped
/// with `wait4` until none is left).
pub fn drain_signalfd(fd: &OwnedFd) {
    let mut buf = [0u8; 128 * 8];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
    }
}

/// Restores what a fresh process expects before exec: `SIGPIPE` back to its
/// default (the only disposition the zygote and init set to ignore; handlers
/// reset on exec by themselves) and an empty signal mask.
pub fn reset_signals() {
    // SAFETY: setting SIG_DFL is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: sigset_t is plain old data and sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset_t; unblocking everything cannot fail.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Ignores `SIGPIPE` so writes to closed pipes return `EPIPE`.
pub fn ignore_sigpipe() {
    // SAFETY: setting SIG_IGN is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Sets one resource limit (soft and hard).
pub fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit { rlim_cur: value, rlim_max: value };
    // SAFETY: lim is a valid rlimit.
    check(unsafe { libc::setrlimit(resource, &lim) }).map(drop)
}

/// `pidfd_open(2)`: a descriptor that names `pid` for as long as it is held,
/// immune to pid reuse, and that becomes readable when the process exits.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = check_long(ret)? as libc::c_int;
    // SAFETY: the syscall returned a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process a pidfd names; an exited process is not an error.
pub fn pidfd_kill(pidfd: std::os::fd::BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed.
    let ret = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    match check_long(ret) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(drop),
    }
}

/// Pid of the parent process (0 when the parent is outside our pid namespace).
pub fn parent_pid() -> libc::pid_t {
    // SAFETY: always succeeds.
    unsafe { libc::getppid() }
}

/// Takes ownership of a descriptor inherited across exec (checking that it
/// is open) and marks it close-on-exec.
pub fn take_inherited_fd(fd: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on any integer is safe; it fails with EBADF if not open.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    // SAFETY: the descriptor is open and nothing else in this process owns it
    // (it was placed there by our parent for us).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Spawns `exe args…` with `fd` duplicated onto descriptor `target` in the child.
pub fn spawn_with_fd(
    exe: &std::path::Path,
    args: &[String],
    fd: OwnedFd,
    target: std::os::fd::RawFd,
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args).stdin(std::process::Stdio::null());
    // SAFETY: the closure runs between fork and exec and only calls dup2 and
    // fcntl, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if raw == target {
                if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(raw, target) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(fd);
    child
}

/// Caps a resource limit at `value` (never raises it: raising needs privileges).
pub fn cap_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: cur is a valid writable rlimit.
    check(unsafe { libc::getrlimit(resource, &mut cur) })?;
    let v = value.min(cur.rlim_max);
    set_rlimit(resource, v)
}

/// Sets the nice value of process `pid` (0 = the caller). Lowering it needs
/// CAP_SYS_NICE, which the server has and sandboxes do not.
pub fn set_nice(pid: libc::pid_t, nice: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, nice) }).map(drop)
}

/// Whether the process a pidfd names has exited (its pidfd is readable).
pub fn pidfd_exited(pidfd: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut p = [libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
    // SAFETY: p is a valid array of one pollfd; zero timeout.
    let n = unsafe { libc::poll(p.as_mut_ptr(), 1, 0) };
    n > 0 && p[0].revents != 0
}

/// An `execve` prepared in advance, so the call itself allocates nothing
/// (it runs in a child that shares this process's memory).
pub struct ExecArgs {
    path: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut env_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
        // The CStrings' heap buffers do not move when the Vecs holding them
        // are moved into the struct, so the pointers stay valid.
        Self { path, _argv: argv, _envp: envp, argv_ptrs, env_ptrs }
    }

    /// Replaces the process image. Only returns on failure.
    pub fn exec(&self) -> io::Error {
        // SAFETY: both arrays are NUL-terminated arrays of pointers into C
        // strings owned by self, which outlives the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv_ptrs.as_ptr(), self.env_ptrs.as_ptr()) };
        io::Error::last_os_error()
    }
}

/// `chdir(2)` with a prepared path (no allocation).
pub fn chdir(path: &CString) -> io::Result<()> {
    // SAFETY: path is a valid C string.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

extern "C" fn vfork_trampoline<F: FnMut() -> i32>(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the `&mut F` passed by vfork_run, alive while the
    // parent is suspended (CLONE_VFORK) for the child's whole life before exec.
    let f = unsafe { &mut *arg.cast::<F>() };
    f()
}

/// Runs `f` in a child that shares this process's memory, on `stack`, as
/// `posix_spawn` does (`clone(CLONE_VM | CLONE_VFORK)`): no page tables are
/// copied and no page is copied on write; this process is suspended until
/// the child execs or exits. `f` must end in an exec or [`exit_now`], must
/// not drop or move what it borrows, and must not leave memory allocated.
pub fn vfork_run<F: FnMut() -> i32>(stack: &mut [u8], f: &mut F) -> io::Result<libc::pid_t> {
    // The stack grows down: start at its 16-byte aligned top.
    let top = stack.as_mut_ptr_range().end as usize & !15;
    // SAFETY: the child runs vfork_trampoline::<F> on a stack of its own
    // inside `stack`, which outlives it (this call does not return before the
    // child execs or exits); `f` is a valid &mut F for the same span.
    let pid = unsafe {
        libc::clone(
            vfork_trampoline::<F>,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (f as *mut F).cast::<libc::c_void>(),
        )
    };
    check(pid)
}
