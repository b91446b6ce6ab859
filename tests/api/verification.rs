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
    fn agent_token(&self, object_id: &str) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec![
                "Recovery.Tap".into(),
                "Recovery.Reset".into(),
                "Recovery.Request".into(),
            ],
            object_id: Some(object_id.to_owned()),
            name: Some("Megan Bowen".into()),
            ..Default::default()
        })
    }

    async fn post_as(&self, agent: &str, path: &str, body: &Value) -> (StatusCode, Value) {
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
    async fn send_code(&self, agent: &str, user: &str, channel: &str) -> (String, String) {
        let before = self.sim.outbox().len();
        let (status, sent) = self
            .post_as(
                agent,
                &format!("/api/users/{user}/verifications"),
                &json!({"channel": channel, "ticket": {"system": "servicenow", "id": "INC0020001"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        let message = self.sim.outbox().into_iter().nth(before).expect("the code was sent");
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

    async fn confirm(&self, agent: &str, id: &str, code: &str) -> (StatusCode, Value) {
        self.post_as(
            agent,
            &format!("/api/verifications/{id}/confirm"),
            &json!({"code": code}),
        )
        .await
    }

    async fn tap_with(&self, agent: &str, user: &str, channel: &str, verification: Value) -> (StatusCode, Value) {
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
    let before = app.sim.outbox().len();
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
    let message = app.sim.outbox().into_iter().nth(before).unwrap();
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
    assert!(app.sim.outbox().is_empty(), "nothing was sent");
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
    assert!(app.sim.outbox().is_empty(), "nothing was sent");
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
