//! `POST /api/users/{user}/tap` end to end on the simulated tenant: every channel, every
//! refusal, faults, and a leak check over every response and audit record.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn body(channel: &str) -> Value {
    json!({
        "delivery": {"channel": channel},
        "ticket": {"system": "servicenow", "id": "INC0010001"},
        "reason": "lost phone",
        "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test",
            "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()},
    })
}

impl TestApp {
    async fn post_tap(&self, user: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/api/users/{user}/tap", self.base))
            .bearer_auth(self.token(&["Recovery.Tap"]))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn sim_taps(&self) -> Vec<Value> {
        let v: Value = self
            .client
            .get(format!("{}/sim/taps", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"].as_array().unwrap().clone()
    }

    async fn fault(&self, fault: Value) {
        self.client
            .post(format!("{}/sim/faults", self.sim.base_url()))
            .json(&fault)
            .send()
            .await
            .unwrap();
    }

    async fn audit_records(&self) -> Vec<Value> {
        self.audit_of(Some("tap.issue")).await
    }
}

#[tokio::test]
async fn a_pass_by_sms_reaches_only_the_registered_mobile_and_graph_holds_one() {
    let app = spawn_app().await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["delivery"]["to"], "+1 *******101");
    assert_eq!(response["delivery"]["provider"], "acs");
    assert_eq!(response["usableOnce"], true);
    assert!(response.get("temporaryAccessPass").is_none());
    let taps = app.sim_taps().await;
    assert_eq!(taps.len(), 1);
    let pass = taps[0]["temporaryAccessPass"].as_str().unwrap();
    let outbox = app.outbox().await;
    let with_pass: Vec<_> = outbox.iter().filter(|m| m.body.contains(pass)).collect();
    assert_eq!(with_pass.len(), 1, "the pass is sent once");
    assert_eq!(with_pass[0].to, vec!["+14255550101".to_owned()]);
    assert!(with_pass[0].body.contains("mysignins.microsoft.com/security-info"));
    // Every other address of record and the manager get a notice without the pass.
    let mut noticed: Vec<String> = outbox
        .iter()
        .filter(|m| !m.body.contains(pass))
        .flat_map(|m| m.to.clone())
        .collect();
    noticed.sort();
    assert_eq!(
        noticed,
        vec![
            "adele.vance@contoso.test",
            "adele.vance@personal.example",
            "megan.bowen@contoso.test"
        ]
    );
    assert!(!response.to_string().contains(pass));
}

#[tokio::test]
async fn email_goes_to_the_alternate_address_and_manager_to_the_manager() {
    let app = spawn_app().await;
    let (status, response) = app.post_tap("alex.wilber@contoso.test", &body("email")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let pass = app.sim_taps().await[0]["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_owned();
    let carrying: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains(&pass))
        .collect();
    assert_eq!(
        carrying[0].to,
        vec!["alex.wilber@personal.example".to_owned()],
        "never the mailbox the user cannot open"
    );
    let (status, _) = app.post_tap("lee.gu@contoso.test", &body("manager")).await;
    assert_eq!(status, StatusCode::CREATED);
    let lee_pass = app
        .sim_taps()
        .await
        .into_iter()
        .find(|t| t["userPrincipalName"] == "lee.gu@contoso.test")
        .unwrap();
    let carrying: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains(lee_pass["temporaryAccessPass"].as_str().unwrap()))
        .collect();
    assert_eq!(carrying[0].to, vec!["megan.bowen@contoso.test".to_owned()]);
}

#[tokio::test]
async fn every_refusal_has_its_code_and_creates_nothing() {
    let app = spawn_app_with(&[("TAP_PROTECTED_GROUPS", "a1b2c3d4-0004-4000-8000-000000000004")]).await;
    let mut with_address = body("sms");
    with_address["delivery"]["phoneNumber"] = json!("+15555550000");
    let mut too_short = body("sms");
    too_short["lifetimeMinutes"] = json!(30);
    let mut too_long_for_sms = body("sms");
    too_long_for_sms["lifetimeMinutes"] = json!(120);
    let mut multi_use = body("email");
    multi_use["usableOnce"] = json!(false);
    let mut stale = body("sms");
    stale["verification"]["verifiedAt"] = json!("2026-01-01T00:00:00Z");
    let mut unverified = body("sms");
    unverified.as_object_mut().unwrap().remove("verification");
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "nobody@contoso.test",
            body("sms"),
            StatusCode::NOT_FOUND,
            "user_not_found",
        ),
        ("not a user", body("sms"), StatusCode::BAD_REQUEST, "invalid_user"),
        (
            "lynne.robbins@contoso.test",
            body("sms"),
            StatusCode::CONFLICT,
            "user_out_of_scope",
        ),
        (
            "miriam.graham@contoso.test",
            body("sms"),
            StatusCode::CONFLICT,
            "user_out_of_scope",
        ),
        (
            "pat.guest_fabrikam.example#EXT#@contoso.test",
            body("email"),
            StatusCode::CONFLICT,
            "user_is_guest",
        ),
        (
            "diego.siciliani@contoso.test",
            body("sms"),
            StatusCode::CONFLICT,
            "user_disabled",
        ),
        (
            "isaiah.langer@contoso.test",
            body("sms"),
            StatusCode::FORBIDDEN,
            "target_protected",
        ),
        (
            "patti.fernandez@contoso.test",
            body("sms"),
            StatusCode::FORBIDDEN,
            "target_protected",
        ),
        (
            "johanna.lorenz@contoso.test",
            body("sms"),
            StatusCode::FORBIDDEN,
            "target_protected",
        ),
        (
            "adele.vance@contoso.test",
            with_address,
            StatusCode::BAD_REQUEST,
            "address_not_allowed",
        ),
        (
            "adele.vance@contoso.test",
            too_short,
            StatusCode::UNPROCESSABLE_ENTITY,
            "lifetime_out_of_range",
        ),
        (
            "adele.vance@contoso.test",
            too_long_for_sms,
            StatusCode::UNPROCESSABLE_ENTITY,
            "lifetime_out_of_range",
        ),
        (
            "alex.wilber@contoso.test",
            multi_use,
            StatusCode::UNPROCESSABLE_ENTITY,
            "multi_use_not_allowed",
        ),
        (
            "adele.vance@contoso.test",
            stale,
            StatusCode::UNPROCESSABLE_ENTITY,
            "verification_stale",
        ),
        (
            "adele.vance@contoso.test",
            unverified,
            StatusCode::BAD_REQUEST,
            "verification_required",
        ),
        (
            "alex.wilber@contoso.test",
            body("sms"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_address_of_record",
        ),
    ];
    for (user, b, status, code) in cases {
        let user = user.replace('#', "%23").replace(' ', "%20");
        let (got, response) = app.post_tap(&user, &b).await;
        assert_eq!(
            (got, response["error"]["code"].as_str()),
            (status, Some(code)),
            "{user}: {response}"
        );
    }
    assert!(app.sim_taps().await.is_empty(), "no pass was created");
    assert!(app.outbox().await.is_empty(), "nothing was sent");
    // Each refusal is on the record.
    let refused = app
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["outcome"]["status"] == "refused")
        .count();
    assert_eq!(refused, 16);
}

