//! Verifications the service makes and checks (`TAP_REQUIRE_VERIFICATION=service`), end to end on
//! the simulated tenant: send a code, read it from the simulator's outbox as the user would,
//! confirm it, use it for a pass; and every way that must fail.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const AGENT: &str = "a0000000-0000-4000-8000-00000000a9e1";
const OTHER_AGENT: &str = "a0000000-0000-4000-8000-00000000b0b2";

async fn service_app() -> TestApp {
    spawn_app_with(&[("TAP_REQUIRE_VERIFICATION", "service")]).await
}

impl TestApp {
    pub(crate) fn agent_token(&self, object_id: &str) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec![
                "Recovery.Tap".into(),
                "Recovery.Reset".into(),
                "Recovery.Request".into(),
            ],
            object_id: Some(object_id.to_owned()),
            name: Some("Megan Bowen".into()),
            // A person of the tenant signs in (a delegated token: Entra gives an application's
            // token its service principal's id, never a user's); any other id is an application.
            upn: self
                .sim
                .tenant()
                .users
                .iter()
                .find(|u| u.id.eq_ignore_ascii_case(object_id))
                .map(|u| u.upn.clone()),
            ..Default::default()
        })
    }

    pub(crate) async fn post_as(&self, agent: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.agent_token(agent))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Send a code to `user` on `channel`; the verification id and the code as the user reads it.
    pub(crate) async fn send_code(&self, agent: &str, user: &str, channel: &str) -> (String, String) {
        let before = self.outbox().await.len();
        let (status, sent) = self
            .post_as(
                agent,
                &format!("/api/users/{user}/verifications"),
                &json!({"channel": channel, "ticket": {"system": "servicenow", "id": "INC0020001"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        let message = self.outbox().await.into_iter().nth(before).expect("the code was sent");
        let code = message
            .body
            .split("Your code: ")
            .nth(1)
            .unwrap()
            .chars()
            .take(6)
            .collect::<String>();
        (sent["verificationId"].as_str().unwrap().to_owned(), code)
    }

    pub(crate) async fn confirm(&self, agent: &str, id: &str, code: &str) -> (StatusCode, Value) {
        self.post_as(
            agent,
            &format!("/api/verifications/{id}/confirm"),
            &json!({"code": code}),
        )
        .await
    }

    pub(crate) async fn tap_with(
        &self,
        agent: &str,
        user: &str,
        channel: &str,
        verification: Value,
    ) -> (StatusCode, Value) {
        let body = json!({"delivery": {"channel": channel}, "ticket": {"system": "servicenow", "id": "INC0020001"},
            "reason": "lost phone", "verification": verification});
        self.post_as(agent, &format!("/api/users/{user}/tap"), &body).await
    }
}

fn wrong(code: &str) -> String {
    let last = (code.as_bytes()[5] - b'0' + 1) % 10;
    format!("{}{last}", &code[..5])
}

#[tokio::test]
async fn a_code_by_email_confirmed_then_a_pass_by_sms() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let before = app.outbox().await.len();
    let (status, sent) = app
        .post_as(
            AGENT,
            &format!("/api/users/{user}/verifications"),
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["channel"], "email");
    assert_eq!(sent["sentTo"], "a***e@personal.example");
    assert!(sent["expiresAt"].is_string());
    let message = app.outbox().await.into_iter().nth(before).unwrap();
    assert_eq!(message.to, vec!["adele.vance@personal.example"]);
    assert!(message.body.contains("Megan Bowen"), "{}", message.body);
    assert!(message.body.contains("only to an agent you called"));
    let code: String = message
        .body
        .split("Your code: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    let id = sent["verificationId"].as_str().unwrap();

    let (status, confirmed) = app.confirm(AGENT, id, &code).await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "verified");

    let (status, issued) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    // The outcome record keeps the verification: channel, masked address, times; never the code.
    let records = json!({"value": app.audit_of(None).await});
    let text = records.to_string();
    let outcome = records["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "tap.issue" && r["phase"] == "outcome")
        .unwrap();
    assert_eq!(outcome["details"]["verification"]["id"], id);
    assert_eq!(outcome["details"]["verification"]["channel"], "email");
    assert_eq!(outcome["details"]["verification"]["sentTo"], "a***e@personal.example");
    assert!(!text.contains(&code), "the code reached the audit trail");
}

#[tokio::test]
async fn five_wrong_codes_close_the_verification() {
    let app = service_app().await;
    let (id, code) = app.send_code(AGENT, "alex.wilber@contoso.test", "email").await;
    for left in (1..=4).rev() {
        let (status, e) = app.confirm(AGENT, &id, &wrong(&code)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["code"], "code_mismatch");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")),
            "{e}"
        );
    }
    let (status, e) = app.confirm(AGENT, &id, &wrong(&code)).await;
    assert_eq!(status, StatusCode::LOCKED, "{e}");
    assert_eq!(e["error"]["code"], "too_many_attempts");
    // Dead: even the right code no longer works, and nothing can use it.
    let (status, e) = app.confirm(AGENT, &id, &code).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::LOCKED, Some("too_many_attempts"))
    );
    let (status, e) = app
        .tap_with(AGENT, "alex.wilber@contoso.test", "sms", json!({"id": id}))
        .await;
    assert_eq!(e["error"]["code"], "verification_not_confirmed", "{status} {e}");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("VERIFICATION_CODE_MINUTES", "1"),
    ])
    .await;
    let (id, code) = app.send_code(AGENT, "lee.gu@contoso.test", "email").await;
    // The record lives beside the rate-limit slots (AUDIT_DIR/limits in tests): age it.
    let audit_dir = app.settings_value("AUDIT_DIR");
    let path = std::path::Path::new(&audit_dir)
        .join("limits/verifications")
        .join(format!("{id}.json"));
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["expiresAt"] = json!("2020-01-01T00:00:00Z");
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let (status, e) = app.confirm(AGENT, &id, &code).await;
    assert_eq!(status, StatusCode::GONE, "{e}");
    assert_eq!(e["error"]["code"], "verification_expired");
}

