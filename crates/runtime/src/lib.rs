//! SuperServer's sandbox runtime: native Linux sandboxes built from
//! namespaces, cgroups, seccomp and landlock, a zygote that forks them, the
//! init that runs inside each, and the warm pool.
//!
//! All raw syscalls and `unsafe` code live in [`sys`].

pub mod cgroup;
pub mod error;
pub mod etc;
mod gate;
mod init;
pub mod network;
pub mod pool;
pub mod proto;
pub mod ratelimit;
mod runtime;
pub mod sandbox;
pub mod seccomp;
pub mod spec;
pub mod sys;
pub mod zygote;

pub use error::{Result, RuntimeError};
pub use network::{GovernedNet, Network};
pub use pool::{Lease, Pool, PoolConfig};
pub use runtime::{Runtime, RuntimeConfig, RuntimeStats};
pub use sandbox::{ExecOutput, ExecParams, OutputChunk, PathContent, Sandbox};
pub use spec::{Image, SANDBOX_UID, WORKSPACE};
