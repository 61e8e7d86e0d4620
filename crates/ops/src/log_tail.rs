//! The last lines a container wrote (stdout and stderr), through the
//! engine's logs API: the log excerpt of an alert.

use std::path::Path;

use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use crate::error::Result;

/// Longest line kept; longer lines are cut (at a character boundary) and marked with `…`.
pub const MAX_LINE_BYTES: usize = 1024;

/// Up to `lines` last lines of container `name` (both streams, interleaved
/// as the engine returns them), each at most [`MAX_LINE_BYTES`], control
/// characters other than tab replaced. The lines are the container's own
/// output: untrusted data.
pub async fn container_log_tail(socket: &Path, name: &str, lines: usize) -> Result<Vec<String>> {
    let docker = crate::docker::connect(socket).await?;
    let opts = LogsOptions { stdout: true, stderr: true, tail: lines.to_string(), ..Default::default() };
    let mut stream = docker.logs(name, Some(opts));
    let mut out = Vec::new();
    let mut partial = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        partial.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        while let Some(i) = partial.find('\n') {
            let line: String = partial.drain(..=i).collect();
            out.push(clean(line.trim_end_matches(['\n', '\r'])));
        }
    }
    if !partial.is_empty() {
        out.push(clean(&partial));
    }
    let skip = out.len().saturating_sub(lines);
    Ok(out.split_off(skip))
}

/// Bounds a line and replaces control characters.
pub fn clean(line: &str) -> String {
    let mut s: String = line.chars().map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect();
    if s.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_control_free() {
        assert_eq!(clean("a\u{1b}[31mb\tc"), "a\u{FFFD}[31mb\tc");
        let long = "é".repeat(MAX_LINE_BYTES);
        let c = clean(&long);
        assert!(c.len() <= MAX_LINE_BYTES + '…'.len_utf8());
        assert!(c.ends_with('…'));
    }
}
