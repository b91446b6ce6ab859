//! Simulated Graph: users, authentication of callers, membership, roles, sessions, mail, the
//! registration report and `$batch`.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn users_are_found_by_object_id_or_upn_in_any_case() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (s1, by_id) = g.get(&format!("/v1.0/users/{ADELE}")).await;
    let (s2, by_upn) = g.get("/v1.0/users/Adele.Vance@CONTOSO.test").await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(by_id["id"], ADELE);
    assert_eq!(by_upn["id"], ADELE);
    // Default properties only: otherMails and accountEnabled need $select.
    assert!(by_id.get("otherMails").is_none());
    assert!(by_id.get("accountEnabled").is_none());
    assert_eq!(by_id["mobilePhone"], "+1 4255550101");
}

#[tokio::test]
async fn select_returns_exactly_the_selected_properties() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g
        .get(&format!(
            "/v1.0/users/{DIEGO_DISABLED}?$select=id,accountEnabled,userType,otherMails"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["accountEnabled"], false);
    assert_eq!(body["userType"], "Member");
    assert_eq!(body["otherMails"], json!([]));
    assert!(body.get("displayName").is_none(), "{body}");
}

#[tokio::test]
async fn unknown_select_property_is_a_bad_request() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g.get(&format!("/v1.0/users/{ADELE}?$select=id,favouriteColour")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "Request_BadRequest");
}

#[tokio::test]
async fn manager_expands_with_its_own_select_and_is_404_when_absent() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g
        .get(&format!(
            "/v1.0/users/{ADELE}?$select=id,otherMails&$expand=manager($select=id,displayName,mail)"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["manager"]["id"], MEGAN);
    assert_eq!(body["manager"]["mail"], "megan.bowen@contoso.test");
    assert!(body["manager"].get("mobilePhone").is_none());
    let (status, body) = g.get(&format!("/v1.0/users/{ADELE}/manager")).await;
    assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(MEGAN)));
    let (status, body) = g.get(&format!("/v1.0/users/{MEGAN}/manager")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
}

#[tokio::test]
async fn unknown_users_get_graphs_not_found_error_body() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g.get("/v1.0/users/nobody@contoso.test").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_graph_error(&body, "Request_ResourceNotFound");
}

#[tokio::test]
async fn graph_refuses_requests_without_a_valid_managed_identity_token() {
    let sim = start().await;
    let url = format!("{}/v1.0/users/{ADELE}", sim.graph_endpoint());
    let client = reqwest::Client::new();
    // No token.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_graph_error(&r.json::<Value>().await.unwrap(), "InvalidAuthenticationToken");
    // A caller token for the API (wrong audience).
    let caller = sim.issue_token(&mfa_recovery_sim::TokenRequest::default());
    let r = client.get(&url).bearer_auth(caller).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // An expired Graph token.
    let expired = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["User.Read.All".into()],
        expires_in: Some(-60),
        ..Default::default()
    });
    let r = client.get(&url).bearer_auth(expired).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A token from another tenant.
    let foreign = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["User.Read.All".into()],
        tenant_id: Some("00000000-0000-0000-0000-000000000001".into()),
        ..Default::default()
    });
    let r = client.get(&url).bearer_auth(foreign).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A forged signature.
    let good = mi_token(&sim, "https://graph.microsoft.com").await;
    let mut forged = good[..good.len() - 4].to_owned();
    forged.push_str("AAAA");
    let r = client.get(&url).bearer_auth(forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The real managed identity token works.
    let r = client.get(&url).bearer_auth(good).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("request-id"));
}