#[tokio::test]
async fn a_verification_serves_one_recovery_of_its_user_by_its_caller() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "email").await;
    // Another caller cannot confirm it, or use it.
    let (status, e) = app.confirm(OTHER_AGENT, &id, &code).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("verification_not_found"))
    );
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (_, e) = app.tap_with(OTHER_AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(e["error"]["code"], "verification_not_found", "{e}");
    // Not for another user.
    let (_, e) = app
        .tap_with(AGENT, "alex.wilber@contoso.test", "sms", json!({"id": id}))
        .await;
    assert_eq!(e["error"]["code"], "verification_not_found", "{e}");
    // Once, for one recovery.
    let (status, issued) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let (status, e) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("verification_used"))
    );
    // An unconfirmed one serves nothing.
    let (fresh, _) = app.send_code(AGENT, user, "email").await;
    let (_, e) = app.tap_with(AGENT, user, "sms", json!({"id": fresh})).await;
    assert_eq!(e["error"]["code"], "verification_not_confirmed", "{e}");
}

#[tokio::test]
async fn under_service_a_typed_block_is_refused() {
    let app = service_app().await;
    let typed = json!({"method": "manager callback", "verifiedBy": "agent@contoso.test",
        "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, e) = app.tap_with(AGENT, "adele.vance@contoso.test", "sms", typed).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("verification_required"))
    );
    assert!(app.outbox().await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_code_and_the_pass_take_different_channels_unless_allowed() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "sms").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (status, e) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("verification_channel_reused"))
    );
    let (status, issued) = app.tap_with(AGENT, user, "email", json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");

    let relaxed = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("VERIFICATION_SAME_CHANNEL", "true"),
    ])
    .await;
    let (id, code) = relaxed.send_code(AGENT, user, "sms").await;
    assert_eq!(relaxed.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (status, issued) = relaxed.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
}

