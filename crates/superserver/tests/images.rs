//! `dir:` images: a root filesystem directory shared read-only, with a
//! private writable overlay per sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{argv, Server};
use superserver_wire::{CreateSandboxRequest, ExecRequest, RunAs, RunRequest};

/// A minimal root filesystem: a few host programs with the libraries `ldd`
/// says they need.
fn build_rootfs(root: &Path) {
    for d in ["bin", "etc", "tmp", "workspace"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/image-release"), "test image\n").unwrap();
    for prog in ["sh", "cat", "ls", "id", "touch"] {
        let path = which(prog);
        copy_into(root, &path, &root.join("bin").join(prog));
        let ldd = Command::new("ldd").arg(&path).output().unwrap();
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let lib = line.split_whitespace().find(|w| w.starts_with('/')).map(PathBuf::from);
            if let Some(lib) = lib {
                let real = std::fs::canonicalize(&lib).unwrap();
                copy_into(root, &real, &root.join(lib.strip_prefix("/").unwrap()));
            }
        }
    }
}

fn which(prog: &str) -> PathBuf {
    let out = Command::new("sh").args(["-c", &format!("command -v {prog}")]).output().unwrap();
    let p = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    std::fs::canonicalize(p).unwrap()
}

fn copy_into(_root: &Path, src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    if !dst.exists() {
        std::fs::copy(src, dst).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dir_image_runs_with_a_private_overlay() {
    let s = Server::start().await;
    let img = tempfile::Builder::new().prefix("ss-rootfs-").tempdir().unwrap();
    build_rootfs(img.path());
    use std::os::unix::fs::PermissionsExt;
    // Sandboxes read images as an unprivileged user.
    std::fs::set_permissions(img.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let image = format!("dir:{}", img.path().display());
    let req = |cmd: &[&str]| RunRequest { command: argv(cmd), image: Some(image.clone()), ..Default::default() };
    let r = s.run_req(req(&["cat", "/etc/image-release"])).await;
    assert_eq!(r.stdout, "test image\n", "{r:?}");
    // The host's system is not visible: only the image.
    let r = s.run_req(req(&["ls", "/usr"])).await;
    assert_ne!(r.exit_code, Some(0), "the image has no /usr: {r:?}");
    // Writes land in the overlay, never in the image directory.
    // As the sandbox user, the image's root-owned files stay read-only.
    let r = s.run_req(req(&["sh", "-c", "echo changed > /etc/image-release"])).await;
    assert!(r.stderr.contains("Permission denied"), "{r:?}");
    let as_root = |cmd: &[&str]| RunRequest { user: Some(RunAs::Root), ..req(cmd) };
    let r = s.run_req(as_root(&["sh", "-c", "echo changed > /etc/image-release && cat /etc/image-release"])).await;
    assert_eq!(r.stdout, "changed\n", "{r:?}");
    assert_eq!(std::fs::read_to_string(img.path().join("etc/image-release")).unwrap(), "test image\n");
    let r = s.run_req(as_root(&["touch", "/new-file"])).await;
    assert_eq!(r.exit_code, Some(0), "{r:?}");
    assert!(!img.path().join("new-file").exists());
    // Persistent sandboxes on the image keep their own changes apart.
    let a = s
        .client
        .create_sandbox(&CreateSandboxRequest { image: Some(image.clone()), ..Default::default() })
        .await
        .unwrap();
    let b = s
        .client
        .create_sandbox(&CreateSandboxRequest { image: Some(image.clone()), ..Default::default() })
        .await
        .unwrap();
    let root_exec = ExecRequest {
        command: argv(&["sh", "-c", "echo a > /etc/mine"]),
        user: Some(RunAs::Root),
        ..Default::default()
    };
    assert_eq!(s.client.exec(&a.id, &root_exec).await.unwrap().exit_code, Some(0));
    assert_eq!(s.exec(&a.id, &["cat", "/etc/mine"]).await.stdout, "a\n");
    assert_ne!(s.exec(&b.id, &["cat", "/etc/mine"]).await.exit_code, Some(0));
    assert_eq!(a.image, image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_governed_dir_image_resolves_through_the_proxy() {
    let s = Server::start().await;
    let img = tempfile::Builder::new().prefix("ss-rootfs-").tempdir().unwrap();
    build_rootfs(img.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(img.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The image's own resolver setting is a symlink out of it: replaced in
    // the overlay, never followed.
    std::os::unix::fs::symlink("/etc/hostname", img.path().join("etc/resolv.conf")).unwrap();
    let network = superserver_wire::NetworkSpec { mode: superserver_wire::NetworkMode::Policy, ..Default::default() };
    let req = RunRequest {
        command: argv(&["cat", "/etc/resolv.conf"]),
        image: Some(format!("dir:{}", img.path().display())),
        network: Some(network),
        ..Default::default()
    };
    let r = s.run_req(req).await;
    assert!(r.stdout.starts_with("nameserver 10.0.2.3\n"), "{r:?}");
    let link = std::fs::read_link(img.path().join("etc/resolv.conf")).unwrap();
    assert_eq!(link, Path::new("/etc/hostname"), "the image itself is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dir_images_are_refused() {
    let s = Server::start().await;
    for (image, needle) in
        [("dir:/nonexistent/rootfs", "no such directory"), ("dir:/", "whole host"), ("dir:../x", "absolute")]
    {
        let err = s
            .client
            .run(&RunRequest { command: argv(&["true"]), image: Some(image.into()), ..Default::default() })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{image}: {err}");
    }
}
