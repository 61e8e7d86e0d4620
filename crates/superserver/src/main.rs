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
