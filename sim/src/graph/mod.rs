//! Simulated Microsoft Graph (v1.0 and the beta calls the function set needs).
//!
//! Every route needs a bearer token issued by the simulated managed identity endpoint (or
//! `/sim/token` with a Graph audience) and checks the application permission the real call
//! needs, answering Graph's error body otherwise. The rules each route enforces are listed in
//! `docs/simulator.md` with the Microsoft docs page they come from.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::SimState;
use crate::error::{GraphError, GraphResult};
use crate::jwt;
use crate::methods::{self, Kind, Method};
use crate::odata::{self, Filter};
use crate::state::{OutboxItem, Tenant, User};

mod audit_logs;
mod auth_methods;
mod batch;
mod mail;
mod memberships;
mod policy;
mod reports;
mod risk;
mod users;

#[allow(unused_imports)]
pub(crate) use audit_logs::*;
#[allow(unused_imports)]
pub(crate) use auth_methods::*;
#[allow(unused_imports)]
pub(crate) use batch::*;
#[allow(unused_imports)]
pub(crate) use mail::*;
#[allow(unused_imports)]
pub(crate) use memberships::*;
#[allow(unused_imports)]
pub(crate) use policy::*;
#[allow(unused_imports)]
pub(crate) use reports::*;
#[allow(unused_imports)]
pub(crate) use risk::*;
#[allow(unused_imports)]
pub(crate) use users::*;

/// The Graph resource in tokens: `aud` may be the URI or the Graph app id.
const GRAPH_AUDIENCES: [&str; 3] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    Beta,
}

impl Version {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Version::V1 => "v1.0",
            Version::Beta => "beta",
        }
    }
}

/// The application permissions (`roles`) of the token that made the call.
#[derive(Debug, Clone)]
pub(crate) struct Permissions(Vec<String>, Option<String>);

