//! Confirmation links (`"mode": "link"`), end to end on the simulated tenant: the link read from
//! the outbox as the user's phone would, the page, the user's answer, the agent's view; "this is
//! not me" refusing the next recovery, telling the SOC, and an approver lifting the block; and
//! the secret in no answer, record or audit line.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const AGENT: &str = "a0000000-0000-4000-8000-00000000a9e1";
const APPROVER: &str = "a0000000-0000-4000-8000-00000000c0c3";
const USER: &str = "adele.vance@contoso.test";

pub(crate) async fn link_app(extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("CONSOLE_URL", "https://func-test.azurewebsites.net/api/console/"),
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ];
    settings.extend_from_slice(extra);
    spawn_app_with(&settings).await
}

/// A link sent, as the agent got it and as the user's message carries it.
pub(crate) struct Sent {
    pub(crate) id: String,
    pub(crate) secret: String,
    message: String,
}

impl TestApp {
    fn agent(&self) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec!["Recovery.Tap".into(), "Recovery.Reset".into()],
            object_id: Some(AGENT.to_owned()),
            name: Some("Megan Bowen".into()),
            ..Default::default()
        })
    }

    fn approver(&self, object_id: &str) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec!["Recovery.Approve".into(), "Recovery.Tap".into()],
            object_id: Some(object_id.to_owned()),
            name: Some("Isaiah Langer".into()),
            upn: Some(format!("person-{object_id}@contoso.test")),
            ..Default::default()
        })
    }

    async fn send(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if !token.is_empty() {
            r = r.bearer_auth(token);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn send_link(&self, channel: &str) -> Sent {
        let before = self.outbox().await.len();
        let (status, sent) = self
            .send(
                &self.agent(),
                reqwest::Method::POST,
                &format!("/api/users/{USER}/verifications"),
                Some(
                    json!({"channel": channel, "mode": "link", "action": "tap", "ticket": {"system": "servicenow", "id": "INC0040001"}}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        assert_eq!(sent["mode"], "link");
        let message = self
            .sim
            .outbox()
            .into_iter()
            .nth(before)
            .expect("the link was sent")
            .body;
        let link =
            regex::Regex::new(r"https://func-test\.azurewebsites\.net/api/confirm/([0-9a-f-]{36})#([A-Za-z0-9_-]{43})")
                .unwrap()
                .captures(&message)
                .unwrap_or_else(|| panic!("no link in {message}"));
        assert_eq!(&link[1], sent["verificationId"].as_str().unwrap());
        Sent {
            id: link[1].to_owned(),
            secret: link[2].to_owned(),
            message,
        }
    }

    pub(crate) async fn answer(&self, id: &str, secret: &str, decision: &str) -> (StatusCode, Value) {
        self.send(
            "",
            reqwest::Method::POST,
            &format!("/api/confirm/{id}"),
            Some(json!({"secret": secret, "decision": decision})),
        )
        .await
    }

    async fn status_of(&self, id: &str) -> Value {
        let (status, view) = self
            .send(
                &self.agent(),
                reqwest::Method::GET,
                &format!("/api/verifications/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        view
    }

    async fn page(&self, id: &str) -> (reqwest::header::HeaderMap, String) {
        let r = self
            .client
            .get(format!("{}/api/confirm/{id}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        (r.headers().clone(), r.text().await.unwrap())
    }

    pub(crate) async fn tap(&self, verification: &str) -> (StatusCode, Value) {
        self.send(
            &self.agent(),
            reqwest::Method::POST,
            &format!("/api/users/{USER}/tap"),
            Some(
                json!({"delivery": {"channel": "sms"}, "ticket": {"system": "servicenow", "id": "INC0040001"},
                "reason": "lost phone", "verification": {"id": verification}}),
            ),
        )
        .await
    }
}

/// The user opens the link and confirms: the verification is verified exactly as a code is, and
/// a pass by another channel goes out. The message names the agent, the action and the ticket.
#[tokio::test]
async fn a_link_the_user_confirms_verifies_and_a_pass_follows() {
    let app = link_app(&[]).await;
    let sent = app.send_link("email").await;
    assert!(
        sent.message
            .starts_with("Megan Bowen (IT service desk) asks to give you a Temporary Access Pass"),
        "{}",
        sent.message
    );
    assert!(sent.message.contains("(ticket INC0040001)"));
    // The page tells whoever holds only the id nothing: it is the same for every id.
    let (headers, html) = app.page(&sent.id).await;
    assert!(!html.contains("Megan") && !html.contains("INC0040001"), "{html}");
    assert_eq!(html, app.page(&uuid::Uuid::new_v4().to_string()).await.1);
    assert!(html.contains("Yes, it is me") && html.contains("This is not me"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'") && csp.contains("default-src 'none'")
    );
    assert_eq!(
        app.status_of(&sent.id).await["status"],
        "sent",
        "a GET of the page changes nothing"
    );
    // The secret proven, the page learns who asks, for what, when.
    let (status, opened) = app.answer(&sent.id, &sent.secret, "open").await;
    assert_eq!((status, &opened["status"]), (StatusCode::OK, &json!("opened")));
    assert_eq!(opened["page"]["agent"], "Megan Bowen");
    assert_eq!(opened["page"]["ticket"], "INC0040001");
    assert!(
        opened["page"]["action"]
            .as_str()
            .unwrap()
            .contains("Temporary Access Pass")
    );
    assert!(opened["page"]["confirmedAt"].is_null());
    assert_eq!(app.status_of(&sent.id).await["status"], "opened");
    assert_eq!(
        app.answer(&sent.id, &sent.secret, "confirm").await,
        (StatusCode::OK, json!({"status": "verified"}))
    );
    let view = app.status_of(&sent.id).await;
    assert_eq!(
        (view["status"].as_str(), view["mode"].as_str()),
        (Some("verified"), Some("link"))
    );
    // The agent cannot answer a link for the user.
    let (status, body) = app
        .send(
            &app.agent(),
            reqwest::Method::POST,
            &format!("/api/verifications/{}/confirm", sent.id),
            Some(json!({"code": "123456"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (status, issued) = app.tap(&sent.id).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let confirm = app.audit_of(Some("verification.confirm")).await;
    assert!(
        confirm
            .iter()
            .any(|r| r["details"]["decision"] == "confirm" && r["caller"]["via"] == "link"),
        "{confirm:#?}"
    );
}

/// Mail scanners open links: the page never confirms. A wrong secret, one used twice, one for
/// another link, an unknown id, a code's id and a malformed body all get the same neutral 404.
#[tokio::test]
async fn the_page_never_confirms_and_every_unusable_secret_gets_one_neutral_answer() {
    let app = link_app(&[]).await;
    let first = app.send_link("email").await;
    let second = app.send_link("sms").await;
    for _ in 0..3 {
        app.page(&first.id).await;
    }
    assert_eq!(app.status_of(&first.id).await["status"], "sent");
    let mut wrong = first.secret.clone();
    wrong.replace_range(0..1, if wrong.starts_with('A') { "B" } else { "A" });
    let neutral = app.answer(&first.id, &wrong, "confirm").await;
    assert_eq!(neutral.0, StatusCode::NOT_FOUND);
    assert_eq!(neutral.1["error"]["code"], "link_unusable");
    // The other link's secret on this id, an unknown id, a code for a secret, a bad decision.
    assert_eq!(app.answer(&first.id, &second.secret, "confirm").await, neutral);
    assert_eq!(
        app.answer(&uuid::Uuid::new_v4().to_string(), &first.secret, "confirm")
            .await,
        neutral
    );
    assert_eq!(app.answer(&first.id, "123456", "confirm").await, neutral);
    assert_eq!(app.answer("not-an-id", &first.secret, "confirm").await, neutral);
    assert_eq!(app.answer(&first.id, &first.secret, "maybe").await, neutral);
    assert_eq!(
        app.status_of(&first.id).await["status"],
        "sent",
        "none of them changed anything"
    );
    // Confirmed once, never again; the page then offers only "this is not me".
    assert_eq!(app.answer(&first.id, &first.secret, "confirm").await.0, StatusCode::OK);
    assert_eq!(app.answer(&first.id, &first.secret, "confirm").await, neutral);
    let (status, opened) = app.answer(&first.id, &first.secret, "open").await;
    assert_eq!(status, StatusCode::OK);
    assert!(opened["page"]["confirmedAt"].is_string(), "{opened}");
    // Repudiated, opening it is neutral.
    assert_eq!(app.answer(&first.id, &first.secret, "not_me").await.0, StatusCode::OK);
    assert_eq!(app.answer(&first.id, &first.secret, "open").await, neutral);
}

/// A link whose time ran out (`VERIFICATION_CODE_MINUTES`) cannot be confirmed (neutral 404),
/// but still takes "this is not me".
#[tokio::test]
async fn an_expired_link_cannot_be_answered() {
    let app = link_app(&[("VERIFICATION_CODE_MINUTES", "1")]).await;
    let sent = app.send_link("email").await;
    // The record's expiry moved into the past, as a minute later.
    let dir = std::path::Path::new(&app.settings_value("AUDIT_DIR")).join("limits/verifications");
    let path = dir.join(format!("{}.json", sent.id));
    let mut record: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    record["expiresAt"] = json!("2020-01-01T00:00:00Z");
    std::fs::write(&path, record.to_string()).unwrap();
    let (status, body) = app.answer(&sent.id, &sent.secret, "confirm").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("link_unusable"))
    );
    assert_eq!(app.status_of(&sent.id).await["status"], "expired");
    // "This is not me" outlives the answer's time: the message asks for it whenever it is read.
    let (status, opened) = app.answer(&sent.id, &sent.secret, "open").await;
    assert_eq!((status, &opened["page"]["canConfirm"]), (StatusCode::OK, &json!(false)));
    assert_eq!(
        app.answer(&sent.id, &sent.secret, "not_me").await,
        (StatusCode::OK, json!({"status": "repudiated"}))
    );
}

/// "This is not me": the verification is repudiated and cannot serve a recovery; the next
/// recovery for the user (a pass, a new link) is refused `423 recovery_blocked`; the SOC is told;
/// the trail records it; the agent who sent the link cannot lift the block, an app cannot, an
/// approver can, once, and then recoveries go on.
#[tokio::test]
async fn not_me_blocks_the_user_s_recoveries_tells_the_soc_and_an_approver_lifts_it() {
    let app = link_app(&[("NOT_ME_REVOKE_SESSIONS", "true")]).await;
    let sent = app.send_link("email").await;
    assert_eq!(
        app.answer(&sent.id, &sent.secret, "not_me").await,
        (StatusCode::OK, json!({"status": "repudiated"}))
    );
    assert_eq!(app.status_of(&sent.id).await["status"], "repudiated");
    let (status, body) = app.tap(&sent.id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::LOCKED, &json!("recovery_blocked")),
        "{body}"
    );
    let (status, body) = app
        .send(
            &app.agent(),
            reqwest::Method::POST,
            &format!("/api/users/{USER}/verifications"),
            Some(json!({"channel": "sms", "mode": "link"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::LOCKED, &json!("recovery_blocked")),
        "{body}"
    );
    // The SOC heard, signed.
    let alert = app
        .sim
        .itsm()
        .into_iter()
        .find(|h| h.path == "/callbacks/soc" && h.body["payload"]["type"] == "recovery.repudiated")
        .expect("the SOC was told");
    let data = &alert.body["payload"]["data"];
    assert_eq!(
        (data["user"].as_str(), data["channel"].as_str()),
        (Some(USER), Some("email"))
    );
    assert_eq!(data["ticket"], "INC0040001");
    assert_eq!(data["agent"], "Megan Bowen");
    // The trail: the block, by the user, with the sessions revoked.
    let blocks = app.audit_of(Some("recovery.block")).await;
    let block = blocks
        .iter()
        .find(|r| r["details"]["decision"] == "not_me")
        .expect("the block is recorded");
    assert_eq!(block["caller"]["via"], "link");
    assert_eq!(
        block["outcome"],
        json!({"status": "refused", "code": "recovery_blocked"})
    );
    assert_eq!(block["details"]["sessionsRevoked"], true);
    assert!(
        app.graph_writes().iter().any(|w| w.ends_with("/revokeSignInSessions")),
        "{:?}",
        app.graph_writes()
    );
    // Lifting: not an application, not the agent who sent the link, not without a comment.
    let lift = format!("/api/users/{USER}/recovery-block/lift");
    let app_token = app.token(&["Recovery.Approve"]);
    let (status, body) = app
        .send(&app_token, reqwest::Method::POST, &lift, Some(json!({"comment": "ok"})))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_must_be_user"))
    );
    let (status, body) = app
        .send(
            &app.approver(AGENT),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": "ok"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_is_requester")),
        "{body}"
    );
    let (status, _) = app
        .send(
            &app.approver(APPROVER),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app
        .send(
            &app.approver(APPROVER),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": "called the user back on their desk phone"})),
        )
        .await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("lifted")), "{body}");
    let (status, body) = app
        .send(
            &app.approver(APPROVER),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": "again"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("not_blocked"))
    );
    let lifted = app.audit_of(Some("recovery.block")).await;
    assert!(
        lifted
            .iter()
            .any(|r| r["details"]["comment"] == "called the user back on their desk phone")
    );
    // Recoveries go on: a new link, confirmed, serves a pass.
    let again = app.send_link("email").await;
    assert_eq!(app.answer(&again.id, &again.secret, "confirm").await.0, StatusCode::OK);
    assert_eq!(app.tap(&again.id).await.0, StatusCode::CREATED);
}

/// An attacker who got the secret (a swapped SIM, a relay) and confirmed first does not silence
/// the user: "this is not me" still works on the confirmed link, the verification then serves
/// nothing, and an answer given again runs the containment again. A link for a pass does not
/// serve a reset; a link never goes to the manager.
#[tokio::test]
async fn not_me_after_an_attacker_confirmed_still_contains_and_a_link_serves_only_its_action() {
    let app = link_app(&[]).await;
    let stolen = app.send_link("sms").await;
    assert_eq!(
        app.answer(&stolen.id, &stolen.secret, "confirm").await.0,
        StatusCode::OK
    );
    // The user's own "not me", twice (a retry after a failure finishes the containment).
    for _ in 0..2 {
        assert_eq!(
            app.answer(&stolen.id, &stolen.secret, "not_me").await,
            (StatusCode::OK, json!({"status": "repudiated"}))
        );
    }
    let (status, body) = app.tap(&stolen.id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::LOCKED, &json!("recovery_blocked")),
        "{body}"
    );
    let alerts = app
        .sim
        .itsm()
        .into_iter()
        .filter(|h| h.path == "/callbacks/soc" && h.body["payload"]["type"] == "recovery.repudiated")
        .count();
    assert!(alerts >= 1);

    let app = link_app(&[]).await;
    let for_a_pass = app.send_link("email").await;
    assert_eq!(
        app.answer(&for_a_pass.id, &for_a_pass.secret, "confirm").await.0,
        StatusCode::OK
    );
    let (status, body) = app
        .send(
            &app.agent(),
            reqwest::Method::POST,
            &format!("/api/users/{USER}/mfa/reset"),
            Some(json!({"ticket": {"system": "servicenow", "id": "INC0040001"}, "reason": "lost phone",
                "verification": {"id": for_a_pass.id}, "revokeSessions": true, "tap": {"delivery": {"channel": "sms"}}})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request")),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("a link for a pass"));
    let (status, body) = app
        .send(
            &app.agent(),
            reqwest::Method::POST,
            &format!("/api/users/{USER}/verifications"),
            Some(json!({"channel": "manager", "mode": "link"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
}

/// A block is lifted by nobody it concerns: not the user, not any agent whose link the user
/// repudiated; the SOC hears of the lift; and a verification confirmed before the "not me"
/// stays unusable after it.
#[tokio::test]
async fn a_lift_is_nobody_s_own_and_an_earlier_verification_stays_dead() {
    let app = link_app(&[]).await;
    let earlier = app.send_link("email").await;
    assert_eq!(
        app.answer(&earlier.id, &earlier.secret, "confirm").await.0,
        StatusCode::OK
    );
    let refused = app.send_link("sms").await;
    assert_eq!(
        app.answer(&refused.id, &refused.secret, "not_me").await.0,
        StatusCode::OK
    );
    let user_id = app
        .sim
        .tenant()
        .users
        .iter()
        .find(|u| u.upn == USER)
        .unwrap()
        .id
        .clone();
    let lift = format!("/api/users/{USER}/recovery-block/lift");
    let (status, body) = app
        .send(
            &app.approver(&user_id),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": "it is me"})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_is_target")),
        "{body}"
    );
    let (status, _) = app
        .send(
            &app.approver(APPROVER),
            reqwest::Method::POST,
            &lift,
            Some(json!({"comment": "checked in person"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        app.sim
            .itsm()
            .iter()
            .any(|h| h.path == "/callbacks/soc" && h.body["payload"]["type"] == "recovery.block.lifted")
    );
    let (status, body) = app.tap(&earlier.id).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::LOCKED, &json!("recovery_blocked")),
        "{body}"
    );
}

/// The secret is in no answer, no stored record, no audit record and no SOC message: only in the
/// message to the user.
#[tokio::test]
async fn the_secret_reaches_no_answer_record_or_audit_line() {
    let app = link_app(&[]).await;
    let sent = app.send_link("email").await;
    let mut seen = vec![
        app.answer(&sent.id, &sent.secret, "open").await.1.to_string(),
        app.status_of(&sent.id).await.to_string(),
        app.page(&sent.id).await.1,
        app.answer(&sent.id, &sent.secret, "not_me").await.1.to_string(),
        app.answer(&sent.id, &sent.secret, "confirm").await.1.to_string(),
    ];
    seen.push(json!(app.audit_of(None).await).to_string());
    let dir = std::path::Path::new(&app.settings_value("AUDIT_DIR")).join("limits");
    for entry in walk(&dir) {
        seen.push(std::fs::read_to_string(entry).unwrap());
    }
    for hook in app.sim.itsm() {
        seen.push(hook.body.to_string());
    }
    for text in &seen {
        assert!(!text.contains(&sent.secret), "the secret leaked: {text}");
    }
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

/// The newest link in the outbox: its id and secret.
fn newest_link(app: &TestApp) -> (String, String) {
    let re = regex::Regex::new(r"/api/confirm/([0-9a-f-]{36})#([A-Za-z0-9_-]{43})").unwrap();
    let message = app
        .sim
        .outbox()
        .into_iter()
        .rev()
        .find(|m| re.is_match(&m.body))
        .expect("a link was sent");
    let c = re.captures(&message.body).unwrap();
    (c[1].to_owned(), c[2].to_owned())
}

fn queued_tap(ticket: &str) -> Value {
    json!({"action": "tap", "user": USER, "delivery": {"channel": "sms"},
        "ticket": {"system": "servicenow", "id": ticket}, "reason": "lost phone",
        "verification": {"mode": "link", "channel": "email"}})
}

/// A queued request that asks the service to verify the user waits `awaiting_confirmation` (the
/// link sent at once, as its caller) and runs only once the user confirms; the result is the
/// pass, as for any request.
#[tokio::test]
async fn a_queued_request_waits_for_the_user_and_runs_once_they_confirm() {
    let app = link_app(&[]).await;
    let (status, accepted) = app.submit(&queued_tap("INC0040101")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "awaiting_confirmation");
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let (link, secret) = newest_link(&app);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.request_state(&id).await["status"], "awaiting_confirmation");
    assert!(app.passes().await.is_empty(), "nothing runs before the user answers");
    assert_eq!(app.answer(&link, &secret, "confirm").await.0, StatusCode::OK);
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(app.passes().await.len(), 1);
    // A resend of the same ticket finds it, and sends no second link.
    let before = app.outbox().await.len();
    let (status, again) = app.submit(&queued_tap("INC0040101")).await;
    assert_eq!(
        (status, again["requestId"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    assert_eq!(app.outbox().await.len(), before);
}

/// "This is not me" ends the waiting request `refused` (`recovery_blocked`), written back like
/// any result; nothing runs. A synchronous call cannot wait for a link.
#[tokio::test]
async fn not_me_refuses_the_waiting_request_and_a_synchronous_call_cannot_wait() {
    let app = link_app(&[]).await;
    let (_, accepted) = app.submit(&queued_tap("INC0040102")).await;
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let (link, secret) = newest_link(&app);
    assert_eq!(app.answer(&link, &secret, "not_me").await.0, StatusCode::OK);
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "refused", "{done}");
    assert_eq!(done["result"]["error"]["code"], "recovery_blocked", "{done}");
    assert!(app.passes().await.is_empty());
    let (status, body) = app
        .send(
            &app.agent(),
            reqwest::Method::POST,
            &format!("/api/users/{USER}/tap"),
            Some(
                json!({"delivery": {"channel": "sms"}, "ticket": {"system": "servicenow", "id": "INC0040103"},
                "reason": "lost phone", "verification": {"mode": "link", "channel": "email"}}),
            ),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request")),
        "{body}"
    );
}

/// Nobody answers: when the link's time is over, a message made invisible until then ends the
/// request `refused` with `verification_expired`; nothing runs. (`VERIFICATION_CODE_MINUTES`
/// is at least a minute, so this test waits a little over one.)
#[tokio::test]
async fn an_unanswered_queued_request_ends_refused_when_the_link_expires() {
    let app = link_app(&[("VERIFICATION_CODE_MINUTES", "1")]).await;
    let (_, accepted) = app.submit(&queued_tap("INC0040104")).await;
    assert_eq!(accepted["status"], "awaiting_confirmation", "{accepted}");
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let (link, secret) = newest_link(&app);
    let mut done = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        done = app.request_state(&id).await;
        if done["status"] == "refused" {
            break;
        }
    }
    assert_eq!(done["status"], "refused", "{done}");
    assert_eq!(done["result"]["error"]["code"], "verification_expired", "{done}");
    assert!(app.passes().await.is_empty());
    // Too late to answer now.
    assert_eq!(app.answer(&link, &secret, "confirm").await.0, StatusCode::NOT_FOUND);
}
