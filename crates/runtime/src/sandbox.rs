//! The server's handle on one live sandbox: its control connection, its
//! process and its cgroup.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use superserver_wire::{EffectiveLimits, FileEntry};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::cgroup::SandboxCgroup;
use crate::error::{Result, RuntimeError};
use crate::network::{GovernedNet, Network};
use crate::proto::{self, ExecSpec, ExitReport, FileErrorKind, FromInit, ToInit};
use crate::spec::Image;

/// A chunk of a command's output, as it is produced.
#[derive(Debug, Clone)]
pub enum OutputChunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// What to run in a sandbox.
#[derive(Debug, Clone, Default)]
pub struct ExecParams {
    pub argv: Vec<String>,
    /// Complete environment of the command.
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub root: bool,
    pub stdin: Vec<u8>,
    pub timeout: Option<Duration>,
    pub max_output: u64,
}

/// Outcome of a command.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub report: ExitReport,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub oom_killed: bool,
    pub duration: Duration,
}

/// Content at a path in the sandbox.
#[derive(Debug, Clone)]
pub enum PathContent {
    File(Vec<u8>),
    Dir(Vec<FileEntry>),
}

/// Longest a file request may take inside the sandbox.
const FILE_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

enum ExecEvent {
    Output(u8, Vec<u8>),
    Exited(ExitReport),
}

enum FileReply {
    Written(u64),
    Data(Vec<u8>),
    Listing(Vec<FileEntry>),
    Error(FileErrorKind, String),
}

#[derive(Default)]
struct Pending {
    execs: HashMap<u32, mpsc::UnboundedSender<ExecEvent>>,
    files: HashMap<u32, oneshot::Sender<FileReply>>,
    closed: bool,
}

/// The control connection to a sandbox's init.
struct Conn {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU32,
}

impl Conn {
    fn start(stream: UnixStream) -> (Self, OwnedReadHalf) {
        let (r, w) = stream.into_split();
        let conn = Self {
            writer: tokio::sync::Mutex::new(w),
            pending: Arc::new(Mutex::new(Pending::default())),
            next_id: AtomicU32::new(1),
        };
        (conn, r)
    }

    fn spawn_reader(&self, mut r: OwnedReadHalf) {
        let pending = self.pending.clone();
        tokio::spawn(async move {
            loop {
                let frame = proto::read_frame::<_, FromInit>(&mut r).await;
                let Ok(Some((msg, data))) = frame else { break };
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                match msg {
                    FromInit::Output { id, stream } => {
                        if let Some(tx) = p.execs.get(&id) {
                            let _ = tx.send(ExecEvent::Output(stream, data));
                        }
                    }
                    FromInit::Exited(report) => {
                        if let Some(tx) = p.execs.remove(&report.id) {
                            let _ = tx.send(ExecEvent::Exited(report));
                        }
                    }
                    FromInit::FileWritten { req, size } => reply(&mut p, req, FileReply::Written(size)),
                    FromInit::FileData { req } => reply(&mut p, req, FileReply::Data(data)),
                    FromInit::Listing { req, entries, .. } => reply(&mut p, req, FileReply::Listing(entries)),
                    FromInit::FileError { req, kind, message } => reply(&mut p, req, FileReply::Error(kind, message)),
                    FromInit::Ready { .. } | FromInit::SetupFailed { .. } => {}
                }
            }
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            p.closed = true;
            p.execs.clear();
            p.files.clear();
        });
    }

    async fn send(&self, msg: &ToInit, data: &[u8]) -> Result<()> {
        let frame = proto::encode(msg, data);
        let mut w = self.writer.lock().await;
        w.write_all(&frame).await.map_err(|_| RuntimeError::SandboxGone)
    }

    async fn file_request(&self, make: impl FnOnce(u32) -> ToInit, data: &[u8]) -> Result<FileReply> {
        let req = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed {
                return Err(RuntimeError::SandboxGone);
            }
            p.files.insert(req, tx);
        }
        self.send(&make(req), data).await?;
        match tokio::time::timeout(FILE_REQUEST_TIMEOUT, rx).await {
            Ok(r) => r.map_err(|_| RuntimeError::SandboxGone),
            Err(_) => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).files.remove(&req);
                Err(RuntimeError::FileError(format!(
                    "the sandbox did not answer the file request within {FILE_REQUEST_TIMEOUT:?}"
                )))
            }
        }
    }
}

fn reply(p: &mut Pending, req: u32, r: FileReply) {
    if let Some(tx) = p.files.remove(&req) {
        let _ = tx.send(r);
    }
}

