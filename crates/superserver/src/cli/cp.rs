//! `superserver sandbox cp`: one file between this machine and a sandbox.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use superserver_client::{Client, FileContent};
use tokio::io::AsyncReadExt;

use super::output::{human_bytes, stderr_is_terminal, Progress};
use super::parse::{parse_location, Location};

/// Transfers above this size are reported on stderr (when it is a terminal).
const REPORT_ABOVE: usize = 1 << 20;

/// Copies `src` to `dst`, exactly one of which is `ID:PATH`.
pub(crate) async fn copy(client: &Client, src: &str, dst: &str) -> anyhow::Result<()> {
    let from = parse_location(src).map_err(|e| anyhow::anyhow!("invalid source {src:?}: {e}"))?;
    let to = parse_location(dst).map_err(|e| anyhow::anyhow!("invalid destination {dst:?}: {e}"))?;
    match (from, to) {
        (Location::Remote { .. }, Location::Remote { .. }) => bail!(
            "both {src} and {dst} are in sandboxes; copy through a local file \
             (`sandbox cp ID:PATH FILE`, then `sandbox cp FILE ID2:PATH`)"
        ),
        (from @ (Location::Local(_) | Location::Stdio), Location::Remote { id, path }) => {
            upload(client, from, &id, &path).await
        }
        (Location::Remote { id, path }, to @ (Location::Local(_) | Location::Stdio)) => {
            download(client, &id, &path, to).await
        }
        _ => bail!(
            "neither {src} nor {dst} is in a sandbox; write the sandbox side as ID:PATH \
             (e.g. sb_123:/workspace/data.csv)"
        ),
    }
}

async fn upload(client: &Client, from: Location, id: &str, path: &str) -> anyhow::Result<()> {
    let local = match &from {
        Location::Local(local) => Some(local.as_path()),
        _ => None,
    };
    let path = match (path.ends_with('/'), local.and_then(Path::file_name)) {
        (false, _) => path.to_owned(),
        (true, Some(name)) => format!("{path}{}", name.to_string_lossy()),
        (true, None) => bail!(
            "{id}:{path} names a directory, and standard input has no file name; \
             give the full path (e.g. {id}:{path}input.txt)"
        ),
    };
    let (bytes, mode) = match local {
        Some(local) => {
            let shown = local.display();
            let meta = std::fs::metadata(local).with_context(|| format!("cannot read {shown}"))?;
            if meta.is_dir() {
                bail!("{shown} is a directory; `sandbox cp` copies single files (pack a directory with tar first)");
            }
            let bytes = std::fs::read(local).with_context(|| format!("cannot read {shown}"))?;
            (bytes, Some(meta.permissions().mode() & 0o777))
        }
        None => {
            let mut bytes = Vec::new();
            tokio::io::stdin().read_to_end(&mut bytes).await.context("cannot read standard input")?;
            (bytes, None)
        }
    };
    let size = bytes.len();
    let written = {
        let _progress = (size > REPORT_ABOVE)
            .then(|| Progress::start(&format!("uploading {} to {id}:{path}…", human_bytes(size as u64))));
        client.put_file(id, &path, bytes, mode).await.with_context(|| format!("cannot copy to {id}:{path}"))?
    };
    if size > REPORT_ABOVE && stderr_is_terminal() {
        eprintln!("copied {} to {id}:{}", human_bytes(written.size), written.path);
    }
    Ok(())
}

async fn download(client: &Client, id: &str, path: &str, to: Location) -> anyhow::Result<()> {
    let content = {
        let _progress = Progress::start(&format!("downloading {id}:{path}…"));
        client.get_file(id, path).await.with_context(|| format!("cannot copy from {id}:{path}"))?
    };
    let bytes = match content {
        FileContent::File(bytes) => bytes,
        FileContent::Dir(_) => bail!(
            "{id}:{path} is a directory; `sandbox cp` copies single files \
             (list it with `superserver sandbox files {id} {path}`)"
        ),
    };
    let shown = match to {
        Location::Local(local) => {
            let target = local_target(&local, path);
            std::fs::write(&target, &bytes).with_context(|| format!("cannot write {}", target.display()))?;
            target.display().to_string()
        }
        _ => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).and_then(|()| out.flush()).context("cannot write to standard output")?;
            "standard output".to_owned()
        }
    };
    if bytes.len() > REPORT_ABOVE && stderr_is_terminal() {
        eprintln!("copied {} from {id}:{path} to {shown}", human_bytes(bytes.len() as u64));
    }
    Ok(())
}

/// The local file to write: into `local` when it is a directory, keeping the
/// sandbox file's name.
fn local_target(local: &Path, remote: &str) -> PathBuf {
    let name = remote.trim_end_matches('/').rsplit('/').next().unwrap_or(remote);
    if local.is_dir() && !name.is_empty() {
        local.join(name)
    } else {
        local.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_into_a_directory_keeps_the_name() {
        let dir = std::env::temp_dir();
        assert_eq!(local_target(&dir, "/workspace/out/result.json"), dir.join("result.json"));
        assert_eq!(
            local_target(Path::new("/nonexistent/x.json"), "/workspace/result.json"),
            PathBuf::from("/nonexistent/x.json")
        );
    }

    #[tokio::test]
    async fn refuses_two_local_or_two_remote_sides() {
        let client = Client::new("http://127.0.0.1:9").expect("valid URL");
        let err = copy(&client, "a.txt", "b.txt").await.expect_err("both local");
        assert!(err.to_string().contains("neither"), "{err}");
        let err = copy(&client, "-", "b.txt").await.expect_err("both local");
        assert!(err.to_string().contains("neither"), "{err}");
        let err = copy(&client, "sb_1:/a", "sb_2:/b").await.expect_err("both remote");
        assert!(err.to_string().contains("both"), "{err}");
        let err = copy(&client, "sb_1:", "b").await.expect_err("empty path");
        assert!(err.to_string().contains("invalid source"), "{err}");
    }
}
