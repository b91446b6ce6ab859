//! A second approver for privileged recoveries (`APPROVAL_REQUIRED_FOR`), end to end on the
//! simulated tenant: the request is held, the approvers are told, every approver who must not
//! decide is refused, one approval runs it and issues exactly one pass; a denial and an expiry
//! issue nothing.

use mfa_recovery_sim::seed::{GroupSeed, RoleAssignmentSeed};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The agent who asks (not in the tenant: a helpdesk account elsewhere).
pub(crate) const AGENT: &str = "a0000000-0000-4000-8000-00000000a9e1";
/// Allan is only *eligible* for Global Administrator: privileged, and not an approver.
pub(crate) const ALLAN: &str = "b0000015-0000-4000-8000-000000000015";
pub(crate) const ALLAN_UPN: &str = "allan.deyoung@contoso.test";
/// Isaiah holds Global Administrator, active.
pub(crate) const ISAIAH: &str = "b0000003-0000-4000-8000-000000000003";
/// Megan holds no role.
pub(crate) const MEGAN: &str = "b0000007-0000-4000-8000-000000000007";
const APPROVERS: &str = "a1b2c3d4-0099-4000-8000-000000000099";
const PAA: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";

pub(crate) async fn approval_app() -> TestApp {
    let app = spawn_app_with(&[
        ("APPROVAL_NOTIFY_GROUP", APPROVERS),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals?sig=secret-in-query"),
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    app.sim.tenant().groups.push(GroupSeed {
        id: APPROVERS.into(),
        display_name: "Recovery Approvers".into(),
        is_assignable_to_role: false,
        members: vec![ISAIAH.into(), MEGAN.into(), ALLAN.into()],
        owners: vec![],
    });
    app
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn tap_body() -> Value {
    json!({
        "delivery": {"channel": "email"},
        "ticket": {"system": "servicenow", "id": "INC0030001"},
        "reason": "lost phone",
        "verification": {"method": "video call with badge", "verifiedBy": "agent@contoso.test", "verifiedAt": now()},
    })
}

impl TestApp {
    pub(crate) fn person(&self, object_id: &str, roles: &[&str]) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            object_id: Some(object_id.to_owned()),
            name: Some(format!("person {object_id}")),
            // A person signed in: a delegated token (approvals are decided only by people).
            upn: Some(format!("person-{object_id}@contoso.test")),
            ..Default::default()
        })
    }

    pub(crate) async fn call(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn decide(&self, who: &str, id: &str, decision: &str, comment: &str) -> (StatusCode, Value) {
        let token = self.person(who, &["Recovery.Approve", "Recovery.Tap", "Recovery.Request"]);
        self.call(
            &token,
            &format!("/api/requests/{id}/{decision}"),
            &json!({"comment": comment}),
        )
        .await
    }

    /// Ask for a pass for Allan as the agent: held, `202` with the request.
    pub(crate) async fn held_pass(&self) -> String {
        let token = self.person(AGENT, &["Recovery.Tap", "Recovery.Approve"]);
        let (status, body) = self
            .call(&token, &format!("/api/users/{ALLAN_UPN}/tap"), &tap_body())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["status"], "pending_approval", "{body}");
        assert_eq!(body["approval"]["reasons"], json!(["privileged"]), "{body}");
        body["requestId"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_privileged_pass_waits_for_an_active_admin_and_then_is_issued_exactly_once() {
    let app = approval_app().await;
    let id = app.held_pass().await;
    // Nothing was changed, and no pass exists.
    assert!(
        app.graph_writes().iter().all(|w| w.contains("sendMail")),
        "{:?}",
        app.graph_writes()
    );
    assert!(app.passes().await.is_empty());
    // The approvers were emailed, not the target, and the webhooks were called (signed).
    let emails: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains("waits for your approval"))
        .collect();
    let to: Vec<String> = emails.iter().flat_map(|m| m.to.clone()).collect();
    assert!(to.contains(&"isaiah.langer@contoso.test".to_owned()), "{to:?}");
    assert!(to.contains(&"megan.bowen@contoso.test".to_owned()), "{to:?}");
    assert!(
        !to.iter().any(|t| t.starts_with("allan")),
        "the target is not asked: {to:?}"
    );
    assert!(emails[0].body.contains(&id) && emails[0].body.contains(ALLAN_UPN));
    let hooks = app.sim.itsm();
    let asked = hooks
        .iter()
        .find(|h| h.path.starts_with("/callbacks/approvals"))
        .expect("the approval webhook was called");
    assert_eq!(asked.body["payload"]["type"], "recovery.approval.requested");
    assert_eq!(asked.body["payload"]["data"]["requestId"], json!(id));
    let soc = |outcome: &str| {
        app.sim
            .itsm()
            .iter()
            .any(|h| h.path == "/callbacks/soc" && h.body["payload"]["data"]["outcome"] == outcome)
    };
    assert!(soc("held_for_approval"));

    // Whoever must not decide is refused, and nothing changes.
    let (status, body) = app.decide(AGENT, &id, "approve", "I asked for it").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_is_requester"))
    );
    let (status, body) = app.decide(ALLAN, &id, "approve", "it is me").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_is_target"))
    );
    let (status, body) = app.decide(MEGAN, &id, "approve", "looks fine").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_not_admin"))
    );
    // Eligible for Privileged Authentication Administrator is not enough: it must be active.
    app.sim.tenant().role_assignments.push(RoleAssignmentSeed {
        principal_id: MEGAN.into(),
        role_definition_id: PAA.into(),
        directory_scope_id: "/".into(),
        app_scope_id: None,
        assignment: "eligible".into(),
    });
    let (status, body) = app.decide(MEGAN, &id, "approve", "looks fine").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_not_admin"))
    );
    // A decision needs a comment, and the right role.
    let (status, body) = app.decide(ISAIAH, &id, "approve", "").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    let (status, _) = app
        .call(
            &app.person(ISAIAH, &["Recovery.Tap"]),
            &format!("/api/requests/{id}/approve"),
            &json!({"comment": "ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.passes().await.is_empty());
    assert_eq!(app.request_state(&id).await["status"], "pending_approval");

    // An active Global Administrator approves: the request runs and one pass goes out.
    let (status, body) = app
        .decide(ISAIAH, &id, "approve", "called Allan back on his desk phone")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["decision"]["approved"], true);
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["delivery"]["to"], "a***g@personal.example", "{done}");
    assert_eq!(app.passes().await.len(), 1);
    // A second approval changes nothing.
    let (status, body) = app.decide(ISAIAH, &id, "approve", "again").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("not_pending_approval"))
    );
    assert_eq!(app.passes().await.len(), 1);
    assert!(soc("approved"));

    // The pass went to Allan's address only: not to an approver's email, a webhook, the
    // request record or its status, the audit trail.
    let pass = app.passes().await.remove(0);
    let carried: Vec<_> = app
        .sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains(&pass))
        .collect();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].to, vec!["allan.deyoung@personal.example"]);
    let mut haystack = serde_json::to_string(&app.sim.itsm()).unwrap();
    haystack.push_str(&app.request_state(&id).await.to_string());
    haystack.push_str(
        &app.audit_of(Some("request.approval"))
            .await
            .iter()
            .map(Value::to_string)
            .collect::<String>(),
    );
    haystack.push_str(
        &app.audit_of(Some("tap.issue"))
            .await
            .iter()
            .map(Value::to_string)
            .collect::<String>(),
    );
    for entry in std::fs::read_dir(app.settings_value("REQUESTS_DIR")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystack.push_str(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
        }
    }
    assert!(!haystack.contains(&pass), "a pass leaked");

    // The trail: held, each refused approver, the approval, and the pass with who approved it.
    let approvals = app.audit_of(Some("request.approval")).await;
    let refused = approvals.iter().filter(|r| r["outcome"]["status"] == "refused").count();
    assert!(refused >= 4, "{approvals:?}");
    assert!(approvals.iter().any(|r| r["details"]["event"] == "requested"));
    assert!(approvals.iter().any(|r| r["details"]["event"] == "approve"
        && r["outcome"]["status"] == "succeeded"
        && r["caller"]["objectId"] == ISAIAH));
    let issued = app.audit_of(Some("tap.issue")).await;
    let outcome = issued
        .iter()
        .find(|r| r["phase"] == "outcome" && r["outcome"]["status"] == "succeeded")
        .expect("the pass's outcome");
    assert_eq!(outcome["details"]["approval"]["decision"]["byObjectId"], ISAIAH);
    assert_eq!(outcome["requestId"], json!(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_and_an_expired_one_issue_nothing() {
    let app = approval_app().await;
    let id = app.held_pass().await;
    // Denied from the command line, with the approver's own token.
    let token = app.person(ISAIAH, &["Recovery.Approve"]);
    let cli = |decision: &str, comment: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args([decision, &id, "--comment", comment, "--api", &app.base])
            .env("MFA_RECOVERY_TOKEN", &token)
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| cli("deny", "Allan is on leave; this call is suspicious"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"refused\""), "{stdout}");
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "refused");
    assert_eq!(done["result"]["error"]["code"], "approval_denied");
    assert!(
        done["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on leave")
    );
    let (status, body) = app.decide(ISAIAH, &id, "approve", "changed my mind").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::CONFLICT, &json!("not_pending_approval"))
    );
    let out = tokio::task::block_in_place(|| cli("approve", "changed my mind"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_pending_approval"));

    // Another request waits past its time: an approval is refused with 410, and the request ends.
    let second = app.held_pass_again().await;
    app.age_approval(&second);
    let (status, body) = app.decide(ISAIAH, &second, "approve", "late").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::GONE, &json!("approval_expired"))
    );
    let done = app.wait_final(&second).await;
    assert_eq!(done["result"]["error"]["code"], "approval_expired", "{done}");

    // A third expires unasked: its queue message comes back and closes it.
    let third = app.held_pass_again().await;
    app.age_approval(&third);
    let r = app
        .invoke(
            "recovery-worker",
            &host_queue_envelope("message", &format!("{{\"requestId\":\"{third}\"}}")),
            "inv-expiry-1",
        )
        .await;
    assert!(r.status().is_success());
    let done = app.wait_final(&third).await;
    assert_eq!(done["result"]["error"]["code"], "approval_expired", "{done}");

    assert!(app.passes().await.is_empty(), "no pass for a denied or expired request");
    assert!(
        app.graph_writes().iter().all(|w| w.contains("sendMail")),
        "{:?}",
        app.graph_writes()
    );
}

