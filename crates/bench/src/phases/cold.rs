//! Cold path: no warm pool, so every `POST /v1/run` creates, runs and
//! destroys its sandbox on the request path. Compared with bubblewrap.

use std::path::Path;

use anyhow::Result;

use crate::api;
use crate::cpu::CpuSnapshot;
use crate::report::{Report, Verdict};
use crate::server::Server;
use crate::stats::{ms, ratio};

use super::warm::report_cpu;
use super::*;

pub async fn run(bin: &Path, plan: &Plan, peers: &PeerFigures, report: &mut Report) -> Result<()> {
    let server = Server::start(bin, &spec(1, 0, 2)).await?;
    let cpu0 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let t = api::run_latency(&server.client, plan.cold).await?;
    // Destroys run in the background: let the last ones be reaped.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let cpu1 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let status = server.client.status().await?;
    server.stop(report).await?;
    let Some(s) = t.client.summary() else {
        report.skipped("POST /v1/run true, pool 0 (cold)", "no iteration within the time budget".into());
        return Ok(());
    };
    let pool = status.pool;
    let inner = t.in_sandbox.summary().map(|i| i.p50).unwrap_or(0.0);
    let anchors = format!(
        "{} faster than E2B ~{} and {} faster than Daytona {} creation anchors",
        ratio(E2B_CREATE_ANCHOR_MS, s.p50),
        ms(E2B_CREATE_ANCHOR_MS),
        ratio(DAYTONA_CREATE_ANCHOR_MS, s.p50),
        ms(DAYTONA_CREATE_ANCHOR_MS)
    );
    match peers.bwrap {
        Some(bw) => report.add(
            "POST /v1/run true, pool 0 (cold) p50",
            ms(s.p50),
            &format!("≤ bwrap p50 ({})", ms(bw.p50)),
            Verdict::of(s.p50 <= bw.p50),
            format!("{} bwrap p50; {anchors}", ratio(s.p50, bw.p50)),
        ),
        None => {
            report.info("POST /v1/run true, pool 0 (cold) p50", ms(s.p50), format!("bwrap not measured; {anchors}"))
        }
    }
    report.info(
        "POST /v1/run true, pool 0 (cold) distribution",
        s.line(),
        format!(
            "server-side sandbox create mean {} (max {}) over {} creates; command in sandbox p50 {}; misses {}",
            ms(pool.create_ms_mean),
            ms(pool.create_ms_max),
            pool.created,
            ms(inner),
            pool.misses
        ),
    );
    report_cpu(report, "CPU per cold run", &cpu0.per_op(&cpu1, t.client.len()), t.client.len());
    Ok(())
}
