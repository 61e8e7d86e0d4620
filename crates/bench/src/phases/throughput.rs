//! Throughput: concurrent clients running `true` back to back.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::api;
use crate::cpu::CpuSnapshot;
use crate::report::{Report, Verdict};
use crate::server::Server;
use crate::stats::ms;

use super::warm::report_cpu;
use super::*;

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let server = Server::start(bin, &spec(2, plan.tp_pool, plan.tp_parallel_creates)).await?;
    server.wait_pool_settled(Duration::from_secs(60)).await?;
    let before = server.client.status().await?.pool;
    let cpu0 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let tp = api::throughput(&server.client, plan.tp_workers, plan.tp_warmup, plan.tp_window).await;
    let cpu1 = CpuSnapshot::take(server.pid(), server.zygote_pid());
    let after = server.client.status().await?.pool;
    server.stop(report).await?;
    let rate = tp.per_second();
    let lat = tp.latencies.summary().map(|s| s.line()).unwrap_or_else(|| "none".into());
    let failures = match &tp.first_error {
        Some(e) => format!("; {} failed, first: {e}", tp.failed),
        None => String::new(),
    };
    report.add(
        &format!("throughput, {} clients", plan.tp_workers),
        format!("{rate:.0} runs/s"),
        &format!("≥ {THROUGHPUT_TARGET:.0}/s"),
        Verdict::of(rate >= THROUGHPUT_TARGET && tp.failed == 0),
        format!(
            "{} runs in {:.0} s after {:.0} s warm-up; pool size {}, parallel_creates {}{failures}",
            tp.ok,
            plan.tp_window.as_secs_f64(),
            plan.tp_warmup.as_secs_f64(),
            plan.tp_pool,
            plan.tp_parallel_creates
        ),
    );
    report.info(
        "throughput: latency under load",
        lat,
        format!(
            "pool hits {}, misses {} over warm-up + window; server-side create mean {}",
            after.hits - before.hits,
            after.misses - before.misses,
            ms(after.create_ms_mean)
        ),
    );
    report_cpu(report, "CPU per run under load", &cpu0.per_op(&cpu1, tp.all), tp.all);
    Ok(())
}
