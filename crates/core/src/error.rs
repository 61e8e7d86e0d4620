//! Errors of the core operations. Transports map each variant to their own
//! form (an HTTP status, a CLI exit code).

use superserver_runtime::RuntimeError;
use superserver_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("sandbox {0} not found")]
    SandboxNotFound(String),
    #[error("sandbox {id} is {state}, not running")]
    SandboxNotRunning { id: String, state: String },
    #[error("{0}")]
    FileNotFound(String),
    #[error("{0}")]
    PathNotAllowed(String),
    #[error("{0}")]
    FileTooLarge(String),
    #[error("{0}")]
    NoSpace(String),
    #[error("the server is at capacity: {0}")]
    Capacity(String),
    #[error("sandboxes are unavailable: {0}")]
    Unavailable(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    /// No usable credentials: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed: 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{feature} is not included in the `{plan}` plan")]
    FeatureNotInPlan { feature: String, plan: String },
    #[error("the {quota} quota is used up ({used} of {limit})")]
    QuotaExceeded { quota: String, limit: u64, used: f64, resets_at_ms: Option<i64> },
    #[error("too many requests for this API key; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    #[error("key {0} not found")]
    KeyNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("alert {0} not found")]
    AlertNotFound(String),
    #[error("approval {0} not found")]
    ApprovalNotFound(String),
    /// No such secret in the caller's tenant: 404.
    #[error("secret {0} not found; `superserver secrets ls` lists them")]
    SecretNotFound(String),
    #[error("silence {0} not found")]
    SilenceNotFound(String),
    #[error("service {0} not found")]
    ServiceNotFound(String),
    /// No such metric series, or not the caller's: 404.
    #[error("metric series {0:?} not found; `GET /v1/metrics/series` lists them")]
    SeriesNotFound(String),
    /// The caller's tenant is suspended: 403.
    #[error("tenant {0} is suspended; ask an admin to resume it")]
    TenantSuspended(String),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl From<RuntimeError> for CoreError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::InvalidImage(m) | RuntimeError::InvalidRequest(m) => Self::InvalidRequest(m),
            RuntimeError::FileNotFound(m) => Self::FileNotFound(m),
            RuntimeError::PathNotAllowed(m) => Self::PathNotAllowed(m),
            RuntimeError::FileTooLarge(m) => Self::FileTooLarge(m),
            RuntimeError::NoSpace(m) => Self::NoSpace(m),
            RuntimeError::FileError(m) => Self::InvalidRequest(m),
            RuntimeError::Capacity(n) => Self::Capacity(format!("{n} sandboxes are alive; try again later")),
            RuntimeError::Unavailable(m) => Self::Unavailable(m),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::LastAdminKey => {
                Self::Conflict("this is the last working admin key: create another admin key before revoking it".into())
            }
            e => Self::Internal(format!("store: {e}")),
        }
    }
}
