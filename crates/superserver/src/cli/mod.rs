//! Client commands of the CLI (`run`, `sandbox …`, `status`): they talk to a
//! running server over its HTTP API through `superserver-client`.
//!
//! Each entry point reports its own errors on stderr (`error: <message>
//! (<code>)` for API errors) and returns the exit code for the process: the
//! command's for `run` and `sandbox exec` (125 when it could not be run), else
//! 0, or 1 after an error. `Err` is left for a failure to write the answer to
//! stdout; print it as `error: {e:#}` and exit 1.

mod cp;
mod exec;
mod output;
mod parse;
mod run;
mod sandbox;
mod status;

pub use run::{run, RunArgs};
pub use sandbox::{sandbox, SandboxCmd};
pub use status::status;

/// Where the server is and how to print answers; shared by the client commands.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientOpts {
    /// Address of the SuperServer API.
    #[arg(
        long,
        env = "SUPERSERVER_URL",
        default_value = superserver_client::DEFAULT_URL,
        global = true,
        help_heading = "Server options"
    )]
    pub url: String,
    /// Print answers as JSON instead of text.
    #[arg(long, global = true, help_heading = "Server options")]
    pub json: bool,
}
