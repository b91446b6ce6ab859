//! The trail in Log Analytics (#34 item 3): the `audit-export` timer, driven with the payload a
//! real Functions host sends, against the simulated Logs Ingestion API (auth, 204, 413, 429).

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cost::fault;
use crate::helpers::*;

const RULE: &str = "dcr-00000000000000000000000000000001";

async fn export_app() -> TestApp {
    spawn_app_with(&[("AUDIT_EXPORT_RULE_ID", RULE), ("AUDIT_EXPORT_ENDPOINT", "{sim}")]).await
}

async fn pass(app: &TestApp, user: &str) {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"delivery": {"channel": "email"}, "ticket": {"system": "jira", "id": "HELP-9"},
        "reason": "lost phone", "verification": {"method": "callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now}});
    let r = app
        .client
        .post(format!("{}/api/users/{user}/tap", app.base))
        .bearer_auth(app.token(&["Recovery.Tap"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// One run of the timer, as the host invokes it; its log line.
async fn export(app: &TestApp) -> String {
    let r = app
        .invoke(
            "audit-export",
            &fixture("timer-trigger.request.json"),
            "0b3f2a9c-2222-4c4d-8e8f-000000000001",
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["Logs"][0].as_str().unwrap_or_default().to_owned()
}

/// Every row Log Analytics was sent.
async fn ingested(app: &TestApp) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/sim/ingested", app.sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].clone())
        .collect()
}

/// The trail's records, as the app's own chains hold them.
fn stored_hashes(app: &TestApp) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("anchors") && !p.ends_with("limits") {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    let v: Value = serde_json::from_str(line).unwrap();
                    out.push(v["hash"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&PathBuf::from(app.settings_value("AUDIT_DIR")), &mut out);
    out
}

/// Each record of the trail reaches the table exactly once: through a 429 storm (waits its
/// Retry-After), a run cut off mid-send (the worker gone: nothing was taken, the next run sends
/// it), a 413 (the batch split), and runs with nothing new. Each row carries the record's hash
/// and no pass; each batch ends with its chain's head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_log_analytics_once_across_a_429_storm_a_crash_and_a_split() {
    let app = export_app().await;
    pass(&app, "lee.gu@contoso.test").await;
    // A crash: the ingestion answers slowly and the invocation is cut off before it does.
    fault(
        &app,
        json!({"route": "/dataCollectionRules/**", "latencyMs": 3000, "count": 1}),
    )
    .await;
    let cut = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap()
        .post(format!("{}/audit-export", app.base))
        .header("content-type", "application/json")
        .header("x-azure-functions-invocationid", "0b3f2a9c-2222-4c4d-8e8f-000000000002")
        .body(fixture("timer-trigger.request.json"))
        .send()
        .await;
    assert!(cut.is_err(), "the invocation was cut off");
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(ingested(&app).await.is_empty(), "nothing was taken");
    // A 429 storm: three refusals, each waited for.
    fault(
        &app,
        json!({"route": "/dataCollectionRules/**", "status": 429, "retryAfter": 1, "count": 3}),
    )
    .await;
    let log = export(&app).await;
    assert!(log.contains("records from"), "{log}");
    pass(&app, "adele.vance@contoso.test").await;
    // A 413: the batch is split in two and both halves go.
    fault(
        &app,
        json!({"route": "/dataCollectionRules/**", "status": 413, "count": 1}),
    )
    .await;
    export(&app).await;
    export(&app).await;
    let rows = ingested(&app).await;
    let mut sent: Vec<String> = rows
        .iter()
        .filter(|r| r["Kind"] == "record")
        .map(|r| r["Hash"].as_str().unwrap().to_owned())
        .collect();
    let mut stored = stored_hashes(&app);
    // The export's own `audit.export` records (none here: it never failed) and anything written
    // after the last run are not sent yet; everything before is, once.
    stored.sort();
    sent.sort();
    let unique: std::collections::BTreeSet<_> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "a record was sent twice");
    assert!(sent.iter().all(|h| stored.contains(h)), "a row that is not a record");
    assert!(
        sent.len() >= stored.len() - 2,
        "sent {} of {}",
        sent.len(),
        stored.len()
    );
    assert!(rows.iter().any(|r| r["Kind"] == "head"));
    assert!(rows.iter().all(|r| r["TimeGenerated"].is_string()));
    let all = serde_json::to_string(&rows).unwrap();
    for p in app.passes().await {
        assert!(!all.contains(&p), "a pass reached Log Analytics");
    }
}

/// A mark moved far ahead in storage (to stop the export silently) names no record: the chain is
/// sent again from its start, and the new records with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_moved_ahead_in_storage_does_not_stop_the_export() {
    let app = export_app().await;
    pass(&app, "lee.gu@contoso.test").await;
    app.outbox().await;
    // A notice's record is written just after its outbox entry goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    export(&app).await;
    let before = ingested(&app).await.len();
    let marks = PathBuf::from(app.settings_value("REQUESTS_DIR")).join("export");
    for e in std::fs::read_dir(&marks).unwrap().flatten() {
        if e.file_name() != "status.json" {
            std::fs::write(e.path(), br#"{"seq": 1000000, "hash": "0000"}"#).unwrap();
        }
    }
    pass(&app, "adele.vance@contoso.test").await;
    app.outbox().await;
    // A notice's record is written just after its outbox entry goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Every record kept before the run must be sent by it (a notice's record may still come
    // after: the next run's).
    let stored = stored_hashes(&app);
    export(&app).await;
    let rows = ingested(&app).await;
    assert!(rows.len() > before, "the export went on");
    let sent: std::collections::BTreeSet<String> = rows
        .iter()
        .filter(|r| r["Kind"] == "record")
        .map(|r| r["Hash"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = stored.iter().filter(|h| !sent.contains(*h)).collect();
    assert!(missing.is_empty(), "records left out: {missing:?}");
}

/// Without Monitoring Metrics Publisher the export fails: the health answer says so, the trail
/// records it once, recoveries go on; given back, the export catches up and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_export_is_visible_and_never_blocks_a_recovery() {
    let app = export_app().await;
    let health = || async {
        let v: Value = app.get("/api/health").await.json().await.unwrap();
        v["auditExport"].clone()
    };
    assert_eq!(health().await["state"], "pending");
    reqwest::Client::new()
        .post(format!("{}/sim/monitoring", app.sim.base_url()))
        .json(&json!({"publisher": false}))
        .send()
        .await
        .unwrap();
    pass(&app, "lee.gu@contoso.test").await;
    let log = export(&app).await;
    assert!(log.contains("failed") && log.contains("403"), "{log}");
    export(&app).await;
    let h = health().await;
    assert_eq!(h["state"], "failing", "{h}");
    // Anonymous: the state and since when, not the error (which names the rule's endpoint).
    assert!(h["failingSince"].is_string() && h.get("lastError").is_none(), "{h}");
    // The doctor says so too, with the fix.
    let doctor: Value = app
        .client
        .get(format!("{}/api/doctor", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = doctor["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["feature"] == "Audit trail in Log Analytics")
        .unwrap_or_else(|| panic!("{doctor}"));
    assert_eq!(row["status"], "failed", "{row}");
    assert!(
        row["detail"].as_str().unwrap().contains("Monitoring Metrics Publisher"),
        "{row}"
    );
    pass(&app, "adele.vance@contoso.test").await;
    let failed = app.audit_of(Some("audit.export")).await;
    assert_eq!(failed.len(), 1, "recorded once, not every run: {failed:?}");
    assert_eq!(failed[0]["outcome"]["code"], "audit_export_failing");
    reqwest::Client::new()
        .post(format!("{}/sim/monitoring", app.sim.base_url()))
        .json(&json!({"publisher": true}))
        .send()
        .await
        .unwrap();
    export(&app).await;
    assert_eq!(health().await["state"], "ok");
    let records = ingested(&app).await;
    assert!(records.iter().filter(|r| r["Kind"] == "record").count() >= 4);
    assert_eq!(app.audit_of(Some("audit.export")).await.len(), 2);
}

/// The az CLI's query output (every value as text) for the rows sent.
fn az_export(rows: &[Value]) -> String {
    let text: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("TableName".into(), json!("PrimaryResult"));
            for (k, v) in r.as_object().unwrap() {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "None".into(),
                    other => other.to_string(),
                };
                o.insert(k.clone(), json!(s));
            }
            Value::Object(o)
        })
        .collect();
    serde_json::to_string(&text).unwrap()
}

fn verify_against(app: &TestApp, file: &std::path::Path) -> (Option<i32>, String) {
    crate::witness::audit_verify_with(app, &["--compare-export".as_ref(), file.as_os_str()])
}

/// `audit verify --compare-export` agrees with the copy; once a chain's last records are removed
/// from storage together with their anchor lines (which storage alone does not show), the copy
/// does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_export_finds_a_tail_removed_with_its_anchors() {
    let app = export_app().await;
    pass(&app, "lee.gu@contoso.test").await;
    pass(&app, "adele.vance@contoso.test").await;
    export(&app).await;
    let file = temp_dir("export").join("export.json");
    std::fs::write(&file, az_export(&ingested(&app).await)).unwrap();
    let (code, text) = tokio::task::block_in_place(|| verify_against(&app, &file));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("the export agrees"), "{text}");

    // The last two records and their anchor lines go.
    let root = PathBuf::from(app.settings_value("AUDIT_DIR"));
    let mut chains = Vec::new();
    let mut anchors = Vec::new();
    fn walk(dir: &std::path::Path, chains: &mut Vec<PathBuf>, anchors: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("limits") {
                walk(&p, chains, anchors);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                if p.to_string_lossy().contains("/anchors/") {
                    anchors.push(p);
                } else {
                    chains.push(p);
                }
            }
        }
    }
    walk(&root, &mut chains, &mut anchors);
    let chain = &chains[0];
    let text = std::fs::read_to_string(chain).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The last two records Log Analytics has (and anything after them).
    let head = ingested(&app)
        .await
        .iter()
        .filter(|r| r["Kind"] == "head")
        .map(|r| r["Seq"].as_u64().unwrap())
        .max()
        .unwrap() as usize;
    let keep = head.min(lines.len()) - 2;
    std::fs::write(
        chain,
        lines[..keep].iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    for a in &anchors {
        let text = std::fs::read_to_string(a).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap() <= keep as u64)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(a, kept).unwrap();
    }
    let (code, text) = tokio::task::block_in_place(|| verify_against(&app, &file));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("EXPORT MISMATCH") && text.contains("removed"), "{text}");
}

/// The Sentinel rules read fields of `Details` the KQL check cannot see (dynamic): they are the
/// ones the code writes. A privileged target's refusal carries `OutcomeCode == "target_protected"`
/// and `Details.privilege`; a wrong code is `verification.confirm` with `code_mismatch`, the
/// caller and the verification's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rows_carry_the_fields_the_sentinel_rules_read() {
    let app = spawn_app_with(&[
        ("AUDIT_EXPORT_RULE_ID", RULE),
        ("AUDIT_EXPORT_ENDPOINT", "{sim}"),
        ("TAP_REQUIRE_VERIFICATION", "service"),
    ])
    .await;
    let token = app.token(&["Recovery.Tap"]);
    let post = |path: String, body: Value| {
        let (client, base, token) = (app.client.clone(), app.base.clone(), token.clone());
        async move {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = post(
        "/api/users/allan.deyoung@contoso.test/verifications".into(),
        json!({"channel": "email"}),
    )
    .await;
    assert!(status.is_client_error(), "a privileged user gets no code: {status}");
    let (status, sent) = post(
        "/api/users/lee.gu@contoso.test/verifications".into(),
        json!({"channel": "email"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["verificationId"].as_str().unwrap().to_owned();
    let (status, _) = post(format!("/api/verifications/{id}/confirm"), json!({"code": "000000"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.outbox().await;
    // A notice's record is written just after its outbox entry goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    export(&app).await;
    let rows = ingested(&app).await;
    let privileged = rows
        .iter()
        .find(|r| r["OutcomeCode"] == "target_protected")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(privileged["Details"]["privilege"].is_object(), "{privileged}");
    assert_eq!(privileged["TargetUpn"], "allan.deyoung@contoso.test");
    let wrong = rows
        .iter()
        .find(|r| r["Action"] == "verification.confirm" && r["OutcomeCode"] == "code_mismatch")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(wrong["RequestId"], json!(id));
    assert!(wrong["CallerObjectId"].is_string(), "{wrong}");
}
