//! Many idle persistent sandboxes: host memory per sandbox, API latency
//! while they exist, and memory given back once they are deleted.
//!
//! Memory method: `/proc/meminfo` is read (median of 5 snapshots 200 ms
//! apart) with the server started and its pool full, and again once the
//! sandboxes exist and the pool has refilled. The figure is the growth of
//! `MemTotal − MemAvailable`, less the growth of the anonymous memory of
//! every process outside the server's tree (compilers and tests of other
//! work on the same host), divided by the number of sandboxes. It counts
//! what a sandbox really costs the host — its processes' private pages, its
//! tmpfs root, page tables, kernel stacks, and the unreclaimable kernel
//! objects of its namespaces, mounts and cgroups — and not page cache the
//! kernel can drop. Cross-checks: the uncorrected figure, the same with
//! all caches excluded and tmpfs counted, the cgroup charge of the server's
//! sandbox tree, the inits' Pss, and the server's own RSS growth.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::api;
use crate::cpu::CpuSnapshot;
use crate::host::{self, mib, MemInfo};
use crate::report::{Report, Verdict};
use crate::server::{Server, ServerSpec};

use super::warm::{report_cpu, report_exec, report_run};
use super::*;

const SETTLE: Duration = Duration::from_secs(2);
/// Longest wait for the kernel to give deleted sandboxes' memory back.
const RETURN_WAIT: Duration = Duration::from_secs(30);
/// Fields whose growth shows where a sandbox's memory goes.
const BREAKDOWN: &[&str] = &["AnonPages", "Shmem", "SUnreclaim", "SReclaimable", "PageTables", "KernelStack", "Percpu"];

struct Snapshot {
    mem: MemInfo,
    /// Anonymous memory of processes outside the server's tree (KiB).
    others_anon: u64,
    server_rss_kib: u64,
    cgroup_bytes: u64,
    memcgs: u64,
}

impl Snapshot {
    fn take(server: &Server) -> Result<Self> {
        let others_anon = host::anon_kib_outside(server.pid());
        let Some(mem) = host::settled_meminfo(5, Duration::from_millis(200)) else {
            bail!("cannot read /proc/meminfo");
        };
        Ok(Self {
            mem,
            others_anon: (others_anon + host::anon_kib_outside(server.pid())) / 2,
            server_rss_kib: host::status_kib(server.pid(), "VmRSS").unwrap_or(0),
            cgroup_bytes: server.cgroup_parent().and_then(|p| host::cgroup_memory_bytes(&p)).unwrap_or(0),
            memcgs: host::memory_cgroups().unwrap_or(0),
        })
    }

