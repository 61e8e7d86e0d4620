//! Validation of command requests and shaping of their results: shared by
//! one-shot runs and execs in persistent sandboxes.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use superserver_runtime::{ExecOutput, ExecParams, WORKSPACE};
use superserver_wire::{ExecRequest, ExecResult, FileUpload, PlanLimits, RunAs};

use crate::config::Config;
use crate::error::{CoreError, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most arguments and environment entries accepted in one command.
const MAX_ARGS: usize = 4096;
const MAX_ENV: usize = 4096;

/// A validated command with its decoded files.
#[derive(Debug)]
pub struct ValidExec {
    pub params: ExecParams,
    pub files: Vec<(String, Vec<u8>, u32)>,
}

fn invalid(msg: impl Into<String>) -> CoreError {
    CoreError::InvalidRequest(msg.into())
}

/// Checks environment names and values.
pub fn validate_env(env: &BTreeMap<String, String>, what: &str) -> Result<()> {
    if env.len() > MAX_ENV {
        return Err(invalid(format!("{what}: more than {MAX_ENV} variables")));
    }
    for (k, v) in env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(invalid(format!("{what}: invalid variable name {k:?} (non-empty, no `=` or NUL)")));
        }
        if v.contains('\0') {
            return Err(invalid(format!("{what}: value of {k} contains a NUL byte")));
        }
    }
    Ok(())
}

/// The environment every command starts from.
fn base_env(root: bool) -> Vec<(String, String)> {
    let user = if root { "root" } else { "sandbox" };
    vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), WORKSPACE.into()),
        ("USER".into(), user.into()),
        ("LOGNAME".into(), user.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOSTNAME".into(), "sandbox".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ]
}

/// Adds `defaults` to `env` where it does not set them itself.
pub fn add_default_env(env: &mut Vec<(String, String)>, defaults: Vec<(String, String)>) {
    for (k, v) in defaults {
        if !env.iter().any(|(ek, _)| *ek == k) {
            env.push((k, v));
        }
    }
}

/// Validates `req` and turns it into runtime parameters. `sandbox_env` is the
/// persistent sandbox's own environment (empty for one-shot runs); `plan`
/// bounds the timeout further.
pub fn validate(
    cfg: &Config,
    req: &ExecRequest,
    sandbox_env: &BTreeMap<String, String>,
    plan: &PlanLimits,
) -> Result<ValidExec> {
    if req.command.is_empty() {
        return Err(invalid("command must be a non-empty argv array, e.g. [\"sh\", \"-c\", \"echo hi\"]"));
    }
    if req.command.len() > MAX_ARGS {
        return Err(invalid(format!("command has more than {MAX_ARGS} arguments")));
    }
    if req.command[0].is_empty() {
        return Err(invalid("command[0] (the program) is empty"));
    }
    if let Some(i) = req.command.iter().position(|a| a.contains('\0')) {
        return Err(invalid(format!("command[{i}] contains a NUL byte")));
    }
    validate_env(&req.env, "env")?;
    let cwd = req.cwd.clone().unwrap_or_else(|| WORKSPACE.to_string());
    if !cwd.starts_with('/') || cwd.contains('\0') {
        return Err(invalid(format!("cwd {cwd:?} must be an absolute path")));
    }
    let stdin = match (&req.stdin, &req.stdin_base64) {
        (Some(_), Some(_)) => return Err(invalid("give either stdin or stdin_base64, not both")),
        (Some(s), None) => s.clone().into_bytes(),
        (None, Some(b)) => B64.decode(b).map_err(|e| invalid(format!("stdin_base64 is not valid base64: {e}")))?,
        (None, None) => Vec::new(),
    };
    let plan_max_ms = plan.max_timeout_seconds.saturating_mul(1000);
    let max_timeout_ms = cfg.sandbox.max_timeout_ms.min(plan_max_ms);
    let timeout_ms = req.timeout_ms.unwrap_or(cfg.sandbox.default_timeout_ms.min(max_timeout_ms));
    if timeout_ms == 0 || timeout_ms > max_timeout_ms {
        let why = if plan_max_ms < cfg.sandbox.max_timeout_ms { " (the plan's max_timeout_seconds)" } else { "" };
        return Err(CoreError::LimitExceeded(format!(
            "timeout_ms = {timeout_ms} must be between 1 and {max_timeout_ms}{why}"
        )));
    }
    let max_output = req.max_output_bytes.unwrap_or(cfg.sandbox.default_max_output_bytes);
    if max_output > cfg.sandbox.max_output_bytes {
        return Err(CoreError::LimitExceeded(format!(
            "max_output_bytes = {max_output} exceeds the maximum {}",
            cfg.sandbox.max_output_bytes
        )));
    }
    let files = decode_files(&req.files)?;
    let root = req.user.unwrap_or_default() == RunAs::Root;
    let mut env = base_env(root);
    for (k, v) in sandbox_env.iter().chain(req.env.iter()) {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    Ok(ValidExec {
        params: ExecParams {
            argv: req.command.clone(),
            env,
            cwd,
            root,
            stdin,
            timeout: Some(Duration::from_millis(timeout_ms)),
            max_output,
        },
        files,
    })
}

fn decode_files(files: &[FileUpload]) -> Result<Vec<(String, Vec<u8>, u32)>> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if f.path.is_empty() || f.path.contains('\0') {
                return Err(invalid(format!("files[{i}].path is empty or contains NUL")));
            }
            let data = B64
                .decode(&f.content_base64)
                .map_err(|e| invalid(format!("files[{i}] ({}): content_base64 is not valid base64: {e}", f.path)))?;
            let mode = f.mode.unwrap_or(0o644);
            if mode > 0o7777 {
                return Err(invalid(format!("files[{i}] ({}): mode {mode:o} is not a permission mode", f.path)));
            }
            Ok((f.path.clone(), data, mode))
        })
        .collect()
}

