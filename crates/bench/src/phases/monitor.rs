//! Monitoring with 50 containers: the server's CPU (% of one core) and RSS
//! with discovery and metrics at their defaults, how long the first
//! discovery takes to list them, and the CPU one `docker stats --no-stream`
//! costs for the same containers (its CLI plus dockerd's delta).
//!
//! The containers run the test-service image (`superserver-testsvc:test`,
//! built by `scripts/bench` or the integration tests) and carry a label; they are removed when
//! the phase ends, even on error. The 24 h query latency is measured by
//! `scripts/bench-metrics-query.py`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{spec, Plan};
use crate::host;
use crate::report::{Report, Verdict};
use crate::server::Server;

const IMAGE: &str = "superserver-testsvc:test";
const LABEL: &str = "superserver.bench.monitor=1";
const CONTAINERS: usize = 50;
/// The budget for monitoring 50 containers, % of one core.
const CPU_TARGET_PERCENT: f64 = 2.0;
/// The budget for the server's memory while monitoring them, MiB.
const RSS_TARGET_MIB: f64 = 60.0;

/// Containers of the test-service image that carry one label; every one of
/// them is removed when this is dropped, even when the phase failed.
pub(super) struct Containers {
    label: &'static str,
}

impl Containers {
    /// Removes what an earlier run left with `label`, then starts `n`
    /// containers named `{prefix}{i}`; `args` go before the image.
    pub(super) fn start(label: &'static str, prefix: &str, n: usize, args: &[&str]) -> Result<Self> {
        let ok = Command::new("docker").args(["image", "inspect", IMAGE]).stdout(Stdio::null()).status();
        if !ok.is_ok_and(|s| s.success()) {
            bail!("image {IMAGE} absent: `scripts/bench` or the integration tests build it");
        }
        let guard = Self { label };
        guard.remove_all();
        for i in 0..n {
            let st = Command::new("docker")
                .args(["run", "-d", "--name", &format!("{prefix}{i}"), "--label", label])
                .args(args)
                .arg(IMAGE)
                .stdout(Stdio::null())
                .status()?;
            if !st.success() {
                bail!("docker run of container {prefix}{i} failed");
            }
        }
        Ok(guard)
    }

    fn remove_all(&self) {
        let filter = format!("label={}", self.label);
        let out = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
        if let Ok(out) = out {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).status();
            }
        }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// utime + stime of `pid` (or, with `children`, of its waited-for children), seconds.
fn cpu_s(pid: &str, children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<u64> = stat[stat.rfind(')')? + 1..].split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    let (a, b) = if children { (13, 14) } else { (11, 12) };
    Some((f.get(a)? + f.get(b)?) as f64 / 100.0)
}

fn dockerd_pid() -> Option<String> {
    let out = Command::new("pidof").arg("dockerd").output().ok()?;
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().map(String::from)
}

pub async fn run(bin: &Path, plan: &Plan, report: &mut Report) -> Result<()> {
    let _containers = Containers::start(LABEL, "ss-bench-mon", CONTAINERS, &[])?;
    // A listening socket of this process: the whole host has been looked
    // at (processes and their sockets too) once it is a service.
    let own = std::net::TcpListener::bind("127.0.0.1:0")?;
    let own_port = format!(":{}", own.local_addr()?.port());
    let started = Instant::now();
    let server = Server::start(bin, &spec(6, 0, 1)).await?;
    let mut containers_at = None;
    let whole_host = loop {
        let services = server.client.services().await.map(|l| l.services).unwrap_or_default();
        let n = services.iter().filter(|s| s.id.starts_with("container:ss-bench-mon")).count();
        if n >= CONTAINERS && containers_at.is_none() {
            containers_at = Some(started.elapsed());
        }
        let me = services.iter().any(|s| s.id.starts_with("process:") && s.id.ends_with(&own_port));
        if let (Some(_), true) = (containers_at, me) {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("discovery listed {n} of {CONTAINERS} containers (and this process: {me}) after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(own);
    let discovered = containers_at.unwrap_or(whole_host);
    report.add(
        "monitor: first look at the whole host (processes and sockets too)",
        format!("{:.2} s", whole_host.as_secs_f64()),
        "≤ 1 s",
        Verdict::of(whole_host <= Duration::from_secs(1)),
        "from starting the server until a listening process of the benchmark is a service".into(),
    );
    report.add(
        "monitor: first discovery of 50 containers",
        format!("{:.2} s", discovered.as_secs_f64()),
        "≤ 1 s",
        Verdict::of(discovered <= Duration::from_secs(1)),
        "from starting the server until /v1/services lists them all".into(),
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    let window = if plan.quick { Duration::from_secs(20) } else { Duration::from_secs(60) };
    let pid = server.pid().to_string();
    let a = cpu_s(&pid, false).unwrap_or(0.0);
    tokio::time::sleep(window).await;
    let b = cpu_s(&pid, false).unwrap_or(0.0);
    let cpu = 100.0 * (b - a) / window.as_secs_f64();
    report.add(
        "monitor: server CPU, 50 containers, defaults",
        format!("{cpu:.2} % of one core"),
        &format!("≤ {CPU_TARGET_PERCENT} %"),
        Verdict::of(cpu <= CPU_TARGET_PERCENT),
        format!("discovery + metrics every 10 s, {} s window, utime+stime", window.as_secs()),
    );
    let rss = host::status_kib(server.pid(), "VmRSS").unwrap_or(0);
    let rss_mib = rss as f64 / 1024.0;
    report.add(
        "monitor: server RSS, 50 containers",
        format!("{rss_mib:.1} MiB"),
        &format!("≤ {RSS_TARGET_MIB} MiB"),
        Verdict::of(rss_mib <= RSS_TARGET_MIB),
        String::new(),
    );

    let dockerd = dockerd_pid();
    let d0 = dockerd.as_deref().and_then(|p| cpu_s(p, false));
    let c0 = cpu_s("self", true).unwrap_or(0.0);
    let t0 = Instant::now();
    let st = Command::new("docker").args(["stats", "--no-stream"]).stdout(Stdio::null()).status()?;
    let wall = t0.elapsed();
    let cli = cpu_s("self", true).unwrap_or(0.0) - c0;
    let daemon = match (d0, dockerd.as_deref().and_then(|p| cpu_s(p, false))) {
        (Some(x), Some(y)) => format!("{:.2} s", y - x),
        _ => "not measurable".into(),
    };
    let per_round = (b - a) / (window.as_secs_f64() / 10.0);
    report.info(
        "monitor: one `docker stats --no-stream`",
        format!("CLI {cli:.2} s + dockerd {daemon} CPU, {:.1} s wall", wall.as_secs_f64()),
        format!("exit {:?}; the server's whole 10 s round (discovery + metrics) costs {per_round:.3} s CPU", st.code()),
    );
    server.stop(report).await
}
