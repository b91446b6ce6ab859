//! Simulated Graph reads that tell who holds privilege: directory role assignments and
//! eligibilities (PIM for Microsoft Entra roles, any scope, built-in or custom), role definitions,
//! PIM for Groups eligibilities, a group's own memberships, and the holders of an app's roles.
//!
//! Each route copies the documented request, response shape, `$filter` support and application
//! permission (the page is cited next to it); a missing permission answers 403
//! `Authorization_RequestDenied`. Where the docs are silent the choice is said and fails safe.

use std::sync::Arc;

use axum::extract::{OriginalUri, Path, State};
use axum::http::Uri;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Value, json};

use crate::SimState;
use crate::error::{GraphError, GraphResult};
use crate::graph::{Permissions, Version, context, ok, page_of};
use crate::odata::{self, Filter};

type S = State<Arc<SimState>>;

/// `roleAssignments` (and the directory role reads in general).
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments
const READ_ROLE_ASSIGNMENTS: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
];
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentscheduleinstances
const READ_ASSIGNMENT_SCHEDULES: &[&str] = &[
    "RoleAssignmentSchedule.Read.Directory",
    "RoleAssignmentSchedule.ReadWrite.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
];
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityscheduleinstances
const READ_ELIGIBILITY_SCHEDULES: &[&str] = &[
    "RoleEligibilitySchedule.Read.Directory",
    "RoleEligibilitySchedule.ReadWrite.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
];
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions
const READ_ROLE_DEFINITIONS: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
];
/// https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityscheduleinstances
const READ_GROUP_ELIGIBILITY: &[&str] = &[
    "PrivilegedEligibilitySchedule.Read.AzureADGroup",
    "PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup",
];
/// https://learn.microsoft.com/graph/api/serviceprincipal-list and
/// https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto
const READ_APPLICATIONS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

pub(crate) fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/roleManagement/directory/roleAssignments", get(role_assignments))
        .route(
            "/roleManagement/directory/roleAssignmentScheduleInstances",
            get(assignment_instances),
        )
        .route(
            "/roleManagement/directory/roleEligibilityScheduleInstances",
            get(eligibility_instances),
        )
        .route("/roleManagement/directory/roleDefinitions", get(role_definitions))
        .route("/roleManagement/directory/roleDefinitions/{id}", get(role_definition))
        .route(
            "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
            get(group_eligibility_instances),
        )
        .route("/servicePrincipals", get(service_principals))
        .route("/servicePrincipals/{id}/appRoleAssignedTo", get(app_role_assigned_to))
        .route("/servicePrincipals/{id}/owners", get(service_principal_owners))
        .route("/applications", get(applications))
        .route("/applications/{id}/owners", get(application_owners))
        .route("/groups", get(list_groups))
        .route("/groups/{group}/owners", get(group_owners))
        .route("/users/{user}/appRoleAssignments", get(user_app_role_assignments))
        .route("/groups/{group}/appRoleAssignments", get(group_app_role_assignments))
}

/// https://learn.microsoft.com/graph/api/group-list and group-list-owners
const READ_GROUPS: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// Directory objects (`@odata.type` and `id`) for a list of object ids: users by the tenant's
/// users, anything else as a service principal.
fn objects(state: &SimState, ids: &[String]) -> Vec<Value> {
    let tenant = state.tenant();
    ids.iter()
        .map(|id| match tenant.user(id) {
            Some(u) => json!({"@odata.type": "#microsoft.graph.user", "id": u.id, "displayName": u.display_name,
                "userPrincipalName": u.upn}),
            None => json!({"@odata.type": "#microsoft.graph.servicePrincipal", "id": id}),
        })
        .collect()
}

