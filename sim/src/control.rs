//! Control routes under `/sim/` for tests and demos: caller tokens, the outbox, faults, reset,
//! and read-only views of state that Graph does not expose (issued passes, revoked sessions).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::methods::Kind;
use crate::{SimState, jwt};

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/sim/info", get(info_route))
        .route("/sim/token", post(token))
        .route("/sim/outbox", get(outbox).delete(clear_outbox))
        .route("/sim/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/sim/reset", post(reset))
        .route("/sim/requests", get(requests).delete(clear_requests))
        .route("/sim/latency", post(crate::cost::set_latency))
        .route("/sim/cost", get(crate::cost::cost_route))
        .route("/sim/scale", post(crate::cost::scale))
        .route("/sim/taps", get(taps))
        .route("/sim/itsm", get(itsm_items))
        .route("/sim/directory-audits", post(add_directory_audit))
        .route("/sim/risky-users", post(set_risk))
        .route("/sim/licenses", post(set_licenses))
        .route("/sim/report", post(report_knobs).delete(clear_report_knobs))
        .route("/sim/users/{user}", get(user_view))
        .route("/sim/keys/rotate", post(rotate_keys))
        .route("/sim/secrets/{name}/rotate", post(rotate_secret))
}

/// What `POST /sim/token` accepts. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenRequest {
    /// App roles (`Recovery.Tap`, ...) or, with a Graph audience, Graph permissions.
    pub roles: Vec<String>,
    /// Defaults to the API's `AUTH_AUDIENCE`.
    pub audience: Option<String>,
    /// Defaults to the simulated tenant.
    pub tenant_id: Option<String>,
    /// Calling application's client id.
    pub app_id: Option<String>,
    /// Caller's object id (service principal or user).
    pub object_id: Option<String>,
    /// A user caller's UPN: makes a delegated (user) token.
    pub upn: Option<String>,
    /// A delegated token's `scp` (space-separated scopes). Entra always sets it on delegated
    /// tokens: default `user_impersonation`, the API's exposed scope; `""` leaves it out (to test
    /// that such a token is refused).
    pub scope: Option<String>,
    pub name: Option<String>,
    /// `1` (issuer `https://sts.windows.net/{tid}/`) or `2` (issuer `{authority}/{tid}/v2.0`).
    pub version: Option<u8>,
    /// Lifetime in seconds from now (negative for an expired token). Default 3600.
    pub expires_in: Option<i64>,
    /// `nbf` offset in seconds from now (positive for a token not valid yet). Default 0.
    pub not_before: Option<i64>,
}

/// Sign a caller token with the tenant's current key.
pub fn issue(state: &SimState, r: &TokenRequest) -> String {
    let now = jwt::now();
    let tid = r.tenant_id.clone().unwrap_or_else(|| state.seed.tenant_id.clone());
    let version = r.version.unwrap_or(2);
    let app_id = r
        .app_id
        .clone()
        .unwrap_or_else(|| "7a1d0b9e-3c4f-4e8a-9b2d-5f6e7a8b9c0d".into());
    let oid = r
        .object_id
        .clone()
        .unwrap_or_else(|| "9e8d7c6b-5a49-4382-8170-6f5e4d3c2b1a".into());
    let mut claims = json!({
        "aud": r.audience.clone().unwrap_or_else(|| state.seed.api.audience.clone()),
        "iss": if version == 1 { format!("https://sts.windows.net/{tid}/") } else { format!("{}/{tid}/v2.0", state.base_url) },
        "iat": now,
        "nbf": now + r.not_before.unwrap_or(0),
        "exp": now + r.expires_in.unwrap_or(3600),
        "tid": tid,
        "oid": oid,
        "sub": oid,
        "roles": r.roles,
        "ver": if version == 1 { "1.0" } else { "2.0" },
    });
    if version == 1 {
        claims["appid"] = json!(app_id);
    } else {
        claims["azp"] = json!(app_id);
    }
    match &r.upn {
        Some(upn) => {
            claims["idtyp"] = json!("user");
            match r.scope.as_deref() {
                Some("") => {}
                Some(scp) => claims["scp"] = json!(scp),
                None => claims["scp"] = json!("user_impersonation"),
            }
            claims["upn"] = json!(upn);
            claims["preferred_username"] = json!(upn);
            claims["name"] = json!(r.name.clone().unwrap_or_else(|| upn.clone()));
        }
        None => {
            claims["idtyp"] = json!("app");
            if let Some(name) = &r.name {
                claims["app_displayname"] = json!(name);
            }
        }
    }
    state.keys.sign(&claims)
}

