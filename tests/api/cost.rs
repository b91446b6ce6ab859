//! What each operation costs in Microsoft Graph, with Graph far away (every simulated answer
//! delayed): the calls (each `$batch` part counted, as Graph throttles each) and the round trips
//! one after another on the critical path, in tenants of different sizes. The numbers are exact:
//! a change that adds a call or a round trip fails here, and says which.
//!
//! The sizes (`POST /sim/scale`): role-assignable groups (0, 50, 500; each owned by somebody else),
//! ordinary groups the user is in (30), holders of this API's app roles (5,000).

use mfa_recovery_sim::cost::Scale;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Each Graph answer waits this long: well above the simulator's own work, so requests sent
/// together overlap and requests sent one after another do not.
const FAR_MS: u64 = 150;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn typed() -> Value {
    json!({"method": "manager callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now()})
}

async fn post(app: &TestApp, path: &str, roles: &[&str], body: &Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(app.token(roles))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One operation as a caller makes it.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A pass by text message (typed verification).
    Tap,
    /// A reset of the lost methods with a pass by email.
    ResetWithPass,
    /// A verification code sent by email.
    Verification,
    /// The console's look-up of a user.
    LookUp,
}

async fn run(app: &TestApp, op: Op, user: &str) -> (StatusCode, Value) {
    match op {
        Op::Tap => {
            let body = json!({"delivery": {"channel": "sms"}, "ticket": {"system": "jira", "id": "HELP-1"},
                "reason": "lost phone", "verification": typed()});
            post(app, &format!("/api/users/{user}/tap"), &["Recovery.Tap"], &body).await
        }
        Op::ResetWithPass => {
            let body = json!({"ticket": {"system": "jira", "id": "HELP-2"}, "reason": "lost phone",
                "verification": typed(), "tap": {"delivery": {"channel": "email"}}});
            post(
                app,
                &format!("/api/users/{user}/mfa/reset"),
                &["Recovery.Reset", "Recovery.Tap"],
                &body,
            )
            .await
        }
        Op::Verification => {
            let body = json!({"channel": "email"});
            post(
                app,
                &format!("/api/users/{user}/verifications"),
                &["Recovery.Tap"],
                &body,
            )
            .await
        }
        Op::LookUp => {
            let r = app
                .client
                .get(format!("{}/api/users/{user}", app.base))
                .bearer_auth(app.token(&["Recovery.Tap"]))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json().await.unwrap_or(Value::Null))
        }
    }
}

/// What the caller waited for (the calls and round trips answered before the answer came), and
/// the calls made after it (the outbox's notices, each `sendMail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    calls: usize,
    round_trips: usize,
    after: usize,
}

/// A notice's `sendMail` (the outbox's), not the pass's or a code's.
pub(crate) fn is_notice(r: &mfa_recovery_sim::RequestRecord) -> bool {
    r.path.ends_with("/sendMail")
        && r.body.as_ref().is_some_and(|b| {
            [
                "A Temporary Access Pass was issued for your account",
                "Your sign-in methods were reset",
                "A recovery waits for your approval",
            ]
            .contains(&b["message"]["subject"].as_str().unwrap_or_default())
        })
}

/// Wait until Graph has been quiet for a few of its round trips: the outbox has sent what it had.
pub(crate) async fn settled(app: &TestApp) {
    let mut seen = usize::MAX;
    loop {
        let now = app.sim.requests().len();
        if now == seen {
            return;
        }
        seen = now;
        tokio::time::sleep(std::time::Duration::from_millis(4 * FAR_MS)).await;
    }
}

