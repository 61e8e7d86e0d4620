//! File followers: every path matching a `[[logs.files]]` glob, polled on a
//! thread of its own, its cursor (inode, offset) stored with its lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use superserver_ops::logs::{FileCursor, FileTail};
use superserver_store::LogCursor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Raw, Source};
use crate::service::now_ms;

/// Bytes read from one file per poll.
const MAX_BYTES_PER_POLL: usize = 4 << 20;

pub(super) fn spawn(
    cfg: super::LogsConfig,
    mut saved: HashMap<String, LogCursor>,
    tx: mpsc::Sender<Raw>,
    cancel: CancellationToken,
) {
    if cfg.files.is_empty() {
        return;
    }
    let every = Duration::from_millis(cfg.file_poll_ms);
    let spawned = std::thread::Builder::new().name("log-files".into()).spawn(move || {
        let mut tails: HashMap<PathBuf, (String, FileTail)> = HashMap::new();
        while !cancel.is_cancelled() {
            for f in &cfg.files {
                for pattern in &f.paths {
                    for path in expand(Path::new(pattern)) {
                        tails.entry(path.clone()).or_insert_with(|| {
                            let cursor = saved
                                .remove(&source_name(&path))
                                .map(|c| FileCursor { inode: c.inode as u64, offset: c.offset as u64 });
                            (f.service.clone(), FileTail::new(path, cursor))
                        });
                    }
                }
            }
            for (service, tail) in tails.values_mut() {
                if !poll(service, tail, &tx) {
                    return;
                }
            }
            std::thread::sleep(every);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the log file follower");
    }
}

/// Sends what `tail` has; false once the pipeline is gone.
fn poll(service: &str, tail: &mut FileTail, tx: &mpsc::Sender<Raw>) -> bool {
    loop {
        let lines = match tail.poll(MAX_BYTES_PER_POLL) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(path = %tail.path().display(), error = %e, "cannot read a log file");
                return true;
            }
        };
        if lines.is_empty() {
            return true;
        }
        let cursor = tail.cursor().map(|c| LogCursor {
            source: source_name(tail.path()),
            inode: c.inode as i64,
            offset: c.offset as i64,
        });
        let at_ms = now_ms();
        let n = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            let raw = Raw {
                service: service.to_string(),
                tenant_id: None,
                stream: "file",
                at_ms,
                line,
                source: if i + 1 == n { cursor.clone().map(Source::Cursor) } else { None },
            };
            if tx.blocking_send(raw).is_err() {
                return false;
            }
        }
    }
}

fn source_name(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// The files matching `pattern` (`*`/`?` in its file name only), sorted.
pub(super) fn expand(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else { return Vec::new() };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?']) {
        return if pattern.is_file() { vec![pattern.to_path_buf()] } else { Vec::new() };
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| glob_match(name.as_bytes(), e.file_name().to_string_lossy().as_bytes()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// `*` any run of bytes, `?` one byte, the rest literal.
pub(super) fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.log", b"app.log"));
        assert!(!glob_match(b"*.log", b"app.log.1"));
        assert!(glob_match(b"app-?.log", b"app-1.log"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"a*b", b"acc"));
    }
}