pub fn info(state: &SimState) -> Value {
    let base = &state.base_url;
    json!({
        "tenantId": state.seed.tenant_id,
        "audience": state.seed.api.audience,
        "graphEndpoint": base,
        "identityEndpoint": format!("{base}/msi/token"),
        "identityHeader": state.identity_header,
        "managedIdentityClientId": state.seed.managed_identity.client_id,
        "authority": base,
        "jwksUri": format!("{base}/{}/discovery/v2.0/keys", state.seed.tenant_id),
        "keyVaultUri": state.vault_uri(),
        "acsEndpoint": format!("{base}/acs"),
        "twilioEndpoint": format!("{base}/twilio"),
    })
}

async fn info_route(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(info(&state))
}

async fn token(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let request: TokenRequest = if body.is_empty() {
        TokenRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
        }
    };
    let token = issue(&state, &request);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": request.expires_in.unwrap_or(3600)}))
        .into_response()
}

async fn outbox(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"value": *state.outbox.lock().unwrap()}))
}

async fn clear_outbox(State(state): State<Arc<SimState>>) -> StatusCode {
    state.outbox.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

async fn list_faults(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"value": *state.faults.lock().unwrap()}))
}

/// Accepts one fault or `{"value": [...]}`.
async fn add_fault(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let parsed: Result<Vec<Fault>, _> = serde_json::from_slice::<Value>(&body).and_then(|v| match v.get("value") {
        Some(list) => serde_json::from_value(list.clone()),
        None => serde_json::from_value(v).map(|f| vec![f]),
    });
    let faults = match parsed {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"error": e.to_string()}))).into_response(),
    };
    let mut ids = Vec::new();
    let mut store = state.faults.lock().unwrap();
    for mut f in faults {
        f.id = uuid::Uuid::new_v4().to_string();
        ids.push(f.id.clone());
        store.push(f);
    }
    (StatusCode::CREATED, Json(json!({"ids": ids}))).into_response()
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> StatusCode {
    state.faults.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(state): State<Arc<SimState>>) -> Response {
    match state.reset() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e}))).into_response(),
    }
}

async fn requests(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"value": *state.requests.lock().unwrap()}))
}

async fn clear_requests(State(state): State<Arc<SimState>>) -> StatusCode {
    state.requests.lock().unwrap().clear();
    StatusCode::NO_CONTENT
}

/// Passes currently held by users, with their values: test-only, so a test can look for a pass
/// in logs, responses and records where it must never appear.
async fn taps(State(state): State<Arc<SimState>>) -> Json<Value> {
    let tenant = state.tenant();
    let list: Vec<Value> = tenant
        .users
        .iter()
        .flat_map(|u| {
            u.methods
                .iter()
                .filter(|m| m.kind == Kind::TemporaryAccessPass)
                .map(move |m| {
                    json!({"userId": u.id, "userPrincipalName": u.upn, "methodId": m.id,
                    "temporaryAccessPass": m.secret, "lifetimeInMinutes": m.props.get("lifetimeInMinutes"),
                    "isUsableOnce": m.props.get("isUsableOnce"), "startDateTime": m.props.get("startDateTime")})
                })
        })
        .collect();
    Json(json!({"value": list}))
}

async fn user_view(State(state): State<Arc<SimState>>, Path(key): Path<String>) -> Response {
    let tenant = state.tenant();
    let Some(user) = tenant.user(&key) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such user"}))).into_response();
    };
    Json(json!({
        "id": user.id, "userPrincipalName": user.upn, "defaultMethod": user.default_method,
        "sessionsRevokedAt": user.sessions_revoked_at,
        "methods": user.methods.iter().map(|m| json!({"type": m.kind.seed_name(), "id": m.id, "phoneType": m.phone_type()})).collect::<Vec<_>>(),
        "methodCounts": crate::state::method_counts(user),
    }))
    .into_response()
}

