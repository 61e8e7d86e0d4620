//! Landlock confinement of sandboxed commands: read and execute anywhere in
//! the sandbox's view, write only where the sandbox is meant to write.

use std::io;

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, ABI,
};

use crate::spec::Image;

/// The highest Landlock ABI whose rights SuperServer asks for.
const TARGET_ABI: ABI = ABI::V5;

/// Writable paths of a `host` image sandbox (everything else is read-only).
const HOST_WRITABLE: &[&str] = &[
    "/workspace",
    "/tmp",
    "/dev/shm",
    "/dev/pts",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/random",
    "/dev/urandom",
];

/// The confinement applied to each command of one sandbox. The ruleset is
/// built once, in the init, after the root switch; each command's child only
/// enforces it on itself.
pub struct Confinement {
    ruleset: Option<RulesetCreated>,
    kernel_abi: i32,
}

impl Confinement {
    /// Builds the ruleset for `image` (paths as the sandbox sees them).
    pub fn for_image(image: &Image) -> io::Result<Self> {
        let writable = match image {
            Image::Host => HOST_WRITABLE.to_vec(),
            // An overlay root is the sandbox's own copy: writable throughout.
            Image::Dir(_) => vec!["/"],
        };
        let kernel_abi = crate::sys::landlock_abi();
        if kernel_abi < 1 {
            return Ok(Self { ruleset: None, kernel_abi });
        }
        let ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(TARGET_ABI))))
            .and_then(|r| r.add_rules(path_beneath_rules(&writable, AccessFs::from_all(TARGET_ABI))))
            .map_err(|e| io::Error::other(format!("landlock ruleset: {e}")))?;
        Ok(Self { ruleset: Some(ruleset), kernel_abi })
    }

    /// What the kernel enforces, for status reports.
    pub fn describe(&self) -> String {
        if self.kernel_abi < 1 {
            "unavailable (kernel without landlock)".into()
        } else {
            format!("enforced (kernel ABI {}, rights of ABI {})", self.kernel_abi, self.kernel_abi.min(5))
        }
    }

    /// Restricts the calling process (the forked child, before exec). Also
    /// sets `no_new_privs`.
    pub fn apply(&self) -> io::Result<()> {
        let Some(ruleset) = &self.ruleset else { return Ok(()) };
        let status = ruleset.try_clone()?.restrict_self().map_err(|e| io::Error::other(e.to_string()))?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(io::Error::other("landlock ruleset not enforced"));
        }
        Ok(())
    }
}
