//! The audit trail in Azure Blob Storage (Azurite, through azure_storage_blob with an Entra
//! token), the `audit` function, and `mfa-recovery audit verify`.

use std::sync::Arc;

use azure_core::http::{ClientOptions, RequestContent};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::TryStreamExt;
use mfa_recovery::audit::{AuditEvent, AuditTrail, Phase, Target, Ticket};
use mfa_recovery::azure::AzureOverrides;
use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery::storage::chains::BlobStorage;
use mfa_recovery::vocab::CallerRecord;
use mfa_recovery_sim::{Seed, Simulator, TokenRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::azurite::{Azurite, certs, trusting_transport_to};
use crate::helpers::*;

fn overrides(sim: &Simulator) -> AzureOverrides {
    AzureOverrides {
        credential: Some(Arc::new(mfa_recovery::dev::SimCredential::new(sim))),
        transport: Some(trusting_transport_to(sim)),
    }
}

/// The function app with its audit trail in Azurite.
async fn spawn_app_on_azurite(azurite: &Azurite) -> (String, Simulator) {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let mut vars = test_settings(&sim);
    vars.remove("AUDIT_DIR");
    vars.insert("AzureWebJobsStorage__blobServiceUri".into(), azurite.blob_url());
    vars.insert("AzureWebJobsStorage__queueServiceUri".into(), azurite.blob_url());
    let settings = Settings::from_map(&vars).unwrap();
    let app = Application::build(
        settings,
        HostOptions {
            azure: overrides(&sim),
            ..HostOptions::default()
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (base, sim)
}

fn container(azurite: &Azurite, sim: &Simulator) -> BlobContainerClient {
    let url = format!("{}/audit", azurite.blob_url()).parse().unwrap();
    let o = overrides(sim);
    BlobContainerClient::new(
        url,
        o.credential,
        Some(BlobContainerClientOptions {
            client_options: ClientOptions {
                transport: o.transport,
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .unwrap()
}

fn storage(azurite: &Azurite, sim: &Simulator) -> Arc<BlobStorage> {
    let o = overrides(sim);
    Arc::new(
        BlobStorage::new(
            &azurite.blob_url().parse().unwrap(),
            "audit",
            o.credential.unwrap(),
            o.transport,
        )
        .unwrap(),
    )
}

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        caller: CallerRecord {
            via: "token".into(),
            app_id: Some("app".into()),
            ..Default::default()
        },
        action: mfa_recovery::audit::Action::TapIssue,
        target: Some(Target {
            object_id: Some("b0000002-0000-4000-8000-000000000002".into()),
            upn: Some("alex.wilber@contoso.test".into()),
        }),
        ticket: Some(Ticket {
            system: "servicenow".into(),
            id: format!("INC{n:07}"),
        }),
        request_id: Some(uuid::Uuid::new_v4()),
        phase: Phase::Intent,
        outcome: None,
        details: json!({"lifetimeMinutes": 60, "channel": "sms", "to": "+1 *******101"}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_land_in_blob_storage_and_the_audit_function_returns_them() {
    let azurite = Azurite::start();
    let (base, sim) = spawn_app_on_azurite(&azurite).await;
    let client = reqwest::Client::new();
    // Three refused calls: no token, a wrong role, and another without a token.
    let tap = format!("{base}/api/users/alex.wilber@contoso.test/tap");
    let r = client
        .post(&tap)
        .header("x-forwarded-for", "45.30.94.9:41710")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let reset_only = sim.issue_token(&TokenRequest {
        roles: vec!["Recovery.Reset".into()],
        ..Default::default()
    });
    assert_eq!(
        client
            .post(&tap)
            .bearer_auth(&reset_only)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.post(&tap).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let auditor = sim.issue_token(&TokenRequest {
        roles: vec!["Audit.Read".into()],
        name: Some("SOC".into()),
        ..Default::default()
    });
    // The aggregate of the unauthenticated refusals is written within AUDIT_REFUSAL_SECONDS.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let body: Value = client
        .get(format!("{base}/api/audit?action=tap.issue&outcome=refused"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = body["value"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{body}");
    // A known caller refused for its role is recorded at once, with its identity.
    assert_eq!(records[0]["outcome"]["code"], "forbidden");
    assert_eq!(records[0]["caller"]["via"], "token");
    assert!(records[0]["caller"]["objectId"].is_string(), "{}", records[0]);
    // Unknown callers are counted per source and recorded in aggregate (AUDIT_REFUSAL_SECONDS).
    let from = |ip: Option<&str>| {
        records
            .iter()
            .find(|r| r["caller"]["sourceIp"].as_str() == ip && r["caller"]["via"] == "anonymous")
            .unwrap_or_else(|| panic!("no aggregate for {ip:?}: {body}"))
    };
    let known_source = from(Some("45.30.94.9"));
    assert_eq!(
        known_source["outcome"],
        json!({"status": "refused", "code": "unauthenticated"})
    );
    assert_eq!(known_source["details"]["count"], 1);
    assert_eq!(from(None)["details"]["count"], 1);
    assert_eq!(
        records[1]["seq"].as_u64().unwrap(),
        records[0]["seq"].as_u64().unwrap() + 1
    );
    assert_eq!(records[1]["prevHash"], records[0]["hash"], "one chain");

    // Paging with a continuation token walks the same records.
    let mut seen = Vec::new();
    let mut url = format!("{base}/api/audit?action=tap.issue&pageSize=1");
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(page["value"].as_array().unwrap().len() <= 1);
        seen.extend(page["value"].as_array().unwrap().iter().map(|r| r["id"].clone()));
        match page["continuation"].as_str() {
            Some(c) => url = format!("{base}/api/audit?action=tap.issue&pageSize=1&continuation={c}"),
            None => break,
        }
    }
    assert_eq!(seen, records.iter().map(|r| r["id"].clone()).collect::<Vec<_>>());

    // CSV for Excel, with the same rows.
    let csv = client
        .get(format!("{base}/api/audit?action=tap.issue"))
        .bearer_auth(&auditor)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.starts_with("time,id,phase,action,outcome,code"));

    // Each query is itself on the record, with the caller.
    let queries: Value = client
        .get(format!("{base}/api/audit?action=audit.query"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(queries["count"].as_u64().unwrap() >= 3);
    assert_eq!(queries["value"][0]["caller"]["name"], "SOC");

    // Bad parameters are explained.
    for bad in [
        "outcome=maybe",
        "from=yesterday",
        "pageSize=0",
        "colour=red",
        "from=2026-01-01&to=2026-03-01",
        "continuation=xyz",
    ] {
        let r = client
            .get(format!("{base}/api/audit?{bad}"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "bad_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_every_chain_valid() {
    let azurite = Azurite::start();
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let storage = storage(&azurite, &sim);
    storage.ensure_container().await.unwrap();
    // Four "instances", each with eight concurrent tasks writing five records.
    let trails: Vec<Arc<AuditTrail>> = (0..4).map(|_| Arc::new(AuditTrail::new(storage.clone()))).collect();
    let mut tasks = Vec::new();
    for trail in &trails {
        for t in 0..8 {
            let trail = trail.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..5 {
                    trail.record(event(t * 10 + i)).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let now = time::OffsetDateTime::now_utc();
    let report = trails[0]
        .verify(now - time::Duration::days(1), now + time::Duration::minutes(1), false)
        .await
        .unwrap();
    assert_eq!(report.first_mismatch, None);
    assert_eq!((report.chains, report.records), (4, 160));
    // Every line is whole JSON, in the chains and in the anchor log the 32 writers share.
    let c = container(&azurite, &sim);
    let mut pages = c.list_blobs(None).unwrap().into_pages();
    let (mut lines, mut anchors) = (0, 0);
    while let Some(page) = pages.try_next().await.unwrap() {
        for blob in page.into_model().unwrap().blob_items {
            let name = blob.name.unwrap();
            let counter = if name.starts_with("anchors/") {
                &mut anchors
            } else {
                &mut lines
            };
            let bytes = c
                .blob_client(&name)
                .download(None)
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                serde_json::from_slice::<Value>(line).expect("a whole record");
                *counter += 1;
            }
        }
    }
    assert_eq!((lines, anchors), (160, 160));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_record_is_caught_by_audit_verify() {
    let azurite = Azurite::start();
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let storage = storage(&azurite, &sim);
    storage.ensure_container().await.unwrap();
    let trail = AuditTrail::new(storage.clone());
    for n in 0..3 {
        trail.record(event(n)).await.unwrap();
    }
    // The CLI, as an administrator runs it: the real managed identity credential (against the
    // simulator's endpoint) and the default transport, trusting the test CA through SSL_CERT_FILE.
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), sim.seed().tenant_id.clone()),
        ("AUTH_AUDIENCE".into(), "api://mfa-recovery".into()),
        ("AzureWebJobsStorage__blobServiceUri".into(), azurite.blob_url()),
        ("AzureWebJobsStorage__queueServiceUri".into(), azurite.blob_url()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().to_owned()),
        ("SSL_CERT_FILE".into(), certs().ca.to_string_lossy().into_owned()),
    ];
    let verify = move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args(["audit", "verify"])
            .env_clear()
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let clean = tokio::task::spawn_blocking(verify.clone()).await.unwrap();
    let out = String::from_utf8_lossy(&clean.stdout).into_owned() + &String::from_utf8_lossy(&clean.stderr);
    assert!(clean.status.success(), "{out}");
    assert!(out.contains("verified 3 records in 1 chains"), "{out}");

    // Someone with write access to the container rewrites the chain with the ticket changed.
    let c = container(&azurite, &sim);
    let mut pages = c.list_blobs(None).unwrap().into_pages();
    let name = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap()
        .blob_items[0]
        .name
        .clone()
        .unwrap();
    let blob = c.blob_client(&name);
    let original = blob.download(None).await.unwrap().body.collect().await.unwrap();
    let edited = String::from_utf8(original.to_vec())
        .unwrap()
        .replace("INC0000001", "INC0009999");
    blob.delete(None).await.unwrap();
    let append = blob.append_blob_client();
    append.create(None).await.unwrap();
    append
        .append_block(
            RequestContent::from(edited.clone().into_bytes()),
            edited.len() as u64,
            None,
        )
        .await
        .unwrap();

    let tampered = tokio::task::spawn_blocking(verify).await.unwrap();
    let out = String::from_utf8_lossy(&tampered.stdout).into_owned();
    assert_eq!(tampered.status.code(), Some(1), "{out}");
    assert!(out.contains("MISMATCH") && out.contains("at line 2"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_audit_trail_cannot_be_written_nothing_happens_and_the_caller_gets_503() {
    let azurite = Azurite::start();
    let (base, sim) = spawn_app_on_azurite(&azurite).await;
    drop(azurite);
    let auditor = sim.issue_token(&TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    let r = reqwest::Client::new()
        .get(format!("{base}/api/audit"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "audit_unavailable");
    // A refusal is still a refusal when it cannot be recorded.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/users/x/tap"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_dev_file_store_keeps_the_same_format() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}/api/users/x/tap", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Recorded in aggregate within AUDIT_REFUSAL_SECONDS.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let auditor = app.token(&["Audit.Read"]);
    let body: Value = app
        .client
        .get(format!("{}/api/audit", app.base))
        .bearer_auth(auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"][0]["action"], "tap.issue");
    assert_eq!(body["value"][0]["prevHash"], mfa_recovery::audit::GENESIS);
}

/// The app on a tenant whose managed identity may read Entra's directory audit.
async fn spawn_with_entra_audit(grant: bool) -> (String, Simulator) {
    let mut seed: Value = serde_json::from_str(mfa_recovery_sim::seed::DEMO_TENANT).unwrap();
    // The demo tenant grants it (the stale-address check needs it); take it away to test without.
    if !grant {
        seed["managedIdentity"]["graphPermissions"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "Directory.Read.All");
    }
    let sim = Simulator::start(Seed::from_json(&seed.to_string()).unwrap(), "127.0.0.1:0")
        .await
        .unwrap();
    let settings = Settings::from_map(&test_settings(&sim)).unwrap();
    let options = HostOptions {
        azure: mfa_recovery::dev::sim_overrides(&sim),
        ..HostOptions::default()
    };
    let app = Application::build(settings, options).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    (base, sim)
}

async fn issue_tap_in_graph(sim: &Simulator, user: &str) {
    let token = sim.issue_token(&TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: vec!["UserAuthenticationMethod.ReadWrite.All".into()],
        ..Default::default()
    });
    let r = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/users/{user}/authentication/temporaryAccessPassMethods",
            sim.graph_endpoint()
        ))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn include_entra_adds_the_users_directory_audit_events() {
    let (base, sim) = spawn_with_entra_audit(true).await;
    issue_tap_in_graph(&sim, "alex.wilber@contoso.test").await;
    issue_tap_in_graph(&sim, "adele.vance@contoso.test").await;
    let auditor = sim.issue_token(&TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    let client = reqwest::Client::new();
    for user in ["alex.wilber@contoso.test", "b0000002-0000-4000-8000-000000000002"] {
        let body: Value = client
            .get(format!("{base}/api/audit"))
            .query(&[("includeEntra", "true"), ("user", user)])
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entra = body["entra"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(entra.len(), 1, "{user}: {body}");
        assert_eq!(entra[0]["activity"], "Admin registered security info");
        assert_eq!(
            entra[0]["resultReason"],
            "Admin registered temporary access pass method for user"
        );
    }
}

#[tokio::test]
async fn a_filter_value_with_quotes_cannot_change_the_odata_query() {
    let (base, sim) = spawn_with_entra_audit(true).await;
    issue_tap_in_graph(&sim, "alex.wilber@contoso.test").await;
    issue_tap_in_graph(&sim, "adele.vance@contoso.test").await;
    let auditor = sim.issue_token(&TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    // Unescaped, this would read "... eq 'nobody' or loggedByService eq 'Authentication Methods'"
    // and return every user's events.
    let injection = "nobody' or loggedByService eq 'Authentication Methods";
    let r = reqwest::Client::new()
        .get(format!("{base}/api/audit"))
        .query(&[("includeEntra", "true"), ("user", injection)])
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["entra"], json!([]), "{body}");
}

#[tokio::test]
async fn include_entra_explains_a_missing_permission_and_needs_a_user() {
    let (base, sim) = spawn_with_entra_audit(false).await;
    let auditor = sim.issue_token(&TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    let client = reqwest::Client::new();
    let r = client
        .get(format!(
            "{base}/api/audit?includeEntra=true&user=alex.wilber@contoso.test"
        ))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "entra_audit_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Directory.Read.All")
    );
    let r = client
        .get(format!("{base}/api/audit?includeEntra=true"))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// A byte appended to a chain by someone with write access to the container: the writer's next
/// conditional append fails. Recoveries must not stop (a new segment, saying why), and
/// `audit verify` must call the foreign byte tampering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_byte_at_a_chains_tail_stops_no_recovery_and_verify_reports_it() {
    let azurite = Azurite::start();
    let (base, sim) = spawn_app_on_azurite(&azurite).await;
    let client = reqwest::Client::new();
    let agent = sim.issue_token(&TokenRequest {
        roles: vec!["Recovery.Tap".into(), "Audit.Read".into()],
        ..Default::default()
    });
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let tap = |user: &'static str| {
        let (client, base, agent, now) = (client.clone(), base.clone(), agent.clone(), now.clone());
        async move {
            client
                .post(format!("{base}/api/users/{user}/tap"))
                .bearer_auth(&agent)
                .json(&json!({"delivery": {"channel": "email"}, "ticket": {"system": "jira", "id": "HELP-1"},
                    "reason": "lost phone", "verification": {"method": "callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now}}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(tap("alex.wilber@contoso.test").await, StatusCode::CREATED);
    // One byte appended to the writer's chain (not the anchors).
    let c = container(&azurite, &sim);
    let mut pages = c.list_blobs(None).unwrap().into_pages();
    let chain = pages
        .try_next()
        .await
        .unwrap()
        .unwrap()
        .into_model()
        .unwrap()
        .blob_items
        .into_iter()
        .filter_map(|b| b.name)
        .find(|n| !n.starts_with("anchors/"))
        .unwrap();
    c.blob_client(&chain)
        .append_blob_client()
        .append_block(RequestContent::from(b"x".to_vec()), 1, None)
        .await
        .unwrap();
    // The next recovery succeeds, in a new segment whose first record says why.
    assert_eq!(tap("lee.gu@contoso.test").await, StatusCode::CREATED);
    let records: Value = client
        .get(format!("{base}/api/audit?action=audit.segment"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let segment = &records["value"][0];
    assert_eq!(
        segment["details"]["previousChain"],
        json!(chain.trim_end_matches(".jsonl")),
        "{records}"
    );
    assert!(segment["chain"].as_str().unwrap().contains("-1-"), "{segment}");
    let issued: Value = client
        .get(format!("{base}/api/audit?action=tap.issue&outcome=succeeded"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issued["value"].as_array().unwrap().len(), 2, "{issued}");
    // audit verify reports the foreign byte.
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), sim.seed().tenant_id.clone()),
        ("AUTH_AUDIENCE".into(), "api://mfa-recovery".into()),
        ("AzureWebJobsStorage__blobServiceUri".into(), azurite.blob_url()),
        ("AzureWebJobsStorage__queueServiceUri".into(), azurite.blob_url()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().to_owned()),
        ("SSL_CERT_FILE".into(), certs().ca.to_string_lossy().into_owned()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args(["audit", "verify"])
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("MISMATCH") && text.contains("foreign bytes"), "{text}");
}