/// A live sandbox. Dropping it without [`crate::Runtime::destroy`] still
/// kills it (its init sees the control socket close), but leaves the cgroup
/// to the next cleanup.
pub struct Sandbox {
    pub id: String,
    pub image: Image,
    pub limits: EffectiveLimits,
    /// The governed namespace's sockets, for the egress proxy.
    net: Option<GovernedNet>,
    pub pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) cgroup: SandboxCgroup,
    pub(crate) slot: u32,
    conn: Conn,
    used: AtomicBool,
    /// OOM kills of the cgroup already attributed to earlier commands.
    oom_seen: std::sync::atomic::AtomicU64,
}

impl Sandbox {
    /// Connects to a freshly spawned init and waits until it is ready.
    pub(crate) async fn connect(
        id: String,
        image: Image,
        limits: EffectiveLimits,
        pid: i32,
        parts: SandboxParts,
        ctrl: UnixStream,
        setup_timeout: Duration,
    ) -> std::result::Result<Self, (RuntimeError, SandboxParts)> {
        let (conn, mut reader) = Conn::start(ctrl);
        let first = tokio::time::timeout(setup_timeout, proto::read_frame::<_, FromInit>(&mut reader)).await;
        match first {
            Ok(Ok(Some((FromInit::Ready { .. }, _)))) => {}
            Ok(Ok(Some((FromInit::SetupFailed { message }, _)))) => return Err((RuntimeError::Setup(message), parts)),
            Ok(Ok(_)) | Ok(Err(_)) => return Err((RuntimeError::Setup("the init exited during setup".into()), parts)),
            Err(_) => return Err((RuntimeError::SetupTimeout(setup_timeout), parts)),
        };
        conn.spawn_reader(reader);
        Ok(Self {
            id,
            image,
            limits,
            net: parts.net,
            pid,
            pidfd: parts.pidfd,
            cgroup: parts.cgroup,
            slot: parts.slot,
            conn,
            used: AtomicBool::new(false),
            oom_seen: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How the sandbox reaches the network.
    pub fn network(&self) -> Network {
        if self.net.is_some() {
            Network::Governed
        } else {
            Network::None
        }
    }

    /// The proxy and resolver sockets of a governed sandbox.
    pub fn governed_net(&self) -> Option<&GovernedNet> {
        self.net.as_ref()
    }

    /// The sandbox's cgroup, relative to each hierarchy's root. It is named
    /// after the sandbox's slot, not its id, and passes to a later sandbox
    /// once this one is gone.
    pub fn cgroup_path(&self) -> &std::path::Path {
        self.cgroup.rel_path()
    }

    /// Whether the init is still connected.
    pub fn alive(&self) -> bool {
        !self.conn.pending.lock().unwrap_or_else(|e| e.into_inner()).closed
    }

    /// Marks the sandbox as handed out (a sandbox is never handed out
    /// twice) and gives it normal CPU priority: it was built at a low one.
    pub(crate) fn claim(&self) -> bool {
        let first = !self.used.swap(true, Ordering::SeqCst);
        if first {
            let _ = crate::sys::set_nice(self.pid, 0);
        }
        first
    }

    /// Runs a command. Output chunks go to `sink` as they arrive (if given)
    /// and are also collected, up to the cap, into the result.
    pub async fn exec(&self, p: ExecParams, mut sink: Option<mpsc::Sender<OutputChunk>>) -> Result<ExecOutput> {
        let id = self.conn.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut pend = self.conn.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pend.closed {
                return Err(RuntimeError::SandboxGone);
            }
            pend.execs.insert(id, tx);
        }
        let spec = ExecSpec {
            id,
            argv: p.argv,
            env: p.env,
            cwd: p.cwd,
            root: p.root,
            timeout_ms: p.timeout.map(|t| t.as_millis() as u64),
            max_output: p.max_output,
        };
        let started = Instant::now();
        self.conn.send(&ToInit::Exec(spec), &p.stdin).await?;
        // If the caller goes away mid-command, kill the command.
        let mut guard = KillOnDrop { conn: Some(&self.conn), id };
        let mut out = ExecOutput::default();
        while let Some(ev) = rx.recv().await {
            match ev {
                ExecEvent::Output(stream, data) => {
                    let bytes = Bytes::from(data);
                    if stream == 1 {
                        out.stdout.extend_from_slice(&bytes);
                    } else {
                        out.stderr.extend_from_slice(&bytes);
                    }
                    if let Some(s) = &sink {
                        let chunk = if stream == 1 { OutputChunk::Stdout(bytes) } else { OutputChunk::Stderr(bytes) };
                        if s.send(chunk).await.is_err() {
                            // Whoever streamed this is gone: stop the command.
                            sink = None;
                            let _ = self.conn.send(&ToInit::Kill { id }, b"").await;
                        }
                    }
                }
                ExecEvent::Exited(report) => {
                    guard.conn = None;
                    out.duration = started.elapsed();
                    // Only a SIGKILL can be the OOM killer's; then ask the cgroup.
                    // The command's own group counts its OOM kills where it has one.
                    if report.signal == Some(libc::SIGKILL) && !report.timed_out {
                        let kills = self.cgroup.oom_kills();
                        let sandbox_level = kills > self.oom_seen.swap(kills, Ordering::SeqCst);
                        out.oom_killed = report.oom_kills > 0 || sandbox_level;
                    }
                    out.report = report;
                    return Ok(out);
                }
            }
        }
        guard.conn = None;
        Err(RuntimeError::SandboxGone)
    }

    /// Writes a file (path relative to `/workspace`, or under `/workspace` or `/tmp`).
    pub async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<u64> {
        let path = path.to_string();
        match self.conn.file_request(|req| ToInit::WriteFile { req, path, mode }, data).await? {
            FileReply::Written(n) => Ok(n),
            FileReply::Error(kind, msg) => Err(file_error(kind, msg)),
            _ => Err(RuntimeError::FileError("unexpected reply".into())),
        }
    }

    /// Reads a file (up to `max_bytes`) or lists a directory.
    pub async fn read_path(&self, path: &str, max_bytes: u64) -> Result<PathContent> {
        let path = path.to_string();
        match self.conn.file_request(|req| ToInit::ReadFile { req, path, max_bytes }, b"").await? {
            FileReply::Data(d) => Ok(PathContent::File(d)),
            FileReply::Listing(e) => Ok(PathContent::Dir(e)),
            FileReply::Error(kind, msg) => Err(file_error(kind, msg)),
            FileReply::Written(_) => Err(RuntimeError::FileError("unexpected reply".into())),
        }
    }

    /// Lists a directory.
    pub async fn list_dir(&self, path: &str) -> Result<Vec<FileEntry>> {
        let path = path.to_string();
        match self.conn.file_request(|req| ToInit::ListDir { req, path }, b"").await? {
            FileReply::Listing(e) => Ok(e),
            FileReply::Error(kind, msg) => Err(file_error(kind, msg)),
            _ => Err(RuntimeError::FileError("unexpected reply".into())),
        }
    }

    /// Kills the sandbox's init, and with it every process inside; running
    /// commands end with [`RuntimeError::SandboxGone`].
    pub fn kill(&self) {
        let _ = crate::sys::pidfd_kill(std::os::fd::AsFd::as_fd(&self.pidfd), libc::SIGKILL);
    }

    pub(crate) fn into_parts(self) -> SandboxParts {
        SandboxParts { pid: self.pid, pidfd: self.pidfd, cgroup: self.cgroup, slot: self.slot, net: self.net }
    }
}

/// What must be released when a sandbox goes away.
pub(crate) struct SandboxParts {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub cgroup: SandboxCgroup,
    pub slot: u32,
    /// The governed namespace's sockets (closed last, with the namespace).
    pub net: Option<GovernedNet>,
}

struct KillOnDrop<'a> {
    conn: Option<&'a Conn>,
    id: u32,
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn else { return };
        let frame = proto::encode(&ToInit::Kill { id: self.id }, b"");
        if let Ok(w) = conn.writer.try_lock() {
            // Best effort without awaiting: the socket has room for a tiny frame.
            let _ = w.as_ref().try_write(&frame);
        }
        conn.pending.lock().unwrap_or_else(|e| e.into_inner()).execs.remove(&self.id);
    }
}

fn file_error(kind: FileErrorKind, msg: String) -> RuntimeError {
    match kind {
        FileErrorKind::NotFound => RuntimeError::FileNotFound(msg),
        FileErrorKind::Outside => RuntimeError::PathNotAllowed(msg),
        FileErrorKind::TooLarge => RuntimeError::FileTooLarge(msg),
        FileErrorKind::NoSpace => RuntimeError::NoSpace(msg),
        FileErrorKind::IsDirectory | FileErrorKind::NotDirectory | FileErrorKind::Other => RuntimeError::FileError(msg),
    }
}
