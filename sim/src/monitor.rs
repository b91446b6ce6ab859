//! The Azure Monitor Logs Ingestion API, as a data collection rule's `logsIngestion` endpoint
//! answers it. https://learn.microsoft.com/azure/azure-monitor/logs/logs-ingestion-api-overview
//!
//! - `POST /dataCollectionRules/{immutableId}/streams/{stream}?api-version=2023-01-01`, a bearer
//!   token for `https://monitor.azure.com`, `Content-Type: application/json`, a JSON array.
//! - `204` when accepted. `401` without a valid token; `403` when the identity lacks
//!   Monitoring Metrics Publisher on the rule (`/sim/monitoring` turns it off); `413` over 1 MB
//!   (the limit is on the body "both compressed and uncompressed",
//!   https://learn.microsoft.com/azure/azure-monitor/service-limits#logs-ingestion-api); `400`
//!   for a body that is not a JSON array (the docs say the body must be one; a bare object was
//!   reported accepted and lost, azure-docs #112669: failing is the safe choice); `404` for an
//!   unknown rule or a stream not named `Custom-…`. 429 and 5xx come from `/sim/faults`.
//! - Log Analytics keeps what it is sent, duplicates included: `/sim/ingested` lists every row.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::SimState;
use crate::jwt;

/// The rule's immutable id the simulated workspace answers for.
pub const RULE_ID: &str = "dcr-00000000000000000000000000000001";
/// At most this many bytes per call.
const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/dataCollectionRules/{rule}/streams/{stream}", post(ingest))
        .route("/sim/ingested", get(ingested).delete(forget))
        .route("/sim/monitoring", post(set_publisher))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

async fn ingest(
    State(state): State<Arc<SimState>>,
    Path((rule, stream)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let claims = token.and_then(|t| state.keys.verify(t)).filter(|c| {
        jwt::is_current(c)
            && c.get("aud").and_then(Value::as_str) == Some("https://monitor.azure.com")
            && c.get("tid").and_then(Value::as_str) == Some(state.seed.tenant_id.as_str())
    });
    let Some(claims) = claims else {
        return error(
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            "The bearer token is missing, expired or not for https://monitor.azure.com.",
        );
    };
    let is_mi = claims.get("oid").and_then(Value::as_str) == Some(state.seed.managed_identity.object_id.as_str());
    if !is_mi || !state.tenant().monitoring_publisher {
        return error(
            StatusCode::FORBIDDEN,
            "OperationFailed",
            "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id",
        );
    }
    if rule != RULE_ID || !stream.starts_with("Custom-") {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Data collection rule or stream not found.",
        );
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ContentLengthLimitExceeded",
            "Maximum allowed content length: 1048576 bytes (1 MB).",
        );
    }
    let Ok(Value::Array(rows)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidPayload",
            "The request body must be a JSON array of objects.",
        );
    };
    let mut tenant = state.tenant();
    tenant.ingested.extend(rows.into_iter().map(|r| (stream.clone(), r)));
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /sim/ingested`: every row accepted, `{"value": [{"stream", "row"}]}`.
async fn ingested(State(state): State<Arc<SimState>>) -> Response {
    let rows: Vec<Value> = state
        .tenant()
        .ingested
        .iter()
        .map(|(stream, row)| json!({"stream": stream, "row": row}))
        .collect();
    Json(json!({"value": rows})).into_response()
}

async fn forget(State(state): State<Arc<SimState>>) -> Response {
    state.tenant().ingested.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sim/monitoring {"publisher": false}`: take Monitoring Metrics Publisher away.
async fn set_publisher(State(state): State<Arc<SimState>>, Json(body): Json<Value>) -> Response {
    state.tenant().monitoring_publisher = body["publisher"].as_bool().unwrap_or(true);
    StatusCode::NO_CONTENT.into_response()
}