    /// Growth of host memory in use since `earlier` (KiB), raw and with the
    /// growth of other processes' anonymous memory taken out.
    fn growth(&self, earlier: &Self) -> (i64, i64) {
        let raw = self.mem.used() - earlier.mem.used();
        let others = self.others_anon as i64 - earlier.others_anon as i64;
        (raw, raw - others)
    }
}

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let n = plan.idle_n;
    let spec = ServerSpec { max_sandboxes: n + 100, small_limits: Some((64, 16)), ..super::spec(3, 4, 2) };
    let server = Server::start(bin, &spec).await?;
    let pool = server.wait_pool_settled(Duration::from_secs(60)).await?;
    let pool_target: usize = pool.profiles.iter().map(|p| p.target).sum();
    tokio::time::sleep(SETTLE).await;
    let base = Snapshot::take(&server)?;

    let cpu0 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let created = api::create_many(&server.client, n, plan.idle_workers, plan.idle_budget).await;
    let count = created.ids.len();
    let rate = count as f64 / created.elapsed.as_secs_f64().max(1e-9);
    let lat = created.latencies.summary().map(|s| s.line()).unwrap_or_default();
    report.add(
        &format!("create {n} persistent sandboxes"),
        format!("{count} in {:.1} s ({rate:.0}/s)", created.elapsed.as_secs_f64()),
        &format!("all {n}"),
        Verdict::of(count == n),
        format!(
            "{} concurrent clients; limits memory 64 MiB, disk 16 MiB; create latency {lat}{}",
            plan.idle_workers,
            created.first_error.as_deref().map(|e| format!("; stopped by: {e}")).unwrap_or_default()
        ),
    );
    if count == 0 {
        server.stop(report).await?;
        bail!("no sandbox could be created");
    }
    server.wait_pool_settled(Duration::from_secs(120)).await?;
    let cpu1 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    report_cpu(report, "CPU per persistent sandbox created", &cpu0.per_op(&cpu1, count), count);
    tokio::time::sleep(SETTLE).await;
    let full = Snapshot::take(&server)?;
    memory_rows(report, &server, &base, &full, count);

    let peers = PeerFigures::default();
    let with = format!("with {count} idle sandboxes");
    let before = server.client.status().await?.pool;
    let run = api::run_latency(&server.client, plan.idle_run).await?;
    let after = server.client.status().await?.pool;
    let note = format!("pool hits {}, misses {}", after.hits - before.hits, after.misses - before.misses);
    report_run(report, &format!("POST /v1/run true {with}"), &run, &peers, &note);
    let exec = api::exec_latency(&server.client, &created.ids[0], plan.idle_exec).await?;
    report_exec(report, &format!("exec true {with}"), &exec, &peers);

    let t = Instant::now();
    let (del, del_failed) = api::delete_many(&server.client, &created.ids, plan.idle_workers, plan.idle_budget).await;
    let deleted = del.len();
    let del_lat = del.summary().map(|s| s.line()).unwrap_or_default();
    let gone = wait_inits_at_most(&server, pool_target, Duration::from_secs(120)).await;
    report.add(
        &format!("delete {count} sandboxes"),
        format!("{deleted} in {:.1} s", t.elapsed().as_secs_f64()),
        &format!("all {count}"),
        Verdict::of(deleted == count && del_failed == 0 && gone),
        format!(
            "delete latency {del_lat}; {}",
            if gone { "every sandbox init exited" } else { "some sandbox inits were still alive after 120 s" }
        ),
    );
    server.wait_pool_settled(Duration::from_secs(60)).await?;
    let (_, grown) = full.growth(&base);
    let bound = (grown as f64 * 0.10).max(16.0 * 1024.0);
    // The kernel frees some of a sandbox's objects late (RCU, work queues):
    // look again every 2 s for a while before judging.
    let waited = Instant::now();
    let mut after_del = Snapshot::take(&server)?;
    while (after_del.growth(&base).1 as f64) > bound && waited.elapsed() < RETURN_WAIT {
        tokio::time::sleep(SETTLE).await;
        after_del = Snapshot::take(&server)?;
    }
    let (raw_residual, residual) = after_del.growth(&base);
    report.add(
        "host memory given back after deleting them",
        format!("residual {:+.1} MiB of {:+.1} MiB grown", mib(residual as f64), mib(grown as f64)),
        "residual ≤ 10% of growth (min 16 MiB)",
        Verdict::of((residual as f64) <= bound),
        format!(
            "after {:.0} s; uncorrected residual {:+.1} MiB; {} one-shot sandboxes came and went in between; \
             memory cgroups on the host {} → {} → {}; server VmRSS {:.1} → {:.1} → {:.1} MiB; sandbox cgroup charge \
             back to {:.1} MiB",
            waited.elapsed().as_secs_f64(),
            mib(raw_residual as f64),
            run.client.len() + plan.idle_run.warmup,
            base.memcgs,
            full.memcgs,
            after_del.memcgs,
            mib(base.server_rss_kib as f64),
            mib(full.server_rss_kib as f64),
            mib(after_del.server_rss_kib as f64),
            after_del.cgroup_bytes as f64 / 1048576.0
        ),
    );
    report.info("residual breakdown (MiB, /proc/meminfo Δ)", breakdown(&base, &after_del, 1024.0), String::new());
    server.stop(report).await
}

fn memory_rows(report: &mut Report, server: &Server, base: &Snapshot, full: &Snapshot, count: usize) {
    let per = |d: i64| mib(d as f64 / count as f64);
    let (raw, corrected) = full.growth(base);
    let used = per(corrected);
    let no_cache = per(full.mem.used_no_cache() - base.mem.used_no_cache());
    let cgroup = (full.cgroup_bytes as f64 - base.cgroup_bytes as f64) / count as f64 / 1048576.0;
    let server_rss = per(full.server_rss_kib as i64 - base.server_rss_kib as i64);
    let inits = server.init_pids();
    let init_pss: u64 = inits.iter().filter_map(|p| host::pss_kib(*p)).sum();
    let init_mean = if inits.is_empty() { 0.0 } else { mib(init_pss as f64 / inits.len() as f64) };
    report.add(
        "host memory per idle sandbox",
        format!("{used:.2} MiB"),
        &format!("≤ {PER_SANDBOX_TARGET_MIB:.0} MiB"),
        Verdict::of(used <= PER_SANDBOX_TARGET_MIB),
        format!(
            "Δ(MemTotal−MemAvailable) less other processes' ΔRssAnon ({:+.1} MiB), / {count}; uncorrected {:.2} MiB; \
             cross-checks: Δ(used, caches excluded, shmem counted) {no_cache:.2} MiB, cgroup charge {cgroup:.2} MiB, \
             init Pss {init_mean:.2} MiB, server RSS {:.0} KiB per sandbox",
            mib(full.others_anon as f64 - base.others_anon as f64),
            per(raw),
            server_rss * 1024.0
        ),
    );
    report.info(
        "per-sandbox breakdown (KiB, /proc/meminfo Δ)",
        breakdown(base, full, count as f64),
        "AnonPages includes other processes' growth".into(),
    );
}

/// Growth of the [`BREAKDOWN`] fields from `a` to `b`, each divided by `div`.
fn breakdown(a: &Snapshot, b: &Snapshot, div: f64) -> String {
    let parts: Vec<String> =
        BREAKDOWN.iter().map(|f| format!("{f} {:+.1}", (b.mem.kib(f) as f64 - a.mem.kib(f) as f64) / div)).collect();
    parts.join(", ")
}

/// Waits until at most `n` sandbox inits remain (the pool's); false on timeout.
async fn wait_inits_at_most(server: &Server, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if server.init_pids().len() <= n {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