impl TestApp {
    /// Another held pass for Allan (a new ticket each time, so each is a new request).
    async fn held_pass_again(&self) -> String {
        self.held_pass().await
    }

    /// Move a held request's expiry into the past, as time would.
    fn age_approval(&self, id: &str) {
        let path = std::path::Path::new(&self.settings_value("REQUESTS_DIR")).join(format!("{id}.json"));
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record["approval"]["expiresAt"] = json!("2020-01-01T00:00:00Z");
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    }
}

#[tokio::test]
async fn without_approvers_a_privileged_target_is_refused_as_before_and_the_soc_is_told() {
    let app = spawn_app_with(&[
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    let token = app.person(AGENT, &["Recovery.Tap"]);
    let (status, body) = app
        .call(&token, &format!("/api/users/{ALLAN_UPN}/tap"), &tap_body())
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected"))
    );
    let alert = app
        .sim
        .itsm()
        .into_iter()
        .find(|h| h.path == "/callbacks/soc")
        .expect("the SOC was told");
    assert_eq!(alert.body["payload"]["type"], "recovery.privileged.attempt");
    assert_eq!(alert.body["payload"]["data"]["outcome"], "refused");
    assert_eq!(alert.body["payload"]["data"]["user"], ALLAN_UPN);
}

#[tokio::test]
async fn a_queued_request_for_a_privileged_user_waits_too_and_runs_once_approved() {
    let app = approval_app().await;
    let mut body = crate::intake::tap_request(ALLAN_UPN, "INC0030009");
    body["delivery"] = json!({"channel": "email"});
    let (status, accepted) = app.submit(&body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..100 {
        state = app.request_state(&id).await;
        if state["status"] == "pending_approval" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state["status"], "pending_approval", "{state}");
    assert_eq!(state["approveUrl"], format!("/api/requests/{id}/approve"));
    assert!(app.passes().await.is_empty());
    let (status, body) = app.decide(ISAIAH, &id, "approve", "verified in person").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(app.passes().await.len(), 1);
}

/// `GET /api/approvals` lists what waits for an approver, to approvers only; a decided request
/// leaves the list (the index is a convenience: every entry is read again).
#[tokio::test]
async fn approvers_see_what_waits_and_a_decided_request_leaves_the_list() {
    let app = approval_app().await;
    let list = |token: String| {
        let app = &app;
        async move {
            let r = app
                .client
                .get(format!("{}/api/approvals", app.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, empty) = list(app.person(ISAIAH, &["Recovery.Approve"])).await;
    assert_eq!(
        (status, empty["value"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let agent = app.person(AGENT, &["Recovery.Tap"]);
    let (status, held) = app
        .call(&agent, &format!("/api/users/{ALLAN_UPN}/tap"), &tap_body())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let id = held["requestId"].as_str().unwrap().to_owned();
    let (status, _) = list(agent.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an agent does not read the approvals");
    let (_, waiting) = list(app.person(ISAIAH, &["Recovery.Approve"])).await;
    let ids: Vec<&str> = waiting["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    assert_eq!(waiting["value"][0]["approval"]["reasons"], json!(["privileged"]));
    // What the approver checks with the requester: who asked, how, for how long, why.
    let asked = &waiting["value"][0]["approval"]["request"];
    assert_eq!(asked["requestedBy"]["objectId"], AGENT, "{asked}");
    assert_eq!(
        (&asked["channel"], &asked["reason"]),
        (&json!("email"), &json!("lost phone"))
    );
    // An agent sees Allan as protected, his methods by kind only (no device names or numbers).
    let s: Value = app
        .client
        .get(format!("{}/api/users/{ALLAN_UPN}", app.base))
        .bearer_auth(app.person(MEGAN, &["Recovery.Tap"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["protected"], true, "{s}");
    assert!(s["methods"].as_array().unwrap().iter().all(|m| m["label"] == ""), "{s}");
    assert_eq!(s["openRequests"][0]["requestId"], id.as_str(), "{s}");
    // The SOC hears of the look at a privileged account, with who looked.
    let mut told = false;
    for _ in 0..50 {
        told = app.sim.itsm().iter().any(|h| {
            h.path == "/callbacks/soc"
                && h.body["payload"]["type"] == "recovery.privileged.lookup"
                && h.body["payload"]["data"]["requester"]["objectId"] == MEGAN
        });
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(told, "the SOC was told of the look-up");
    let (status, _) = app.decide(ISAIAH, &id, "deny", "not confirmed").await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = list(app.person(ISAIAH, &["Recovery.Approve"])).await;
    assert_eq!(after["value"].as_array().map(Vec::len), Some(0), "{after}");
}

impl TestApp {
    /// An application's token (no person signed in): a Logic App, an ITSM integration.
    fn app_only(&self, roles: &[&str]) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            object_id: Some("a0000000-0000-4000-8000-0000000a0001".into()),
            name: Some("Some Logic App".into()),
            ..Default::default()
        })
    }

    /// A ServiceNow-shaped request for a pass for Allan (privileged: held), sent by the
    /// integration's app-only token, naming `agent` as the ticket's assignee.
    async fn ticket_for_allan(&self, number: &str, agent: &str) -> Value {
        let body = json!({
            "sys_id": format!("{:032x}", number.bytes().map(u128::from).sum::<u128>()), "number": number,
            "u_affected_user": ALLAN_UPN, "u_recovery_action": "tap",
            "u_delivery_channel": "email", "short_description": "lost phone",
            "u_verification_method": "callback to HR number", "u_verified_by": "agent@contoso.test",
            "u_verified_at": now(), "assigned_to": agent,
        });
        let (status, accepted) = self
            .call(&self.app_only(&["Recovery.Request"]), "/api/requests", &body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        let id = accepted["requestId"].as_str().unwrap().to_owned();
        for _ in 0..100 {
            let v = self.request_state(&id).await;
            if v["status"] == "pending_approval" {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("not held: {}", self.request_state(&id).await);
    }
}

#[tokio::test]
async fn only_people_decide_an_app_only_token_is_refused_before_anything_is_read() {
    let app = approval_app().await;
    let id = app.held_pass().await;
    let reads = app.sim.requests().len();
    let (status, body) = app
        .call(
            &app.app_only(&["Recovery.Approve"]),
            &format!("/api/requests/{id}/approve"),
            &json!({"comment": "approved by a flow"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_must_be_user")),
        "{body}"
    );
    assert_eq!(app.sim.requests().len(), reads, "Graph was not read");
    // Not even an unknown request is looked up for it.
    let (status, body) = app
        .call(
            &app.app_only(&["Recovery.Approve"]),
            &format!("/api/requests/{}/deny", uuid::Uuid::new_v4()),
            &json!({"comment": "no"}),
        )
        .await;
    assert_eq!(body["error"]["code"], "approver_must_be_user", "{status} {body}");
    assert_eq!(app.request_state(&id).await["status"], "pending_approval");
    assert!(app.passes().await.is_empty());
}

#[tokio::test]
async fn the_agent_a_ticket_names_cannot_approve_their_own_request() {
    let app = approval_app().await;
    // Isaiah is an active Global Administrator and an approver; the ticket says he asked.
    let held = app.ticket_for_allan("INC0040001", "isaiah.langer@contoso.test").await;
    let by = &held["approval"]["request"]["requestedBy"];
    assert_eq!(by["known"], true, "{held}");
    assert_eq!(by["person"]["objectId"], ISAIAH, "{held}");
    assert_eq!(by["given"], "isaiah.langer@contoso.test");
    let id = held["requestId"].as_str().unwrap();
    let (status, body) = app.decide(ISAIAH, id, "approve", "looks fine").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("approver_is_requester")),
        "{body}"
    );
    assert!(app.passes().await.is_empty());
    assert_eq!(app.request_state(id).await["status"], "pending_approval");
}

#[tokio::test]
async fn a_request_whose_agent_is_unknown_is_approved_by_another_person_and_says_so() {
    let app = approval_app().await;
    let held = app.ticket_for_allan("INC0040002", "nobody@fabrikam.example").await;
    let by = &held["approval"]["request"]["requestedBy"];
    assert_eq!(by["known"], false, "{held}");
    assert_eq!(by["given"], "nobody@fabrikam.example");
    assert!(by["note"].as_str().unwrap().contains("requester unknown"), "{held}");
    let id = held["requestId"].as_str().unwrap();
    // The approver is told, in the answer to the decision too.
    let (status, body) = app.decide(ISAIAH, id, "approve", "called the assignee's manager").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approval"]["request"]["requestedBy"]["known"], false, "{body}");
    let done = app.wait_final(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(app.passes().await.len(), 1);
    // The trail keeps the requester as unknown: no person on the request.
    let records = app.audit_of(Some("request.approval")).await;
    // The decision's own record (its event is `approve`); the request's `requested` record sits
    // beside it, and which of the two the trail lists last is not fixed (the flake it was).
    let decided = records
        .iter()
        .find(|r| r["details"]["event"] == "approve")
        .unwrap_or_else(|| panic!("the decision is in the trail: {records:?}"));
    assert!(decided["caller"]["objectId"] == ISAIAH, "{decided}");
    let state = app.request_state(id).await;
    assert_eq!(state["approval"]["request"]["requestedBy"]["known"], false, "{state}");
}

#[tokio::test]
async fn a_disabled_account_named_as_the_requester_is_nobody() {
    let app = approval_app().await;
    // Diego's account is disabled: a ticket naming him does not make a known requester.
    let held = app.ticket_for_allan("INC0040004", "diego.siciliani@contoso.test").await;
    assert_eq!(held["approval"]["request"]["requestedBy"]["known"], false, "{held}");
}

#[tokio::test]
async fn the_agent_a_ticket_names_counts_as_the_caller_for_the_manager_channel() {
    let app = approval_app().await;
    // A ticket for Adele's pass to her manager, naming that manager (Megan) as the asking agent.
    let body = json!({
        "sys_id": "0123456789abcdef0123456789abc001", "number": "INC0040003",
        "u_affected_user": "adele.vance@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "manager", "short_description": "lost phone",
        "u_verification_method": "callback to HR number", "u_verified_by": "agent@contoso.test",
        "u_verified_at": now(), "assigned_to": "megan.bowen@contoso.test",
    });
    let (status, accepted) = app
        .call(&app.app_only(&["Recovery.Request"]), "/api/requests", &body)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["result"]["error"]["code"], "caller_is_manager", "{done}");
    assert!(app.passes().await.is_empty());
}

#[tokio::test]
async fn the_approver_sees_the_plan_of_a_held_pass_and_of_a_held_reset() {
    let app = approval_app().await;
    // A held pass (privileged).
    let id = app.held_pass().await;
    let v = app.request_state(&id).await;
    let a = &v["approval"];
    assert_eq!(a["target"], ALLAN_UPN, "{v}");
    assert_eq!(a["reasons"], json!(["privileged"]));
    assert_eq!(a["plan"]["pass"]["channel"], "email", "{v}");
    assert_eq!(a["plan"]["pass"]["to"], "a***g@personal.example", "{v}");
    assert_eq!(a["plan"]["pass"]["lifetimeMinutes"], 60, "{v}");
    assert_eq!(a["verification"]["method"], "video call with badge", "{v}");
    assert!(a["verification"]["verifiedAt"].is_string(), "{v}");
    let r = &a["request"];
    assert_eq!(r["action"], "tap");
    assert_eq!(r["ticket"], json!({"system": "servicenow", "id": "INC0030001"}));
    assert_eq!(r["reason"], "lost phone");
    assert_eq!(r["requestedBy"]["known"], true, "{v}");
    assert_eq!(r["requestedBy"]["person"]["objectId"], AGENT);

    // A privileged user's reset: method kinds only, no device names or ids, in what approvers get.
    let token = app.person(AGENT, &["Recovery.Reset", "Recovery.Tap"]);
    let (status, held) = app
        .call(
            &token,
            &format!("/api/users/{ALLAN_UPN}/mfa/reset"),
            &json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}},
                "ticket": {"system": "jira", "id": "HELP-502"}, "reason": "lost phone",
                "verification": {"method": "video call", "verifiedBy": "agent@contoso.test", "verifiedAt": now()}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    for m in held["approval"]["plan"]["reset"]["removed"].as_array().unwrap() {
        assert_eq!(m["label"], "", "{held}");
        assert!(m.get("id").is_none(), "{held}");
    }

    // A held reset with its pass (reset_all, by a person): scope, removed, remaining, the pass.
    let reset_app = spawn_app_with(&[
        ("APPROVAL_REQUIRED_FOR", "reset_all"),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    let token = reset_app.person(AGENT, &["Recovery.Reset", "Recovery.Tap"]);
    let (status, held) = reset_app
        .call(
            &token,
            "/api/users/adele.vance@contoso.test/mfa/reset",
            &json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}, "lifetimeMinutes": 120},
                "ticket": {"system": "jira", "id": "HELP-501"}, "reason": "lost phone",
                "verification": {"method": "video call", "verifiedBy": "agent@contoso.test", "verifiedAt": now()}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let a = &held["approval"];
    assert_eq!(a["reasons"], json!(["reset_all"]), "{held}");
    assert_eq!(a["plan"]["reset"]["scope"], "portal", "{held}");
    let removed: Vec<&str> = a["plan"]["reset"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec!["phone", "phone", "microsoftAuthenticator"], "{held}");
    assert_eq!(a["plan"]["reset"]["remaining"][0]["type"], "email", "{held}");
    assert_eq!(a["plan"]["pass"]["to"], "a***e@personal.example", "{held}");
    assert_eq!(a["plan"]["pass"]["lifetimeMinutes"], 120, "{held}");
    assert_eq!(a["request"]["scope"], "portal");
    assert_eq!(a["request"]["ticket"]["id"], "HELP-501");
    // The approvers' webhook carries the same view; nothing in it is a secret.
    let hook = reset_app
        .sim
        .itsm()
        .into_iter()
        .find(|h| h.path.starts_with("/callbacks/approvals"))
        .unwrap();
    assert_eq!(
        hook.body["payload"]["data"]["approval"]["plan"],
        held["approval"]["plan"]
    );
    assert!(reset_app.passes().await.is_empty());
}

/// What an approval costs in Graph with Graph far away (every answer 150 ms): the approver's
/// decision (who they are, that they hold an active admin role), then the held pass run by the
/// worker on its own scoped client. Exact, as `tests/api/cost.rs` holds the other operations.
#[tokio::test]
async fn an_approval_costs_a_few_round_trips_and_its_pass_runs_as_any_pass() {
    let app = approval_app().await;
    let id = app.held_pass().await;
    app.sim.set_graph_latency(150);
    app.sim.clear_requests();
    let (status, body) = app.decide(ISAIAH, &id, "approve", "called Allan back").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let decided = app.sim.graph_cost();
    let done = app.wait_final(&id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    crate::cost::settled(&app).await;
    let (notices, rest): (Vec<_>, Vec<_>) = app.sim.requests().into_iter().partition(crate::cost::is_notice);
    let all = mfa_recovery_sim::cost::graph_cost(&rest);
    // The decision: the approver's memberships (an active admin role), one read.
    assert_eq!((decided.calls, decided.round_trips), (1, 1), "{decided:?}");
    // The held pass, run by the worker: the user, one batch of 11 reads, the role's name for the
    // audit record (Allan is privileged), the pass, its delivery (email through Graph's sendMail).
    // (This API's owners and the groups holding its roles were read, at most 60 s ago, with the
    // held request.) Its two notices go through the outbox once the request is done.
    assert_eq!((all.calls, all.round_trips), (15, 6), "{all:?}");
    assert_eq!(notices.len(), 2);
}

/// An upgrade from a version that kept every open request's id in one `requests-open.json`: the
/// first read of the list gives each id its own entry and empties the document, so a request held
/// before the upgrade still waits in the Approvals tab.
#[tokio::test]
async fn requests_held_before_the_upgrade_still_wait_in_the_approvals_list() {
    let app = approval_app().await;
    let id = app.held_pass().await;
    let dir = std::path::Path::new(&app.settings_value("REQUESTS_DIR")).to_owned();
    assert!(
        dir.join("open").join(&id).exists(),
        "the held request has its own entry"
    );
    // As the earlier version left it: no entry, the id in the shared document.
    std::fs::remove_file(dir.join("open").join(&id)).unwrap();
    std::fs::write(dir.join("requests-open.json"), json!([id]).to_string()).unwrap();
    let r = app
        .client
        .get(format!("{}/api/approvals", app.base))
        .bearer_auth(app.person(ISAIAH, &["Recovery.Approve"]))
        .send()
        .await
        .unwrap();
    let waiting: Value = r.json().await.unwrap();
    assert_eq!(waiting["value"][0]["requestId"], id.as_str(), "{waiting}");
    assert!(dir.join("open").join(&id).exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("requests-open.json")).unwrap(),
        "[]",
        "the shared document holds nothing any more"
    );
}
