//! Terminal output of the client commands: error reports, tables, progress
//! lines and human-readable sizes, ages and times.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use superserver_client::ClientError;

/// Prints an error as `error: …`. A [`ClientError`] is already a complete
/// sentence (an API error reads `<message> (<code>)`), so the chain stops there.
pub(crate) fn report(err: &anyhow::Error) {
    eprintln!("error: {}", message(err));
}

fn message(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<ClientError>().is_some() {
            break;
        }
    }
    parts.join(": ")
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// Prints rows under a header, columns padded to their widest cell.
pub(crate) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out.write_all(table(headers, rows).as_bytes());
    let _ = out.flush();
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = w.saturating_sub(cell.chars().count()) + 2;
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Prints text on stdout as is; a closed pipe (`| head`) is not an error.
pub(crate) fn print_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A usage figure: whole numbers without decimals, else up to three
/// (`1000`, `12.5`, `0.016`).
pub(crate) fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        let text = format!("{x:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A transient line on stderr ("creating sandbox…"), shown only when stderr
/// is a terminal and erased when dropped.
pub(crate) struct Progress {
    shown: bool,
}

impl Progress {
    pub(crate) fn start(message: &str) -> Self {
        let shown = stderr_is_terminal();
        if shown {
            eprint!("{message}");
            let _ = std::io::stderr().flush();
        }
        Self { shown }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `2.0 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The two largest units of a duration: `45s`, `3m12s`, `5h3m`, `2d4h`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match () {
        _ if days > 0 => format!("{days}d{hours}h"),
        _ if hours > 0 => format!("{hours}h{mins}m"),
        _ if mins > 0 => format!("{mins}m{secs}s"),
        _ if s > 0 => format!("{secs}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

/// Current unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How long ago a unix-ms instant was, e.g. `5m12s`.
pub(crate) fn age(at_ms: i64, now_ms: i64) -> String {
    human_duration(ms_between(at_ms, now_ms))
}

/// `in 55m` for a future instant, `now` for a past one.
pub(crate) fn until(at_ms: i64, now_ms: i64) -> String {
    if at_ms <= now_ms {
        "now".into()
    } else {
        format!("in {}", human_duration(ms_between(now_ms, at_ms)))
    }
}

fn ms_between(from: i64, to: i64) -> Duration {
    Duration::from_millis(u64::try_from(to.saturating_sub(from)).unwrap_or(0))
}

/// A unix-ms instant as `YYYY-MM-DD HH:MM:SS` in UTC.
/// Text from the host (log lines, labels) made safe for a terminal: control
/// characters, which could move the cursor or recolour the screen, are shown
/// escaped instead of interpreted.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

pub(crate) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `drwxr-xr-x` from a listing entry's kind and permission bits.
pub(crate) fn mode_string(kind: &str, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        "dir" => 'd',
        "symlink" => 'l',
        "file" => '-',
        _ => '?',
    });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["sb_1".to_owned(), "running".to_owned(), "host".to_owned()],
            vec!["sb_22222".to_owned(), "expired".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["ID", "STATE", "IMAGE"], &rows),
            "ID        STATE    IMAGE\n\
             sb_1      running  host\n\
             sb_22222  expired\n"
        );
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(human_duration(Duration::from_secs(192)), "3m12s");
        assert_eq!(human_duration(Duration::from_secs(5 * 3600 + 180)), "5h3m");
        assert_eq!(human_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)), "2d4h");
        assert_eq!(age(1_000, 61_000), "1m0s");
        assert_eq!(age(61_000, 1_000), "0ms");
        assert_eq!(until(61_000, 1_000), "in 1m0s");
        assert_eq!(until(1_000, 61_000), "now");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(1000.0), "1000");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.015_6), "0.016");
        assert_eq!(number(0.000_1), "0");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("ok\x1b[31mred\x07\nnext\tcol"), "ok\\u{1b}[31mred\\u{7}\\nnext\tcol");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_732_379_045_123), "2024-11-23 16:24:05");
        assert_eq!(utc(-1_000), "1969-12-31 23:59:59");
    }

    #[test]
    fn modes() {
        assert_eq!(mode_string("dir", 0o755), "drwxr-xr-x");
        assert_eq!(mode_string("file", 0o644), "-rw-r--r--");
        assert_eq!(mode_string("symlink", 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string("other", 0o600), "?rw-------");
    }

    #[test]
    fn client_errors_end_the_message() {
        let api = ClientError::Api { status: 404, code: "sandbox_not_found".into(), message: "no sandbox sb_9".into() };
        let err = anyhow::Error::new(api).context("cannot copy to sb_9:/a");
        assert_eq!(message(&err), "cannot copy to sb_9:/a: no sandbox sb_9 (sandbox_not_found)");
    }
}