#[tokio::test]
async fn codes_reach_no_response_log_or_audit_record() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "email").await;
    let mut seen = Vec::new();
    seen.push(app.confirm(AGENT, &id, &wrong(&code)).await.1.to_string());
    seen.push(app.confirm(AGENT, &id, &code).await.1.to_string());
    // A code sent as a number is refused without echoing it.
    seen.push(
        app.post_as(
            AGENT,
            &format!("/api/verifications/{id}/confirm"),
            &json!({"code": 123456}),
        )
        .await
        .1
        .to_string(),
    );
    let records = json!({"value": app.audit_of(None).await});
    seen.push(records.to_string());
    // The stored record keeps a keyed hash only.
    let audit_dir = app.settings_value("AUDIT_DIR");
    let stored = std::fs::read_to_string(
        std::path::Path::new(&audit_dir)
            .join("limits/verifications")
            .join(format!("{id}.json")),
    )
    .unwrap();
    seen.push(stored);
    for text in &seen {
        assert!(!text.contains(&code), "the code leaked: {text}");
        assert!(!text.contains("123456"), "a code sent as a number was echoed: {text}");
    }
}

#[tokio::test]
async fn a_queued_request_uses_its_submitter_s_verification_once() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "email").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let request = |ticket: &str| {
        json!({"action": "tap", "user": user, "delivery": {"channel": "sms"},
            "ticket": {"system": "servicenow", "id": ticket}, "reason": "lost phone", "verification": {"id": id}})
    };
    // Someone else's request cannot use it.
    let (status, accepted) = app.post_as(OTHER_AGENT, "/api/requests", &request("INC0020002")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "refused", "{done}");
    assert_eq!(done["result"]["error"]["code"], "verification_not_found");
    // Its own request can, and only one.
    let (_, accepted) = app.post_as(AGENT, "/api/requests", &request("INC0020003")).await;
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, accepted) = app.post_as(AGENT, "/api/requests", &request("INC0020004")).await;
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["result"]["error"]["code"], "verification_used", "{done}");
    assert!(!done.to_string().contains(&code));
}

async fn changed(
    app: &TestApp,
    user: &str,
    activity: &str,
    service: &str,
    reason: &str,
    props: &[&str],
    days_ago: i64,
) {
    let r = app
        .client
        .post(format!("{}/sim/directory-audits", app.sim.base_url()))
        .json(
            &json!({"user": user, "activity": activity, "service": service, "reason": reason,
            "modifiedProperties": props, "daysAgo": days_ago}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test]
async fn a_recently_registered_phone_gets_no_code_and_no_pass() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    changed(
        &app,
        user,
        "User registered security info",
        "Authentication Methods",
        "User registered phone method",
        &[],
        2,
    )
    .await;
    // No code by SMS.
    let (status, e) = app
        .post_as(
            AGENT,
            &format!("/api/users/{user}/verifications"),
            &json!({"channel": "sms"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("address_recently_changed")),
        "{e}"
    );
    let two_days_ago = (time::OffsetDateTime::now_utc() - time::Duration::days(2))
        .date()
        .to_string();
    assert!(e["error"]["message"].as_str().unwrap().contains(&two_days_ago), "{e}");
    // No pass by SMS either, even after a code by email.
    let (id, code) = app.send_code(AGENT, user, "email").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (status, e) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("address_recently_changed")),
        "{e}"
    );
    assert!(
        app.sim
            .outbox()
            .iter()
            .all(|m| !m.body.contains("Temporary Access Pass")),
        "no pass went out"
    );
}

