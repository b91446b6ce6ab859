//! Simulated ticket systems and a callback receiver, recording what the intake writes back
//! (`GET /sim/itsm`).
//!
//! - ServiceNow Table API: `PATCH /servicenow/api/now/table/{table}/{sys_id}` with HTTP Basic
//!   (user `mfa-recovery`, password = Key Vault secret `servicenow-password`); answers
//!   `{"result": {...}}` like the real API.
//! - Jira Service Management: `POST /jira/rest/servicedeskapi/request/{key}/comment` with HTTP
//!   Basic (`mfa-recovery@contoso.test`, API token = secret `jira-api-token`); the body must be
//!   `{"body": "...", "public": bool}`.
//! - Callbacks: `POST /callbacks/{anything}` signed with Standard Webhooks (secret
//!   `callback-signing`); a bad or stale signature is a 401.

use std::sync::Arc;

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::{Value, json};

use crate::SimState;
use crate::graph::now_rfc3339;

pub const SERVICENOW_USER: &str = "mfa-recovery";
pub const JIRA_USER: &str = "mfa-recovery@contoso.test";

/// One write-back the simulator received.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItsmItem {
    /// `servicenow`, `jira` or `callback`.
    pub system: String,
    pub method: String,
    pub path: String,
    pub body: Value,
    pub at: String,
}

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/servicenow/api/now/table/{table}/{sys_id}", patch(servicenow))
        .route("/jira/rest/servicedeskapi/request/{key}/comment", post(jira))
        .route("/callbacks/{*rest}", post(callback))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

/// HTTP Basic `user:<secret value>`, compared with the vault's current value.
fn basic_ok(state: &SimState, headers: &HeaderMap, user: &str, secret: &str) -> bool {
    let Some(expected) = state.secrets.lock().unwrap().get(secret).cloned() else {
        return false;
    };
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| B64.decode(b).ok())
        .is_some_and(|raw| raw == format!("{user}:{expected}").as_bytes())
}

fn record(state: &SimState, system: &str, method: &str, path: String, body: Value) {
    state.itsm.lock().unwrap().push(ItsmItem {
        system: system.into(),
        method: method.into(),
        path,
        body,
        at: now_rfc3339(),
    });
}

async fn servicenow(
    State(state): State<Arc<SimState>>,
    Path((table, sys_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !basic_ok(&state, &headers, SERVICENOW_USER, "servicenow-password") {
        return error(StatusCode::UNAUTHORIZED, "User Not Authenticated");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Exception while reading request");
    };
    if !body.is_object() {
        return error(StatusCode::BAD_REQUEST, "the body must be a JSON object");
    }
    record(
        &state,
        "servicenow",
        "PATCH",
        format!("/api/now/table/{table}/{sys_id}"),
        body.clone(),
    );
    let mut result = body;
    result["sys_id"] = json!(sys_id);
    Json(json!({"result": result})).into_response()
}

async fn jira(
    State(state): State<Arc<SimState>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !basic_ok(&state, &headers, JIRA_USER, "jira-api-token") {
        return error(
            StatusCode::UNAUTHORIZED,
            "Client must be authenticated to access this resource.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Unexpected character");
    };
    if !body["body"].is_string() || !body["public"].is_boolean() {
        return error(
            StatusCode::BAD_REQUEST,
            "body (string) and public (boolean) are required",
        );
    }
    record(
        &state,
        "jira",
        "POST",
        format!("/rest/servicedeskapi/request/{key}/comment"),
        body.clone(),
    );
    (
        StatusCode::CREATED,
        Json(json!({"id": uuid::Uuid::new_v4().to_string(), "body": body["body"], "public": body["public"]})),
    )
        .into_response()
}

async fn callback(
    State(state): State<Arc<SimState>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, ts, signatures) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (time::OffsetDateTime::now_utc().unix_timestamp() - t).abs() <= 300);
    let secret = state
        .secrets
        .lock()
        .unwrap()
        .get("callback-signing")
        .cloned()
        .unwrap_or_default();
    let key_bytes = B64
        .decode(secret.strip_prefix("whsec_").unwrap_or(&secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key_bytes);
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", &body].concat();
    let valid = signatures.split_whitespace().any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| B64.decode(b).ok())
            .is_some_and(|sig| hmac::verify(&key, &signed, &sig).is_ok())
    });
    if id.is_empty() || !fresh || !valid {
        return error(StatusCode::UNAUTHORIZED, "bad webhook signature");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "not JSON");
    };
    record(
        &state,
        "callback",
        "POST",
        format!("/callbacks/{rest}"),
        json!({"webhookId": id, "payload": body}),
    );
    StatusCode::NO_CONTENT.into_response()
}
