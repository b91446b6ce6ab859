//! The simulated privilege reads, one test per documented rule: role assignment and eligibility
//! schedule instances (any scope, custom roles, groups as principals), role definitions, PIM for
//! Groups eligibility (`$filter` required), service principals and `appRoleAssignedTo` (no
//! `principalId` filter), and a 403 `Authorization_RequestDenied` for each missing permission.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ALLAN: &str = "b0000015-0000-4000-8000-000000000015";
const CHRISTIE: &str = "b0000016-0000-4000-8000-000000000016";
const ENRICO: &str = "b0000017-0000-4000-8000-000000000017";
const HENRIETTA: &str = "b0000018-0000-4000-8000-000000000018";
const DEBRA: &str = "b0000019-0000-4000-8000-000000000019";
const HELPDESK_ADMINS: &str = "a1b2c3d4-0005-4000-8000-000000000005";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const API_SP: &str = "e0000001-0000-4000-8000-0000000000a1";

fn by_principal(collection: &str, principal: &str) -> String {
    format!("/v1.0/roleManagement/directory/{collection}?$filter=principalId eq '{principal}'")
}

fn values(body: &Value) -> &Vec<Value> {
    body["value"].as_array().unwrap()
}

#[tokio::test]
async fn an_eligible_admin_has_an_eligibility_and_no_active_assignment() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, eligible) = g.get(&by_principal("roleEligibilityScheduleInstances", ALLAN)).await;
    assert_eq!(status, StatusCode::OK, "{eligible}");
    let row = &values(&eligible)[0];
    assert_eq!(row["roleDefinitionId"], GLOBAL_ADMIN);
    assert_eq!(row["directoryScopeId"], "/");
    assert_eq!(row["memberType"], "Direct");
    assert!(row["roleEligibilityScheduleId"].is_string());
    let (_, active) = g.get(&by_principal("roleAssignmentScheduleInstances", ALLAN)).await;
    assert_eq!(active["value"], json!([]));
    // And no directoryRole in transitiveMemberOf: only an active role shows there.
    let (_, roles) = g
        .get(&format!(
            "/v1.0/users/{ALLAN}/transitiveMemberOf/microsoft.graph.directoryRole"
        ))
        .await;
    assert_eq!(roles["value"], json!([]));
}

#[tokio::test]
async fn scoped_and_custom_roles_are_active_assignments_that_transitive_member_of_does_not_show() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (_, christie) = g.get(&by_principal("roleAssignmentScheduleInstances", CHRISTIE)).await;
    assert_eq!(
        values(&christie)[0]["directoryScopeId"],
        "/administrativeUnits/f0000001-0000-4000-8000-0000000000e1"
    );
    assert_eq!(values(&christie)[0]["assignmentType"], "Assigned");
    let (_, enrico) = g.get(&by_principal("roleAssignmentScheduleInstances", ENRICO)).await;
    let custom = values(&enrico)[0]["roleDefinitionId"].as_str().unwrap().to_owned();
    let (status, definition) = g
        .get(&format!("/v1.0/roleManagement/directory/roleDefinitions/{custom}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(definition["isBuiltIn"], false);
    assert_eq!(definition["displayName"], "Tier 1 Support Operator");
    let (_, builtin) = g
        .get(&format!(
            "/v1.0/roleManagement/directory/roleDefinitions/{GLOBAL_ADMIN}"
        ))
        .await;
    assert_eq!(
        (builtin["isBuiltIn"].clone(), builtin["templateId"].clone()),
        (json!(true), json!(GLOBAL_ADMIN))
    );
    for user in [CHRISTIE, ENRICO] {
        let (_, roles) = g
            .get(&format!(
                "/v1.0/users/{user}/transitiveMemberOf/microsoft.graph.directoryRole"
            ))
            .await;
        assert_eq!(roles["value"], json!([]), "{user}");
    }
    // Permanent assignments are listed by roleAssignments too, with their scope.
    let (_, direct) = g
        .get(&format!(
            "/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{CHRISTIE}'"
        ))
        .await;
    assert_eq!(
        values(&direct)[0]["directoryScopeId"],
        values(&christie)[0]["directoryScopeId"]
    );
}

#[tokio::test]
async fn a_role_held_through_a_group_is_assigned_to_the_group() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (_, patti) = g.get(&by_principal("roleAssignmentScheduleInstances", PATTI)).await;
    assert_eq!(patti["value"], json!([]), "the principal is the group, not its member");
    let (_, group) = g
        .get(&by_principal("roleAssignmentScheduleInstances", HELPDESK_ADMINS))
        .await;
    assert_eq!(values(&group)[0]["principalId"], HELPDESK_ADMINS);
    let (_, memberships) = g.get(&format!("/v1.0/users/{PATTI}/transitiveMemberOf")).await;
    let group = values(&memberships)
        .iter()
        .find(|m| m["id"] == HELPDESK_ADMINS)
        .unwrap();
    assert_eq!(group["isAssignableToRole"], true);
}

