//! The benchmark's phases, run one after another so they do not disturb
//! each other, and the plan that bounds them.

mod cold;
mod dashboard;
mod egress;
mod idle;
mod logs;
mod monitor;
mod peers;
mod tenancy;
mod throughput;
mod warm;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::api::Bounds;
use crate::cpu;
use crate::host;
use crate::report::Report;
use crate::server::ServerSpec;
use crate::stats::Summary;

/// Anchors from the product brief ("Numbers to beat").
pub const SEED_WARM_POOL_MS: f64 = 195.0;
pub const DOCKER_POOL_ANCHOR_MS: f64 = 250.0;
pub const DOCKER_ONESHOT_ANCHOR_MS: f64 = 350.0;
pub const E2B_CREATE_ANCHOR_MS: f64 = 150.0;
pub const DAYTONA_CREATE_ANCHOR_MS: f64 = 90.0;

/// Targets of the sandbox issues.
pub const RUN_P50_TARGET_MS: f64 = 3.0;
pub const RUN_P99_TARGET_MS: f64 = 10.0;
pub const EXEC_P50_TARGET_MS: f64 = 1.5;
pub const THROUGHPUT_TARGET: f64 = 300.0;
pub const PER_SANDBOX_TARGET_MIB: f64 = 2.0;
pub const IDLE_RSS_TARGET_MIB: f64 = 40.0;
/// Most that authentication, quota checks and metering may add to a run's p50.
pub const TENANCY_OVERHEAD_TARGET_MS: f64 = 1.0;

/// First host uid of each phase's sandboxes: far above the ranges the
/// integration tests use (1e9 … 2.01e9), so their leak checks never see ours.
const ID_BASE: u64 = 3_000_000_000;
const ID_STEP: u64 = 20_000_000;

/// The phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Peers,
    Warm,
    Cold,
    Throughput,
    Idle,
    Tenancy,
    Logs,
    Monitor,
    Egress,
    Dashboard,
}

/// How much each phase does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub phases: Vec<Phase>,
    pub docker_enabled: bool,
    /// Longest wait for a quiet host before each phase.
    pub wait_quiet: Duration,
    pub fork: Bounds,
    pub bwrap: Bounds,
    pub docker: Bounds,
    pub healthz: Bounds,
    pub fsync: Bounds,
    pub run: Bounds,
    pub paced: Bounds,
    pub exec: Bounds,
    pub cold: Bounds,
    pub tp_workers: usize,
    pub tp_pool: usize,
    pub tp_parallel_creates: usize,
    pub tp_warmup: Duration,
    pub tp_window: Duration,
    pub idle_n: usize,
    pub idle_workers: usize,
    pub idle_budget: Duration,
    pub idle_run: Bounds,
    pub idle_exec: Bounds,
}

const fn b(n: usize, warmup: usize, secs: u64) -> Bounds {
    Bounds { n, warmup, budget: Duration::from_secs(secs) }
}

impl Plan {
    pub fn full() -> Self {
        Self {
            quick: false,
            phases: vec![
                Phase::Peers,
                Phase::Warm,
                Phase::Cold,
                Phase::Throughput,
                Phase::Idle,
                Phase::Tenancy,
                Phase::Logs,
                Phase::Monitor,
                Phase::Egress,
                Phase::Dashboard,
            ],
            docker_enabled: true,
            wait_quiet: Duration::from_secs(120),
            fork: b(2000, 50, 60),
            bwrap: b(1000, 50, 60),
            docker: b(30, 2, 240),
            healthz: b(2000, 100, 30),
            fsync: b(200, 5, 30),
            run: b(2000, 100, 120),
            paced: b(200, 0, 60),
            exec: b(2000, 100, 60),
            cold: b(500, 20, 120),
            tp_workers: 8,
            tp_pool: 16,
            tp_parallel_creates: 2,
            tp_warmup: Duration::from_secs(1),
            tp_window: Duration::from_secs(5),
            idle_n: 1000,
            idle_workers: 4,
            idle_budget: Duration::from_secs(600),
            idle_run: b(1000, 50, 120),
            idle_exec: b(1000, 50, 60),
        }
    }

    pub fn quick() -> Self {
        Self {
            quick: true,
            fork: b(300, 10, 20),
            bwrap: b(200, 10, 20),
            docker: b(5, 1, 60),
            healthz: b(300, 20, 10),
            fsync: b(50, 2, 10),
            run: b(300, 30, 30),
            paced: b(50, 0, 20),
            exec: b(300, 30, 20),
            cold: b(100, 10, 30),
            tp_window: Duration::from_secs(2),
            idle_n: 100,
            idle_budget: Duration::from_secs(120),
            idle_run: b(200, 20, 30),
            idle_exec: b(200, 20, 20),
            ..Self::full()
        }
    }
}

/// Peer figures, for the ratios of later phases.
#[derive(Debug, Default, Clone)]
pub struct PeerFigures {
    pub fork: Option<Summary>,
    pub bwrap: Option<Summary>,
    pub docker: Option<Summary>,
}

/// The spec of the `k`-th server of the run (its own uid range).
pub fn spec(k: u64, pool_size: usize, parallel_creates: usize) -> ServerSpec {
    ServerSpec {
        pool_size,
        parallel_creates,
        max_sandboxes: 256,
        small_limits: None,
        id_base: ID_BASE + k * ID_STEP,
        auth: true,
        extra_toml: String::new(),
    }
}

