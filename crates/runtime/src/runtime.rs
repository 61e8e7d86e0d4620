//! The native Linux sandbox backend: creates and destroys sandboxes.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use superserver_wire::{BackendStatus, EffectiveLimits};
use tokio::net::UnixStream;

use crate::cgroup::{Cgroups, Migrations};
use crate::error::{Result, RuntimeError};
use crate::network::Network;
use crate::ratelimit::RateLimit;
use crate::sandbox::{Sandbox, SandboxParts};
use crate::spec::{Image, SetupSpec, IDS_PER_SANDBOX};
use crate::sys;
use crate::zygote::Zygote;

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for the runtime's scratch files (a mount point per sandbox
    /// lives here, used only inside each sandbox's own mount namespace).
    pub run_dir: PathBuf,
    /// Executable and arguments that start the zygote (this binary with its
    /// hidden subcommand).
    pub helper_exe: PathBuf,
    pub helper_args: Vec<String>,
    /// cgroup parent, relative to each hierarchy root, e.g. `superserver/<instance>`.
    pub cgroup_parent: PathBuf,
    /// First host uid/gid used for sandbox id maps; each sandbox gets 65536.
    pub id_base: u32,
    /// Most sandboxes alive at once (pool included).
    pub max_sandboxes: usize,
    /// Longest a sandbox may take to become ready.
    pub setup_timeout: Duration,
    /// Turn the host's cgroup2 option `favordynmods` on, so that moving a
    /// process into a sandbox's cgroup never waits for an RCU grace period
    /// (see [`crate::cgroup::Migrations`]).
    pub cgroup_favordynmods: bool,
}

/// Counters of the runtime, for `/v1/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct RuntimeStats {
    pub created: AtomicU64,
    pub destroyed: AtomicU64,
    pub create_failures: AtomicU64,
    pub live: AtomicUsize,
    /// Sum and max of create times in microseconds.
    pub create_us_total: AtomicU64,
    pub create_us_max: AtomicU64,
    pub cleanup_failures: AtomicU64,
    /// Sandboxes that got a spare cgroup rather than a new one.
    pub cgroups_reused: AtomicU64,
}

/// Spare cgroups kept at most: enough for the sandboxes that come and go
/// at once (the pools and the requests in flight); past a peak, the rest
/// are removed.
const MAX_SPARE_CGROUPS: usize = 64;

/// The cgroup of the sandbox in id-map slot `slot`. A slot is held by one
/// live sandbox at a time, and its group passes with it to the next.
fn cgroup_name(slot: u32) -> String {
    format!("s{slot}")
}

struct Inner {
    cfg: RuntimeConfig,
    cgroups: Cgroups,
    /// Replaced if it ever dies (its sandboxes die with it).
    zygote: Mutex<Arc<Zygote>>,
    slots: Mutex<Slots>,
    /// Slots whose cgroup outlived its last sandbox and waits, empty, for
    /// the next one (see [`Cgroups::reuse`]), with the limits it carries.
    spare_cgroups: Mutex<std::collections::HashMap<u32, EffectiveLimits>>,
    stats: RuntimeStats,
    landlock: String,
    migrations: Migrations,
}

/// Free-list of id-map slots.
struct Slots {
    free: Vec<u32>,
    next: u32,
    max: u32,
}

impl Slots {
    fn take(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        if self.next < self.max {
            self.next += 1;
            return Some(self.next - 1);
        }
        None
    }
}

