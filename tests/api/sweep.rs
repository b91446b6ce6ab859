//! The compliance sweep against the simulated tenant: the rules on the demo users, paging across
//! many pages (empty ones too) under the reports throttle, a resumed run matching an
//! uninterrupted one, the timer and its `IsPastDue`, nudges, `GET /api/sweeps/latest`, and the
//! HTML report in headless Chromium.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mfa_recovery::config::Settings;
use mfa_recovery::graph::GraphClient;
use mfa_recovery::storage::reports::DirStore;
use mfa_recovery::sweep::{RunOutcome, Sweep, Trigger};
use mfa_recovery_sim::{Seed, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn graph(sim: &Simulator) -> GraphClient {
    GraphClient::new(
        reqwest::Client::new(),
        sim.graph_endpoint().parse().unwrap(),
        Arc::new(mfa_recovery::dev::SimCredential::new(sim)),
    )
}

fn settings(sim: &Simulator, extra: &[(&str, &str)]) -> Settings {
    let mut vars = test_settings(sim);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_map(&vars).unwrap()
}

/// Run a sweep to the end in `dir`, in invocations of `budget` (`None`: one invocation).
async fn sweep_into(sim: &Simulator, settings: &Settings, dir: &Path, budget: Option<Duration>) -> (Value, u32) {
    let graph = graph(sim);
    let mut invocations = 0;
    loop {
        invocations += 1;
        let sweep = Sweep {
            graph: &graph,
            store: Arc::new(DirStore::new(dir.to_path_buf())),
            settings: &settings.sweep,
            deliverer: None,
            audit: None,
            budget,
        };
        match sweep.run(Trigger::Cli, &|_| {}).await.unwrap() {
            RunOutcome::Finished(summary) => return (serde_json::to_value(&summary).unwrap(), invocations),
            RunOutcome::Paused { .. } => continue,
            RunOutcome::UpToDate { .. } => panic!("a CLI run is never skipped"),
        }
    }
}

fn read(dir: &Path, summary: &Value, kind: &str) -> String {
    std::fs::read_to_string(dir.join(summary["files"][kind].as_str().unwrap())).unwrap()
}

/// The risk the rules give synthetic row `i` (the simulator's fixed mix), worked out by hand.
fn expected_synthetic(i: usize) -> &'static str {
    if i % 25 == 24 {
        return "guest";
    }
    let admin = i % 50 == 3 || i % 50 == 17;
    match i % 20 {
        0 | 1 if admin => "critical",
        0 | 1 => "high",
        2..=5 if admin => "critical",
        2..=5 => "high",
        6..=9 if admin => "critical",
        6..=9 => "medium",
        10..=16 if admin => "critical",
        _ => "none",
    }
}