#[tokio::test]
async fn a_recently_changed_alternate_email_gets_no_code_an_old_change_does() {
    let app = service_app().await;
    changed(
        &app,
        "lee.gu@contoso.test",
        "Update user",
        "Core Directory",
        "",
        &["OtherMail"],
        1,
    )
    .await;
    let (_, e) = app
        .post_as(
            AGENT,
            "/api/users/lee.gu@contoso.test/verifications",
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(e["error"]["code"], "address_recently_changed", "{e}");
    // A change older than ADDRESS_MIN_AGE_DAYS (7), a removal, or a pass the service made: fine.
    changed(
        &app,
        "adele.vance@contoso.test",
        "Update user",
        "Core Directory",
        "",
        &["OtherMail"],
        9,
    )
    .await;
    changed(
        &app,
        "adele.vance@contoso.test",
        "Admin deleted security info",
        "Authentication Methods",
        "Admin deleted phone method for user",
        &[],
        1,
    )
    .await;
    let (id, _) = app.send_code(AGENT, "adele.vance@contoso.test", "email").await;
    assert!(!id.is_empty());
    let (status, sent) = app
        .post_as(
            AGENT,
            "/api/users/adele.vance@contoso.test/verifications",
            &json!({"channel": "sms"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
}

#[tokio::test]
async fn an_unreadable_audit_log_fails_closed() {
    let app = service_app().await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/v1.0/auditLogs/directoryAudits", "status": 403, "count": 100}))
        .send()
        .await
        .unwrap();
    let (status, e) = app
        .post_as(
            AGENT,
            "/api/users/adele.vance@contoso.test/verifications",
            &json!({"channel": "email"}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("address_check_unavailable")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("AuditLog.Read.All"),
        "{e}"
    );
    assert!(app.outbox().await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_reset_with_its_pass_uses_a_verification_once() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "sms").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let body = json!({"ticket": {"system": "jira", "id": "HELP-77"}, "reason": "lost phone", "scope": "portal",
        "tap": {"delivery": {"channel": "email"}}, "verification": {"id": id}});
    let (status, result) = app.post_as(AGENT, &format!("/api/users/{user}/mfa/reset"), &body).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert!(result["tap"]["tapMethodId"].is_string(), "{result}");
    // The same verification serves no second recovery.
    let (status, e) = app.post_as(AGENT, &format!("/api/users/{user}/mfa/reset"), &body).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("verification_used")),
        "{e}"
    );
    // A reset whose pass would take the code's channel is refused before anything is removed.
    let (id, code) = app.send_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let same = json!({"ticket": {"system": "jira", "id": "HELP-78"}, "reason": "lost phone", "scope": "portal",
        "tap": {"delivery": {"channel": "email"}}, "verification": {"id": id}});
    let (_, e) = app
        .post_as(AGENT, "/api/users/lee.gu@contoso.test/mfa/reset", &same)
        .await;
    assert_eq!(e["error"]["code"], "verification_channel_reused", "{e}");
}

/// Megan Bowen manages Adele, Alex and Lee; she is also an agent here.
const MEGAN: &str = "b0000007-0000-4000-8000-000000000007";

impl TestApp {
    async fn post_code(&self, agent: &str, user: &str, channel: &str) -> (StatusCode, Value) {
        self.post_as(
            agent,
            &format!("/api/users/{user}/verifications"),
            &json!({"channel": channel, "ticket": {"system": "servicenow", "id": "INC0020009"}}),
        )
        .await
    }

    async fn set_risk(&self, user: &str, level: &str, state: &str) {
        let r = self
            .client
            .post(format!("{}/sim/risky-users", self.sim.base_url()))
            .json(&json!({"user": user, "riskLevel": level, "riskState": state}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// The SIM swapper reads the SMS code; one code must not be enough to strip the account.
#[tokio::test]
async fn one_sms_code_cannot_strip_an_account() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let path = format!("/api/users/{user}/mfa/reset");
    // Each attempt on a fresh SMS code (a verification serves one attempt).
    let attempt = |extra: Value| {
        let (app, path) = (&app, path.clone());
        async move {
            let (id, code) = app.send_code(AGENT, user, "sms").await;
            assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
            let mut b = json!({"ticket": {"system": "jira", "id": "HELP-90"}, "reason": "lost phone",
                "scope": "portal", "verification": {"id": id}});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            app.post_as(AGENT, &path, &b).await
        }
    };
    // Without a pass: refused, whatever the request says.
    let (status, e) = attempt(json!({})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("would_leave_no_method")),
        "{e}"
    );
    let (status, e) = attempt(json!({"allowEmpty": true})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("second_approver_required")),
        "{e}"
    );
    // With a pass on the code's own channel: refused (the swapped SIM would get it too).
    let (status, e) = attempt(json!({"tap": {"delivery": {"channel": "sms"}}})).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("verification_channel_reused")),
        "{e}"
    );
    let removed = app.sim.requests().into_iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(removed, 0, "nothing was removed");
    // With its pass on another channel, the reset goes through: the user is never left empty.
    let (status, done) = attempt(json!({"tap": {"delivery": {"channel": "email"}}})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["tap"]["tapMethodId"].is_string(), "{done}");
}

#[tokio::test]
async fn nobody_verifies_themselves() {
    let app = service_app().await;
    // Megan manages Adele: a code to the manager channel would land in her own mailbox.
    let (status, e) = app.post_code(MEGAN, "adele.vance@contoso.test", "manager").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("caller_is_manager")),
        "{e}"
    );
    // Another agent may use the manager channel.
    let (status, sent) = app.post_code(AGENT, "adele.vance@contoso.test", "manager").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    // An alternate email of record that is the caller's own mailbox.
    app.sim
        .tenant()
        .users
        .iter_mut()
        .find(|u| u.upn == "lee.gu@contoso.test")
        .unwrap()
        .other_mails = vec!["Megan.Bowen@contoso.test".into()];
    let (status, e) = app.post_code(MEGAN, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("address_is_callers")),
        "{e}"
    );
    // A mobile of record that is one of the caller's phone numbers.
    let megans_phone = app
        .sim
        .tenant()
        .users
        .iter()
        .find(|u| u.id == MEGAN)
        .unwrap()
        .methods
        .iter()
        .find_map(|m| m.props.get("phoneNumber").and_then(Value::as_str).map(str::to_owned))
        .unwrap();
    for m in &mut app
        .sim
        .tenant()
        .users
        .iter_mut()
        .find(|u| u.upn == "lynne.robbins@contoso.test")
        .unwrap()
        .methods
    {
        if m.props.contains_key("phoneNumber") {
            m.props
                .insert("phoneNumber".into(), json!(megans_phone.replace(' ', "")));
        }
    }
    let (status, e) = app.post_code(MEGAN, "lynne.robbins@contoso.test", "sms").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("address_is_callers")),
        "{e}"
    );
    let to_megan = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| {
            m.to.iter().any(|t| {
                t.eq_ignore_ascii_case("megan.bowen@contoso.test")
                    || t.replace(' ', "") == megans_phone.replace(' ', "")
            })
        })
        .count();
    assert_eq!(to_megan, 1, "only the other agent's code reached Megan's mailbox");
    // The caller's own addresses cannot be read: refused, nothing sent.
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": format!("/v1.0/users/{MEGAN}"), "status": 500, "count": 100}))
        .send()
        .await
        .unwrap();
    let before = app.outbox().await.len();
    let (status, e) = app.post_code(MEGAN, "alex.wilber@contoso.test", "email").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(app.outbox().await.len(), before);
}