/// The sandbox runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Checks the host, starts the zygote, and removes whatever a previous
    /// run of this instance left behind. Must run as root.
    pub fn start(cfg: RuntimeConfig) -> Result<Self> {
        if sys::geteuid() != 0 {
            return Err(RuntimeError::Unavailable(
                "the native sandbox backend needs root (to map user ids and manage cgroups); \
                 run `superserver serve` as root"
                    .into(),
            ));
        }
        std::fs::create_dir_all(cfg.run_dir.join("root"))?;
        let etc_net = Some(crate::network::RESOLVER_ADDR);
        crate::etc::build(&cfg.run_dir.join("etc"), "sandbox", None)
            .and_then(|()| crate::etc::build(&cfg.run_dir.join("etc-net"), "sandbox", etc_net))
            .map_err(|e| RuntimeError::Unavailable(format!("cannot prepare the sandboxes' /etc: {e}")))?;
        let cgroups =
            Cgroups::detect(&cfg.cgroup_parent).map_err(|e| RuntimeError::Unavailable(format!("cgroups: {e}")))?;
        let migrations = cgroups.migrations(cfg.cgroup_favordynmods);
        match &migrations {
            Migrations::Fast { enabled_now: true } => tracing::info!(
                "turned on the host's cgroup2 option favordynmods (it stays on until reboot): moving a process \
                 into a sandbox's cgroup no longer waits for an RCU grace period"
            ),
            Migrations::Fast { enabled_now: false } => {}
            Migrations::Slow { reason } => tracing::warn!(
                %reason,
                "cgroup migrations may wait for an RCU grace period (5-30 ms on an idle host) per sandbox"
            ),
        }
        let max_slots = ((u64::from(u32::MAX) - u64::from(cfg.id_base)) / u64::from(IDS_PER_SANDBOX)) as u32;
        let max = max_slots.min(cfg.max_sandboxes as u32);
        let zygote = Zygote::start(&cfg.helper_exe, &cfg.helper_args)?;
        let landlock = {
            let abi = sys::landlock_abi();
            if abi < 1 {
                "unavailable".to_string()
            } else {
                format!("abi {abi}")
            }
        };
        let rt = Self {
            inner: Arc::new(Inner {
                cfg,
                cgroups,
                zygote: Mutex::new(Arc::new(zygote)),
                slots: Mutex::new(Slots { free: Vec::new(), next: 0, max }),
                spare_cgroups: Mutex::new(std::collections::HashMap::new()),
                stats: RuntimeStats::default(),
                landlock,
                migrations,
            }),
        };
        let cleaned = rt.cleanup_leftovers();
        if cleaned > 0 {
            tracing::warn!(cleaned, "removed sandboxes left by a previous run");
        }
        Ok(rt)
    }

    /// Kills and removes every sandbox cgroup of this instance that is not
    /// live in this process (what an unclean stop left). Returns how many.
    pub fn cleanup_leftovers(&self) -> usize {
        let names = self.inner.cgroups.list();
        let mut n = 0;
        for name in names {
            let cg = self.inner.cgroups.open(&name);
            cg.kill_all();
            match cg.remove() {
                Ok(()) => n += 1,
                Err(e) => tracing::error!(sandbox = %name, error = %e, "cannot remove leftover cgroup"),
            }
        }
        n
    }

    /// Final cleanup at shutdown, once every sandbox is destroyed: the spare
    /// cgroups, then the instance's own.
    pub fn shutdown(&self) {
        let spares: Vec<u32> = self.lock_spares().drain().map(|(slot, _)| slot).collect();
        for slot in spares {
            if let Err(e) = self.inner.cgroups.open(&cgroup_name(slot)).remove() {
                tracing::error!(slot, error = %e, "cannot remove a spare cgroup");
            }
        }
        self.inner.cgroups.remove_parent();
    }

    fn lock_spares(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u32, EffectiveLimits>> {
        self.inner.spare_cgroups.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> &RuntimeStats {
        &self.inner.stats
    }

    /// Whether the zygote is running (the backend can create sandboxes).
    pub fn healthy(&self) -> bool {
        self.zygote().alive()
    }

    /// What this backend enforces on this host.
    pub fn backend_status(&self) -> BackendStatus {
        let mut features = BTreeMap::new();
        features.insert("cgroup".into(), self.inner.cgroups.version().into());
        features.insert("cgroup_migrations".into(), self.inner.migrations.describe());
        features.insert("landlock".into(), self.inner.landlock.clone());
        features.insert("seccomp".into(), "filter (deny-list, arch-checked)".into());
        features.insert("namespaces".into(), "user, mount, pid, network, ipc, uts, cgroup".into());
        features.insert("network".into(), "none (loopback only); policy (transparent egress proxy)".into());
        BackendStatus { name: "native".into(), available: self.healthy(), features }
    }

    /// Creates a sandbox with `id` (no pool involved). `urgent` when a
    /// request waits for it: it is then built at normal CPU priority rather
    /// than the background one.
    pub async fn create(
        &self,
        id: String,
        image: Image,
        limits: EffectiveLimits,
        network: Network,
        urgent: bool,
    ) -> Result<Sandbox> {
        let started = Instant::now();
        let result = self.create_inner(id, image, limits, network, urgent).await;
        let st = &self.inner.stats;
        match &result {
            Ok(_) => {
                let us = started.elapsed().as_micros() as u64;
                st.created.fetch_add(1, Ordering::Relaxed);
                st.create_us_total.fetch_add(us, Ordering::Relaxed);
                st.create_us_max.fetch_max(us, Ordering::Relaxed);
            }
            Err(e) => {
                st.create_failures.fetch_add(1, Ordering::Relaxed);
                static LOG: RateLimit = RateLimit::new(Duration::from_secs(10), 5);
                if let Some(suppressed) = LOG.check() {
                    tracing::warn!(error = %e, suppressed, "sandbox creation failed");
                }
            }
        }
        result
    }

    async fn create_inner(
        &self,
        id: String,
        image: Image,
        limits: EffectiveLimits,
        network: Network,
        urgent: bool,
    ) -> Result<Sandbox> {
        let net = match network {
            Network::None => None,
            Network::Governed => {
                let nft = self.nft()?;
                Some(
                    tokio::task::spawn_blocking(move || crate::network::prepare(&nft))
                        .await
                        .map_err(|e| RuntimeError::Setup(format!("network namespace preparation failed: {e}")))??,
                )
            }
        };
        let slot = {
            let mut slots = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.take().ok_or(RuntimeError::Capacity(self.inner.stats.live.load(Ordering::Relaxed)))?
        };
        self.inner.stats.live.fetch_add(1, Ordering::Relaxed);
        let host_id_base = self.inner.cfg.id_base + slot * IDS_PER_SANDBOX;
        let cgroup = match self.sandbox_cgroup(slot, host_id_base, &limits) {
            Ok(c) => c,
            Err(e) => {
                self.free_slot(slot);
                return Err(e);
            }
        };
        let setup = SetupSpec {
            id: id.clone(),
            image: image.clone(),
            limits,
            hostname: "sandbox".into(),
            root_mount: self.inner.cfg.run_dir.join("root"),
            etc_dir: self.inner.cfg.run_dir.join(match network {
                Network::None => "etc",
                Network::Governed => "etc-net",
            }),
            urgent,
            host_id_base,
            cgroup_procs: cgroup.procs_files(),
            network,
        };
        let fail = |rt: &Self, e: RuntimeError, cgroup: &crate::cgroup::SandboxCgroup| {
            cgroup.kill_all();
            let _ = cgroup.remove();
            rt.free_slot(slot);
            e
        };
        let (ours, theirs) = match sys::socket_pair(libc::SOCK_STREAM) {
            Ok(p) => p,
            Err(e) => return Err(fail(self, e.into(), &cgroup)),
        };
        let netns = net.as_ref().map(|n| n.netns());
        let spawned = match self.zygote().spawn(&setup, theirs, netns).await {
            Ok(s) => s,
            Err(e) => return Err(fail(self, e, &cgroup)),
        };
        let stream = match sys::set_nonblocking(ours.as_fd(), true)
            .and_then(|()| UnixStream::from_std(std::os::unix::net::UnixStream::from(ours)))
        {
            Ok(s) => s,
            Err(e) => {
                let _ = sys::pidfd_kill(spawned.pidfd.as_fd(), libc::SIGKILL);
                return Err(fail(self, e.into(), &cgroup));
            }
        };
        let timeout = self.inner.cfg.setup_timeout;
        let parts = SandboxParts { pid: spawned.pid, pidfd: spawned.pidfd, cgroup, slot, net };
        match Sandbox::connect(id, image, limits, spawned.pid, parts, stream, timeout).await {
            Ok(sb) => Ok(sb),
            Err((e, parts)) => {
                self.release(parts).await;
                Err(e)
            }
        }
    }

    /// The cgroup of the sandbox in `slot`, limited by `limits` and
    /// delegated to its root (`owner`): the slot's spare if it has one, else
    /// a new one.
    fn sandbox_cgroup(&self, slot: u32, owner: u32, limits: &EffectiveLimits) -> Result<crate::cgroup::SandboxCgroup> {
        let name = cgroup_name(slot);
        let cgroups = &self.inner.cgroups;
        // Bound first, so that the lock is not held while the group is set up.
        let spare = self.lock_spares().remove(&slot);
        if let Some(had) = spare {
            match cgroups.reuse(&name, &had, limits) {
                Ok(c) => {
                    self.inner.stats.cgroups_reused.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => {
                    // Usually a memory limit below what is still charged to
                    // it: start over with a new group.
                    tracing::debug!(slot, error = %e, "spare cgroup not reusable; replacing it");
                    let _ = cgroups.open(&name).remove();
                }
            }
        }
        let cgroup = cgroups.create(&name, limits).map_err(|e| RuntimeError::Setup(format!("cgroup: {e}")))?;
        if let Err(e) = cgroup.delegate(owner) {
            cgroup.kill_all();
            let _ = cgroup.remove();
            return Err(RuntimeError::Setup(format!("delegate cgroup: {e}")));
        }
        Ok(cgroup)
    }

    /// The `nft` program, looked up once.
    fn nft(&self) -> Result<PathBuf> {
        static NFT: std::sync::OnceLock<std::result::Result<PathBuf, String>> = std::sync::OnceLock::new();
        NFT.get_or_init(|| crate::network::find_nft().map_err(|e| e.to_string()))
            .clone()
            .map_err(RuntimeError::Unavailable)
    }

    /// The live zygote, restarted first if the last one died.
    fn zygote(&self) -> Arc<Zygote> {
        let mut z = self.inner.zygote.lock().unwrap_or_else(|e| e.into_inner());
        if !z.alive() {
            match Zygote::start(&self.inner.cfg.helper_exe, &self.inner.cfg.helper_args) {
                Ok(fresh) => {
                    tracing::error!("the sandbox zygote died; started a new one");
                    *z = Arc::new(fresh);
                }
                Err(e) => tracing::error!(error = %e, "the sandbox zygote died and cannot be restarted"),
            }
        }
        z.clone()
    }

    fn free_slot(&self, slot: u32) {
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner()).free.push(slot);
        self.inner.stats.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Destroys a sandbox in the background: off the request path.
    pub fn destroy(&self, sb: Sandbox) {
        let rt = self.clone();
        let parts = sb.into_parts();
        tokio::spawn(async move { rt.release(parts).await });
    }

    /// Destroys a sandbox and waits until nothing of it is left.
    pub async fn destroy_wait(&self, sb: Sandbox) {
        self.release(sb.into_parts()).await;
    }

    /// Kills the init (the kernel then kills everything in its pid
    /// namespace), waits for it to exit, removes the cgroup, frees the slot.
    async fn release(&self, parts: SandboxParts) {
        // The kernel tears the namespaces down in the dying init's context:
        // let that yield to the requests being served.
        // (Only while it lives: the pidfd says so, and a live pid is not reused.)
        if !sys::pidfd_exited(parts.pidfd.as_fd()) {
            let _ = sys::set_nice(parts.pid, crate::zygote::TEARDOWN_NICE);
        }
        let _ = sys::pidfd_kill(parts.pidfd.as_fd(), libc::SIGKILL);
        if let Ok(afd) = sys::async_fd(parts.pidfd) {
            let waited = tokio::time::timeout(Duration::from_secs(10), afd.readable()).await;
            if waited.is_err() {
                static LOG: RateLimit = RateLimit::new(Duration::from_secs(10), 5);
                if let Some(suppressed) = LOG.check() {
                    tracing::error!(suppressed, "sandbox init did not exit within 10s of SIGKILL");
                }
            }
        }
        let cgroup = parts.cgroup;
        let slot = parts.slot;
        let owner = self.inner.cfg.id_base + slot * IDS_PER_SANDBOX;
        let room = self.lock_spares().len() < MAX_SPARE_CGROUPS;
        let limits = cgroup.limits().copied();
        let removed = tokio::task::spawn_blocking(move || {
            if room && limits.is_some() && matches!(cgroup.recycle(owner), Ok(true)) {
                return Ok(true);
            }
            cgroup.remove().map(|()| false)
        })
        .await;
        if let (Ok(Ok(true)), Some(limits)) = (&removed, limits) {
            self.lock_spares().insert(slot, limits);
        } else if !matches!(removed, Ok(Ok(false))) {
            self.inner.stats.cleanup_failures.fetch_add(1, Ordering::Relaxed);
            static LOG: RateLimit = RateLimit::new(Duration::from_secs(10), 5);
            if let Some(suppressed) = LOG.check() {
                tracing::error!(?removed, suppressed, "cannot remove a sandbox cgroup");
            }
        }
        self.inner.stats.destroyed.fetch_add(1, Ordering::Relaxed);
        self.free_slot(parts.slot);
    }
}
