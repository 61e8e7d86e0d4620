//! The warm pool: ready sandboxes kept per image/limits profile, so a
//! one-shot run does no setup on its path. A pooled sandbox serves exactly
//! one run and is then destroyed; the pool refills in the background.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use superserver_wire::{EffectiveLimits, PoolProfileStatus, PoolStatus};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::network::Network;
use crate::runtime::Runtime;
use crate::sandbox::Sandbox;
use crate::spec::Image;

/// How the pool behaves.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Ready sandboxes kept for each profile (0 disables the pool).
    pub size: usize,
    /// Profile kept warm from the start.
    pub default_image: Image,
    pub default_limits: EffectiveLimits,
    /// Most profiles kept warm at once; others are created on demand.
    pub max_profiles: usize,
    /// A profile other than the default that is not used for this long stops being kept warm.
    pub profile_idle: Duration,
    /// Sandboxes created concurrently while refilling.
    pub parallel_creates: usize,
}

type Key = (Image, EffectiveLimits, Network);

struct Profile {
    ready: VecDeque<Sandbox>,
    creating: usize,
    target: usize,
    last_used: Instant,
    pinned: bool,
}

#[derive(Default)]
struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    in_use: AtomicUsize,
}

struct Inner {
    rt: Runtime,
    cfg: PoolConfig,
    profiles: Mutex<HashMap<Key, Profile>>,
    wake: Notify,
    stats: Stats,
    next_id: Box<dyn Fn() -> String + Send + Sync>,
    /// Set by [`Pool::drain`]: sandboxes finished after it are destroyed.
    closed: std::sync::atomic::AtomicBool,
    /// Sandboxes created on the request path (the pool was short) pass here,
    /// by priority.
    gate: crate::gate::PriorityGate,
}

/// The warm pool. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// A sandbox handed out by the pool for one use. Dropping the lease
/// destroys the sandbox (in the background).
pub struct Lease {
    sandbox: Option<Sandbox>,
    /// Whether it came ready from the pool.
    pub hit: bool,
    pool: Pool,
}

impl Lease {
    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("a lease holds its sandbox until dropped")
    }
}

/// How long a returned sandbox waits before teardown and refill start, so
/// that the answer to the request it served goes out first.
const RELEASE_DELAY: Duration = Duration::from_millis(2);

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sb) = self.sandbox.take() {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                tokio::time::sleep(RELEASE_DELAY).await;
                pool.inner.stats.in_use.fetch_sub(1, Ordering::Relaxed);
                pool.inner.rt.destroy(sb);
                pool.inner.wake.notify_one();
            });
        }
    }
}

impl Pool {
    /// Creates the pool and starts refilling it until `cancel` fires.
    /// `next_id` names new sandboxes.
    pub fn start(
        rt: Runtime,
        cfg: PoolConfig,
        next_id: impl Fn() -> String + Send + Sync + 'static,
        cancel: CancellationToken,
    ) -> Self {
        let cfg_parallel = cfg.parallel_creates.max(1);
        let mut profiles = HashMap::new();
        if cfg.size > 0 {
            profiles.insert(
                (cfg.default_image.clone(), cfg.default_limits, Network::None),
                Profile {
                    ready: VecDeque::new(),
                    creating: 0,
                    target: cfg.size,
                    last_used: Instant::now(),
                    pinned: true,
                },
            );
        }
        let pool = Self {
            inner: Arc::new(Inner {
                rt,
                cfg,
                profiles: Mutex::new(profiles),
                wake: Notify::new(),
                stats: Stats::default(),
                next_id: Box::new(next_id),
                closed: std::sync::atomic::AtomicBool::new(false),
                gate: crate::gate::PriorityGate::new(cfg_parallel),
            }),
        };
        let p = pool.clone();
        tokio::spawn(async move { p.refill_loop(cancel).await });
        pool
    }

    /// A fresh sandbox for `image`/`limits`/`network`: a ready one if the
    /// pool has it, else one created now. Never one that served another run.
    /// When the pool is short, requests of a higher `priority` are served
    /// first.
    pub async fn acquire(
        &self,
        image: &Image,
        limits: &EffectiveLimits,
        network: Network,
        priority: u8,
    ) -> Result<Lease> {
        let key = (image.clone(), *limits, network);
        if let Some(lease) = self.take_ready(&key) {
            return Ok(lease);
        }
        self.inner.stats.misses.fetch_add(1, Ordering::Relaxed);
        self.inner.wake.notify_one();
        let _permit = self.inner.gate.acquire(priority).await;
        // A refill may have landed while this request waited.
        if let Some(mut lease) = self.take_ready(&key) {
            self.inner.stats.hits.fetch_sub(1, Ordering::Relaxed);
            lease.hit = false;
            return Ok(lease);
        }
        let sandbox = self.inner.rt.create((self.inner.next_id)(), image.clone(), *limits, network, true).await?;
        sandbox.claim();
        self.inner.stats.in_use.fetch_add(1, Ordering::Relaxed);
        Ok(Lease { sandbox: Some(sandbox), hit: false, pool: self.clone() })
    }

    /// Requests waiting to have a sandbox created for them.
    pub fn waiting(&self) -> usize {
        self.inner.gate.waiting()
    }