/// Most CPU the rest of the host may use for it to count as quiet (cores).
const QUIET_CORES: f64 = 0.15;

/// Prints a phase's title after waiting (up to `plan.wait_quiet`) for the
/// host to be quiet: no compiler or test runner, under [`QUIET_CORES`] busy.
/// On a shared machine this keeps other work out of the figures where it can.
fn section(title: &str, plan: &Plan) {
    let start = Instant::now();
    let (busy, cores) = loop {
        let busy = host::busy_neighbours();
        let cores = cpu::host_busy_cores(Duration::from_secs(1));
        if (busy.is_empty() && cores <= QUIET_CORES) || start.elapsed() >= plan.wait_quiet {
            break (busy, cores);
        }
    };
    let waited = start.elapsed().as_secs_f64();
    let procs = if busy.is_empty() { "none".to_string() } else { busy.join(", ") };
    let state = if busy.is_empty() && cores <= QUIET_CORES { "quiet" } else { "BUSY: figures are disturbed" };
    println!(
        "\n== {title}\n   host {state}: {cores:.2} cores busy before start, compilers/test runners: {procs} \
         (waited {waited:.0} s)"
    );
}

/// Says whether other work showed up while a phase ran.
fn phase_end() {
    let busy = host::busy_neighbours();
    if !busy.is_empty() {
        println!("   note: running on the host at the end of this phase: {}", busy.join(", "));
    }
}

/// Runs every phase in order; returns how many failed.
pub async fn run_all(bin: PathBuf, plan: Plan) -> Result<usize> {
    let started = Instant::now();
    println!("SuperServer benchmark{}", if plan.quick { " (--quick)" } else { "" });
    println!("machine: {}", host::machine());
    println!("server:  {}", bin.display());
    let mut report = Report::default();
    let mut failed = Vec::new();

    let on = |p: Phase| plan.phases.contains(&p);

    let mut peers = PeerFigures::default();
    if on(Phase::Peers) {
        section("peers: fork+exec, bubblewrap, Docker (no server running)", &plan);
        peers = peers::run(&plan, &mut report);
        phase_end();
    }
    if on(Phase::Warm) {
        section("warm pool (default pool size): idle footprint, run and exec latency", &plan);
        if let Err(e) = warm::run(&bin, &plan, &peers, &mut report).await {
            failed.push(format!("warm-pool phase: {e:#}"));
        }
        phase_end();
    }
    if on(Phase::Cold) {
        section("cold path (pool size 0): create + run + destroy on the request path", &plan);
        if let Err(e) = cold::run(&bin, &plan, &peers, &mut report).await {
            failed.push(format!("cold phase: {e:#}"));
        }
        phase_end();
    }
    if on(Phase::Throughput) {
        section(
            &format!(
                "throughput: {} concurrent clients, pool size {}, parallel_creates {}",
                plan.tp_workers, plan.tp_pool, plan.tp_parallel_creates
            ),
            &plan,
        );
        if let Err(e) = throughput::run(&bin, &plan, &mut report).await {
            failed.push(format!("throughput phase: {e:#}"));
        }
        phase_end();
    }
    if on(Phase::Idle) {
        section(&format!("{} idle persistent sandboxes", plan.idle_n), &plan);
        if let Err(e) = idle::run(&bin, &plan, &mut report).await {
            failed.push(format!("idle-sandboxes phase: {e:#}"));
        }
        phase_end();
    }

    if on(Phase::Tenancy) {
        section("authentication, quotas and metering: run latency with and without them", &plan);
        if let Err(e) = tenancy::run(&bin, &plan, &mut report).await {
            failed.push(format!("tenancy phase: {e:#}"));
        }
        phase_end();
    }
    if on(Phase::Monitor) {
        section("monitoring: 50 containers, discovery and metrics at their defaults, against docker stats", &plan);
        if let Err(e) = monitor::run(&bin, &plan, &mut report).await {
            failed.push(format!("monitor phase: {e:#}"));
        }
        phase_end();
    }

    if on(Phase::Logs) {
        section("log ingestion: level detection, template mining, SQLite + FTS5", &plan);
        if let Err(e) = logs::run(plan.quick, &mut report).await {
            failed.push(format!("logs phase: {e:#}"));
        }
        phase_end();
    }

    if on(Phase::Egress) {
        section("governed egress: create with a policy, proxy latency and throughput against direct", &plan);
        if let Err(e) = egress::run(&bin, &plan, &mut report).await {
            failed.push(format!("egress phase: {e:#}"));
        }
        phase_end();
    }

    if on(Phase::Dashboard) {
        section(
            "dashboard: every page with 1,000 runs, 50 services and 10,000 egress events; the API with 50 live viewers",
            &plan,
        );
        if let Err(e) = dashboard::run(&bin, &plan, &mut report).await {
            failed.push(format!("dashboard phase: {e:#}"));
        }
        phase_end();
    }

    println!("\n== Results  ({}, {:.0} s)", host::machine(), started.elapsed().as_secs_f64());
    println!("{}", report.markdown());
    let misses = report.misses();
    println!("{} targets met, {} missed.", report.passes(), misses.len());
    for m in &misses {
        println!("  MISS: {} = {} (target {})", m.figure, m.value, m.target);
    }
    for f in &failed {
        println!("  FAILED: {f}");
    }
    Ok(failed.len())
}