/// The cost of `op` on `user` in a tenant grown by `scale`, after one operation of the same kind
/// on another user (a warm process: this API's own objects found, its owners and app-role groups
/// and the TAP policy read, within 60 s). Every
/// Graph answer is `FAR_MS` away, so a call made after the answer (a notice) cannot have been
/// answered before it.
async fn cost(op: Op, user: &str, scale: Scale) -> Cost {
    let app = spawn_app().await;
    app.sim.scale(&scale).unwrap();
    let (status, body) = run(&app, op, "adele.vance@contoso.test").await;
    assert!(status.is_success(), "warm-up {op:?}: {status} {body}");
    settled(&app).await;
    app.sim.set_graph_latency(FAR_MS);
    app.sim.clear_requests();
    let (status, body) = run(&app, op, user).await;
    let answered = app.sim.clock_us();
    assert!(status.is_success(), "{op:?}: {status} {body}");
    let waited = app.sim.graph_cost_until(answered);
    settled(&app).await;
    let requests = app.sim.requests();
    // What came after the answer is the outbox's notices and nothing else.
    let after: Vec<_> = requests
        .iter()
        .filter(|r| r.ended_us > answered && !r.in_batch)
        .collect();
    assert!(
        after.iter().all(|r| is_notice(r)),
        "{op:?}: after the answer: {after:#?}"
    );
    assert_eq!(
        requests.iter().filter(|r| is_notice(r)).count(),
        after.len(),
        "{op:?}: a notice before the answer"
    );
    Cost {
        calls: waited.calls,
        round_trips: waited.round_trips,
        after: after.len(),
    }
}

fn sizes() -> Vec<(&'static str, Scale)> {
    vec![
        ("the demo tenant", Scale::default()),
        (
            "50 role-assignable groups",
            Scale {
                role_assignable_groups: 50,
                ..Scale::default()
            },
        ),
        (
            "500 role-assignable groups",
            Scale {
                role_assignable_groups: 500,
                ..Scale::default()
            },
        ),
        (
            "the user in 30 more groups",
            Scale {
                groups_of: Some(("lee.gu@contoso.test".into(), 30)),
                ..Scale::default()
            },
        ),
        (
            "5,000 holders of this API's roles",
            Scale {
                api_role_holders: 5000,
                ..Scale::default()
            },
        ),
    ]
}

/// Each operation in each tenant: (calls, round trips) before the answer, as measured, and the
/// calls after it (`after`, the same in every tenant).
async fn holds(op: Op, expected: [(usize, usize); 5], after: usize) {
    let mut seen = Vec::new();
    for ((name, scale), want) in sizes().into_iter().zip(expected) {
        let c = cost(op, "lee.gu@contoso.test", scale).await;
        seen.push((name, c, want));
    }
    let wrong: Vec<_> = seen
        .iter()
        .filter(|(_, c, w)| (c.calls, c.round_trips) != *w || c.after != after)
        .collect();
    assert!(
        wrong.is_empty(),
        "{op:?}: (tenant, cost, expected (calls, round trips) and {after} after): {seen:#?}"
    );
}

// A pass by SMS: the user (1); one $batch of every read that waits only on the user (10:
// memberships, risk, phone methods, audit log, PIM for Groups, app roles, active and eligible
// roles, the owners of every role-assignable group, and the owners of the groups holding this
// API's app roles, the demo's "Helpdesk Agents", 15 groups to a read); the pass (1): 12 calls, 3
// round trips. Who owns this API and which groups hold its roles are facts about the API, kept
// up to 60 s like the TAP policy (read by the warm-up). The caller is an application, whose
// token's object id is its service principal's, never a user's: it has no addresses to read.
// The three notices go through the outbox after the answer (3 `sendMail` after). The owners of
// role-assignable groups come 100 groups to a page (the docs are silent on an expanded list's
// page size; the simulator gives what Graph is reported to): 500 groups take 5 more pages, one
// after another.
#[tokio::test]
async fn a_pass_costs_the_same_in_any_tenant_but_one_with_hundreds_of_role_assignable_groups() {
    holds(Op::Tap, [(12, 3), (12, 3), (17, 8), (12, 3), (12, 3)], 3).await;
}

