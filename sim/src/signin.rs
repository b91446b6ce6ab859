//! Sign-in for single-page apps: the Microsoft identity platform's authorization code flow with
//! PKCE, as a browser and MSAL for the browser use it (the console signs agents in through it).
//!
//! Doc: https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
//! - `GET /{tenant}/oauth2/v2.0/authorize` with `client_id`, `response_type=code`, `redirect_uri`
//!   (registered for the app, for a SPA under "spa"), `scope`, `state`, `nonce`, `code_challenge`
//!   and `code_challenge_method=S256` (required for SPA redirect URIs), `response_mode`
//!   (`query` or `fragment`). The user signs in (here: picks a demo user), and the browser is sent
//!   to `redirect_uri` with `code` and `state` (and `client_info` when asked with `client_info=1`,
//!   as MSAL does), or `error` and `error_description`.
//! - `POST /{tenant}/oauth2/v2.0/token`, form-encoded: `grant_type=authorization_code` with
//!   `client_id`, `code`, `redirect_uri`, `code_verifier`, `scope`; or `grant_type=refresh_token`.
//!   A code is good once, for 10 minutes at most, for the client and redirect URI it was issued
//!   to, and only with the verifier of its challenge. A SPA's redemption is cross-origin (without
//!   an `Origin` header: `AADSTS9002327`); the answer carries `Access-Control-Allow-Origin` for the
//!   registered redirect URI's origin. A SPA's refresh token lasts 24 hours (`AADSTS700084`).
//! - The API's service principal requires an assignment (`appRoleAssignmentRequired`): a user with
//!   no app role on it is refused at sign-in (`AADSTS50105`).
//!   Errors are `400 {"error": "invalid_grant", "error_description": "AADSTS…", …}`.
//! - Tokens: the access token for the API (v2, `aud` the API's client id, `scp` the scope asked
//!   for, `roles` the user's app role assignments, directly or through a group); the id token
//!   (`aud` the client id, `nonce` as asked); `client_info` (base64url of `{"uid","utid"}`).
//!
//! Where the docs are silent (how a user proves who they are), the simulator shows the tenant's
//! enabled members and signs in the one picked: it is a test tenant.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::{SimState, jwt};

/// A code issued and not yet redeemed.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    nonce: Option<String>,
    user_id: String,
    expires: i64,
}

/// The sign-in state: codes, refresh tokens, and the SPA redirect URIs registered for the API's app.
#[derive(Debug, Default)]
pub struct SignIn {
    codes: HashMap<String, CodeGrant>,
    /// Refresh tokens: user, scope, client, expiry (a SPA's last 24 hours and are not renewed).
    refresh: HashMap<String, (String, String, String, i64)>,
    pub spa_redirect_uris: Vec<String>,
}

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize).post(sign_in))
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(token).options(preflight),
        )
        .route("/{tenant}/oauth2/v2.0/logout", get(logout))
}

type Params = HashMap<String, String>;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    (status, Html(html)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The request's own problems, shown on the sign-in page (no redirect to an unverified URI), or
/// `None` when the app, the redirect URI and PKCE are as Entra requires.
fn check_request(state: &SimState, tenant: &str, q: &Params) -> Option<Response> {
    if !tenant.eq_ignore_ascii_case(&state.seed.tenant_id) {
        return Some(page(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "<p>AADSTS90002: Tenant not found.</p>",
        ));
    }
    let client_id = q.get("client_id").map(String::as_str).unwrap_or_default();
    if !client_id.eq_ignore_ascii_case(&state.seed.api.app_id) {
        return Some(page(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "<p>AADSTS700016: Application not found in the directory.</p>",
        ));
    }
    let redirect = q.get("redirect_uri").map(String::as_str).unwrap_or_default();
    if !state.signin().spa_redirect_uris.iter().any(|r| r == redirect) {
        return Some(page(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "<p>AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.</p>",
        ));
    }
    None
}

/// An error sent back to the (registered) redirect URI, as Entra does.
fn error_redirect(q: &Params, error: &str, description: &str) -> Response {
    let mut fields = vec![
        ("error", error.to_owned()),
        ("error_description", description.to_owned()),
    ];
    if let Some(s) = q.get("state") {
        fields.push(("state", s.clone()));
    }
    back_to_app(q, &fields)
}

fn back_to_app(q: &Params, fields: &[(&str, String)]) -> Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let separator = if q.get("response_mode").map(String::as_str) == Some("query") {
        if redirect.contains('?') { '&' } else { '?' }
    } else {
        '#'
    };
    Redirect::to(&format!("{redirect}{separator}{encoded}")).into_response()
}

/// The parts of the request Entra refuses on the redirect URI: response type, PKCE, scope.
fn check_grant_request(q: &Params) -> Option<Response> {
    if q.get("response_type").map(String::as_str) != Some("code") {
        return Some(error_redirect(
            q,
            "unsupported_response_type",
            "AADSTS700054: response_type 'code' is the only one enabled for this application.",
        ));
    }
    let challenge_ok = q.get("code_challenge").is_some_and(|c| c.len() >= 43)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256");
    if !challenge_ok {
        return Some(error_redirect(
            q,
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        ));
    }
    if q.get("scope").is_none_or(|s| s.trim().is_empty()) {
        return Some(error_redirect(
            q,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        ));
    }
    None
}

