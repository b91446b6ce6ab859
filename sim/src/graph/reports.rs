//! Simulated Microsoft Graph: `/reports/authenticationMethods/userRegistrationDetails`: the registration report (and its synthetic knobs).

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- registration report

pub(crate) const REPORT_FIELDS: &[&str] = &[
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
pub(crate) const REPORT_COLLECTIONS: &[&str] = &[
    "methodsRegistered",
    "systemPreferredAuthenticationMethods",
    "userPreferredMethodForSecondaryAuthentication",
];

/// One row of the registration report, derived from the user's methods and roles.
/// https://learn.microsoft.com/graph/api/resources/userregistrationdetails
pub(crate) fn registration_row(tenant: &Tenant, user: &User, v: Version) -> Value {
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
///
/// A tenant with neither Entra ID P1 nor P2 (the report's licence: howto-authentication-methods-
/// activity) is refused. The reporting guide (howto-configure-prerequisites-for-reporting-api,
/// "Common errors") documents the message, "Neither tenant is B2C or tenant doesn't have premium
/// license"; the error code is not documented, and the simulator answers the one Graph's
/// reports send, `403 Authentication_RequestFromNonPremiumTenantOrB2CTenant`.
pub(crate) async fn registration_report(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_REPORT)?;
    {
        let tenant = state.tenant();
        if !tenant.entra_id_p1 && !tenant.entra_id_p2 {
            return Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            ));
        }
    }
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
pub(crate) async fn registration_detail(
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
pub(crate) fn throttled(state: &SimState) -> Option<u64> {
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
pub(crate) fn synthetic_row(i: usize) -> Value {
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
pub(crate) fn synthetic_page(state: &SimState, v: Version, knobs: &ReportKnobs, uri: &Uri) -> GraphResult {
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
