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
pub(crate) struct Permissions(Vec<String>);

impl Permissions {
    /// Pass when the token holds any of `needed` (Graph lists permissions least to most privileged).
    pub(crate) fn require(&self, needed: &[&str]) -> GraphResult<()> {
        if self.0.iter().any(|r| needed.iter().any(|n| n.eq_ignore_ascii_case(r))) {
            Ok(())
        } else {
            Err(GraphError::denied())
        }
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
const READ_POLICY: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod"];
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
    request.extensions_mut().insert(Permissions(roles));
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

// ---------------------------------------------------------------- users

/// Properties `GET /users/{id}` returns without `$select`.
/// https://learn.microsoft.com/graph/api/user-get
const DEFAULT_USER_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
const KNOWN_USER_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
    "otherMails",
    "accountEnabled",
    "userType",
    "onPremisesSyncEnabled",
    "mailNickname",
    "manager",
];

fn user_property(user: &User, name: &str) -> Value {
    match name {
        "id" => json!(user.id),
        "displayName" => json!(user.display_name),
        "userPrincipalName" => json!(user.upn),
        "mail" => json!(user.mail),
        "mobilePhone" => json!(user.mobile_phone),
        "otherMails" => json!(user.other_mails),
        "accountEnabled" => json!(user.account_enabled),
        "userType" => json!(user.user_type),
        "jobTitle" => json!(user.job_title),
        "businessPhones" => json!([]),
        "onPremisesSyncEnabled" => Value::Null,
        "givenName" => json!(user.display_name.split(' ').next()),
        "surname" => json!(user.display_name.split(' ').nth(1)),
        "mailNickname" => json!(user.upn.split('@').next()),
        _ => Value::Null,
    }
}

fn parse_select(select: Option<&String>) -> GraphResult<Option<Vec<String>>> {
    let Some(select) = select else { return Ok(None) };
    let mut out = Vec::new();
    for name in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let known = KNOWN_USER_PROPS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!("Could not find a property named '{name}' on type 'microsoft.graph.user'."),
                )
            })?;
        out.push((*known).to_string());
    }
    Ok(Some(out))
}

fn user_json(user: &User, select: &Option<Vec<String>>) -> Map<String, Value> {
    let names: Vec<&str> = match select {
        Some(list) => list.iter().map(String::as_str).filter(|n| *n != "manager").collect(),
        None => DEFAULT_USER_PROPS.to_vec(),
    };
    let mut out = Map::new();
    for name in names {
        out.insert(name.to_string(), user_property(user, name));
    }
    out
}

/// `$expand=manager` or `$expand=manager($select=a,b;$levels=n)`: returns the nested `$select`.
fn parse_expand(expand: Option<&String>) -> GraphResult<Option<Option<Vec<String>>>> {
    let Some(expand) = expand else { return Ok(None) };
    let expand = expand.trim();
    let (name, options) = match expand.split_once('(') {
        Some((n, rest)) => (n.trim(), Some(rest.trim_end_matches(')'))),
        None => (expand, None),
    };
    if !name.eq_ignore_ascii_case("manager") {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Could not find a navigation property named '{name}' on type 'microsoft.graph.user'."),
        ));
    }
    let mut select = None;
    for opt in options.unwrap_or("").split(';').filter(|s| !s.is_empty()) {
        if let Some(list) = opt.trim().strip_prefix("$select=") {
            select = parse_select(Some(&list.to_string()))?;
        }
    }
    Ok(Some(select))
}

/// GET /users/{id | userPrincipalName} — https://learn.microsoft.com/graph/api/user-get
async fn get_user(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_USER)?;
    let q = odata::query(&uri);
    let select = parse_select(q.get("$select"))?;
    let expand = parse_expand(q.get("$expand"))?;
    let tenant = state.tenant();
    let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context(&state, v, "users/$entity")));
    out.extend(user_json(user, &select));
    if let Some(manager_select) = expand
        && let Some(manager) = user.manager_id.as_deref().and_then(|m| tenant.user(m))
    {
        let mut m = Map::new();
        m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        m.extend(user_json(manager, &manager_select));
        out.insert("manager".into(), Value::Object(m));
    }
    ok(Value::Object(out))
}

/// GET /users/{id}/manager — https://learn.microsoft.com/graph/api/user-list-manager
async fn get_manager(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
) -> GraphResult {
    p.require(READ_USER)?;
    let tenant = state.tenant();
    let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
    let manager = user
        .manager_id
        .as_deref()
        .and_then(|m| tenant.user(m))
        .ok_or_else(|| GraphError::user_not_found("manager"))?;
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(context(&state, v, "directoryObjects/$entity")),
    );
    out.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    out.extend(user_json(manager, &None));
    ok(Value::Object(out))
}

// ---------------------------------------------------------------- membership and roles

pub(crate) fn membership(tenant: &Tenant, user: &User) -> Vec<Value> {
    let mut out: Vec<Value> = tenant
        .transitive_groups(&user.id)
        .into_iter()
        .map(|g| {
            json!({"@odata.type": "#microsoft.graph.group", "id": g.id, "displayName": g.display_name,
                "isAssignableToRole": g.is_assignable_to_role, "securityEnabled": true})
        })
        .collect();
    out.extend(tenant.transitive_roles(&user.id).into_iter().map(|r| {
        json!({"@odata.type": "#microsoft.graph.directoryRole", "id": r.id,
            "displayName": r.display_name, "roleTemplateId": r.role_template_id})
    }));
    out
}

/// GET /users/{id}/transitiveMemberOf — https://learn.microsoft.com/graph/api/user-list-transitivememberof
async fn transitive_member_of(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_MEMBERSHIP)?;
    let items = {
        let tenant = state.tenant();
        let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
        membership(&tenant, user)
    };
    page_of(&state, v, items, &uri, "directoryObjects")
}