#[tokio::test]
async fn a_disabled_policy_is_refused() {
    let app = spawn_app().await;
    let admin = app.sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["Policy.ReadWrite.AuthenticationMethod".into()],
        ..Default::default()
    });
    app.client
        .patch(format!(
            "{}/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass",
            app.sim.base_url()
        ))
        .bearer_auth(admin)
        .json(&json!({"state": "disabled"}))
        .send()
        .await
        .unwrap();
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("policy_disabled"))
    );
}

#[tokio::test]
async fn rate_limits_hold_per_target() {
    let app = spawn_app_with(&[("TAP_MAX_PER_TARGET_PER_DAY", "1")]).await;
    assert_eq!(
        app.post_tap("adele.vance@contoso.test", &body("sms")).await.0,
        StatusCode::CREATED
    );
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert_eq!(
        app.post_tap("alex.wilber@contoso.test", &body("email")).await.0,
        StatusCode::CREATED,
        "another user is not limited"
    );
}

#[tokio::test]
async fn graph_throttling_is_waited_out_and_an_outage_is_a_clear_503() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/v1.0/policies/**", "status": 429, "retryAfter": 1, "count": 1}))
        .await;
    assert_eq!(
        app.post_tap("adele.vance@contoso.test", &body("sms")).await.0,
        StatusCode::CREATED
    );
    app.fault(json!({"route": "/v1.0/users/*", "method": "GET", "status": 503, "count": 20}))
        .await;
    let (status, response) = app.post_tap("alex.wilber@contoso.test", &body("email")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("graph_unavailable"))
    );
    assert_eq!(app.sim_taps().await.len(), 1, "only the first pass exists");
}

/// A Graph 403 is a missing permission, not an outage: the answer says to grant it, not to try
/// again later (a developer's own sign-in gets exactly this, docs/tap.md).
#[tokio::test]
async fn a_graph_403_names_a_missing_permission_not_an_outage() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/v1.0/users/*", "method": "GET", "status": 403, "count": 5}))
        .await;
    let (status, response) = app.post_tap("alex.wilber@contoso.test", &body("email")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("permission_missing")),
        "{response}"
    );
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("docs/deploy.md"),
        "{response}"
    );
    assert!(app.sim_taps().await.is_empty());
}

#[tokio::test]
async fn key_vault_down_means_no_pass_is_created() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/secrets/**", "status": 503, "count": 50}))
        .await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("delivery_unavailable"))
    );
    assert!(app.sim_taps().await.is_empty());
}

#[tokio::test]
async fn a_provider_failing_after_the_pass_was_created_leaves_no_pass() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/acs/sms", "status": 500, "count": 5})).await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("delivery_failed"))
    );
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no pass is active"),
        "{response}"
    );
    assert!(app.sim_taps().await.is_empty(), "the undelivered pass was deleted");
}

#[tokio::test]
async fn a_create_with_an_unknown_outcome_is_cleaned_up_and_reported() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "status": 504, "after": true})).await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::BAD_GATEWAY, Some("tap_outcome_unknown"))
    );
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no pass is active"),
        "{response}"
    );
    assert!(app.sim_taps().await.is_empty());
    assert!(app.outbox().await.is_empty());
}

#[tokio::test]
async fn the_pass_appears_in_no_response_and_no_audit_record_on_any_path() {
    let app = spawn_app().await;
    let mut passes = Vec::new();
    let mut responses = Vec::new();
    // Success on each channel.
    for (user, channel) in [
        ("adele.vance@contoso.test", "sms"),
        ("alex.wilber@contoso.test", "email"),
        ("lee.gu@contoso.test", "manager"),
    ] {
        let (status, response) = app.post_tap(user, &body(channel)).await;
        assert_eq!(status, StatusCode::CREATED, "{response}");
        responses.push(response.to_string());
        passes.extend(
            app.sim_taps()
                .await
                .into_iter()
                .filter_map(|t| t["temporaryAccessPass"].as_str().map(str::to_owned)),
        );
    }
    // The failure paths after a pass existed: delivery failed, and an unknown create.
    app.fault(json!({"route": "/acs/sms", "status": 500, "count": 5})).await;
    let (_, response) = app.post_tap("megan.bowen@contoso.test", &body("sms")).await;
    responses.push(response.to_string());
    app.fault(json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "status": 504, "after": true})).await;
    let (_, response) = app.post_tap("alex.wilber@contoso.test", &body("email")).await;
    assert_eq!(response["error"]["code"], "tap_outcome_unknown", "{response}");
    responses.push(response.to_string());
    // A reset with a pass: the pass checked before the removals, issued after them.
    let reset = app
        .client
        .post(format!("{}/api/users/adele.vance@contoso.test/mfa/reset", app.base))
        .bearer_auth(app.token(&["Recovery.Reset", "Recovery.Tap"]))
        .json(&json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}},
            "ticket": {"system": "jira", "id": "HELP-7"}, "reason": "lost phone",
            "verification": body("sms")["verification"].clone()}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    responses.push(reset.text().await.unwrap());
    passes.extend(
        app.sim_taps()
            .await
            .into_iter()
            .filter_map(|t| t["temporaryAccessPass"].as_str().map(str::to_owned)),
    );
    passes.sort();
    passes.dedup();
    assert!(passes.len() >= 4);
    let mut records = app.audit_records().await;
    let resets: Value = app
        .client
        .get(format!("{}/api/audit?action=mfa.reset&pageSize=1000", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    records.extend(resets["value"].as_array().unwrap().iter().cloned());
    assert!(
        records.iter().any(|r| r["phase"] == "intent") && records.iter().any(|r| r["outcome"]["status"] == "succeeded")
    );
    let haystack = format!("{}\n{}", responses.join("\n"), serde_json::to_string(&records).unwrap());
    for pass in &passes {
        assert!(!haystack.contains(pass.as_str()), "a pass leaked");
    }
}

#[tokio::test]
async fn twilio_carries_sms_and_a_rotated_token_is_read_again() {
    let app = spawn_app_with(&[
        ("SMS_PROVIDER", "twilio"),
        ("TWILIO_ENDPOINT", "{sim}/twilio"),
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
        ("TWILIO_AUTH_TOKEN_SECRET", "twilio-auth-token"),
        ("TWILIO_FROM", "+18005550198"),
    ])
    .await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["delivery"]["provider"], "twilio");
    assert!(response["delivery"]["messageId"].as_str().unwrap().starts_with("SM"));
    // The token is rotated in Key Vault; the cached one is refused once, then re-read.
    app.client
        .post(format!("{}/sim/secrets/twilio-auth-token/rotate", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    let (status, response) = app.post_tap("lee.gu@contoso.test", &body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let sms: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.provider == "twilio")
        .collect();
    assert_eq!(sms.len(), 2);
    assert_eq!(sms[1].to, vec!["+14255550112".to_owned()]);
}

#[tokio::test]
async fn acs_email_can_carry_the_email_channel() {
    let app = spawn_app_with(&[
        ("EMAIL_PROVIDER", "acs"),
        ("ACS_EMAIL_FROM", "DoNotReply@notify.contoso.test"),
    ])
    .await;
    let (status, response) = app.post_tap("alex.wilber@contoso.test", &body("email")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["delivery"]["provider"], "acs");
    let pass = app.sim_taps().await[0]["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_owned();
    let carrying: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains(&pass))
        .collect();
    assert_eq!((carrying.len(), carrying[0].provider.as_str()), (1, "acs"));
    assert_eq!(carrying[0].to, vec!["alex.wilber@personal.example".to_owned()]);
}

#[tokio::test]
async fn rate_limits_hold_per_caller() {
    let app = spawn_app_with(&[("TAP_MAX_PER_CALLER_PER_HOUR", "2")]).await;
    assert_eq!(
        app.post_tap("adele.vance@contoso.test", &body("sms")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_tap("alex.wilber@contoso.test", &body("email")).await.0,
        StatusCode::CREATED
    );
    let (status, response) = app.post_tap("lee.gu@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn the_message_template_can_be_replaced() {
    let app = spawn_app_with(&[(
        "TAP_MESSAGE_TEMPLATE",
        "Code for {upn}: {pass} (until {expires} UTC). Help: {contact}",
    )])
    .await;
    assert_eq!(
        app.post_tap("adele.vance@contoso.test", &body("sms")).await.0,
        StatusCode::CREATED
    );
    let pass = app.sim_taps().await[0]["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_owned();
    let sms = app.outbox().await.into_iter().find(|m| m.channel == "sms").unwrap();
    assert!(
        sms.body
            .starts_with(&format!("Code for adele.vance@contoso.test: {pass} (until ")),
        "{}",
        sms.body
    );
}

/// The notices go through the outbox after the answer: when the caller has the answer (Graph far
/// away, so no notice can have been sent yet) each notice is a record without the pass and only
/// its id is queued; then each is sent once and audited (`notice.send`) with the request's id, and
/// its record is gone. A mail connector that fails once is tried again.
#[tokio::test]
async fn notices_leave_through_the_outbox_after_the_answer_and_each_is_audited_once_sent() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/v1.0/users/*/sendMail", "status": 503, "count": 1}))
        .await;
    app.sim.set_graph_latency(150);
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let dir = std::path::Path::new(&app.settings_value("REQUESTS_DIR")).join("notices");
    let kept: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(kept.len(), 3, "three notices wait in the outbox when the answer comes");
    assert!(
        app.sim.outbox().iter().all(|m| m.to == vec!["+14255550101".to_owned()]),
        "only the pass went out before the answer"
    );
    let pass = app.sim_taps().await[0]["temporaryAccessPass"]
        .as_str()
        .unwrap()
        .to_owned();
    for notice in &kept {
        assert!(!notice.contains(&pass), "a notice holds the pass: {notice}");
        assert!(notice.contains("A Temporary Access Pass was issued for adele.vance@contoso.test"));
    }
    let sent: Vec<_> = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| !m.body.contains(&pass))
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "a sent notice is forgotten"
    );
    // The audit record comes just after the send.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = app.audit_of(Some("notice.send")).await;
        if records.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 3, "{records:?}");
    let mut tries: Vec<u64> = records
        .iter()
        .map(|r| r["details"]["tries"].as_u64().unwrap())
        .collect();
    tries.sort_unstable();
    assert_eq!(
        tries,
        vec![1, 1, 2],
        "the notice the connector refused went out on its second try"
    );
    for r in &records {
        assert_eq!(r["outcome"]["status"], "succeeded", "{r}");
        assert_eq!(r["requestId"], response["requestId"], "{r}");
        assert_eq!(r["details"]["kind"], "pass");
        assert!(
            !r.to_string().contains(&pass) && !r.to_string().contains("was issued"),
            "{r}"
        );
    }
}

