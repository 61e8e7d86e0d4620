//! `superserver run`: one command in a fresh sandbox.

use superserver_wire::RunRequest;

use super::exec::{self, ExecArgs, LimitArgs, NetworkArgs, Target, EXIT_NOT_RUN};
use super::ClientOpts;

/// Arguments of `superserver run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Root filesystem: `host` (default) or `dir:/path/to/rootfs`.
    #[arg(long)]
    pub image: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub network: NetworkArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// The command and its arguments, run without a shell
    /// (use `sh -c '…'` for one). Put `--` before it if it starts with '-'.
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs the command in a fresh sandbox, streaming its output; returns the
/// command's exit code (see [`exec::exit_code`]), or 125 when it could not run.
pub async fn run(opts: &ClientOpts, args: RunArgs) -> anyhow::Result<i32> {
    let req = match exec::exec_request(&args.exec, args.command).await {
        Ok(req) => req,
        Err(e) => {
            opts.report(&e);
            return Ok(EXIT_NOT_RUN);
        }
    };
    let run = RunRequest {
        command: req.command,
        image: args.image,
        env: req.env,
        cwd: req.cwd,
        stdin: req.stdin,
        stdin_base64: req.stdin_base64,
        timeout_ms: req.timeout_ms,
        max_output_bytes: req.max_output_bytes,
        user: req.user,
        limits: args.limits.to_limits(),
        files: req.files,
        network: args.network.to_spec(),
        secrets: args.network.secrets.clone(),
    };
    exec::execute(opts, Target::Run(run)).await
}