/// The cast forms `/transitiveMemberOf/microsoft.graph.group` and `.../microsoft.graph.directoryRole`.
async fn transitive_member_of_cast(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, cast)): Path<(String, String)>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_MEMBERSHIP)?;
    let wanted = match cast.as_str() {
        "microsoft.graph.group" => "#microsoft.graph.group",
        "microsoft.graph.directoryRole" => "#microsoft.graph.directoryRole",
        _ => return Err(GraphError::bad_request(format!("Unsupported cast '{cast}'."))),
    };
    let items = {
        let tenant = state.tenant();
        let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
        membership(&tenant, user)
            .into_iter()
            .filter(|i| i["@odata.type"] == wanted)
            .collect()
    };
    page_of(&state, v, items, &uri, &cast)
}

pub(crate) fn page_of(state: &SimState, v: Version, items: Vec<Value>, uri: &Uri, what: &str) -> GraphResult {
    let q = odata::query(uri);
    let size = match q.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or_else(|| GraphError::bad_request("Invalid $top: expected 1 to 999."))?,
        None => 100,
    };
    let ctx = context(state, v, what);
    ok(odata::page(items, uri, &state.base_url, size, &ctx)?)
}

// ---------------------------------------------------------------- sessions and mail

/// POST /users/{id}/revokeSignInSessions — https://learn.microsoft.com/graph/api/user-revokesigninsessions
/// Answers 200 `{"value": true}` (the documented known issue: it should be 204).
async fn revoke_sessions(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
) -> GraphResult {
    p.require(REVOKE)?;
    with_user_mut(&state, &key, |tenant, idx| {
        tenant.users[idx].sessions_revoked_at = Some(now_rfc3339());
        Ok(())
    })?;
    ok(json!({"@odata.context": context(&state, v, "Edm.Boolean"), "value": true}))
}

fn addresses(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.pointer("/emailAddress/address").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// POST /users/{id}/sendMail — https://learn.microsoft.com/graph/api/user-sendmail (202, recorded in the outbox)
async fn send_mail(
    State(state): S,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult {
    p.require(SEND_MAIL)?;
    let body = json_body(&body)?;
    let from = with_user(&state, &key, |u| u.mail.clone())?.ok_or_else(|| {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    })?;
    let message = body.get("message").ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The message is missing.",
        )
    })?;
    let mut to = addresses(message.get("toRecipients"));
    to.extend(addresses(message.get("ccRecipients")));
    to.extend(addresses(message.get("bccRecipients")));
    if to.is_empty() {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid.",
        ));
    }
    let content = message
        .pointer("/body/content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    state.outbox.lock().unwrap().push(OutboxItem {
        id: uuid::Uuid::new_v4().to_string(),
        provider: "graph".into(),
        channel: "email".into(),
        from,
        to,
        subject: message.get("subject").and_then(Value::as_str).map(str::to_owned),
        body: content.to_owned(),
        at: now_rfc3339(),
    });
    Ok(StatusCode::ACCEPTED.into_response())
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------- authentication methods

fn kind_of(collection: &str, v: Version) -> GraphResult<Kind> {
    let kind = Kind::from_collection(collection).ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{collection}'."),
        )
    })?;
    if v == Version::V1 && !kind.in_v1() {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{collection}'."),
        ));
    }
    Ok(kind)
}

/// The JSON of a method as it reads now (a TAP's usability depends on the clock and the policy).
fn method_view(method: &Method, policy: &Value) -> Value {
    let mut value = method.to_json();
    if method.kind == Kind::TemporaryAccessPass {
        let (usable, reason) = tap_usability(method, policy);
        value["isUsable"] = json!(usable);
        value["methodUsabilityReason"] = json!(reason);
        value["temporaryAccessPass"] = Value::Null;
    }
    value
}

fn tap_usability(method: &Method, policy: &Value) -> (bool, &'static str) {
    let fmt = &time::format_description::well_known::Rfc3339;
    let start = method
        .props
        .get("startDateTime")
        .and_then(Value::as_str)
        .and_then(|s| time::OffsetDateTime::parse(s, fmt).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let minutes = method
        .props
        .get("lifetimeInMinutes")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let now = time::OffsetDateTime::now_utc();
    if policy.get("state").and_then(Value::as_str) != Some("enabled") {
        (false, "DisabledByPolicy")
    } else if now < start {
        (false, "NotYetValid")
    } else if now >= start + time::Duration::minutes(minutes) {
        (false, "Expired")
    } else {
        (true, "EnabledByPolicy")
    }
}

/// GET /users/{id}/authentication/methods — https://learn.microsoft.com/graph/api/authentication-list-methods
async fn list_all_methods(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
) -> GraphResult {
    p.require(READ_METHODS)?;
    let tenant = state.tenant();
    let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
    let items: Vec<Value> = user
        .methods
        .iter()
        .filter(|m| v == Version::Beta || m.kind.in_v1())
        .map(|m| method_view(m, &tenant.tap_policy))
        .collect();
    ok(json!({"@odata.context": context(&state, v, "users('..')/authentication/methods"), "value": items}))
}

/// GET /users/{id}/authentication/{type}Methods
async fn list_methods(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection)): Path<(String, String)>,
) -> GraphResult {
    p.require(READ_METHODS)?;
    let kind = kind_of(&collection, v)?;
    let tenant = state.tenant();
    let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
    let items: Vec<Value> = user
        .methods
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| method_view(m, &tenant.tap_policy))
        .collect();
    if kind == Kind::QrCodePin {
        return match items.into_iter().next() {
            Some(item) => ok(item),
            None => Err(GraphError::item_not_found("qrCodePinMethod")),
        };
    }
    ok(json!({"@odata.context": context(&state, v, &collection), "value": items}))
}

