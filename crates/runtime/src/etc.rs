//! The `/etc` of `host` image sandboxes, built once when the runtime starts
//! and bound read-only into every sandbox: generated identity files, plus
//! copies of the few host entries programs need. One bind per sandbox instead
//! of one per entry keeps sandbox creation and teardown cheap.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::spec::SANDBOX_UID;

/// Host `/etc` entries shown read-only in the `host` image: what the dynamic
/// loader, TLS clients, Debian's alternatives and common interpreters need.
/// Nothing with credentials (no shadow, no ssh, no sudoers).
const HOST_ETC: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "protocols",
    "services",
    "mime.types",
    "magic",
    "inputrc",
    "python3",
    "python3.11",
    "perl",
];

/// (Re)builds the template at `dir`. `resolver` is the name server of
/// governed sandboxes; without one the sandbox has no DNS.
pub fn build(dir: &Path, hostname: &str, resolver: Option<std::net::Ipv4Addr>) -> io::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for name in HOST_ETC {
        let src = Path::new("/etc").join(name);
        if fs::symlink_metadata(&src).is_ok() {
            copy_tree(&src, &dir.join(name))?;
        }
    }
    let files: [(&str, String); 6] = [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/bin/sh\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:/workspace:/bin/sh\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        ("group", format!("root:x:0:\ntty:x:5:\nsandbox:x:{SANDBOX_UID}:\nnogroup:x:65534:\n")),
        ("hosts", format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t{hostname}\n")),
        ("hostname", format!("{hostname}\n")),
        ("resolv.conf", resolv_conf(resolver)),
        ("nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n".to_string()),
    ];
    for (name, content) in files {
        let path = dir.join(name);
        fs::write(&path, content)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// `resolv.conf` naming `resolver`, or saying there is none.
pub fn resolv_conf(resolver: Option<std::net::Ipv4Addr>) -> String {
    match resolver {
        Some(ip) => format!("nameserver {ip}\noptions ndots:0\n"),
        None => "# no network in this sandbox\n".to_string(),
    }
}

/// Copies a file, a symlink (as a symlink) or a directory tree. Only what
/// everyone may read is copied: the template is world-readable.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        symlink(fs::read_link(src)?, dst)
    } else if ft.is_dir() {
        fs::create_dir(dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o755))?;
        for e in fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        Ok(())
    } else if ft.is_file() && meta.permissions().mode() & 0o004 != 0 {
        fs::copy(src, dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o644))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_has_identity_files_and_no_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        build(&etc, "sandbox", None).unwrap();
        let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
        assert!(passwd.contains("sandbox:x:1000:1000"));
        assert!(!etc.join("shadow").exists());
        assert!(fs::read_to_string(etc.join("hosts")).unwrap().contains("127.0.1.1\tsandbox"));
        // Rebuilding replaces the old template.
        build(&etc, "sandbox", None).unwrap();
    }
}
