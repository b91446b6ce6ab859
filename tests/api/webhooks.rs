//! Webhook senders: Standard Webhooks and Jira signatures, secrets read from the simulated Key
//! Vault through azure_security_keyvault_secrets with the managed identity.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery_sim::{Seed, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;

const SENDERS: &str = r#"[
  {"name": "servicenow", "scheme": "standard-webhooks", "secrets": ["webhook-servicenow-next", "webhook-servicenow"], "roles": ["Recovery.Request"]},
  {"name": "jira", "scheme": "jira", "secrets": ["webhook-jira"], "roles": ["Recovery.Request"]},
  {"name": "readonly", "scheme": "jira", "secrets": ["webhook-servicenow"], "roles": []}
]"#;

struct Signed {
    base: String,
    sim: Simulator,
    client: reqwest::Client,
}

async fn spawn() -> Signed {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let mut vars = test_settings(&sim);
    vars.insert("WEBHOOK_SENDERS".into(), SENDERS.into());
    let settings = Settings::from_map(&vars).unwrap();
    let options = HostOptions {
        azure: mfa_recovery::dev::sim_overrides(&sim),
        ..HostOptions::default()
    };
    let app = Application::build(settings, options).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Signed {
        base,
        sim,
        client: reqwest::Client::new(),
    }
}

fn standard_signature(secret_b64: &str, id: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&B64.decode(secret_b64).unwrap()).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