#[tokio::test]
async fn each_call_needs_its_application_permission() {
    let sim = start().await;
    let reader = Graph::with_token(&sim, graph_token_with(&sim, &["User.Read.All"]));
    let (status, _) = reader.get(&format!("/v1.0/users/{ADELE}")).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in [
        ("GET", format!("/v1.0/users/{ADELE}/authentication/methods")),
        (
            "POST",
            format!("/v1.0/users/{ADELE}/authentication/temporaryAccessPassMethods"),
        ),
        (
            "GET",
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass".into(),
        ),
        (
            "GET",
            "/v1.0/reports/authenticationMethods/userRegistrationDetails".into(),
        ),
        ("POST", format!("/v1.0/users/{ADELE}/revokeSignInSessions")),
        ("POST", format!("/v1.0/users/{MAILBOX}/sendMail")),
        (
            "GET",
            format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{ADELE}'"),
        ),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = reader.call(m, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        // Mail is Exchange's: it refuses with its own code (neither the Entra permission nor an
        // RBAC for Applications role covers the mailbox).
        let code = if path.ends_with("/sendMail") {
            "ErrorAccessDenied"
        } else {
            "Authorization_RequestDenied"
        };
        assert_graph_error(&body, code);
    }
    // The function app's identity may not change the TAP policy.
    let app = Graph::as_app(&sim).await;
    let (status, _) = app
        .patch(
            "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass",
            json!({"state": "disabled"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn transitive_membership_covers_nested_groups_and_roles_through_groups() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let names = |body: &Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["displayName"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, lee) = g.get(&format!("/v1.0/users/{LEE}/transitiveMemberOf")).await;
    let lee = names(&lee);
    assert!(
        lee.contains(&"Sales".to_owned()) && lee.contains(&"TAP Eligible Users".to_owned()),
        "{lee:?}"
    );
    let (_, isaiah) = g
        .get(&format!(
            "/v1.0/users/{ISAIAH}/transitiveMemberOf/microsoft.graph.directoryRole"
        ))
        .await;
    assert_eq!(
        isaiah["value"][0]["roleTemplateId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    assert_eq!(isaiah["value"].as_array().unwrap().len(), 1);
    let (_, patti) = g.get(&format!("/v1.0/users/{PATTI}/transitiveMemberOf")).await;
    let patti_types: Vec<&str> = patti["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["@odata.type"].as_str().unwrap())
        .collect();
    assert!(patti_types.contains(&"#microsoft.graph.directoryRole"), "{patti}");
    let (_, alex) = g
        .get(&format!(
            "/v1.0/users/{ALEX}/transitiveMemberOf/microsoft.graph.directoryRole"
        ))
        .await;
    assert_eq!(alex["value"], json!([]));
}

#[tokio::test]
async fn membership_pages_follow_next_links() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let mut url = format!("/v1.0/users/{PATTI}/transitiveMemberOf?$top=1");
    let mut seen = Vec::new();
    loop {
        let (status, body) = g.get(&url).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["value"].as_array().unwrap().len() <= 1);
        seen.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "TAP Eligible Users, Helpdesk Admins, Helpdesk Administrator: {seen:?}"
    );
}

#[tokio::test]
async fn role_assignments_list_direct_assignments_by_principal() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g
        .get(&format!(
            "/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{ISAIAH}'"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["value"][0]["roleDefinitionId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    // Patti holds her role through a group: not a direct assignment.
    let (_, body) = g
        .get(&format!(
            "/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{PATTI}'"
        ))
        .await;
    assert_eq!(body["value"], json!([]));
}

#[tokio::test]
async fn revoke_sign_in_sessions_answers_200_true_and_is_recorded() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g
        .post(&format!("/v1.0/users/{ALEX}/revokeSignInSessions"), json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"], true);
    let view: Value = reqwest::get(format!("{}/sim/users/{ALEX}", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(view["sessionsRevokedAt"].is_string(), "{view}");
}

#[tokio::test]
async fn send_mail_is_accepted_and_recorded_in_the_outbox() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let message = json!({"message": {"subject": "Hello", "body": {"contentType": "Text", "content": "Body text"},
        "toRecipients": [{"emailAddress": {"address": "alex.wilber@personal.example"}}]}, "saveToSentItems": false});
    let (status, _) = g.post(&format!("/v1.0/users/{MAILBOX}/sendMail"), message).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let outbox = sim.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].provider, "graph");
    assert_eq!(outbox[0].to, vec!["alex.wilber@personal.example".to_owned()]);
    assert_eq!(outbox[0].from, MAILBOX);
    assert_eq!(outbox[0].body, "Body text");
    let (status, body) = g
        .post(
            &format!("/v1.0/users/{MAILBOX}/sendMail"),
            json!({"message": {"subject": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, "ErrorInvalidRecipients");
    assert_eq!(sim.outbox().len(), 1);
}

async fn all_report_rows(g: &Graph, first: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut url = first.to_owned();
    loop {
        let (status, body) = g.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rows.extend(body["value"].as_array().unwrap().iter().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn registration_report_pages_through_every_user() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (_, first) = g
        .get("/v1.0/reports/authenticationMethods/userRegistrationDetails")
        .await;
    assert_eq!(
        first["value"].as_array().unwrap().len(),
        4,
        "the demo tenant pages by 4"
    );
    assert!(first["@odata.nextLink"].is_string());
    let rows = all_report_rows(&g, "/v1.0/reports/authenticationMethods/userRegistrationDetails").await;
    let mut ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.len(),
        21,
        "every user of the demo tenant (21 with Cameron, at risk)"
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 21, "no row twice");
    let alex = rows.iter().find(|r| r["id"] == ALEX).unwrap();
    assert_eq!(alex["methodsRegistered"], json!(["microsoftAuthenticatorPush"]));
    assert_eq!(alex["isMfaRegistered"], true);
    assert_eq!(alex["userPreferredMethodForSecondaryAuthentication"], "push");
    let guest = rows.iter().find(|r| r["id"] == PAT_GUEST).unwrap();
    assert_eq!(
        (guest["userType"].as_str(), guest["isMfaRegistered"].as_bool()),
        (Some("guest"), Some(false))
    );
    let isaiah = rows.iter().find(|r| r["id"] == ISAIAH).unwrap();
    assert_eq!(
        (isaiah["isAdmin"].as_bool(), isaiah["isPasswordlessCapable"].as_bool()),
        (Some(true), Some(true))
    );
}

#[tokio::test]
async fn registration_report_filters_on_documented_fields_across_pages() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let admins = all_report_rows(
        &g,
        "/v1.0/reports/authenticationMethods/userRegistrationDetails?$filter=isAdmin eq true",
    )
    .await;
    let mut ids: Vec<&str> = admins.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec![ISAIAH, PATTI]);
    let mobile = all_report_rows(
        &g,
        "/v1.0/reports/authenticationMethods/userRegistrationDetails?$filter=methodsRegistered/any(m:m eq 'mobilePhone')",
    )
    .await;
    assert_eq!(mobile.len(), 15);
    assert!(mobile.iter().all(|r| {
        r["methodsRegistered"]
            .as_array()
            .unwrap()
            .contains(&json!("mobilePhone"))
    }));
    let ordered = all_report_rows(
        &g,
        "/v1.0/reports/authenticationMethods/userRegistrationDetails?$orderby=userPrincipalName",
    )
    .await;
    let upns: Vec<&str> = ordered
        .iter()
        .map(|r| r["userPrincipalName"].as_str().unwrap())
        .collect();
    let mut sorted = upns.clone();
    sorted.sort_by_key(|u| u.to_ascii_lowercase());
    assert_eq!(upns, sorted);
    for bad in ["$filter=mail eq 'x'", "$filter=isAdmin gt true", "$top=5", "$select=id"] {
        let (status, _) = g
            .get(&format!(
                "/v1.0/reports/authenticationMethods/userRegistrationDetails?{bad}"
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, row) = g
        .get(&format!(
            "/v1.0/reports/authenticationMethods/userRegistrationDetails/{ADELE}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(row["id"], ADELE);
}

#[tokio::test]
async fn batch_runs_up_to_twenty_requests_and_honours_depends_on() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (status, body) = g
        .post(
            "/v1.0/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": format!("/users/{ADELE}")},
                {"id": "2", "method": "GET", "url": "/users/nobody@contoso.test"},
                {"id": "3", "method": "GET", "url": format!("/users/{ALEX}"), "dependsOn": ["2"]},
                {"id": "4", "method": "POST", "url": format!("/users/{ALEX}/revokeSignInSessions"), "dependsOn": ["1"]},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let by_id = |id: &str| {
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["id"], ADELE);
    assert_eq!(by_id("2")["status"], 404);
    assert_eq!(by_id("3")["status"], 424);
    assert_eq!(by_id("4")["status"], 200);
    // The request log keeps the batch and each sub-request it ran, as its own record.
    let log = sim.requests();
    let batch = log
        .iter()
        .find(|r| r.path == "/v1.0/$batch")
        .expect("the batch is logged");
    assert_eq!(batch.body.as_ref().unwrap()["requests"].as_array().unwrap().len(), 4);
    assert!(
        log.iter()
            .any(|r| r.method == "POST" && r.path == format!("/v1.0/users/{ALEX}/revokeSignInSessions"))
    );
    assert!(
        log.iter()
            .any(|r| r.method == "GET" && r.path == format!("/v1.0/users/{ADELE}"))
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{ADELE}")}))
        .collect();
    let (status, _) = g.post("/v1.0/$batch", json!({"requests": many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = g
        .post(
            "/v1.0/$batch",
            json!({"requests": [
            {"id": "1", "method": "GET", "url": format!("/users/{ADELE}")},
            {"id": "1", "method": "GET", "url": format!("/users/{ALEX}")}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn directory_audits_record_admin_changes_and_need_both_permissions() {
    let sim = start().await;
    let app = Graph::as_app(&sim).await;
    app.create_tap(ALEX, json!({})).await;
    // An admin deletion to log (the default-phone rule is not under test here).
    sim.tenant().lenient_default_phone = true;
    app.delete(&format!("/v1.0/users/{LYNNE}/authentication/phoneMethods/{MOBILE}"))
        .await;
    // AuditLog.Read.All alone is not enough.
    let partial = Graph::with_token(&sim, graph_token_with(&sim, &["AuditLog.Read.All"]));
    let (status, _) = partial.get("/v1.0/auditLogs/directoryAudits").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let auditor = Graph::with_token(
        &sim,
        graph_token_with(&sim, &["AuditLog.Read.All", "Directory.Read.All"]),
    );
    // Newest first only when asked (`$orderby`): the docs state no order without it.
    let (status, all) = auditor
        .get("/v1.0/auditLogs/directoryAudits?$orderby=activityDateTime desc")
        .await;
    assert_eq!(status, StatusCode::OK);
    let activities: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["activityDisplayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        activities,
        vec!["Admin deleted security info", "Admin registered security info"],
        "newest first"
    );
    let (_, alex) = auditor
        .get(&format!("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/id eq '{ALEX}') and loggedByService eq 'Authentication Methods'"))
        .await;
    assert_eq!(alex["value"].as_array().unwrap().len(), 1);
    assert_eq!(
        alex["value"][0]["initiatedBy"]["app"]["appId"],
        "5e29463d-71da-4fe0-8e69-999b57db23b0"
    );
    let (_, none) = auditor
        .get("/v1.0/auditLogs/directoryAudits?$filter=activityDateTime ge 2099-01-01T00:00:00Z")
        .await;
    assert_eq!(none["value"], json!([]));
    // `targetResources` filters on id and displayName only (directoryaudit-list).
    let (status, body) = auditor
        .get("/v1.0/auditLogs/directoryAudits?$filter=targetResources/any(t:t/userPrincipalName eq 'alex.wilber@contoso.test')")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "Request_UnsupportedQuery");
    let (status, body) = auditor
        .get("/v1.0/auditLogs/directoryAudits?$orderby=displayName")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// `transitiveMembers/microsoft.graph.user` gives users as `GET /users` does: the default
/// properties, or exactly those `$select` names (how the approvers' mail is read). A cast is an
/// advanced query (group-list-transitivemembers): `ConsistencyLevel: eventual` and `$count=true`.
#[tokio::test]
async fn group_user_members_honour_select() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let group = "a1b2c3d4-0001-4000-8000-000000000001";
    let (status, plain) = g
        .get_eventual(&format!(
            "/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$count=true"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    let (status, selected) = g
        .get_eventual(&format!(
            "/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$select=id,mail,accountEnabled&$count=true"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{selected}");
    let users = selected["value"].as_array().unwrap();
    assert_eq!(users.len(), plain["value"].as_array().unwrap().len());
    assert_eq!(selected["@odata.count"], users.len());
    let adele = users.iter().find(|u| u["id"] == ADELE).expect("Adele is a member");
    assert_eq!(adele["mail"], "adele.vance@contoso.test");
    assert_eq!(adele["accountEnabled"], true);
    assert!(adele.get("displayName").is_none(), "{adele}");
    assert!(users.iter().any(|u| u["accountEnabled"] == false), "Diego is disabled");
    let (status, body) = g
        .get_eventual(&format!(
            "/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user?$select=id,favouriteColour&$count=true"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// A cast without the advanced-query parameters is refused as Graph refuses it: without the
/// header, or without `$count=true` (group-list-transitivemembers). The request log keeps the
/// query and the header, so a test can see what the product sent.
#[tokio::test]
async fn a_cast_on_members_needs_the_advanced_query_parameters() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let group = "a1b2c3d4-0001-4000-8000-000000000001";
    for cast in ["microsoft.graph.user", "microsoft.graph.group"] {
        let (status, body) = g
            .get(&format!("/v1.0/groups/{group}/transitiveMembers/{cast}?$count=true"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{body}");
        let (status, body) = g
            .get_eventual(&format!("/v1.0/groups/{group}/transitiveMembers/{cast}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["code"], "Request_UnsupportedQuery", "{body}");
        let (status, body) = g
            .get_eventual(&format!("/v1.0/groups/{group}/transitiveMembers/{cast}?$count=true"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let sent = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/transitiveMembers/microsoft.graph.user") && r.status == 200)
        .collect::<Vec<_>>();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].query.as_deref(), Some("$count=true"));
    assert_eq!(
        sent[0].headers.get("consistencylevel").map(String::as_str),
        Some("eventual")
    );
}

/// `$search` needs `ConsistencyLevel: eventual` (https://learn.microsoft.com/graph/search-query-parameter).
#[tokio::test]
async fn search_needs_the_eventual_header_and_matches_word_prefixes() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["User.Read.All".into()],
        ..Default::default()
    });
    let url = format!(
        "{}/v1.0/users?$search=\"displayName:van\" OR \"mail:van\"&$count=true&$select=id,userPrincipalName",
        sim.base_url()
    );
    let client = reqwest::Client::new();
    let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "Request_UnsupportedQuery");
    let r = client
        .get(&url)
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["@odata.count"], 1, "{v}");
    assert_eq!(v["value"][0]["userPrincipalName"], "adele.vance@contoso.test");
}
