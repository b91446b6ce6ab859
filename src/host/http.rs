//! HTTP-triggered functions. With `enableForwardingHttpRequest` the host forwards the original
//! request (`/api/<route>`), so these are plain axum handlers.

use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};

use super::error::ApiError;

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}

/// `POST /api/users/{user}/tap`
pub async fn tap(Path(_user): Path<String>) -> Result<Json<Value>, ApiError> {
    Err(ApiError::NotImplemented {
        function: "tap",
        issue: "issue #4",
    })
}

/// `POST /api/users/{user}/mfa/reset`
pub async fn reset(Path(_user): Path<String>) -> Result<Json<Value>, ApiError> {
    Err(ApiError::NotImplemented {
        function: "reset",
        issue: "issue #5",
    })
}

/// `GET /api/audit`
pub async fn audit() -> Result<Json<Value>, ApiError> {
    Err(ApiError::NotImplemented {
        function: "audit",
        issue: "issue #3",
    })
}

/// `POST /api/requests` and `GET /api/requests/{id}`
pub async fn requests() -> Result<Json<Value>, ApiError> {
    Err(ApiError::NotImplemented {
        function: "requests",
        issue: "issue #6",
    })
}
