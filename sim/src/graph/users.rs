//! Simulated Microsoft Graph: `/users/{user}`, `/users/{user}/manager`: users and their managers.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- users

/// Properties `GET /users/{id}` returns without `$select`.
/// https://learn.microsoft.com/graph/api/user-get
pub(crate) const DEFAULT_USER_PROPS: &[&str] = &[
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
pub(crate) const KNOWN_USER_PROPS: &[&str] = &[
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

pub(crate) fn user_property(user: &User, name: &str) -> Value {
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

pub(crate) fn parse_select(select: Option<&String>) -> GraphResult<Option<Vec<String>>> {
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

pub(crate) fn user_json(user: &User, select: &Option<Vec<String>>) -> Map<String, Value> {
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
pub(crate) fn parse_expand(expand: Option<&String>) -> GraphResult<Option<Option<Vec<String>>>> {
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
pub(crate) async fn get_user(
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
pub(crate) async fn get_manager(
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

/// GET /users — https://learn.microsoft.com/graph/api/user-list
/// User.Read.All (or Directory.Read.All), else 403. `$select`, `$top` (1 to 999, default 100) and
/// `@odata.nextLink` paging as the doc gives them. `$filter`: only what the service asks,
/// `accountEnabled eq true|false` (the sweep) and `mail eq '…'` (a requester named by email; both
/// properties support `eq` in default queries, per the user resource); any other filter answers 400 `Request_UnsupportedQuery`, the code Graph gives a filter
/// it cannot run, so a caller that needs another one fails loudly here.
pub(crate) async fn list_users(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_USER)?;
    let q = odata::query(&uri);
    let select = parse_select(q.get("$select"))?;
    // `mail eq '…'` (mail supports `eq` in default queries): a requester named by email.
    if let Some(quoted) = q.get("$filter").and_then(|f| f.strip_prefix("mail eq ")) {
        let mail = quoted
            .strip_prefix('\'')
            .and_then(|m| m.strip_suffix('\''))
            .map(|m| m.replace("''", "'"))
            .ok_or_else(|| GraphError::bad_request("Invalid filter clause: mail is a String."))?;
        let items: Vec<Value> = state
            .tenant()
            .users
            .iter()
            .filter(|u| u.mail.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(&mail)))
            .map(|u| Value::Object(user_json(u, &select)))
            .collect();
        return super::memberships::page_of(&state, v, items, &uri, "users");
    }
    let enabled = match q.get("$filter").map(|f| f.split_whitespace().collect::<Vec<_>>()) {
        None => None,
        Some(parts) if parts.len() == 3 && parts[0] == "accountEnabled" && parts[1] == "eq" => match parts[2] {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                return Err(GraphError::bad_request(
                    "Invalid filter clause: accountEnabled is a Boolean.",
                ));
            }
        },
        Some(_) => {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Unsupported or invalid query filter clause specified for property of resource 'User'.",
            ));
        }
    };
    let items: Vec<Value> = state
        .tenant()
        .users
        .iter()
        .filter(|u| enabled.is_none_or(|e| u.account_enabled == e))
        .map(|u| Value::Object(user_json(u, &select)))
        .collect();
    super::memberships::page_of(&state, v, items, &uri, "users")
}
