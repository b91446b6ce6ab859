//! The asynchronous intake on a local directory, with the in-process queue playing the host:
//! what `POST /api/requests` accepts and refuses, duplicates, `GET /api/requests/{id}`, and the
//! write-back to the simulated ServiceNow, Jira and a callback receiver.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Write-back to the simulator's ServiceNow, Jira and callback receiver.
/// The object id of the simulator's default caller token (`TestApp::token`).
pub const DEFAULT_CALLER: &str = "9e8d7c6b-5a49-4382-8170-6f5e4d3c2b1a";

pub const WRITE_BACK: [(&str, &str); 10] = [
    ("SERVICENOW_INSTANCE_URL", "{sim}/servicenow"),
    ("SERVICENOW_CALLERS", DEFAULT_CALLER),
    ("JIRA_CALLERS", DEFAULT_CALLER),
    ("SERVICENOW_USER", "mfa-recovery"),
    ("SERVICENOW_PASSWORD_SECRET", "servicenow-password"),
    ("JIRA_BASE_URL", "{sim}/jira"),
    ("JIRA_USER", "mfa-recovery@contoso.test"),
    ("JIRA_API_TOKEN_SECRET", "jira-api-token"),
    ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ("CALLBACK_ALLOWED_HOSTS", "127.0.0.1"),
];

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Our own JSON: a pass by email for `user`, on ticket `ticket`.
pub fn tap_request(user: &str, ticket: &str) -> Value {
    json!({
        "action": "tap", "user": user,
        "delivery": {"channel": "email"},
        "ticket": {"system": "servicenow", "id": ticket},
        "reason": "lost phone",
        "verification": {"method": "video call with ID", "verifiedBy": "agent@contoso.test", "verifiedAt": now_rfc3339()},
    })
}

impl TestApp {
    pub async fn submit(&self, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}/api/requests", self.base))
            .bearer_auth(self.token(&["Recovery.Request"]))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    pub async fn submit_owned(&self, body: Value) -> (StatusCode, Value) {
        self.submit(&body).await
    }