impl Permissions {
    /// Pass when the token holds any of `needed` (Graph lists permissions least to most privileged).
    pub(crate) fn require(&self, needed: &[&str]) -> GraphResult<()> {
        if self.0.iter().any(|r| needed.iter().any(|n| n.eq_ignore_ascii_case(r))) {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
    }

    /// The calling application's client id (`appid` in v1 tokens, `azp` in v2).
    pub(crate) fn app_id(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

const READ_USER: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
pub(crate) const READ_MEMBERSHIP: &[&str] = &[
    "User.Read.All",
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const READ_METHODS: &[&str] = &[
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const WRITE_METHODS: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];
/// The TAP policy's read: the current temporaryaccesspassauthenticationmethodconfiguration-get
/// page lists Policy.Read.AuthenticationMethod (least privileged) and
/// Policy.ReadWrite.AuthenticationMethod; Policy.Read.All appears only on an older version of the
/// page, so it is not accepted here (fail safe: a grant the current docs do not list is refused).
const READ_POLICY: &[&str] = &[
    "Policy.Read.AuthenticationMethod",
    "Policy.ReadWrite.AuthenticationMethod",
];
const WRITE_POLICY: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];
const REVOKE: &[&str] = &[
    "User.RevokeSessions.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const SEND_MAIL: &[&str] = &["Mail.Send"];
const READ_AUDIT: &[&str] = &["AuditLog.Read.All"];
const READ_DIRECTORY: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];
const READ_REPORT: &[&str] = &[
    "AuditLog.Read.All",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];

type S = State<Arc<SimState>>;

pub fn router(state: Arc<SimState>) -> Router<Arc<SimState>> {
    Router::new()
        .nest("/v1.0", versioned(Version::V1))
        .nest("/beta", versioned(Version::Beta))
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

fn versioned(version: Version) -> Router<Arc<SimState>> {
    Router::new()
        .route("/users", get(users::list_users))
        .route("/users/{user}", get(get_user))
        .route("/users/{user}/manager", get(get_manager))
        .route("/users/{user}/transitiveMemberOf", get(transitive_member_of))
        .route(
            "/users/{user}/transitiveMemberOf/{cast}",
            get(transitive_member_of_cast),
        )
        .route("/users/{user}/revokeSignInSessions", post(revoke_sessions))
        .route("/users/{user}/sendMail", post(send_mail))
        .route("/users/{user}/authentication/methods", get(list_all_methods))
        .route(
            "/users/{user}/authentication/signInPreferences",
            get(get_sign_in_preferences).patch(patch_sign_in_preferences),
        )
        .route(
            "/users/{user}/authentication/{collection}",
            get(list_methods).post(create_method).delete(delete_singleton),
        )
        .route(
            "/users/{user}/authentication/{collection}/{id}",
            get(get_method).delete(delete_method),
        )
        .route(
            "/users/{user}/authentication/{collection}/{id}/$ref",
            axum::routing::delete(delete_ref),
        )
        .route(
            "/users/{user}/authentication/{collection}/{id}/deactivate",
            post(deactivate),
        )
        .route(
            "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/{config}",
            get(get_policy).patch(patch_policy),
        )
        .route(
            "/reports/authenticationMethods/userRegistrationDetails",
            get(registration_report),
        )
        .route(
            "/reports/authenticationMethods/userRegistrationDetails/{id}",
            get(registration_detail),
        )
        .route("/auditLogs/directoryAudits", get(directory_audits))
        .route("/identityProtection/riskyUsers/{id}", get(get_risky_user))
        .route("/groups/{group}/transitiveMembers", get(group_transitive_members))
        .route(
            "/groups/{group}/transitiveMembers/{cast}",
            get(group_transitive_members_cast),
        )
        .merge(crate::roles::routes())
        .route("/$batch", post(batch))
        .layer(Extension(version))
}

/// Checks the bearer token: signed by the simulator, Graph audience, current, our tenant.
async fn authenticate(State(state): S, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return unauthenticated("Access token is empty.");
    };
    let Some(claims) = state.keys.verify(token) else {
        return unauthenticated("Invalid signature.");
    };
    let aud_ok = claims
        .get("aud")
        .and_then(Value::as_str)
        .is_some_and(|a| GRAPH_AUDIENCES.contains(&a));
    if !aud_ok {
        return unauthenticated("Invalid audience.");
    }
    if !jwt::is_current(&claims) {
        return unauthenticated("Lifetime validation failed, the token is expired.");
    }
    let tenant_ok = claims.get("tid").and_then(Value::as_str) == Some(state.seed.tenant_id.as_str());
    if !tenant_ok {
        return unauthenticated("Invalid tenant.");
    }
    let roles = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let app = claims
        .get("appid")
        .or_else(|| claims.get("azp"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    request.extensions_mut().insert(Permissions(roles, app));
    let mut response = next.run(request).await;
    let id = uuid::Uuid::new_v4().to_string();
    response
        .headers_mut()
        .insert("request-id", HeaderValue::from_str(&id).expect("uuid"));
    response
}

fn unauthenticated(message: &str) -> Response {
    let mut response = GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).into_response();
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\"",
        ),
    );
    response
}

pub(crate) fn ok(value: Value) -> GraphResult {
    Ok(Json(value).into_response())
}

pub(crate) fn context(state: &SimState, v: Version, what: &str) -> String {
    format!("https://graph.microsoft.com/{}/$metadata#{what}", v.segment())
        .replace("https://graph.microsoft.com", &state.base_url)
}

fn with_user<T>(state: &SimState, key: &str, f: impl FnOnce(&User) -> T) -> GraphResult<T> {
    let tenant = state.tenant();
    let user = tenant.user(key).ok_or_else(|| GraphError::user_not_found(key))?;
    Ok(f(user))
}

fn with_user_mut<T>(
    state: &SimState,
    key: &str,
    f: impl FnOnce(&mut Tenant, usize) -> GraphResult<T>,
) -> GraphResult<T> {
    let mut tenant = state.tenant();
    let idx = tenant.user_index(key).ok_or_else(|| GraphError::user_not_found(key))?;
    f(&mut tenant, idx)
}

fn json_body(bytes: &[u8]) -> GraphResult<Value> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes).map_err(|_| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload.",
        )
    })
}