/// GET /groups?$filter=isAssignableToRole eq true — https://learn.microsoft.com/graph/api/group-list
/// (`isAssignableToRole` supports `$filter` with `eq`, `ne`, `not`; `id` with `eq`, `ne`, `not`,
/// `in`, at most 15 values: filter-query-parameter.md).
///
/// `$expand=owners` (optionally `owners($select=id)`: resources/group.md, `owners`: "Supports
/// `$expand` including nested `$select`"): each group carries its owners, at most 20 of them
/// (concepts/query-parameters.md: "`$expand` typically returns a maximum of 20 items for the
/// expanded relationship and has no @odata.nextLink"). The docs are silent on the page size of an
/// expanded list; Graph is reported to give 100 per page whatever `$top` says, and this does the
/// same (fail safe: a client that reads one page of 999 would miss groups).
async fn list_groups(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_GROUPS)?;
    // resources/group.md: `id` "Supports `$filter` (`eq`, `ne`, `not`, `in`)".
    let f = match odata::query(&uri).get("$filter") {
        Some(f) => Some(Filter::parse_with_in(
            f,
            &["isAssignableToRole", "id", "displayName", "securityEnabled"],
            &["id"],
        )?),
        None => None,
    };
    let expand = odata::query(&uri).get("$expand").cloned();
    let owners = match expand.as_deref() {
        None => false,
        Some("owners" | "owners($select=id)") => true,
        Some(other) => {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{other}' on type 'microsoft.graph.group'."
            )));
        }
    };
    let groups = state.tenant().groups.clone();
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut row = json!({"id": g.id, "displayName": g.display_name,
                "isAssignableToRole": g.is_assignable_to_role, "securityEnabled": true});
            if owners {
                let first: Vec<String> = g.owners.iter().take(20).cloned().collect();
                row["owners"] = Value::Array(objects(&state, &first));
            }
            row
        })
        .collect();
    if !owners {
        return page_of(&state, v, keep(rows, f.as_ref()), &uri, "groups");
    }
    let rows = keep(rows, f.as_ref());
    let ctx = context(&state, v, "groups");
    ok(odata::page(rows, &uri, &state.base_url, 100, &ctx)?)
}

/// GET /groups/{id}/owners — https://learn.microsoft.com/graph/api/group-list-owners
async fn group_owners(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(group): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_GROUPS)?;
    let owners = {
        let tenant = state.tenant();
        let g = tenant
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(&group))
            .ok_or_else(|| GraphError::user_not_found(&group))?;
        g.owners.clone()
    };
    page_of(&state, v, objects(&state, &owners), &uri, "directoryObjects")
}

/// GET /servicePrincipals/{id}/owners — https://learn.microsoft.com/graph/api/serviceprincipal-list-owners
async fn service_principal_owners(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_APPLICATIONS)?;
    if !id.eq_ignore_ascii_case(&state.seed.api.service_principal_id) {
        return Err(GraphError::user_not_found(&id));
    }
    let owners = state.tenant().api_owners.clone();
    page_of(&state, v, objects(&state, &owners), &uri, "directoryObjects")
}

/// GET /applications?$filter=appId eq '…' — https://learn.microsoft.com/graph/api/application-list
/// Only the API's application is modelled.
async fn applications(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_APPLICATIONS)?;
    let f = match odata::query(&uri).get("$filter") {
        Some(f) => Some(Filter::parse(f, &["appId", "id", "displayName"], &["identifierUris"])?),
        None => None,
    };
    let api = &state.seed.api;
    let row = json!({"id": api.application_object_id, "appId": api.app_id, "displayName": "mfa-recovery",
        "identifierUris": [api.audience]});
    page_of(&state, v, keep(vec![row], f.as_ref()), &uri, "applications")
}

/// GET /applications/{id}/owners — https://learn.microsoft.com/graph/api/application-list-owners
async fn application_owners(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_APPLICATIONS)?;
    if !id.eq_ignore_ascii_case(&state.seed.api.application_object_id) {
        return Err(GraphError::user_not_found(&id));
    }
    let owners = state.tenant().api_owners.clone();
    page_of(&state, v, objects(&state, &owners), &uri, "directoryObjects")
}

/// An optional `$filter` over the listed properties (`eq`, `ne`, `and`, `or`).
fn filter(uri: &Uri, allowed: &[&str]) -> GraphResult<Option<Filter>> {
    match odata::query(uri).get("$filter") {
        Some(f) => Filter::parse(f, allowed, &[]).map(Some),
        None => Ok(None),
    }
}

