//! The guardrails an attacker tries first (issue "Guardrails that hold against a real attacker"):
//! every admin refused however the role is held, a forbidden read refusing instead of passing,
//! limits that cannot be raced (locally and on Azurite, across two instances), a reset that never
//! strands a user, separation of duties, and the smaller holes (caller text in the pass message,
//! Twilio-only SMS, nobody notified, notices through ACS, a nextLink to another host).

use std::collections::HashSet;
use std::sync::Arc;

use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery_sim::seed::{GroupSeed, RoleAssignmentSeed};
use mfa_recovery_sim::{Seed, Simulator, TokenRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::azurite::Azurite;
use crate::helpers::*;

const TAP: &[&str] = &["Recovery.Tap"];
const RESET_AND_TAP: &[&str] = &["Recovery.Reset", "Recovery.Tap"];
const ALEX: &str = "b0000002-0000-4000-8000-000000000002";
const ADELE: &str = "b0000001-0000-4000-8000-000000000001";
const LEE: &str = "b0000011-0000-4000-8000-000000000011";
const MEGAN: &str = "b0000007-0000-4000-8000-000000000007";
/// Grady keeps methods a portal reset does not touch (FIDO2, Hello, ...): a reset leaves him some.
const GRADY: &str = "b0000009-0000-4000-8000-000000000009";

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn tap_body(channel: &str) -> Value {
    json!({
        "delivery": {"channel": channel},
        "ticket": {"system": "servicenow", "id": "INC0010001"},
        "reason": "lost phone",
        "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now()},
    })
}

fn reset_body(extra: Value) -> Value {
    let mut b = json!({
        "ticket": {"system": "jira", "id": "HELP-42"},
        "reason": "lost phone",
        "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now()},
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (StatusCode, Value, Option<String>) {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry_after)
}

async fn tap(app: &TestApp, user: &str, body: &Value) -> (StatusCode, Value) {
    let (s, v, _) = post(app, &format!("/api/users/{user}/tap"), &app.token(TAP), body).await;
    (s, v)
}

async fn reset(app: &TestApp, user: &str, body: &Value) -> (StatusCode, Value) {
    let (s, v, _) = post(
        app,
        &format!("/api/users/{user}/mfa/reset"),
        &app.token(RESET_AND_TAP),
        body,
    )
    .await;
    (s, v)
}

/// Every call that changed something in Graph (anything but a read).
fn graph_writes(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/"))
        // A `$batch` carries reads; a write inside one is recorded on its own.
        .filter(|r| r.method != "GET" && !r.path.ends_with("/$batch"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

async fn audit(app: &TestApp, action: &str) -> Vec<Value> {
    let v: Value = app
        .client
        .get(format!("{}/api/audit?action={action}&pageSize=1000", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"].as_array().unwrap().clone()
}

/// The outcome record of the refusal for `upn`.
fn refusal_of<'a>(records: &'a [Value], upn: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["phase"] == "outcome" && r["target"]["upn"] == upn)
        .unwrap_or_else(|| panic!("no outcome record for {upn}"))
}

#[tokio::test]
async fn every_privileged_target_is_refused_however_the_privilege_is_held_and_nothing_is_written() {
    let app = spawn_app_with(&[("TAP_PROTECTED_GROUPS", "a1b2c3d4-0004-4000-8000-000000000004")]).await;
    // (user, kind, assignment, scope or via the audit record names)
    let cases = [
        ("isaiah.langer@contoso.test", "directoryRole", "active", json!("/")),
        ("allan.deyoung@contoso.test", "directoryRole", "eligible", json!("/")),
        (
            "christie.cline@contoso.test",
            "directoryRole",
            "active",
            json!("/administrativeUnits/f0000001-0000-4000-8000-0000000000e1"),
        ),
        ("enrico.cattaneo@contoso.test", "directoryRole", "active", json!("/")),
        ("patti.fernandez@contoso.test", "directoryRole", "active", json!("/")),
        (
            "henrietta.mueller@contoso.test",
            "directoryRole",
            "eligible",
            json!("/"),
        ),
        ("debra.berger@contoso.test", "appRole", "active", Value::Null),
        ("johanna.lorenz@contoso.test", "protectedGroup", "active", Value::Null),
        ("joni.sherman@contoso.test", "groupOwner", "active", Value::Null),
    ];
    for (upn, ..) in &cases {
        let (status, body) = tap(&app, upn, &tap_body("sms")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "tap {upn}: {body}");
        assert_eq!(body["error"]["code"], "target_protected", "tap {upn}");
        let (status, body) = reset(&app, upn, &reset_body(json!({"scope": "all", "allowEmpty": true}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "reset {upn}: {body}");
        assert_eq!(body["error"]["code"], "target_protected", "reset {upn}");
        // The caller learns nothing about which privilege it was.
        let text = body.to_string();
        for detail in [
            "privilege",
            "administrativeUnits",
            "Administrator\"",
            "Operator",
            "pimGroup",
        ] {
            assert!(!text.contains(detail), "{detail} in {body}");
        }
    }
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
    assert!(app.outbox().await.is_empty(), "nothing was sent");
    // The audit trail says which privilege was found, for each action.
    for action in ["tap.issue", "mfa.reset"] {
        let records = audit(&app, action).await;
        for (upn, kind, assignment, scope) in &cases {
            let r = refusal_of(&records, upn);
            assert_eq!(r["outcome"]["code"], "target_protected", "{action} {upn}");
            let p = &r["details"]["privilege"];
            assert_eq!(p["kind"], *kind, "{action} {upn}: {p}");
            assert_eq!(p["assignment"], *assignment, "{action} {upn}: {p}");
            if !scope.is_null() {
                assert_eq!(p["scope"], *scope, "{action} {upn}: {p}");
            }
        }
    }
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "enrico.cattaneo@contoso.test")["details"]["privilege"];
    assert_eq!(p["name"], "Tier 1 Support Operator", "a custom role is named: {p}");
    let p = &refusal_of(&records, "henrietta.mueller@contoso.test")["details"]["privilege"];
    assert_eq!(p["via"], "pimGroup:a1b2c3d4-0005-4000-8000-000000000005", "{p}");
    let p = &refusal_of(&records, "patti.fernandez@contoso.test")["details"]["privilege"];
    assert_eq!(p["name"], "Helpdesk Administrator", "{p}");
}

#[tokio::test]
async fn roles_and_app_roles_held_through_groups_are_found_too() {
    let app = spawn_app().await;
    {
        let mut tenant = app.sim.tenant();
        // Lee is eligible for Security Administrator through a role-assignable group...
        tenant.groups.push(GroupSeed {
            id: "a1b2c3d4-0009-4000-8000-000000000009".into(),
            display_name: "Security Operators".into(),
            is_assignable_to_role: true,
            members: vec![LEE.into()],
            owners: vec![],
        });
        tenant.role_assignments.push(RoleAssignmentSeed {
            principal_id: "a1b2c3d4-0009-4000-8000-000000000009".into(),
            role_definition_id: "194ae4cb-b126-40b2-bd5b-6091b380977d".into(),
            directory_scope_id: "/".into(),
            app_scope_id: None,
            assignment: "eligible".into(),
        });
    }
    let (status, body) = tap(&app, "lee.gu@contoso.test", &tap_body("sms")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected"))
    );
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "lee.gu@contoso.test")["details"]["privilege"];
    assert_eq!(p["assignment"], "eligible", "{p}");
    assert_eq!(p["via"], "group:a1b2c3d4-0009-4000-8000-000000000009", "{p}");

    // ... and Alex is in the group that holds this API's Recovery.Request role.
    app.sim
        .tenant()
        .groups
        .iter_mut()
        .find(|g| g.display_name == "Helpdesk Agents")
        .unwrap()
        .members
        .push(ALEX.into());
    let (status, body) = tap(&app, ALEX, &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected"))
    );
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "alex.wilber@contoso.test")["details"]["privilege"];
    assert_eq!(p["kind"], "appRole", "{p}");
    assert_eq!(p["via"], "group:a1b2c3d4-0006-4000-8000-000000000006", "{p}");

    // ... and Lynne owns this API's registration: she could grant herself its roles. Who owns
    // this API is a fact about the API, kept up to 60 s (docs/security.md): a new process.
    let app = spawn_app().await;
    app.sim
        .tenant()
        .api_owners
        .push("b0000004-0000-4000-8000-000000000004".into());
    let (status, body) = tap(&app, "lynne.robbins@contoso.test", &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected"))
    );
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "lynne.robbins@contoso.test")["details"]["privilege"];
    assert_eq!(p["kind"], "apiOwner", "{p}");
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
}

/// An owner of an ordinary group (not role-assignable, not protected) that holds one of this
/// API's app roles can add themselves to it and become a helpdesk agent: privileged. Only its
/// owners are read for each recovery; which groups hold the API's roles is a fact about the API,
/// kept up to 60 s.
#[tokio::test]
async fn the_owner_of_a_group_holding_this_apis_role_is_refused() {
    let app = spawn_app().await;
    app.sim
        .tenant()
        .groups
        .iter_mut()
        .find(|g| g.display_name == "Helpdesk Agents")
        .unwrap()
        .owners
        .push(ALEX.into());
    let (status, body) = tap(&app, ALEX, &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected")),
        "{body}"
    );
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "alex.wilber@contoso.test")["details"]["privilege"];
    assert_eq!(p["kind"], "groupOwner", "{p}");
    assert_eq!(p["id"], "a1b2c3d4-0006-4000-8000-000000000006", "{p}");
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
    // Its owners are read with the protected groups', 15 to a read.
    assert!(
        app.sim
            .requests()
            .iter()
            .any(|r| r.path == "/v1.0/groups" && r.query.as_deref().is_some_and(|q| q.contains("a1b2c3d4-0006")))
    );
    // A group holding a role that Graph cannot find (not yet replicated, or gone) refuses.
    let app = spawn_app().await;
    app.sim.tenant().groups.retain(|g| g.display_name != "Helpdesk Agents");
    let (status, body) = tap(&app, ALEX, &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("privilege_check_unavailable")),
        "{body}"
    );
}

/// The groups whose owners are read by id (the protected groups, the groups holding this API's
/// roles) go 15 to a read (Graph's limit on `in`): 20 protected groups are two reads, side by side,
/// and an owner of the seventeenth is found.
#[tokio::test]
async fn the_owners_of_many_named_groups_are_read_fifteen_to_a_read() {
    let ids: Vec<String> = (1..=20).map(|i| format!("c0000000-0000-4000-8000-{i:012}")).collect();
    let app = spawn_app_with(&[("TAP_PROTECTED_GROUPS", &ids.join(","))]).await;
    {
        let mut tenant = app.sim.tenant();
        for (i, id) in ids.iter().enumerate() {
            tenant.groups.push(GroupSeed {
                id: id.clone(),
                display_name: format!("Protected {i}"),
                is_assignable_to_role: false,
                members: vec![],
                owners: if i == 16 { vec![ALEX.into()] } else { vec![] },
            });
        }
    }
    let (status, body) = tap(&app, ALEX, &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("target_protected")),
        "{body}"
    );
    let records = audit(&app, "tap.issue").await;
    let p = &refusal_of(&records, "alex.wilber@contoso.test")["details"]["privilege"];
    assert_eq!((&p["kind"], &p["id"]), (&json!("groupOwner"), &json!(ids[16])), "{p}");
    let reads: Vec<String> = app
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1.0/groups" && r.status == 200)
        .filter_map(|r| r.query)
        .filter(|q| q.contains("+in+") || q.contains("%20in%20"))
        .collect();
    assert_eq!(reads.len(), 2, "{reads:#?}");
}

#[tokio::test]
async fn a_read_the_check_needs_that_is_forbidden_or_failing_refuses_and_names_the_permission() {
    for permission in [
        "RoleManagement.Read.Directory",
        "PrivilegedEligibilitySchedule.Read.AzureADGroup",
        "Application.Read.All",
    ] {
        let app = spawn_app().await;
        // Before the app's first token: the identity was never granted this permission (nor
        // Directory.Read.All, which Graph also accepts for reading service principals).
        app.sim
            .tenant()
            .graph_permissions
            .retain(|p| p != permission && (permission != "Application.Read.All" || p != "Directory.Read.All"));
        let (status, body) = tap(&app, "alex.wilber@contoso.test", &tap_body("email")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{permission}: {body}");
        assert_eq!(body["error"]["code"], "permission_missing", "{permission}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(permission),
            "{permission}: {body}"
        );
        let (status, body) = reset(&app, ALEX, &reset_body(json!({"allowEmpty": true}))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{permission}: {body}");
        assert_eq!(body["error"]["code"], "permission_missing", "{permission}");
        assert_eq!(graph_writes(&app.sim), Vec::<String>::new(), "{permission}");
    }
    // A read that keeps failing (past the retry budget) is "cannot tell", never "not privileged".
    let app = spawn_app().await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances", "status": 500, "count": 100}))
        .send()
        .await
        .unwrap();
    let (status, body) = tap(&app, "alex.wilber@contoso.test", &tap_body("email")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "privilege_check_unavailable");
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
}

/// Fire `n` copies of a request at once, spread over the instances at `bases`; the statuses and
/// `Retry-After`s.
async fn burst(
    sim: &Simulator,
    bases: &[String],
    n: usize,
    path: &str,
    roles: &[&str],
    body: Value,
) -> Vec<(StatusCode, Option<String>)> {
    let client = reqwest::Client::new();
    let token = sim.issue_token(&TokenRequest {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    });
    let mut tasks = Vec::new();
    for i in 0..n {
        let url = format!("{}{path}", bases[i % bases.len()]);
        let token = token.clone();
        let client = client.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let status = r.status();
            if status.is_server_error() {
                eprintln!("{status}: {}", r.text().await.unwrap_or_default());
            }
            (status, retry)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn check_burst(results: &[(StatusCode, Option<String>)], ok: StatusCode, limit: usize) {
    let succeeded = results.iter().filter(|(s, _)| *s == ok).count();
    assert_eq!(succeeded, limit, "{results:?}");
    for (status, retry_after) in results.iter().filter(|(s, _)| *s != ok) {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{results:?}");
        let seconds: u64 = retry_after.as_deref().expect("Retry-After").parse().unwrap();
        assert!(seconds > 3600 && seconds <= 86_400, "{seconds}");
    }
}

const LIMITS: [(&str, &str); 2] = [
    ("TAP_MAX_PER_TARGET_PER_DAY", "2"),
    ("TAP_MAX_PER_CALLER_PER_HOUR", "100"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_passes_or_resets_for_one_user_create_at_most_the_limit() {
    let app = spawn_app_with(&LIMITS).await;
    let bases = [app.base.clone()];
    let results = burst(
        &app.sim,
        &bases,
        20,
        &format!("/api/users/{ADELE}/tap"),
        TAP,
        tap_body("sms"),
    )
    .await;
    check_burst(&results, StatusCode::CREATED, 2);
    let sms: Vec<_> = app.outbox().await.into_iter().filter(|m| m.channel == "sms").collect();
    assert_eq!(sms.len(), 2, "exactly two passes went out");
    let created = app
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods"))
        .count();
    assert_eq!(created, 2, "no pass was created for a refused request");

    let body = reset_body(json!({"scope": "portal"}));
    let results = burst(
        &app.sim,
        &bases,
        20,
        &format!("/api/users/{GRADY}/mfa/reset"),
        RESET_AND_TAP,
        body,
    )
    .await;
    check_burst(&results, StatusCode::OK, 2);
    let intents = audit(&app, "mfa.reset")
        .await
        .into_iter()
        .filter(|r| r["phase"] == "intent")
        .count();
    assert_eq!(intents, 2, "only the two reserved resets reached Graph");
}

/// An instance of the app with its audit trail and rate-limit slots in Azurite; its base URL.
async fn app_on_azurite(azurite: &Azurite, sim: &Simulator) -> String {
    let mut vars = test_settings(sim);
    vars.remove("AUDIT_DIR");
    vars.insert("AzureWebJobsStorage__blobServiceUri".into(), azurite.blob_url());
    vars.insert("AzureWebJobsStorage__queueServiceUri".into(), azurite.blob_url());
    for (k, v) in LIMITS {
        vars.insert(k.into(), v.into());
    }
    let settings = Settings::from_map(&vars).unwrap();
    let app = Application::build(
        settings,
        HostOptions {
            azure: crate::intake_azurite::overrides(sim),
            ..HostOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_azurite_two_instances_share_the_limit_and_cannot_race_it() {
    let azurite = Azurite::start();
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    // Two instances: each its own process state (locks, caches), the same storage and tenant.
    let bases = [
        app_on_azurite(&azurite, &sim).await,
        app_on_azurite(&azurite, &sim).await,
    ];
    let results = burst(
        &sim,
        &bases,
        20,
        &format!("/api/users/{ADELE}/tap"),
        TAP,
        tap_body("sms"),
    )
    .await;
    check_burst(&results, StatusCode::CREATED, 2);
    let sms = sim.outbox().into_iter().filter(|m| m.channel == "sms").count();
    assert_eq!(sms, 2);
    let body = reset_body(json!({"scope": "portal"}));
    let results = burst(
        &sim,
        &bases,
        20,
        &format!("/api/users/{GRADY}/mfa/reset"),
        RESET_AND_TAP,
        body,
    )
    .await;
    check_burst(&results, StatusCode::OK, 2);
}

#[tokio::test]
async fn reset_with_a_pass_for_an_authenticator_only_user_without_a_phone_removes_nothing() {
    let app = spawn_app().await;
    let before = app.sim.tenant().user(ALEX).unwrap().methods.len();
    let body = reset_body(json!({"scope": "portal", "tap": {"delivery": {"channel": "sms"}}}));
    let (status, response) = reset(&app, ALEX, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{response}");
    assert_eq!(response["error"]["code"], "no_address_of_record");
    assert!(
        response["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was removed"),
        "{response}"
    );
    assert_eq!(app.sim.tenant().user(ALEX).unwrap().methods.len(), before);
    assert!(app.sim.tenant().user(ALEX).unwrap().sessions_revoked_at.is_none());
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());

    // Adele's pass cannot go to the mobile phone the same reset removes...
    let (status, response) = reset(&app, ADELE, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{response}");
    assert_eq!(response["error"]["code"], "no_address_of_record");
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
    // ... but by email the whole request finishes.
    let body = reset_body(json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}}}));
    let (status, response) = reset(&app, ADELE, &body).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(response["tap"]["delivery"]["channel"], "email");
    assert_eq!(response["removed"].as_array().unwrap().len(), 3, "{response}");
}

#[tokio::test]
async fn a_reset_that_would_leave_no_method_is_refused_and_allow_empty_needs_a_second_approver() {
    let app = spawn_app().await;
    let (status, response) = reset(&app, ALEX, &reset_body(json!({"scope": "portal"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{response}");
    assert_eq!(response["error"]["code"], "would_leave_no_method");
    assert!(response["error"]["message"].as_str().unwrap().contains("tap"));
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
    // Grady keeps methods outside the portal scope (FIDO2, Hello, ...): no refusal.
    let (status, response) = reset(
        &app,
        "grady.archie@contoso.test",
        &reset_body(json!({"scope": "portal"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    // `allowEmpty` is one person's word: without approvers it is refused, and nothing is removed.
    // (Grady's notices are sent after the answer: wait for them.)
    crate::cost::settled(&app).await;
    let before = graph_writes(&app.sim);
    let (status, response) = reset(&app, ALEX, &reset_body(json!({"scope": "portal", "allowEmpty": true}))).await;
    assert_eq!(
        (status, &response["error"]["code"]),
        (StatusCode::CONFLICT, &json!("second_approver_required")),
        "{response}"
    );
    assert_eq!(graph_writes(&app.sim), before, "nothing was removed");
    let records = audit(&app, "mfa.reset").await;
    let outcome = records
        .iter()
        .rev()
        .find(|r| r["phase"] == "outcome" && r["target"]["objectId"] == ALEX)
        .unwrap();
    assert_eq!(outcome["outcome"]["code"], "second_approver_required", "{outcome}");
    assert_eq!(outcome["details"]["leavesNothing"], true, "{outcome}");

    // With approvers, the same request waits for one (reason `leaves_nothing`), and a portal
    // reset that leaves nothing counts as `reset_all` too.
    let app = spawn_app_with(&[
        ("APPROVAL_REQUIRED_FOR", "reset_all"),
        ("APPROVAL_WEBHOOK", "{sim}/callbacks/approvals"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    let (status, response) = reset(&app, ALEX, &reset_body(json!({"scope": "portal", "allowEmpty": true}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(response["status"], "pending_approval", "{response}");
    assert_eq!(
        response["approval"]["reasons"],
        json!(["reset_all", "leaves_nothing"]),
        "{response}"
    );
    // With its pass, the portal reset that leaves nothing is still a `reset_all`: held.
    let (status, response) = reset(
        &app,
        ADELE,
        &reset_body(json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}}})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{response}");
    assert_eq!(response["approval"]["reasons"], json!(["reset_all"]), "{response}");
    assert!(
        graph_writes(&app.sim).iter().all(|w| w.contains("sendMail")),
        "{:?}",
        graph_writes(&app.sim)
    );
}

#[tokio::test]
async fn nobody_recovers_their_own_account_and_a_manager_cannot_hand_themselves_a_pass() {
    let app = spawn_app().await;
    let as_user = |object_id: &str, roles: &[&str]| {
        app.sim.issue_token(&TokenRequest {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            object_id: Some(object_id.into()),
            ..Default::default()
        })
    };
    let alex = as_user(ALEX, RESET_AND_TAP);
    let (status, body, _) = post(&app, &format!("/api/users/{ALEX}/tap"), &alex, &tap_body("email")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("self_recovery_forbidden"))
    );
    let (status, body, _) = post(
        &app,
        "/api/users/alex.wilber@contoso.test/mfa/reset",
        &alex,
        &reset_body(json!({"allowEmpty": true})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("self_recovery_forbidden"))
    );
    // Megan manages Adele: she may not send Adele's pass to herself...
    let megan = as_user(MEGAN, TAP);
    let (status, body, _) = post(&app, &format!("/api/users/{ADELE}/tap"), &megan, &tap_body("manager")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("caller_is_manager"))
    );
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());
    // ... but may send it to Adele's phone; the record keeps who verified, as given, and who called.
    let (status, body, _) = post(&app, &format!("/api/users/{ADELE}/tap"), &megan, &tap_body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let records = audit(&app, "tap.issue").await;
    let done = records
        .iter()
        .find(|r| r["phase"] == "outcome" && r["outcome"]["status"] == "succeeded")
        .unwrap();
    assert_eq!(done["caller"]["objectId"], MEGAN);
    assert_eq!(done["details"]["verification"]["verifiedBy"], "agent@contoso.test");
}

#[tokio::test]
async fn caller_text_never_travels_with_a_pass_and_no_placeholder_is_expanded_twice() {
    let app = spawn_app().await;
    let mut body = tap_body("sms");
    body["ticket"]["id"] = json!("{pass} call +1 555 0100 to confirm");
    body["reason"] = json!("{pass}");
    let (status, response) = tap(&app, ADELE, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let sms = app.outbox().await.into_iter().find(|m| m.channel == "sms").unwrap();
    assert!(!sms.body.contains("555 0100"), "{}", sms.body);
    assert!(!sms.body.contains("{pass}"), "{}", sms.body);
    let taps: Value = app
        .client
        .get(format!("{}/sim/taps", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = taps["value"][0]["temporaryAccessPass"].as_str().unwrap().to_owned();
    assert_eq!(sms.body.matches(&pass).count(), 1, "{}", sms.body);
    // A template may not bring ticket text back.
    let sim = &app.sim;
    let mut vars = test_settings(sim);
    vars.insert("TAP_MESSAGE_TEMPLATE".into(), "{pass} for {ticket}".into());
    let error = Settings::from_map(&vars).unwrap_err();
    assert_eq!(error.key, "TAP_MESSAGE_TEMPLATE");
}

#[tokio::test]
async fn twilio_alone_carries_sms() {
    let app = spawn_app_with(&[
        ("ACS_ENDPOINT", ""),
        ("ACS_ACCESS_KEY_SECRET", ""),
        ("ACS_SMS_FROM", ""),
        ("TWILIO_ENDPOINT", "{sim}/twilio"),
        ("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000001"),
        ("TWILIO_AUTH_TOKEN_SECRET", "twilio-auth-token"),
        ("TWILIO_FROM", "+18005550198"),
    ])
    .await;
    let (status, response) = tap(&app, ADELE, &tap_body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["delivery"]["provider"], "twilio");
}

#[tokio::test]
async fn a_pass_nobody_can_be_told_about_is_refused_and_notices_can_go_through_acs() {
    let app = spawn_app().await;
    {
        let mut tenant = app.sim.tenant();
        let idx = tenant.user_index(ADELE).unwrap();
        let adele = &mut tenant.users[idx];
        adele.mail = None;
        adele.other_mails.clear();
        adele.manager_id = None;
    }
    let (status, response) = tap(&app, ADELE, &tap_body("sms")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{response}");
    assert_eq!(response["error"]["code"], "no_notice_recipient");
    assert_eq!(graph_writes(&app.sim), Vec::<String>::new());

    // Email through ACS (no MAIL_SENDER): the notices go through ACS too.
    let app = spawn_app_with(&[
        ("EMAIL_PROVIDER", "acs"),
        ("MAIL_SENDER", ""),
        ("ACS_EMAIL_FROM", "DoNotReply@notify.contoso.test"),
    ])
    .await;
    let (status, response) = tap(&app, ADELE, &tap_body("sms")).await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    assert_eq!(response["notified"].as_array().unwrap().len(), 3, "{response}");
    // The notices go through the outbox after the answer: wait for them.
    let emails = || {
        app.sim
            .outbox()
            .into_iter()
            .filter(|m| m.channel == "email")
            .collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if emails().len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(emails().len(), 3, "the three notices");
    let notices: HashSet<String> = emails().into_iter().map(|m| m.provider).collect();
    assert_eq!(notices, HashSet::from(["acs".to_owned()]));
}

#[tokio::test]
async fn a_next_link_to_another_host_is_never_followed() {
    // A stand-in for Graph whose memberships page points at another host.
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker_url = format!("http://{}", attacker.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "{}" }
        });
        axum::serve(attacker, app).await.unwrap();
    });
    let graph_stub = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let graph_url = format!("http://{}", graph_stub.local_addr().unwrap());
    let next = format!("{attacker_url}/v1.0/steal");
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            let next = next.clone();
            async move { axum::Json(json!({"value": [], "@odata.nextLink": next})) }
        });
        axum::serve(graph_stub, app).await.unwrap();
    });
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let graph = mfa_recovery::graph::GraphClient::new(
        reqwest::Client::new(),
        graph_url.parse().unwrap(),
        Arc::new(mfa_recovery::dev::SimCredential::new(&sim)),
    );
    let user = ALEX.parse().unwrap();
    let error = graph.transitive_member_of(&user).await.unwrap_err();
    assert!(error.to_string().contains("away from GRAPH_ENDPOINT"), "{error}");
    let error = graph.role_eligibility_instances(ALEX).await.unwrap_err();
    assert!(error.to_string().contains("away from GRAPH_ENDPOINT"), "{error}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no token went elsewhere"
    );
}

#[tokio::test]
async fn probing_who_is_privileged_costs_the_callers_slots() {
    let app = spawn_app_with(&[("TAP_MAX_PER_CALLER_PER_HOUR", "3")]).await;
    for _ in 0..3 {
        let (status, _) = tap(&app, "allan.deyoung@contoso.test", &tap_body("sms")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _, retry_after) = post(
        &app,
        "/api/users/christie.cline@contoso.test/tap",
        &app.token(TAP),
        &tap_body("sms"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
}

#[tokio::test]
async fn a_reset_with_a_pass_still_issues_it_when_a_removal_fails() {
    let app = spawn_app().await;
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": "/*/users/*/authentication/microsoftAuthenticatorMethods/*", "method": "DELETE", "status": 500, "count": 100}))
        .send()
        .await
        .unwrap();
    let body = reset_body(json!({"scope": "portal", "tap": {"delivery": {"channel": "email"}}}));
    let (status, response) = reset(&app, ADELE, &body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{response}");
    assert_eq!(response["error"]["code"], "reset_incomplete");
    assert_eq!(response["tap"]["delivery"]["channel"], "email", "{response}");
}

#[tokio::test]
async fn an_old_pass_is_no_way_in_so_it_does_not_make_an_empty_reset_acceptable() {
    let app = spawn_app().await;
    let (status, _) = tap(&app, ALEX, &tap_body("email")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, response) = reset(&app, ALEX, &reset_body(json!({"scope": "portal"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{response}");
    assert_eq!(response["error"]["code"], "would_leave_no_method");
}