#[tokio::test]
async fn the_demo_tenant_is_classified_and_three_reports_are_written() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let dir = temp_dir("sweep-demo");
    // "Tier 0 Accounts" are key users; the helpdesk serves "TAP Eligible Users" and "TAP
    // Excluded" (which the policy excludes).
    let s = settings(
        &sim,
        &[
            ("SWEEP_KEY_USER_GROUPS", "a1b2c3d4-0004-4000-8000-000000000004"),
            (
                "SWEEP_HELPDESK_GROUPS",
                "a1b2c3d4-0001-4000-8000-000000000001,a1b2c3d4-0003-4000-8000-000000000003",
            ),
        ],
    );
    let (summary, _) = sweep_into(&sim, &s, &dir, None).await;
    let users = sim.demo_users().len() as u64;
    assert_eq!(summary["totals"]["users"], users);
    let report: Value = serde_json::from_str(&read(&dir, &summary, "json")).unwrap();
    let by_upn = |upn: &str| {
        report["atRiskUsers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["userPrincipalName"] == upn)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // Patti, a Helpdesk Administrator (through a group) with Authenticator and a phone only.
    let patti = by_upn("patti.fernandez@contoso.test");
    assert_eq!(patti["risk"], "critical", "{patti}");
    assert_eq!(patti["reasons"], json!(["admin_without_phishing_resistant"]));
    // Isaiah, a Global Administrator with a FIDO2 key and a backup: fine.
    assert!(by_upn("isaiah.langer@contoso.test").is_null());
    // Johanna, a key user (Tier 0) with a phone as her only method.
    let johanna = by_upn("johanna.lorenz@contoso.test");
    assert_eq!(
        johanna["reasons"],
        json!(["single_mfa_method", "key_user_without_backup"]),
        "{johanna}"
    );
    assert_eq!((&johanna["risk"], &johanna["keyUser"]), (&json!("high"), &json!(true)));
    // Alex has Microsoft Authenticator alone: a lost phone is a lockout.
    assert_eq!(
        by_upn("alex.wilber@contoso.test")["reasons"],
        json!(["authenticator_only"])
    );
    // Megan (Authenticator and a phone) is fine.
    assert!(by_upn("megan.bowen@contoso.test").is_null());
    // Guests are counted, not assessed.
    assert!(by_upn("pat.guest_fabrikam.test#EXT#@contoso.test").is_null());
    assert!(summary["totals"]["guests"].as_u64().unwrap() >= 1);
    // Users are listed by risk: every critical before every high before every medium.
    let order: Vec<u8> = report["atRiskUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| match u["risk"].as_str().unwrap() {
            "critical" => 0,
            "high" => 1,
            _ => 2,
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    assert_eq!(order.len() as u64, summary["atRisk"].as_u64().unwrap());
    // The tenant checks: the demo policy allows multi-use passes, and excludes a served group.
    let findings: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(findings, ["tap_not_one_time", "helpdesk_group_out_of_scope"]);
    // CSV: a header and one record per at-risk user (a record starts with its quoted risk; its
    // reasons field holds one reason per line).
    let csv = read(&dir, &summary, "csv");
    assert!(csv.starts_with("risk,userPrincipalName,displayName,id,accountEnabled,"));
    let records = csv
        .lines()
        .filter(|l| {
            ["\"critical\",", "\"high\",", "\"medium\","]
                .iter()
                .any(|r| l.starts_with(r))
        })
        .count();
    assert_eq!(records as u64, summary["atRisk"].as_u64().unwrap());
    let johanna_record = csv.split("\r\n").find(|r| r.contains("johanna.lorenz")).unwrap();
    assert!(
        johanna_record.contains("\"true\",")
            && johanna_record.contains("a single MFA method, no backup\nkey user without a backup phone or FIDO2 key"),
        "{johanna_record}"
    );
    let html = read(&dir, &summary, "html");
    assert!(html.contains(&format!("id=\"summary-users\">{users}<")) && html.contains("<svg"));
}

#[tokio::test]
async fn many_pages_with_empty_ones_under_the_reports_throttle_are_all_counted() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let synthetic = 1_200;
    sim.configure_report(json!({"syntheticUsers": synthetic, "pageSize": 50, "emptyPages": true,
        "throttle": {"limit": 8, "windowSeconds": 1}}))
        .unwrap();
    // Paced too fast on purpose (as if another app shared the budget): the throttle answers 429
    // in the middle of the run, and Retry-After is honoured.
    let s = settings(&sim, &[("SWEEP_REQUESTS_PER_10S", "100")]);
    let dir = temp_dir("sweep-pages");
    let (summary, _) = sweep_into(&sim, &s, &dir, None).await;
    let seed_users = sim.demo_users().len();
    let data_pages = (seed_users + synthetic).div_ceil(50) as u64;
    assert_eq!(
        summary["pages"],
        data_pages * 2 - 1,
        "every data page and the empty pages between them"
    );
    assert_eq!(summary["totals"]["users"], (seed_users + synthetic) as u64);
    let throttled = sim
        .requests()
        .iter()
        .filter(|r| r.status == 429 && r.path.contains("userRegistrationDetails"))
        .count();
    assert!(throttled > 0, "the throttle was hit");
    // The synthetic users' risks, worked out independently, match the counts.
    let report: Value = serde_json::from_str(&read(&dir, &summary, "json")).unwrap();
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..synthetic {
        *expected.entry(expected_synthetic(i)).or_insert(0u64) += 1;
    }
    let synthetic_rows: Vec<&Value> = report["atRiskUsers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["userPrincipalName"].as_str().unwrap().starts_with("synth"))
        .collect();
    for level in ["critical", "high", "medium"] {
        let got = synthetic_rows.iter().filter(|u| u["risk"] == level).count() as u64;
        assert_eq!(got, expected.get(level).copied().unwrap_or(0), "{level}");
    }
}

#[tokio::test]
async fn a_resumed_run_writes_the_same_report_as_an_uninterrupted_one() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    sim.configure_report(json!({"syntheticUsers": 300, "pageSize": 40}))
        .unwrap();
    let s = settings(&sim, &[("SWEEP_REQUESTS_PER_10S", "100")]);
    let whole = temp_dir("sweep-whole");
    let pieces = temp_dir("sweep-pieces");
    let (a, one) = sweep_into(&sim, &s, &whole, None).await;
    // A budget of nothing: each invocation does one page, saves, and stops (a Functions timeout).
    let (b, many) = sweep_into(&sim, &s, &pieces, Some(Duration::ZERO)).await;
    assert_eq!(one, 1);
    assert_eq!(many as u64, b["pages"].as_u64().unwrap(), "one page per invocation");
    assert_eq!(b["invocations"].as_u64().unwrap(), many as u64);
    assert_eq!(read(&whole, &a, "csv"), read(&pieces, &b, "csv"));
    let ja: Value = serde_json::from_str(&read(&whole, &a, "json")).unwrap();
    let jb: Value = serde_json::from_str(&read(&pieces, &b, "json")).unwrap();
    for key in ["totals", "findings", "atRiskUsers", "pages", "atRisk"] {
        assert_eq!(ja[key], jb[key], "{key}");
    }
    let table = |h: String| h[h.find("<h2>Tenant findings").unwrap()..].to_owned();
    assert_eq!(table(read(&whole, &a, "html")), table(read(&pieces, &b, "html")));
}

fn timer_envelope(past_due: bool) -> String {
    let fixture = fixture("timer-trigger.request.json");
    let mut v: Value = serde_json::from_str(&fixture).unwrap();
    let text = |v: &Value| v.as_str().map(str::to_owned);
    // The host sends the TimerInfo JSON-encoded as a string.
    if let Some(encoded) = text(&v["Data"]["timer"]) {
        let mut info: Value = serde_json::from_str(&encoded).unwrap();
        info["IsPastDue"] = json!(past_due);
        v["Data"]["timer"] = json!(info.to_string());
    } else {
        v["Data"]["timer"]["IsPastDue"] = json!(past_due);
    }
    v.to_string()
}

#[tokio::test]
async fn the_timer_runs_it_honours_is_past_due_and_the_api_serves_the_reports() {
    let dir = temp_dir("sweep-timer");
    let app = spawn_app_with(&[("SWEEP_DIR", dir.to_str().unwrap())]).await;
    let auditor = app.token(&["Audit.Read"]);
    let latest = || {
        app.client
            .get(format!("{}/api/sweeps/latest", app.base))
            .bearer_auth(&auditor)
            .send()
    };
    assert_eq!(latest().await.unwrap().status(), StatusCode::NOT_FOUND);
    let r = app
        .invoke(
            "compliance-sweep",
            &timer_envelope(true),
            "5d1c2b3a-0000-4000-8000-000000000001",
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["Logs"][0].as_str().unwrap().contains("finished"), "{body}");
    // The next fire within SWEEP_MIN_INTERVAL_HOURS has nothing to do.
    let r = app
        .invoke(
            "compliance-sweep",
            &timer_envelope(false),
            "5d1c2b3a-0000-4000-8000-000000000002",
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert!(body["Logs"][0].as_str().unwrap().contains("recent enough"), "{body}");
    let summary: Value = latest().await.unwrap().json().await.unwrap();
    assert_eq!(summary["totals"]["users"], app.sim.demo_users().len() as u64);
    for (link, kind) in [("html", "text/html"), ("csv", "text/csv"), ("json", "application/json")] {
        let r = app
            .client
            .get(format!("{}{}", app.base, summary["links"][link].as_str().unwrap()))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{link}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with(kind),
            "{link}"
        );
    }
    // Only auditors, only the three reports.
    let r = app
        .client
        .get(format!("{}/api/sweeps/latest", app.base))
        .bearer_auth(app.token(&["Recovery.Tap"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for path in [
        "/api/sweeps/latest/current.json",
        "/api/sweeps/..%2F..%2Fetc/report.csv",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The run is in the audit trail.
    let trail: Value = app
        .client
        .get(format!("{}/api/audit?action=sweep.run", app.base))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trail["value"][0]["caller"]["via"], "timer");
}

#[tokio::test]
async fn nudges_are_capped_per_run_and_never_repeat_within_the_period() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let dir = temp_dir("sweep-nudges");
    let s = settings(&sim, &[("SWEEP_NUDGE", "true"), ("SWEEP_NUDGE_MAX_PER_RUN", "2")]);
    let store = Arc::new(DirStore::new(dir.clone()));
    let graph = graph(&sim);
    let secrets = Arc::new(
        mfa_recovery::secrets::SecretCache::new(
            s.key_vault_uri.as_ref(),
            Arc::new(mfa_recovery::dev::SimCredential::new(&sim)),
            mfa_recovery::dev::sim_overrides(&sim).transport,
        )
        .unwrap(),
    );
    let deliverer = mfa_recovery::delivery::Deliverer::new(
        reqwest::Client::new(),
        Arc::new(graph_clone(&sim)),
        secrets,
        s.tap.clone(),
    );
    let mut recipients = Vec::new();
    for _ in 0..3 {
        let sweep = Sweep {
            graph: &graph,
            store: store.clone(),
            settings: &s.sweep,
            deliverer: Some(&deliverer),
            audit: None,
            budget: None,
        };
        let RunOutcome::Finished(summary) = sweep.run(Trigger::Cli, &|_| {}).await.unwrap() else {
            panic!("finished");
        };
        let summary = serde_json::to_value(&summary).unwrap();
        assert!(summary["nudged"].as_u64().unwrap() <= 2);
    }
    for m in sim.outbox() {
        if m.subject.as_deref() == Some("Add a backup sign-in method before you need it") {
            assert!(
                m.body.contains("https://mysignins.microsoft.com/security-info") && m.body.contains("cloud backup")
            );
            recipients.extend(m.to);
        }
    }
    // Five members are medium risk or worse and enabled: two a run, so the third run tells the
    // last one; the disabled account (Diego) is not assessed, so never nudged.
    assert_eq!(
        recipients.len(),
        5,
        "two per run, until each is told once: {recipients:?}"
    );
    assert!(!recipients.iter().any(|r| r.starts_with("diego")), "{recipients:?}");
    let mut unique = recipients.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), recipients.len(), "nobody twice: {recipients:?}");
}

fn graph_clone(sim: &Simulator) -> GraphClient {
    graph(sim)
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

#[tokio::test]
async fn the_html_report_shows_its_numbers_in_headless_chromium() {
    let Some(browser) = chromium() else {
        // .ci/run installs Debian's chromium; elsewhere the test says what it needs.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have chromium (Debian package `chromium`)"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let dir = temp_dir("sweep-html");
    let s = settings(&sim, &[]);
    let (summary, _) = sweep_into(&sim, &s, &dir, None).await;
    let page = dir.join(summary["files"]["html"].as_str().unwrap());
    let profile = temp_dir("chromium-profile");
    let output = tokio::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let users = summary["totals"]["users"].as_u64().unwrap();
    let at_risk = summary["atRisk"].as_u64().unwrap();
    assert!(dom.contains(&format!("id=\"summary-users\">{users}</div>")), "{dom}");
    assert!(dom.contains(&format!("id=\"summary-at-risk\">{at_risk}</div>")));
    assert!(dom.contains("id=\"chart-risk\"") && dom.contains("id=\"chart-methods\""));
    assert!(
        dom.contains("patti.fernandez@contoso.test"),
        "the at-risk table is rendered"
    );
}

/// Who is not assessed: disabled accounts (unless SWEEP_INCLUDE_DISABLED), members of
/// SWEEP_EXCLUDE_GROUPS, and the service's own mailbox; each counted by why. A second run says
/// what changed since the first.
#[tokio::test]
async fn disabled_excluded_and_the_service_mailbox_are_not_assessed_and_a_second_run_shows_the_change() {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let dir = temp_dir("sweep-exclusions");
    // Tier 0 Accounts (Johanna) is excluded: break-glass accounts live in such a group.
    let s = settings(
        &sim,
        &[("SWEEP_EXCLUDE_GROUPS", "a1b2c3d4-0004-4000-8000-000000000004")],
    );
    let (summary, _) = sweep_into(&sim, &s, &dir, None).await;
    assert_eq!(
        summary["totals"]["excluded"],
        json!({"disabled": 1, "excludedGroup": 1, "serviceMailbox": 1}),
        "{summary}"
    );
    let report: Value = serde_json::from_str(&read(&dir, &summary, "json")).unwrap();
    let upns: Vec<&str> = report["atRiskUsers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    for left_out in [
        "diego.siciliani@contoso.test",
        "johanna.lorenz@contoso.test",
        "mfa-recovery@contoso.test",
    ] {
        assert!(!upns.contains(&left_out), "{left_out} was assessed: {upns:?}");
    }
    assert!(
        summary.get("previous").is_none(),
        "a first run has nothing to compare with"
    );
    // Johanna gets into trouble on purpose: the exclusion is lifted, and a second run compares.
    let s2 = settings(&sim, &[("SWEEP_INCLUDE_DISABLED", "true")]);
    let (second, _) = sweep_into(&sim, &s2, &dir, None).await;
    assert_eq!(second["previous"]["runId"], summary["runId"]);
    let change = &second["change"];
    assert_eq!(
        change["atRisk"].as_i64().unwrap(),
        second["atRisk"].as_i64().unwrap() - summary["atRisk"].as_i64().unwrap()
    );
    assert!(
        change["atRisk"].as_i64().unwrap() >= 1,
        "Johanna and Diego count now: {change}"
    );
    let history: Value = serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[0]["runId"], second["runId"]);
    // With SWEEP_INCLUDE_DISABLED, the disabled account is assessed and flagged in the CSV.
    let csv = read(&dir, &second, "csv");
    if let Some(diego) = csv.split("\r\n").find(|r| r.contains("diego.siciliani")) {
        assert!(diego.contains("\"false\","), "{diego}");
    }
}