/// GET /users/{id}/authentication/{type}Methods/{id}
async fn get_method(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection, id)): Path<(String, String, String)>,
) -> GraphResult {
    p.require(READ_METHODS)?;
    let kind = kind_of(&collection, v)?;
    let tenant = state.tenant();
    let user = tenant.user(&key).ok_or_else(|| GraphError::user_not_found(&key))?;
    let method = user
        .method(kind, &id)
        .ok_or_else(|| GraphError::item_not_found("The authentication method"))?;
    ok(method_view(method, &tenant.tap_policy))
}

/// The TAP pass alphabet: letters and digits without look-alikes, plus a few symbols, like Entra's.
const TAP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%&*+=?@";

fn generate_pass(length: usize) -> String {
    crate::random_bytes(length)
        .into_iter()
        .map(|b| TAP_ALPHABET[b as usize % TAP_ALPHABET.len()] as char)
        .collect()
}

/// The error Graph gives when the TAP policy is disabled or does not cover the user. The status
/// and code are not documented; the message is the one admins report.
fn policy_refusal() -> GraphError {
    GraphError::bad_request(
        "Converged UserCredentialPolicy does not allow creating or updating this authentication method. AuthMethodType [TemporaryAccessPass].",
    )
}

/// Whether the TAP policy's include and exclude targets cover the user (transitive membership).
pub fn in_tap_scope(tenant: &Tenant, user: &User) -> bool {
    let groups: Vec<String> = tenant
        .transitive_groups(&user.id)
        .iter()
        .map(|g| g.id.to_ascii_lowercase())
        .collect();
    let target_ids = |key: &str| -> Vec<String> {
        tenant.tap_policy[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("id").and_then(Value::as_str))
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    };
    let included = target_ids("includeTargets")
        .iter()
        .any(|id| id == "all_users" || groups.contains(id));
    let excluded = target_ids("excludeTargets").iter().any(|id| groups.contains(id));
    included && !excluded
}

/// POST /users/{id}/authentication/temporaryAccessPassMethods
/// https://learn.microsoft.com/graph/api/authentication-post-temporaryaccesspassmethods
async fn create_method(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> GraphResult {
    let kind = kind_of(&collection, v)?;
    if kind != Kind::TemporaryAccessPass {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The simulator does not model creating {collection}."),
        ));
    }
    p.require(WRITE_METHODS)?;
    let body = json_body(&body)?;
    let response = with_user_mut(&state, &key, |tenant, idx| {
        let policy = tenant.tap_policy.clone();
        let user = &tenant.users[idx];
        if user.is_guest() {
            return Err(GraphError::bad_request(
                "Temporary Access Pass cannot be added to an external guest user.",
            ));
        }
        if policy.get("state").and_then(Value::as_str) != Some("enabled") || !in_tap_scope(tenant, user) {
            return Err(policy_refusal());
        }
        let min = policy
            .get("minimumLifetimeInMinutes")
            .and_then(Value::as_i64)
            .unwrap_or(60);
        let max = policy
            .get("maximumLifetimeInMinutes")
            .and_then(Value::as_i64)
            .unwrap_or(480);
        let default = policy
            .get("defaultLifetimeInMinutes")
            .and_then(Value::as_i64)
            .unwrap_or(min);
        let lifetime = match body.get("lifetimeInMinutes") {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| GraphError::bad_request("lifetimeInMinutes must be an integer."))?,
            Some(_) => return Err(GraphError::bad_request("lifetimeInMinutes must be an integer.")),
        };
        if !(10..=43200).contains(&lifetime) || lifetime < min || lifetime > max {
            return Err(GraphError::bad_request(format!(
                "The Temporary Access Pass lifetime must be between {min} and {max} minutes."
            )));
        }
        let policy_once = policy.get("isUsableOnce").and_then(Value::as_bool).unwrap_or(false);
        let once = match body.get("isUsableOnce") {
            None | Some(Value::Null) => policy_once,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(GraphError::bad_request("isUsableOnce must be a boolean.")),
        };
        if policy_once && !once {
            return Err(GraphError::bad_request(
                "The Temporary Access Pass policy only allows one-time use passes.",
            ));
        }
        let fmt = &time::format_description::well_known::Rfc3339;
        let start = match body.get("startDateTime").and_then(Value::as_str) {
            Some(s) => time::OffsetDateTime::parse(s, fmt)
                .map_err(|_| GraphError::bad_request("startDateTime is not a valid DateTimeOffset."))?
                .format(fmt)
                .unwrap(),
            None => now_rfc3339(),
        };
        let length = policy
            .get("defaultLength")
            .and_then(Value::as_u64)
            .unwrap_or(8)
            .clamp(8, 48) as usize;
        let pass = generate_pass(length);
        let mut props = Map::new();
        props.insert("createdDateTime".into(), json!(now_rfc3339()));
        props.insert("startDateTime".into(), json!(start));
        props.insert("lifetimeInMinutes".into(), json!(lifetime));
        props.insert("isUsableOnce".into(), json!(once));
        let method = Method {
            id: uuid::Uuid::new_v4().to_string(),
            kind: Kind::TemporaryAccessPass,
            props,
            secret: Some(pass.clone()),
        };
        // One TAP per user: a new one replaces the old, valid or not.
        let user = &mut tenant.users[idx];
        user.methods.retain(|m| m.kind != Kind::TemporaryAccessPass);
        let mut view = method_view(&method, &policy);
        view["temporaryAccessPass"] = json!(pass);
        user.methods.push(method);
        tenant.audit_event(
            idx,
            "Admin registered security info",
            "Admin registered temporary access pass method for user",
        );
        Ok(view)
    })?;
    let location = format!(
        "{}/{}/users/{}/authentication/temporaryAccessPassMethods/{}",
        state.base_url,
        v.segment(),
        key,
        response["id"].as_str().unwrap_or_default()
    );
    let mut out = (StatusCode::CREATED, Json(response)).into_response();
    if let Ok(h) = HeaderValue::from_str(&location) {
        out.headers_mut().insert("location", h);
    }
    Ok(out)
}

