//! The `superserver` binary: CLI parsing and wiring only.

mod cli;
mod serve;

use clap::{Parser, Subcommand};

/// SuperServer: run untrusted code in millisecond-fast isolated sandboxes on
/// your own Linux server.
#[derive(Parser, Debug)]
#[command(name = "superserver", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (HTTP API, sandbox runtime, warm pool).
    Serve(serve::ServeArgs),
    /// Run one command in a fresh sandbox and exit with its exit code.
    Run {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(flatten)]
        args: cli::RunArgs,
    },
    /// Manage persistent sandboxes.
    Sandbox {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: cli::SandboxCmd,
    },
    /// Show the server's status: backends, pool, sandboxes.
    Status {
        #[command(flatten)]
        client: cli::ClientOpts,
    },
    /// Manage tenants (admin keys).
    Tenants {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: cli::TenantsCmd,
    },
    /// Manage API keys.
    Keys {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: cli::KeysCmd,
    },
    /// Show usage totals (`usage export` prints every execution as CSV).
    #[command(args_conflicts_with_subcommands = true)]
    Usage {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(flatten)]
        args: cli::UsageArgs,
        #[command(subcommand)]
        cmd: Option<cli::UsageCmd>,
    },
    /// Show each quota's use in the current period.
    Quotas {
        #[command(flatten)]
        client: cli::ClientOpts,
        /// Tenant name or id (admin keys; default: the key's own tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Show the API key in use, its role and its tenant.
    Whoami {
        #[command(flatten)]
        client: cli::ClientOpts,
    },
    /// Show the plans and what each grants.
    Plans {
        #[command(flatten)]
        client: cli::ClientOpts,
    },
    /// Show the newest entries of the admin audit log.
    Audit {
        #[command(flatten)]
        client: cli::ClientOpts,
        /// How many entries (default: the server's).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Show the host's services (containers, units, listening processes), the
    /// service map and their changes (admin).
    Services {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: Option<cli::ServicesCmd>,
    },
    /// Egress audit events of governed (`--network`) sandboxes.
    Egress {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: cli::EgressCmd,
    },
    /// Connections held for a decision (`--ask`): list, allow, deny.
    Approvals {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: Option<cli::ApprovalsCmd>,
    },
    /// Custody secrets: set (value from stdin), ls, show, rm. Sandboxes given
    /// `--secret NAME` see a placeholder the egress proxy swaps for the value
    /// on the way to the secret's hosts.
    Secrets {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: Option<cli::SecretsCmd>,
    },
    /// Show, acknowledge and silence alerts about the host's services (admin).
    Alerts {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(subcommand)]
        cmd: Option<cli::AlertsCmd>,
    },
    /// Search a service's logs, or follow them with `-f` (host logs: admin;
    /// a tenant: its sandboxes' `sandbox:<id>`).
    Logs {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(flatten)]
        args: cli::LogsArgs,
    },
    /// Show stored metrics: `metrics ls` lists series, `metrics SERIES
    /// [--since 1h] [--step 1m]` shows one (host series: admin).
    Metrics {
        #[command(flatten)]
        client: cli::ClientOpts,
        #[command(flatten)]
        args: cli::MetricsArgs,
    },
    /// Internal: the sandbox-forking helper the server starts.
    #[command(name = "__zygote", hide = true)]
    Zygote,
}

fn main() {
    let cli = Cli::parse();
    // The zygote must stay single-threaded: dispatch before any runtime exists.
    if matches!(cli.command, Command::Zygote) {
        superserver_runtime::zygote::main();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let result = match cli.command {
            Command::Serve(args) => serve::serve(args).await.map(|()| 0),
            Command::Run { client, args } => cli::run(&client, args).await,
            Command::Sandbox { client, cmd } => cli::sandbox(&client, cmd).await,
            Command::Status { client } => cli::status(&client).await,
            Command::Tenants { client, cmd } => cli::tenants(&client, cmd).await,
            Command::Keys { client, cmd } => cli::keys(&client, cmd).await,
            Command::Usage { client, args, cmd } => cli::usage(&client, args, cmd).await,
            Command::Quotas { client, tenant } => cli::quotas(&client, tenant).await,
            Command::Whoami { client } => cli::whoami(&client).await,
            Command::Plans { client } => cli::plans(&client).await,
            Command::Audit { client, limit } => cli::audit(&client, limit).await,
            Command::Services { client, cmd } => cli::services(&client, cmd).await,
            Command::Alerts { client, cmd } => cli::alerts(&client, cmd).await,
            Command::Egress { client, cmd } => cli::egress(&client, cmd).await,
            Command::Approvals { client, cmd } => cli::approvals(&client, cmd).await,
            Command::Secrets { client, cmd } => cli::secrets(&client, cmd).await,
            Command::Logs { client, args } => cli::logs(&client, args).await,
            Command::Metrics { client, args } => cli::metrics(&client, args).await,
            Command::Zygote => unreachable!("dispatched above"),
        };
        result.unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            1
        })
    });
    // Do not wait for lingering blocking tasks (e.g. a stdin reader).
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("superserver").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tenancy_commands_parse() {
        let cmd = parse(&["keys", "create", "--tenant", "acme", "--role", "viewer", "--expires", "30d", "--json"]);
        let Ok(Command::Keys { client, cmd: cli::KeysCmd::Create { tenant, role, expires, .. } }) = cmd else {
            panic!("expected keys create, got {cmd:?}");
        };
        assert_eq!(tenant, "acme");
        assert!(client.json);
        assert_eq!(role.map(superserver_wire::Role::from), Some(superserver_wire::Role::Viewer));
        assert!(expires.is_some());
        assert!(parse(&["keys", "create", "--role", "owner"]).is_err(), "--tenant is required");
        assert!(parse(&["keys", "create", "--tenant", "a", "--role", "root"]).is_err());

        let cmd = parse(&["usage", "export", "--from", "2026-11-01", "--tenant", "acme"]);
        assert!(
            matches!(&cmd, Ok(Command::Usage { cmd: Some(cli::UsageCmd::Export { from: Some(f), .. }), .. }) if f == "2026-11-01"),
            "{cmd:?}"
        );
        let cmd = parse(&["usage", "--group-by", "key", "--csv"]);
        assert!(matches!(&cmd, Ok(Command::Usage { args, cmd: None, .. }) if args.csv), "{cmd:?}");
        assert!(parse(&["usage", "--group-by", "week"]).is_err());
        assert!(parse(&["usage", "--csv", "--json"]).is_err());

        let cmd = parse(&["tenants", "set-plan", "acme", "pro", "--api-key", "ssk_x"]);
        assert!(
            matches!(&cmd, Ok(Command::Tenants { cmd: cli::TenantsCmd::SetPlan { .. }, client }) if client.api_key.is_some())
        );
        assert!(!format!("{cmd:?}").contains("ssk_x"), "the key must not show in Debug output");
        assert!(matches!(parse(&["audit", "--limit", "5"]), Ok(Command::Audit { limit: Some(5), .. })));
        assert!(matches!(parse(&["quotas", "--tenant", "t"]), Ok(Command::Quotas { tenant: Some(_), .. })));
        for plain in [
            &["whoami"][..],
            &["plans"],
            &["tenants", "ls"],
            &["keys", "ls", "--tenant", "t"],
            &["keys", "revoke", "key_1"],
        ] {
            assert!(parse(plain).is_ok(), "{plain:?}");
        }
    }
}
