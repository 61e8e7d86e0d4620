//! Starts and stops a real `superserver serve` process for a benchmark phase.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use superserver_client::Client;
use superserver_wire::PoolStatus;

use crate::host;
use crate::report::{Report, Verdict};

/// Longest the server may take to log its address and answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a SIGTERM may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings that differ between the benchmark's servers.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub pool_size: usize,
    pub parallel_creates: usize,
    pub max_sandboxes: usize,
    /// `(memory_mb, disk_mb)` of the default limits, when not the server's defaults.
    pub small_limits: Option<(u64, u64)>,
    /// First host uid of the sandboxes' id maps.
    pub id_base: u64,
    /// API keys required (the server's default); off, every loopback caller is the admin.
    pub auth: bool,
    /// More configuration, appended as it is.
    pub extra_toml: String,
}

impl ServerSpec {
    fn toml(&self) -> String {
        let mut t = format!(
            "listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n\n[sandbox]\nmax_sandboxes = {}\nid_base = {}\n\n\
             [pool]\nsize = {}\nparallel_creates = {}\n",
            self.max_sandboxes, self.id_base, self.pool_size, self.parallel_creates
        );
        if !self.auth {
            t.push_str("\n[auth]\nenabled = false\n");
        }
        if let Some((memory_mb, disk_mb)) = self.small_limits {
            t.push_str(&format!(
                "\n[limits.default]\nmemory_mb = {memory_mb}\npids = 64\ncpu_percent = 100\ndisk_mb = {disk_mb}\n"
            ));
        }
        t.push('\n');
        t.push_str(&self.extra_toml);
        t
    }
}

/// A running server on a private data directory and a free loopback port.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub client: Client,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    pub async fn start(bin: &Path, spec: &ServerSpec) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("ss-bench-").tempdir().context("temp dir")?;
        let config = dir.path().join("config.toml");
        std::fs::write(&config, spec.toml()).context("write config")?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).context("create server log")?;
        let child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut s =
            Self { child: Some(child), url: String::new(), client: Client::new("http://127.0.0.1:1")?, dir, log };
        s.url = s.wait_address().await?;
        // The first start writes the admin key (none with auth off).
        s.client = Client::new(&s.url)?.with_api_key(s.admin_key());
        s.wait_ready().await?;
        Ok(s)
    }

    async fn wait_address(&mut self) -> Result<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(i) = text.find("listening on http://") {
                let rest = &text[i + "listening on ".len()..];
                let end = rest.find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(rest.len());
                return Ok(rest[..end].to_string());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("server exited during start ({status}); log:\n{text}");
                }
            }
            if Instant::now() > deadline {
                bail!("server did not log its address within {START_TIMEOUT:?}; log:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("server at {} never became ready; log:\n{}", self.url, self.log_text())
    }

    /// Waits until every warm-pool profile is full and nothing is being
    /// created, then returns the pool's figures.
    pub async fn wait_pool_settled(&self, timeout: Duration) -> Result<PoolStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let pool = self.client.status().await?.pool;
            let full = pool.profiles.iter().all(|p| p.ready >= p.target);
            if full && pool.creating == 0 {
                return Ok(pool);
            }
            if Instant::now() > deadline {
                bail!(
                    "the warm pool did not fill within {timeout:?} (ready {}, creating {})",
                    pool.ready,
                    pool.creating
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The zygote helper: the server's child started with `__zygote`.
    pub fn zygote_pid(&self) -> Option<u32> {
        host::children(self.pid()).into_iter().find(|(_, cmd)| cmd.contains("__zygote")).map(|(pid, _)| pid)
    }

    /// The sandbox inits (children of the zygote).
    pub fn init_pids(&self) -> Vec<u32> {
        self.zygote_pid().map(|z| host::children(z).into_iter().map(|(p, _)| p).collect()).unwrap_or_default()
    }

    /// The cgroup (relative to a hierarchy root) holding every sandbox of this server.
    pub fn cgroup_parent(&self) -> Option<PathBuf> {
        let id = std::fs::read_to_string(self.dir.path().join("data").join("instance-id")).ok()?;
        Some(Path::new("superserver").join(id.trim()))
    }

    /// Where the server keeps its store (for the fsync probe).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The bootstrap admin key the first start wrote (empty with auth off).
    pub fn admin_key(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.key")).unwrap_or_default().trim().to_string()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after [`STOP_TIMEOUT`]),
    /// then looks for what the server left on the host: a row in `report`
    /// when anything is left.
    pub async fn stop(mut self, report: &mut Report) -> Result<()> {
        let cgroup = self.cgroup_parent();
        let pid = self.pid();
        self.terminate().await?;
        let Some(cgroup) = cgroup else { return Ok(()) };
        let (dirs, sandboxes) = cgroup_leftovers(&cgroup);
        let procs = host::children(pid).len();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map(|m| m.lines().filter(|l| l.contains(&*self.dir.path().to_string_lossy())).count())
            .unwrap_or(0);
        println!(
            "  stopped server {pid}: {sandboxes} sandbox cgroups, {mounts} mounts left; instance cgroup dir left in {dirs} hierarchies"
        );
        if sandboxes > 0 || mounts > 0 || procs > 0 {
            report.add(
                "host clean after SIGTERM stop",
                format!("{sandboxes} sandbox cgroups, {mounts} mounts left"),
                "nothing left",
                Verdict::Miss,
                format!("instance {}", cgroup.display()),
            );
        }
        Ok(())
    }

    async fn terminate(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("server exited with {status} on SIGTERM; log tail:\n{}", tail(&self.log_text(), 20));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    /// A phase that failed still stops its server cleanly (SIGTERM, so it
    /// destroys its sandboxes), killing it only if it hangs.
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
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

/// `(hierarchies where the instance's cgroup dir still exists, sandbox
/// cgroups left in them)` for the instance cgroup `rel`.
fn cgroup_leftovers(rel: &Path) -> (usize, usize) {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let (mut dirs, mut sandboxes) = (0, 0);
    for root in roots {
        let d = root.join(rel);
        if let Ok(rd) = std::fs::read_dir(&d) {
            dirs += 1;
            sandboxes += rd.flatten().filter(|e| e.path().is_dir()).count();
        }
    }
    (dirs, sandboxes)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_asked_settings() {
        let spec = ServerSpec {
            pool_size: 16,
            parallel_creates: 2,
            max_sandboxes: 1100,
            small_limits: Some((64, 16)),
            id_base: 3_000_000_000,
            auth: false,
            extra_toml: "[egress.hosts]\n\"a.test\" = \"127.0.0.1\"\n".into(),
        };
        let t = spec.toml();
        assert!(t.ends_with("[egress.hosts]\n\"a.test\" = \"127.0.0.1\"\n"), "{t}");
        assert!(t.contains("[auth]\nenabled = false"), "{t}");
        assert!(t.contains("size = 16") && t.contains("parallel_creates = 2"), "{t}");
        assert!(t.contains("max_sandboxes = 1100") && t.contains("memory_mb = 64"), "{t}");
        assert!(t.contains("listen = \"127.0.0.1:0\""), "{t}");
    }
}
