//! Errors of the egress proxy.

/// What can go wrong setting up or running the proxy.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A policy rule that cannot be compiled; the message names it.
    #[error("invalid egress rule: {0}")]
    InvalidRule(String),
    /// Bad proxy configuration; the message names the setting.
    #[error("egress configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = EgressError> = std::result::Result<T, E>;
