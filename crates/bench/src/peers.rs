//! The peers measured on the same host in the same run: plain fork+exec,
//! bubblewrap, and Docker.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::stats::Samples;

/// The bubblewrap sandbox the brief compares with: every namespace unshared,
/// the host's `/usr` read-only, fresh `/proc`, `/dev` and `/tmp`.
pub const BWRAP_ARGS: &[&str] = &[
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "true",
];

pub const DOCKER_IMAGE: &str = "superserver-bench-true:latest";

/// Runs `f` `warmup` times unmeasured, then up to `n` times measured, stopping
/// early when `budget` is spent. Fails on the first failed iteration.
pub fn time_loop(n: usize, warmup: usize, budget: Duration, mut f: impl FnMut() -> Result<()>) -> Result<Samples> {
    for _ in 0..warmup {
        f()?;
    }
    let mut s = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        if start.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        f()?;
        s.push(t.elapsed());
    }
    Ok(s)
}

/// Spawns `program args…` with no I/O and waits; an error unless it exits 0.
pub fn run_quiet(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        bail!("{program} {} exited with {status}", args.join(" "));
    }
    Ok(())
}

/// Like [`run_quiet`] but killed after `timeout` (polls every millisecond, so
/// only for commands that take tens of milliseconds or more).
pub fn run_with_timeout(program: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() {
                bail!(
                    "`{program} {}` exited with {}: {}",
                    args.join(" "),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            return Ok(text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{program} {}` did not finish within {timeout:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `program` is on `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Why Docker cannot be measured, or `Ok` when its engine answers.
pub fn docker_ready() -> Result<String> {
    if on_path("docker").is_none() {
        bail!("no `docker` command on PATH");
    }
    let version = run_with_timeout("docker", &["info", "--format", "{{.ServerVersion}}"], Duration::from_secs(20))
        .map_err(|e| anyhow!("the Docker engine does not answer `docker info`: {e}"))?;
    Ok(version.trim().to_string())
}

/// Builds [`DOCKER_IMAGE`] from a local rootfs holding only a static busybox
/// as `/bin/busybox` and `/bin/true`: no registry is contacted.
pub fn docker_build_image() -> Result<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("no static busybox (install Debian's busybox-static)"))?;
    let dir = tempfile::Builder::new().prefix("ss-bench-rootfs-").tempdir()?;
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(busybox, bin.join("busybox")).context("copy busybox")?;
    std::os::unix::fs::symlink("busybox", bin.join("true")).context("symlink true")?;
    let tar = dir.path().join("rootfs.tar");
    let root = dir.path().to_string_lossy().into_owned();
    let tar_s = tar.to_string_lossy().into_owned();
    run_with_timeout("tar", &["-C", &root, "-cf", &tar_s, "bin"], Duration::from_secs(30))?;
    run_with_timeout("docker", &["import", &tar_s, DOCKER_IMAGE], Duration::from_secs(120))?;
    Ok(())
}

/// One `docker run --rm IMAGE /bin/true`.
pub fn docker_run_true() -> Result<()> {
    run_with_timeout("docker", &["run", "--rm", DOCKER_IMAGE, "/bin/true"], Duration::from_secs(60)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_loop_is_bounded_by_count_and_budget() {
        let mut calls = 0;
        let s = time_loop(5, 2, Duration::from_secs(10), || {
            calls += 1;
            Ok(())
        })
        .expect("no iteration fails");
        assert_eq!(s.len(), 5);
        assert_eq!(calls, 7);
        let s = time_loop(1_000_000, 0, Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .expect("no iteration fails");
        assert!(s.len() < 100, "stopped by the budget");
    }

    #[test]
    fn failures_propagate() {
        assert!(run_quiet("false", &[]).is_err());
        assert!(run_quiet("true", &[]).is_ok());
    }
}
