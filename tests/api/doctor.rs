//! `GET /api/doctor` and `mfa-recovery doctor` against the simulated tenant: every read the
//! service depends on, per feature; a grant taken away turns its row into `missing_permission`
//! naming it; a tenant without P2 says so; nothing is written.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn doctor(app: &TestApp) -> Value {
    let r = app
        .client
        .get(format!("{}/api/doctor", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn rows(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} | {}: {} | {} | {}",
                r["status"].as_str().unwrap(),
                r["feature"].as_str().unwrap(),
                r["check"].as_str().unwrap(),
                r["permission"].as_str().unwrap_or("-"),
                r["detail"].as_str().unwrap()
            )
        })
        .collect()
}

fn status_of<'a>(report: &'a Value, check: &str) -> &'a str {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["check"].as_str().unwrap().starts_with(check))
        .unwrap_or_else(|| panic!("no row {check}: {:#?}", rows(report)))["status"]
        .as_str()
        .unwrap()
}

/// With every grant the templates give, each feature's reads work against the simulated tenant
/// (the settings the tests run with: approvals and protected groups unset are "not configured"),
/// with the identity's own token; and the doctor wrote nothing, not even an audit record.
#[tokio::test]
async fn every_feature_works_with_the_templates_grants_and_nothing_is_written() {
    let app = spawn_app_with(&[("TAP_PROTECTED_GROUPS", "8c0c2f8e-0f4e-4d0b-9a53-5a3b4f4e6a01")]).await;
    let report = doctor(&app).await;
    let lines = rows(&report);
    eprintln!("{}", lines.join("\n"));
    assert_eq!(report["checked_as"], "identity");
    assert_eq!(report["problems"], 0, "{lines:#?}");
    for check in [
        "the Temporary Access Pass policy",
        "a user",
        "the user's authentication methods",
        "the user's passes",
        "the user's transitive memberships",
        "directory roles assigned",
        "directory roles eligible",
        "groups eligible",
        "the user's risk",
        "the directory audit log",
        "this API's service principal",
        "this API's app role holders",
        "the owners of this API's service principal",
        "the groups that can hold roles",
        "the authentication methods registration report",
        "the disabled accounts",
        "create a pass, remove a method",
        "revoke the user's sessions",
    ] {
        assert_eq!(status_of(&report, check), "works", "{check}: {lines:#?}");
    }
    // A setting that names no group, and one that names a group that does not exist.
    assert_eq!(
        status_of(&report, "the members of APPROVAL_NOTIFY_GROUP"),
        "not_configured"
    );
    assert_eq!(
        status_of(&report, "the members of TAP_PROTECTED_GROUPS"),
        "not_configured"
    );
    assert!(
        lines.iter().any(|l| l.contains("which is no group in this tenant")),
        "{lines:#?}"
    );
    // Mail is a write the doctor cannot see: said, not guessed.
    assert_eq!(status_of(&report, "send mail from MAIL_SENDER"), "not_checked");
    assert!(app.graph_writes().is_empty(), "{:?}", app.graph_writes());
    assert!(app.audit_of(None).await.iter().all(|r| r["action"] != "doctor.read"));
}

