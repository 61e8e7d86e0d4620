//! What a sandbox is made of: its image, limits and identity.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use superserver_wire::EffectiveLimits;

use crate::error::{Result, RuntimeError};

/// Uid (and gid) of the unprivileged sandbox user, inside the sandbox.
pub const SANDBOX_UID: u32 = 1000;
/// Number of ids mapped into each sandbox's user namespace.
pub const IDS_PER_SANDBOX: u32 = 65_536;
/// The working directory and home of sandboxed commands.
pub const WORKSPACE: &str = "/workspace";

/// The root filesystem of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Image {
    /// A read-only view of the host's system directories.
    Host,
    /// A root filesystem directory, shared read-only, with a private overlay.
    Dir(PathBuf),
}

impl Image {
    /// Parses `host` or `dir:/absolute/path`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s == "host" {
            return Ok(Self::Host);
        }
        if let Some(path) = s.strip_prefix("dir:") {
            let p = PathBuf::from(path);
            if !p.is_absolute() {
                return Err(RuntimeError::InvalidImage(format!("{s}: the directory must be an absolute path")));
            }
            if p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(RuntimeError::InvalidImage(format!("{s}: the path may not contain `..`")));
            }
            if !p.is_dir() {
                return Err(RuntimeError::InvalidImage(format!("{s}: no such directory on the server")));
            }
            if let Some(blocked) = not_world_traversable(&p) {
                return Err(RuntimeError::InvalidImage(format!(
                    "{s}: {} is not readable by others; sandboxes see images as an unprivileged user, \
                     so the directory needs o+rx and each parent o+x",
                    blocked.display()
                )));
            }
            if p == std::path::Path::new("/") {
                return Err(RuntimeError::InvalidImage("dir:/ would expose the whole host; use `host`".into()));
            }
            return Ok(Self::Dir(p));
        }
        Err(RuntimeError::InvalidImage(format!("unknown image `{s}`: use `host` or `dir:/path/to/rootfs`")))
    }

    pub fn name(&self) -> String {
        match self {
            Self::Host => "host".into(),
            Self::Dir(p) => format!("dir:{}", p.display()),
        }
    }
}

/// Everything the zygote and the init need to build one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupSpec {
    pub id: String,
    pub image: Image,
    pub limits: EffectiveLimits,
    pub hostname: String,
    /// Empty host directory the init mounts the sandbox's root on, inside its
    /// own mount namespace (so nothing of it is visible on the host).
    pub root_mount: PathBuf,
    /// The prepared `/etc` of `host` images (see [`crate::etc`]).
    pub etc_dir: PathBuf,
    /// A request waits for this sandbox: build it at normal priority.
    pub urgent: bool,
    /// Host uid (and gid) that uid 0 inside maps to.
    pub host_id_base: u32,
    /// `cgroup.procs` files the init's pid is written to.
    pub cgroup_procs: Vec<PathBuf>,
    /// Governed sandboxes are cloned into a namespace the server prepared.
    pub network: crate::network::Network,
}

/// The first of `dir` and its ancestors that an unprivileged user cannot
/// traverse (or, for `dir` itself, read).
fn not_world_traversable(dir: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    for (i, p) in dir.ancestors().enumerate() {
        let Ok(meta) = std::fs::metadata(p) else { return Some(p.to_path_buf()) };
        let need = if i == 0 { 0o005 } else { 0o001 };
        if meta.permissions().mode() & need != need {
            return Some(p.to_path_buf());
        }
    }
    None
}