/// A deactivated hardware token cannot be anyone's second factor.
fn usable_as_default(m: &Method) -> bool {
    m.kind != Kind::HardwareOath || m.props.get("status").and_then(Value::as_str) == Some("activated")
}

/// Delete one method, applying Graph's documented rules.
fn remove_method(tenant: &mut Tenant, idx: usize, kind: Kind, id: &str) -> GraphResult<()> {
    let user = &mut tenant.users[idx];
    if kind == Kind::Password {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The password authentication method cannot be deleted.",
        ));
    }
    let pos = user
        .methods
        .iter()
        .position(|m| m.kind == kind && m.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| GraphError::item_not_found("The authentication method"))?;
    let method = &user.methods[pos];
    // "A user can't have an alternateMobile number without a mobile number."
    if method.phone_type() == Some("mobile") && user.methods.iter().any(|m| m.phone_type() == Some("alternateMobile")) {
        return Err(GraphError::bad_request(
            "The mobile phone cannot be deleted while an alternate mobile phone is registered.",
        ));
    }
    // "If the phone number is the user's default MFA method, it can't be deleted" (while another
    // method that could become the default remains).
    let is_default = methods::is_default(method, user.default_method.as_deref());
    if kind == Kind::Phone
        && is_default
        && user
            .methods
            .iter()
            .enumerate()
            .any(|(i, m)| i != pos && m.kind.can_be_default() && usable_as_default(m))
    {
        return Err(GraphError::bad_request(
            "The default authentication method cannot be deleted. Change the user's default sign-in method first.",
        ));
    }
    let removed = user.methods.remove(pos);
    let reason = format!("Admin deleted {} method for user", removed.kind.seed_name());
    tenant.audit_event(idx, "Admin deleted security info", &reason);
    let user = &mut tenant.users[idx];
    if is_default {
        user.default_method = user.methods.iter().find_map(|m| match m.kind {
            Kind::MicrosoftAuthenticator => Some("push".to_string()),
            Kind::SoftwareOath | Kind::HardwareOath => Some("oath".into()),
            Kind::Phone => Some(
                match m.phone_type() {
                    Some("mobile") => "sms",
                    Some("alternateMobile") => "voiceAlternateMobile",
                    _ => "voiceOffice",
                }
                .into(),
            ),
            _ => None,
        });
    }
    Ok(())
}