fn jira_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Signed {
    async fn post_standard(&self, id: &str, ts: i64, signature: &str, body: &str) -> (StatusCode, String) {
        let r = self
            .client
            .post(format!("{}/api/requests", self.base))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post_jira(&self, id: &str, signature: &str, body: &str) -> StatusCode {
        self.client
            .post(format!("{}/api/requests", self.base))
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", id)
            .header("x-hub-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn verified_at() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A ServiceNow incident as its REST message sends it (the default field map).
fn servicenow_incident(number: &str) -> String {
    json!({
        "sys_id": "9d385017c611228701d22104cc95c371", "number": number,
        "u_affected_user": "alex.wilber@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "email", "short_description": "lost phone",
        "u_verification_method": "video call", "u_verified_by": "agent@contoso.test",
        "u_verified_at": verified_at(),
    })
    .to_string()
}

/// A Jira issue as an automation rule's "Issue data (Jira format)" sends it.
fn jira_issue(key: &str) -> String {
    json!({"issue": {"key": key, "fields": {
        "summary": "lost phone", "customfield_10050": "alex.wilber@contoso.test",
        "customfield_10051": {"value": "tap"}, "customfield_10052": {"value": "email"},
        "customfield_10055": "video call", "customfield_10056": "agent@contoso.test",
        "customfield_10057": verified_at(),
    }}})
    .to_string()
}

#[tokio::test]
async fn a_standard_webhook_with_a_valid_signature_is_accepted_once() {
    let app = spawn().await;
    let secret = app.sim.secret("webhook-servicenow").unwrap();
    let body = servicenow_incident("INC0010001");
    let ts = now();
    let sig = standard_signature(&secret, "msg_1", ts, &body);
    let (status, first) = app.post_standard("msg_1", ts, &sig, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let first: Value = serde_json::from_str(&first).unwrap();
    // The same delivery again (a sender's retry, or a replay) acts once: the original answers.
    let (status, again) = app.post_standard("msg_1", ts, &sig, &body).await;
    assert_eq!(status, StatusCode::OK);
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["requestId"], first["requestId"]);
    // Several signatures (a sender mid-rotation): one valid is enough.
    let ts = now();
    let body = servicenow_incident("INC0010002");
    let both = format!("v1,AAAA {}", standard_signature(&secret, "msg_2", ts, &body));
    assert_eq!(
        app.post_standard("msg_2", ts, &both, &body).await.0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn forged_stale_and_tampered_standard_webhooks_are_refused_with_one_body() {
    let app = spawn().await;
    let secret = app.sim.secret("webhook-servicenow").unwrap();
    let body = r#"{"action":"tap","user":"alex.wilber@contoso.test"}"#;
    let ts = now();
    let wrong_key = B64.encode([9u8; 32]);
    let cases = [
        (
            "bad signature",
            "msg_a",
            ts,
            standard_signature(&wrong_key, "msg_a", ts, body),
            body.to_owned(),
        ),
        (
            "stale timestamp",
            "msg_b",
            ts - 600,
            standard_signature(&secret, "msg_b", ts - 600, body),
            body.to_owned(),
        ),
        (
            "future timestamp",
            "msg_c",
            ts + 600,
            standard_signature(&secret, "msg_c", ts + 600, body),
            body.to_owned(),
        ),
        (
            "tampered body",
            "msg_d",
            ts,
            standard_signature(&secret, "msg_d", ts, body),
            body.replace("alex", "isaiah"),
        ),
        (
            "signature for another id",
            "msg_e",
            ts,
            standard_signature(&secret, "msg_x", ts, body),
            body.to_owned(),
        ),
    ];
    let mut bodies = Vec::new();
    for (why, id, t, sig, b) in cases {
        let (status, text) = app.post_standard(id, t, &sig, &b).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
        bodies.push(text);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    // An unsigned request without a token gets the same answer.
    let r = app
        .client
        .post(format!("{}/api/requests", app.base))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.unwrap(), bodies[0]);
}

#[tokio::test]
async fn jira_signatures_are_checked_and_the_sender_needs_the_role() {
    let app = spawn().await;
    let secret = app.sim.secret("webhook-jira").unwrap();
    let issue = jira_issue("HELP-42");
    let body = issue.as_str();
    assert_eq!(
        app.post_jira("d-1", &jira_signature(&secret, body), body).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.post_jira("d-1", &jira_signature(&secret, body), body).await,
        StatusCode::OK,
        "a replayed delivery finds the request it made and changes nothing"
    );
    assert_eq!(
        app.post_jira("d-2", &jira_signature("guess", body), body).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.post_jira("d-3", "sha256=zz", body).await, StatusCode::UNAUTHORIZED);
    // A sender that signs correctly but was given no role is forbidden.
    let readonly = app.sim.secret("webhook-servicenow").unwrap();
    assert_eq!(
        app.post_jira("d-4", &jira_signature(&readonly, body), body).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn webhook_signatures_only_open_the_intake() {
    let app = spawn().await;
    let secret = app.sim.secret("webhook-jira").unwrap();
    let r = app
        .client
        .post(format!("{}/api/users/alex.wilber@contoso.test/tap", app.base))
        .header("x-hub-signature", jira_signature(&secret, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_sender_is_the_recorded_caller_and_no_secret_reaches_the_trail() {
    let app = spawn().await;
    let secret = app.sim.secret("webhook-jira").unwrap();
    let body = r#"{"issue":{"key":"HELP-7"}}"#;
    assert_eq!(
        app.post_jira("d-9", &jira_signature(&secret, "other"), body).await,
        StatusCode::UNAUTHORIZED
    );
    let auditor = app.sim.issue_token(&mfa_recovery_sim::TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    // Unauthenticated refusals are recorded in aggregate, within AUDIT_REFUSAL_SECONDS.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let trail: Value = app
        .client
        .get(format!("{}/api/audit?action=request.submit", app.base))
        .bearer_auth(auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        trail["value"][0]["outcome"],
        json!({"status": "refused", "code": "unauthenticated"})
    );
    let text = trail.to_string();
    assert!(!text.contains(&secret));
    assert!(!text.contains(&app.sim.secret("webhook-servicenow").unwrap()));
}

#[tokio::test]
async fn key_vault_down_is_a_503_not_a_refusal() {
    let app = spawn().await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/secrets/**", "status": 503, "count": 50}))
        .send()
        .await
        .unwrap();
    let body = r#"{"issue":{"key":"HELP-8"}}"#;
    assert_eq!(
        app.post_jira("d-10", &jira_signature("whatever", body), body).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