/// Only `Audit.Read` holders see the report; a refusal is recorded as `doctor.read`.
#[tokio::test]
async fn only_audit_readers_see_the_report() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/api/doctor", app.base))
        .bearer_auth(app.token(&["Recovery.Tap", "Recovery.Reset"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.get("/api/doctor").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let refusals = app.audit_of(Some("doctor.read")).await;
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
}

/// Each grant of the templates taken away (with Directory.Read.All too where Graph accepts that
/// one instead) turns a row into `missing_permission` naming it, and the summary counts it.
#[tokio::test]
async fn each_grant_taken_away_turns_a_row_into_missing_permission_naming_it() {
    let covered = ["Application.Read.All", "GroupMember.Read.All", "User.Read.All"];
    for grant in crate::permissions::grants() {
        let app = spawn_app().await;
        app.sim
            .tenant()
            .graph_permissions
            .retain(|p| *p != grant && !(covered.contains(&grant.as_str()) && p == "Directory.Read.All"));
        let report = doctor(&app).await;
        let lines = rows(&report);
        let named = lines
            .iter()
            .any(|l| l.starts_with("missing_permission |") && l.contains(&grant));
        assert!(named, "{grant} taken away: no row names it: {lines:#?}");
        assert!(report["problems"].as_u64().unwrap() > 0);
    }
}

/// A tenant without Entra ID P2: the risk row says the licence, not a permission, and with
/// `RISK_CHECK=required` it is a problem (every recovery would be refused).
#[tokio::test]
async fn a_tenant_without_p2_is_told_apart_from_a_missing_permission() {
    for (setting, status) in [("if_available", "not_configured"), ("required", "not_licensed")] {
        let app = spawn_app_with(&[("RISK_CHECK", setting)]).await;
        let r = app
            .client
            .post(format!("{}/sim/licenses", app.sim.base_url()))
            .json(&json!({"entraIdP2": false}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let report = doctor(&app).await;
        assert_eq!(status_of(&report, "the user's risk"), status, "{:#?}", rows(&report));
        assert!(rows(&report).iter().any(|l| l.contains("Entra ID P2")));
    }
}

/// A tenant with no premium licence: the sweep's report row says the licence (a problem: the
/// sweep cannot run), not a permission.
#[tokio::test]
async fn a_tenant_without_p1_cannot_run_the_sweep_and_is_told_so() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}/sim/licenses", app.sim.base_url()))
        .json(&json!({"entraIdP1": false, "entraIdP2": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let report = doctor(&app).await;
    let lines = rows(&report);
    assert_eq!(
        status_of(&report, "the authentication methods registration report"),
        "not_licensed",
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("needs Microsoft Entra ID P1 or P2")));
    assert!(report["problems"].as_u64().unwrap() >= 1);
    // The report's JSON carries no token (a JWT starts "eyJ").
    assert!(!report.to_string().contains("eyJ"));
}

/// A report under a minute old is served again: a caller refreshing the console cannot spend
/// the identity's Graph budget.
#[tokio::test]
async fn a_fresh_report_is_served_again_without_reading_graph() {
    let app = spawn_app().await;
    let first = doctor(&app).await;
    let reads = app.sim.requests().len();
    let second = doctor(&app).await;
    assert_eq!(app.sim.requests().len(), reads);
    assert_eq!(first, second);
}

/// `mfa-recovery doctor` from the command line, with the managed identity (here the simulated
/// one): lines per row, exit 0; `--json` prints what the API answers; a grant taken away makes it
/// exit 1 and name the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_the_report_and_exits_1_when_a_row_needs_the_admin() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), sim.seed().tenant_id.clone()),
        ("AUTH_AUDIENCE".into(), sim.seed().api.audience.clone()),
        ("GRAPH_ENDPOINT".into(), sim.graph_endpoint()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().into()),
        ("AZURE_CLIENT_ID".into(), sim.seed().managed_identity.client_id.clone()),
        ("MAIL_SENDER".into(), "mfa-recovery@contoso.test".into()),
    ];
    let run = |args: &'static [&'static str], env: Vec<(String, String)>| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
                .arg("doctor")
                .args(args)
                .env_clear()
                .envs(env)
                .output()
                .unwrap()
        })
    };
    let out = run(&["--user", "alex.wilber@contoso.test"], env.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.starts_with("Checked with the function app's identity"),
        "{stdout}"
    );
    assert!(
        stdout.contains("works              Temporary Access Pass: the Temporary Access Pass policy: state enabled"),
        "{stdout}"
    );
    assert!(stdout.contains("0 need you."), "{stdout}");
    let out = run(&["--json"], env.clone()).await.unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], 0);
    sim.tenant()
        .graph_permissions
        .retain(|p| p != "RoleManagement.Read.Directory");
    let out = run(&[], env).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("missing_permission Privileged accounts refused: directory roles assigned (any scope): Graph refused the read (403). Grant the function app's identity RoleManagement.Read.Directory"), "{stdout}");
    let graph_writes: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| (r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/")) && r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(graph_writes.is_empty(), "the doctor wrote: {graph_writes:?}");
}
