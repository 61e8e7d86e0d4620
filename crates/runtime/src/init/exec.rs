//! Starting one command inside the sandbox, confined.
//!
//! The init forks; the child drops every privilege in the order the kernel
//! requires (user switch → remaining capabilities → no_new_privs → landlock)
//! and execs. The bounding set was emptied and the seccomp filter installed
//! on the init itself, once, and the child inherits both. A failure
//! before exec is written to the command's stderr and reported with exit 126
//! (or 127 when the executable does not exist).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::proto::{ExecSpec, ExitReport};
use crate::spec::SANDBOX_UID;
use crate::sys;

use super::confine::Confinement;
use super::groups::ExecGroups;

/// Default search path when the command's environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A started command the init is watching.
pub struct Running {
    pub id: u32,
    pub pid: libc::pid_t,
    pub started: Instant,
    pub deadline: Option<Instant>,
    pub stdin: Option<OwnedFd>,
    pub stdin_data: Vec<u8>,
    pub stdin_pos: usize,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub max_output: u64,
    pub report: ExitReport,
    /// Set once the main process was reaped.
    pub exited_at: Option<Instant>,
    /// The command's own cgroup, when it has one.
    pub group: Option<String>,
}

/// Outcome of trying to start a command.
pub enum Started {
    Running(Box<Running>),
    /// The command could not start; its report is final.
    Failed(ExitReport),
}

fn failed(id: u32, code: i32, message: String) -> Started {
    Started::Failed(ExitReport { id, code: Some(code), error: Some(message), ..Default::default() })
}

/// Finds the executable for `argv0` the way `execvp` would.
fn resolve(argv0: &str, env: &[(String, String)], cwd: &Path) -> Result<PathBuf, (i32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> Result<(), (i32, String)> {
        match std::fs::metadata(p) {
            Err(_) => Err((127, format!("executable not found: {argv0}"))),
            Ok(m) if m.is_dir() => Err((126, format!("{argv0}: is a directory"))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => Err((126, format!("{argv0}: permission denied"))),
            Ok(_) => Ok(()),
        }
    };
    if argv0.contains('/') {
        let p = if argv0.starts_with('/') { PathBuf::from(argv0) } else { cwd.join(argv0) };
        check(&p)?;
        return Ok(p);
    }
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let mut last = Err((127, format!("executable not found: {argv0} (searched PATH={path})")));
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(argv0);
        match check(&p) {
            Ok(()) => return Ok(p),
            Err((126, m)) => last = Err((126, m)),
            Err(_) => {}
        }
    }
    last
}

/// What every command of a sandbox starts from.
pub struct Launch<'a> {
    /// Whether the command must reset the OOM score the init was given.
    pub reset_oom: bool,
    pub confine: &'a Confinement,
    /// The sandbox's `/dev/null`: stdin of a command without input.
    pub null: BorrowedFd<'a>,
}