/// `GET …/authorize`: the sign-in page, listing the tenant's enabled members to sign in as.
async fn authorize(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    if let Some(refusal) = check_request(&state, &tenant, &q) {
        return refusal;
    }
    if let Some(refusal) = check_grant_request(&q) {
        return refusal;
    }
    let hidden: String = q
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(k), escape(v)))
        .collect();
    let tenant_view = state.tenant();
    let hint = q.get("login_hint").map(|h| h.to_ascii_lowercase());
    let users: String = tenant_view
        .users
        .iter()
        .filter(|u| u.account_enabled && !u.is_guest())
        .filter(|u| hint.as_deref().is_none_or(|h| u.upn.eq_ignore_ascii_case(h)))
        .map(|u| {
            format!(
                "<li><button type=\"submit\" name=\"user\" value=\"{}\">{} <small>{}</small></button></li>",
                escape(&u.id),
                escape(&u.display_name),
                escape(&u.upn)
            )
        })
        .collect();
    page(
        StatusCode::OK,
        &format!("Sign in to {} (simulated)", escape(&state.seed.domain)),
        &format!("<form method=\"post\">{hidden}<p>Pick an account:</p><ul>{users}</ul></form>"),
    )
}

/// `POST …/authorize`: the user picked; a code goes back to the app.
async fn sign_in(State(state): State<Arc<SimState>>, Path(tenant): Path<String>, Form(q): Form<Params>) -> Response {
    if let Some(refusal) = check_request(&state, &tenant, &q) {
        return refusal;
    }
    if let Some(refusal) = check_grant_request(&q) {
        return refusal;
    }
    let user = q.get("user").cloned().unwrap_or_default();
    let known = state
        .tenant()
        .user(&user)
        .is_some_and(|u| u.account_enabled && !u.is_guest());
    if !known {
        return error_redirect(
            &q,
            "access_denied",
            "AADSTS50034: The user account does not exist in this directory.",
        );
    }
    // The API's service principal requires an assignment (appRoleAssignmentRequired, as the
    // templates set it): a user with no app role, directly or through a group, gets no code.
    if app_roles(&state, &user).is_empty() {
        return error_redirect(
            &q,
            "access_denied",
            "AADSTS50105: Your administrator has configured the application to block users unless they are specifically granted ('assigned') access to the application.",
        );
    }
    let code = crate::random_token();
    let grant = CodeGrant {
        client_id: q["client_id"].clone(),
        redirect_uri: q["redirect_uri"].clone(),
        challenge: q["code_challenge"].clone(),
        scope: q["scope"].clone(),
        nonce: q.get("nonce").cloned(),
        user_id: user.clone(),
        expires: jwt::now() + 600,
    };
    state.signin().codes.insert(code.clone(), grant);
    let mut fields = vec![("code", code)];
    if let Some(s) = q.get("state") {
        fields.push(("state", s.clone()));
    }
    if q.get("client_info").map(String::as_str) == Some("1") {
        fields.push(("client_info", client_info(&user, &state.seed.tenant_id)));
    }
    back_to_app(&q, &fields)
}

/// The user's app roles on the API, directly or through a group (transitively).
fn app_roles(state: &SimState, user_id: &str) -> Vec<String> {
    let tenant = state.tenant();
    let Some(user) = tenant.user(user_id) else {
        return Vec::new();
    };
    let id = user.id.to_ascii_lowercase();
    let groups: Vec<String> = tenant
        .transitive_groups(&id)
        .into_iter()
        .map(|g| g.id.to_ascii_lowercase())
        .collect();
    tenant
        .app_role_assignments
        .iter()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(&id) || groups.contains(&a.principal_id.to_ascii_lowercase()))
        .map(|a| a.app_role.clone())
        .collect()
}

fn client_info(user: &str, tenant: &str) -> String {
    B64.encode(json!({"uid": user, "utid": tenant}).to_string())
}

/// The CORS headers Entra sends a SPA's registered origin on the token endpoint.
fn cors(state: &SimState, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let registered = state
        .signin()
        .spa_redirect_uris
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|r| r.origin().ascii_serialization() == origin);
    registered.then(|| HeaderValue::from_str(origin).ok()).flatten()
}

async fn preflight(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(origin) = cors(&state, &headers) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
    }
    response
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description, "error_codes": [], "timestamp": ""})),
    )
        .into_response()
}