fn keep(rows: Vec<Value>, f: Option<&Filter>) -> Vec<Value> {
    rows.into_iter().filter(|r| f.is_none_or(|f| f.matches(r))).collect()
}

/// A stable id for a simulated assignment.
fn row_id(principal: &str, definition: &str, scope: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{principal}|{definition}|{scope}").as_bytes(),
    )
    .to_string()
}

/// The assignments of one kind (active or eligible), as rows of `shape`.
fn assignment_rows(
    state: &SimState,
    eligible: bool,
    shape: impl Fn(&str, &str, &str, Option<&str>, String) -> Value,
) -> Vec<Value> {
    state
        .tenant()
        .unified_assignments()
        .into_iter()
        .filter(|a| a.4 == eligible)
        .map(|(principal, definition, scope, app_scope, _)| {
            let id = row_id(&principal, &definition, &scope);
            shape(&principal, &definition, &scope, app_scope.as_deref(), id)
        })
        .collect()
}

/// GET /roleManagement/directory/roleAssignments?$filter=principalId eq '{id}'
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments
/// Active assignments only, made to the principal itself (direct), at any scope, built-in or
/// custom roles.
async fn role_assignments(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_ROLE_ASSIGNMENTS)?;
    let f = filter(&uri, &["principalId", "roleDefinitionId", "directoryScopeId"])?;
    let rows = assignment_rows(&state, false, |principal, definition, scope, _, id| {
        json!({"id": id, "principalId": principal, "roleDefinitionId": definition,
            "directoryScopeId": scope, "resourceScope": scope})
    });
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        "roleManagement/directory/roleAssignments",
    )
}

/// GET /roleManagement/directory/roleAssignmentScheduleInstances?$filter=principalId eq '{id}'
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentscheduleinstances
/// Every active assignment: permanent ones (`assignmentType: Assigned`) and PIM activations alike.
/// The principal is the one assigned (a group for a role held through a role-assignable group).
async fn assignment_instances(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_ASSIGNMENT_SCHEDULES)?;
    let f = filter(
        &uri,
        &["principalId", "roleDefinitionId", "directoryScopeId", "appScopeId"],
    )?;
    let rows = assignment_rows(&state, false, |principal, definition, scope, app_scope, id| {
        json!({"id": id, "principalId": principal, "roleDefinitionId": definition,
            "directoryScopeId": scope, "appScopeId": app_scope, "startDateTime": "2026-01-05T09:00:00Z",
            "endDateTime": null, "assignmentType": "Assigned", "memberType": "Direct",
            // Permanent assignments are listed too ("...and directly through the role assignments API").
            "roleAssignmentOriginId": id, "roleAssignmentScheduleId": id})
    });
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        "roleManagement/directory/roleAssignmentScheduleInstances",
    )
}

/// GET /roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId eq '{id}'
/// https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityscheduleinstances
async fn eligibility_instances(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_ELIGIBILITY_SCHEDULES)?;
    let f = filter(
        &uri,
        &["principalId", "roleDefinitionId", "directoryScopeId", "appScopeId"],
    )?;
    let rows = assignment_rows(&state, true, |principal, definition, scope, app_scope, id| {
        json!({"id": id, "principalId": principal, "roleDefinitionId": definition,
            "directoryScopeId": scope, "appScopeId": app_scope, "startDateTime": "2026-01-05T09:00:00Z",
            "endDateTime": null, "memberType": "Direct", "roleEligibilityScheduleId": id})
    });
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        "roleManagement/directory/roleEligibilityScheduleInstances",
    )
}

/// Built-in roles have `id == templateId` and `version: "1"`; custom roles `version: null`.
fn definition_json(id: &str, name: &str, built_in: bool) -> Value {
    json!({"id": id, "templateId": id, "displayName": name, "isBuiltIn": built_in, "isEnabled": true,
        "description": null, "resourceScopes": ["/"], "version": if built_in { json!("1") } else { Value::Null },
        "rolePermissions": []})
}

