//! Simulated Microsoft Graph: `/users/{user}/authentication/...`: authentication methods, Temporary Access Passes, sign-in preferences.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- authentication methods

pub(crate) fn kind_of(collection: &str, v: Version) -> GraphResult<Kind> {
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
pub(crate) fn method_view(method: &Method, policy: &Value) -> Value {
    let mut value = method.to_json();
    if method.kind == Kind::TemporaryAccessPass {
        let (usable, reason) = tap_usability(method, policy);
        value["isUsable"] = json!(usable);
        value["methodUsabilityReason"] = json!(reason);
        value["temporaryAccessPass"] = Value::Null;
    }
    value
}

pub(crate) fn tap_usability(method: &Method, policy: &Value) -> (bool, &'static str) {
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
pub(crate) async fn list_all_methods(
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
pub(crate) async fn list_methods(
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
pub(crate) async fn get_method(
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
pub(crate) const TAP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%&*+=?@";

pub(crate) fn generate_pass(length: usize) -> String {
    crate::random_bytes(length)
        .into_iter()
        .map(|b| TAP_ALPHABET[b as usize % TAP_ALPHABET.len()] as char)
        .collect()
}

/// The error Graph gives when the TAP policy is disabled or does not cover the user. The status
/// and code are not documented; the message is the one admins report.
pub(crate) fn policy_refusal() -> GraphError {
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
pub(crate) async fn create_method(
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
pub(crate) fn usable_as_default(m: &Method) -> bool {
    m.kind != Kind::HardwareOath || m.props.get("status").and_then(Value::as_str) == Some("activated")
}

/// Delete one method, applying Graph's documented rules.
pub(crate) fn remove_method(tenant: &mut Tenant, idx: usize, kind: Kind, id: &str) -> GraphResult<()> {
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
    // phoneauthenticationmethod-delete: "If the phone number is the user's default Azure
    // multi-factor authentication (MFA) authentication method, it can't be deleted. Have the user
    // change their default authentication method, and then delete the number." No exception is
    // documented; the lenient option allows it when no other method could become the default.
    let is_default = methods::is_default(method, user.default_method.as_deref());
    let another_could_be_default = user
        .methods
        .iter()
        .enumerate()
        .any(|(i, m)| i != pos && m.kind.can_be_default() && usable_as_default(m));
    if kind == Kind::Phone && is_default && (another_could_be_default || !tenant.lenient_default_phone) {
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
pub(crate) async fn delete_method(
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
pub(crate) async fn delete_ref(
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
pub(crate) async fn delete_singleton(
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
pub(crate) async fn deactivate(
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
pub(crate) async fn get_sign_in_preferences(
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
pub(crate) async fn patch_sign_in_preferences(
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
