//! `POST /api/users/{user}/mfa/reset` on the simulated tenant: scopes, Graph's order and rules,
//! faults halfway and a repeat that finishes the job, reset plus a pass, refusals, leaks.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// A reset body. These tests are about what a reset removes, so they accept leaving the user
/// empty (`allowEmpty`), which a second approver must agree to (`reset_approved`); `guardrails.rs`
/// tests the refusals.
fn body(extra: Value) -> Value {
    let mut b = json!({
        "ticket": {"system": "jira", "id": "HELP-42"},
        "reason": "lost phone",
        "allowEmpty": true,
        "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test",
            "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()},
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

impl TestApp {
    async fn post_reset(&self, user: &str, roles: &[&str], body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/api/users/{user}/mfa/reset", self.base))
            .bearer_auth(self.token(roles))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn methods_of(&self, user: &str) -> Vec<String> {
        let v: Value = self
            .client
            .get(format!("{}/sim/users/{user}", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap().to_owned())
            .filter(|t| t != "password")
            .collect()
    }

    async fn report_row(&self, user: &str) -> Value {
        let token = self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            audience: Some("https://graph.microsoft.com".into()),
            roles: vec!["AuditLog.Read.All".into()],
            ..Default::default()
        });
        self.client
            .get(format!(
                "{}/v1.0/reports/authenticationMethods/userRegistrationDetails/{user}",
                self.sim.base_url()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

const RESET: &[&str] = &["Recovery.Reset"];
const RESET_TAP: &[&str] = &["Recovery.Reset", "Recovery.Tap"];
/// Isaiah Langer: an approver (and an active Global Administrator).
const ISAIAH: &str = "b0000003-0000-4000-8000-000000000003";

/// An app with approvals on, so a reset that leaves the user nothing (`allowEmpty`) can be agreed.
async fn approving_app() -> TestApp {
    spawn_app_with(&[
        ("APPROVAL_REQUIRED_FOR", "privileged"),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
        ("TAP_MAX_PER_CALLER_PER_HOUR", "100"),
    ])
    .await
}

impl TestApp {
    /// A reset as `post_reset`; when it leaves the user nothing it is held (`leaves_nothing`),
    /// Isaiah approves it, and the answer is the finished request's (status and result).
    async fn reset_approved(&self, user: &str, body: &Value) -> (StatusCode, Value) {
        let (status, held) = self.post_reset(user, RESET, body).await;
        if status != StatusCode::ACCEPTED {
            return (status, held);
        }
        assert!(
            held["approval"]["reasons"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("leaves_nothing"))),
            "{held}"
        );
        let id = held["requestId"].as_str().unwrap().to_owned();
        let approver = self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec!["Recovery.Approve".into()],
            object_id: Some(ISAIAH.into()),
            name: Some("Isaiah Langer".into()),
            upn: Some("isaiah.langer@contoso.test".into()),
            ..Default::default()
        });
        let r = self
            .client
            .post(format!("{}/api/requests/{id}/approve", self.base))
            .bearer_auth(approver)
            .json(&json!({"comment": "called the user back; Conditional Access protects registration"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
        let done = self.wait_final(&id).await;
        let status = StatusCode::from_u16(done["resultStatus"].as_u64().unwrap_or(500) as u16).unwrap();
        (status, done["result"].clone())
    }
}
const ADELE: &str = "b0000001-0000-4000-8000-000000000001";

#[tokio::test]
async fn a_portal_reset_removes_phones_and_authenticator_in_graphs_order() {
    let app = approving_app().await;
    let (status, result) = app.reset_approved("adele.vance@contoso.test", &body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let removed: Vec<&str> = result["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    // Phones first, the alternate mobile before the mobile, while the authenticator can still
    // take the default (Graph never deletes the default phone: phoneauthenticationmethod-delete).
    assert_eq!(removed, vec!["phone", "phone", "microsoftAuthenticator"]);
    assert!(
        result["removed"][0]["label"]
            .as_str()
            .unwrap()
            .starts_with("alternateMobile"),
        "{result}"
    );
    assert!(result["removed"][1]["label"].as_str().unwrap().starts_with("mobile"));
    assert_eq!(result["failed"], json!([]));
    assert_eq!(
        result["remaining"].as_array().unwrap().len(),
        1,
        "email stays (the portal button keeps it)"
    );
    assert_eq!(result["sessionsRevoked"], true);
    assert_eq!(app.methods_of(ADELE).await, vec!["email"]);
    let row = app.report_row(ADELE).await;
    assert_eq!(row["isMfaRegistered"], false, "{row}");
    // Notices went to the user's addresses and the manager.
    assert_eq!(result["notified"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn each_scope_removes_what_it_says() {
    let app = approving_app().await;
    let grady = "b0000009-0000-4000-8000-000000000009";
    let (status, result) = app.post_reset(grady, RESET, &body(json!({"scope": "portal"}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let mut left = app.methods_of(grady).await;
    left.sort();
    assert_eq!(
        left,
        vec![
            "email",
            "external",
            "fido2",
            "hardwareOath",
            "platformCredential",
            "qrCodePin",
            "windowsHelloForBusiness"
        ]
    );
    let row = app.report_row(grady).await;
    assert!(
        !row["methodsRegistered"]
            .as_array()
            .unwrap()
            .contains(&json!("hardwareOneTimePasscode")),
        "the token was deactivated"
    );
    let (status, result) = app.reset_approved(grady, &body(json!({"scope": "all"}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(app.methods_of(grady).await.is_empty(), "only the password is left");
    assert_eq!(result["remaining"], json!([]));
    // `methods`: only the listed ids.
    let (status, _) = app
        .post_reset(
            "megan.bowen@contoso.test",
            RESET,
            &body(json!({"scope": "methods", "methods": ["0a1b2c3d-7777-4a6b-9c1d-3e0a8f2d4c77"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.methods_of("megan.bowen@contoso.test").await, vec!["phone"]);
}

#[tokio::test]
async fn a_default_alternate_mobile_is_moved_off_and_removed() {
    let app = approving_app().await;
    let admin = app.sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["UserAuthenticationMethod.ReadWrite.All".into()],
        ..Default::default()
    });
    app.client
        .patch(format!(
            "{}/beta/users/{ADELE}/authentication/signInPreferences",
            app.sim.base_url()
        ))
        .bearer_auth(admin)
        .json(&json!({"userPreferredMethodForSecondaryAuthentication": "voiceAlternateMobile"}))
        .send()
        .await
        .unwrap();
    let (status, result) = app.reset_approved(ADELE, &body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(app.methods_of(ADELE).await, vec!["email"]);
}

#[tokio::test]
async fn graph_failing_halfway_is_reported_and_the_same_request_finishes_the_job() {
    let app = spawn_app().await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/*/users/*/authentication/phoneMethods/*", "method": "DELETE", "status": 503, "count": 8}))
        .send()
        .await
        .unwrap();
    // With its pass (by email), as a reset that leaves nothing must be.
    let with_pass = body(json!({"allowEmpty": false, "tap": {"delivery": {"channel": "email"}}}));
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{result}");
    assert_eq!(result["error"]["code"], "reset_incomplete");
    // The phones go first; while they cannot, the authenticator stays to take the default.
    assert_eq!(result["removed"].as_array().unwrap().len(), 0, "{result}");
    assert!(!result["failed"].as_array().unwrap().is_empty());
    assert!(
        result["remaining"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "phone")
    );
    app.client
        .delete(format!("{}/sim/faults", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    let (status, again) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let removed: Vec<&str> = again["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        removed,
        vec!["phone", "phone", "microsoftAuthenticator"],
        "what was left is done, the default moved off the mobile first"
    );
    assert_eq!(app.methods_of(ADELE).await, vec!["email", "temporaryAccessPass"]);
}

#[tokio::test]
async fn a_method_removed_meanwhile_counts_as_removed() {
    let app = approving_app().await;
    // Someone deletes Alex's Authenticator between the listing and the delete: the simulator
    // answers the reset's DELETE with 404 after doing it itself.
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/*/users/*/authentication/microsoftAuthenticatorMethods/*", "method": "DELETE", "status": 404, "after": true}))
        .send()
        .await
        .unwrap();
    let (status, result) = app.reset_approved("alex.wilber@contoso.test", &body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["removed"][0]["type"], "microsoftAuthenticator");
}

#[tokio::test]
async fn reset_and_a_pass_in_one_call_needs_both_roles() {
    let app = spawn_app().await;
    let with_tap = body(json!({"tap": {"delivery": {"channel": "email"}}}));
    let (status, _) = app.post_reset("alex.wilber@contoso.test", RESET, &with_tap).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.methods_of("b0000002-0000-4000-8000-000000000002").await,
        vec!["microsoftAuthenticator"],
        "nothing was removed"
    );
    let (status, result) = app
        .post_reset(
            "alex.wilber@contoso.test",
            &["Recovery.Reset", "Recovery.Tap"],
            &with_tap,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["tap"]["delivery"]["to"], "a***r@personal.example");
    assert_eq!(
        app.methods_of("b0000002-0000-4000-8000-000000000002").await,
        vec!["temporaryAccessPass"]
    );
    // The leak check on this path: the pass is in the outbox only.
    let taps: Value = app
        .client
        .get(format!("{}/sim/taps", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = taps["value"][0]["temporaryAccessPass"].as_str().unwrap();
    let records: Value = app
        .client
        .get(format!("{}/api/audit?pageSize=1000", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        records["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "mfa.reset" && r["phase"] == "intent")
    );
    assert!(!result.to_string().contains(pass) && !records.to_string().contains(pass));
}

#[tokio::test]
async fn a_privileged_target_is_refused_with_nothing_deleted() {
    let app = spawn_app().await;
    let (status, result) = app
        .post_reset("isaiah.langer@contoso.test", RESET, &body(json!({"scope": "all"})))
        .await;
    assert_eq!(
        (status, result["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("target_protected"))
    );
    assert_eq!(app.methods_of("b0000003-0000-4000-8000-000000000003").await.len(), 3);
    let (status, result) = app
        .post_reset(ADELE, RESET, &body(json!({"scope": "everything"})))
        .await;
    assert_eq!(
        (status, result["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

/// Every demo user who may be reset, under each scope: afterwards nothing the scope covers is
/// left, and a user left with no MFA method shows `isMfaRegistered: false` in the report.
#[tokio::test]
async fn every_demo_users_method_mix_under_each_scope() {
    let users = [
        ("b0000001-0000-4000-8000-000000000001", "adele"),
        ("b0000002-0000-4000-8000-000000000002", "alex"),
        ("b0000004-0000-4000-8000-000000000004", "lynne"),
        ("b0000006-0000-4000-8000-000000000006", "diego"),
        ("b0000007-0000-4000-8000-000000000007", "megan"),
        ("b0000008-0000-4000-8000-000000000008", "nestor"),
        ("b0000009-0000-4000-8000-000000000009", "grady"),
        ("b0000011-0000-4000-8000-000000000011", "lee"),
        ("b0000012-0000-4000-8000-000000000012", "miriam"),
    ];
    for scope in ["portal", "all"] {
        let app = approving_app().await;
        for (id, name) in users {
            let (status, result) = app.reset_approved(id, &body(json!({"scope": scope}))).await;
            assert_eq!(status, StatusCode::OK, "{name} {scope}: {result}");
            let left = app.methods_of(id).await;
            let covered: &[&str] = match scope {
                "portal" => &["phone", "microsoftAuthenticator", "softwareOath"],
                _ => &[
                    "phone",
                    "microsoftAuthenticator",
                    "softwareOath",
                    "hardwareOath",
                    "fido2",
                    "windowsHelloForBusiness",
                    "platformCredential",
                    "email",
                    "external",
                    "qrCodePin",
                    "temporaryAccessPass",
                ],
            };
            // Graph never deletes a default phone (phoneauthenticationmethod-delete): where no
            // other method could take the default, the reset keeps it and says so.
            let kept: Vec<&str> = result["kept"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["type"].as_str().unwrap())
                .collect();
            assert!(kept.iter().all(|k| *k == "phone"), "{name} {scope}: {result}");
            let mut left_unkept = left.clone();
            for k in &kept {
                if let Some(i) = left_unkept.iter().position(|t| t == k) {
                    left_unkept.remove(i);
                }
            }
            assert!(
                left_unkept.iter().all(|t| !covered.contains(&t.as_str())),
                "{name} {scope}: {left:?}"
            );
            let row = app.report_row(id).await;
            let mfa_left = left
                .iter()
                .any(|t| !matches!(t.as_str(), "email" | "temporaryAccessPass" | "hardwareOath"));
            assert_eq!(
                row["isMfaRegistered"],
                json!(mfa_left),
                "{name} {scope}: {left:?} {row}"
            );
        }
    }
}

#[tokio::test]
async fn throttling_past_the_retry_budget_leaves_a_result_that_a_repeat_finishes() {
    let app = spawn_app().await;
    // Every phone delete is throttled for longer than the client waits (Retry-After 60 s): the
    // first in the reset's chain, then each phone alone.
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/*/users/*/authentication/phoneMethods/*", "method": "DELETE", "status": 429, "retryAfter": 60, "count": 3}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let with_pass = body(json!({"allowEmpty": false, "tap": {"delivery": {"channel": "email"}}}));
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "a Retry-After past the budget is not waited out"
    );
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{result}");
    assert!(
        result["failed"].as_array().unwrap().iter().all(|f| {
            let e = f["error"].as_str().unwrap();
            e.contains("429") || e.starts_with("not removed yet")
        }),
        "{result}"
    );
    let (status, again) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(app.methods_of(ADELE).await, vec!["email", "temporaryAccessPass"]);
}

/// Graph never deletes a user's default phone (phoneauthenticationmethod-delete): with no other
/// method to take the default, the reset keeps it, says so (a `kept` entry and a note, not a
/// failure to retry) and still sends the pass; on a tenant that allows it, the phone goes.
#[tokio::test]
async fn a_default_phone_with_no_method_to_take_the_default_is_kept_and_said() {
    let lynne = "b0000004-0000-4000-8000-000000000004";
    let app = approving_app().await;
    let (status, result) = app.reset_approved(lynne, &body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["kept"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(result["kept"][0]["type"], "phone", "{result}");
    assert!(
        result["kept"][0]["error"].as_str().unwrap().contains("docs/reset.md"),
        "{result}"
    );
    assert!(result["note"].as_str().unwrap().contains("default phone"), "{result}");
    assert_eq!(result["failed"], json!([]), "{result}");
    assert!(app.methods_of(lynne).await.contains(&"phone".to_owned()));
    let records = app.audit_of(Some("mfa.reset")).await;
    assert!(
        records.iter().any(|r| r["details"]["kept"][0]["type"] == "phone"),
        "the trail keeps what was kept: {records:?}"
    );
    // With a pass asked for in the same call, the pass still goes out (Lynne in the pass
    // policy's scope: all users).
    let app = approving_app().await;
    app.sim.tenant().tap_policy["includeTargets"] =
        json!([{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}]);
    let with_pass = body(json!({"tap": {"delivery": {"channel": "email"}}}));
    let (status, result) = app.post_reset(lynne, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["kept"][0]["type"], "phone", "{result}");
    assert!(result["tap"]["tapMethodId"].is_string(), "the pass went out: {result}");
    assert_eq!(app.passes().await.len(), 1, "{result}");
    let lenient = approving_app().await;
    lenient.sim.tenant().lenient_default_phone = true;
    let (status, result) = lenient.reset_approved(lynne, &body(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["kept"], json!([]), "{result}");
    assert!(!lenient.methods_of(lynne).await.contains(&"phone".to_owned()));
}

/// The removals go as one chain: a beta `$batch` whose writes each wait for the one before
/// (`dependsOn`), the default moved off the phone before the phone goes. A chain refused as a
/// whole, or stopped by a write that fails, leaves the rest to go one by one as before: the same
/// methods removed, each once, and the pass issued once.
#[tokio::test]
async fn the_removals_go_as_one_chain_and_what_it_leaves_goes_one_by_one() {
    let with_pass = body(json!({"allowEmpty": false, "tap": {"delivery": {"channel": "email"}}}));
    let writes = |app: &TestApp| -> Vec<(bool, String, String)> {
        app.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/authentication/") && r.method != "GET" && !r.path.ends_with("/$batch"))
            .map(|r| {
                (
                    r.in_batch,
                    r.method.clone(),
                    r.path.rsplit('/').nth(1).unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };

    // As one chain: Adele's default is her mobile phone.
    let app = spawn_app().await;
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(app.methods_of(ADELE).await, vec!["email", "temporaryAccessPass"]);
    let chain = app
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/beta/$batch" && r.body.as_ref().is_some_and(|b| b["requests"][0]["method"] != "GET"))
        .expect("the removals' chain");
    let parts = chain.body.unwrap()["requests"].as_array().unwrap().clone();
    let methods: Vec<&str> = parts.iter().map(|p| p["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["DELETE", "PATCH", "DELETE", "DELETE"], "{parts:#?}");
    assert_eq!(
        parts[1]["body"]["userPreferredMethodForSecondaryAuthentication"],
        "push"
    );
    for (i, part) in parts.iter().enumerate().skip(1) {
        assert_eq!(part["dependsOn"], json!([(i - 1).to_string()]), "{part}");
    }
    assert!(
        writes(&app)
            .iter()
            .all(|(in_batch, method, _)| *in_batch || method == "POST"),
        "every removal was a part of the chain: {:?}",
        writes(&app)
    );
    assert_eq!(result["removed"].as_array().unwrap().len(), 3, "{result}");

    // The chain refused as a whole: one by one, the same result.
    let app = spawn_app().await;
    crate::cost::fault(
        &app,
        json!({"route": "/beta/$batch", "method": "POST", "status": 500, "count": 100}),
    )
    .await;
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(app.methods_of(ADELE).await, vec!["email", "temporaryAccessPass"]);
    assert!(writes(&app).iter().all(|(in_batch, _, _)| !in_batch));
    assert_eq!(result["removed"].as_array().unwrap().len(), 3, "{result}");

    // A write of the chain fails (the mobile phone, once): the rest is not run (424) and goes
    // one by one; what the chain removed is not removed again.
    let app = spawn_app().await;
    crate::cost::fault(&app, json!({"route": "/beta/users/*/authentication/phoneMethods/3179e48a-*", "method": "DELETE", "status": 500, "count": 1})).await;
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(app.methods_of(ADELE).await, vec!["email", "temporaryAccessPass"]);
    let deletes: Vec<_> = writes(&app).into_iter().filter(|(_, m, _)| m == "DELETE").collect();
    assert_eq!(
        deletes.iter().filter(|(b, _, _)| *b).count(),
        2,
        "the alternate phone, then the mobile that failed: {deletes:?}"
    );
    assert_eq!(
        deletes.iter().filter(|(b, _, _)| !*b).count(),
        2,
        "the mobile phone and the authenticator alone: {deletes:?}"
    );
    let passes = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods"))
        .count();
    assert_eq!(passes, 1);
}

/// The pass is created beside the removals but delivered only once they are all done, one by
/// one too: a user who has the pass may register a phone, which a removal still under way must
/// not take, and a retry that finds the pass delivered finishes the pass alone.
#[tokio::test]
async fn the_pass_is_delivered_only_after_every_removal() {
    let app = spawn_app().await;
    // The chain stops at the mobile phone; alone, the authenticator's delete takes its time.
    for fault in [
        json!({"route": "/beta/users/*/authentication/phoneMethods/3179e48a-*", "method": "DELETE", "status": 500, "count": 1}),
        json!({"route": "/v1.0/users/*/authentication/microsoftAuthenticatorMethods/*", "method": "DELETE", "latencyMs": 400, "count": 1}),
    ] {
        crate::cost::fault(&app, fault).await;
    }
    let with_pass = body(json!({"allowEmpty": false, "tap": {"delivery": {"channel": "email"}}}));
    let (status, result) = app.post_reset(ADELE, RESET_TAP, &with_pass).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    let requests = app.sim.requests();
    let last_removal = requests
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.ended_us)
        .max()
        .unwrap();
    let created = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods"))
        .unwrap();
    assert!(
        created.started_us < last_removal,
        "the pass is created beside the removals"
    );
    let delivery = requests
        .iter()
        .find(|r| r.path.ends_with("/sendMail") && !crate::cost::is_notice(r))
        .expect("the pass's email");
    assert!(
        delivery.started_us >= last_removal,
        "delivered at {} before the last removal ended at {last_removal}",
        delivery.started_us
    );
}