#[tokio::test]
async fn six_codes_to_one_user_from_six_agents_the_sixth_is_refused() {
    let app = service_app().await;
    let agents: Vec<String> = (1..=6)
        .map(|i| format!("a0000000-0000-4000-8000-00000000c0{i:02}"))
        .collect();
    for (i, agent) in agents.iter().enumerate() {
        let (status, body) = app.post_code(agent, "alex.wilber@contoso.test", "email").await;
        if i < 5 {
            assert_eq!(status, StatusCode::CREATED, "code {}: {body}", i + 1);
        } else {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
                "{body}"
            );
            assert!(
                body["error"]["message"].as_str().unwrap().contains("per user"),
                "{body}"
            );
        }
    }
    let codes = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains("Your code: "))
        .count();
    assert_eq!(codes, 5);
    // Another user is not affected, and the limit is a setting.
    let (status, _) = app.post_code(&agents[5], "lee.gu@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn codes_count_with_passes_in_the_callers_hourly_limit() {
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("TAP_MAX_PER_CALLER_PER_HOUR", "2"),
    ])
    .await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "email").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (status, issued) = app.tap_with(AGENT, user, "sms", json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    // A code and a pass: the caller's two slots are spent.
    let (status, e) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "{e}"
    );
}

#[tokio::test]
async fn no_code_to_a_disabled_account_and_the_message_puts_the_code_first() {
    let app = service_app().await;
    let (status, e) = app.post_code(AGENT, "diego.siciliani@contoso.test", "sms").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("user_disabled")),
        "{e}"
    );
    assert!(app.outbox().await.is_empty(), "nothing was sent");
    // The ticket is quoted only when it is a plain id, and after the code.
    let (status, e) = app
        .post_as(
            AGENT,
            "/api/users/lee.gu@contoso.test/verifications",
            &json!({"channel": "email", "ticket": {"system": "servicenow", "id": "call +1 555 0100 now"}}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{e}"
    );
    let (_, _) = app.send_code(AGENT, "lee.gu@contoso.test", "email").await;
    let message = app.outbox().await.pop().unwrap();
    assert!(message.body.starts_with("Your code: "), "{}", message.body);
    assert!(message.body.contains("Megan Bowen (IT service desk)") && message.body.contains("INC0020001"));
}

