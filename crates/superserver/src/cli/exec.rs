//! What `run` and `sandbox exec` share: the command options, the request they
//! build, live streaming of the output and the exit code.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use superserver_wire::{
    EgressLogLevel, EgressRule, ExecRequest, ExecResult, FileUpload, Limits, NetworkMode, NetworkSpec, OnUnknown,
    RunAs, StreamEvent,
};
use tokio::io::AsyncReadExt;

use super::output::{human_bytes, human_duration, print_json};
use super::parse::{self, FileSpec};
use super::ClientOpts;

/// Exit code when the command could not be run at all (as `docker run`).
pub(crate) const EXIT_NOT_RUN: i32 = 125;
/// Exit code when the command hit its time limit (as `timeout(1)`).
pub(crate) const EXIT_TIMED_OUT: i32 = 124;
/// Exit code when the command was OOM-killed (128 + SIGKILL).
pub(crate) const EXIT_OOM: i32 = 137;

/// Options of one command, shared by `run` and `sandbox exec`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExecArgs {
    /// Wall-clock limit, e.g. 500ms, 10s, 2m (default: the server's).
    #[arg(long, value_name = "DURATION", value_parser = parse::parse_duration)]
    pub timeout: Option<Duration>,
    /// Environment variable for the command (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse::parse_env)]
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (default /workspace).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Run as root inside the sandbox (still without capabilities).
    #[arg(long)]
    pub root: bool,
    /// Read standard input to its end and give it to the command.
    #[arg(short = 'i', long = "stdin")]
    pub stdin: bool,
    /// Copy a local file into the sandbox first; the path is relative to
    /// /workspace unless absolute (default: the file's name). Repeatable.
    #[arg(long = "file", value_name = "LOCAL[:SANDBOX_PATH]", value_parser = parse::parse_file_spec)]
    pub files: Vec<FileSpec>,
    /// Cap on each of stdout and stderr, e.g. 64K, 10M (default 1M).
    #[arg(long, value_name = "SIZE", value_parser = parse::parse_size)]
    pub max_output: Option<u64>,
}

const HEADING_LIMITS: &str = "Sandbox limits";
const HEADING_NETWORK: &str = "Network";

/// Resource limits of a new sandbox (default: the server's).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory limit in MiB.
    #[arg(long, value_name = "MB", help_heading = HEADING_LIMITS)]
    pub memory: Option<u64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", help_heading = HEADING_LIMITS)]
    pub pids: Option<u32>,
    /// CPU quota in percent of one core (100 = one core).
    #[arg(long, value_name = "PCT", help_heading = HEADING_LIMITS)]
    pub cpu: Option<u32>,
    /// Writable storage in MiB.
    #[arg(long, value_name = "MB", help_heading = HEADING_LIMITS)]
    pub disk: Option<u64>,
}

impl LimitArgs {
    /// The limits to send, or `None` when no flag was given.
    pub(crate) fn to_limits(&self) -> Option<Limits> {
        let limits = Limits { memory_mb: self.memory, pids: self.pids, cpu_percent: self.cpu, disk_mb: self.disk };
        (limits != Limits::default()).then_some(limits)
    }
}

/// Network access of a new sandbox (default: none).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetworkArgs {
    /// Give the sandbox governed network access: every connection and DNS
    /// query goes through the egress proxy and its policy.
    #[arg(long, help_heading = HEADING_NETWORK)]
    pub network: bool,
    /// Destination the sandbox may reach: `host[:port]`, `*.suffix[:port]`,
    /// an IPv4 address or CIDR (repeatable; implies --network).
    #[arg(long = "allow", value_name = "RULE", help_heading = HEADING_NETWORK)]
    pub allow: Vec<String>,
    /// Destination the sandbox may never reach; wins over --allow (repeatable).
    #[arg(long = "deny", value_name = "RULE", help_heading = HEADING_NETWORK)]
    pub deny: Vec<String>,
    /// Hold connections to unknown destinations for approval
    /// (`superserver approvals`) instead of denying them.
    #[arg(long, help_heading = HEADING_NETWORK)]
    pub ask: bool,
    /// Which egress events are kept: off, blocks (default) or full.
    #[arg(long = "egress-log", value_name = "LEVEL", value_parser = parse_log_level, help_heading = HEADING_NETWORK)]
    pub egress_log: Option<EgressLogLevel>,
    /// A custody secret the sandbox holds, as a placeholder in its
    /// environment (repeatable; implies --network; `superserver secrets`).
    #[arg(long = "secret", value_name = "NAME", help_heading = HEADING_NETWORK)]
    pub secrets: Vec<String>,
}

fn parse_log_level(s: &str) -> Result<EgressLogLevel, String> {
    match s {
        "off" => Ok(EgressLogLevel::Off),
        "blocks" => Ok(EgressLogLevel::Blocks),
        "full" => Ok(EgressLogLevel::Full),
        _ => Err(format!("`{s}`: use off, blocks or full")),
    }
}