/// `POST …/token`: redeem a code (with its verifier) or a refresh token.
async fn token(
    State(state): State<Arc<SimState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(f): Form<Params>,
) -> Response {
    let origin = cors(&state, &headers);
    // A code issued to a SPA redirect URI is redeemed cross-origin, from the browser, or not at all.
    if headers.get(header::ORIGIN).is_none() {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
        );
    }
    let mut response = match redeem(&state, &tenant, &f) {
        Ok(body) => Json(body).into_response(),
        Err(refusal) => *refusal,
    };
    if let Some(origin) = origin {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

fn redeem(state: &SimState, tenant: &str, f: &Params) -> Result<Value, Box<Response>> {
    let bad = |d: &str| Box::new(token_error(StatusCode::BAD_REQUEST, "invalid_grant", d));
    if !tenant.eq_ignore_ascii_case(&state.seed.tenant_id) {
        return Err(Box::new(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90002: Tenant not found.",
        )));
    }
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let (user, scope, nonce) = match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            // Good once: taken out whatever happens next.
            let grant = state
                .signin()
                .codes
                .remove(&code)
                .ok_or_else(|| bad("AADSTS70008: The provided authorization code or refresh token has expired or was already redeemed."))?;
            if grant.expires < jwt::now() {
                return Err(bad("AADSTS70008: The provided authorization code has expired."));
            }
            if !grant.client_id.eq_ignore_ascii_case(&client_id) {
                return Err(bad(
                    "AADSTS70000: The provided authorization code was issued to another client.",
                ));
            }
            if f.get("redirect_uri") != Some(&grant.redirect_uri) {
                return Err(bad(
                    "AADSTS50148: The redirect_uri does not match the one used in the authorization request.",
                ));
            }
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            if B64.encode(digest.as_ref()) != grant.challenge {
                return Err(bad(
                    "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                ));
            }
            (grant.user_id, grant.scope, grant.nonce)
        }
        Some("refresh_token") => {
            let token = f.get("refresh_token").cloned().unwrap_or_default();
            let (user, scope, client, expires) = state
                .signin()
                .refresh
                .get(&token)
                .cloned()
                .ok_or_else(|| bad("AADSTS70008: The refresh token has expired or was revoked."))?;
            if expires < jwt::now() {
                return Err(bad(
                    "AADSTS700084: The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended.",
                ));
            }
            if !client.eq_ignore_ascii_case(&client_id) {
                return Err(bad("AADSTS70000: The refresh token was issued to another client."));
            }
            let asked = f.get("scope").cloned().unwrap_or(scope);
            (user, asked, None)
        }
        _ => {
            return Err(Box::new(token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            )));
        }
    };
    Ok(tokens(state, &client_id, &user, &scope, nonce))
}

/// The access token (for the API), the id token and a refresh token for `user`.
fn tokens(state: &SimState, client_id: &str, user_id: &str, scope: &str, nonce: Option<String>) -> Value {
    let roles = app_roles(state, user_id);
    let user = state.tenant().user(user_id).cloned();
    let (upn, name) = user.map_or((String::new(), String::new()), |u| (u.upn, u.display_name));
    let tid = &state.seed.tenant_id;
    let now = jwt::now();
    let issuer = format!("{}/{tid}/v2.0", state.base_url);
    // The API's own scope (`api://…/user_impersonation`): its short name goes in `scp`.
    let scp: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| s.contains('/'))
        .filter_map(|s| s.rsplit('/').next())
        .collect();
    let access = state.keys.sign(&json!({
        "aud": state.seed.api.app_id, "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tid, "oid": user_id, "sub": user_id, "azp": client_id, "azpacr": "0",
        "idtyp": "user", "ver": "2.0", "scp": scp.join(" "), "roles": roles,
        "upn": upn, "preferred_username": upn, "name": name,
    }));
    let mut id_claims = json!({
        "aud": client_id, "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tid, "oid": user_id, "sub": user_id, "ver": "2.0",
        "preferred_username": upn, "name": name,
    });
    if let Some(n) = nonce {
        id_claims["nonce"] = json!(n);
    }
    let refresh = crate::random_token();
    state.signin().refresh.insert(
        refresh.clone(),
        (
            user_id.to_owned(),
            scope.to_owned(),
            client_id.to_owned(),
            now + 24 * 3600,
        ),
    );
    json!({
        "token_type": "Bearer",
        "scope": scope.split_whitespace().filter(|s| s.contains('/')).collect::<Vec<_>>().join(" "),
        "expires_in": 3600,
        "ext_expires_in": 3600,
        "access_token": access,
        "refresh_token": refresh,
        "id_token": state.keys.sign(&id_claims),
        "client_info": client_info(user_id, tid),
    })
}

/// `GET …/logout`: signs out and goes back to `post_logout_redirect_uri` when it is registered.
async fn logout(State(state): State<Arc<SimState>>, Query(q): Query<Params>) -> Response {
    match q.get("post_logout_redirect_uri") {
        Some(uri) if state.signin().spa_redirect_uris.iter().any(|r| r == uri) => Redirect::to(uri).into_response(),
        _ => page(
            StatusCode::OK,
            "Signed out",
            "<p>You signed out. You can close this window.</p>",
        ),
    }
}
