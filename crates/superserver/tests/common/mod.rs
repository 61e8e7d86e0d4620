//! Test harness: starts the real `superserver` binary on a private data
//! directory and a free loopback port, and checks what it leaves on the host.
//!
//! These tests need root (user id maps, cgroups). They fail loudly without it,
//! never skip.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod docker;
pub mod governed;
pub mod upstream;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use superserver_client::Client;
use superserver_wire::{ExecRequest, ExecResult, RunRequest};

/// Ids mapped into each test server's sandboxes: a distinct range per
/// server so leak checks by uid see only their own server's processes.
pub const MAX_SANDBOXES: u32 = 64;

pub fn require_root() {
    // The effective uid of this process, from /proc.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let euid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().split_whitespace().nth(2).unwrap();
    assert_eq!(
        euid, "0",
        "these tests run real sandboxes and need root (user id maps, cgroups); run them as root, \
         as CI does"
    );
}

pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// A client holding the admin key.
    pub client: Client,
    /// The bootstrap admin key (`DATA_DIR/admin.key`).
    pub admin_key: String,
    pub id_base: u32,
    log: PathBuf,
    _range_lock: std::fs::File,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_superserver")
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Reserves a uid range no other test server of this machine holds: an
/// exclusive lock on a per-range file, released when the test process exits.
fn reserve_id_base() -> (u32, std::fs::File) {
    let step = 65_536 * MAX_SANDBOXES;
    let slots = (4_000_000_000u32 - 1_000_000_000) / step;
    let dir = std::env::temp_dir().join("superserver-test-uid-ranges");
    std::fs::create_dir_all(&dir).unwrap();
    let start = random_u32() % slots;
    for i in 0..slots {
        let slot = (start + i) % slots;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(slot.to_string()))
            .unwrap();
        if f.try_lock().is_ok() {
            return (1_000_000_000 + slot * step, f);
        }
    }
    panic!("no free uid range for a test server");
}

impl Server {
    /// A server with a small warm pool.
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// A server with extra TOML appended to the test config.
    pub async fn start_with(extra_toml: &str) -> Self {
        require_root();
        let dir = tempfile::Builder::new().prefix("ss-test-").tempdir().unwrap();
        let (id_base, range_lock) = reserve_id_base();
        let has_pool = extra_toml.contains("[pool]");
        let config = format!(
            "log_format = \"json\"\n{extra_toml}\n[sandbox]\nid_base = {id_base}\nmax_sandboxes = {MAX_SANDBOXES}\n{}",
            if has_pool { "" } else { "[pool]\nsize = 2\n" }
        );
        let config =
            if extra_toml.contains("listen =") { config } else { format!("listen = \"127.0.0.1:0\"\n{config}") };
        let mut s = Self {
            child: None,
            url: String::new(),
            dir,
            client: Client::new("http://127.0.0.1:1").unwrap(),
            admin_key: String::new(),
            id_base,
            log: PathBuf::new(),
            _range_lock: range_lock,
        };
        std::fs::write(s.dir.path().join("config.toml"), config).unwrap();
        s.log = s.dir.path().join("server.log");
        s.spawn().await;
        s
    }

    /// Starts (or restarts) the process on the same data directory.
    pub async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let start_len = std::fs::metadata(&self.log).unwrap().len();
        let child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .env("SUPERSERVER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::OpenOptions::new().create(true).append(true).open(self.stdout_path()).unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let fresh = &text[(start_len as usize).min(text.len())..];
            if let Some(i) = fresh.find("listening on http://") {
                let rest = &fresh[i + "listening on ".len()..];
                let end = rest.find(|c: char| c == '"' || c.is_whitespace()).unwrap();
                self.url = rest[..end].to_string();
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited during start ({status}); log:\n{text}");
            }
            assert!(Instant::now() < deadline, "server did not start within 30s; log:\n{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The first start wrote the admin key to the data directory (none
        // with authentication off).
        let key_file = self.dir.path().join("data").join("admin.key");
        self.admin_key = std::fs::read_to_string(&key_file).unwrap_or_default().trim().to_string();
        self.client = Client::new(&self.url).unwrap().with_api_key(&self.admin_key);
        // Ready means sandboxes can be created.
        let http = reqwest::Client::new();
        for _ in 0..500 {
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server never became ready");
    }

    /// Where the server's standard output goes (what it prints for people).
    pub fn stdout_path(&self) -> PathBuf {
        self.dir.path().join("server.stdout")
    }

    /// A plain HTTP client that sends the admin key.
    pub fn http(&self) -> reqwest::Client {
        http_with_key(&self.admin_key)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `kill -9` of the server process.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}; log:\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "server did not stop within 40s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn instance(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("instance-id")).unwrap().trim().to_string()
    }

    /// Sandbox cgroup directories of this server's instance on the host.
    pub fn host_cgroups(&self) -> Vec<PathBuf> {
        let inst = self.instance();
        let mut out = Vec::new();
        for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            for base in
                [ctl.path().join("superserver").join(&inst), PathBuf::from("/sys/fs/cgroup/superserver").join(&inst)]
            {
                if let Ok(rd) = std::fs::read_dir(&base) {
                    out.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Sandbox cgroup directories that are more than a clean spare: a group
    /// with a process or a child group in it. A running server keeps the
    /// empty groups of finished sandboxes for the next ones; a stopped server
    /// leaves none, so then every directory counts.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        fn busy(dir: &std::path::Path) -> bool {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let has_child = std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| e.path().is_dir());
            !procs.trim().is_empty() || has_child
        }
        let all = self.host_cgroups();
        if self.child.is_none() {
            return all;
        }
        all.into_iter().filter(|d| busy(d)).collect()
    }

    /// Host processes running under this server's sandbox uid range.
    pub fn sandbox_processes(&self) -> Vec<(u32, String)> {
        let lo = self.id_base;
        let hi = self.id_base + 65_536 * MAX_SANDBOXES;
        processes_with_uid_in(lo, hi)
    }

    /// Mounts on the host that mention this server's data directory.
    pub fn host_mounts(&self) -> Vec<String> {
        let dir = self.dir.path().to_string_lossy().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&dir))
            .map(str::to_string)
            .collect()
    }