impl NetworkArgs {
    /// The network to ask for, or `None` when no flag was given.
    pub(crate) fn to_spec(&self) -> Option<NetworkSpec> {
        let governed =
            self.network || !self.allow.is_empty() || !self.deny.is_empty() || self.ask || !self.secrets.is_empty();
        governed.then(|| NetworkSpec {
            mode: NetworkMode::Policy,
            allow: self.allow.iter().cloned().map(EgressRule::Short).collect(),
            deny: self.deny.iter().cloned().map(EgressRule::Short).collect(),
            on_unknown: self.ask.then_some(OnUnknown::Ask),
            log: self.egress_log,
        })
    }
}

/// Builds the request for `command`, reading local files and stdin as asked.
pub(crate) async fn exec_request(args: &ExecArgs, command: Vec<String>) -> anyhow::Result<ExecRequest> {
    let mut req = ExecRequest {
        command,
        env: env_map(&args.env),
        cwd: args.cwd.clone(),
        timeout_ms: args.timeout.map(parse::millis),
        max_output_bytes: args.max_output,
        user: args.root.then_some(RunAs::Root),
        files: args.files.iter().map(upload).collect::<anyhow::Result<_>>()?,
        ..Default::default()
    };
    if args.stdin {
        let bytes = read_stdin().await?;
        match String::from_utf8(bytes) {
            Ok(text) => req.stdin = Some(text),
            Err(e) => req.stdin_base64 = Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
        }
    }
    Ok(req)
}

/// Later `-e` flags override earlier ones with the same name.
pub(crate) fn env_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

fn upload(spec: &FileSpec) -> anyhow::Result<FileUpload> {
    let local = spec.local.display();
    let meta = std::fs::metadata(&spec.local).with_context(|| format!("cannot read {local}"))?;
    anyhow::ensure!(meta.is_file(), "{local} is not a regular file; --file copies single files");
    let bytes = std::fs::read(&spec.local).with_context(|| format!("cannot read {local}"))?;
    Ok(FileUpload {
        path: spec.remote.clone(),
        content_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        mode: Some(meta.permissions().mode() & 0o777),
    })
}

async fn read_stdin() -> anyhow::Result<Vec<u8>> {
    if std::io::stdin().is_terminal() {
        eprintln!("reading standard input for the command (end it with Ctrl-D)…");
    }
    let mut buf = Vec::new();
    tokio::io::stdin().read_to_end(&mut buf).await.context("cannot read standard input")?;
    Ok(buf)
}

/// A one-shot run or an exec in an existing sandbox, ready to send.
pub(crate) enum Target {
    Run(superserver_wire::RunRequest),
    Exec { id: String, req: ExecRequest },
}

/// Sends the command and reports its outcome: its output streamed live (or
/// the result as JSON with `--json`), notes on stderr, and the exit code.
pub(crate) async fn execute(opts: &ClientOpts, target: Target) -> anyhow::Result<i32> {
    let client = match opts.client() {
        Ok(client) => client,
        Err(e) => return Ok(not_run(opts, e)),
    };
    if opts.json {
        let result = match &target {
            Target::Run(req) => client.run(req).await,
            Target::Exec { id, req } => client.exec(id, req).await,
        };
        return match result {
            Ok(result) => {
                print_json(&serde_json::to_value(&result)?)?;
                Ok(exit_code(&result))
            }
            Err(e) => Ok(not_run(opts, e.into())),
        };
    }
    let mut sink = Sink::default();
    let result = match &target {
        Target::Run(req) => client.run_stream(req, |ev| sink.event(ev)).await,
        Target::Exec { id, req } => client.exec_stream(id, req, |ev| sink.event(ev)).await,
    };
    match result {
        Ok(result) => {
            sink.finish(&result);
            print_notes(&result);
            Ok(exit_code(&result))
        }
        Err(e) => Ok(not_run(opts, e.into())),
    }
}

fn not_run(opts: &ClientOpts, err: anyhow::Error) -> i32 {
    opts.report(&err);
    EXIT_NOT_RUN
}

/// Writes streamed output to this process's stdout and stderr.
#[derive(Default)]
struct Sink {
    stdout_seen: bool,
    stderr_seen: bool,
    /// Set once stdout is closed (e.g. `| head`): output is then dropped.
    stdout_closed: bool,
}

