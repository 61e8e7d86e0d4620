//! `superserver sandbox …`: persistent sandboxes.

use std::time::Duration;

use superserver_client::Client;
use superserver_wire::{CreateSandboxRequest, FileList, SandboxInfo, SandboxState};

use super::exec::{self, ExecArgs, LimitArgs, NetworkArgs, Target, EXIT_NOT_RUN};
use super::output::{age, human_bytes, mode_string, now_ms, print_json, print_table, until, utc, Progress};
use super::{cp, parse, ClientOpts};

/// Subcommands of `superserver sandbox`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SandboxCmd {
    /// Create a persistent sandbox and print its id.
    Create {
        /// Root filesystem: `host` (default) or `dir:/path/to/rootfs`.
        #[arg(long)]
        image: Option<String>,
        /// Lifetime, e.g. 30m, 1h, 2d; the sandbox is destroyed when it ends
        /// (default: the server's).
        #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
        ttl: Option<Duration>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        network: NetworkArgs,
        /// Environment variable for every command in the sandbox (repeatable).
        #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse::parse_env)]
        env: Vec<(String, String)>,
    },
    /// Run a command in a sandbox, streaming its output; exits with its exit code.
    Exec {
        /// Sandbox id.
        id: String,
        #[command(flatten)]
        exec: ExecArgs,
        /// The command and its arguments, run without a shell.
        #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Copy a file between this machine and a sandbox.
    ///
    /// Exactly one side is ID:PATH; `-` as the other side is standard input or
    /// output. A local path containing ':' must start with `/` or `./`.
    Cp {
        /// Source: a local file, `-` (stdin) or ID:PATH.
        src: String,
        /// Destination: a local file or directory, `-` (stdout) or ID:PATH
        /// (a PATH ending in '/' keeps the source's file name).
        dst: String,
    },
    /// List sandboxes.
    #[command(visible_alias = "list")]
    Ls {
        /// Include sandboxes that have ended.
        #[arg(short, long)]
        all: bool,
    },
    /// List a directory in a sandbox.
    Files {
        /// Sandbox id.
        id: String,
        /// Directory, relative to /workspace unless absolute.
        #[arg(default_value = "/workspace")]
        path: String,
    },
    /// Destroy sandboxes.
    #[command(visible_alias = "delete")]
    Rm {
        /// Sandbox ids.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Show one sandbox.
    Get {
        /// Sandbox id.
        id: String,
    },
}

/// Runs a `sandbox` subcommand; returns the exit code (`exec` returns the
/// command's, see [`exec::exit_code`]; the others 0, or 1 after an error).
pub async fn sandbox(opts: &ClientOpts, cmd: SandboxCmd) -> anyhow::Result<i32> {
    match dispatch(opts, cmd).await {
        Ok(code) => Ok(code),
        Err(e) => {
            opts.report(&e);
            Ok(1)
        }
    }
}

async fn dispatch(opts: &ClientOpts, cmd: SandboxCmd) -> anyhow::Result<i32> {
    // Built per arm: `exec` reports a bad URL itself, with its own exit code.
    let client = || opts.client();
    match cmd {
        SandboxCmd::Create { image, ttl, limits, network, env } => {
            let req = CreateSandboxRequest {
                image,
                env: exec::env_map(&env),
                limits: limits.to_limits(),
                ttl_seconds: ttl.map(parse::secs_ceil),
                network: network.to_spec(),
                secrets: network.secrets.clone(),
            };
            let info = {
                let _progress = Progress::start("creating sandbox…");
                client()?.create_sandbox(&req).await?
            };
            if opts.json {
                print_json(&serde_json::to_value(&info)?)?;
            } else {
                println!("{}", info.id);
            }
        }
        SandboxCmd::Exec { id, exec, command } => return exec_in(opts, id, &exec, command).await,
        SandboxCmd::Cp { src, dst } => cp::copy(&client()?, &src, &dst).await?,
        SandboxCmd::Ls { all } => {
            let list = client()?.list_sandboxes(all).await?;
            if opts.json {
                print_json(&serde_json::to_value(&list)?)?;
            } else {
                let now = now_ms();
                let rows: Vec<_> = list.sandboxes.iter().map(|s| sandbox_row(s, now)).collect();
                print_table(&["ID", "STATE", "IMAGE", "AGE", "EXPIRES", "EXECS", "MEMORY"], &rows);
            }
        }
        SandboxCmd::Files { id, path } => {
            let list = client()?.list_files(&id, &path).await?;
            if opts.json {
                print_json(&serde_json::to_value(&list)?)?;
            } else {
                print_files(&list);
            }
        }
        SandboxCmd::Rm { ids } => return remove(&client()?, opts, &ids).await,
        SandboxCmd::Get { id } => {
            let info = client()?.get_sandbox(&id).await?;
            if opts.json {
                print_json(&serde_json::to_value(&info)?)?;
            } else {
                print!("{}", describe(&info, now_ms()));
            }
        }
    }
    Ok(0)
}

/// `sandbox exec`: reports its own errors, with 125 when the command did not run.
async fn exec_in(opts: &ClientOpts, id: String, exec: &ExecArgs, command: Vec<String>) -> anyhow::Result<i32> {
    match exec::exec_request(exec, command).await {
        Ok(req) => exec::execute(opts, Target::Exec { id, req }).await,
        Err(e) => {
            opts.report(&e);
            Ok(EXIT_NOT_RUN)
        }
    }
}

/// Destroys each sandbox, going on after a failure; exit code 1 if any failed.
async fn remove(client: &Client, opts: &ClientOpts, ids: &[String]) -> anyhow::Result<i32> {
    let mut code = 0;
    let mut removed = Vec::new();
    for id in ids {
        match client.delete_sandbox(id).await {
            Ok(info) if opts.json => removed.push(info),
            Ok(info) => println!("{}", info.id),
            Err(e) => {
                opts.report(&anyhow::Error::new(e).context(format!("cannot remove {id}")));
                code = 1;
            }
        }
    }
    if opts.json {
        print_json(&serde_json::to_value(&removed)?)?;
    }
    Ok(code)
}

fn sandbox_row(s: &SandboxInfo, now: i64) -> Vec<String> {
    let expires = match (s.state, s.expires_at_ms) {
        (SandboxState::Running, Some(at)) => until(at, now),
        _ => "-".into(),
    };
    vec![
        s.id.clone(),
        s.state.as_str().into(),
        s.image.clone(),
        age(s.created_at_ms, now),
        expires,
        s.exec_count.to_string(),
        format!("{} MiB", s.limits.memory_mb),
    ]
}

fn describe(s: &SandboxInfo, now: i64) -> String {
    let l = &s.limits;
    let mut lines = vec![
        ("id", s.id.clone()),
        ("kind", s.kind.as_str().into()),
        ("state", s.state.as_str().into()),
        ("image", s.image.clone()),
        (
            "limits",
            format!("{} MiB memory, {} pids, {}% cpu, {} MiB disk", l.memory_mb, l.pids, l.cpu_percent, l.disk_mb),
        ),
        ("created", format!("{} UTC ({} ago)", utc(s.created_at_ms), age(s.created_at_ms, now))),
    ];
    if !s.tenant_id.is_empty() {
        lines.insert(1, ("tenant", s.tenant_id.clone()));
    }
    if let Some(at) = s.expires_at_ms {
        let when = if s.state == SandboxState::Running { format!(" ({})", until(at, now)) } else { String::new() };
        lines.push(("expires", format!("{} UTC{when}", utc(at))));
    }
    if let Some(at) = s.ended_at_ms {
        lines.push(("ended", format!("{} UTC ({} ago)", utc(at), age(at, now))));
    }
    if let Some(reason) = &s.end_reason {
        lines.push(("end reason", reason.clone()));
    }
    lines.push(("execs", s.exec_count.to_string()));
    lines.into_iter().map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:"))).collect()
}

fn print_files(list: &FileList) {
    let rows: Vec<Vec<String>> = list
        .entries
        .iter()
        .map(|e| {
            let name = if e.kind == "dir" { format!("{}/", e.name) } else { e.name.clone() };
            vec![mode_string(&e.kind, e.mode), human_bytes(e.size), utc(e.modified_ms), name]
        })
        .collect();
    print_table(&["MODE", "SIZE", "MODIFIED (UTC)", "NAME"], &rows);
}

#[cfg(test)]
mod tests {
    use superserver_wire::{EffectiveLimits, SandboxKind};

    use super::*;

    fn info(state: SandboxState) -> SandboxInfo {
        SandboxInfo {
            id: "sb_1".into(),
            tenant_id: "tn_1".into(),
            kind: SandboxKind::Persistent,
            state,
            image: "host".into(),
            limits: EffectiveLimits { memory_mb: 256, pids: 64, cpu_percent: 100, disk_mb: 512 },
            created_at_ms: 1_000,
            expires_at_ms: Some(3_601_000),
            ended_at_ms: None,
            end_reason: None,
            exec_count: 7,
            egress: None,
            secrets: Vec::new(),
        }
    }

    #[test]
    fn rows_show_expiry_only_while_running() {
        let row = sandbox_row(&info(SandboxState::Running), 61_000);
        assert_eq!(row, ["sb_1", "running", "host", "1m0s", "in 59m0s", "7", "256 MiB"]);
        let row = sandbox_row(&info(SandboxState::Destroyed), 61_000);
        assert_eq!(row[4], "-");
    }

    #[test]
    fn describe_lists_fields() {
        let text = describe(&info(SandboxState::Running), 61_000);
        assert!(text.starts_with("id:         sb_1\ntenant:     tn_1\n"), "{text}");
        assert!(text.contains("limits:     256 MiB memory, 64 pids, 100% cpu, 512 MiB disk\n"), "{text}");
        assert!(text.contains("expires:    1970-01-01 01:00:01 UTC (in 59m0s)\n"), "{text}");
        assert!(text.ends_with("execs:      7\n"), "{text}");
    }
}