/// Starts `spec` with `stdin` as its input.
pub fn start(
    spec: &ExecSpec,
    stdin: Vec<u8>,
    launch: &Launch<'_>,
    groups: &mut ExecGroups,
    own_group: bool,
    stack: &mut [u8],
) -> Started {
    let Launch { reset_oom, confine, null } = *launch;
    let id = spec.id;
    if spec.argv.is_empty() {
        return failed(id, 127, "empty command".into());
    }
    let cwd = PathBuf::from(&spec.cwd);
    let program = match resolve(&spec.argv[0], &spec.env, &cwd) {
        Ok(p) => p,
        Err((code, msg)) => return failed(id, code, msg),
    };
    let to_c = |s: &str| CString::new(s).map_err(|_| format!("argument contains a NUL byte: {s:?}"));
    let prepared = (|| -> Result<_, String> {
        let path = sys::cpath(&program).map_err(|e| e.to_string())?;
        let argv = spec.argv.iter().map(|a| to_c(a)).collect::<Result<Vec<_>, _>>()?;
        let envp = spec.env.iter().map(|(k, v)| to_c(&format!("{k}={v}"))).collect::<Result<Vec<_>, _>>()?;
        Ok((path, argv, envp))
    })();
    let (exec_args, cwd_c) = match prepared {
        Ok((path, argv, envp)) => match sys::cpath(&cwd) {
            Ok(c) => (sys::ExecArgs::new(path, argv, envp), c),
            Err(e) => return failed(id, 126, format!("cwd: {e}")),
        },
        Err(msg) => return failed(id, 126, msg),
    };
    // Without input, stdin is the sandbox's /dev/null (end of file at once,
    // as from a closed pipe) and no pipe is made for it.
    let stdin_pipe = || if stdin.is_empty() { Ok(None) } else { sys::pipe().map(Some) };
    let pipes = (|| Ok::<_, std::io::Error>((stdin_pipe()?, sys::pipe()?, sys::pipe()?)))();
    let (in_pipe, (out_r, out_w), (err_r, err_w)) = match pipes {
        Ok(p) => p,
        Err(e) => return failed(id, 126, format!("cannot create pipes: {e}")),
    };
    let (in_r, in_w) = match in_pipe {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };
    let child_stdin = in_r.as_ref().map_or(null, |r| r.as_fd());
    let group = if own_group { groups.create(id) } else { None };
    let join = group.as_deref().map(|g| groups.join_files(g)).unwrap_or_default();
    // The child shares the init's memory until it execs: everything it uses
    // is prepared here, and it only borrows.
    let mut run_child = || -> i32 {
        // Join the command's group first: everything it starts stays in it.
        for fd in &join {
            let _ = sys::write(fd.as_fd(), b"0");
        }
        let _ = sys::dup_onto(child_stdin, 0);
        let _ = sys::dup_onto(out_w.as_fd(), 1);
        let _ = sys::dup_onto(err_w.as_fd(), 2);
        let err = child(spec, &cwd_c, reset_oom, confine, &exec_args);
        let _ = writeln!(std::io::stderr(), "superserver: cannot run {}: {err}", spec.argv[0]);
        sys::exit_now(if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 })
    };
    // Timed from before the clone: the child's set-up is the command's cost.
    let started = Instant::now();
    match sys::vfork_run(stack, &mut run_child) {
        Err(e) => {
            if let Some(g) = &group {
                groups.remove(g);
            }
            failed(id, 126, format!("cannot start the command: {e}"))
        }
        Ok(pid) => {
            drop(join);
            drop((in_r, out_w, err_w));
            for fd in in_w.iter().chain([&out_r, &err_r]) {
                let _ = sys::set_nonblocking(fd.as_fd(), true);
            }
            Started::Running(Box::new(Running {
                id,
                pid,
                started,
                deadline: spec.timeout_ms.map(|ms| started + std::time::Duration::from_millis(ms)),
                stdin: in_w,
                stdin_data: stdin,
                stdin_pos: 0,
                stdout: Some(out_r),
                stderr: Some(err_r),
                max_output: spec.max_output,
                report: ExitReport { id, ..Default::default() },
                exited_at: None,
                group,
            }))
        }
    }
}

/// The child: confine, then exec. Returns only on failure.
fn child(
    spec: &ExecSpec,
    cwd: &CString,
    reset_oom: bool,
    confine: &Confinement,
    exec_args: &sys::ExecArgs,
) -> std::io::Error {
    let step =
        |what: &str, r: std::io::Result<()>| r.map_err(|e| std::io::Error::new(e.kind(), format!("{what}: {e}")));
    let result = (|| -> std::io::Result<()> {
        sys::reset_signals();
        // A group of its own, which a kill reaches whole, in the init's
        // session (no terminal; a new session per command would also cost
        // the kernel a scheduler autogroup each time).
        step("setpgid", sys::new_process_group())?;
        // The init is shielded from the OOM killer where the host allows; its
        // commands are not. (Before landlock, which forbids writing /proc.)
        if reset_oom {
            let _ = std::fs::write("/proc/self/oom_score_adj", "0");
        }
        // Uses the init's ruleset descriptor, so before closing descriptors.
        step("landlock", confine.apply())?;
        sys::close_fds_from(3, &[]);
        step("chdir", sys::chdir(cwd))?;
        step("rlimit core", sys::set_rlimit(libc::RLIMIT_CORE, 0))?;
        step("rlimit nofile", sys::cap_rlimit(libc::RLIMIT_NOFILE, 65_536))?;
        step("drop privileges", sys::become_unprivileged(spec.root, SANDBOX_UID))?;
        step("no_new_privs", sys::set_no_new_privs())?;
        Ok(())
    })();
    if let Err(e) = result {
        return e;
    }
    exec_args.exec()
}
