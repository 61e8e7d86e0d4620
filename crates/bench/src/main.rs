//! `superserver-bench`: measures SuperServer's sandboxes against bubblewrap,
//! plain fork+exec and Docker on this host, in one run, and prints every
//! figure with its target and the ratios between them.
//!
//! It starts real `superserver serve` processes (one per phase, each with its
//! own data directory and a free loopback port) and talks to them only over
//! 127.0.0.1. Every loop is bounded in count and in time. Needs root, like
//! the server.

mod api;
mod cpu;
mod host;
mod peers;
mod phases;
mod report;
mod server;
mod stats;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

/// Benchmark of SuperServer's sandboxes against bubblewrap and Docker.
#[derive(Parser, Debug)]
#[command(name = "superserver-bench", version)]
struct Args {
    /// Short smoke run: few iterations, 100 idle sandboxes instead of 1,000.
    #[arg(long)]
    quick: bool,
    /// The `superserver` binary to benchmark (default: next to this one).
    #[arg(long, env = "SUPERSERVER_BIN")]
    server_bin: Option<PathBuf>,
    /// Do not measure Docker even if its engine answers.
    #[arg(long)]
    no_docker: bool,
    /// How many idle persistent sandboxes to hold (default 1000, 100 with --quick).
    #[arg(long)]
    idle_sandboxes: Option<usize>,
    /// Seconds to wait, before each phase, for the host to be quiet (no
    /// compiler or test runner, little CPU in use); 0 to start at once.
    #[arg(long, default_value_t = 120)]
    wait_quiet: u64,
    /// Run only these phases (repeatable); ratios to peers need `peers`.
    #[arg(long, value_enum)]
    only: Vec<phases::Phase>,
}

fn main() {
    let args = Args::parse();
    let code = match run(args) {
        Ok(0) => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

/// Runs every phase; returns how many phases failed.
fn run(args: Args) -> Result<usize> {
    let bin = match args.server_bin {
        Some(b) => b,
        None => std::env::current_exe().context("cannot locate this executable")?.with_file_name("superserver"),
    };
    if !bin.is_file() {
        anyhow::bail!(
            "no server binary at {}: build it with `cargo build --release -p superserver` or pass --server-bin",
            bin.display()
        );
    }
    let mut plan = if args.quick { phases::Plan::quick() } else { phases::Plan::full() };
    if let Some(n) = args.idle_sandboxes {
        plan.idle_n = n;
    }
    plan.docker_enabled = !args.no_docker;
    plan.wait_quiet = std::time::Duration::from_secs(args.wait_quiet);
    if !args.only.is_empty() {
        plan.phases = args.only;
    }
    // One thread drives the clients: the server gets the rest of the machine.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(phases::run_all(bin, plan))
}
