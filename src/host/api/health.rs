//! `GET /api/health` and the host's readiness probe `GET /`.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub(crate) async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}