    /// A request's status, read as an auditor (who may read every request, not only their own).
    pub async fn request_state(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/api/requests/{id}", self.base))
            .bearer_auth(self.token(&["Recovery.Request", "Audit.Read"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Poll until the request is final (and its write-back, if any, has gone).
    pub async fn wait_final(&self, id: &str) -> Value {
        for _ in 0..300 {
            let v = self.request_state(id).await;
            let state = v["status"].as_str().unwrap_or_default();
            let written = v["writeBack"]["state"].as_str().is_none_or(|s| s != "pending");
            if ["succeeded", "refused", "failed"].contains(&state) && written {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("request {id} did not finish: {}", self.request_state(id).await);
    }

    /// Every pass the simulated tenant has issued so far.
    pub async fn passes(&self) -> Vec<String> {
        let taps: Value = reqwest::get(format!("{}/sim/taps", self.sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        taps["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["temporaryAccessPass"].as_str().map(str::to_owned))
            .collect()
    }
}

fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.push_str(&files_text(&path));
            } else {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_request_is_accepted_at_once_run_by_the_worker_and_its_result_readable() {
    let requests = temp_dir("intake-requests");
    let audit = temp_dir("intake-audit");
    let app = spawn_app_with(&[
        ("REQUESTS_DIR", requests.to_str().unwrap()),
        ("AUDIT_DIR", audit.to_str().unwrap()),
        ("TAP_RETURN_TO_CALLER", "true"),
    ])
    .await;
    let (status, accepted) = app.submit(&tap_request("alex.wilber@contoso.test", "INC0020001")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["statusUrl"], format!("/api/requests/{id}"));
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["resultStatus"], 201);
    assert_eq!(done["result"]["delivery"]["to"], "a***r@personal.example");
    assert_eq!(
        done["result"]["requestId"],
        id.as_str(),
        "the audit records carry the request id"
    );
    // One pass, delivered once, and nowhere else: not in the status (even with
    // TAP_RETURN_TO_CALLER on, a queued request never returns it), the record or the trail.
    let passes = app.passes().await;
    assert_eq!(passes.len(), 1);
    let carrying: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains(&passes[0]))
        .collect();
    assert_eq!(carrying.len(), 1);
    assert_eq!(carrying[0].to, vec!["alex.wilber@personal.example".to_owned()]);
    for text in [
        done.to_string(),
        accepted.to_string(),
        files_text(&requests),
        files_text(&audit),
    ] {
        assert!(!text.contains(&passes[0]));
    }
    let trail = files_text(&audit);
    assert!(trail.contains("\"action\":\"request.submit\"") && trail.contains(&id));
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_is_kept_or_queued() {
    let requests = temp_dir("intake-bad");
    let app = spawn_app_with(&[
        ("REQUESTS_DIR", requests.to_str().unwrap()),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
        ("CALLBACK_ALLOWED_HOSTS", "hooks.contoso.test"),
    ])
    .await;
    let good = tap_request("alex.wilber@contoso.test", "INC0020002");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v
    };
    let stale = (time::OffsetDateTime::now_utc() - time::Duration::hours(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "no action",
            with(&|v| drop(v.as_object_mut().unwrap().remove("action"))),
            400,
            "invalid_request",
        ),
        (
            "unknown action",
            with(&|v| v["action"] = json!("unlock")),
            400,
            "invalid_request",
        ),
        (
            "no user",
            with(&|v| drop(v.as_object_mut().unwrap().remove("user"))),
            400,
            "invalid_request",
        ),
        (
            "bad channel",
            with(&|v| v["delivery"]["channel"] = json!("fax")),
            400,
            "invalid_request",
        ),
        (
            "an address",
            with(&|v| v["delivery"]["to"] = json!("+15550100")),
            400,
            "address_not_allowed",
        ),
        (
            "no verification",
            with(&|v| drop(v.as_object_mut().unwrap().remove("verification"))),
            400,
            "verification_required",
        ),
        (
            "stale verification",
            with(&|v| v["verification"]["verifiedAt"] = json!(stale)),
            422,
            "verification_stale",
        ),
        (
            "callback elsewhere",
            with(&|v| v["callbackUrl"] = json!("https://169.254.169.254/latest")),
            400,
            "callback_not_allowed",
        ),
        (
            "reset with a pass",
            with(&|v| {
                v["action"] = json!("reset");
                v["tap"] = json!({"delivery": {"channel": "sms"}});
                v.as_object_mut().unwrap().remove("delivery");
            }),
            400,
            "invalid_request",
        ),
        (
            "reset+tap without one",
            with(&|v| {
                v["action"] = json!("reset+tap");
                v.as_object_mut().unwrap().remove("delivery");
            }),
            400,
            "invalid_request",
        ),
        (
            "servicenow without sys_id",
            json!({"sys_id": "x", "number": "INC1"}),
            400,
            "invalid_request",
        ),
        (
            "jira without the user",
            json!({"issue": {"key": "HELP-1", "fields": {"customfield_10051": "tap"}}}),
            400,
            "invalid_request",
        ),
    ];
    for (why, body, status, code) in cases {
        let (s, v) = app.submit(&body).await;
        assert_eq!(s.as_u16(), status, "{why}: {v}");
        assert_eq!(v["error"]["code"], code, "{why}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = app
        .client
        .post(format!("{}/api/requests", app.base))
        .bearer_auth(app.token(&["Recovery.Request"]))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(std::fs::read_dir(&requests).unwrap().count(), 0, "nothing was kept");
    assert!(app.passes().await.is_empty());
}

#[tokio::test]
async fn a_duplicate_answers_with_the_original_and_a_reused_key_is_refused() {
    let app = spawn_app().await;
    let body = tap_request("alex.wilber@contoso.test", "INC0020003");
    let (s1, first) = app.submit(&body).await;
    let (s2, second) = app.submit(&body).await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::OK));
    assert_eq!(first["requestId"], second["requestId"]);
    // A resend with a fresher verification is the same request.
    let mut resent = body.clone();
    resent["verification"]["verifiedAt"] = json!(now_rfc3339());
    resent["verification"]["verifiedBy"] = json!("another.agent@contoso.test");
    let (s, v) = app.submit(&resent).await;
    assert_eq!((s, &v["requestId"]), (StatusCode::OK, &first["requestId"]));
    // Same ticket and action, a different request: refused, not merged.
    let mut other = body.clone();
    other["user"] = json!("adele.vance@contoso.test");
    let (s3, v3) = app.submit(&other).await;
    assert_eq!(s3, StatusCode::CONFLICT, "{v3}");
    assert_eq!(v3["error"]["code"], "idempotency_key_reused");
    // An Idempotency-Key makes a second request on the same ticket possible.
    let r = app
        .client
        .post(format!("{}/api/requests", app.base))
        .bearer_auth(app.token(&["Recovery.Request"]))
        .header("Idempotency-Key", "second-try")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = first["requestId"].as_str().unwrap();
    app.wait_final(id).await;
    let (_, after) = app.submit(&body).await;
    assert_eq!(after["status"], "succeeded", "a late duplicate sees the result");
}

#[tokio::test]
async fn the_status_needs_the_role_and_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/api/requests/{}", app.base, uuid::Uuid::new_v4()))
        .bearer_auth(app.token(&["Recovery.Request"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "request_not_found");
    let r = app
        .client
        .get(format!("{}/api/requests/{}", app.base, uuid::Uuid::new_v4()))
        .bearer_auth(app.token(&["Recovery.Tap"]))
        .send()
        .await
        .unwrap();
    // A pass agent may read the requests its held calls became, so it passes the role check,
    // and learns nothing of a request that is not its own.
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .client
        .get(format!("{}/api/requests/{}", app.base, uuid::Uuid::new_v4()))
        .bearer_auth(app.token(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a role of the service is needed");
}

#[tokio::test]
async fn results_go_back_to_servicenow_jira_and_a_signed_callback_without_the_pass() {
    let app = spawn_app_with(&WRITE_BACK).await;
    let verified = now_rfc3339();
    let servicenow = json!({
        "sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0030001",
        "u_affected_user": "alex.wilber@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "email", "short_description": "lost phone",
        "u_verification_method": "callback to HR number", "u_verified_by": "agent@contoso.test",
        "u_verified_at": verified,
    });
    let jira = json!({"issue": {"key": "HELP-301", "self": "https://contoso.atlassian.net/rest/api/2/issue/10001", "fields": {
        "summary": "new phone", "customfield_10050": "adele.vance@contoso.test",
        "customfield_10051": {"value": "reset+tap"}, "customfield_10052": {"value": "email"},
        "customfield_10055": "video call", "customfield_10056": "agent@contoso.test", "customfield_10057": verified,
    }}});
    let mut callback = tap_request("grady.archie@contoso.test", "CHG-1");
    callback["callbackUrl"] = json!(format!("{}/callbacks/flow-1", app.sim.base_url()));
    let mut ids = Vec::new();
    for body in [&servicenow, &jira, &callback] {
        let (s, v) = app.submit(body).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        ids.push(v["requestId"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let done = app.wait_final(id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["writeBack"]["state"], "done", "{done}");
    }
    let items = app.sim.itsm();
    assert_eq!(items.len(), 3, "{items:?}");
    let sn = items.iter().find(|i| i.system == "servicenow").unwrap();
    assert_eq!(sn.path, "/api/now/table/incident/9d385017c611228701d22104cc95c371");
    let note = sn.body["work_notes"].as_str().unwrap();
    assert!(
        note.contains("succeeded") && note.contains("a***r@personal.example") && note.contains("valid until"),
        "{note}"
    );
    let jira = items.iter().find(|i| i.system == "jira").unwrap();
    assert_eq!(jira.path, "/rest/servicedeskapi/request/HELP-301/comment");
    assert_eq!(jira.body["public"], false);
    let comment = jira.body["body"].as_str().unwrap();
    assert!(
        comment.contains("MFA re-registration required") && comment.contains("Temporary Access Pass issued"),
        "{comment}"
    );
    let cb = items.iter().find(|i| i.system == "callback").unwrap();
    assert_eq!(cb.body["payload"]["type"], "recovery.request.completed");
    assert_eq!(cb.body["payload"]["data"]["status"], "succeeded");
    let passes = app.passes().await;
    assert_eq!(passes.len(), 3);
    let written = serde_json::to_string(&items).unwrap();
    for pass in &passes {
        assert!(!written.contains(pass));
    }
}

#[tokio::test]
async fn a_refused_request_is_final_and_the_ticket_says_why() {
    let app = spawn_app_with(&WRITE_BACK).await;
    let body = json!({
        "sys_id": "0123456789abcdef0123456789abcdef", "number": "INC0030002",
        "u_affected_user": "isaiah.langer@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "email", "short_description": "lost phone",
        "u_verification_method": "video call", "u_verified_by": "agent@contoso.test",
        "u_verified_at": now_rfc3339(),
    });
    let (_, v) = app.submit(&body).await;
    let done = app.wait_final(v["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "refused");
    assert_eq!(done["resultStatus"], 403);
    assert_eq!(done["result"]["error"]["code"], "target_protected");
    let note = app.sim.itsm()[0].body["work_notes"].as_str().unwrap().to_owned();
    assert!(
        note.contains("Refused, nothing was changed") && note.contains("target_protected"),
        "{note}"
    );
    assert!(app.passes().await.is_empty());
}

#[tokio::test]
async fn a_failed_callback_never_records_its_url_which_may_hold_a_signature() {
    let requests = temp_dir("intake-callback-fail");
    let app = spawn_app_with(&[
        ("REQUESTS_DIR", requests.to_str().unwrap()),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
        ("CALLBACK_ALLOWED_HOSTS", "127.0.0.1"),
    ])
    .await;
    // Nothing listens there; the query holds a secret, as a Power Automate trigger URL does.
    let mut body = tap_request("alex.wilber@contoso.test", "INC0090001");
    body["callbackUrl"] = json!(format!("http://127.0.0.1:{}/hook?sig=S3CRET-SIG-4471", free_port()));
    let (_, v) = app.submit(&body).await;
    let id = v["requestId"].as_str().unwrap().to_owned();
    let record = requests.join(format!("{id}.json"));
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&record).unwrap_or_default();
        if text.contains("\"lastError\":\"callback could not be reached") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("callback could not be reached"), "{text}");
    let error = text.split("\"lastError\":").nth(1).unwrap();
    assert!(!error.contains("S3CRET-SIG-4471"), "{error}");
    let status = app.request_state(&id).await.to_string();
    assert!(
        !status.contains("S3CRET-SIG-4471") && !status.contains("callbackUrl"),
        "{status}"
    );
}
