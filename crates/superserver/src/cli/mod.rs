//! Client commands of the CLI (`run`, `sandbox …`, `status`, `tenants …`,
//! `keys …`, `usage`, `quotas`, `whoami`, `plans`, `audit`): they talk to a
//! running server over its HTTP API through `superserver-client`.
//!
//! Each entry point reports its own errors on stderr (`error: <message>
//! (<code>)` for API errors, then `hint:` lines where one helps) and returns
//! the exit code for the process: the command's for `run` and `sandbox exec`
//! (125 when it could not be run), else 0, or 1 after an error. `Err` is left
//! for a failure to write the answer to stdout; print it as `error: {e:#}`
//! and exit 1.

mod account;
mod alerts;
mod audit;
mod auth;
mod cp;
mod egress;
mod exec;
mod expiry;
mod hints;
mod keys;
mod logs;
mod metrics;
mod output;
mod parse;
mod run;
mod sandbox;
mod secrets;
mod services;
mod status;
mod tenants;
mod usage;

use std::path::PathBuf;

pub use account::{plans, whoami};
pub use alerts::{alerts, AlertsCmd};
pub use audit::audit;
pub use egress::{approvals, egress, ApprovalsCmd, EgressCmd};
pub use keys::{keys, KeysCmd};
pub use logs::{logs, LogsArgs};
pub use metrics::{metrics, MetricsArgs};
pub use run::{run, RunArgs};
pub use sandbox::{sandbox, SandboxCmd};
pub use secrets::{secrets, SecretsCmd};
pub use services::{services, ServicesCmd};
pub use status::status;
pub use tenants::{tenants, TenantsCmd};
pub use usage::{quotas, usage, UsageArgs, UsageCmd};

use auth::ApiKey;
use superserver_client::Client;

const HEADING_SERVER: &str = "Server options";

/// Where the server is, which key to use and how to print answers; shared by
/// the client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOpts {
    /// Address of the SuperServer API.
    #[arg(
        long,
        env = "SUPERSERVER_URL",
        default_value = superserver_client::DEFAULT_URL,
        global = true,
        help_heading = HEADING_SERVER
    )]
    pub url: String,
    /// API key to send (prefer the environment variable: a flag shows in `ps`).
    /// Default: the admin key in DATA_DIR/admin.key, for a server on loopback.
    #[arg(
        long,
        env = "SUPERSERVER_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = ApiKey::parse,
        global = true,
        help_heading = HEADING_SERVER
    )]
    pub api_key: Option<ApiKey>,
    /// File holding the API key (used when no --api-key is given).
    #[arg(long, env = "SUPERSERVER_API_KEY_FILE", value_name = "PATH", global = true, help_heading = HEADING_SERVER)]
    pub api_key_file: Option<PathBuf>,
    /// The server's data directory, where the first `superserver serve`
    /// wrote admin.key [default: superserver-data].
    #[arg(long, env = "SUPERSERVER_DATA_DIR", value_name = "DIR", global = true, help_heading = HEADING_SERVER)]
    pub data_dir: Option<PathBuf>,
    /// Print answers as JSON instead of text.
    #[arg(long, global = true, help_heading = HEADING_SERVER)]
    pub json: bool,
}

impl ClientOpts {
    /// A client for `--url` that sends the key [`auth::resolve`] finds.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.url)?;
        Ok(match auth::resolve(self, client.is_loopback())? {
            auth::Resolved::Key(key, _) => client.with_api_key(key.expose()),
            auth::Resolved::NoKey(_) => client,
        })
    }

    /// Reports an error on stderr: the message, then hints (how to pass a
    /// key, when a quota resets, how long to wait).
    pub(crate) fn report(&self, err: &anyhow::Error) {
        output::report(err);
        for line in hints::hints(self, err, output::now_ms()) {
            eprintln!("{line}");
        }
    }

    /// The exit code of a management command: 0, or 1 after reporting `result`'s error.
    pub(crate) fn finish(&self, result: anyhow::Result<()>) -> i32 {
        match result {
            Ok(()) => 0,
            Err(e) => {
                self.report(&e);
                1
            }
        }
    }
}
