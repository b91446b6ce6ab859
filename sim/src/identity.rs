//! The managed identity endpoint (`IDENTITY_ENDPOINT`) and the token issuer's metadata (JWKS
//! and OpenID configuration under `AUTH_AUTHORITY`).
//!
//! Managed identity protocol: https://learn.microsoft.com/azure/app-service/overview-managed-identity
//! (`GET ?resource=&api-version=2019-08-01[&client_id=]` with `X-IDENTITY-HEADER`; `expires_on`
//! is epoch seconds as a string).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::SimState;
use crate::jwt;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/msi/token", get(token))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_v2))
        .route("/{tenant}/.well-known/openid-configuration", get(openid_v1))
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"statusCode": status.as_u16(), "message": message}))).into_response()
}

/// `GET /msi/token?resource=…&api-version=2019-08-01`
async fn token(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let header = headers.get("x-identity-header").and_then(|v| v.to_str().ok());
    if header != Some(state.identity_header.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized request. The X-IDENTITY-HEADER is missing or wrong.",
        );
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return error(StatusCode::BAD_REQUEST, "Unsupported api-version. Use 2019-08-01.");
    }
    let Some(resource) = q.get("resource").filter(|r| !r.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "The resource parameter is required.");
    };
    let mi = &state.seed.managed_identity;
    let wrong_identity = q
        .get("client_id")
        .is_some_and(|c| !c.eq_ignore_ascii_case(&mi.client_id))
        || q.get("object_id")
            .or(q.get("principal_id"))
            .is_some_and(|o| !o.eq_ignore_ascii_case(&mi.object_id))
        || q.contains_key("mi_res_id");
    if wrong_identity {
        return error(StatusCode::BAD_REQUEST, "Unable to load the proper Managed Identity.");
    }
    let audience = resource.trim_end_matches('/').to_string();
    let roles: Vec<String> = if audience == "https://graph.microsoft.com" {
        state.tenant().graph_permissions.clone()
    } else {
        Vec::new()
    };
    let now = jwt::now();
    let expires_on = now + 24 * 3600;
    let tid = &state.seed.tenant_id;
    let claims = json!({
        "aud": audience,
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": now, "nbf": now, "exp": expires_on,
        "tid": tid, "oid": mi.object_id, "sub": mi.object_id,
        "appid": mi.client_id, "appidacr": "2", "idtyp": "app", "ver": "1.0",
        "roles": roles,
        "xms_mirid": "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-mfa-recovery/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mfa-recovery",
    });
    let access_token = state.keys.sign(&claims);
    Json(json!({
        "access_token": access_token,
        "expires_on": expires_on.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": mi.client_id,
    }))
    .into_response()
}

async fn jwks(State(state): State<Arc<SimState>>) -> Json<serde_json::Value> {
    Json(state.keys.jwks())
}

async fn openid_v2(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Json<serde_json::Value> {
    let base = &state.base_url;
    Json(json!({
        "issuer": format!("{base}/{tenant}/v2.0"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "NA",
    }))
}

async fn openid_v1(State(state): State<Arc<SimState>>, Path(tenant): Path<String>) -> Json<serde_json::Value> {
    let base = &state.base_url;
    Json(json!({
        "issuer": format!("https://sts.windows.net/{tenant}/"),
        "jwks_uri": format!("{base}/{tenant}/discovery/keys"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}
