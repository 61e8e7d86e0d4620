//! The zygote: a small single-threaded helper process that forks sandboxes.
//!
//! The server is multi-threaded (tokio), and forking a threaded process is
//! only safe up to exec. The zygote is the same binary re-executed with a
//! hidden subcommand before it does anything else, so it is single-threaded
//! and may clone freely: for each request it clones a child into fresh
//! namespaces, writes the child's uid/gid maps and cgroup membership (it runs
//! as root on the host), shields it from the OOM killer, then lets it go on
//! to become the sandbox's init. It answers with a pidfd of the child, so
//! the server can signal and await it without any pid-reuse race.
//!
//! The zygote and every init die with the server: each has a parent-death
//! signal of SIGKILL, so a `kill -9` of the server leaves no process behind.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::{Result, RuntimeError};
use crate::network::Network;
use crate::spec::{Image, SetupSpec, IDS_PER_SANDBOX};
use crate::sys::{self, Forked};

/// Descriptor number the zygote finds its socket on.
pub const ZYGOTE_FD: RawFd = 3;
const MAX_MSG: usize = 64 * 1024;
/// Nice value of the zygote, and so of sandboxes while they are being built.
pub const BUILD_NICE: i32 = 10;
/// Nice value of a sandbox being torn down.
pub const TEARDOWN_NICE: i32 = 19;

#[derive(Debug, Serialize, Deserialize)]
struct SpawnRequest {
    setup: SetupSpec,
}

#[derive(Debug, Serialize, Deserialize)]
enum SpawnReply {
    /// Carries the child's pidfd.
    Spawned {
        pid: i32,
    },
    Failed {
        message: String,
    },
}

/// Entry point of the `__zygote` hidden subcommand. Never returns.
pub fn main() -> ! {
    // The server placed the socket on ZYGOTE_FD before exec.
    let sock = match sys::take_inherited_fd(ZYGOTE_FD) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("superserver zygote: no control socket on fd {ZYGOTE_FD}: {e}");
            sys::exit_now(2);
        }
    };
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    if sys::parent_pid() == 1 {
        sys::exit_now(0);
    }
    let _ = sys::set_child_subreaper();
    // Sandboxes are built in the background while requests are served: build
    // them at a lower priority. The server restores normal priority to a
    // sandbox when it is handed out.
    let _ = sys::set_nice(0, BUILD_NICE);
    crate::init::prepare();
    let own_netns = match sys::current_netns() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("superserver zygote: open own network namespace: {e}");
            sys::exit_now(2);
        }
    };
    let sigchld = match sys::sigchld_fd() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("superserver zygote: signalfd: {e}");
            sys::exit_now(2);
        }
    };
    let mut buf = vec![0u8; MAX_MSG];
    let mut reaper = Reaper::default();
    loop {
        let mut fds =
            [sys::poll_entry(sock.as_raw_fd(), sys::POLLIN), sys::poll_entry(sigchld.as_raw_fd(), sys::POLLIN)];
        let ready = match sys::poll(&mut fds, reaper.poll_timeout_ms()) {
            Ok(n) => n,
            Err(_) => continue,
        };
        if fds[1].revents != 0 {
            reaper.reap(sys::drain_signalfd_pids(&sigchld));
        }
        reaper.sweep_if_due();
        if ready == 0 {
            continue;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let (n, mut passed) = match sys::recv_with_fds(sock.as_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => sys::exit_now(0),
            Ok(r) => r,
        };
        // The control socket, then the network namespace of a governed sandbox.
        let netns = if passed.len() > 1 { passed.pop() } else { None };
        let reply = match (serde_json::from_slice::<SpawnRequest>(&buf[..n]), passed.pop()) {
            (Ok(req), Some(ctrl)) => spawn(req.setup, ctrl, netns, &own_netns, &sock),
            (Err(e), _) => Err(format!("malformed request: {e}")),
            (_, None) => Err("request without a control socket".into()),
        };
        drop(passed);
        let sent = match reply {
            Ok((pid, pidfd)) => {
                let msg = serde_json::to_vec(&SpawnReply::Spawned { pid }).unwrap_or_default();
                sys::send_with_fds(sock.as_fd(), &msg, &[pidfd.as_raw_fd()])
            }
            Err(message) => {
                let msg = serde_json::to_vec(&SpawnReply::Failed { message }).unwrap_or_default();
                sys::send_with_fds(sock.as_fd(), &msg, &[])
            }
        };
        if sent.is_err() {
            sys::exit_now(0);
        }
    }
}

/// Reaps the zygote's children (the inits) as they exit. `wait4(-1)` looks
/// at every child on each call, which with thousands of sandboxes made each
/// exit cost the zygote thousands of checks; the child named by the signal
/// is reaped directly instead. Signals of exits close together merge into
/// one, so a full sweep follows within [`Reaper::SWEEP_AFTER`] of any
/// signal and reaps whatever was missed: a missed init stays a zombie
/// (already out of its cgroup, its pidfd already readable) for at most that.
#[derive(Default)]
struct Reaper {
    /// When the oldest signal not yet followed by a sweep came.
    owed_since: Option<std::time::Instant>,
}

