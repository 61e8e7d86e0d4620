//! The API's one error type: every failure becomes a status and a JSON body
//! `{"error": {"code": …, "message": …}}`. 5xx bodies hide internals; the
//! details go to the log.

use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use superserver_core::CoreError;
use superserver_wire::{ErrorBody, ErrorResponse};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Fields beyond code and message (quota figures, the feature, the wait).
    pub details: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: ErrorBody::default() }
    }

    fn with(mut self, f: impl FnOnce(&mut ErrorBody)) -> Self {
        f(&mut self.details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorBody { code: self.code.to_string(), message: self.message.clone(), ..self.details.clone() },
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            CoreError::InvalidRequest(_) => Self::new(S::BAD_REQUEST, "invalid_request", msg),
            CoreError::LimitExceeded(_) => Self::new(S::UNPROCESSABLE_ENTITY, "limit_exceeded", msg),
            CoreError::SandboxNotFound(_) => Self::new(S::NOT_FOUND, "sandbox_not_found", msg),
            CoreError::SandboxNotRunning { .. } => Self::new(S::CONFLICT, "sandbox_not_running", msg),
            CoreError::FileNotFound(_) => Self::new(S::NOT_FOUND, "file_not_found", msg),
            CoreError::PathNotAllowed(_) => Self::new(S::FORBIDDEN, "path_not_allowed", msg),
            CoreError::FileTooLarge(_) => Self::new(S::PAYLOAD_TOO_LARGE, "file_too_large", msg),
            CoreError::NoSpace(_) => Self::new(S::INSUFFICIENT_STORAGE, "no_space", msg),
            CoreError::Capacity(_) => Self::new(S::SERVICE_UNAVAILABLE, "capacity", msg),
            CoreError::Unavailable(_) => Self::new(S::SERVICE_UNAVAILABLE, "unavailable", msg),
            CoreError::ShuttingDown => Self::new(S::SERVICE_UNAVAILABLE, "shutting_down", msg),
            CoreError::Unauthenticated(_) => Self::new(S::UNAUTHORIZED, "unauthorized", msg),
            CoreError::Forbidden(_) => Self::new(S::FORBIDDEN, "forbidden", msg),
            CoreError::FeatureNotInPlan { feature, .. } => {
                Self::new(S::FORBIDDEN, "feature_not_in_plan", msg).with(|d| d.feature = Some(feature))
            }
            CoreError::QuotaExceeded { quota, limit, used, resets_at_ms } => {
                let resets = resets_at_ms.map(superserver_core::tenancy::plans::rfc3339);
                let msg = match &resets {
                    Some(r) => format!("{msg}; it resets at {r}"),
                    None => format!("{msg}; end a running sandbox first"),
                };
                Self::new(S::TOO_MANY_REQUESTS, "quota_exceeded", msg).with(|d| {
                    d.quota = Some(quota);
                    d.limit = Some(limit);
                    d.used = Some(used);
                    d.resets_at = resets;
                    d.resets_at_ms = resets_at_ms;
                })
            }
            CoreError::RateLimited { retry_after_seconds } => Self::new(S::TOO_MANY_REQUESTS, "rate_limited", msg)
                .with(|d| d.retry_after_seconds = Some(retry_after_seconds)),
            CoreError::TenantNotFound(_) => Self::new(S::NOT_FOUND, "tenant_not_found", msg),
            CoreError::KeyNotFound(_) => Self::new(S::NOT_FOUND, "key_not_found", msg),
            CoreError::Conflict(_) => Self::new(S::CONFLICT, "conflict", msg),
            CoreError::ServiceNotFound(_) => Self::new(S::NOT_FOUND, "service_not_found", msg),
            CoreError::AlertNotFound(_) => Self::new(S::NOT_FOUND, "alert_not_found", msg),
            CoreError::ApprovalNotFound(_) => Self::new(S::NOT_FOUND, "approval_not_found", msg),
            CoreError::SecretNotFound(_) => Self::new(S::NOT_FOUND, "secret_not_found", msg),
            CoreError::SilenceNotFound(_) => Self::new(S::NOT_FOUND, "silence_not_found", msg),
            CoreError::SeriesNotFound(_) => Self::new(S::NOT_FOUND, "series_not_found", msg),
            CoreError::TenantSuspended(_) => Self::new(S::FORBIDDEN, "tenant_suspended", msg),
            CoreError::Config(_) | CoreError::Internal(_) => {
                static LOG: superserver_core::RateLimit =
                    superserver_core::RateLimit::new(std::time::Duration::from_secs(10), 20);
                if let Some(suppressed) = LOG.check() {
                    tracing::error!(error = %msg, suppressed, "internal error");
                }
                Self::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error; the server log has the details")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(b) => b.into(),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ),
            other => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {}", other.body_text()))
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than the server accepts",
            )
        } else {
            Self::new(r.status(), "invalid_body", r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query string: {}", r.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        let h = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = self.details.retry_after_seconds {
            h.insert(axum::http::header::RETRY_AFTER, s.into());
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
