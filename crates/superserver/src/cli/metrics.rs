//! `superserver metrics`: list series, or show one series' points.

use superserver_wire::{MetricQueryResult, MetricSeriesList};

use super::output::{print_json, print_table, utc};
use super::ClientOpts;

/// `superserver metrics ls | SERIES [--since 1h] [--step 1m]`.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// `ls` to list the series, or a series name such as `host/cpu.percent`
    /// or `container:web/memory.bytes`.
    #[arg(value_name = "ls|SERIES")]
    pub target: String,
    /// How far back to show: `30m`, `1h`, `7d` …
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Point width: `10s`, `1m`, `1h` … (default: picked by the server).
    #[arg(long)]
    pub step: Option<String>,
}

/// Runs `superserver metrics`; exit code 0, or 1 after an error.
pub async fn metrics(opts: &ClientOpts, args: MetricsArgs) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        if args.target == "ls" {
            let list = client.metric_series().await?;
            if opts.json {
                return print_json(&serde_json::to_value(&list)?);
            }
            print_table(&["SERIES", "LAST (UTC)", "VALUE"], &series_rows(&list));
            return Ok(());
        }
        let since = superserver_core::metrics::parse_duration_ms(&args.since)?;
        let now = superserver_core::now_ms();
        let r = client.metric_query(&args.target, Some(now - since), Some(now), args.step.as_deref()).await?;
        if opts.json {
            return print_json(&serde_json::to_value(&r)?);
        }
        print_table(&["TIME (UTC)", "AVG", "MIN", "MAX"], &point_rows(&r));
        Ok(())
    };
    Ok(opts.finish(result.await))
}

fn series_rows(l: &MetricSeriesList) -> Vec<Vec<String>> {
    l.series.iter().map(|s| vec![s.name.clone(), utc(s.last_t_ms), num(s.last_value)]).collect()
}

fn point_rows(r: &MetricQueryResult) -> Vec<Vec<String>> {
    r.points.iter().map(|p| vec![utc(p.t_ms), num(p.avg), num(p.min), num(p.max)]).collect()
}

fn num(v: f64) -> String {
    if v.abs() >= 1e6 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
