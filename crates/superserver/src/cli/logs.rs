//! `superserver logs SERVICE`: search a service's stored lines, or follow them.

use std::io::Write;

use superserver_client::LogsQuery;
use superserver_wire::LogLine;

use super::output::{print_json, utc};
use super::parse::{millis, parse_duration};
use super::ClientOpts;

#[derive(clap::Args, Debug, Clone)]
pub struct LogsArgs {
    /// Service id: `container:web`, a `[[logs.files]]` service, `sandbox:<id>`.
    pub service: String,
    /// Keep printing new lines as they are stored.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines with all these words.
    #[arg(short = 'q', long = "query", value_name = "TEXT")]
    pub q: Option<String>,
    /// This level and the more severe ones (fatal, error, warn, info, debug, trace, unknown).
    #[arg(long)]
    pub level: Option<String>,
    /// Only lines this recent, e.g. `30s`, `15m`, `1h`.
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// At most this many lines (default 100).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// Prints matching lines oldest first, then follows with `-f`; exit code 0,
/// or 1 after an error.
pub async fn logs(opts: &ClientOpts, args: LogsArgs) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
        let q = LogsQuery {
            service: Some(args.service.clone()),
            q: args.q.clone(),
            level: args.level.clone(),
            from: args.since.map(|d| now - millis(d) as i64),
            to: None,
            limit: args.limit,
        };
        let list = client.logs(&q).await?;
        if opts.json && !args.follow {
            return print_json(&serde_json::to_value(&list)?);
        }
        for l in list.lines.iter().rev() {
            print_line(l, opts.json);
        }
        if args.follow {
            client.follow_logs(&LogsQuery { from: None, limit: None, ..q }, |l| print_line(&l, opts.json)).await?;
        }
        Ok(())
    };
    Ok(opts.finish(result.await))
}

/// One line: JSON, or `time level stream text` with control characters
/// escaped (a line is data, never terminal commands). False once stdout is closed.
fn print_line(l: &LogLine, json: bool) -> bool {
    let text = if json {
        serde_json::to_string(l).unwrap_or_default()
    } else {
        format!("{} {:<7} {:<6} {}", utc(l.at_ms), l.level, l.stream, escape(&l.line))
    };
    writeln!(std::io::stdout().lock(), "{text}").is_ok()
}

fn escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}