    /// Waits until nothing of any sandbox is left on the host (processes,
    /// cgroups, mounts), or fails naming what is left.
    pub async fn assert_no_sandbox_leftovers(&self, include_cgroups: bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let procs = self.sandbox_processes();
            let cgroups = if include_cgroups { self.leftover_cgroups() } else { Vec::new() };
            let mounts = self.host_mounts();
            if procs.is_empty() && cgroups.is_empty() && mounts.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("leaked on the host: processes {procs:?}, cgroups {cgroups:?}, mounts {mounts:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn run(&self, cmd: &[&str]) -> ExecResult {
        self.run_req(RunRequest { command: argv(cmd), ..Default::default() }).await
    }

    pub async fn run_req(&self, req: RunRequest) -> ExecResult {
        self.client.run(&req).await.unwrap_or_else(|e| panic!("run {:?} failed: {e}", req.command))
    }

    /// `sh -c script` in a fresh sandbox.
    pub async fn sh(&self, script: &str) -> ExecResult {
        self.run(&["sh", "-c", script]).await
    }

    pub async fn exec(&self, id: &str, cmd: &[&str]) -> ExecResult {
        let req = ExecRequest { command: argv(cmd), ..Default::default() };
        self.client.exec(id, &req).await.unwrap_or_else(|e| panic!("exec {cmd:?} failed: {e}"))
    }
}

impl Drop for Server {
    /// Stops the server gracefully (so it removes its sandboxes and cgroups),
    /// killing it only if it does not stop in time.
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Creates tenant `name` on `plan` and a key of `role` for it, as the admin:
/// (key, key id).
pub async fn tenant_with_key(s: &Server, name: &str, plan: &str, role: superserver_wire::Role) -> (String, String) {
    s.client
        .create_tenant(&superserver_wire::CreateTenantRequest {
            name: name.into(),
            plan: Some(plan.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    new_key(s, name, role).await
}

/// A new key of `role` for `tenant`, made by the admin: (key, key id).
pub async fn new_key(s: &Server, tenant: &str, role: superserver_wire::Role) -> (String, String) {
    let k = s
        .client
        .create_key(&superserver_wire::CreateKeyRequest {
            tenant: Some(tenant.into()),
            role: Some(role),
            ..Default::default()
        })
        .await
        .unwrap();
    (k.key, k.info.id)
}

/// Status and body (JSON, else the text as a string) of a request made with
/// `key` (`None`: no `Authorization` header at all).
pub async fn call(
    s: &Server,
    key: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let http = match key {
        Some(k) => http_with_key(k),
        None => reqwest::Client::new(),
    };
    let mut req = http.request(method, format!("{}{path}", s.url));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// The `error.code` of an error body (`""` if none).
pub fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// A plain HTTP client that sends `key` as its bearer token.
pub fn http_with_key(key: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

pub fn argv(cmd: &[&str]) -> Vec<String> {
    cmd.iter().map(|s| s.to_string()).collect()
}

/// Every host process whose real uid is in `[lo, hi)`: `(pid, command)`.
pub fn processes_with_uid_in(lo: u32, hi: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else { continue };
        let uid: Option<u32> = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        if let Some(uid) = uid {
            if uid >= lo && uid < hi {
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                out.push((pid, comm.trim().to_string()));
            }
        }
    }
    out
}

/// Reads a whole file, for assertions.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs the CLI against the server with the admin key; asserts success and
/// returns its standard output.
pub fn stdout_of(s: &Server, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env("SUPERSERVER_URL", &s.url)
        .env("SUPERSERVER_API_KEY", &s.admin_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "superserver {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