/// DELETE /users/{id}/authentication/{type}Methods/{id} (204); see the per-type delete pages.
async fn delete_method(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection, id)): Path<(String, String, String)>,
) -> GraphResult {
    let kind = kind_of(&collection, v)?;
    if kind == Kind::External {
        // The documented form is DELETE .../externalAuthenticationMethods/{id}/$ref.
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Use /$ref to delete an external authentication method.",
        ));
    }
    if kind == Kind::QrCodePin {
        return Err(GraphError::bad_request("qrCodePinMethod is a single-valued property."));
    }
    p.require(WRITE_METHODS)?;
    with_user_mut(&state, &key, |tenant, idx| remove_method(tenant, idx, kind, &id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /users/{id}/authentication/externalAuthenticationMethods/{id}/$ref
async fn delete_ref(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection, id)): Path<(String, String, String)>,
) -> GraphResult {
    let kind = kind_of(&collection, v)?;
    if kind != Kind::External {
        return Err(GraphError::bad_request("$ref is not supported on this segment."));
    }
    p.require(WRITE_METHODS)?;
    with_user_mut(&state, &key, |tenant, idx| remove_method(tenant, idx, kind, &id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE /beta/users/{id}/authentication/qrCodePinMethod (a singleton)
async fn delete_singleton(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection)): Path<(String, String)>,
) -> GraphResult {
    let kind = kind_of(&collection, v)?;
    if kind != Kind::QrCodePin || v != Version::Beta {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "DELETE is not supported on a collection.",
        ));
    }
    p.require(WRITE_METHODS)?;
    with_user_mut(&state, &key, |tenant, idx| {
        let id = tenant.users[idx]
            .methods
            .iter()
            .find(|m| m.kind == Kind::QrCodePin)
            .map(|m| m.id.clone())
            .ok_or_else(|| GraphError::item_not_found("qrCodePinMethod"))?;
        remove_method(tenant, idx, kind, &id)
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /beta/users/{id}/authentication/hardwareOathMethods/{id}/deactivate: what the portal's
/// "Require re-register MFA" does to hardware tokens (the token stays assigned, not activated).
async fn deactivate(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((key, collection, id)): Path<(String, String, String)>,
) -> GraphResult {
    let kind = kind_of(&collection, v)?;
    if kind != Kind::HardwareOath {
        return Err(GraphError::bad_request(
            "deactivate is only defined for hardware OATH tokens.",
        ));
    }
    p.require(WRITE_METHODS)?;
    with_user_mut(&state, &key, |tenant, idx| {
        let user = &mut tenant.users[idx];
        let method = user
            .methods
            .iter_mut()
            .find(|m| m.kind == kind && m.id.eq_ignore_ascii_case(&id))
            .ok_or_else(|| GraphError::item_not_found("The hardware OATH token"))?;
        method.props.insert("status".into(), json!("assigned"));
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GET /beta/users/{id}/authentication/signInPreferences
async fn get_sign_in_preferences(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
) -> GraphResult {
    if v != Version::Beta {
        return Err(GraphError::bad_request(
            "Resource not found for the segment 'signInPreferences'.",
        ));
    }
    p.require(READ_METHODS)?;
    let (pref, system) = with_user(&state, &key, |u| (u.default_method.clone(), u.system_preferred_enabled))?;
    ok(json!({
        "@odata.type": "#microsoft.graph.signInPreferences",
        "isSystemPreferredAuthenticationMethodEnabled": system,
        "userPreferredMethodForSecondaryAuthentication": pref,
    }))
}

/// PATCH /beta/users/{id}/authentication/signInPreferences (204): the documented way to move a
/// user's default method; the value must name a method the user has.
async fn patch_sign_in_preferences(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult {
    if v != Version::Beta {
        return Err(GraphError::bad_request(
            "Resource not found for the segment 'signInPreferences'.",
        ));
    }
    p.require(WRITE_METHODS)?;
    let body = json_body(&body)?;
    with_user_mut(&state, &key, |tenant, idx| {
        let user = &mut tenant.users[idx];
        if let Some(pref) = body.get("userPreferredMethodForSecondaryAuthentication") {
            let pref = pref.as_str().ok_or_else(|| GraphError::bad_request("Invalid value."))?;
            let (kind, phone) = methods::default_target(pref).ok_or_else(|| {
                GraphError::bad_request(format!(
                    "Invalid userPreferredMethodForSecondaryAuthentication '{pref}'."
                ))
            })?;
            let has = user.methods.iter().any(|m| {
                (m.kind == kind && (phone.is_none() || m.phone_type() == phone))
                    || (pref == "oath" && m.kind == Kind::HardwareOath)
            });
            if !has {
                return Err(GraphError::bad_request(format!(
                    "The user has no registered method for '{pref}'."
                )));
            }
            user.default_method = Some(pref.to_owned());
        }
        if let Some(b) = body
            .get("isSystemPreferredAuthenticationMethodEnabled")
            .and_then(Value::as_bool)
        {
            user.system_preferred_enabled = b;
        }
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- policy

/// GET .../authenticationMethodConfigurations/temporaryAccessPass
/// https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethodconfiguration-get
async fn get_policy(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(config): Path<String>,
) -> GraphResult {
    p.require(READ_POLICY)?;
    if !config.eq_ignore_ascii_case("temporaryAccessPass") {
        return Err(GraphError::item_not_found(&config));
    }
    let mut policy = state.tenant().tap_policy.clone();
    policy["@odata.context"] = json!(context(
        &state,
        v,
        "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity"
    ));
    policy["@odata.type"] = json!("#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration");
    policy["id"] = json!("TemporaryAccessPass");
    ok(policy)
}

/// PATCH .../authenticationMethodConfigurations/temporaryAccessPass (204). Needs
/// Policy.ReadWrite.AuthenticationMethod, which the function app never holds; tests use it.
async fn patch_policy(
    State(state): S,
    Extension(p): Extension<Permissions>,
    Path(config): Path<String>,
    body: axum::body::Bytes,
) -> GraphResult {
    p.require(WRITE_POLICY)?;
    if !config.eq_ignore_ascii_case("temporaryAccessPass") {
        return Err(GraphError::item_not_found(&config));
    }
    let body = json_body(&body)?;
    let Value::Object(changes) = body else {
        return Err(GraphError::bad_request("Expected an object."));
    };
    let mut tenant = state.tenant();
    let mut next = tenant.tap_policy.clone();
    for (k, v) in changes {
        if k.starts_with('@') || k == "id" {
            continue;
        }
        next[k] = v;
    }
    let get = |k: &str| next.get(k).and_then(Value::as_i64).unwrap_or(0);
    let (min, max, def) = (
        get("minimumLifetimeInMinutes"),
        get("maximumLifetimeInMinutes"),
        get("defaultLifetimeInMinutes"),
    );
    if !(10..=43200).contains(&min) || !(10..=43200).contains(&max) || min > max || def < min || def > max {
        return Err(GraphError::bad_request(
            "Lifetimes must satisfy 10 <= minimum <= default <= maximum <= 43200.",
        ));
    }
    let len = get("defaultLength");
    if !(8..=48).contains(&len) {
        return Err(GraphError::bad_request("defaultLength must be between 8 and 48."));
    }
    tenant.tap_policy = next;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- registration report

const REPORT_FIELDS: &[&str] = &[
    "id",
    "userPrincipalName",
    "userDisplayName",
    "userType",
    "isAdmin",
    "isMfaRegistered",
    "isMfaCapable",
    "isPasswordlessCapable",
    "isSsprRegistered",
    "isSsprEnabled",
    "isSsprCapable",
    "isSystemPreferredAuthenticationMethodEnabled",
];
const REPORT_COLLECTIONS: &[&str] = &[
    "methodsRegistered",
    "systemPreferredAuthenticationMethods",
    "userPreferredMethodForSecondaryAuthentication",
];

/// One row of the registration report, derived from the user's methods and roles.
/// https://learn.microsoft.com/graph/api/resources/userregistrationdetails
fn registration_row(tenant: &Tenant, user: &User, v: Version) -> Value {
    let active: Vec<&Method> = user
        .methods
        .iter()
        .filter(|m| {
            !(m.kind == Kind::HardwareOath && m.props.get("status").and_then(Value::as_str) != Some("activated"))
        })
        .collect();
    let mut registered: Vec<&str> = active.iter().filter_map(|m| m.report_name()).collect();
    registered.dedup();
    let mfa = active.iter().any(|m| m.kind.is_mfa());
    let passwordless = active.iter().any(|m| {
        matches!(
            m.kind,
            Kind::Fido2 | Kind::WindowsHelloForBusiness | Kind::PlatformCredential
        )
    });
    let sspr = active
        .iter()
        .any(|m| matches!(m.kind, Kind::Email | Kind::Phone | Kind::MicrosoftAuthenticator));
    let preferred = user.default_method.clone().unwrap_or_else(|| "none".into());
    let mut row = json!({
        "id": user.id,
        "userPrincipalName": user.upn,
        "userDisplayName": user.display_name,
        "userType": if user.is_guest() { "guest" } else { "member" },
        "isAdmin": !tenant.transitive_roles(&user.id).is_empty(),
        "isMfaRegistered": mfa,
        "isMfaCapable": mfa,
        "isPasswordlessCapable": passwordless,
        "isSsprRegistered": sspr,
        "isSsprEnabled": true,
        "isSsprCapable": sspr,
        "isSystemPreferredAuthenticationMethodEnabled": user.system_preferred_enabled,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": preferred,
        "methodsRegistered": registered,
        "lastUpdatedDateTime": "2026-11-01T00:00:00Z",
    });
    if v == Version::Beta {
        let default = match user.default_method.as_deref() {
            Some("sms" | "voiceMobile") => "mobilePhone",
            Some("voiceAlternateMobile") => "alternateMobilePhone",
            Some("voiceOffice") => "officePhone",
            Some("push") => "microsoftAuthenticatorPush",
            Some("oath") => "softwareOneTimePasscode",
            _ => "none",
        };
        row["defaultMfaMethod"] = json!(default);
    }
    row
}

/// GET /reports/authenticationMethods/userRegistrationDetails — `$filter` and `$orderby` only,
/// pages through `@odata.nextLink`.
/// https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails
async fn registration_report(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_REPORT)?;
    let q = odata::query(&uri);
    for key in q.keys() {
        if !matches!(key.as_str(), "$filter" | "$orderby" | "$skiptoken") {
            return Err(GraphError::bad_request(format!(
                "Query option '{key}' is not supported."
            )));
        }
    }
    if let Some(retry_after) = throttled(&state) {
        let mut e = GraphError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests to the identity and access reports (5 per 10 seconds per app per tenant).",
        );
        e.retry_after = Some(retry_after);
        return Err(e);
    }
    let knobs = state.report.lock().unwrap().clone();
    if (knobs.synthetic_users > 0 || knobs.empty_pages) && !q.contains_key("$filter") && !q.contains_key("$orderby") {
        return synthetic_page(&state, v, &knobs, &uri);
    }
    let filter = match q.get("$filter") {
        Some(f) => Some(Filter::parse(f, REPORT_FIELDS, REPORT_COLLECTIONS)?),
        None => None,
    };
    let (mut rows, size) = {
        let tenant = state.tenant();
        let rows: Vec<Value> = tenant
            .users
            .iter()
            .map(|u| registration_row(&tenant, u, v))
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
            .collect();
        (
            rows,
            state
                .report
                .lock()
                .unwrap()
                .page_size
                .unwrap_or(tenant.report_page_size),
        )
    };
    if let Some(order) = q.get("$orderby") {
        let mut parts = order.split_whitespace();
        let field = parts.next().unwrap_or_default();
        if !["userPrincipalName", "userDisplayName"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(field))
        {
            return Err(GraphError::bad_request(format!(
                "$orderby is not supported on '{field}'."
            )));
        }
        let field = if field.eq_ignore_ascii_case("userDisplayName") {
            "userDisplayName"
        } else {
            "userPrincipalName"
        };
        rows.sort_by_key(|r| r[field].as_str().unwrap_or_default().to_ascii_lowercase());
        if parts.next().is_some_and(|d| d.eq_ignore_ascii_case("desc")) {
            rows.reverse();
        }
    }
    let ctx = context(&state, v, "reports/authenticationMethods/userRegistrationDetails");
    ok(odata::page(rows, &uri, &state.base_url, size, &ctx)?)
}

/// GET /reports/authenticationMethods/userRegistrationDetails/{userId}
async fn registration_detail(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
) -> GraphResult {
    p.require(READ_REPORT)?;
    let tenant = state.tenant();
    let user = tenant
        .users
        .iter()
        .find(|u| u.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| GraphError::user_not_found(&id))?;
    ok(registration_row(&tenant, user, v))
}

// ---------------------------------------------------------------- directory audits

const AUDIT_FIELDS: &[&str] = &[
    "activityDateTime",
    "activityDisplayName",
    "category",
    "loggedByService",
    "result",
    "correlationId",
    "id",
];

/// GET /auditLogs/directoryAudits — needs AuditLog.Read.All and Directory.Read.All; `$filter`
/// with eq/ge/le and `targetResources/any(t:t/id eq '…')`, `$top`, newest first.
/// https://learn.microsoft.com/graph/api/directoryaudit-list
async fn directory_audits(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_AUDIT)?;
    p.require(READ_DIRECTORY)?;
    let q = odata::query(&uri);
    let filter = match q.get("$filter") {
        Some(f) => Some(Filter::parse_with_ranges(
            f,
            AUDIT_FIELDS,
            &["activityDateTime"],
            &["targetResources"],
        )?),
        None => None,
    };
    let mut items: Vec<Value> = state
        .tenant()
        .directory_audits
        .iter()
        .filter(|e| filter.as_ref().is_none_or(|f| f.matches(e)))
        .cloned()
        .collect();
    items.reverse();
    page_of(&state, v, items, &uri, "auditLogs/directoryAudits")
}

// ---------------------------------------------------------------- $batch

/// POST /$batch — up to 20 requests, unique ids, `dependsOn` (a failed dependency answers 424).
/// https://learn.microsoft.com/graph/json-batching
async fn batch(
    State(state): S,
    Extension(v): Extension<Version>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> GraphResult {
    let body = json_body(&body)?;
    let requests = body.get("requests").and_then(Value::as_array).ok_or_else(|| {
        GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The batch request must contain a 'requests' array.",
        )
    })?;
    if requests.len() > 20 {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The number of batch requests exceeds the limit of 20.",
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::bad_request("Each request needs an id."))?;
        if !ids.insert(id.to_owned()) {
            return Err(GraphError::bad_request(format!(
                "The batch request contains duplicate id '{id}'."
            )));
        }
        if r.get("body").is_some()
            && r.pointer("/headers/Content-Type")
                .or_else(|| r.pointer("/headers/content-type"))
                .is_none()
        {
            return Err(GraphError::bad_request(format!(
                "Request '{id}' has a body but no Content-Type header."
            )));
        }
    }
    let router = state.router.get().expect("router is set at start-up").clone();
    let auth = headers.get("authorization").cloned();
    let mut statuses: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    let mut responses = Vec::new();
    for r in requests {
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let failed_dep = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|d| statuses.get(d).is_none_or(|s| !(200..300).contains(s)));
        if failed_dep {
            statuses.insert(id.clone(), 424);
            responses.push(json!({"id": id, "status": 424, "body": crate::error::graph_body("failedDependency", "A request this one depends on failed.")}));
            continue;
        }
        let method = r.get("method").and_then(Value::as_str).unwrap_or("GET");
        let url = r.get("url").and_then(Value::as_str).unwrap_or("/");
        let path = format!("/{}/{}", v.segment(), url.trim_start_matches('/'));
        let mut builder = Request::builder()
            .method(HttpMethod::from_bytes(method.as_bytes()).unwrap_or(HttpMethod::GET))
            .uri(path);
        if let Some(a) = &auth {
            builder = builder.header("authorization", a);
        }
        if let Some(h) = r.get("headers").and_then(Value::as_object) {
            for (k, val) in h {
                if let Some(s) = val.as_str() {
                    builder = builder.header(k.as_str(), s);
                }
            }
        }
        let inner_body = r.get("body").map(|b| b.to_string()).unwrap_or_default();
        let request = builder
            .body(Body::from(inner_body))
            .map_err(|_| GraphError::bad_request(format!("Request '{id}' is not valid.")))?;
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let mut out_headers = Map::new();
        for (k, val) in response.headers() {
            if let Ok(s) = val.to_str() {
                out_headers.insert(k.to_string(), json!(s));
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        statuses.insert(id.clone(), status);
        let mut item = json!({"id": id, "status": status, "headers": out_headers});
        if !body.is_null() {
            item["body"] = body;
        }
        responses.push(item);
    }
    ok(json!({"responses": responses}))
}

// ---------------------------------------------------------------- report knobs (sweeps, benchmarks)

/// `POST /sim/report`: a tenant far larger than the seed (rows made on the fly from their index,
/// so a million users cost no memory), another page size, empty pages between full ones (Graph
/// may send them), and the documented reports throttle (5 requests per 10 s per app).
#[derive(Debug, Clone, Default)]
pub struct ReportKnobs {
    pub synthetic_users: usize,
    pub page_size: Option<usize>,
    pub empty_pages: bool,
    pub throttle: Option<(usize, std::time::Duration)>,
    pub hits: std::collections::VecDeque<std::time::Instant>,
}

pub fn configure_report(state: &SimState, knobs: Value) -> Result<(), String> {
    let mut k = ReportKnobs {
        synthetic_users: knobs["syntheticUsers"].as_u64().unwrap_or(0) as usize,
        page_size: knobs["pageSize"].as_u64().map(|n| n.clamp(1, 5000) as usize),
        empty_pages: knobs["emptyPages"].as_bool().unwrap_or(false),
        ..ReportKnobs::default()
    };
    if let Some(t) = knobs.get("throttle").filter(|t| !t.is_null()) {
        let limit = t["limit"].as_u64().ok_or("throttle.limit is required")? as usize;
        let window = t["windowSeconds"]
            .as_f64()
            .ok_or("throttle.windowSeconds is required")?;
        k.throttle = Some((limit.max(1), std::time::Duration::from_secs_f64(window)));
    }
    *state.report.lock().unwrap() = k;
    Ok(())
}

/// The reports throttle: every request counts (a throttled one too, as Graph counts immediate
/// retries); over the limit, the seconds until the oldest request leaves the window.
fn throttled(state: &SimState) -> Option<u64> {
    let mut knobs = state.report.lock().unwrap();
    let (limit, window) = knobs.throttle?;
    let now = std::time::Instant::now();
    while knobs.hits.front().is_some_and(|t| now.duration_since(*t) >= window) {
        knobs.hits.pop_front();
    }
    let over = knobs.hits.len() >= limit;
    let wait = knobs
        .hits
        .front()
        .map(|t| window.saturating_sub(now.duration_since(*t)));
    knobs.hits.push_back(now);
    over.then(|| wait.map_or(1, |w| w.as_secs_f64().ceil().max(1.0) as u64))
}

/// Row `i` of the synthetic tenant: a fixed mix of registration states, the same every time.
fn synthetic_row(i: usize) -> Value {
    let methods: &[&str] = match i % 20 {
        0 | 1 => &[],                                                       // not registered
        2..=5 => &["microsoftAuthenticatorPush"],                           // Authenticator only
        6..=8 => &["mobilePhone"],                                          // one phone
        9 => &["email", "mobilePhone"],                                     // one phone (email is SSPR only)
        10..=16 => &["microsoftAuthenticatorPush", "mobilePhone"],          // a backup
        17 | 18 => &["fido2", "microsoftAuthenticatorPush", "mobilePhone"], // phishing-resistant
        _ => &["windowsHelloForBusiness", "microsoftAuthenticatorPush"],
    };
    let admin = i % 50 == 3 || i % 50 == 17;
    let mfa = methods.iter().any(|m| *m != "email");
    json!({
        "id": format!("5f000000-0000-4000-8000-{i:012}"),
        "userPrincipalName": format!("synth{i:07}@contoso.test"),
        "userDisplayName": format!("Synthetic User {i}"),
        "userType": if i % 25 == 24 { "guest" } else { "member" },
        "isAdmin": admin,
        "isMfaRegistered": mfa, "isMfaCapable": mfa,
        "isPasswordlessCapable": methods.contains(&"fido2") || methods.contains(&"windowsHelloForBusiness"),
        "isSsprRegistered": mfa, "isSsprEnabled": true, "isSsprCapable": mfa,
        "isSystemPreferredAuthenticationMethodEnabled": true,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": if mfa { "push" } else { "none" },
        "methodsRegistered": methods,
        "lastUpdatedDateTime": "2026-11-01T00:00:00Z",
    })
}

/// A page of seed rows followed by synthetic ones, made only for the page asked for. With
/// `emptyPages`, every full page is followed by an empty one whose nextLink goes on.
fn synthetic_page(state: &SimState, v: Version, knobs: &ReportKnobs, uri: &Uri) -> GraphResult {
    let (seed_rows, size) = {
        let tenant = state.tenant();
        let rows: Vec<Value> = tenant.users.iter().map(|u| registration_row(&tenant, u, v)).collect();
        (rows, knobs.page_size.unwrap_or(tenant.report_page_size))
    };
    let total = seed_rows.len() + knobs.synthetic_users;
    let q = odata::query(uri);
    let token = q.get("$skiptoken").map(|t| {
        B64.decode(t)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .unwrap_or_default()
    });
    let (empty, offset) = match token.as_deref() {
        None => (false, 0),
        Some(t) => match (t.strip_prefix("empty:"), t.strip_prefix("offset:")) {
            (Some(n), _) => (
                true,
                n.parse().map_err(|_| GraphError::bad_request("Invalid $skiptoken."))?,
            ),
            (_, Some(n)) => (
                false,
                n.parse().map_err(|_| GraphError::bad_request("Invalid $skiptoken."))?,
            ),
            _ => return Err(GraphError::bad_request("Invalid $skiptoken.")),
        },
    };
    let (rows, next): (Vec<Value>, Option<String>) = if empty {
        (Vec::new(), Some(format!("offset:{offset}")))
    } else {
        let end = (offset + size).min(total);
        let rows = (offset..end)
            .map(|i| {
                seed_rows
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| synthetic_row(i - seed_rows.len()))
            })
            .collect();
        let next = (end < total).then(|| {
            if knobs.empty_pages {
                format!("empty:{end}")
            } else {
                format!("offset:{end}")
            }
        });
        (rows, next)
    };
    let ctx = context(state, v, "reports/authenticationMethods/userRegistrationDetails");
    let mut out = json!({"@odata.context": ctx, "value": rows});
    if let Some(token) = next {
        out["@odata.nextLink"] = json!(format!(
            "{}{}?$skiptoken={}",
            state.base_url,
            uri.path(),
            B64.encode(token)
        ));
    }
    ok(out)
}

// ---------------------------------------------------------------- group members

/// GET /groups/{id}/transitiveMembers: users in the group and its nested groups.
/// https://learn.microsoft.com/graph/api/group-list-transitivemembers
async fn group_transitive_members(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(group): Path<String>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_MEMBERSHIP)?;
    let items = group_members(&state, &group)?;
    page_of(&state, v, items, &uri, "directoryObjects")
}

/// The cast form `/transitiveMembers/microsoft.graph.user`.
async fn group_transitive_members_cast(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((group, cast)): Path<(String, String)>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_MEMBERSHIP)?;
    let items = match cast.as_str() {
        "microsoft.graph.user" => group_members(&state, &group)?,
        "microsoft.graph.group" => nested_groups(&state, &group)?,
        _ => return Err(GraphError::bad_request(format!("Unsupported cast '{cast}'."))),
    };
    let what = if cast == "microsoft.graph.user" {
        "users"
    } else {
        "groups"
    };
    page_of(&state, v, items, &uri, what)
}

/// The groups nested in `group`, at any depth.
fn nested_groups(state: &SimState, group: &str) -> Result<Vec<Value>, GraphError> {
    let tenant = state.tenant();
    if !tenant.groups.iter().any(|g| g.id.eq_ignore_ascii_case(group)) {
        return Err(GraphError::item_not_found(group));
    }
    Ok(tenant
        .groups
        .iter()
        .filter(|g| {
            tenant
                .transitive_groups(&g.id)
                .iter()
                .any(|p| p.id.eq_ignore_ascii_case(group))
        })
        .map(|g| json!({"@odata.type": "#microsoft.graph.group", "id": g.id, "displayName": g.display_name}))
        .collect())
}

fn group_members(state: &SimState, group: &str) -> Result<Vec<Value>, GraphError> {
    let tenant = state.tenant();
    if !tenant.groups.iter().any(|g| g.id.eq_ignore_ascii_case(group)) {
        return Err(GraphError::item_not_found(group));
    }
    Ok(tenant
        .users
        .iter()
        .filter(|u| tenant.transitive_groups(&u.id).iter().any(|g| g.id.eq_ignore_ascii_case(group)))
        .map(|u| json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "userPrincipalName": u.upn, "displayName": u.display_name}))
        .collect())
}
