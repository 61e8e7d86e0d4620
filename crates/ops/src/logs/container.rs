//! Following a container's output through the Docker engine: stdout and
//! stderr apart, each line with the engine's nanosecond timestamp, which is
//! the follower's cursor (a restart resumes after the last stored one).

use std::path::Path;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures::{Stream, StreamExt};

use crate::error::{Error, Result};

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLine {
    /// Engine timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    pub line: String,
}

/// A connection for long-lived log streams (no request timeout).
pub async fn connect_for_follow(socket: &Path) -> Result<Docker> {
    if !socket.exists() {
        return Err(Error::DockerSocketAbsent(socket.into()));
    }
    let docker = Docker::connect_with_unix(&socket.to_string_lossy(), 365 * 24 * 3600, bollard::API_DEFAULT_VERSION)?;
    Ok(docker.negotiate_version().await?)
}

/// The container's lines written after `after_ns` (all with 0), then new
/// ones as they come, until the container stops.
pub fn follow(docker: &Docker, id: &str, after_ns: i64) -> impl Stream<Item = Result<ContainerLine>> + Send + 'static {
    let since = i32::try_from(after_ns / 1_000_000_000).unwrap_or(0);
    let opts = LogsOptions { follow: true, stdout: true, stderr: true, timestamps: true, since, ..Default::default() };
    docker.logs(id, Some(opts)).filter_map(move |item| async move {
        let (stream, message) = match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => ("stdout", message),
            Ok(LogOutput::StdErr { message }) => ("stderr", message),
            Ok(LogOutput::StdIn { .. }) => return None,
            Err(e) => return Some(Err(Error::Docker(e))),
        };
        let text = String::from_utf8_lossy(&message);
        let (ts_ns, line) = split_timestamp(&text)?;
        (ts_ns > after_ns)
            .then(|| Ok(ContainerLine { ts_ns, stream, line: line.trim_end_matches(['\n', '\r']).to_string() }))
    })
}

/// `2026-11-23T22:00:00.123456789Z rest` → (ns, rest).
pub fn split_timestamp(s: &str) -> Option<(i64, &str)> {
    let (ts, rest) = s.split_once(' ').unwrap_or((s, ""));
    Some((parse_rfc3339_ns(ts)?, rest))
}

/// Nanoseconds since the epoch of a UTC RFC 3339 time (`…Z`).
pub fn parse_rfc3339_ns(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = ts.get(19..)?.strip_suffix('Z')?;
    let nanos = match rest.strip_prefix('.') {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<i64>().ok()? * 10i64.pow(9 - f.len() as u32)
        }
        None if rest.is_empty() => 0,
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000_000) + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        assert_eq!(parse_rfc3339_ns("2000-03-01T00:00:00.5Z"), Some(951_868_800_500_000_000));
        assert_eq!(split_timestamp("1970-01-01T00:00:00.000000002Z hello world"), Some((2, "hello world")));
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }
}