#[tokio::test]
async fn a_user_at_high_risk_gets_no_code_and_no_pass_unless_an_approver_agrees() {
    let app = service_app().await;
    app.set_risk("lee.gu@contoso.test", "high", "atRisk").await;
    let (status, e) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user_at_risk")),
        "{e}"
    );
    assert!(app.outbox().await.is_empty());
    // Confirmed compromised, whatever the level.
    app.set_risk("alex.wilber@contoso.test", "low", "confirmedCompromised")
        .await;
    let (_, e) = app.post_code(AGENT, "alex.wilber@contoso.test", "email").await;
    assert_eq!(e["error"]["code"], "user_at_risk", "{e}");
    // A pass under the typed verification: refused too, nothing created.
    let attested = spawn_app().await;
    attested.set_risk("lee.gu@contoso.test", "high", "atRisk").await;
    let typed = json!({"method": "manager callback", "verifiedBy": "agent@contoso.test",
        "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, e) = attested
        .tap_with(AGENT, "lee.gu@contoso.test", "email", typed.clone())
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user_at_risk")),
        "{e}"
    );
    assert!(attested.passes().await.is_empty());
    let record = attested
        .audit_of(None)
        .await
        .into_iter()
        .rev()
        .find(|r| r["action"] == "tap.issue")
        .unwrap();
    assert_eq!(record["details"]["risk"]["level"], "high", "{record}");
    // With approvals on, the pass waits for an approver (reason `at_risk`).
    let held = spawn_app_with(&[
        ("APPROVAL_REQUIRED_FOR", "privileged"),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    held.set_risk("lee.gu@contoso.test", "high", "atRisk").await;
    let (status, body) = held.tap_with(AGENT, "lee.gu@contoso.test", "email", typed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["approval"]["reasons"], json!(["at_risk"]), "{body}");
    assert!(held.passes().await.is_empty());
    // Medium risk is shown to the agent and recorded; the code goes.
    app.set_risk("adele.vance@contoso.test", "medium", "atRisk").await;
    let (status, sent) = app.post_code(AGENT, "adele.vance@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["userRisk"]["level"], "medium", "{sent}");
    let record = app
        .audit_of(None)
        .await
        .into_iter()
        .rev()
        .find(|r| r["action"] == "verification.send" && r["outcome"]["status"] == "succeeded")
        .unwrap();
    assert_eq!(record["details"]["risk"]["level"], "medium", "{record}");
    // The agent sees it before acting, in the user's summary (the console's look-up).
    let summary: Value = app
        .client
        .get(format!("{}/api/users/adele.vance@contoso.test", app.base))
        .bearer_auth(app.agent_token(AGENT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["risk"]["level"], "medium", "{summary}");
    assert_eq!(summary["approvalRequired"], false, "{summary}");
}

#[tokio::test]
async fn without_the_licence_if_available_goes_on_and_says_so_and_required_refuses() {
    let app = service_app().await;
    app.client
        .post(format!("{}/sim/licenses", app.sim.base_url()))
        .json(&json!({"entraIdP2": false}))
        .send()
        .await
        .unwrap();
    let (status, sent) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let record = app
        .audit_of(None)
        .await
        .into_iter()
        .rev()
        .find(|r| r["action"] == "verification.send")
        .unwrap();
    assert_eq!(record["details"]["risk"]["checked"], false, "{record}");
    assert!(
        record["details"]["risk"]["why"].as_str().unwrap().contains("P2"),
        "{record}"
    );

    let strict = spawn_app_with(&[("TAP_REQUIRE_VERIFICATION", "service"), ("RISK_CHECK", "required")]).await;
    strict
        .client
        .post(format!("{}/sim/licenses", strict.sim.base_url()))
        .json(&json!({"entraIdP2": false}))
        .send()
        .await
        .unwrap();
    let (status, e) = strict.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("risk_check_unavailable")),
        "{e}"
    );
    assert!(strict.outbox().await.is_empty());
    // A missing permission is not a missing licence: refused under if_available too.
    let app = service_app().await;
    app.sim
        .tenant()
        .graph_permissions
        .retain(|p| p != "IdentityRiskyUser.Read.All");
    let (status, e) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("risk_check_unavailable")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("IdentityRiskyUser.Read.All"),
        "{e}"
    );
    // RISK_CHECK=off never reads it.
    let off = spawn_app_with(&[("TAP_REQUIRE_VERIFICATION", "service"), ("RISK_CHECK", "off")]).await;
    off.set_risk("lee.gu@contoso.test", "high", "atRisk").await;
    let (status, _) = off.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_code_to_a_privileged_account_tells_the_soc() {
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("APPROVAL_REQUIRED_FOR", "privileged"),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals"),
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    let (status, sent) = app.post_code(AGENT, "allan.deyoung@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let alert = app
        .sim
        .itsm()
        .into_iter()
        .find(|h| h.path == "/callbacks/soc")
        .expect("the SOC was told");
    assert_eq!(
        alert.body["payload"]["data"]["outcome"], "code_sent",
        "{:?}",
        alert.body
    );
    assert_eq!(alert.body["payload"]["data"]["user"], "allan.deyoung@contoso.test");
    assert_eq!(alert.body["payload"]["data"]["verificationId"], sent["verificationId"]);
    // The alert carries no code.
    let message = app
        .sim
        .outbox()
        .into_iter()
        .find(|m| m.body.contains("Your code: "))
        .unwrap();
    let code: String = message.body["Your code: ".len()..].chars().take(6).collect();
    assert!(
        !alert.body.to_string().contains(&code),
        "the code reached the SOC alert"
    );
    // A code to an unprivileged user raises nothing.
    let before = app.sim.itsm().len();
    let (status, _) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.sim.itsm().len(), before);
}

#[tokio::test]
async fn a_refused_recovery_gives_its_verification_back() {
    let app = service_app().await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "sms").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let path = format!("/api/users/{user}/mfa/reset");
    let body = |extra: Value| {
        let mut b = json!({"ticket": {"system": "jira", "id": "HELP-91"}, "reason": "lost phone",
            "scope": "portal", "verification": {"id": id}});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let (_, e) = app.post_as(AGENT, &path, &body(json!({}))).await;
    assert_eq!(e["error"]["code"], "would_leave_no_method", "{e}");
    // The same verification serves the corrected request.
    let (status, done) = app
        .post_as(AGENT, &path, &body(json!({"tap": {"delivery": {"channel": "email"}}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // And, once used, no other.
    let (_, e) = app
        .post_as(AGENT, &path, &body(json!({"tap": {"delivery": {"channel": "email"}}})))
        .await;
    assert_eq!(e["error"]["code"], "verification_used", "{e}");
}

#[tokio::test]
async fn a_reset_that_leaves_nothing_sends_its_pass_another_way_than_the_code_even_when_allowed() {
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("VERIFICATION_SAME_CHANNEL", "true"),
    ])
    .await;
    let user = "adele.vance@contoso.test";
    let (id, code) = app.send_code(AGENT, user, "email").await;
    assert_eq!(app.confirm(AGENT, &id, &code).await.0, StatusCode::OK);
    let (status, e) = app
        .post_as(
            AGENT,
            &format!("/api/users/{user}/mfa/reset"),
            &json!({"ticket": {"system": "jira", "id": "HELP-92"}, "reason": "lost phone", "scope": "portal",
                "tap": {"delivery": {"channel": "email"}}, "verification": {"id": id}}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("verification_channel_reused")),
        "{e}"
    );
    assert_eq!(
        app.sim.requests().into_iter().filter(|r| r.method == "DELETE").count(),
        0
    );
}

#[tokio::test]
async fn no_pass_goes_to_an_address_of_the_callers_own() {
    let app = spawn_app().await;
    app.sim
        .tenant()
        .users
        .iter_mut()
        .find(|u| u.upn == "lee.gu@contoso.test")
        .unwrap()
        .other_mails = vec!["megan.bowen@contoso.test".into()];
    let typed = json!({"method": "callback", "verifiedBy": "agent@contoso.test",
        "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, e) = app.tap_with(MEGAN, "lee.gu@contoso.test", "email", typed).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("address_is_callers")),
        "{e}"
    );
    assert!(app.passes().await.is_empty());
}

#[tokio::test]
async fn a_mobile_no_provider_can_reach_is_refused_before_anything_is_removed() {
    let app = spawn_app_with(&[("SMS_NUMBER_SOURCE", "attribute")]).await;
    app.sim
        .tenant()
        .users
        .iter_mut()
        .find(|u| u.upn == "lee.gu@contoso.test")
        .unwrap()
        .mobile_phone = Some("(425) 555-0112".into());
    let typed = json!({"method": "callback", "verifiedBy": "agent@contoso.test",
        "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()});
    let (status, e) = app
        .post_as(
            AGENT,
            "/api/users/lee.gu@contoso.test/mfa/reset",
            &json!({"ticket": {"system": "jira", "id": "HELP-93"}, "reason": "lost phone", "scope": "portal",
                "tap": {"delivery": {"channel": "sms"}}, "verification": typed}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_address_of_record")),
        "{e}"
    );
    assert_eq!(
        app.sim.requests().into_iter().filter(|r| r.method == "DELETE").count(),
        0
    );
}

/// No record, no code: the intent of a code is in the trail before the code leaves, and the trail
/// holds no code (the outcome follows with the same id).
#[tokio::test]
async fn a_codes_intent_is_recorded_before_it_is_sent() {
    let app = service_app().await;
    let (id, code) = app.send_code(AGENT, "lee.gu@contoso.test", "email").await;
    let records: Vec<Value> = app
        .audit_of(Some("verification.send"))
        .await
        .into_iter()
        .filter(|r| r["requestId"] == id.as_str())
        .collect();
    let phases: Vec<&str> = records.iter().filter_map(|r| r["phase"].as_str()).collect();
    assert_eq!(phases, ["intent", "outcome"], "{records:?}");
    assert!(records[0]["details"]["sentTo"].is_string(), "{records:?}");
    assert!(
        !serde_json::to_string(&records).unwrap().contains(&code),
        "a code in the trail"
    );
}

/// A code whose intent cannot be recorded is not sent, and costs the user nothing of their day's
/// codes (`VERIFICATION_MAX_PER_TARGET_PER_DAY`, 5): the intent comes before the user's slot.
#[tokio::test]
async fn a_code_the_trail_cannot_record_is_not_sent_and_costs_the_user_no_code() {
    let root = temp_dir("broken-audit");
    let audit = root.join("audit");
    let limits = root.join("limits");
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("AUDIT_DIR", audit.to_str().unwrap()),
        ("LIMITS_DIR", limits.to_str().unwrap()),
    ])
    .await;
    // The trail's directory becomes a file: every append fails.
    let _ = std::fs::remove_dir_all(&audit);
    std::fs::write(&audit, b"not a directory").unwrap();
    let before = app.outbox().await.len();
    let (status, e) = app.post_code(AGENT, "lee.gu@contoso.test", "email").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("audit_unavailable")),
        "{e}"
    );
    assert_eq!(app.outbox().await.len(), before, "a code went out without a record");
    // The trail is back: the user still has their five codes for the day.
    std::fs::remove_file(&audit).unwrap();
    for n in 1..=5 {
        let (status, sent) = app
            .post_code(
                &format!("a0000000-0000-4000-8000-00000000a9e{n}"),
                "lee.gu@contoso.test",
                "email",
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "code {n}: {sent}");
    }
}
