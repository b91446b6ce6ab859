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
    "department",
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
        "department" => json!(user.department),
        "officeLocation" => json!(user.office_location),
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

/// `GET /users?$search=…`: the advanced query. https://learn.microsoft.com/graph/search-query-parameter
/// and https://learn.microsoft.com/graph/aad-advanced-queries: `$search` needs the header
/// `ConsistencyLevel: eventual` (else 400 `Request_UnsupportedQuery`, "Request with $search query
/// parameter only works through MSGraph with a special request header: 'ConsistencyLevel:
/// eventual'"); clauses are `"property:text"` joined by `OR`/`AND`, on displayName, mail,
/// userPrincipalName (and other string properties); values are tokenized (at spaces, `.`, `@`,
/// `_`, `-` and case changes) and a clause matches a property one of whose tokens starts with the
/// text's (the docs' "tokenized search"; the simulator does not model camel-case splitting).
fn search_users(
    state: &SimState,
    v: Version,
    headers: &HeaderMap,
    q: &std::collections::BTreeMap<String, String>,
    search: &str,
    select: &Option<Vec<String>>,
    uri: &Uri,
) -> GraphResult {
    let eventual = headers
        .get("consistencylevel")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("eventual"));
    if !eventual {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        ));
    }
    let mut clauses: Vec<(String, String)> = Vec::new();
    for part in search.split(" OR ") {
        let part = part.trim().trim_matches('"');
        let Some((prop, text)) = part.split_once(':') else {
            return Err(GraphError::bad_request(format!(
                "Syntax error: '{part}' is not a \"property:value\" clause."
            )));
        };
        if ![
            "displayName",
            "mail",
            "userPrincipalName",
            "givenName",
            "surname",
            "mailNickname",
        ]
        .contains(&prop)
        {
            return Err(GraphError::bad_request(format!("Property '{prop}' is not searchable.")));
        }
        clauses.push((prop.to_owned(), text.to_lowercase()));
    }
    let tokens = |s: &str| -> Vec<String> {
        s.to_lowercase()
            .split(|c: char| c.is_whitespace() || matches!(c, '.' | '@' | '_' | '-'))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let matches = |u: &User| {
        clauses.iter().any(|(prop, text)| {
            let value = user_property(u, prop);
            let wanted = tokens(text);
            let have = tokens(value.as_str().unwrap_or_default());
            !wanted.is_empty() && wanted.iter().all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
        })
    };
    let items: Vec<Value> = state
        .tenant()
        .users
        .iter()
        .filter(|u| matches(u))
        .map(|u| Value::Object(user_json(u, select)))
        .collect();
    let count = items.len();
    let size = match q.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=999).contains(n))
            .ok_or_else(|| GraphError::bad_request("Invalid $top: expected 1 to 999."))?,
        None => 100,
    };
    let mut page = odata::page(items, uri, &state.base_url, size, &context(state, v, "users"))?;
    if q.get("$count").is_some_and(|c| c == "true") {
        page["@odata.count"] = json!(count);
    }
    ok(page)
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
    headers: HeaderMap,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_USER)?;
    let q = odata::query(&uri);
    let select = parse_select(q.get("$select"))?;
    if let Some(search) = q.get("$search") {
        return search_users(&state, v, &headers, &q, search, &select, &uri);
    }
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
