//! The intake on Azure Storage (Azurite over https with Entra tokens, through azure_storage_blob
//! and azure_storage_queue), with the test playing the Functions host: it receives messages from
//! the `recovery-requests` queue, invokes `/recovery-worker` with the host's envelope, deletes a
//! message on success, makes it visible again on failure, and after five dequeues moves it to
//! `recovery-requests-poison` for `/recovery-poison`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::http::Transport;
use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use futures::future::join_all;
use mfa_recovery::azure::AzureOverrides;
use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery_sim::{Seed, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::azurite::{Azurite, certs};
use crate::helpers::*;
use crate::intake::{WRITE_BACK, now_rfc3339, tap_request};

/// The simulator's identity and vault, and a transport that trusts Azurite's test CA.
pub(crate) fn overrides(sim: &Simulator) -> AzureOverrides {
    let pem = std::fs::read(&certs().ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    AzureOverrides {
        credential: Some(Arc::new(mfa_recovery::dev::SimCredential::new(sim))),
        transport: Some(Transport::new(Arc::new(mfa_recovery::dev::VaultToSimulator::new(
            sim,
            Arc::new(client),
        )))),
    }
}

/// Storage settings for Azurite; the audit trail goes to Azurite too.
fn storage_vars(azurite: &Azurite) -> Vec<(String, String)> {
    vec![
        ("AzureWebJobsStorage__blobServiceUri".into(), azurite.blob_url()),
        ("AzureWebJobsStorage__queueServiceUri".into(), azurite.queue_url()),
    ]
}

fn queue_client(azurite: &Azurite, sim: &Simulator, name: &str) -> QueueClient {
    let o = overrides(sim);
    QueueClient::new(
        format!("{}/{name}", azurite.queue_url()).parse().unwrap(),
        Some(o.credential.unwrap()),
        Some(QueueClientOptions {
            client_options: azure_core::http::ClientOptions {
                transport: o.transport,
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .unwrap()
}

/// The function app on Azurite, and the test as its host.
struct Stack {
    app: TestApp,
    base: String,
    queue: QueueClient,
    poison: QueueClient,
    notices: QueueClient,
    _azurite: Azurite,
}

async fn spawn_stack(seed: Seed, extra: &[(&str, &str)]) -> Stack {
    let azurite = Azurite::start_with_queue();
    let sim = Simulator::start(seed, "127.0.0.1:0").await.unwrap();
    let mut vars = test_settings(&sim);
    vars.remove("AUDIT_DIR");
    vars.remove("REQUESTS_DIR");
    vars.extend(storage_vars(&azurite));
    for (k, v) in extra {
        vars.insert((*k).to_owned(), v.replace("{sim}", sim.base_url()));
    }
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
    let queue = queue_client(&azurite, &sim, "recovery-requests");
    let poison = queue_client(&azurite, &sim, "recovery-requests-poison");
    poison.create(None).await.unwrap();
    let notices = queue_client(&azurite, &sim, "recovery-notices");
    Stack {
        app: TestApp::attach(base.clone(), sim),
        base,
        queue,
        poison,
        notices,
        _azurite: azurite,
    }
}

/// The envelope a real host sends for a queue message (strings JSON-encoded again).
fn envelope(text: &str, id: &str, dequeue_count: i64) -> String {
    json!({
        "Data": {"message": Value::String(text.to_owned()).to_string()},
        "Metadata": {
            "DequeueCount": dequeue_count.to_string(),
            "Id": Value::String(id.to_owned()).to_string(),
            "PopReceipt": "\"AgAAAAMAAAAAAAAA\"",
            "sys": {"MethodName": "recovery-worker", "UtcNow": now_rfc3339(), "RandGuid": uuid::Uuid::new_v4()}
        }
    })
    .to_string()
}

async fn invoke(client: &reqwest::Client, base: &str, function: &str, body: String) -> Option<StatusCode> {
    client
        .post(format!("{base}/{function}"))
        .header("content-type", "application/json")
        .header("x-azure-functions-invocationid", uuid::Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

#[derive(Debug, Default)]
struct HostRun {
    invocations: usize,
    failures: usize,
    poisoned: usize,
    /// `notice-worker` invocations that completed.
    notices: usize,
}

impl Stack {
    /// Play the host until both queues stay empty.
    async fn run_host(&self) -> HostRun {
        let mut run = HostRun::default();
        let mut idle = 0;
        let deadline = Instant::now() + Duration::from_secs(240);
        while idle < 8 && Instant::now() < deadline {
            let options = QueueClientReceiveMessagesOptions {
                number_of_messages: Some(32),
                visibility_timeout: Some(120),
                ..Default::default()
            };
            let received = self.queue.receive_messages(Some(options)).await.unwrap();
            let messages = received.into_model().unwrap().items.unwrap_or_default();
            let notices = self.run_notices().await;
            run.notices += notices;
            if messages.is_empty() && notices == 0 {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            idle = 0;
            let client = reqwest::Client::new();
            let results = join_all(messages.iter().map(|m| {
                let body = envelope(
                    m.message_text.as_deref().unwrap(),
                    m.message_id.as_deref().unwrap(),
                    m.dequeue_count.unwrap(),
                );
                let client = client.clone();
                async move { invoke(&client, &self.base, "recovery-worker", body).await }
            }))
            .await;
            for (m, status) in messages.iter().zip(results) {
                run.invocations += 1;
                let (id, pop) = (m.message_id.as_deref().unwrap(), m.pop_receipt.as_deref().unwrap());
                if status.is_some_and(|s| s.is_success()) {
                    let _ = self.queue.delete_message(id, pop, None).await;
                    continue;
                }
                run.failures += 1;
                if m.dequeue_count.unwrap() >= 5 {
                    let text = m.message_text.clone();
                    let copy = QueueMessage { message_text: text };
                    self.poison.send_message(copy.try_into().unwrap(), None).await.unwrap();
                    let _ = self.queue.delete_message(id, pop, None).await;
                } else {
                    let _ = self.queue.update_message(id, pop, 0, None).await;
                }
            }
            // The poison queue, as its own function.
            let received = self.poison.receive_messages(None).await.unwrap();
            for m in received.into_model().unwrap().items.unwrap_or_default() {
                let body = envelope(m.message_text.as_deref().unwrap(), m.message_id.as_deref().unwrap(), 1);
                let status = invoke(&client, &self.base, "recovery-poison", body).await;
                assert!(status.is_some_and(|s| s.is_success()), "{status:?}");
                run.poisoned += 1;
                let _ = self
                    .poison
                    .delete_message(
                        m.message_id.as_deref().unwrap(),
                        m.pop_receipt.as_deref().unwrap(),
                        None,
                    )
                    .await;
            }
        }
        run
    }
}

impl Stack {
    /// Play the host for `recovery-notices` once: `notice-worker` for each message there, which
    /// is deleted when it completes and made visible again when it fails. The completed count.
    async fn run_notices(&self) -> usize {
        let received = match self.notices.receive_messages(None).await {
            Ok(r) => r,
            // Nothing was ever posted: the queue is made on first use.
            Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => return 0,
            Err(e) => panic!("{e}"),
        };
        let client = reqwest::Client::new();
        let mut done = 0;
        for m in received.into_model().unwrap().items.unwrap_or_default() {
            let body = envelope(
                m.message_text.as_deref().unwrap(),
                m.message_id.as_deref().unwrap(),
                m.dequeue_count.unwrap(),
            );
            let status = invoke(&client, &self.base, "notice-worker", body).await;
            let (id, pop) = (m.message_id.as_deref().unwrap(), m.pop_receipt.as_deref().unwrap());
            if status.is_some_and(|s| s.is_success()) {
                let _ = self.notices.delete_message(id, pop, None).await;
                done += 1;
            } else {
                let _ = self.notices.update_message(id, pop, 0, None).await;
            }
        }
        done
    }
}

/// Messages carrying a pass (the pass message's first line), across the outbox.
fn pass_messages(sim: &Simulator) -> Vec<mfa_recovery_sim::OutboxItem> {
    sim.outbox()
        .into_iter()
        .filter(|m| m.body.contains("Temporary Access Pass for "))
        .collect()
}

/// How many passes Graph created.
fn creates(sim: &Simulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/temporaryAccessPassMethods") && r.status == 201)
        .count()
}

fn jira_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_duplicate_webhooks_make_one_request_and_one_pass() {
    let stack = spawn_stack(
        Seed::demo(),
        &[(
            "WEBHOOK_SENDERS",
            r#"[{"name": "jira", "scheme": "jira", "secrets": ["webhook-jira"], "roles": ["Recovery.Request"]}]"#,
        )],
    )
    .await;
    let sim = &stack.app.sim;
    let secret = sim.secret("webhook-jira").unwrap();
    let body = json!({"issue": {"key": "HELP-500", "fields": {
        "summary": "lost phone", "customfield_10050": "alex.wilber@contoso.test",
        "customfield_10051": {"value": "tap"}, "customfield_10052": {"value": "email"},
        "customfield_10055": "video call", "customfield_10056": "agent@contoso.test", "customfield_10057": now_rfc3339(),
    }}})
    .to_string();
    let signature = jira_signature(&secret, &body);
    let client = reqwest::Client::new();
    let answers = join_all((0..50).map(|_| {
        client
            .post(format!("{}/api/requests", stack.base))
            .header("content-type", "application/json")
            .header("x-atlassian-webhook-identifier", "9a7b6c5d-delivery-1")
            .header("x-atlassian-webhook-retry", "1")
            .header("x-hub-signature", &signature)
            .body(body.clone())
            .send()
    }))
    .await;
    let mut statuses = HashMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for answer in answers {
        let r = answer.unwrap();
        *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
        ids.insert(
            r.json::<Value>().await.unwrap()["requestId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(statuses.get(&202), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&49), "{statuses:?}");
    assert_eq!(ids.len(), 1);
    let run = stack.run_host().await;
    assert!(run.invocations >= 1 && run.failures == 0, "{run:?}");
    let id = ids.first().unwrap();
    let done = stack.app.request_state(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(creates(sim), 1);
    assert_eq!(pass_messages(sim).len(), 1);
    // The pass's notices went through the outbox on Azure Storage (a blob each, its id on
    // `recovery-notices`) and `notice-worker`: Alex's mailbox and his manager.
    let noticed: Vec<_> = sim
        .outbox()
        .into_iter()
        .filter(|m| m.body.contains("A Temporary Access Pass was issued"))
        .flat_map(|m| m.to)
        .collect();
    assert_eq!(run.notices, noticed.len(), "{noticed:?}");
    assert!(noticed.len() >= 2, "{noticed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_twice_or_at_once_twice_acts_once() {
    let stack = spawn_stack(Seed::demo(), &[]).await;
    let (status, accepted) = stack
        .app
        .submit(&tap_request("alex.wilber@contoso.test", "INC0040001"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap();
    // The same message twice at the same moment, under two message ids (a duplicate send).
    let text = json!({"requestId": id}).to_string();
    let client = reqwest::Client::new();
    let both =
        join_all(["m-1", "m-2"].map(|m| invoke(&client, &stack.base, "recovery-worker", envelope(&text, m, 1)))).await;
    assert!(both.iter().all(|s| s.is_some_and(|s| s.is_success())), "{both:?}");
    // And the queued message delivered afterwards, plus a copy of it.
    let copy = QueueMessage {
        message_text: Some(text.clone()),
    };
    stack.queue.send_message(copy.try_into().unwrap(), None).await.unwrap();
    let run = stack.run_host().await;
    assert_eq!(run.invocations, 2, "{run:?}");
    let done = stack.app.request_state(id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(creates(&stack.app.sim), 1);
    assert_eq!(pass_messages(&stack.app.sim).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_end_failed_with_a_note_written_back() {
    let stack = spawn_stack(Seed::demo(), &WRITE_BACK).await;
    let sim = &stack.app.sim;
    let body = json!({
        "sys_id": "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5", "number": "INC0040002",
        "u_affected_user": "alex.wilber@contoso.test", "u_recovery_action": "tap",
        "u_delivery_channel": "email", "short_description": "lost phone",
        "u_verification_method": "video call", "u_verified_by": "agent@contoso.test",
        "u_verified_at": now_rfc3339(),
    });
    let (_, accepted) = stack.app.submit(&body).await;
    let id = accepted["requestId"].as_str().unwrap();
    // Graph fails every attempt.
    reqwest::Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&json!({"route": "/v1.0/users/**", "status": 500, "count": 1000}))
        .send()
        .await
        .unwrap();
    let run = stack.run_host().await;
    assert_eq!((run.invocations, run.failures, run.poisoned), (5, 5, 1), "{run:?}");
    let done = stack.app.request_state(id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["error"]["code"], "retries_exhausted");
    assert_eq!(done["attempts"], 5);
    assert_eq!(done["writeBack"]["state"], "done");
    let notes = sim.itsm();
    assert_eq!(notes.len(), 1);
    let note = notes[0].body["work_notes"].as_str().unwrap();
    assert!(note.contains("failed") && note.contains("retries_exhausted"), "{note}");
    assert_eq!(creates(sim), 0);
}

/// The demo tenant plus `n` plain users with an alternate email, for bursts.
fn seed_with_users(n: usize) -> Seed {
    let mut seed = Seed::demo();
    let template = seed
        .users
        .iter()
        .find(|u| u.user_principal_name == "alex.wilber@contoso.test")
        .unwrap()
        .clone();
    for i in 0..n {
        let mut u = template.clone();
        u.id = format!("c0000000-0000-4000-8000-{i:012}");
        u.user_principal_name = format!("user{i:03}@contoso.test");
        u.display_name = format!("User {i:03}");
        u.mail = Some(u.user_principal_name.clone());
        u.other_mails = vec![format!("user{i:03}@personal.example")];
        u.manager_id = None;
        u.methods.clear();
        // In the group the TAP policy includes.
        let scope = seed
            .groups
            .iter_mut()
            .find(|g| g.id == "a1b2c3d4-0001-4000-8000-000000000001")
            .unwrap();
        scope.members.push(u.id.clone());
        seed.users.push(u);
    }
    seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_throttling_during_a_burst_of_200_requests_ends_with_all_succeeded() {
    let stack = spawn_stack(seed_with_users(200), &[("TAP_MAX_PER_CALLER_PER_HOUR", "1000")]).await;
    let sim = &stack.app.sim;
    // Graph throttles: 40 TAP creates and 40 user reads answer 429 with Retry-After.
    for route in [
        "/v1.0/users/*/authentication/temporaryAccessPassMethods",
        "/v1.0/users/*",
    ] {
        reqwest::Client::new()
            .post(format!("{}/sim/faults", sim.base_url()))
            .json(&json!({"route": route, "status": 429, "retryAfter": 1, "count": 40}))
            .send()
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for chunk in (0..200).collect::<Vec<_>>().chunks(25) {
        let answers = join_all(chunk.iter().map(|i| {
            stack
                .app
                .submit_owned(tap_request(&format!("user{i:03}@contoso.test"), &format!("INC1{i:06}")))
        }))
        .await;
        for (status, v) in answers {
            assert_eq!(status, StatusCode::ACCEPTED, "{v}");
            ids.push(v["requestId"].as_str().unwrap().to_owned());
        }
    }
    let started = Instant::now();
    let run = stack.run_host().await;
    let took = started.elapsed();
    let mut states = HashMap::new();
    let mut sample = Value::Null;
    for id in &ids {
        let v = stack.app.request_state(id).await;
        if v["status"] != "succeeded" {
            sample = v.clone();
        }
        *states.entry(v["status"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    assert_eq!(states.get("succeeded"), Some(&200), "{states:?} {run:?} {sample}");
    let throttled: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.faulted && r.status == 429)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(throttled.len(), 80, "the throttle was hit: {throttled:?}");
    assert_eq!(creates(sim), 200);
    assert_eq!(pass_messages(sim).len(), 200);
    eprintln!("200 requests with 80 throttled Graph calls: {run:?} in {took:?}");
}

// ---- A worker killed at each step (the real binary, aborted at the step) ----

struct Worker {
    child: Child,
    port: u16,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the binary as a queue worker; its stdout and stderr (debug level) go to `log`.
fn start_worker(sim: &Simulator, azurite: &Azurite, crash_at: Option<&str>, log: &std::path::Path) -> Worker {
    start_worker_with(sim, azurite, crash_at, log, &[])
}

/// `start_worker` with settings added.
fn start_worker_with(
    sim: &Simulator,
    azurite: &Azurite,
    crash_at: Option<&str>,
    log: &std::path::Path,
    extra: &[(&str, &str)],
) -> Worker {
    let port = free_port();
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let seed = sim.seed();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"));
    command
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "worker")
        .env("AUTH_TENANT_ID", &seed.tenant_id)
        .env("AUTH_AUDIENCE", &seed.api.audience)
        .env("AUTH_AUTHORITY", sim.authority())
        .env("GRAPH_ENDPOINT", sim.graph_endpoint())
        .env("IDENTITY_ENDPOINT", sim.identity_endpoint())
        .env("IDENTITY_HEADER", sim.identity_header())
        .env("AZURE_CLIENT_ID", &seed.managed_identity.client_id)
        .env("MAIL_SENDER", "mfa-recovery@contoso.test")
        .env("SSL_CERT_FILE", &certs().ca)
        .env("RUST_LOG", "debug")
        .envs(storage_vars(azurite))
        .envs(extra.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    if let Some(step) = crash_at {
        command.env("MFA_RECOVERY_CRASH_AT", step);
    }
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the worker did not start");
        std::thread::sleep(Duration::from_millis(25));
    }
    Worker { child, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_at_each_step_finishes_on_retry_with_exactly_one_pass_delivered() {
    let azurite = Azurite::start_with_queue();
    // A user per step: the audit trail (and so the daily limit per user) outlives each step.
    let steps = [
        ("after_claim", "alex.wilber@contoso.test"),
        ("after_tap_created", "grady.archie@contoso.test"),
        // Graph created the pass and the worker died before its id was saved: the retry finds
        // and deletes that orphan, then issues and delivers one pass.
        ("tap_created_unsaved", "lee.gu@contoso.test"),
        ("after_delivery", "adele.vance@contoso.test"),
    ];
    for (n, (step, user)) in steps.iter().enumerate() {
        let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
        let queue = queue_client(&azurite, &sim, "recovery-requests");
        let log = temp_dir("worker-log").join("worker.log");
        let mut first = start_worker(&sim, &azurite, Some(step), &log);
        let mut app = TestApp::attach(format!("http://127.0.0.1:{}", first.port), sim);
        let (status, accepted) = app.submit(&tap_request(user, &format!("INC00500{n}"))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{step}: {accepted}");
        let id = accepted["requestId"].as_str().unwrap().to_owned();
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(1),
            visibility_timeout: Some(1),
            ..Default::default()
        };
        let received = queue.receive_messages(Some(options)).await.unwrap();
        let m = received.into_model().unwrap().items.unwrap().remove(0);
        let (text, message_id) = (m.message_text.unwrap(), m.message_id.unwrap());
        // The first delivery: the worker dies at the step (no answer reaches the host).
        let client = reqwest::Client::new();
        let answer = invoke(&client, &app.base, "recovery-worker", envelope(&text, &message_id, 1)).await;
        assert!(answer.is_none(), "{step}: the worker answered {answer:?}");
        let exit = first.child.wait().unwrap();
        assert!(!exit.success(), "{step}: {exit:?}");
        // The host's retry of the same message reaches a new instance.
        let second = start_worker(&app.sim, &azurite, None, &log);
        app.base = format!("http://127.0.0.1:{}", second.port);
        let state = app.request_state(&id).await;
        assert_eq!(state["status"], "running", "{step}: {state}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let received = queue.receive_messages(None).await.unwrap();
        let m = received.into_model().unwrap().items.unwrap().remove(0);
        assert_eq!(m.dequeue_count, Some(2));
        let answer = invoke(&client, &app.base, "recovery-worker", envelope(&text, &message_id, 2)).await;
        assert_eq!(answer, Some(StatusCode::OK), "{step}");
        let done = app.request_state(&id).await;
        assert_eq!(done["status"], "succeeded", "{step}: {done}");
        // Exactly one pass delivered, and it is the one the user holds.
        let delivered = pass_messages(&app.sim);
        assert_eq!(delivered.len(), 1, "{step}: {delivered:?}");
        let active = app.passes().await;
        assert_eq!(active.len(), 1, "{step}");
        assert!(
            delivered[0].body.contains(&active[0]),
            "{step}: the delivered pass is the active one"
        );
        // Neither worker logged it, even at debug level.
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("queued request"), "{step}: the log was captured");
        assert!(!logged.contains(&active[0]), "{step}: the pass reached a log");
        let expected_creates = if matches!(*step, "after_tap_created" | "tap_created_unsaved") {
            2
        } else {
            1
        };
        assert_eq!(creates(&app.sim), expected_creates, "{step}");
        drop(second);
        let _ = queue
            .delete_message(&message_id, m.pop_receipt.as_deref().unwrap(), None)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_the_provider_was_called_never_sends_a_second_pass() {
    let azurite = Azurite::start_with_queue();
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let log = temp_dir("worker-log").join("worker.log");
    let mut first = start_worker(&sim, &azurite, Some("while_delivering"), &log);
    let mut app = TestApp::attach(format!("http://127.0.0.1:{}", first.port), sim);
    let (_, accepted) = app.submit(&tap_request("alex.wilber@contoso.test", "INC0060001")).await;
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let text = json!({"requestId": id}).to_string();
    let client = reqwest::Client::new();
    assert!(
        invoke(&client, &app.base, "recovery-worker", envelope(&text, "m-9", 1))
            .await
            .is_none()
    );
    assert!(!first.child.wait().unwrap().success());
    let second = start_worker(&app.sim, &azurite, None, &log);
    app.base = format!("http://127.0.0.1:{}", second.port);
    let answer = invoke(&client, &app.base, "recovery-worker", envelope(&text, "m-9", 2)).await;
    assert_eq!(answer, Some(StatusCode::OK));
    let done = app.request_state(&id).await;
    // Whether the provider sent it is unknown: not sent again, the pass kept, the caller told.
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["error"]["code"], "delivery_unconfirmed");
    assert!(
        done["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("submit a new request")
    );
    assert_eq!(creates(&app.sim), 1);
    assert_eq!(app.passes().await.len(), 1);
    assert!(
        pass_messages(&app.sim).is_empty(),
        "the simulated provider was never reached"
    );
}

/// A queued reset with a pass: the pass is created beside the removals and marked as being sent
/// only once they are done. A worker killed while the pass waits (its id saved) leaves a retry
/// that deletes that pass, finishes the removals and sends one pass; a worker killed once the
/// provider is being called had finished the removals (the retry finishes the pass alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_worker_killed_while_its_pass_waits_finishes_the_removals() {
    let azurite = Azurite::start_with_queue();
    for (n, step) in ["after_tap_created", "while_delivering"].iter().enumerate() {
        let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
        // Beta's batches take their time (the reads, then the removals' chain): the pass is
        // created and saved well before the chain has ended.
        reqwest::Client::new()
            .post(format!("{}/sim/faults", sim.base_url()))
            .json(&json!({"route": "/beta/$batch", "method": "POST", "latencyMs": 700, "count": 2}))
            .send()
            .await
            .unwrap();
        let log = temp_dir("worker-log").join("worker.log");
        let mut first = start_worker(&sim, &azurite, Some(step), &log);
        let mut app = TestApp::attach(format!("http://127.0.0.1:{}", first.port), sim);
        let mut body = tap_request("adele.vance@contoso.test", &format!("INC00700{n}"));
        body["action"] = json!("reset+tap");
        body["tap"] = json!({"delivery": {"channel": "email"}});
        body.as_object_mut().unwrap().remove("delivery");
        let (status, accepted) = app.submit(&body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{step}: {accepted}");
        let id = accepted["requestId"].as_str().unwrap().to_owned();
        let text = json!({"requestId": id}).to_string();
        let client = reqwest::Client::new();
        let message = format!("m-reset-{n}");
        let answer = invoke(&client, &app.base, "recovery-worker", envelope(&text, &message, 1)).await;
        assert!(answer.is_none(), "{step}: the worker answered {answer:?}");
        assert!(!first.child.wait().unwrap().success(), "{step}");
        let second = start_worker(&app.sim, &azurite, None, &log);
        app.base = format!("http://127.0.0.1:{}", second.port);
        let answer = invoke(&client, &app.base, "recovery-worker", envelope(&text, &message, 2)).await;
        assert_eq!(answer, Some(StatusCode::OK), "{step}");
        let done = app.request_state(&id).await;
        let left = app.methods_of("adele.vance@contoso.test").await;
        let kinds: Vec<&str> = left
            .iter()
            .map(String::as_str)
            .filter(|t| ["phone", "microsoftAuthenticator"].contains(t))
            .collect();
        assert_eq!(
            kinds,
            Vec::<&str>::new(),
            "{step}: every planned removal is done: {done}"
        );
        if *step == "after_tap_created" {
            assert_eq!(done["status"], "succeeded", "{step}: {done}");
            assert_eq!(
                creates(&app.sim),
                2,
                "{step}: the waiting pass was deleted, one more made"
            );
            assert_eq!(pass_messages(&app.sim).len(), 1, "{step}");
            assert_eq!(app.passes().await.len(), 1, "{step}");
        } else {
            // Whether the provider sent it is unknown: not sent again, as for any pass.
            assert_eq!(
                done["result"]["tap"]["error"]["code"], "delivery_unconfirmed",
                "{step}: {done}"
            );
            assert_eq!(creates(&app.sim), 1, "{step}");
            // What the first attempt's removals did was kept before the pass went out, and the
            // retry reports it (it never removes again).
            let removed: Vec<&str> = done["result"]["removed"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["type"].as_str())
                .collect();
            assert_eq!(removed, ["phone", "phone", "microsoftAuthenticator"], "{step}: {done}");
            assert_eq!(done["result"]["resumed"], true, "{step}: {done}");
        }
        drop(second);
    }
}

// ---- The load run (benches/load.sh): not part of the test command ----

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// 2,000 intake requests (LOAD_REQUESTS) from 50 concurrent callers over Azurite, about 20% of
/// Graph calls answered 429 or 503, the test playing the host, and the worker (the real binary)
/// killed mid-run and replaced. Every request must end succeeded (or refused with a documented
/// code), with exactly one pass per succeeded request. Prints p50/p99 intake latency and the
/// binaries' peak memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load run: benches/load.sh"]
async fn load_run() {
    let requests: usize = std::env::var("LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let callers = 50usize;
    let users = requests / 2;
    let azurite = Azurite::start_with_queue();
    let sim = Simulator::start(seed_with_users(users), "127.0.0.1:0").await.unwrap();
    for status in [429, 503] {
        reqwest::Client::new()
            .post(format!("{}/sim/faults", sim.base_url()))
            .json(&json!({"route": "/v1.0/**", "status": status, "retryAfter": 1, "every": 10, "count": 100_000_000}))
            .send()
            .await
            .unwrap();
    }
    let queue = queue_client(&azurite, &sim, "recovery-requests");
    let _ = queue.create(None).await;
    let poison = queue_client(&azurite, &sim, "recovery-requests-poison");
    poison.create(None).await.unwrap();
    let log = temp_dir("load-log").join("worker.log");
    let extra = [("TAP_MAX_PER_CALLER_PER_HOUR", "10000"), ("RUST_LOG", "warn")];
    let first = start_worker_with(&sim, &azurite, None, &log, &extra);
    let base = Arc::new(std::sync::Mutex::new(format!("http://127.0.0.1:{}", first.port)));
    let first_pid = first.child.id();
    let workers = Arc::new(std::sync::Mutex::new(vec![first]));
    let started = Instant::now();

    // The callers: 50 identities, each submitting its share at once after the last answer.
    let submitted = Arc::new(std::sync::Mutex::new(Vec::<(String, f64)>::new()));
    let mut tasks = Vec::new();
    for c in 0..callers {
        let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec!["Recovery.Request".into()],
            object_id: Some(format!("a0000000-0000-4000-8000-{c:012}")),
            ..Default::default()
        });
        let (base, submitted) = (base.clone(), submitted.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in (c..requests).step_by(callers) {
                let user = format!("user{:03}@contoso.test", n % users);
                let body = tap_request(&user, &format!("LOAD{n:06}"));
                loop {
                    let url = format!("{}/api/requests", base.lock().unwrap().clone());
                    let t = Instant::now();
                    match client.post(url).bearer_auth(&token).json(&body).send().await {
                        Ok(r) if r.status() == StatusCode::ACCEPTED => {
                            let v: Value = r.json().await.unwrap();
                            let ms = t.elapsed().as_secs_f64() * 1000.0;
                            submitted
                                .lock()
                                .unwrap()
                                .push((v["requestId"].as_str().unwrap().to_owned(), ms));
                            break;
                        }
                        // The worker being replaced, or storage busy: the sender retries.
                        _ => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
            }
        }));
    }

    // The host: runs the queue against whichever worker is up; replaces it halfway through.
    let (mut invocations, mut failures, mut poisoned, mut killed) = (0usize, 0usize, 0usize, false);
    let mut rss_first = 0.0;
    let client = reqwest::Client::new();
    let mut idle = 0;
    while idle < 20 {
        if !killed && invocations >= requests / 2 {
            // Kill the worker mid-run (SIGKILL: no graceful end) and start another.
            let mut w = workers.lock().unwrap();
            rss_first = peak_rss_mib(first_pid);
            let _ = w[0].child.kill();
            let next = start_worker_with(&sim, &azurite, None, &log, &extra);
            *base.lock().unwrap() = format!("http://127.0.0.1:{}", next.port);
            w.push(next);
            killed = true;
        }
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(32),
            visibility_timeout: Some(60),
            ..Default::default()
        };
        let messages = queue
            .receive_messages(Some(options))
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .items
            .unwrap_or_default();
        let all_in = submitted.lock().unwrap().len() == requests;
        if messages.is_empty() {
            idle = if all_in { idle + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        idle = 0;
        let worker = base.lock().unwrap().clone();
        let results = join_all(messages.iter().map(|m| {
            let body = envelope(
                m.message_text.as_deref().unwrap(),
                m.message_id.as_deref().unwrap(),
                m.dequeue_count.unwrap(),
            );
            let (client, worker) = (client.clone(), worker.clone());
            async move { invoke(&client, &worker, "recovery-worker", body).await }
        }))
        .await;
        for (m, status) in messages.iter().zip(results) {
            invocations += 1;
            let (id, pop) = (m.message_id.as_deref().unwrap(), m.pop_receipt.as_deref().unwrap());
            if status.is_some_and(|s| s.is_success()) {
                let _ = queue.delete_message(id, pop, None).await;
                continue;
            }
            failures += 1;
            if m.dequeue_count.unwrap() >= 5 {
                let copy = QueueMessage {
                    message_text: m.message_text.clone(),
                };
                poison.send_message(copy.try_into().unwrap(), None).await.unwrap();
                let _ = queue.delete_message(id, pop, None).await;
                let body = envelope(m.message_text.as_deref().unwrap(), id, 1);
                let _ = invoke(&client, &worker, "recovery-poison", body).await;
                poisoned += 1;
            } else {
                let _ = queue.update_message(id, pop, 1, None).await;
            }
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();

    // Every request's end, read as an auditor.
    let auditor = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        roles: vec!["Audit.Read".into()],
        ..Default::default()
    });
    let worker = base.lock().unwrap().clone();
    let submitted = submitted.lock().unwrap().clone();
    let mut states: HashMap<String, usize> = HashMap::new();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for (id, _) in &submitted {
        let v: Value = client
            .get(format!("{worker}/api/requests/{id}"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = v["status"].as_str().unwrap_or("?").to_owned();
        if state != "succeeded" {
            let code = v["result"]["error"]["code"].as_str().unwrap_or("-").to_owned();
            *codes.entry(format!("{state}:{code}")).or_default() += 1;
        }
        *states.entry(state).or_default() += 1;
    }
    let passes = pass_messages(&sim);
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for p in &passes {
        *per_user.entry(p.to.join(",")).or_default() += 1;
    }
    let mut latencies: Vec<f64> = submitted.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let faulted = sim.requests().iter().filter(|r| r.faulted).count();
    let graph_calls = sim.requests().iter().filter(|r| r.path.starts_with("/v1.0/")).count();
    let second_pid = workers.lock().unwrap()[1].child.id();
    eprintln!(
        "LOAD requests={requests} callers={callers} took={:.1}s states={states:?} not_succeeded={codes:?} \
         passes={} graph_calls={graph_calls} faulted={faulted} ({:.1}%) invocations={invocations} failed_invocations={failures} \
         poisoned={poisoned} intake_p50_ms={:.1} intake_p99_ms={:.1} peak_rss_mib_worker1={:.1} peak_rss_mib_worker2={:.1}",
        took.as_secs_f64(),
        passes.len(),
        faulted as f64 * 100.0 / graph_calls.max(1) as f64,
        pct(0.50),
        pct(0.99),
        rss_first,
        peak_rss_mib(second_pid),
    );
    assert_eq!(submitted.len(), requests);
    let succeeded = states.get("succeeded").copied().unwrap_or(0);
    assert_eq!(passes.len(), succeeded, "exactly one pass per succeeded request");
    assert!(per_user.values().all(|n| *n <= 2), "at most two passes per user");
}

/// A request waiting for an approver comes back when its wait is over: the message is put with a
/// visibility timeout (Put Message `visibilitytimeout`) and cannot be received before.
#[tokio::test]
async fn a_delayed_message_stays_invisible_until_its_time() {
    use mfa_recovery::storage::queue::{RequestQueue, StorageQueue};
    let azurite = Azurite::start_with_queue();
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let o = overrides(&sim);
    let queue = StorageQueue::new(
        &azurite.queue_url().parse().unwrap(),
        "approvals-test",
        o.credential.clone().unwrap(),
        o.transport.clone(),
    )
    .unwrap();
    let id = uuid::Uuid::new_v4();
    queue.send_after(id, Duration::from_secs(3)).await.unwrap();
    let client = queue_client(&azurite, &sim, "approvals-test");
    let receive = || async {
        client
            .receive_messages(None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .items
            .unwrap_or_default()
    };
    assert!(receive().await.is_empty(), "visible before its time");
    let start = Instant::now();
    let message = loop {
        if let Some(m) = receive().await.into_iter().next() {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never became visible");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(start.elapsed() >= Duration::from_secs(1));
    let text: Value = serde_json::from_str(message.message_text.as_deref().unwrap()).unwrap();
    assert_eq!(text["requestId"], json!(id));
}

/// A request a ticket system queued shows among the user's open requests (so an agent in the
/// console does not open a second one) until the worker finishes it; then it leaves the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_request_is_an_open_request_of_its_user_until_it_is_done() {
    let stack = spawn_stack(Seed::demo(), &[]).await;
    let (status, accepted) = stack
        .app
        .submit(&tap_request("alex.wilber@contoso.test", "INC0040077"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let id = accepted["requestId"].as_str().unwrap().to_owned();
    let look = || async {
        let r = stack
            .app
            .client
            .get(format!("{}/api/users/alex.wilber@contoso.test", stack.base))
            .bearer_auth(stack.app.token(&["Recovery.Tap"]))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()
    };
    let before = look().await;
    assert_eq!(before["openRequests"][0]["requestId"], id.as_str(), "{before}");
    assert_eq!(before["openRequests"][0]["action"], "tap");
    let run = stack.run_host().await;
    assert!(run.invocations >= 1, "{run:?}");
    assert_eq!(stack.app.request_state(&id).await["status"], "succeeded");
    let after = look().await;
    assert_eq!(after["openRequests"], json!([]), "{after}");
}

/// Fifty intakes at once on Azure Storage (Azurite): each lands among the open requests (its own
/// entry, no shared document to contend for) and shows in its user's look-up; once the worker has
/// run them all, none is open any more and their entries are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_intakes_all_land_among_the_open_requests_and_leave_them_when_done() {
    let stack = spawn_stack(seed_with_users(50), &[("TAP_MAX_PER_CALLER_PER_HOUR", "1000")]).await;
    let app = &stack.app;
    let submitted = join_all((0..50).map(|i| async move {
        let user = format!("user{i:03}@contoso.test");
        let (status, accepted) = app.submit(&tap_request(&user, &format!("INC00{i:05}"))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        (user, accepted["requestId"].as_str().unwrap().to_owned())
    }))
    .await;
    let look = |user: String| {
        let stack = &stack;
        async move {
            let r = stack
                .app
                .client
                .get(format!("{}/api/users/{user}", stack.base))
                .bearer_auth(stack.app.token(&["Recovery.Tap"]))
                .send()
                .await
                .unwrap();
            let v = r.json::<Value>().await.unwrap();
            v["openRequests"]
                .as_array()
                .unwrap_or_else(|| panic!("{v}"))
                .iter()
                .map(|o| o["requestId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    use futures::StreamExt;
    let open: Vec<Vec<String>> = futures::stream::iter(submitted.iter().map(|(u, _)| look(u.clone())))
        .buffered(8)
        .collect()
        .await;
    for ((user, id), open) in submitted.iter().zip(&open) {
        assert_eq!(open, &vec![id.clone()], "{user}'s open requests");
    }
    let run = stack.run_host().await;
    assert_eq!(run.failures, 0, "{run:?}");
    for (_, id) in &submitted {
        assert_eq!(stack.app.request_state(id).await["status"], "succeeded", "{id}");
    }
    let open: Vec<Vec<String>> = futures::stream::iter(submitted.iter().map(|(u, _)| look(u.clone())))
        .buffered(8)
        .collect()
        .await;
    assert!(open.iter().all(Vec::is_empty), "{open:?}");
    // The entries themselves are gone (deleted as each request finished), not only hidden.
    let blobs = blob_names(&stack, "recovery-requests", "open/").await;
    assert!(blobs.is_empty(), "{blobs:?}");
}

/// The names under `prefix` in a container of the stack's Azurite.
async fn blob_names(stack: &Stack, container: &str, prefix: &str) -> Vec<String> {
    use azure_storage_blob::models::BlobContainerClientListBlobsOptions;
    use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
    use futures::TryStreamExt;
    let o = overrides(&stack.app.sim);
    let client = BlobContainerClient::new(
        format!("{}/{container}", stack._azurite.blob_url()).parse().unwrap(),
        o.credential,
        Some(BlobContainerClientOptions {
            client_options: azure_core::http::ClientOptions {
                transport: o.transport,
                ..Default::default()
            },
            ..Default::default()
        }),
    )
    .unwrap();
    let options = BlobContainerClientListBlobsOptions {
        prefix: Some(prefix.to_owned()),
        ..Default::default()
    };
    let mut pages = client.list_blobs(Some(options)).unwrap().into_pages();
    let mut names = Vec::new();
    while let Some(page) = pages.try_next().await.unwrap() {
        names.extend(page.into_model().unwrap().blob_items.into_iter().filter_map(|b| b.name));
    }
    names
}