/// A notice that cannot be sent does not hold up the answer, and after its last try it is on the
/// trail as failed, so an administrator can find the user who was not told.
#[tokio::test]
async fn a_notice_that_never_goes_out_is_recorded_as_failed() {
    let app = spawn_app().await;
    app.fault(json!({"route": "/v1.0/users/*/sendMail", "status": 500, "count": 1000}))
        .await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let mut records = Vec::new();
    for _ in 0..300 {
        records = app.audit_of(Some("notice.send")).await;
        if records.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records {
        assert_eq!(
            r["outcome"],
            json!({"status": "failed", "code": "notice_unavailable"}),
            "{r}"
        );
        assert_eq!(r["details"]["tries"], 5);
    }
}

/// A create Graph throttles (429) every time it is sent is not a refusal of the pass (Graph did
/// not process it): nothing was created, the caller is told to try again, and a queued request is
/// tried again and gets its one pass. It was answered `graph_refused` (final) before.
#[tokio::test]
async fn a_create_throttled_every_time_is_a_fault_to_retry_not_a_refusal() {
    let app = spawn_app().await;
    let create = "/v1.0/users/*/authentication/temporaryAccessPassMethods";
    app.fault(json!({"route": create, "method": "POST", "status": 429, "retryAfter": 1, "count": 4}))
        .await;
    let (status, response) = app.post_tap("adele.vance@contoso.test", &body("sms")).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("graph_unavailable")),
        "{response}"
    );
    assert!(app.sim_taps().await.is_empty(), "nothing was created");
    // Queued: the worker tries again and the pass goes out once.
    app.fault(json!({"route": create, "method": "POST", "status": 429, "retryAfter": 1, "count": 4}))
        .await;
    let (status, accepted) = app
        .submit(&crate::intake::tap_request("alex.wilber@contoso.test", "INC0077001"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(app.sim_taps().await.len(), 1);
}
