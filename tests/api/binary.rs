//! The built `mfa-recovery` binary, started the way the Functions host starts it: no arguments,
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and the app settings in the environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const TENANT: &str = "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10";

struct Running {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Start the binary as a host would, with `env` added, and wait until it accepts connections.
fn start(env: &[(&str, &str)]) -> Running {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"));
    command
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "5b6f3e2a-worker")
        .env("FUNCTIONS_APP_ROOT_PATH", repo_path(""))
        .env("AUTH_TENANT_ID", TENANT)
        .env("AUTH_AUDIENCE", "api://mfa-recovery")
        .env("AUDIT_DIR", temp_dir("binary-audit"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary starts");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    // The host's readiness probe: poll until a connection is accepted.
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the handler did not start: {:?}",
            stderr.lock().unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the handler exited: {:?}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    Running {
        child,
        port,
        stdout,
        stderr,
    }
}

impl Running {
    fn sigterm(&self) {
        sigterm(self.child.id());
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(Instant::now() < deadline, "the handler did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Send SIGTERM, as the host and the platform do on shutdown.
#[allow(unsafe_code)] // libc::kill; see SAFETY below.
pub fn sigterm(pid: u32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill failed");
}

/// A whole HTTP/1.1 exchange on a fresh connection; returns the status and the body.
fn http(port: u16, method: &str, path: &str, invocation_id: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let id = invocation_id
        .map(|i| format!("X-Azure-Functions-InvocationId: {i}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{id}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(stream)
}

fn read_response(mut stream: TcpStream) -> (u16, String) {
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn under_a_host_every_log_line_of_an_invocation_carries_its_invocation_id() {
    let mut app = start(&[]);
    let capture = fixture("queue-trigger.request.json");
    let request = host_queue_envelope("message", r#"{"requestId":"7d3c2b1a-0000-4000-8000-000000000001"}"#);
    let secret_payload = host_queue_envelope("message", r#"{"pass":"S3cret-Payload-7781"}"#);
    assert_eq!(
        http(
            app.port,
            "POST",
            "/recovery-worker",
            Some("11111111-aaaa-4bbb-8ccc-000000000001"),
            &capture
        )
        .0,
        200
    );
    assert_eq!(
        http(
            app.port,
            "POST",
            "/recovery-worker",
            Some("11111111-aaaa-4bbb-8ccc-000000000002"),
            &request
        )
        .0,
        // No storage configured: the invocation fails so the host keeps the message.
        503
    );
    assert_eq!(
        http(
            app.port,
            "POST",
            "/recovery-worker",
            Some("11111111-aaaa-4bbb-8ccc-000000000003"),
            &secret_payload
        )
        .0,
        200
    );
    assert_eq!(
        http(
            app.port,
            "GET",
            "/api/health",
            Some("11111111-aaaa-4bbb-8ccc-000000000004"),
            ""
        )
        .0,
        200
    );
    app.sigterm();
    assert!(app.wait().success());

    let lines = app.stdout.lock().unwrap().clone();
    assert!(!lines.is_empty());
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect();
    // Invocation 2 also logs why it fails (no storage for the intake).
    for (i, expected_lines) in [(1, 2), (2, 3), (3, 2), (4, 1)] {
        let id = format!("11111111-aaaa-4bbb-8ccc-00000000000{i}");
        let of_invocation: Vec<&Value> = records
            .iter()
            .filter(|r| r["span"]["invocation_id"] == id.as_str())
            .collect();
        assert_eq!(of_invocation.len(), expected_lines, "invocation {i}: {records:#?}");
    }
    // Every line written while serving an invocation belongs to one.
    for r in &records {
        let message = r["message"].as_str().unwrap_or_default();
        if ["invocation finished", "queue message received", "message discarded"]
            .iter()
            .any(|m| message.starts_with(m))
        {
            assert!(r["span"]["invocation_id"].is_string(), "{r}");
        }
    }
    let queue_line = records
        .iter()
        .find(|r| r["message"] == "queue message received")
        .unwrap();
    assert_eq!(queue_line["dequeue_count"], 1, "the string DequeueCount was read");
    assert_eq!(queue_line["message_id"], "a0004923-f050-417a-9742-6d7c7b984134");
    // Payloads never reach the log.
    let all = lines.join("\n") + &app.stderr.lock().unwrap().join("\n");
    assert!(!all.contains("S3cret-Payload-7781"));
    assert!(!all.contains("aaaaa"));
}

#[test]
fn sigterm_finishes_in_flight_invocations_then_exits() {
    let mut app = start(&[]);
    let body = host_queue_envelope("message", "not json");
    let (head, tail) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        stream,
        "POST /recovery-worker HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Azure-Functions-InvocationId: 22222222-aaaa-4bbb-8ccc-000000000001\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    app.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "it waits for the invocation in flight"
    );
    // New connections are no longer accepted once shutdown has begun.
    let refused = TcpStream::connect(("127.0.0.1", app.port)).is_err();
    stream.write_all(tail.as_bytes()).unwrap();
    let (status, response) = read_response(stream);
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("\"Logs\""));
    assert!(app.wait().success());
    assert!(refused, "the listener closed on SIGTERM");
    let lines = app.stdout.lock().unwrap().join("\n");
    assert!(lines.contains("shutdown requested"));
    assert!(lines.contains("function app stopped"));
}

#[test]
fn bad_or_missing_settings_stop_start_up_naming_the_key() {
    for (remove, set, key) in [
        (Some("AUTH_TENANT_ID"), None, "AUTH_TENANT_ID"),
        (
            None,
            Some(("GRAPH_ENDPOINT", "http://graph.example.com")),
            "GRAPH_ENDPOINT",
        ),
        (
            None,
            Some(("FUNCTIONS_CUSTOMHANDLER_PORT", "http")),
            "FUNCTIONS_CUSTOMHANDLER_PORT",
        ),
        (None, Some(("SWEEP_SCHEDULE", "every day")), "SWEEP_SCHEDULE"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"));
        command
            .env_clear()
            .env("AUTH_TENANT_ID", TENANT)
            .env("AUTH_AUDIENCE", "api://mfa-recovery")
            .env("AUDIT_DIR", temp_dir("config-audit"))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0");
        if let Some(k) = remove {
            command.env_remove(k);
        }
        if let Some((k, v)) = set {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("configuration error: {key}")),
            "{key}: {stderr}"
        );
    }
}

/// `config` prints every setting as `KEY=value` with its source (no API caller setting is
/// needed), hides a webhook URL's query, and warns about risky or missing settings.
#[test]
fn config_prints_each_setting_with_its_source_and_warns() {
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .arg("config")
        .env_clear()
        .env("AUDIT_DIR", "/tmp/mfa-recovery-audit")
        .env("TAP_RETURN_TO_CALLER", "true")
        .env(
            "APPROVAL_WEBHOOK",
            "https://prod-01.westus.logic.azure.com/workflows/9/triggers/manual/paths/invoke?api-version=2016-06-01&sig=Zm9vYmFyc2lnbmF0dXJl",
        )
        .env("APPROVAL_NOTIFY_GROUP", "2b3c4d5e-0000-4000-8000-000000000001")
        .env("CALLBACK_SIGNING_SECRET", "callback-signing")
        .env("KEY_VAULT_URI", "https://kv-mfa.vault.azure.net/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{out}{err}");
    assert!(
        out.contains("AUDIT_DIR=/tmp/mfa-recovery-audit  # environment"),
        "{out}"
    );
    assert!(
        out.contains("# GRAPH_ENDPOINT: not set; default https://graph.microsoft.com"),
        "{out}"
    );
    assert!(out.contains("# AUTH_TENANT_ID: not set"), "{out}");
    assert!(
        !out.contains("Zm9vYmFyc2lnbmF0dXJl") && !err.contains("Zm9vYmFyc2lnbmF0dXJl"),
        "{out}"
    );
    assert!(out.contains("APPROVAL_WEBHOOK=https://prod-01.westus.logic.azure.com/workflows/9/triggers/manual/paths/invoke?<query hidden>"), "{out}");
    for warning in [
        "TAP_RETURN_TO_CALLER=true",
        "no SMS connector",
        "no email connector",
        "AUTH_AUDIENCE is not set",
    ] {
        assert!(err.contains(&format!("warning: {warning}")), "{warning}: {err}");
    }
}

/// Every flag of every command has help text, and a flag with a fixed set of values lists them.
#[test]
fn every_flag_has_help_and_fixed_values_are_listed() {
    use clap::CommandFactory;
    let cli = mfa_recovery::cli::Cli::command();
    for sub in cli.get_subcommands() {
        let mut commands = vec![sub];
        commands.extend(sub.get_subcommands());
        for command in commands {
            for arg in command.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{} --{} has no help text",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .args(["tap", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("sms") && help.contains("email") && help.contains("manager"),
        "{help}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .args([
            "tap",
            "--user",
            "a@contoso.test",
            "--channel",
            "pigeon",
            "--ticket",
            "x:1",
            "--reason",
            "r",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("possible values: sms, email, manager"));
}

/// Outside Azure the command line falls back to the admin's own sign-in (Azure CLI), whose Graph
/// token lacks the authentication-method scopes: Graph answers 403 and the CLI says why, in its
/// own words. The `az` here is a stand-in printing what `az account get-access-token -o json`
/// prints, with a delegated token the simulated Graph knows (no application permissions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_on_a_developer_sign_in_names_why_graph_refuses() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        upn: Some("isaiah.langer@contoso.test".into()),
        scope: Some("AuditLog.Read.All Directory.AccessAsUser.All Group.ReadWrite.All User.ReadWrite.All".into()),
        app_id: Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46".into()),
        ..Default::default()
    });
    let bin = temp_dir("fake-az");
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    std::fs::write(
        bin.join("az"),
        format!(
            "#!/bin/sh\necho '{{\"accessToken\":\"{token}\",\"expires_on\":{expires},\"tokenType\":\"Bearer\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("az"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let output = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args(["tap", "--user", "adele.vance@contoso.test", "--channel", "sms"])
            .args(["--ticket", "servicenow:INC0050001", "--reason", "lost phone"])
            .args([
                "--verification-method",
                "manager callback",
                "--verified-by",
                "agent@contoso.test",
            ])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("GRAPH_ENDPOINT", sim.graph_endpoint())
            .env("AUTH_AUDIENCE", "api://mfa-recovery")
            .env("AUDIT_DIR", temp_dir("cli-dev-credential"))
            .env("MAIL_SENDER", "mfa-recovery@contoso.test")
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("permission_missing"), "{stderr}");
    assert!(stderr.contains("used your own sign-in"), "{stderr}");
    assert!(stderr.contains("UserAuthenticationMethod"), "{stderr}");
    assert!(sim.outbox().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_on_every_log_line_after_authentication_and_the_token_on_none() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        roles: vec!["Recovery.Tap".into()],
        app_id: Some("7a1d0b9e-3c4f-4e8a-9b2d-000000000042".into()),
        object_id: Some("9e8d7c6b-5a49-4382-8170-000000000042".into()),
        name: Some("ServiceNow connector".into()),
        ..Default::default()
    });
    let authority = sim.authority();
    let mut app = start(&[
        ("AUTH_AUTHORITY", authority.as_str()),
        ("GRAPH_ENDPOINT", authority.as_str()),
    ]);
    let port = app.port;
    let token_for_call = token.clone();
    let (status, _) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "POST /api/users/alex.wilber@contoso.test/tap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token_for_call}\r\nX-Forwarded-For: 45.30.94.9:41710\r\nX-Azure-Functions-InvocationId: 33333333-aaaa-4bbb-8ccc-000000000001\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(stream)
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "past authentication, the missing body is refused");
    app.sigterm();
    assert!(app.wait().success());
    let lines = app.stdout.lock().unwrap().clone();
    let finished = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| {
            r["span"]["invocation_id"] == "33333333-aaaa-4bbb-8ccc-000000000001"
                && r["message"] == "invocation finished"
        })
        .expect("the invocation's last line");
    let span = &finished["span"];
    assert_eq!(span["caller_app"], "7a1d0b9e-3c4f-4e8a-9b2d-000000000042");
    assert_eq!(span["caller_oid"], "9e8d7c6b-5a49-4382-8170-000000000042");
    assert_eq!(span["caller_name"], "ServiceNow connector");
    assert_eq!(span["source_ip"], "45.30.94.9");
    assert_eq!(finished["path"], "/api/users/{upn}/tap", "UPNs are not logged");
    let all = lines.join("\n");
    assert!(!all.contains(&token), "the token is never logged");
    assert!(!all.contains("alex.wilber"), "the target's UPN is not logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_issued_through_the_binary_reaches_no_log_response_or_record() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let audit_dir = temp_dir("binary-tap-audit");
    let authority = sim.authority();
    let identity = sim.identity_endpoint();
    let client_id = sim.seed().managed_identity.client_id.clone();
    let audit = audit_dir.to_string_lossy().into_owned();
    // The real ManagedIdentityCredential gets Graph tokens from the simulator's endpoint.
    let mut app = start(&[
        ("AUTH_AUTHORITY", authority.as_str()),
        ("GRAPH_ENDPOINT", authority.as_str()),
        ("IDENTITY_ENDPOINT", identity.as_str()),
        ("IDENTITY_HEADER", sim.identity_header()),
        ("AZURE_CLIENT_ID", client_id.as_str()),
        ("MAIL_SENDER", "mfa-recovery@contoso.test"),
        ("AUDIT_DIR", audit.as_str()),
        ("RUST_LOG", "debug"),
    ]);
    let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        roles: vec!["Recovery.Tap".into()],
        ..Default::default()
    });
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = serde_json::json!({"delivery": {"channel": "email"}, "ticket": {"system": "jira", "id": "HELP-1"}, "reason": "lost phone",
        "verification": {"method": "video call", "verifiedBy": "agent", "verifiedAt": now}})
    .to_string();
    let port = app.port;
    let (status, response) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "POST /api/users/alex.wilber@contoso.test/tap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        read_response(stream)
    })
    .await
    .unwrap();
    assert_eq!(status, 201, "{response}");
    let taps: Value = reqwest::get(format!("{}/sim/taps", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = taps["value"][0]["temporaryAccessPass"].as_str().unwrap().to_owned();
    assert!(
        sim.outbox().iter().any(|m| m.body.contains(&pass)),
        "the pass was delivered"
    );
    app.sigterm();
    assert!(app.wait().success());
    let logs = app.stdout.lock().unwrap().join("\n") + &app.stderr.lock().unwrap().join("\n");
    assert!(logs.contains("pass issued and delivered"), "{logs}");
    let mut records = String::new();
    for entry in walk(&audit_dir) {
        records.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    assert!(records.contains("\"phase\":\"intent\"") && records.contains("succeeded"));
    for (what, text) in [("logs", &logs), ("response", &response), ("audit records", &records)] {
        assert!(!text.contains(&pass), "the pass is in the {what}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_issues_a_pass_through_the_same_procedure() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let audit_dir = temp_dir("cli-tap-audit");
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), TENANT.into()),
        ("AUTH_AUDIENCE".into(), "api://mfa-recovery".into()),
        ("GRAPH_ENDPOINT".into(), sim.graph_endpoint()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().into()),
        ("AZURE_CLIENT_ID".into(), sim.seed().managed_identity.client_id.clone()),
        ("MAIL_SENDER".into(), "mfa-recovery@contoso.test".into()),
        ("AUDIT_DIR".into(), audit_dir.to_string_lossy().into_owned()),
        ("USER".into(), "helpdesk-agent".into()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args([
                "tap",
                "--user",
                "alex.wilber@contoso.test",
                "--channel",
                "email",
                "--ticket",
                "jira:HELP-9",
            ])
            .args([
                "--reason",
                "lost phone",
                "--verification-method",
                "video call",
                "--verified-by",
                "agent",
            ])
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let issued: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(issued["delivery"]["to"], "a***r@personal.example");
    let taps: Value = reqwest::get(format!("{}/sim/taps", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pass = taps["value"][0]["temporaryAccessPass"].as_str().unwrap();
    assert!(!stdout.contains(pass));
    let records: String = walk(&audit_dir)
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(records.contains("\"via\":\"cli\"") && records.contains("helpdesk-agent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_resets_through_the_same_procedure() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), TENANT.into()),
        ("AUTH_AUDIENCE".into(), "api://mfa-recovery".into()),
        ("GRAPH_ENDPOINT".into(), sim.graph_endpoint()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().into()),
        ("AZURE_CLIENT_ID".into(), sim.seed().managed_identity.client_id.clone()),
        ("MAIL_SENDER".into(), "mfa-recovery@contoso.test".into()),
        (
            "AUDIT_DIR".into(),
            temp_dir("cli-reset-audit").to_string_lossy().into_owned(),
        ),
        ("TAP_REQUIRE_VERIFICATION".into(), "false".into()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args([
                "reset",
                "--user",
                "alex.wilber@contoso.test",
                "--tap",
                "email",
                "--ticket",
                "jira:HELP-10",
                "--reason",
                "lost phone",
            ])
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["removed"][0]["type"], "microsoftAuthenticator");
    assert_eq!(result["tap"]["delivery"]["channel"], "email");
}

/// `mfa-recovery verify` sends a code, reads the one the user reads out from standard input,
/// confirms it and prints the verification id; `tap --verification-id` then issues the pass on
/// another channel. The code is never an argument and never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_verifies_a_caller_then_issues_a_pass_naming_the_verification() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    let audit_dir = temp_dir("cli-verify-audit");
    let env: Vec<(String, String)> = vec![
        ("AUTH_TENANT_ID".into(), TENANT.into()),
        ("AUTH_AUDIENCE".into(), "api://mfa-recovery".into()),
        ("GRAPH_ENDPOINT".into(), sim.graph_endpoint()),
        ("IDENTITY_ENDPOINT".into(), sim.identity_endpoint()),
        ("IDENTITY_HEADER".into(), sim.identity_header().into()),
        ("AZURE_CLIENT_ID".into(), sim.seed().managed_identity.client_id.clone()),
        ("KEY_VAULT_URI".into(), sim.key_vault_uri()),
        ("MFA_RECOVERY_SIM".into(), sim.base_url().to_owned()),
        ("MAIL_SENDER".into(), "mfa-recovery@contoso.test".into()),
        ("ACS_ENDPOINT".into(), format!("{}/acs", sim.base_url())),
        ("ACS_ACCESS_KEY_SECRET".into(), "acs-access-key".into()),
        ("ACS_SMS_FROM".into(), "+18005550199".into()),
        ("TAP_REQUIRE_VERIFICATION".into(), "service".into()),
        ("AUDIT_DIR".into(), audit_dir.to_string_lossy().into_owned()),
        ("USER".into(), "helpdesk-agent".into()),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .args([
            "verify",
            "--user",
            "lee.gu@contoso.test",
            "--channel",
            "email",
            "--ticket",
            "servicenow:INC0040001",
        ])
        .env_clear()
        .envs(env.clone())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The user reads the code out; the agent types it.
    let mut code = None;
    for _ in 0..100 {
        code = sim.outbox().iter().find_map(|m| {
            m.body
                .split("Your code: ")
                .nth(1)
                .map(|c| c.chars().take(6).collect::<String>())
        });
        if code.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let code = code.expect("a code went out");
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let output = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stdout}{stderr}");
    let id = stdout.trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{stdout}");
    assert!(
        !stdout.contains(&code) && !stderr.contains(&code),
        "the code was printed"
    );

    let output = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
            .args([
                "tap",
                "--user",
                "lee.gu@contoso.test",
                "--channel",
                "sms",
                "--ticket",
                "servicenow:INC0040001",
            ])
            .args(["--reason", "lost phone", "--verification-id", &id])
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let issued: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(issued["delivery"]["channel"], "sms", "{issued}");
    let records: String = walk(&audit_dir)
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(records.contains(&id), "the pass's record names the verification");
    assert!(!records.contains(&code));
}
