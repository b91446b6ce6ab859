//! `spawn_app()`: the simulated tenant and the function app, both on free ports, in-process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use mfa_recovery::config::Settings;
use mfa_recovery::host::{Application, HostOptions};
use mfa_recovery_sim::{Seed, Simulator};
use reqwest::{Client, Response};
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub sim: Simulator,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    /// The settings it was started with.
    vars: HashMap<String, String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        record_graph_requests(&self.sim);
    }
}

/// A JSON value with every string, number and boolean blanked: its shape and property names, no
/// data (a simulated pass never lands on disk).
fn keys_only(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let keep = k.ends_with("@odata.type") || k == "@odata.type";
                    (k.clone(), if keep { v.clone() } else { keys_only(v) })
                })
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(keys_only).collect()),
        _ => serde_json::Value::Null,
    }
}

/// The Graph requests the product sent in this test, one JSON line each
/// (`target/graph-requests/<uuid>.jsonl`): `cargo xtask graph-requests` holds every one to
/// Microsoft's published schema after the tests (scripts/test).
pub fn record_graph_requests(sim: &Simulator) {
    let lines: String = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/"))
        .map(|r| {
            format!(
                "{}\n",
                serde_json::json!({"method": r.method, "path": r.path, "query": r.query, "status": r.status,
                    "response": r.response.as_ref().map(keys_only)})
            )
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    let dir = repo_path("target/graph-requests");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{}.jsonl", uuid::Uuid::new_v4())), lines);
}

/// The settings a test app runs with: every endpoint on the simulator, port 0.
pub fn test_settings(sim: &Simulator) -> HashMap<String, String> {
    let seed = sim.seed();
    [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_owned()),
        ("GRAPH_ENDPOINT", sim.graph_endpoint()),
        ("AUTH_TENANT_ID", seed.tenant_id.clone()),
        ("AUTH_AUDIENCE", seed.api.audience.clone()),
        ("AUTH_AUTHORITY", sim.authority()),
        ("KEY_VAULT_URI", sim.key_vault_uri()),
        ("AZURE_CLIENT_ID", seed.managed_identity.client_id.clone()),
        ("AUDIT_DIR", temp_dir("audit").to_string_lossy().into_owned()),
        ("REQUESTS_DIR", temp_dir("requests").to_string_lossy().into_owned()),
        ("SWEEP_DIR", temp_dir("sweeps").to_string_lossy().into_owned()),
        ("MAIL_SENDER", "mfa-recovery@contoso.test".to_owned()),
        // Unauthenticated refusals are recorded in aggregate; each second, so tests see them soon.
        ("AUDIT_REFUSAL_SECONDS", "1".to_owned()),
        ("ACS_ENDPOINT", format!("{}/acs", sim.base_url())),
        ("ACS_ACCESS_KEY_SECRET", "acs-access-key".to_owned()),
        ("ACS_SMS_FROM", "+18005550199".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// `spawn_app` with settings added or replaced.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.expect("simulator");
    let mut vars = test_settings(&sim);
    // `{sim}` in a value stands for the simulator's base URL.
    for (k, v) in extra {
        vars.insert((*k).to_owned(), v.replace("{sim}", sim.base_url()));
    }
    let settings = Settings::from_map(&vars).expect("settings");
    let vars_kept = vars.clone();
    let app = Application::build(
        settings,
        HostOptions {
            admin_api: true,
            azure: mfa_recovery::dev::sim_overrides(&sim),
            ..HostOptions::default()
        },
    )
    .await
    .expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        sim,
        client: Client::new(),
        stop: Some(stop),
        vars: vars_kept,
    }
}

pub const ALL_ROLES: [&str; 5] = [
    "Recovery.Tap",
    "Recovery.Reset",
    "Recovery.Request",
    "Audit.Read",
    "Recovery.Approve",
];

impl TestApp {
    /// A handle on an app started elsewhere (another process, or a custom set-up).
    pub fn attach(base: String, sim: Simulator) -> TestApp {
        TestApp {
            base,
            sim,
            client: Client::new(),
            stop: None,
            vars: HashMap::new(),
        }
    }

    /// A setting the app was started with (empty when attached).
    pub fn settings_value(&self, key: &str) -> String {
        self.vars.get(key).cloned().unwrap_or_default()
    }

    /// What the simulated providers were sent, once the outbox has sent every notice it holds
    /// (its records in `REQUESTS_DIR/notices` gone; at most 30 s).
    pub async fn outbox(&self) -> Vec<mfa_recovery_sim::OutboxItem> {
        let dir = std::path::Path::new(&self.settings_value("REQUESTS_DIR")).join("notices");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.sim.outbox()
    }

    /// A caller token from the simulated tenant with `roles`.
    pub fn token(&self, roles: &[&str]) -> String {
        self.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        })
    }

    /// The audit records of `action` (every record when `None`), read through the API as an
    /// auditor.
    pub async fn audit_of(&self, action: Option<&str>) -> Vec<Value> {
        let filter = action.map(|a| format!("action={a}&")).unwrap_or_default();
        let v: Value = self
            .client
            .get(format!("{}/api/audit?{filter}pageSize=1000", self.base))
            .bearer_auth(self.token(&["Audit.Read"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"].as_array().unwrap().clone()
    }

    /// Every change the app asked Microsoft Graph for (method and path).
    pub fn graph_writes(&self) -> Vec<String> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/"))
            .filter(|r| r.method != "GET" && !r.path.ends_with("/$batch"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// `POST /{function}` as the host sends an invocation.
    pub async fn invoke(&self, function: &str, envelope: &str, invocation_id: &str) -> Response {
        self.client
            .post(format!("{}/{function}", self.base))
            .header("content-type", "application/json")
            .header("x-azure-functions-invocationid", invocation_id)
            .header("x-azure-functions-hostversion", "4.1036.1.23224")
            .header("user-agent", "Azure-Functions-Host/4.1036.1.23224")
            .body(envelope.to_owned())
            .send()
            .await
            .expect("request")
    }
}

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A fixture from `tests/fixtures/functions/`, verbatim.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("tests/fixtures/functions/{name}"))).expect("fixture")
}

pub fn read_json(relative: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_path(relative)).expect(relative)).expect(relative)
}

/// A queue envelope exactly as a real host builds it for `message` (double-encoded strings).
pub fn host_queue_envelope(binding: &str, message: &str) -> String {
    let encoded = Value::String(message.to_owned()).to_string();
    serde_json::json!({
        "Data": { binding: encoded },
        "Metadata": {
            "DequeueCount": "1",
            "ExpirationTime": "2026-12-05T06:00:06+00:00",
            "Id": "\"a0004923-f050-417a-9742-6d7c7b984134\"",
            "InsertionTime": "2026-11-28T06:00:06+00:00",
            "NextVisibleTime": "2026-11-28T06:10:18+00:00",
            "PopReceipt": "\"AgAAAAMAAAAAAAAA8d5gQex+2AE=\"",
            "sys": {"MethodName": "recovery-worker", "UtcNow": "2026-11-28T06:00:18.1974545Z", "RandGuid": "d9ba2785-ee1a-4260-a83b-f57cb54b969e"}
        }
    })
    .to_string()
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mfa-recovery-test-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
