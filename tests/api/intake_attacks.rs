//! The intake and audit trail as an attacker bends them (issue "Intake and audit trail that an
//! attacker cannot bend"): a replayed signed delivery with a new Idempotency-Key, guessable ids
//! and other callers' requests, a pre-empted ticket, a constant Jira signature on a GET, a
//! write-back to a record the caller merely names, a redirecting callback, a queued pass kept in
//! the record, an audit query at the end of the calendar and a corrupt audit line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hmac::{Hmac, Mac};
use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery_sim::{Seed, Simulator, TokenRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;
use crate::intake::{WRITE_BACK, now_rfc3339, tap_request};

const SENDERS: &str =
    r#"[{"name": "jira", "scheme": "jira", "secrets": ["webhook-jira"], "roles": ["Recovery.Request"]}]"#;

/// The app with a Jira webhook sender, write-back, and `extra` settings; its audit directory.
async fn spawn(extra: &[(&str, &str)]) -> (TestApp, std::path::PathBuf, std::path::PathBuf) {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let mut vars = test_settings(&sim);
    vars.insert("WEBHOOK_SENDERS".into(), SENDERS.into());
    for (k, v) in WRITE_BACK.iter().chain(extra) {
        vars.insert((*k).into(), v.replace("{sim}", sim.base_url()));
    }
    let audit = std::path::PathBuf::from(&vars["AUDIT_DIR"]);
    let requests = std::path::PathBuf::from(&vars["REQUESTS_DIR"]);
    let settings = Settings::from_map(&vars).unwrap();
    let options = HostOptions {
        azure: mfa_recovery::dev::sim_overrides(&sim),
        ..HostOptions::default()
    };
    let app = Application::build(settings, options).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (TestApp::attach(base, sim), audit, requests)
}

fn jira_signature(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn jira_issue(key: &str) -> String {
    json!({"issue": {"key": key, "fields": {
        "summary": "lost phone", "customfield_10050": "alex.wilber@contoso.test",
        "customfield_10051": {"value": "tap"}, "customfield_10052": {"value": "email"},
        "customfield_10055": "video call", "customfield_10056": "agent@contoso.test",
        "customfield_10057": now_rfc3339(),
    }}})
    .to_string()
}

fn token_as(app: &TestApp, object_id: &str, roles: &[&str]) -> String {
    app.sim.issue_token(&TokenRequest {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        object_id: Some(object_id.into()),
        ..Default::default()
    })
}

async fn submit_as(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/api/requests", app.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn read_as(app: &TestApp, token: &str, id: &str) -> StatusCode {
    app.client
        .get(format!("{}/api/requests/{id}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_captured_signed_delivery_replayed_with_a_new_idempotency_key_is_the_same_request() {
    let (app, ..) = spawn(&[]).await;
    let secret = app.sim.secret("webhook-jira").unwrap();
    let body = jira_issue("HELP-900");
    let signature = jira_signature(&secret, &body);
    let deliver = |key: Option<&'static str>| {
        let mut r = app
            .client
            .post(format!("{}/api/requests", app.base))
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", "delivery-1")
            .header("x-hub-signature", signature.clone())
            .body(body.clone());
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send()
    };
    let first = deliver(None).await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    for key in ["replay-1", "replay-2"] {
        let again = deliver(Some(key)).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK, "a replay is the original request");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["requestId"], first["requestId"]);
    }
    let id = first["requestId"].as_str().unwrap();
    let done = app.wait_final(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let passes = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.subject.as_deref() == Some("Your temporary sign-in pass"))
        .count();
    assert_eq!(passes, 1, "one pass for one signed delivery");
    // A Jira signature over an empty body is one constant value: never accepted on a GET.
    let r = app
        .client
        .get(format!("{}/api/requests/{id}", app.base))
        .header("x-hub-signature", jira_signature(&secret, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn request_ids_are_random_and_a_request_answers_only_its_owner_or_an_auditor() {
    let (app, ..) = spawn(&[]).await;
    let alice = token_as(&app, "a1111111-1111-4111-8111-111111111111", &["Recovery.Request"]);
    let mallory = token_as(&app, "b2222222-2222-4222-8222-222222222222", &["Recovery.Request"]);
    let auditor = token_as(&app, "c3333333-3333-4333-8333-333333333333", &["Audit.Read"]);
    let (status, accepted) = submit_as(&app, &alice, &tap_request("alex.wilber@contoso.test", "CHG-77")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(id).unwrap().get_version_num(),
        4,
        "random, not derived from the ticket"
    );
    assert_eq!(read_as(&app, &alice, id).await, StatusCode::OK);
    assert_eq!(read_as(&app, &mallory, id).await, StatusCode::NOT_FOUND);
    assert_eq!(read_as(&app, &auditor, id).await, StatusCode::OK);
    // Mallory cannot pre-empt (or collide with) Alice's ticket: the same ticket is her own request.
    let (status, hers) = submit_as(&app, &mallory, &tap_request("alex.wilber@contoso.test", "CHG-77")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{hers}");
    assert_ne!(hers["requestId"], accepted["requestId"]);
    // And Alice's duplicate still finds hers.
    let (status, again) = submit_as(&app, &alice, &tap_request("alex.wilber@contoso.test", "CHG-77")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["requestId"], accepted["requestId"]);
}

#[tokio::test]
async fn nobody_makes_the_service_write_on_a_record_they_merely_name() {
    let (app, ..) = spawn(&[]).await;
    let outsider = token_as(&app, "d4444444-4444-4444-8444-444444444444", &["Recovery.Request"]);
    let incident = json!({
        "sys_id": "0123456789abcdef0123456789abcdef", "number": "INC0099999",
        "u_affected_user": "alex.wilber@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "email", "short_description": "lost phone",
        "u_verification_method": "video call", "u_verified_by": "agent@contoso.test",
        "u_verified_at": now_rfc3339(),
    });
    let (status, accepted) = submit_as(&app, &outsider, &incident).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap();
    let done = app.wait_final(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["writeBack"]["target"].is_null(), "{done}");
    assert!(app.sim.itsm().is_empty(), "{:?}", app.sim.itsm());
}

#[tokio::test]
async fn the_callback_follows_no_redirect_and_sends_no_referer() {
    // An allowed host (127.0.0.1) that redirects to one that is not (localhost).
    let stolen = Arc::new(AtomicUsize::new(0));
    let thief = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_port = thief.local_addr().unwrap().port();
    let counted = stolen.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        });
        axum::serve(thief, app).await.unwrap();
    });
    let referers = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = referers.clone();
    let hits = Arc::new(AtomicUsize::new(0));
    let hit = hits.clone();
    let redirector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector_port = redirector.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            hit.fetch_add(1, Ordering::SeqCst);
            if let Some(r) = headers.get("referer") {
                seen.lock().unwrap().push(r.to_str().unwrap_or_default().to_owned());
            }
            async move {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [("location", format!("http://localhost:{thief_port}/steal"))],
                )
            }
        });
        axum::serve(redirector, app).await.unwrap();
    });
    let (app, ..) = spawn(&[]).await;
    let mut body = tap_request("alex.wilber@contoso.test", "CHG-88");
    body["callbackUrl"] = json!(format!("http://127.0.0.1:{redirector_port}/flow?sig=SECRET"));
    let (status, accepted) = app.submit(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap();
    // The write-back is tried (and retried: a redirect is not a delivery) but never followed.
    for _ in 0..100 {
        if hits.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(hits.load(Ordering::SeqCst) > 0, "the callback was called");
    let state = app.request_state(id).await;
    assert_eq!(state["status"], "succeeded", "{state}");
    assert_ne!(
        state["writeBack"]["state"], "done",
        "a redirect is not a delivery: {state}"
    );
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "the redirect was followed");
    assert!(referers.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_queued_pass_is_never_kept_shown_or_called_back_whatever_return_to_caller_says() {
    let (app, _, requests) = spawn(&[("TAP_RETURN_TO_CALLER", "true")]).await;
    let mut body = json!({
        "action": "reset+tap", "user": "adele.vance@contoso.test", "scope": "portal",
        "tap": {"delivery": {"channel": "email"}},
        "ticket": {"system": "servicenow", "id": "CHG-99"}, "reason": "lost phone",
        "verification": {"method": "video call", "verifiedBy": "agent@contoso.test", "verifiedAt": now_rfc3339()},
    });
    body["callbackUrl"] = json!(format!("{}/callbacks/flow-9", app.sim.base_url()));
    let (status, accepted) = app.submit(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let passes = app.passes().await;
    assert_eq!(passes.len(), 1);
    let mut haystack = done.to_string();
    haystack.push_str(&serde_json::to_string(&app.sim.itsm()).unwrap());
    for entry in walk(&requests) {
        haystack.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
    }
    assert!(!haystack.contains(&passes[0]), "the pass was kept or sent back");
    assert!(!haystack.contains("temporaryAccessPass\""), "{done}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_audit_query_at_the_end_of_the_calendar_answers_and_a_corrupt_line_hides_nothing() {
    let (app, audit, _) = spawn(&[]).await;
    let auditor = app.token(&["Audit.Read"]);
    let get = |query: &str| {
        app.client
            .get(format!("{}/api/audit?{query}", app.base))
            .bearer_auth(&auditor)
            .send()
    };
    let r = get("from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z").await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "no panic, no dropped connection: {body}");
    // A pass leaves records; then a damaged line is appended to a chain.
    let (status, _) = submit_as(
        &app,
        &app.token(&["Recovery.Request"]),
        &tap_request("alex.wilber@contoso.test", "CHG-5"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Another instance's chain of today holds a line that is not a record.
    let files = walk(&audit);
    let chain = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    std::fs::write(chain.with_file_name("other-instance.jsonl"), "{not a record\n").unwrap();
    let r = get("action=request.submit").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(!v["value"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unauthenticated_calls_writes_a_bounded_number_of_records() {
    let (app, ..) = spawn(&[]).await;
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let client = app.client.clone();
        let url = format!("{}/api/users/alex.wilber@contoso.test/tap", app.base);
        // 150 sources, each claiming to be someone else first (only the last entry counts).
        let xff = format!("6.6.6.6, 10.0.{}.{}", (i % 150) / 256, (i % 150) % 256);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let v: Value = app
        .client
        .get(format!(
            "{}/api/audit?action=tap.issue&outcome=refused&pageSize=1000",
            app.base
        ))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = v["value"].as_array().unwrap();
    assert!(
        records.len() <= mfa_recovery::audit::refusals::MAX_SOURCES + 1,
        "{} records",
        records.len()
    );
    let total: u64 = records.iter().map(|r| r["details"]["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 300, "every refusal is counted");
    assert!(
        records.iter().all(|r| r["caller"]["sourceIp"] != "6.6.6.6"),
        "the client's own entry is ignored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_whose_secret_does_not_exist_yet_does_not_turn_each_call_into_a_key_vault_read() {
    let senders = r#"[{"name": "jira", "scheme": "jira", "secrets": ["webhook-not-created-yet"], "roles": ["Recovery.Request"]}]"#;
    let (app, ..) = spawn(&[("WEBHOOK_SENDERS", senders)]).await;
    let body = jira_issue("HELP-1");
    for _ in 0..300 {
        let status = app
            .client
            .post(format!("{}/api/requests", app.base))
            .header("content-type", "application/json")
            .header("x-hub-signature", jira_signature("guess", &body))
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let reads = app
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("webhook-not-created-yet"))
        .count();
    // One read: Key Vault's challenge makes it two requests (unauthenticated 401, then with a token).
    assert!(reads <= 2, "{reads} Key Vault requests for 300 calls");
}

/// Found by the load run: a queued pass whose delivery the provider refused must be issued again
/// on the retry, not reported as "delivery unconfirmed".
#[tokio::test]
async fn a_queued_pass_whose_delivery_failed_is_issued_again_on_the_retry() {
    let (app, ..) = spawn(&[]).await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/v1.0/users/*/sendMail", "method": "POST", "status": 503, "count": 1}))
        .send()
        .await
        .unwrap();
    let (status, accepted) = app.submit(&tap_request("alex.wilber@contoso.test", "CHG-42")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let passes: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.subject.as_deref() == Some("Your temporary sign-in pass"))
        .collect();
    assert_eq!(passes.len(), 1, "one pass delivered");
    assert_eq!(app.passes().await.len(), 1, "one pass usable");
}
