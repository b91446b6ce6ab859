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
    // Every recipe the banner prints, run as printed, under the templates' posture: each names a
    // code the service sent (read from the outbox) and the caller confirmed.
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        text.contains("TAP_REQUIRE_VERIFICATION=service"),
        "the banner says the posture:\n{text}"
    );
    assert!(
        !text.contains("verifiedBy"),
        "a banner recipe types a verification block:\n{text}"
    );
    let mut answers = String::new();
    // 1. A verified pass for Lee: the code by email, the pass by SMS, only in the outbox.
    let out = run_script(&token, &recipe(&lines, 1)).await;
    answers.push_str(&out);
    assert!(out.contains("\"status\":\"verified\""), "{out}");
    let issued: Value = last_json(&out);
    assert_eq!(issued["delivery"]["channel"], "sms", "{out}");
    let outbox = outbox_bodies(&client, &sim).await;
    let lee_pass = outbox
        .iter()
        .find_map(|b| b.strip_prefix("Temporary Access Pass for lee.gu@contoso.test: "))
        .and_then(|b| b.lines().next())
        .expect("Lee's pass went by SMS")
        .to_owned();
    assert!(!out.contains(&lee_pass), "the pass is in the answer");
    // 2. A verified reset: Adele (Authenticator, a default mobile phone and an alternate mobile)
    // ends with no MFA method but a pass at her alternate email, sent in the same call.
    let out = run_script(&token, &recipe(&lines, 2)).await;
    answers.push_str(&out);
    let reset = last_json(&out);
    assert_eq!(reset["removed"].as_array().map(Vec::len), Some(3), "{out}");
    assert_eq!(reset["tap"]["delivery"]["channel"], "email", "{out}");
    // 3. A privileged user: Allan, an eligible Global Administrator, gets no pass; it waits for a
    // second approver, and the approvers' group (Isaiah) is told.
    let out = run_script(&token, &recipe(&lines, 3)).await;
    answers.push_str(&out);
    let held = last_json(&out);
    assert_eq!(held["status"], "pending_approval", "{out}");
    assert_eq!(held["approval"]["reasons"], json!(["privileged"]), "{out}");
    let outbox = outbox_bodies(&client, &sim).await;
    assert!(
        !outbox
            .iter()
            .any(|b| b.starts_with("Temporary Access Pass for allan.deyoung")),
        "Allan got a pass: {outbox:?}"
    );
    // 4. Queued, as ServiceNow's business rule sends an incident with the verification's id: it
    // runs, and its work note reaches the simulated ServiceNow (/sim/itsm).
    let out = run_script(&token, &recipe(&lines, 4)).await;
    answers.push_str(&out);
    let accepted = last_json(&out);
    let id = accepted["requestId"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
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
    assert!(
        noted["body"]["work_notes"]
            .as_str()
            .is_some_and(|n| n.contains("succeeded")),
        "{noted}"
    );
    let mut stdout = answers;
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

    // The command line from a fresh shell with only what the banner printed: its exports, then
    // its `verify` line (the code typed in, read from the outbox) and its `tap` line (the binary
    // on PATH), no AUTH_TENANT_ID, nothing else.
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
    assert!(
        exports.iter().any(|l| l.contains("TAP_REQUIRE_VERIFICATION='service'")),
        "{exports:?}"
    );
    let verify_line = lines[start + 1 + exports.len()].to_owned();
    let cli_line = lines[start + 2 + exports.len()].to_owned();
    assert!(
        verify_line.starts_with("V=$(mfa-recovery verify --user alex.wilber"),
        "{verify_line}"
    );
    assert!(
        cli_line.starts_with("mfa-recovery tap --user alex.wilber"),
        "{cli_line}"
    );
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let codes_before = codes_in(&outbox_bodies(&client, &sim).await).len();
    let script = format!("{}\n{verify_line}\n{cli_line}", exports.join("\n"));
    let mut shell = Command::new("bash")
        .arg("--noprofile")
        .arg("--norc")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", format!("{bin_dir}:/usr/bin:/bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The agent reads the code off the user (here: the outbox) and types it.
    let mut code = None;
    for _ in 0..200 {
        let codes = codes_in(&outbox_bodies(&client, &sim).await);
        if codes.len() > codes_before {
            code = codes.last().cloned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code.expect("the CLI's code went to Alex's manager");
    {
        use std::io::Write as _;
        let mut stdin = shell.stdin.take().unwrap();
        writeln!(stdin, "{code}").unwrap();
    }
    let output = tokio::task::spawn_blocking(move || shell.wait_with_output().unwrap())
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
    let bodies = outbox_bodies(&client, &sim).await;
    let cli_pass = bodies
        .iter()
        .filter_map(|b| b.split("Temporary Access Pass for alex.wilber@contoso.test: ").nth(1))
        .filter_map(|b| b.lines().next())
        .next_back()
        .expect("the CLI's pass went by email")
        .to_owned();
    assert!(!standalone(&cli_out, &cli_pass), "the CLI printed the pass");
    stdout.push_str(&cli_out);
    stdout.push_str(&String::from_utf8_lossy(&output.stderr));
    let bodies = outbox_bodies(&client, &sim).await;
    let passes: Vec<String> = bodies
        .iter()
        .filter_map(|b| b.strip_prefix("Temporary Access Pass for "))
        .filter_map(|b| b.split(": ").nth(1))
        .filter_map(|b| b.lines().next().map(str::to_owned))
        .collect();
    assert!(passes.len() >= 4, "{bodies:?}");
    let codes = codes_in(&bodies);
    assert!(codes.len() >= 5, "{bodies:?}");

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
    for secret in passes.iter().chain(codes.iter()) {
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

/// The lines of the banner's recipe `n` (`# n. …` up to the next recipe or the request status
/// line), as a script.
fn recipe(lines: &[&str], n: usize) -> String {
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("# {n}. ")))
        .unwrap_or_else(|| panic!("no recipe {n} in the banner"));
    lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with('#') && !l.contains("/api/requests/<requestId>"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run a banner script with the banner's token, as a reader pastes it; what it printed.
async fn run_script(token: &str, script: &str) -> String {
    let script = format!("export TOKEN={token}\n{script}");
    let output = tokio::task::spawn_blocking(move || Command::new("bash").arg("-c").arg(script).output().unwrap())
        .await
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The last JSON document a script printed (the recipe's recovery; before it, the confirmation).
fn last_json(out: &str) -> Value {
    let start = out.rfind("}{").map_or(0, |i| i + 1);
    serde_json::from_str(&out[start..]).unwrap_or_else(|_| panic!("not JSON: {out}"))
}

async fn outbox_bodies(client: &reqwest::Client, sim: &str) -> Vec<String> {
    let outbox: Value = client
        .get(format!("{sim}/sim/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    outbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

/// The verification codes in the outbox, oldest first.
fn codes_in(bodies: &[String]) -> Vec<String> {
    bodies
        .iter()
        .filter_map(|b| b.split("Your code: ").nth(1))
        .map(|b| b.chars().take(6).collect())
        .collect()
}