async fn rotate_keys(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(json!({"kid": state.keys.rotate()}))
}

async fn rotate_secret(State(state): State<Arc<SimState>>, Path(name): Path<String>) -> Response {
    let mut secrets = state.secrets.lock().unwrap();
    let Some(current) = secrets.get(&name) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such secret"}))).into_response();
    };
    let hex = current.len() == 64 && current.bytes().all(|b| b.is_ascii_hexdigit());
    let next = crate::generate_secret(if hex { Some("hex") } else { None });
    let version = crate::keyvault::version_of(&name, current);
    let old = current.clone();
    state.retired.lock().unwrap().insert((name.clone(), version), old);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    state
        .created
        .lock()
        .unwrap()
        .insert((name.clone(), crate::keyvault::version_of(&name, &next)), at);
    secrets.insert(name, next);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sim/directory-audits`: log a past change about a user, `{"user", "activity",
/// "service"?, "reason"?, "modifiedProperties"?, "daysAgo"}` (the stale-address check reads it).
async fn add_directory_audit(State(state): State<Arc<SimState>>, Json(body): Json<Value>) -> Response {
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    let modified: Vec<String> = body["modifiedProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let modified: Vec<&str> = modified.iter().map(String::as_str).collect();
    let service = body["service"].as_str().unwrap_or("Core Directory");
    let done = state.tenant().past_audit_event(
        &text("user"),
        &text("activity"),
        service,
        &text("reason"),
        &modified,
        body["daysAgo"].as_i64().unwrap_or(0),
    );
    match done {
        Some(()) => StatusCode::NO_CONTENT.into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no such user"}))).into_response(),
    }
}

/// `POST /sim/risky-users`: `{user, riskLevel?, riskState?}` sets Identity Protection's rating of
/// a user (id or UPN); `{user, riskLevel: null}` removes the record (Graph then answers 404).
async fn set_risk(State(state): State<Arc<SimState>>, Json(body): Json<Value>) -> Response {
    let mut tenant = state.tenant();
    let Some(idx) = tenant.user_index(body["user"].as_str().unwrap_or_default()) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such user"}))).into_response();
    };
    tenant.users[idx].risk = if body.get("riskLevel").is_some_and(Value::is_null) {
        None
    } else {
        Some(json!({"riskLevel": body["riskLevel"].as_str().unwrap_or("none"),
            "riskState": body["riskState"].as_str().unwrap_or("atRisk")}))
    };
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sim/licenses`: `{entraIdP1?: bool, entraIdP2?: bool}`: whether the tenant holds Entra
/// ID P1 and P2 (at least one of the two given).
async fn set_licenses(State(state): State<Arc<SimState>>, Json(body): Json<Value>) -> Response {
    let (p1, p2) = (body["entraIdP1"].as_bool(), body["entraIdP2"].as_bool());
    if p1.is_none() && p2.is_none() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "entraIdP1 or entraIdP2 (a boolean) is required"})),
        )
            .into_response();
    }
    let mut tenant = state.tenant();
    if let Some(p1) = p1 {
        tenant.entra_id_p1 = p1;
    }
    if let Some(p2) = p2 {
        tenant.entra_id_p2 = p2;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /sim/itsm`: every write-back received (ServiceNow, Jira, callbacks).
async fn itsm_items(State(state): State<Arc<SimState>>) -> Json<Value> {
    Json(serde_json::json!({"value": *state.itsm.lock().unwrap()}))
}

/// `POST /sim/report`: `{syntheticUsers?, pageSize?, emptyPages?, throttle?: {limit, windowSeconds}}`.
async fn report_knobs(State(state): State<Arc<SimState>>, Json(knobs): Json<Value>) -> Response {
    match crate::graph::configure_report(&state, knobs) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}

async fn clear_report_knobs(State(state): State<Arc<SimState>>) -> StatusCode {
    *state.report.lock().unwrap() = crate::graph::ReportKnobs::default();
    StatusCode::NO_CONTENT
}