    /// A ready sandbox of profile `key`, if any (registering the profile).
    fn take_ready(&self, key: &Key) -> Option<Lease> {
        let taken = {
            let mut profiles = self.lock();
            let mut taken = None;
            if let Some(p) = profiles.get_mut(key) {
                p.last_used = Instant::now();
                // Newest first: its pages are the likeliest still in cache.
                while let Some(sb) = p.ready.pop_back() {
                    if sb.alive() && sb.claim() {
                        taken = Some(sb);
                        break;
                    }
                    self.inner.rt.destroy(sb);
                }
            } else if self.inner.cfg.size > 0 && profiles.len() < self.inner.cfg.max_profiles {
                profiles.insert(
                    key.clone(),
                    Profile {
                        ready: VecDeque::new(),
                        creating: 0,
                        target: self.inner.cfg.size,
                        last_used: Instant::now(),
                        pinned: false,
                    },
                );
            }
            taken
        };
        let sandbox = taken?;
        self.inner.stats.hits.fetch_add(1, Ordering::Relaxed);
        self.inner.stats.in_use.fetch_add(1, Ordering::Relaxed);
        Some(Lease { sandbox: Some(sandbox), hit: true, pool: self.clone() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Profile>> {
        self.inner.profiles.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn refill_loop(self, cancel: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.inner.cfg.parallel_creates.max(1)));
        loop {
            self.evict_idle();
            let wanted: Vec<Key> = {
                let mut profiles = self.lock();
                let mut wanted = Vec::new();
                for (key, p) in profiles.iter_mut() {
                    while p.ready.len() + p.creating < p.target {
                        p.creating += 1;
                        wanted.push(key.clone());
                    }
                }
                wanted
            };
            for key in wanted {
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => p,
                    _ = cancel.cancelled() => break,
                };
                let Ok(permit) = permit else { break };
                let pool = self.clone();
                tokio::spawn(async move {
                    pool.create_one(key).await;
                    drop(permit);
                });
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => break,
            }
        }
        self.drain().await;
    }

    async fn create_one(&self, key: Key) {
        let created = self.inner.rt.create((self.inner.next_id)(), key.0.clone(), key.1, key.2, false).await;
        let failed = created.is_err();
        if self.inner.closed.load(Ordering::SeqCst) {
            if let Ok(sb) = created {
                self.inner.rt.destroy_wait(sb).await;
            }
            return;
        }
        {
            let mut profiles = self.lock();
            let profile = profiles.get_mut(&key);
            match (created, profile) {
                (Ok(sb), Some(p)) => {
                    p.creating -= 1;
                    if p.ready.len() < p.target {
                        p.ready.push_back(sb);
                    } else {
                        self.inner.rt.destroy(sb);
                    }
                }
                (Ok(sb), None) => self.inner.rt.destroy(sb),
                (Err(_), Some(p)) => p.creating -= 1,
                (Err(_), None) => {}
            }
        }
        if failed {
            // Back off so a broken profile does not spin.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn evict_idle(&self) {
        let idle = self.inner.cfg.profile_idle;
        let mut profiles = self.lock();
        let stale: Vec<Key> = profiles
            .iter()
            .filter(|(_, p)| !p.pinned && p.last_used.elapsed() > idle && p.creating == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(p) = profiles.remove(&key) {
                for sb in p.ready {
                    self.inner.rt.destroy(sb);
                }
            }
        }
    }

    /// Destroys every ready sandbox and waits for it (shutdown).
    pub async fn drain(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let all: Vec<Sandbox> = {
            let mut profiles = self.lock();
            profiles.values_mut().flat_map(|p| std::mem::take(&mut p.ready)).collect()
        };
        for sb in all {
            self.inner.rt.destroy_wait(sb).await;
        }
    }

    /// Figures for `/v1/status` and `/metrics`.
    pub fn status(&self) -> PoolStatus {
        let profiles = self.lock();
        let st = self.inner.rt.stats();
        let created = st.created.load(Ordering::Relaxed);
        let mut out = PoolStatus {
            hits: self.inner.stats.hits.load(Ordering::Relaxed),
            misses: self.inner.stats.misses.load(Ordering::Relaxed),
            in_use: self.inner.stats.in_use.load(Ordering::Relaxed),
            waiting: self.inner.gate.waiting(),
            created,
            destroyed: st.destroyed.load(Ordering::Relaxed),
            create_failures: st.create_failures.load(Ordering::Relaxed),
            create_ms_mean: if created == 0 {
                0.0
            } else {
                st.create_us_total.load(Ordering::Relaxed) as f64 / created as f64 / 1000.0
            },
            create_ms_max: st.create_us_max.load(Ordering::Relaxed) as f64 / 1000.0,
            ..Default::default()
        };
        for ((image, limits, network), p) in profiles.iter() {
            out.ready += p.ready.len();
            out.creating += p.creating;
            out.profiles.push(PoolProfileStatus {
                image: image.name(),
                network: match network {
                    Network::None => "none",
                    Network::Governed => "policy",
                }
                .into(),
                limits: *limits,
                target: p.target,
                ready: p.ready.len(),
                creating: p.creating,
            });
        }
        out.profiles.sort_by(|a, b| b.ready.cmp(&a.ready).then(a.image.cmp(&b.image)));
        out
    }
}
