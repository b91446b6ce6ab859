//! `GET /api/health` and the host's readiness probe `GET /`.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/health`: liveness, unauthenticated; reveals nothing but the version.
pub async fn health(axum::extract::State(state): axum::extract::State<crate::host::AppState>) -> Json<Value> {
    let export = match &state.exporter {
        None => json!({"state": "off"}),
        Some(e) => match e.state().await {
            Ok(Some(s)) => json!(s),
            Ok(None) => json!({"state": "pending"}),
            Err(_) => json!({"state": "unknown"}),
        },
    };
    Json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION"), "auditExport": export}))
}

/// `GET /api/doctor`: every read the service depends on, run with the function app's identity
/// (`doctor::run`), per feature. Needs `Audit.Read`; writes nothing.
pub(crate) async fn doctor(
    axum::extract::State(state): axum::extract::State<crate::host::AppState>,
    _who: super::caller::Authorized<super::caller::Diagnose>,
) -> Json<Value> {
    Json(json!(state.doctor.report(&state.graph, &state.settings).await))
}

/// `GET /`: the host polls this until the handler answers (any status means ready).
pub(crate) async fn ready() -> Json<Value> {
    Json(json!({"status": "ready"}))
}
