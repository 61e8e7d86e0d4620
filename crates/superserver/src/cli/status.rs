//! `superserver status`: what the server reports about itself.

use std::time::Duration;

use superserver_wire::StatusResponse;

use super::output::{human_duration, print_json};
use super::ClientOpts;

/// Prints the server's status (a summary, or JSON with `--json`); exit code 0,
/// or 1 when the server cannot be asked.
pub async fn status(opts: &ClientOpts) -> anyhow::Result<i32> {
    Ok(opts.finish(fetch_and_print(opts).await))
}

async fn fetch_and_print(opts: &ClientOpts) -> anyhow::Result<()> {
    let status = opts.client()?.status().await?;
    if opts.json {
        return print_json(&serde_json::to_value(&status)?);
    }
    print!("{}", summary(&status, &opts.url));
    Ok(())
}

fn summary(s: &StatusResponse, url: &str) -> String {
    let mut out =
        format!("SuperServer {} at {url}, up {}\n", s.version, human_duration(Duration::from_secs(s.uptime_seconds)));
    for b in &s.backends {
        let state = if b.available { "available" } else { "unavailable" };
        let features: Vec<String> = b.features.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!("backend {}: {state}", b.name));
        if !features.is_empty() {
            out.push_str(&format!(" ({})", features.join(", ")));
        }
        out.push('\n');
    }
    let p = &s.pool;
    let asked = p.hits + p.misses;
    let hit_rate =
        if asked == 0 { String::new() } else { format!(" ({:.1}% hits)", p.hits as f64 * 100.0 / asked as f64) };
    out.push_str(&format!(
        "pool: {} ready, {} creating, {} in use; {} hits, {} misses{hit_rate}; \
         create {:.1} ms mean, {:.1} ms max; {} create failures\n",
        p.ready, p.creating, p.in_use, p.hits, p.misses, p.create_ms_mean, p.create_ms_max, p.create_failures
    ));
    for prof in &p.profiles {
        out.push_str(&format!(
            "  profile {} ({} MiB, {} pids, {}% cpu, {} MiB disk): {}/{} ready, {} creating\n",
            prof.image,
            prof.limits.memory_mb,
            prof.limits.pids,
            prof.limits.cpu_percent,
            prof.limits.disk_mb,
            prof.ready,
            prof.target,
            prof.creating
        ));
    }
    out.push_str(&format!("sandboxes: {} running; {} executions in total\n", s.sandboxes_running, s.executions_total));
    if !s.sandboxes_lost.is_empty() {
        out.push_str(&format!(
            "lost sandboxes ({}, running when the server last stopped uncleanly): {}\n",
            s.sandboxes_lost.len(),
            s.sandboxes_lost.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use superserver_wire::{BackendStatus, PoolStatus};

    use super::*;

    #[test]
    fn summary_names_the_figures() {
        let s = StatusResponse {
            version: "0.1.0".into(),
            uptime_seconds: 3725,
            backends: vec![BackendStatus {
                name: "linux".into(),
                available: true,
                features: BTreeMap::from([("cgroup".into(), "v2".into())]),
            }],
            pool: PoolStatus { ready: 4, in_use: 2, hits: 3, misses: 1, ..Default::default() },
            sandboxes_running: 5,
            sandboxes_lost: vec!["sb_old".into()],
            executions_total: 42,
        };
        let text = summary(&s, "http://127.0.0.1:7070");
        assert!(text.starts_with("SuperServer 0.1.0 at http://127.0.0.1:7070, up 1h2m\n"), "{text}");
        assert!(text.contains("backend linux: available (cgroup=v2)"), "{text}");
        assert!(text.contains("4 ready") && text.contains("2 in use") && text.contains("75.0% hits"), "{text}");
        assert!(text.contains("5 running; 42 executions"), "{text}");
        assert!(text.contains("lost sandboxes (1, ") && text.contains("sb_old"), "{text}");
    }
}