impl Reaper {
    const SWEEP_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

    fn reap(&mut self, pids: Vec<libc::pid_t>) {
        for pid in pids {
            let _ = sys::reap(pid);
        }
        self.owed_since.get_or_insert_with(std::time::Instant::now);
        self.sweep_if_due();
    }

    /// Sweeps if a sweep has been owed for long enough.
    fn sweep_if_due(&mut self) {
        if self.owed_since.is_some_and(|t| t.elapsed() >= Self::SWEEP_AFTER) {
            while let Ok(Some(_)) = sys::reap(-1) {}
            self.owed_since = None;
        }
    }

    /// How long to wait for the next event: until the owed sweep is due,
    /// or for ever.
    fn poll_timeout_ms(&self) -> libc::c_int {
        match self.owed_since {
            Some(t) => Self::SWEEP_AFTER.saturating_sub(t.elapsed()).as_millis() as libc::c_int + 1,
            None => -1,
        }
    }
}

/// Clones one sandbox init and prepares it from the outside.
fn spawn(
    setup: SetupSpec,
    ctrl: OwnedFd,
    netns: Option<OwnedFd>,
    own_netns: &OwnedFd,
    zygote_sock: &OwnedFd,
) -> Result<(i32, OwnedFd), String> {
    // The child waits on `sync` until the zygote has prepared it; the "go"
    // message carries the id-mapped image mount for `dir:` images.
    let (sync_z, sync_c) = sys::socket_pair(libc::SOCK_SEQPACKET).map_err(|e| format!("socketpair: {e}"))?;
    // A governed sandbox is cloned from inside the namespace the server
    // prepared (owned by the host, so the sandbox cannot reconfigure it);
    // others get a fresh one of their own.
    let flags = match (&netns, setup.network) {
        (Some(ns), Network::Governed) => {
            sys::enter_netns(ns.as_fd()).map_err(|e| format!("enter the governed network namespace: {e}"))?;
            sys::SANDBOX_NS_FLAGS & !libc::CLONE_NEWNET
        }
        (None, Network::None) => sys::SANDBOX_NS_FLAGS,
        _ => return Err("the network namespace does not match the sandbox's network mode".into()),
    };
    let forked = sys::clone_with_flags(flags).map_err(|e| format!("clone: {e}"));
    if netns.is_some() && !matches!(forked, Ok(Forked::Child)) {
        if let Err(e) = sys::enter_netns(own_netns.as_fd()) {
            // Later sandboxes would share this namespace: stop instead.
            eprintln!("superserver zygote: cannot return to its own network namespace: {e}");
            sys::exit_now(2);
        }
    }
    match forked? {
        Forked::Child => {
            // The init closes every other descriptor, the zygote's socket included.
            drop((sync_z, zygote_sock, netns));
            crate::init::run(setup, ctrl, sync_c)
        }
        Forked::Parent(pid) => {
            drop((sync_c, ctrl, netns));
            let prepared = sys::pidfd_open(pid)
                .map_err(|e| format!("pidfd_open: {e}"))
                .and_then(|pidfd| prepare_child(pid, &setup).map(|image| (pidfd, image)));
            match prepared {
                Ok((pidfd, image)) => {
                    let fds: Vec<i32> = image.iter().map(|f| f.as_raw_fd()).collect();
                    sys::send_with_fds(sync_z.as_fd(), b"g", &fds).map_err(|e| format!("release child: {e}"))?;
                    Ok((pid, pidfd))
                }
                Err(e) => {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    Err(e)
                }
            }
        }
    }
}

/// Writes the child's id maps and cgroup membership; for a `dir:` image,
/// returns the image mounted read-only with the child's id map.
fn prepare_child(pid: i32, setup: &SetupSpec) -> Result<Option<OwnedFd>, String> {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let map = format!("0 {} {}\n", setup.host_id_base, IDS_PER_SANDBOX);
    fs::write(proc_dir.join("uid_map"), &map).map_err(|e| format!("write uid_map: {e}"))?;
    fs::write(proc_dir.join("gid_map"), &map).map_err(|e| format!("write gid_map: {e}"))?;
    for procs in &setup.cgroup_procs {
        fs::write(procs, pid.to_string()).map_err(|e| format!("join cgroup {}: {e}", procs.display()))?;
    }
    // Shield the init from the OOM killer where the host lets us (it needs
    // CAP_SYS_RESOURCE, which some hosts withhold); the init is tiny, so the
    // killer prefers the command that grew anyway.
    static OOM_SHIELD_REFUSED: AtomicBool = AtomicBool::new(false);
    if !OOM_SHIELD_REFUSED.load(Ordering::Relaxed) && fs::write(proc_dir.join("oom_score_adj"), "-1000").is_err() {
        OOM_SHIELD_REFUSED.store(true, Ordering::Relaxed);
    }
    if setup.urgent {
        let _ = sys::set_nice(pid, 0);
    }
    match &setup.image {
        Image::Host => Ok(None),
        Image::Dir(path) => {
            let userns = fs::File::open(proc_dir.join("ns/user")).map_err(|e| format!("open user namespace: {e}"))?;
            sys::idmapped_tree(path, userns.as_fd()).map(Some).map_err(|e| e.to_string())
        }
    }
}

