//! Resource metrics of the host, its containers, processes and SuperServer's
//! own sandboxes, read straight from `/proc` and the cgroup files (no Docker
//! API per sample).
//!
//! Series are named `<service>/<metric>`: `host/cpu.percent`,
//! `container:web/memory.bytes`, `process:nginx:80/cpu.percent`,
//! `sandbox:sb_x/memory.bytes`. A [`Collector`] keeps the previous counter
//! readings so it can turn counters into rates.

mod cgroup;
mod collect;
pub mod parse;

pub use cgroup::CgroupPaths;
pub use collect::{Collector, Target, TargetKind};

/// One value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub series: String,
    pub value: f64,
}
