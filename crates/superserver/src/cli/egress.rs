//! `superserver egress` (the audit trail of governed sandboxes' traffic)
//! and `superserver approvals` (connections held for a decision).

use superserver_client::EgressQuery;
use superserver_wire::{Approval, ApprovalDecision, EgressEvent};

use super::output::{print_json, print_table, utc};
use super::ClientOpts;

/// `superserver egress`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum EgressCmd {
    /// List egress events, oldest first.
    Events {
        /// Only this sandbox's.
        #[arg(long)]
        sandbox: Option<String>,
        /// `allow` or `deny`.
        #[arg(long)]
        decision: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Keep printing new events as they happen.
        #[arg(short, long)]
        follow: bool,
        /// One JSON event per line (for export).
        #[arg(long)]
        jsonl: bool,
    },
}

/// `superserver approvals`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ApprovalsCmd {
    /// Pending approvals, then recently decided ones.
    Ls,
    /// Let a held connection through (`--always`: and add the destination
    /// to the sandbox's policy).
    Allow {
        id: String,
        #[arg(long)]
        always: bool,
    },
    /// Refuse a held connection.
    Deny { id: String },
}

/// Runs `superserver egress`; exit code 0, or 1 after an error.
pub async fn egress(opts: &ClientOpts, cmd: EgressCmd) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        let EgressCmd::Events { sandbox, decision, limit, follow, jsonl } = cmd;
        let q = EgressQuery { sandbox, decision, limit: Some(limit), ..Default::default() };
        if jsonl && !follow {
            print!("{}", client.export_egress_events(&q).await?);
            return Ok(());
        }
        if follow {
            let json = opts.json || jsonl;
            client
                .follow_egress_events(&q, |e| {
                    if json {
                        println!("{}", serde_json::to_string(&e).unwrap_or_default());
                    } else {
                        println!("{}", line(&e));
                    }
                    true
                })
                .await?;
            return Ok(());
        }
        let list = client.egress_events(&q).await?;
        if opts.json {
            return print_json(&serde_json::to_value(&list)?);
        }
        for e in &list.events {
            println!("{}", line(e));
        }
        anyhow::Ok(())
    }
    .await;
    finish(opts, result)
}

/// Runs `superserver approvals`; exit code 0, or 1 after an error.
pub async fn approvals(opts: &ClientOpts, cmd: Option<ApprovalsCmd>) -> anyhow::Result<i32> {
    let result = async {
        let client = opts.client()?;
        let decided = match cmd.unwrap_or(ApprovalsCmd::Ls) {
            ApprovalsCmd::Ls => {
                let list = client.approvals().await?;
                if opts.json {
                    return print_json(&serde_json::to_value(&list)?);
                }
                let rows: Vec<Vec<String>> = list.approvals.iter().map(row).collect();
                print_table(&["ID", "STATE", "SANDBOX", "DESTINATION", "REQUEST", "ASKED (UTC)", "BY"], &rows);
                return Ok(());
            }
            ApprovalsCmd::Allow { id, always } => {
                let d = if always { ApprovalDecision::AllowAlways } else { ApprovalDecision::AllowOnce };
                client.decide_approval(&id, d).await?
            }
            ApprovalsCmd::Deny { id } => client.decide_approval(&id, ApprovalDecision::Deny).await?,
        };
        if opts.json {
            return print_json(&serde_json::to_value(&decided)?);
        }
        println!("{} {}", decided.id, state(&decided));
        anyhow::Ok(())
    }
    .await;
    finish(opts, result)
}

fn finish(opts: &ClientOpts, result: anyhow::Result<()>) -> anyhow::Result<i32> {
    match result {
        Ok(()) => Ok(0),
        Err(e) => {
            opts.report(&e);
            Ok(1)
        }
    }
}

fn destination(name: &Option<String>, address: &Option<String>, port: Option<u16>) -> String {
    let host = name.clone().or_else(|| address.clone()).unwrap_or_else(|| "?".into());
    match port {
        Some(p) if p != 0 => format!("{host}:{p}"),
        _ => host,
    }
}

/// One event as a line: time, decision, sandbox, protocol, destination,
/// request, rule, bytes.
fn line(e: &EgressEvent) -> String {
    let request = match (&e.method, &e.path) {
        (Some(m), Some(p)) => format!(" {m} {p}"),
        _ => String::new(),
    };
    format!(
        "{} {:5} {} {:5} {}{} [{}] out {} B in {} B",
        utc(e.at_ms),
        e.decision.as_str(),
        e.sandbox_id,
        e.protocol,
        destination(&e.name, &e.address, e.port),
        request,
        e.rule,
        e.bytes_out,
        e.bytes_in
    )
}

fn state(a: &Approval) -> String {
    serde_json::to_value(a.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn row(a: &Approval) -> Vec<String> {
    let request = match (&a.method, &a.path) {
        (Some(m), Some(p)) => format!("{m} {p}"),
        _ => a.protocol.clone(),
    };
    vec![
        a.id.clone(),
        state(a),
        a.sandbox_id.clone(),
        destination(&a.name, &a.address, Some(a.port)),
        request,
        utc(a.requested_at_ms),
        a.decided_by.clone().unwrap_or_default(),
    ]
}
