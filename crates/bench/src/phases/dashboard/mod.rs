//! The dashboard with a full store: every page's server time with 1,000
//! runs, 50 services and 10,000 egress events, and the warm-run latency of
//! the API with and without 50 viewers following the dashboard's live
//! streams.
//!
//! Everything is seeded through the real paths: the services are 50
//! containers of the test-service image that discovery finds (removed when
//! the phase ends, even on error); the runs are `POST /v1/run`s; the egress
//! events are a governed sandbox's own connections and DNS queries through
//! the egress proxy, to a server of this process on 127.0.0.1 named for the
//! sandbox through `[egress.hosts]`.

mod pages;
mod viewers;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use superserver_client::{Client, EgressQuery};
use superserver_wire::{
    CreateSandboxRequest, EgressLogLevel, EgressRule, ExecRequest, NetworkMode, NetworkSpec, RunRequest, SandboxInfo,
};

use super::monitor::Containers;
use super::warm::{DEFAULT_PARALLEL, DEFAULT_POOL};
use super::{spec, Plan, RUN_P50_TARGET_MS, RUN_P99_TARGET_MS};
use crate::api::{self, Bounds, Timed};
use crate::report::{Report, Verdict};
use crate::server::{Server, ServerSpec};
use crate::stats::{ms, ratio, Summary};
use pages::Session;
use viewers::Viewers;

const LABEL: &str = "superserver.bench.dashboard=1";
const PREFIX: &str = "ss-bench-dash";
/// The issue's store: 1,000 runs, 50 services, 10,000 egress events.
const SERVICES: usize = 50;
const RUNS: usize = 1000;
const EGRESS_EVENTS: usize = 10_000;
/// Live streams open while the API is measured.
const VIEWERS: usize = 50;
/// The issue's budget for a page, server time.
pub const PAGE_TARGET_MS: f64 = 100.0;
/// How much the viewers may add to the warm run's p50: 10 %, or 0.3 ms
/// where that is more (run-to-run noise on this host).
const SLOWER_SHARE: f64 = 0.10;
const SLOWER_FLOOR_MS: f64 = 0.3;
/// The name the governed sandbox reaches the benchmark's upstream by.
const HOST: &str = "dash.example.test";
/// An address no rule allows (TEST-NET-1): connections to it are denied.
const DENIED: &str = "192.0.2.1";

/// Makes `N` egress events in a governed sandbox, one per step: every tenth
/// a DNS query for the allowed name, the rest a small HTTP request on a new
/// connection, every ninth of them to an address no rule allows (denied),
/// the others to the allowed name. Prints what it did.
const PRODUCER: &str = r#"
import socket, sys
n, port, host, denied = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
addr = socket.gethostbyname(host)
done = {"dns": 0, "allowed": 0, "denied": 0, "failed": 0}
for i in range(n - 1):
    k = i % 10
    try:
        if k == 0:
            socket.gethostbyname(host)
            done["dns"] += 1
            continue
        s = socket.create_connection((denied if k == 1 else addr, port), timeout=5)
        s.sendall(b"GET /item/%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, host.encode()))
        got = b""
        while not got.endswith(b"ok"):
            c = s.recv(4096)
            if not c:
                break
            got += c
        s.close()
        done["allowed" if got.endswith(b"ok") else "denied"] += 1
    except OSError:
        done["failed"] += 1
print(" ".join("%s=%d" % kv for kv in done.items()))
"#;

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let _containers = Containers::start(LABEL, PREFIX, SERVICES, &["--no-healthcheck", "-e", "LOG_EVERY_MS=1000"])?;
    let port = super::egress::upstream().await?;
    let spec = ServerSpec {
        extra_toml: format!("[egress.hosts]\n\"{HOST}\" = \"127.0.0.1\"\n"),
        ..spec(7, DEFAULT_POOL, DEFAULT_PARALLEL)
    };
    let server = Server::start(bin, &spec).await?;
    let services = wait_for_services(&server.client).await?;

    let t = Instant::now();
    let one_shot = seed_runs(&server.client, RUNS).await?;
    let runs_took = t.elapsed();
    let t = Instant::now();
    let (governed, produced) = seed_egress(&server.client, port, EGRESS_EVENTS).await?;
    let (events, newest) = stored_egress(&server.client, EGRESS_EVENTS).await?;
    let egress_took = t.elapsed();
    let status = server.client.status().await?;
    report.info(
        "dashboard: the store",
        format!("{} runs, {services} services, {events} egress events", status.executions_total),
        format!(
            "{RUNS} `POST /v1/run` of `echo` in {:.1} s (+1 exec for the egress); {SERVICES} test-service containers \
             found by discovery; egress made in a governed sandbox in {:.1} s ({produced})",
            runs_took.as_secs_f64(),
            egress_took.as_secs_f64()
        ),
    );
    if events < EGRESS_EVENTS || services < SERVICES {
        bail!("the store holds {events} egress events and {services} services, fewer than the phase needs");
    }

    let session = Session::login(&server.url, &server.admin_key()).await?;
    let list = page_list(&one_shot, &governed);
    let n = if plan.quick { 10 } else { 30 };
    let figures = pages::measure(&session, &list, Bounds { n, warmup: 2, budget: Duration::from_secs(180) }).await?;
    for f in &figures {
        report_page(report, f);
    }

    let streams = stream_paths(newest);
    api_with_viewers(&server, &session, &streams, plan, report).await?;
    server.client.delete_sandbox(&governed.id).await.context("delete the governed sandbox")?;
    server.stop(report).await
}

