//! `mfa-recovery dev`: the README's run command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn dev_runs_the_function_set_on_the_simulated_tenant() {
    let (port, sim_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .args(["dev", "--port", &port.to_string(), "--sim-port", &sim_port.to_string()])
        // Every log line, so the leak check below sees everything the binary says.
        .env("RUST_LOG", "debug")
        .env("AUDIT_DIR", temp_dir("dev-audit"))
        .env("REQUESTS_DIR", temp_dir("dev-requests"))
        .env("SWEEP_DIR", temp_dir("dev-sweeps"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let errors_kept = errors.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            errors_kept.lock().unwrap().push(line);
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = line.trim_start().starts_with("mfa-recovery tap --user");
        banner.push(line);
        if done {
            break;
        }
    }
    let text = banner.join("\n");
    let app = format!("http://127.0.0.1:{port}");
    let sim = format!("http://127.0.0.1:{sim_port}");
    for expected in [
        format!("{app}/api/health"),
        format!("{app}/api/users/{{user}}/tap"),
        format!("{app}/admin/functions/compliance-sweep"),
        "adele.vance@contoso.test".to_owned(),
        "Global Administrator".to_owned(),
        format!("{sim}/sim/outbox"),
    ] {
        assert!(text.contains(&expected), "banner lacks {expected}:\n{text}");
    }
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .expect("a token line")
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["roles"],
        json!([
            "Recovery.Tap",
            "Recovery.Reset",
            "Recovery.Request",
            "Audit.Read",
            "Recovery.Approve"
        ])
    );
    assert_eq!(claims["aud"], "api://mfa-recovery");

    let client = reqwest::Client::new();
    let health = client.get(format!("{app}/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The printed token is accepted by the function app (this body lacks a ticket: 400, not 401).
    let r = client
        .post(format!("{app}/api/users/alex.wilber@contoso.test/tap"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The README's command issues a pass for a demo user; the pass is only in the simulator's outbox.
    let line = text
        .lines()
        .find(|l| l.contains("adele.vance@contoso.test/tap"))
        .expect("the tap command")
        .trim()
        .to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("export TOKEN={token}; {line}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let issued: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(issued["delivery"]["channel"], "sms", "{issued}");
    let outbox: Value = client
        .get(format!("{sim}/sim/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sms = outbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["channel"] == "sms")
        .unwrap();
    assert!(
        sms["body"]
            .as_str()
            .unwrap()
            .starts_with("Temporary Access Pass for adele.vance@contoso.test: ")
    );
    assert!(
        !issued.to_string().contains(
            sms["body"]
                .as_str()
                .unwrap()
                .split(": ")
                .nth(1)
                .unwrap()
                .lines()
                .next()
                .unwrap()
        )
    );
    // The README's reset command: Adele (Authenticator, a default mobile phone and an alternate
    // mobile) ends with no MFA method but a pass at her alternate email, sent in the same call.
    let line = text
        .lines()
        .find(|l| l.contains("adele.vance@contoso.test/mfa/reset"))
        .expect("the reset command")
        .trim()
        .to_owned();
    let token_for_reset = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .unwrap()
        .to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("export TOKEN={token_for_reset}; {line}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let reset: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(reset["removed"].as_array().map(Vec::len), Some(3), "{reset}");
    assert_eq!(reset["tap"]["delivery"]["channel"], "email", "{reset}");
    // The banner's refusal: an eligible Global Administrator gets no pass.
    let line = text
        .lines()
        .find(|l| l.contains("allan.deyoung@contoso.test/tap"))
        .expect("the refusal command")
        .trim()
        .to_owned();
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .unwrap()
        .to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("export TOKEN={token}; {line}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let refused: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(refused["error"]["code"], "target_protected", "{refused}");
    // The banner's queued request, as ServiceNow sends it: it runs, and its work note reaches the
    // simulated ServiceNow (/sim/itsm).
    let line = text
        .lines()
        .find(|l| l.contains("/api/requests -H"))
        .expect("the queued request")
        .trim()
        .to_owned();
    let token = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export TOKEN="))
        .unwrap()
        .to_owned();
    let queued_token = token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("export TOKEN={queued_token}; {line}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let accepted: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    let id = accepted["requestId"].as_str().expect("a request id").to_owned();
    let mut noted = Value::Null;
    for _ in 0..100 {
        let items: Value = client
            .get(format!("{sim}/sim/itsm"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(item) = items["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["body"]["work_notes"].as_str().is_some_and(|n| n.contains(&id)))
        {
            noted = item.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        noted["path"]
            .as_str()
            .is_some_and(|p| p.contains("9d385017c611228701d22104cc95c371")),
        "no work note in /sim/itsm: {noted}"
    );
    let view: Value = client
        .get(format!("{sim}/sim/users/adele.vance@contoso.test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mfa_left: Vec<&str> = view["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .filter(|t| !matches!(*t, "password" | "email" | "temporaryAccessPass"))
        .collect();
    assert!(mfa_left.is_empty(), "{view}");
    // The captures, run through the host's admin API, leave the app healthy.
    let r = client
        .post(format!("{app}/admin/functions/recovery-worker"))
        .json(&json!({"input": "aaaaa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = client
        .post(format!("{app}/admin/functions/compliance-sweep"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 200, "the sweep ran: {body}");
    assert_eq!(
        client.get(format!("{app}/api/health")).send().await.unwrap().status(),
        200
    );
    // The simulated tenant is up and wired.
    let info: Value = client
        .get(format!("{sim}/sim/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["tenantId"], "8f0c2c1e-3b7a-4c57-9a3e-5b2f6d1c9e10");

    // The banner's verified pass in four curls: a code by email, read from the outbox, confirmed,
    // then a pass by SMS that names the verification.
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let first = lines
        .iter()
        .position(|l| l.contains("lee.gu@contoso.test/verifications"))
        .expect("the verification commands");
    let script = lines[first..first + 4].join("\n");
    assert!(script.contains("lee.gu@contoso.test/tap"), "{script}");
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("export TOKEN="))
        .unwrap()
        .to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("-c")
            .arg(format!("export TOKEN={token}\n{script}"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("\"status\":\"verified\""), "{stdout}");
    assert!(stdout.contains("\"channel\":\"sms\""), "{stdout}");
    let outbox: Value = client
        .get(format!("{sim}/sim/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bodies: Vec<String> = outbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    let code: String = bodies
        .iter()
        .find_map(|b| b.split("Your code: ").nth(1))
        .expect("the code went out")
        .chars()
        .take(6)
        .collect();
    let passes: Vec<String> = bodies
        .iter()
        .filter_map(|b| b.strip_prefix("Temporary Access Pass for "))
        .filter_map(|b| b.split(": ").nth(1))
        .filter_map(|b| b.lines().next().map(str::to_owned))
        .collect();
    assert!(passes.len() >= 2, "{bodies:?}");

    // The command line from a fresh shell with only what the banner printed: its exports, then
    // its `mfa-recovery tap` line (the binary on PATH), no AUTH_TENANT_ID, nothing else.
    let start = lines
        .iter()
        .position(|l| l.starts_with("The command line on this tenant"))
        .expect("the command-line exports");
    let exports: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("export "))
        .copied()
        .collect();
    assert!(exports.len() >= 8, "{exports:?}");
    assert!(!exports.iter().any(|l| l.contains("AUTH_TENANT_ID")), "{exports:?}");
    let cli_line = lines[start + 1 + exports.len()].to_owned();
    assert!(
        cli_line.starts_with("mfa-recovery tap --user alex.wilber"),
        "{cli_line}"
    );
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let script = format!("{}\n{cli_line}", exports.join("\n"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg("--noprofile")
            .arg("--norc")
            .arg("-c")
            .arg(script)
            .env_clear()
            .env("PATH", format!("{bin_dir}:/usr/bin:/bin"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let cli_out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{cli_out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let issued: Value = serde_json::from_str(&cli_out).unwrap();
    assert_eq!(issued["delivery"]["channel"], "email", "{issued}");
    let outbox: Value = client
        .get(format!("{sim}/sim/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cli_pass = outbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .find_map(|b| b.split("Temporary Access Pass for alex.wilber@contoso.test: ").nth(1))
        .and_then(|b| b.lines().next())
        .expect("the CLI's pass went by email")
        .to_owned();
    assert!(!standalone(&cli_out, &cli_pass), "the CLI printed the pass");

    crate::binary::sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success());
    // No verification code and no pass in anything the binary logged (at debug), or the
    // answers the curls got.
    std::thread::sleep(Duration::from_millis(200));
    let mut logs: Vec<String> = rx.try_iter().collect();
    logs.extend(errors.lock().unwrap().iter().cloned());
    let logs = logs.join("\n");
    assert!(logs.contains("verification code sent"), "the logs were read");
    // Not a terminal (a pipe): plain text, no colour codes.
    assert!(!logs.contains('\u{1b}'), "ANSI colour codes in logs written to a pipe");
    for secret in passes.iter().chain(std::iter::once(&code)) {
        assert!(!standalone(&logs, secret), "{secret} is in the logs");
        assert!(!standalone(&stdout, secret), "{secret} is in an answer");
    }
}

/// Whether `secret` occurs in `text` as itself: not inside a longer run of digits, nor as the
/// fraction of a timestamp (a six-digit code can be the microseconds of a log line's time).
fn standalone(text: &str, secret: &str) -> bool {
    text.match_indices(secret).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + secret.len()..].chars().next();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        !digit(before) && !digit(after) && before != Some('.')
    })
}
