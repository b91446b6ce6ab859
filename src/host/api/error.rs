//! `ApiError`: the only type that becomes an HTTP error response.
//!
//! A 4xx body tells the caller what it can fix; a 5xx body says only "internal error" and the
//! invocation id, and the cause goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::host::invocation::current_invocation_id;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No function serves this method and path.
    #[error("no function serves {method} {path}")]
    NotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0}")]
    BadRequest(String),
    /// The audit trail cannot be written or read: nothing was done.
    #[error("the audit trail is unavailable, so nothing was changed; try again later")]
    AuditUnavailable(#[source] crate::audit::AuditError),
    /// A service this call depends on (Key Vault, Graph) could not be reached: nothing was done.
    #[error("a service this call depends on is unavailable, so nothing was changed; try again later")]
    DependencyUnavailable(String),
    /// Entra's directory audit could not be read through Graph.
    #[error(
        "the Entra directory audit could not be read ({0}); the managed identity needs AuditLog.Read.All and Directory.Read.All"
    )]
    EntraAudit(String),
    /// A recovery refused by a rule or failed on a fault, with its documented code.
    #[error(transparent)]
    Recovery(crate::recovery::RecoveryError),
    /// A refused caller: 401 or 403 with a body that never says why.
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// A queue invocation that should run again: the host retries the message.
    #[error("{0}; the message will be retried")]
    Retry(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Auth(e) => e.status(),
            ApiError::AuditUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DependencyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::EntraAudit(_) => StatusCode::BAD_GATEWAY,
            ApiError::Recovery(e) => crate::host::answers::status_of(e.code),
            ApiError::Retry(_) | ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The documented error code callers branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Auth(_) => "unauthorized",
            ApiError::AuditUnavailable(_) => "audit_unavailable",
            ApiError::DependencyUnavailable(_) => "dependency_unavailable",
            ApiError::EntraAudit(_) => "entra_audit_unavailable",
            ApiError::Recovery(e) => e.code_str(),
            ApiError::Retry(_) => "retry",
            ApiError::Unexpected(_) => "internal_error",
        }
    }

    fn public_body(&self) -> serde_json::Value {
        let message = match self {
            ApiError::Unexpected(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        json!({"error": {"code": self.code(), "message": message, "invocationId": current_invocation_id()}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Auth(e) = self {
            return e.into_response();
        }
        let status = self.status();
        match &self {
            ApiError::Unexpected(e) => tracing::error!(error = %format!("{e:#}"), "invocation failed"),
            ApiError::AuditUnavailable(e) => tracing::error!(error = %e, "audit trail unavailable"),
            ApiError::DependencyUnavailable(e) => tracing::error!(error = %e, "dependency unavailable"),
            _ => {}
        }
        let retry_after = match &self {
            ApiError::Recovery(e) => e.retry_after,
            _ => None,
        };
        let mut response = (status, Json(self.public_body())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}
