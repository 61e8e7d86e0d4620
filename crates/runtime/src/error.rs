//! Errors of the sandbox runtime.

use std::time::Duration;

/// What can go wrong creating or using a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the sandbox runtime is not available on this host: {0}")]
    Unavailable(String),
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("sandbox setup did not finish within {0:?}")]
    SetupTimeout(Duration),
    #[error("the sandbox is gone (its init exited)")]
    SandboxGone,
    #[error("no free sandbox slot: {0} sandboxes are running")]
    Capacity(usize),
    #[error("file not found: {0}")]
    FileNotFound(String),
    #[error("path not allowed: {0}")]
    PathNotAllowed(String),
    #[error("{0}")]
    FileError(String),
    #[error("file too large: {0}")]
    FileTooLarge(String),
    #[error("no space left in the sandbox: {0}")]
    NoSpace(String),
    #[error("zygote: {0}")]
    Zygote(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
