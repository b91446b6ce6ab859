//! Simulated Azure Key Vault secrets: the 401 challenge, then `GET /secrets/{name}` with a
//! bearer token for `https://vault.azure.net`.
//! https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::SimState;
use crate::jwt;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/secrets/{name}", get(get_secret))
        .route("/secrets/{name}/", get(get_secret))
        .route("/secrets/{name}/versions", get(list_versions))
        .route("/secrets/{name}/{version}", get(get_secret_version))
}

fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    (status, Json(body)).into_response()
}

fn challenge(state: &SimState) -> Response {
    let mut response = kv_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
        None,
    );
    let value = format!(
        "Bearer authorization=\"https://login.microsoftonline.com/{}\", resource=\"https://vault.azure.net\"",
        state.seed.tenant_id
    );
    response
        .headers_mut()
        .insert("www-authenticate", HeaderValue::from_str(&value).expect("ascii"));
    response
}

/// A version's id: 32 hex digits, as Key Vault's, derived from the name and value (a rotation
/// makes a new one).
pub(crate) fn version_of(name: &str, value: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{name}\n{value}").as_bytes())
        .simple()
        .to_string()
}

/// `GET /secrets/{name}/versions`: every version kept, without values, each with its
/// `attributes.created` (Unix seconds): the seeded version at the seed's time, a rotated one at
/// its rotation. https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret-versions
async fn list_versions(State(state): State<Arc<SimState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return *refused;
    }
    let current = state.secrets.lock().unwrap().get(&name).cloned();
    let Some(current) = current else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!("A secret with (name/id) {name} was not found in this key vault."),
            None,
        );
    };
    let created = state.created.lock().unwrap().clone();
    let retired: Vec<String> = state
        .retired
        .lock()
        .unwrap()
        .keys()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .collect();
    let value: Vec<Value> = retired
        .into_iter()
        .chain(std::iter::once(version_of(&name, &current)))
        .map(|v| {
            let at = created.get(&(name.clone(), v.clone())).copied().unwrap_or(SEEDED_AT);
            json!({"id": format!("{}secrets/{name}/{v}", state.vault_uri()), "contentType": "text/plain",
                "attributes": {"enabled": true, "created": at, "updated": at, "recoveryLevel": "Recoverable+Purgeable"}})
        })
        .collect();
    Json(json!({"value": value, "nextLink": null})).into_response()
}

/// The managed identity's token for the vault, and the vault's RBAC grant (Key Vault Secrets
/// User: `secrets/getSecret/action` and `secrets/readMetadata/action`).
fn authorized(state: &SimState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(Box::new(challenge(state)));
    };
    let valid = state.keys.verify(token).filter(|claims| {
        let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
        jwt::is_current(claims)
            && matches!(aud, "https://vault.azure.net" | "cfa8b339-82a2-471a-a3c9-0fc0be7a4093")
            && claims.get("tid").and_then(Value::as_str) == Some(state.seed.tenant_id.as_str())
    });
    let Some(claims) = valid else {
        return Err(Box::new(kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10022: Invalid audience, issuer or signature.",
            None,
        )));
    };
    let is_mi = claims.get("oid").and_then(Value::as_str) == Some(state.seed.managed_identity.object_id.as_str());
    if !is_mi || !state.tenant().key_vault_access {
        return Err(Box::new(kv_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
            Some("ForbiddenByRbac"),
        )));
    }
    Ok(())
}

/// When a seeded secret's version was created (2026-01-01T00:00:00Z).
const SEEDED_AT: i64 = 1_767_225_600;

/// `GET /secrets/{name}/{version}`: that version, current or earlier; an unknown version is
/// `404 SecretNotFound`, as for an unknown name.
async fn get_secret_version(
    state: State<Arc<SimState>>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    read_secret(state, headers, name, Some(version)).await
}

async fn get_secret(state: State<Arc<SimState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    read_secret(state, headers, name, None).await
}

async fn read_secret(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    name: String,
    version: Option<String>,
) -> Response {
    if let Err(refused) = authorized(&state, &headers) {
        return *refused;
    }
    let current = state
        .secrets
        .lock()
        .unwrap()
        .get(&name)
        .cloned()
        .map(|v| (version_of(&name, &v), v));
    let found = match version.filter(|v| !v.is_empty()) {
        None => current,
        Some(v) => current.filter(|(c, _)| *c == v).or_else(|| {
            let retired = state.retired.lock().unwrap();
            retired.get(&(name.clone(), v.clone())).map(|value| (v, value.clone()))
        }),
    };
    let Some((version, value)) = found else {
        return kv_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!("A secret with (name/id) {name} was not found in this key vault."),
            None,
        );
    };
    Json(json!({
        "value": value,
        "id": format!("{}secrets/{name}/{version}", state.vault_uri()),
        "attributes": {"enabled": true, "created": 1767225600, "updated": 1767225600, "recoveryLevel": "Recoverable+Purgeable"},
        "tags": {},
    }))
    .into_response()
}