/// The server's handle on its zygote.
pub struct Zygote {
    sock: AsyncFd<OwnedFd>,
    /// One request at a time: the zygote answers in order.
    lock: tokio::sync::Mutex<()>,
    pidfd: OwnedFd,
    exited: Arc<AtomicBool>,
}

/// A freshly cloned init, not yet set up.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

impl Zygote {
    /// Starts the zygote: `exe args…` with its socket on [`ZYGOTE_FD`].
    pub fn start(exe: &Path, args: &[String]) -> Result<Self> {
        let (ours, theirs) = sys::socket_pair(libc::SOCK_SEQPACKET)?;
        // The zygote's parent-death signal fires when the thread that spawned
        // it exits, so a dedicated thread spawns it and lives as long as it.
        let (tx, rx) = std::sync::mpsc::channel();
        let exited = Arc::new(AtomicBool::new(false));
        let exited2 = exited.clone();
        let what = exe_name(args);
        let (exe, args) = (exe.to_path_buf(), args.to_vec());
        std::thread::Builder::new().name("zygote-keeper".into()).spawn(move || {
            let spawned = sys::spawn_with_fd(&exe, &args, theirs, ZYGOTE_FD).and_then(|child| {
                // Not yet reaped (only this thread waits), so the pid is still ours.
                let pidfd = sys::pidfd_open(child.id() as i32)?;
                Ok((child, pidfd))
            });
            match spawned {
                Ok((mut child, pidfd)) => {
                    let _ = tx.send(Ok(pidfd));
                    let status = child.wait();
                    exited2.store(true, Ordering::SeqCst);
                    tracing::debug!(?status, "zygote exited");
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
        let pidfd = rx
            .recv()
            .map_err(|_| RuntimeError::Zygote("zygote keeper thread died".into()))?
            .map_err(|e| RuntimeError::Zygote(format!("cannot start {what}: {e}")))?;
        sys::set_nonblocking(ours.as_fd(), true)?;
        Ok(Self { sock: sys::async_fd(ours)?, lock: tokio::sync::Mutex::new(()), pidfd, exited })
    }

    /// Asks for a new init; `ctrl` becomes its control socket. A governed
    /// sandbox is cloned into `netns`.
    pub async fn spawn(&self, setup: &SetupSpec, ctrl: OwnedFd, netns: Option<BorrowedFd<'_>>) -> Result<Spawned> {
        let msg = serde_json::to_vec(&SpawnRequest { setup: setup.clone() })
            .map_err(|e| RuntimeError::Zygote(e.to_string()))?;
        let _guard = self.lock.lock().await;
        self.sock
            .async_io(Interest::WRITABLE, |fd| {
                let mut fds = vec![ctrl.as_raw_fd()];
                fds.extend(netns.map(|n| n.as_raw_fd()));
                sys::send_with_fds(fd.as_fd(), &msg, &fds)
            })
            .await
            .map_err(|e| RuntimeError::Zygote(format!("send: {e}")))?;
        drop(ctrl);
        let mut buf = vec![0u8; MAX_MSG];
        let (n, mut fds) = self
            .sock
            .async_io(Interest::READABLE, |fd| sys::recv_with_fds(fd.as_fd(), &mut buf))
            .await
            .map_err(|e| RuntimeError::Zygote(format!("receive: {e}")))?;
        if n == 0 {
            return Err(RuntimeError::Zygote("the zygote exited".into()));
        }
        match serde_json::from_slice(&buf[..n]).map_err(|e| RuntimeError::Zygote(e.to_string()))? {
            SpawnReply::Spawned { pid } => {
                let pidfd = fds.pop().ok_or_else(|| RuntimeError::Zygote("reply without a pidfd".into()))?;
                Ok(Spawned { pid, pidfd })
            }
            SpawnReply::Failed { message } => Err(RuntimeError::Setup(message)),
        }
    }

    /// Whether the zygote process is still running.
    pub fn alive(&self) -> bool {
        !self.exited.load(Ordering::SeqCst)
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = sys::pidfd_kill(self.pidfd.as_fd(), libc::SIGKILL);
    }
}

fn exe_name(args: &[String]) -> String {
    format!("the zygote ({})", args.join(" "))
}
