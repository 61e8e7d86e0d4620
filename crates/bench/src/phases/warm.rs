//! Warm pool with the default pool size: idle footprint, `POST /v1/run`
//! latency, exec latency in a persistent sandbox.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use superserver_wire::CreateSandboxRequest;

use crate::api::{self, Bounds};
use crate::cpu::{CpuPerOp, CpuSnapshot};
use crate::host::{self, mib};
use crate::report::{Report, Verdict};
use crate::server::Server;
use crate::stats::{ms, ratio, Samples};

use super::*;

/// The server's default `[pool]` settings.
pub const DEFAULT_POOL: usize = 8;
pub const DEFAULT_PARALLEL: usize = 2;

pub async fn run(bin: &Path, plan: &Plan, peers: &PeerFigures, report: &mut Report) -> Result<()> {
    let server = Server::start(bin, &spec(0, DEFAULT_POOL, DEFAULT_PARALLEL)).await?;
    server.wait_pool_settled(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    idle_footprint(&server, report);
    fsync_probes(&server.data_dir(), plan.fsync, report);

    let hz = api::healthz_latency(&server.client, plan.healthz).await?;
    if let Some(s) = hz.summary() {
        report.info("GET /healthz (HTTP floor)", s.line(), "keep-alive loopback round trip, no work".into());
    }

    let before = server.client.status().await?.pool;
    let cpu0 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let run = api::run_latency(&server.client, plan.run).await?;
    let cpu1 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let after = server.client.status().await?.pool;
    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    let pool_note = format!("pool hits {hits}, misses {misses} during the loop");
    report_run(report, "POST /v1/run true (warm pool)", &run, peers, &pool_note);
    let runs = run.client.len();
    report_cpu(report, "CPU per warm-pool run", &cpu0.per_op(&cpu1, runs), runs);

    let paced = api::paced_run_latency(&server, plan.paced).await?;
    if let Some(s) = paced.client.summary() {
        report.info(
            "POST /v1/run true, paced (pool refilled before each)",
            s.line(),
            format!(
                "each after the pool refilled and 20 ms of quiet: no background create/destroy competes, but every \
                 hop wakes an idle CPU; {}",
                breakdown(&paced, "")
            ),
        );
    }

    let sb = server.client.create_sandbox(&CreateSandboxRequest::default()).await?;
    let cpu0 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let exec = api::exec_latency(&server.client, &sb.id, plan.exec).await;
    let cpu1 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let lean = api::lean_exec_latency(&server.url, &server.admin_key(), &sb.id, plan.exec).await;
    server.client.delete_sandbox(&sb.id).await.context("delete the exec sandbox")?;
    let exec = exec?;
    report_exec(report, "POST /v1/sandboxes/{id}/exec true", &exec, peers);
    let execs = exec.client.len();
    report_cpu(report, "CPU per exec", &cpu0.per_op(&cpu1, execs), execs);
    if let Some(s) = lean?.summary() {
        let typed = exec.client.summary().map(|t| format!("; typed client p50 {}", ms(t.p50))).unwrap_or_default();
        report.info(
            "POST /v1/sandboxes/{id}/exec true, minimal client",
            s.line(),
            format!(
                "same sandbox, right after: blocking socket, request bytes prepared once, no JSON decoding — the \
                 server's latency without the typed client's cost{typed}"
            ),
        );
    }

    let rss = host::status_kib(server.pid(), "VmRSS").unwrap_or(0);
    report.info(
        "server VmRSS after the latency loops",
        format!("{:.1} MiB", mib(rss as f64)),
        format!("after {} runs and {} execs", run.client.len() + plan.run.warmup, plan.exec.n + plan.exec.warmup),
    );
    server.stop(report).await
}

/// Idle RSS of the server and its zygote once the pool is full.
fn idle_footprint(server: &Server, report: &mut Report) {
    let spid = server.pid();
    let zpid = server.zygote_pid();
    let s_rss = host::status_kib(spid, "VmRSS").unwrap_or(0) as f64;
    let z_rss = zpid.and_then(|z| host::status_kib(z, "VmRSS")).unwrap_or(0) as f64;
    let s_pss = host::pss_kib(spid).unwrap_or(0) as f64;
    let z_pss = zpid.and_then(host::pss_kib).unwrap_or(0) as f64;
    let total = mib(s_rss + z_rss);
    report.add(
        "idle VmRSS, server + zygote",
        format!("{total:.1} MiB"),
        &format!("≤ {IDLE_RSS_TARGET_MIB:.0} MiB"),
        Verdict::of(total <= IDLE_RSS_TARGET_MIB),
        format!(
            "server {:.1} MiB (Pss {:.1}), zygote {:.1} MiB (Pss {:.1}); pool of {DEFAULT_POOL} full",
            mib(s_rss),
            mib(s_pss),
            mib(z_rss),
            mib(z_pss)
        ),
    );
    let inits = server.init_pids();
    let init_pss: u64 = inits.iter().filter_map(|p| host::pss_kib(*p)).sum();
    report.info(
        "pooled sandbox inits, Pss",
        format!("{:.2} MiB for {} inits", mib(init_pss as f64), inits.len()),
        "each ready sandbox holds one init process".into(),
    );
}

/// `fdatasync` of a 4 KiB append in the data directory: the floor of an
/// acknowledged store write (SQLite WAL, synchronous=FULL). Measured back to
/// back, and again with the disk left idle for 2 ms before each sync, as on
/// the request path, where a commit follows a command: on virtual disks a
/// sync costs more the longer the device was idle.
fn fsync_probes(dir: &Path, b: Bounds, report: &mut Report) {
    for (idle, figure, note) in [
        (Duration::ZERO, "fdatasync of 4 KiB in the data dir", "back to back: floor of one durable store commit"),
        (
            Duration::from_millis(2),
            "fdatasync of 4 KiB in the data dir, 2 ms apart",
            "each after 2 ms of an idle disk, as a commit on the request path",
        ),
    ] {
        match fsync_probe(dir, b, idle).map(|s| s.summary()) {
            Ok(Some(s)) => report.info(figure, s.line(), note.into()),
            Ok(None) => report.skipped(figure, "no iteration".into()),
            Err(e) => report.skipped(figure, format!("failed: {e:#}")),
        }
    }
}

fn fsync_probe(dir: &Path, b: Bounds, idle: Duration) -> Result<Samples> {
    let path = dir.join("bench-fsync-probe");
    let result = (|| -> Result<Samples> {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let block = [0x5au8; 4096];
        let mut s = Samples::with_capacity(b.n);
        let start = Instant::now();
        for i in 0..b.warmup + b.n {
            if start.elapsed() > b.budget {
                break;
            }
            std::thread::sleep(idle);
            let t = Instant::now();
            f.write_all(&block)?;
            f.sync_data()?;
            if i >= b.warmup {
                s.push(t.elapsed());
            }
        }
        Ok(s)
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// A row for where CPU time went in a loop, and the throughput it bounds.
pub fn report_cpu(report: &mut Report, figure: &str, per: &CpuPerOp, ops: usize) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let ceiling = if per.host > 0.0 { cores * 1000.0 / per.host } else { f64::INFINITY };
    report.info(
        figure,
        format!("{:.2} ms host CPU", per.host),
        format!("{}; over {ops} ops; {cores:.0} cores ⇒ ceiling ≈ {ceiling:.0}/s", per.line()),
    );
}

/// Rows for a run-latency loop: p50 and p99 against their targets, ratios.
pub fn report_run(report: &mut Report, figure: &str, t: &api::Timed, peers: &PeerFigures, extra: &str) {
    let Some(s) = t.client.summary() else {
        report.skipped(figure, "no iteration within the time budget".into());
        return;
    };
    let mut note =
        vec![format!("{}× faster than the {} seed anchor", (SEED_WARM_POOL_MS / s.p50).round(), ms(SEED_WARM_POOL_MS))];
    note.push(format!(
        "{}× faster than the Docker-pool {} anchor",
        (DOCKER_POOL_ANCHOR_MS / s.p50).round(),
        ms(DOCKER_POOL_ANCHOR_MS)
    ));
    if let Some(bw) = peers.bwrap {
        note.push(format!("{} bwrap p50", ratio(s.p50, bw.p50)));
    }
    if let Some(f) = peers.fork {
        note.push(format!("{} fork+exec p50", ratio(s.p50, f.p50)));
    }
    if let Some(d) = peers.docker {
        note.push(format!("{} faster than docker run p50", ratio(d.p50, s.p50)));
    }
    report.add(
        &format!("{figure} p50"),
        ms(s.p50),
        &format!("≤ {}", ms(RUN_P50_TARGET_MS)),
        Verdict::of(s.p50 <= RUN_P50_TARGET_MS),
        note.join("; "),
    );
    report.add(
        &format!("{figure} p99"),
        ms(s.p99),
        &format!("≤ {}", ms(RUN_P99_TARGET_MS)),
        Verdict::of(s.p99 <= RUN_P99_TARGET_MS),
        format!("p90 {}", ms(s.p90)),
    );
    report.info(&format!("{figure} distribution"), s.line(), breakdown(t, extra));
}

/// Rows for an exec-latency loop.
pub fn report_exec(report: &mut Report, figure: &str, t: &api::Timed, peers: &PeerFigures) {
    let Some(s) = t.client.summary() else {
        report.skipped(figure, "no iteration within the time budget".into());
        return;
    };
    let vs_fork = peers.fork.map(|f| format!("{} fork+exec p50; ", ratio(s.p50, f.p50))).unwrap_or_default();
    report.add(
        &format!("{figure} p50"),
        ms(s.p50),
        &format!("≤ {}", ms(EXEC_P50_TARGET_MS)),
        Verdict::of(s.p50 <= EXEC_P50_TARGET_MS),
        format!("{vs_fork}p99 {}", ms(s.p99)),
    );
    report.info(&format!("{figure} distribution"), s.line(), breakdown(t, ""));
}

/// How much of the client's latency the command itself took in the sandbox.
fn breakdown(t: &api::Timed, extra: &str) -> String {
    let inner = t.in_sandbox.summary();
    let mut parts = Vec::new();
    if let (Some(i), Some(c)) = (inner, t.client.summary()) {
        parts.push(format!(
            "command in sandbox (server-measured) p50 {} → rest of the request p50 ≈ {}",
            ms(i.p50),
            ms((c.p50 - i.p50).max(0.0))
        ));
    }
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    parts.join("; ")
}