/// GET /roleManagement/directory/roleDefinitions (`$filter` with `eq` on `id`, `displayName`,
/// `isBuiltIn`) — https://learn.microsoft.com/graph/api/rbacapplication-list-roledefinitions
async fn role_definitions(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_ROLE_DEFINITIONS)?;
    let f = filter(&uri, &["id", "displayName", "isBuiltIn"])?;
    let rows: Vec<Value> = {
        let tenant = state.tenant();
        let mut rows: Vec<Value> = tenant
            .roles
            .iter()
            .map(|r| definition_json(&r.role_template_id, &r.display_name, true))
            .collect();
        rows.extend(
            tenant
                .role_definitions
                .iter()
                .map(|d| definition_json(&d.id, &d.display_name, d.is_built_in)),
        );
        rows
    };
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        "roleManagement/directory/roleDefinitions",
    )
}

/// GET /roleManagement/directory/roleDefinitions/{id}
/// https://learn.microsoft.com/graph/api/unifiedroledefinition-get
async fn role_definition(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
) -> GraphResult {
    p.require(READ_ROLE_DEFINITIONS)?;
    let found = state.tenant().role_definition(&id);
    let (id, name, built_in) = found.ok_or_else(|| GraphError::user_not_found(&id))?;
    let mut body = definition_json(&id, &name, built_in);
    body["@odata.context"] = json!(context(&state, v, "roleManagement/directory/roleDefinitions/$entity"));
    ok(body)
}

/// GET /identityGovernance/privilegedAccess/group/eligibilityScheduleInstances?$filter=principalId eq '{id}'
/// https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityscheduleinstances
/// The docs require a `$filter` on `principalId` or `groupId`; without one this answers 400
/// (the docs do not give the error body; `badRequest` is the generic code).
async fn group_eligibility_instances(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_GROUP_ELIGIBILITY)?;
    let f = filter(&uri, &["principalId", "groupId", "accessId"])?
        .ok_or_else(|| GraphError::bad_request("A $filter on principalId or groupId is required for this request."))?;
    if !f.mentions("principalId") && !f.mentions("groupId") {
        return Err(GraphError::bad_request(
            "A $filter on principalId or groupId is required for this request.",
        ));
    }
    let rows: Vec<Value> = state
        .tenant()
        .group_eligibilities
        .iter()
        .map(|e| {
            let id = row_id(&e.principal_id, &e.group_id, &e.access_id);
            json!({"id": id, "accessId": e.access_id, "principalId": e.principal_id, "groupId": e.group_id,
                "memberType": "direct", "startDateTime": "2026-01-05T09:00:00Z", "endDateTime": null,
                "eligibilityScheduleId": id})
        })
        .collect();
    page_of(
        &state,
        v,
        keep(rows, Some(&f)),
        &uri,
        "identityGovernance/privilegedAccess/group/eligibilityScheduleInstances",
    )
}

/// The API's service principal, as `servicePrincipals` lists it.
fn api_principal(state: &SimState) -> Value {
    let api = &state.seed.api;
    json!({"id": api.service_principal_id, "appId": api.app_id, "displayName": "mfa-recovery",
        "servicePrincipalNames": [api.audience, api.app_id], "appRoleAssignmentRequired": true})
}

/// GET /servicePrincipals?$filter=appId eq '…' (or `servicePrincipalNames/any(n:n eq '…')`)
/// https://learn.microsoft.com/graph/api/serviceprincipal-list
/// Only the API's own service principal is modelled.
async fn service_principals(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_APPLICATIONS)?;
    let f = match odata::query(&uri).get("$filter") {
        Some(f) => Some(Filter::parse(
            f,
            &["appId", "id", "displayName"],
            &["servicePrincipalNames"],
        )?),
        None => None,
    };
    let rows = keep(vec![api_principal(&state)], f.as_ref());
    page_of(&state, v, rows, &uri, "servicePrincipals")
}

/// The id Entra gives an app role: here derived from the role's value.
pub fn app_role_id(value: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("mfa-recovery/{value}").as_bytes()).to_string()
}