#[tokio::test]
async fn pim_for_groups_eligibility_needs_a_filter_on_principal_or_group() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let base = "/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances";
    let (status, body) = g.get(base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = g.get(&format!("{base}?$filter=accessId eq 'member'")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = g.get(&format!("{base}?$filter=principalId eq '{HENRIETTA}'")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = &values(&body)[0];
    assert_eq!(
        (row["groupId"].clone(), row["accessId"].clone()),
        (json!(HELPDESK_ADMINS), json!("member"))
    );
    let (_, by_group) = g.get(&format!("{base}?$filter=groupId eq '{HELPDESK_ADMINS}'")).await;
    assert_eq!(values(&by_group).len(), 1);
    // Eligible is not a member until activated.
    let (_, memberships) = g.get(&format!("/v1.0/users/{HENRIETTA}/transitiveMemberOf")).await;
    assert!(!values(&memberships).iter().any(|m| m["id"] == HELPDESK_ADMINS));
}

#[tokio::test]
async fn the_apis_service_principal_lists_who_holds_its_app_roles() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, sps) = g
        .get("/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(n:n eq 'api://mfa-recovery')")
        .await;
    assert_eq!(status, StatusCode::OK, "{sps}");
    assert_eq!(values(&sps)[0]["id"], API_SP);
    let (_, by_app_id) = g
        .get("/v1.0/servicePrincipals?$filter=appId eq '0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31'")
        .await;
    assert_eq!(values(&by_app_id)[0]["id"], API_SP);
    let (status, holders) = g
        .get(&format!("/v1.0/servicePrincipals/{API_SP}/appRoleAssignedTo"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let debra = values(&holders).iter().find(|h| h["principalId"] == DEBRA).unwrap();
    assert_eq!(debra["principalType"], "User");
    assert_eq!(debra["resourceId"], API_SP);
    assert!(debra["appRoleId"].is_string());
    // The docs allow no $filter on principalId here.
    let (status, _) = g
        .get(&format!(
            "/v1.0/servicePrincipals/{API_SP}/appRoleAssignedTo?$filter=principalId eq '{DEBRA}'"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn each_read_needs_its_permission_and_answers_403_without_it() {
    let sim = start().await;
    let cases = [
        (
            by_principal("roleAssignmentScheduleInstances", ALLAN),
            "RoleAssignmentSchedule.Read.Directory",
        ),
        (
            by_principal("roleEligibilityScheduleInstances", ALLAN),
            "RoleEligibilitySchedule.Read.Directory",
        ),
        (
            format!("/v1.0/roleManagement/directory/roleDefinitions/{GLOBAL_ADMIN}"),
            "RoleManagement.Read.Directory",
        ),
        (
            format!(
                "/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances?$filter=principalId eq '{HENRIETTA}'"
            ),
            "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        ),
        (
            format!("/v1.0/servicePrincipals/{API_SP}/appRoleAssignedTo"),
            "Application.Read.All",
        ),
    ];
    for (path, least) in &cases {
        let without = Graph::with_token(&sim, graph_token_with(&sim, &["User.Read.All"]));
        let (status, body) = without.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied", "{path}");
        assert_eq!(
            body["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
        let with = Graph::with_token(&sim, graph_token_with(&sim, &[least]));
        let (status, body) = with.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path} with {least}: {body}");
    }
}

#[tokio::test]
async fn owners_of_role_assignable_groups_and_of_the_api_are_listed() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, groups) = g.get("/v1.0/groups?$filter=isAssignableToRole eq true").await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    let ids: Vec<&str> = values(&groups).iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![HELPDESK_ADMINS]);
    let (_, owners) = g.get(&format!("/v1.0/groups/{HELPDESK_ADMINS}/owners")).await;
    assert_eq!(values(&owners)[0]["id"], "b0000020-0000-4000-8000-000000000020");
    assert_eq!(values(&owners)[0]["@odata.type"], "#microsoft.graph.user");
    let (_, apps) = g
        .get("/v1.0/applications?$filter=appId eq '0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31'")
        .await;
    let app = values(&apps)[0]["id"].as_str().unwrap().to_owned();
    let (status, owners) = g.get(&format!("/v1.0/applications/{app}/owners")).await;
    assert_eq!((status, owners["value"].clone()), (StatusCode::OK, json!([])));
}
