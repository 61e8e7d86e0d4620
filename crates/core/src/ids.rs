//! Identifiers.

use std::io;
use std::path::Path;

/// A new random id such as `sb_5f0c…` (80 random bits).
pub fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 10];
    getrandom::getrandom(&mut b).expect("the kernel's random source is available");
    format!("{prefix}_{}", hex::encode(b))
}

/// The id of this data directory's instance, created on first use. It names
/// the instance's cgroups, so a restarted server finds its own leftovers and
/// never touches another instance's sandboxes.
pub fn instance_id(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(s) if valid(s.trim()) => return Ok(s.trim().to_string()),
        Ok(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} is malformed", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = new_id("i");
    let tmp = data_dir.join("instance-id.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

fn valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = new_id("sb");
        assert!(a.starts_with("sb_") && a.len() == 23, "{a}");
        assert_ne!(a, new_id("sb"));
    }

    #[test]
    fn instance_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = instance_id(dir.path()).unwrap();
        assert_eq!(a, instance_id(dir.path()).unwrap());
        std::fs::write(dir.path().join("instance-id"), "../../etc").unwrap();
        assert!(instance_id(dir.path()).is_err());
    }
}