/// GET /servicePrincipals/{id}/appRoleAssignedTo
/// https://learn.microsoft.com/graph/api/serviceprincipal-list-approleassignedto
/// Users, groups and service principals granted one of the app's roles. The docs allow `$filter`
/// only on `principalDisplayName` and `resourceId` (not `principalId`), so callers read the list.
async fn app_role_assigned_to(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_APPLICATIONS)?;
    let api = &state.seed.api;
    if !id.eq_ignore_ascii_case(&api.service_principal_id) {
        return Err(GraphError::user_not_found(&id));
    }
    let f = filter(&uri, &["principalDisplayName", "resourceId"])?;
    let rows: Vec<Value> = state
        .tenant()
        .app_role_assignments
        .iter()
        .map(|a| assignment_row(&state, a))
        .collect();
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        &format!("servicePrincipals('{}')/appRoleAssignedTo", api.service_principal_id),
    )
}

/// Who may read app role assignments from the principal's side: user-list-approleassignments and
/// group-list-approleassignments list Directory.Read.All as the least privileged application
/// permission (AppRoleAssignment.ReadWrite.All higher).
const READ_ASSIGNMENTS: &[&str] = &[
    "Directory.Read.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.ReadWrite.All",
];

fn assignment_row(state: &SimState, a: &crate::seed::AppRoleAssignmentSeed) -> Value {
    let api = &state.seed.api;
    json!({"id": row_id(&a.principal_id, &a.app_role, "app"), "deletedDateTime": null,
        "appRoleId": app_role_id(&a.app_role), "createdDateTime": "2026-01-05T09:00:00Z",
        "principalDisplayName": a.principal_display_name, "principalId": a.principal_id,
        "principalType": a.principal_type, "resourceDisplayName": "mfa-recovery",
        "resourceId": api.service_principal_id})
}

/// GET /users/{id | upn}/appRoleAssignments — https://learn.microsoft.com/graph/api/user-list-approleassignments
/// The user's app role assignments and, as the page says, "app role assignments granted to
/// groups that the user is a direct member of". The page adds: "To ensure complete results for
/// users with many indirect app role assignments, use the ConsistencyLevel header set to eventual
/// and $count"; without them this answers the user's own assignments only (fail safe: a client
/// that leaves them out misses the groups' ones here too). `$filter` on `resourceId` (`eq`).
async fn user_app_role_assignments(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(user): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: axum::http::HeaderMap,
) -> GraphResult {
    p.require(READ_ASSIGNMENTS)?;
    let f = filter(&uri, &["resourceId"])?;
    let advanced = headers
        .get("consistencylevel")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("eventual"))
        && odata::query(&uri).get("$count").is_some_and(|c| c == "true");
    let rows: Vec<Value> = {
        let tenant = state.tenant();
        let u = tenant.user(&user).ok_or_else(|| GraphError::user_not_found(&user))?;
        let mut principals = vec![u.id.to_lowercase()];
        if advanced {
            principals.extend(
                tenant
                    .groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(&u.id)))
                    .map(|g| g.id.to_lowercase()),
            );
        }
        tenant
            .app_role_assignments
            .iter()
            .filter(|a| principals.contains(&a.principal_id.to_lowercase()))
            .map(|a| assignment_row(&state, a))
            .collect()
    };
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        &format!("users('{user}')/appRoleAssignments"),
    )
}

/// GET /groups/{id}/appRoleAssignments — https://learn.microsoft.com/graph/api/group-list-approleassignments
/// The app roles granted to the group itself.
async fn group_app_role_assignments(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(group): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GraphResult {
    p.require(READ_ASSIGNMENTS)?;
    let f = filter(&uri, &["resourceId"])?;
    let rows: Vec<Value> = {
        let tenant = state.tenant();
        if !tenant.groups.iter().any(|g| g.id.eq_ignore_ascii_case(&group)) {
            return Err(GraphError::user_not_found(&group));
        }
        tenant
            .app_role_assignments
            .iter()
            .filter(|a| a.principal_id.eq_ignore_ascii_case(&group))
            .map(|a| assignment_row(&state, a))
            .collect()
    };
    page_of(
        &state,
        v,
        keep(rows, f.as_ref()),
        &uri,
        &format!("groups('{group}')/appRoleAssignments"),
    )
}