impl Sink {
    fn event(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Stdout { data } => {
                self.stdout_seen = true;
                self.out(data.as_bytes());
            }
            StreamEvent::Stderr { data } => {
                self.stderr_seen = true;
                err_write(data.as_bytes());
            }
            StreamEvent::Result(_) | StreamEvent::Error { .. } => {}
        }
    }

    /// Prints the result's output for a stream that carried none (a server
    /// that answered with the whole result at once).
    fn finish(&mut self, result: &ExecResult) {
        if !self.stdout_seen {
            let bytes = exact_bytes(&result.stdout, result.stdout_base64.as_deref());
            self.out(&bytes);
        }
        if !self.stderr_seen {
            err_write(&exact_bytes(&result.stderr, result.stderr_base64.as_deref()));
        }
    }

    fn out(&mut self, bytes: &[u8]) {
        if self.stdout_closed || bytes.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            self.stdout_closed = true;
        }
    }
}

fn err_write(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    // Nowhere left to report a failure to write to stderr.
    let _ = err.write_all(bytes).and_then(|()| err.flush());
}

/// The exact bytes of an output: the base64 form when the text is lossy.
fn exact_bytes(text: &str, b64: Option<&str>) -> Vec<u8> {
    b64.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| text.as_bytes().to_vec())
}

/// The process exit code for a command's outcome: 124 when it timed out, 137
/// when OOM-killed, 128+N when killed by signal N, else its own exit status.
pub(crate) fn exit_code(r: &ExecResult) -> i32 {
    if r.timed_out {
        EXIT_TIMED_OUT
    } else if r.oom_killed {
        EXIT_OOM
    } else if let Some(sig) = r.signal {
        128 + sig
    } else if let Some(code) = r.exit_code {
        code
    } else {
        EXIT_NOT_RUN
    }
}

/// One line on stderr for each thing the exit code alone does not say.
fn print_notes(r: &ExecResult) {
    for note in notes(r) {
        eprintln!("{note}");
    }
}

fn notes(r: &ExecResult) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(error) = &r.error {
        notes.push(format!("error: {error}"));
    }
    if r.timed_out {
        let took = if r.duration_ms < 60_000.0 {
            format!("{:.1}s", r.duration_ms.max(0.0) / 1000.0)
        } else {
            human_duration(Duration::from_secs_f64(r.duration_ms / 1000.0))
        };
        notes.push(format!("superserver: the command timed out after {took} and was killed (raise --timeout)"));
    }
    if r.oom_killed {
        notes.push(format!(
            "superserver: the command ran out of memory and was killed (peak {}; raise --memory)",
            human_bytes(r.peak_memory_bytes)
        ));
    }
    for (name, truncated, total) in
        [("stdout", r.stdout_truncated, r.stdout_bytes), ("stderr", r.stderr_truncated, r.stderr_bytes)]
    {
        if truncated {
            notes.push(format!(
                "superserver: {name} was truncated: the command wrote {}, more than the output cap (raise --max-output)",
                human_bytes(total)
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let ok = ExecResult { exit_code: Some(3), ..Default::default() };
        assert_eq!(exit_code(&ok), 3);
        let signalled = ExecResult { signal: Some(15), ..Default::default() };
        assert_eq!(exit_code(&signalled), 143);
        let timed_out = ExecResult { timed_out: true, signal: Some(9), ..Default::default() };
        assert_eq!(exit_code(&timed_out), 124);
        let oom = ExecResult { oom_killed: true, signal: Some(9), ..Default::default() };
        assert_eq!(exit_code(&oom), 137);
        assert_eq!(exit_code(&ExecResult::default()), 125);
    }

    #[test]
    fn timeout_note_shows_tenths_of_seconds() {
        let r = ExecResult { timed_out: true, duration_ms: 1534.0, ..Default::default() };
        assert_eq!(notes(&r), ["superserver: the command timed out after 1.5s and was killed (raise --timeout)"]);
    }

    #[test]
    fn notes_explain_truncation_and_kills() {
        let r = ExecResult {
            stdout_truncated: true,
            stdout_bytes: 5 << 20,
            oom_killed: true,
            peak_memory_bytes: 64 << 20,
            ..Default::default()
        };
        let notes = notes(&r);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("out of memory") && notes[0].contains("64.0 MiB"));
        assert!(notes[1].contains("stdout was truncated") && notes[1].contains("5.0 MiB"));
        assert!(super::notes(&ExecResult::default()).is_empty());
    }

    #[test]
    fn limits_only_when_given() {
        assert_eq!(LimitArgs::default().to_limits(), None);
        let l = LimitArgs { memory: Some(256), ..Default::default() };
        assert_eq!(l.to_limits(), Some(Limits { memory_mb: Some(256), ..Default::default() }));
    }

    #[test]
    fn exact_bytes_prefers_base64() {
        assert_eq!(exact_bytes("a\u{fffd}", Some("Yf8=")), b"a\xff");
        assert_eq!(exact_bytes("plain", None), b"plain");
    }

    #[test]
    fn later_env_flags_win() {
        let m = env_map(&[("A".into(), "1".into()), ("A".into(), "2".into())]);
        assert_eq!(m.get("A").map(String::as_str), Some("2"));
    }
}
