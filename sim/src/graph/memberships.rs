//! Simulated Microsoft Graph: `/users/{user}/transitiveMemberOf`, `/groups/{group}/transitiveMembers`: memberships.

#[allow(unused_imports)]
use super::*;

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
pub(crate) async fn transitive_member_of(
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
pub(crate) async fn transitive_member_of_cast(
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
    ok(page_value(state, v, items, uri, what)?)
}

fn page_value(state: &SimState, v: Version, items: Vec<Value>, uri: &Uri, what: &str) -> Result<Value, GraphError> {
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
    odata::page(items, uri, &state.base_url, size, &ctx)
}

// ---------------------------------------------------------------- group members

/// GET /groups/{id}/transitiveMembers: users in the group and its nested groups.
/// https://learn.microsoft.com/graph/api/group-list-transitivemembers
pub(crate) async fn group_transitive_members(
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

/// The cast form `/transitiveMembers/microsoft.graph.user` (or `.group`), with `$select` on users as
/// `GET /users` takes it; GroupMember.Read.All, else 403.
/// https://learn.microsoft.com/graph/api/group-list-transitivemembers: "To filter the results on
/// the OData type, such as microsoft.graph.user or microsoft.graph.group, you must use the advanced
/// query parameters. That is, the ConsistencyLevel header set to eventual and $count=true." A
/// cast without them answers 400 `Request_UnsupportedQuery`, the code Graph gives an advanced
/// query sent as a default one (https://learn.microsoft.com/graph/aad-advanced-queries; the
/// docs do not quote this exact message). With `$count=true` the page carries `@odata.count`.
pub(crate) async fn group_transitive_members_cast(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path((group, cast)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> GraphResult {
    p.require(READ_MEMBERSHIP)?;
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let eventual = headers
        .get("consistencylevel")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("eventual"));
    let counted = query.get("$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    if !eventual || !counted {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Filtering on the OData type (a cast) is an advanced query: send the header ConsistencyLevel: eventual and $count=true.",
        ));
    }
    let select = super::users::parse_select(query.get("$select"))?;
    let items = match cast.as_str() {
        // Users as `GET /users` gives them: the default properties, or those `$select` names.
        "microsoft.graph.user" => match &select {
            None => group_members(&state, &group)?,
            Some(_) => {
                let ids: Vec<String> = group_members(&state, &group)?
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned))
                    .collect();
                state
                    .tenant()
                    .users
                    .iter()
                    .filter(|u| ids.contains(&u.id))
                    .map(|u| {
                        let mut v = super::users::user_json(u, &select);
                        v.insert("@odata.type".into(), json!("#microsoft.graph.user"));
                        Value::Object(v)
                    })
                    .collect()
            }
        },
        "microsoft.graph.group" => nested_groups(&state, &group)?,
        _ => return Err(GraphError::bad_request(format!("Unsupported cast '{cast}'."))),
    };
    let what = if cast == "microsoft.graph.user" {
        "users"
    } else {
        "groups"
    };
    let count = items.len();
    let mut page = page_value(&state, v, items, &uri, what)?;
    if let Some(body) = page.as_object_mut() {
        body.insert("@odata.count".into(), json!(count));
    }
    ok(page)
}

/// The groups nested in `group`, at any depth.
pub(crate) fn nested_groups(state: &SimState, group: &str) -> Result<Vec<Value>, GraphError> {
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

pub(crate) fn group_members(state: &SimState, group: &str) -> Result<Vec<Value>, GraphError> {
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