/// Waits until discovery lists the phase's containers; returns how many
/// services it lists in all.
async fn wait_for_services(client: &Client) -> Result<usize> {
    let start = Instant::now();
    loop {
        let list = client.services().await.map(|l| l.services).unwrap_or_default();
        let ours = list.iter().filter(|s| s.id.starts_with(&format!("container:{PREFIX}"))).count();
        if ours >= SERVICES {
            return Ok(list.len());
        }
        if start.elapsed() > Duration::from_secs(120) {
            bail!("discovery listed {ours} of the {SERVICES} containers after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` runs of `echo dashboard run I`; returns the sandbox of the last one.
async fn seed_runs(client: &Client, n: usize) -> Result<String> {
    let mut last = String::new();
    for i in 0..n {
        let req = RunRequest {
            command: vec!["echo".into(), "dashboard".into(), "run".into(), i.to_string()],
            ..Default::default()
        };
        let r = client.run(&req).await.context("seeding runs: POST /v1/run")?;
        if r.exit_code != Some(0) {
            bail!("seeding runs: run {i} exited {:?} ({:?})", r.exit_code, r.error);
        }
        last = r.sandbox_id;
    }
    Ok(last)
}

/// A governed sandbox (its policy allows [`HOST`], logs everything) that
/// makes `n` egress events; returns it and what the producer reported.
async fn seed_egress(client: &Client, port: u16, n: usize) -> Result<(SandboxInfo, String)> {
    let network = NetworkSpec {
        mode: NetworkMode::Policy,
        allow: vec![EgressRule::Short(HOST.into())],
        log: Some(EgressLogLevel::Full),
        ..Default::default()
    };
    let req = CreateSandboxRequest { network: Some(network), ..Default::default() };
    let sb = client.create_sandbox(&req).await.context("create the governed sandbox")?;
    let command = vec![
        "python3".to_string(),
        "-c".into(),
        PRODUCER.into(),
        n.to_string(),
        port.to_string(),
        HOST.into(),
        DENIED.into(),
    ];
    let r = client.exec(&sb.id, &ExecRequest { command, timeout_ms: Some(600_000), ..Default::default() }).await?;
    if r.exit_code != Some(0) {
        bail!("the egress producer failed: exit {:?}, {}", r.exit_code, r.stderr);
    }
    Ok((sb, r.stdout.trim().to_string()))
}

/// Waits (up to 30 s) until at least `want` egress events are stored;
/// returns how many are and the newest id.
async fn stored_egress(client: &Client, want: usize) -> Result<(usize, i64)> {
    let start = Instant::now();
    loop {
        let (mut count, mut after) = (0, 0);
        loop {
            let q = EgressQuery { after: Some(after), limit: Some(10_000), ..Default::default() };
            let page = client.egress_events(&q).await?.events;
            let Some(last) = page.last() else { break };
            after = last.id;
            count += page.len();
        }
        if count >= want || start.elapsed() > Duration::from_secs(30) {
            return Ok((count, after));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every page an admin can open, one detail page of each kind.
fn page_list(one_shot: &str, governed: &SandboxInfo) -> Vec<(&'static str, String)> {
    vec![
        ("overview", "/".into()),
        ("services", "/services".into()),
        ("service detail", format!("/services/container:{PREFIX}0")),
        ("host metrics", "/services/host".into()),
        ("anomalies", "/anomalies".into()),
        ("sandboxes and run history", "/sandboxes".into()),
        ("every tenant's sandboxes and runs", "/sandboxes?all=true".into()),
        ("sandbox detail, one-shot run", format!("/sandboxes/{one_shot}")),
        ("sandbox detail, governed", format!("/sandboxes/{}", governed.id)),
        ("usage", "/usage".into()),
        ("egress and approvals", "/egress".into()),
        ("egress of one sandbox", format!("/egress?sandbox={}", governed.id)),
        ("alerts", "/alerts".into()),
        ("settings", "/settings".into()),
        ("login form", "/login".into()),
    ]
}

fn report_page(report: &mut Report, f: &pages::PageFigures) {
    let figure = format!("dashboard GET {} ({}) p99", f.path, f.name);
    let Some(total) = f.total.summary() else {
        report.skipped(&figure, "no iteration within the time budget".into());
        return;
    };
    let server = f.server.summary();
    let timing = match server {
        Some(s) => format!("server time (Server-Timing) p50 {} / p99 {}", ms(s.p50), ms(s.p99)),
        None => "no Server-Timing header".into(),
    };
    report.add(
        &figure,
        ms(total.p99),
        &format!("≤ {}", ms(PAGE_TARGET_MS)),
        Verdict::of(total.p99 <= PAGE_TARGET_MS),
        format!(
            "to last byte p50 {}, max {}; {timing}; {} KiB; n={}",
            ms(total.p50),
            ms(total.max),
            f.bytes / 1024,
            total.n
        ),
    );
}

/// The dashboard's live streams, spread as the pages open them: the
/// services stream (overview, services, a service, alerts), a service's
/// log tail (a different container each), and the egress page's two
/// (approvals; events after the newest shown).
fn stream_paths(newest_event: i64) -> Vec<String> {
    (0..VIEWERS)
        .map(|i| match i % 4 {
            0 => "/v1/services/stream".to_string(),
            1 => format!("/v1/logs?follow=true&service=container:{PREFIX}{}", i % SERVICES),
            2 => "/v1/approvals?follow=true".to_string(),
            _ => format!("/v1/egress/events?follow=true&after={newest_event}"),
        })
        .collect()
}

/// Warm `POST /v1/run` of `true` without and with the viewers, in
/// alternating rounds so drift of the host lands on both sides.
async fn api_with_viewers(
    server: &Server,
    session: &Session,
    streams: &[String],
    plan: &Plan,
    report: &mut Report,
) -> Result<()> {
    let (rounds, n) = if plan.quick { (1, 100) } else { (3, 200) };
    let b = Bounds { n, warmup: 20, budget: Duration::from_secs(60) };
    let (mut without, mut with) = (Timed::default(), Timed::default());
    let (mut bytes, mut messages, mut ended) = (0, 0, 0);
    for _ in 0..rounds {
        settle(server).await?;
        let t = api::run_latency(&server.client, b).await?;
        without.client.extend(&t.client);
        without.in_sandbox.extend(&t.in_sandbox);

        let viewers = Viewers::open(&server.url, &session.cookie, streams.to_vec()).await?;
        settle(server).await?;
        let (b0, m0) = viewers.received();
        let t = api::run_latency(&server.client, b).await?;
        let (b1, m1) = viewers.received();
        with.client.extend(&t.client);
        with.in_sandbox.extend(&t.in_sandbox);
        bytes += b1 - b0;
        messages += m1 - m0;
        ended += viewers.counts.ended.load(std::sync::atomic::Ordering::Relaxed);
        viewers.close();
    }
    let (Some(off), Some(on)) = (without.client.summary(), with.client.summary()) else {
        report.skipped("dashboard: warm run with 50 SSE viewers", "no iteration within the time budget".into());
        return Ok(());
    };
    let limit = (off.p50 * (1.0 + SLOWER_SHARE)).max(off.p50 + SLOWER_FLOOR_MS);
    report.add(
        &format!("dashboard: warm run p50 with {VIEWERS} SSE viewers, against without"),
        format!("{} ({} of {})", ms(on.p50), ratio(on.p50, off.p50), ms(off.p50)),
        &format!("≤ {} (+10 % or +0.3 ms)", ms(limit)),
        Verdict::of(on.p50 <= limit),
        format!(
            "`POST /v1/run true`, {rounds} alternating rounds of {n} per side; p99 {} with / {} without; the viewers \
             received {messages} messages ({} KiB) during the loops{}",
            ms(on.p99),
            ms(off.p99),
            bytes / 1024,
            if ended > 0 { format!("; {ended} streams ended early") } else { String::new() }
        ),
    );
    report_absolute(report, &on, &off);
    Ok(())
}

/// The runtime issue's warm-run targets, with the viewers open.
fn report_absolute(report: &mut Report, on: &Summary, off: &Summary) {
    report.add(
        &format!("dashboard: warm run p50 with {VIEWERS} SSE viewers"),
        ms(on.p50),
        &format!("≤ {}", ms(RUN_P50_TARGET_MS)),
        Verdict::of(on.p50 <= RUN_P50_TARGET_MS),
        format!("without viewers {} (the same server: 50 containers monitored, the seeded store)", ms(off.p50)),
    );
    report.add(
        &format!("dashboard: warm run p99 with {VIEWERS} SSE viewers"),
        ms(on.p99),
        &format!("≤ {}", ms(RUN_P99_TARGET_MS)),
        Verdict::of(on.p99 <= RUN_P99_TARGET_MS),
        format!("without viewers {}; {}", ms(off.p99), on.line()),
    );
}

/// Waits for a full warm pool, then a moment of quiet.
async fn settle(server: &Server) -> Result<()> {
    server.wait_pool_settled(Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_follow_every_kind_of_stream() {
        let paths = stream_paths(42);
        assert_eq!(paths.len(), VIEWERS);
        for kind in ["/v1/services/stream", "/v1/logs?follow=true", "/v1/approvals?follow=true"] {
            assert!(paths.iter().filter(|p| p.starts_with(kind)).count() >= 12, "{kind}: {paths:?}");
        }
        assert!(paths.iter().any(|p| p == "/v1/egress/events?follow=true&after=42"), "{paths:?}");
    }
}
