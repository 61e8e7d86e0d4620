//! Landlock confinement of sandboxed commands: read and execute anywhere in
//! the sandbox's view, write only where the sandbox is meant to write.

use std::io;

use landlock::{path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI};

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

/// The confinement applied to each command of one sandbox.
#[derive(Debug, Clone)]
pub struct Confinement {
    writable: Vec<&'static str>,
    kernel_abi: i32,
}

impl Confinement {
    pub fn for_image(image: &Image) -> Self {
        let writable = match image {
            Image::Host => HOST_WRITABLE.to_vec(),
            // An overlay root is the sandbox's own copy: writable throughout.
            Image::Dir(_) => vec!["/"],
        };
        Self { writable, kernel_abi: crate::sys::landlock_abi() }
    }

    /// What the kernel enforces, for status reports.
    pub fn describe(&self) -> String {
        if self.kernel_abi < 1 {
            "unavailable (kernel without landlock)".into()
        } else {
            format!("enforced (kernel ABI {}, rights of ABI {})", self.kernel_abi, self.kernel_abi.min(5))
        }
    }

    /// Restricts the calling process (run in the forked child before exec).
    pub fn apply(&self) -> io::Result<()> {
        if self.kernel_abi < 1 {
            return Ok(());
        }
        let status = Ruleset::default()
            .handle_access(AccessFs::from_all(TARGET_ABI))
            .and_then(|r| r.create())
            .and_then(|r| r.add_rules(path_beneath_rules(["/"], AccessFs::from_read(TARGET_ABI))))
            .and_then(|r| r.add_rules(path_beneath_rules(&self.writable, AccessFs::from_all(TARGET_ABI))))
            .and_then(|r| r.restrict_self())
            .map_err(|e| io::Error::other(e.to_string()))?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(io::Error::other("landlock ruleset not enforced"));
        }
        Ok(())
    }
}