// A code by email: the user; the batch (the pass's 10 reads but the phone methods: 9); the
// code's mail.
#[tokio::test]
async fn a_verification_code_costs_three_round_trips() {
    holds(Op::Verification, [(11, 3), (11, 3), (16, 8), (11, 3), (11, 3)], 0).await;
}

// The console's look-up: the user; one batch with everything the summary shows (its methods
// alone beside it, from beta).
#[tokio::test]
async fn a_look_up_costs_two_round_trips() {
    holds(Op::LookUp, [(12, 2), (12, 2), (17, 7), (12, 2), (12, 2)], 0).await;
}

// A reset with a pass: the user; the reads as a pass's, with its methods and its default method
// beside them (a beta batch of 2); then at once: the removals as one chain (a beta batch whose
// writes each wait for the one before, `dependsOn`: the default moved off the phone, then the
// phone, then the authenticator: 3), the sessions revoked, the pass created; then at once: the
// methods read again and the pass delivered by email. 19 calls, 4 round trips. The pass's
// notices and the reset's go through the outbox after the answer (5).
#[tokio::test]
async fn a_reset_reads_together_and_writes_in_order() {
    holds(Op::ResetWithPass, [(19, 4), (19, 4), (24, 9), (19, 4), (19, 4)], 5).await;
}

pub(crate) async fn fault(app: &TestApp, fault: Value) {
    let r = app
        .client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

fn graph_writes(app: &TestApp) -> Vec<String> {
    app.sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1.0/") && r.method != "GET" && !r.path.ends_with("/$batch"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// A part of a `$batch` that fails is the read failing: the privilege check cannot tell, so
/// nothing is written; the part that failed was inside a batch.
#[tokio::test]
async fn a_part_of_a_batch_that_fails_refuses_the_pass() {
    for (route, code) in [
        ("/v1.0/users/*/appRoleAssignments", "privilege_check_unavailable"),
        ("/v1.0/groups", "privilege_check_unavailable"),
        ("/v1.0/auditLogs/directoryAudits", "address_check_unavailable"),
    ] {
        let app = spawn_app().await;
        fault(&app, json!({"route": route, "status": 500, "count": 100})).await;
        let (status, body) = run(&app, Op::Tap, "lee.gu@contoso.test").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some(code)),
            "{route}: {body}"
        );
        assert!(
            app.sim
                .requests()
                .iter()
                .any(|r| r.in_batch && r.status == 500 && mfa_recovery_sim::faults_glob(route, &r.path)),
            "{route}: the failing read was a part of a $batch"
        );
        assert_eq!(graph_writes(&app), Vec::<String>::new(), "{route}");
        assert!(app.outbox().await.is_empty(), "{route}");
    }
}

/// A throttled part is sent again on its own (after its wait) and the pass goes out; a `$batch`
/// refused as a whole has its reads sent one by one. One pass each time.
#[tokio::test]
async fn a_throttled_part_or_a_refused_batch_is_read_again_alone() {
    let app = spawn_app().await;
    let eligibility = "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances";
    fault(
        &app,
        json!({"route": eligibility, "status": 429, "retryAfter": 1, "count": 1}),
    )
    .await;
    let (status, body) = run(&app, Op::Tap, "lee.gu@contoso.test").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reads: Vec<(bool, u16)> = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == eligibility)
        .map(|r| (r.in_batch, r.status))
        .collect();
    assert_eq!(reads, vec![(true, 429), (false, 200)]);

    let app = spawn_app().await;
    fault(&app, json!({"route": "/v1.0/$batch", "status": 503, "count": 100})).await;
    let (status, body) = run(&app, Op::Tap, "lee.gu@contoso.test").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(app.sim.requests().iter().all(|r| !r.in_batch));
    assert!(
        app.sim
            .requests()
            .iter()
            .any(|r| r.path == eligibility && r.status == 200)
    );
    let passes = app
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods"))
        .count();
    assert_eq!(passes, 1);
}
