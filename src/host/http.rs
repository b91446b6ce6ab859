//! HTTP-triggered functions. With `enableForwardingHttpRequest` the host forwards the original
//! request (`/api/<route>`), so these are plain axum handlers.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::auth::Role;

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}

/// `POST /api/users/{user}/tap`
pub async fn tap(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(_user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.auth.authorize(&headers, Role::Tap).await?;
    Err(ApiError::NotImplemented {
        function: "tap",
        issue: "issue #4",
    })
}

/// `POST /api/users/{user}/mfa/reset`
pub async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(_user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.auth.authorize(&headers, Role::Reset).await?;
    Err(ApiError::NotImplemented {
        function: "reset",
        issue: "issue #5",
    })
}

/// `GET /api/audit`
pub async fn audit(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.auth.authorize(&headers, Role::AuditRead).await?;
    Err(ApiError::NotImplemented {
        function: "audit",
        issue: "issue #3",
    })
}

/// `POST /api/requests` and `GET /api/requests/{id}`
pub async fn requests(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    state.auth.authorize(&headers, Role::Request).await?;
    Err(ApiError::NotImplemented {
        function: "requests",
        issue: "issue #6",
    })
}