/// Shapes a runtime outcome into the API result.
pub fn result(out: &ExecOutput, sandbox_id: &str, execution_id: &str) -> ExecResult {
    let (stdout, stdout_base64) = text(&out.stdout);
    let (stderr, stderr_base64) = text(&out.stderr);
    let r = &out.report;
    ExecResult {
        execution_id: execution_id.to_string(),
        sandbox_id: sandbox_id.to_string(),
        exit_code: r.code,
        signal: r.signal,
        stdout,
        stderr,
        stdout_base64,
        stderr_base64,
        stdout_truncated: r.stdout_truncated,
        stderr_truncated: r.stderr_truncated,
        stdout_bytes: r.stdout_total,
        stderr_bytes: r.stderr_total,
        timed_out: r.timed_out,
        oom_killed: out.oom_killed,
        duration_ms: if r.duration_us > 0 {
            r.duration_us as f64 / 1000.0
        } else {
            out.duration.as_secs_f64() * 1000.0
        },
        cpu_ms: r.cpu_us as f64 / 1000.0,
        peak_memory_bytes: r.max_rss_bytes,
        error: r.error.clone(),
        egress: None,
    }
}

/// Output as text; when it is not valid UTF-8, also the exact bytes in base64.
fn text(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), Some(B64.encode(bytes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanLimits {
        crate::tenancy::plans::builtin()["enterprise"].clone()
    }

    fn req(cmd: &[&str]) -> ExecRequest {
        ExecRequest { command: cmd.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn empty_command_is_refused() {
        let e = validate(&Config::default(), &req(&[]), &BTreeMap::new(), &plan()).unwrap_err();
        assert!(e.to_string().contains("non-empty argv"), "{e}");
    }

    #[test]
    fn env_layers_override_in_order() {
        let mut r = req(&["env"]);
        r.env.insert("A".into(), "req".into());
        let mut sb = BTreeMap::new();
        sb.insert("A".into(), "sandbox".into());
        sb.insert("B".into(), "sandbox".into());
        let v = validate(&Config::default(), &r, &sb, &plan()).unwrap();
        let get = |k: &str| v.params.env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone());
        assert_eq!(get("A").as_deref(), Some("req"));
        assert_eq!(get("B").as_deref(), Some("sandbox"));
        assert_eq!(get("HOME").as_deref(), Some("/workspace"));
        assert_eq!(v.params.env.iter().filter(|(k, _)| k == "A").count(), 1);
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        let cfg = Config::default();
        let mut r = req(&["x"]);
        r.env.insert("A=B".into(), "v".into());
        assert!(validate(&cfg, &r, &BTreeMap::new(), &plan()).unwrap_err().to_string().contains("A=B"));
        let mut r = req(&["x"]);
        r.stdin_base64 = Some("!!!".into());
        assert!(validate(&cfg, &r, &BTreeMap::new(), &plan()).unwrap_err().to_string().contains("stdin_base64"));
        let mut r = req(&["x"]);
        r.timeout_ms = Some(u64::MAX);
        assert!(validate(&cfg, &r, &BTreeMap::new(), &plan()).unwrap_err().to_string().contains("timeout_ms"));
        let mut r = req(&["x"]);
        r.cwd = Some("relative".into());
        assert!(validate(&cfg, &r, &BTreeMap::new(), &plan()).unwrap_err().to_string().contains("cwd"));
        let mut r = req(&["x"]);
        r.files.push(FileUpload { path: "a".into(), content_base64: "%%".into(), mode: None });
        assert!(validate(&cfg, &r, &BTreeMap::new(), &plan()).unwrap_err().to_string().contains("files[0]"));
    }

    #[test]
    fn non_utf8_output_keeps_exact_bytes() {
        let (s, b) = text(&[0x66, 0xff]);
        assert_eq!(s, "f\u{fffd}");
        assert_eq!(b.as_deref(), Some("Zv8="));
        assert_eq!(text(b"ok"), ("ok".to_string(), None));
    }
}
