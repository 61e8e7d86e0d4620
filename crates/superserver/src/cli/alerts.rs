//! `superserver alerts`: alerts about the host's services, and silences.

use superserver_wire::{AlertList, SilenceRequest};

use super::output::{print_json, print_table, utc};
use super::ClientOpts;

/// What `superserver alerts` does besides listing firing alerts.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AlertsCmd {
    /// List alerts.
    Ls {
        /// `firing` (default), `resolved` or `all`.
        #[arg(long)]
        state: Option<String>,
        /// Only this service's (e.g. `container:web`).
        #[arg(long)]
        service: Option<String>,
    },
    /// One alert: its context and history.
    Show { id: String },
    /// Acknowledge an alert: no more repeat notifications.
    Ack { id: String },
    /// Silence an alert's rule on its service.
    Silence {
        id: String,
        /// How long, in seconds.
        #[arg(long = "for", value_name = "SECONDS")]
        for_seconds: u64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Active silences.
    Silences,
}

/// Runs `superserver alerts`; exit code 0, or 1 after an error.
pub async fn alerts(opts: &ClientOpts, cmd: Option<AlertsCmd>) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        let value = match cmd.unwrap_or(AlertsCmd::Ls { state: None, service: None }) {
            AlertsCmd::Ls { state, service } => {
                let list = client.alerts(state.as_deref(), service.as_deref()).await?;
                if !opts.json {
                    print_table(
                        &["ID", "STATE", "SEVERITY", "RULE", "SERVICE", "SINCE (UTC)", "SUMMARY"],
                        &rows(&list),
                    );
                    return Ok(());
                }
                serde_json::to_value(&list)?
            }
            AlertsCmd::Show { id } => {
                let d = client.alert(&id).await?;
                if !opts.json {
                    let a = &d.alert;
                    println!("{} {:?} {:?} {} on {}", a.id, a.state, a.severity, a.rule, a.service);
                    println!("since {}: {}", utc(a.started_at_ms), a.summary);
                    for c in &a.context.changes {
                        println!("  change {} {} {:?} -> {:?}", utc(c.at_ms), c.kind, c.before, c.after);
                    }
                    for l in &a.context.log_excerpt {
                        println!("  | {}", l.escape_debug());
                    }
                    for e in &d.history {
                        println!("  {} {} {}", utc(e.at_ms), e.kind, e.detail.escape_debug());
                    }
                    return Ok(());
                }
                serde_json::to_value(&d)?
            }
            AlertsCmd::Ack { id } => serde_json::to_value(client.ack_alert(&id).await?)?,
            AlertsCmd::Silence { id, for_seconds, reason } => {
                let req = SilenceRequest { for_seconds: Some(for_seconds), reason, ..Default::default() };
                serde_json::to_value(client.silence_alert(&id, &req).await?)?
            }
            AlertsCmd::Silences => {
                let s = client.silences().await?;
                if !opts.json {
                    let rows: Vec<Vec<String>> = s
                        .silences
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.clone(),
                                s.rule.clone().unwrap_or_else(|| "*".into()),
                                s.service.clone().unwrap_or_else(|| "*".into()),
                                utc(s.until_ms),
                                s.reason.escape_debug().to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["ID", "RULE", "SERVICE", "UNTIL (UTC)", "REASON"], &rows);
                    return Ok(());
                }
                serde_json::to_value(&s)?
            }
        };
        print_json(&value)
    };
    Ok(opts.finish(result.await))
}

fn rows(list: &AlertList) -> Vec<Vec<String>> {
    list.alerts
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                format!("{:?}", a.state).to_lowercase(),
                format!("{:?}", a.severity).to_lowercase(),
                a.rule.clone(),
                a.service.escape_debug().to_string(),
                utc(a.started_at_ms),
                a.summary.escape_debug().to_string(),
            ]
        })
        .collect()
}
