//! An outside witness (#34): what someone with write access to the storage account alone, and
//! not to Key Vault's audit key, can no longer do. Each attack here passed before the anchors and
//! the decisions were signed (`audit::seal`).

use std::path::{Path, PathBuf};

use mfa_recovery::audit::AuditRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::approval::{ALLAN_UPN, ISAIAH, approval_app};
use crate::helpers::*;

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A pass for `user` by email, typed verification.
async fn pass(app: &TestApp, user: &str) {
    let body = json!({"delivery": {"channel": "email"}, "ticket": {"system": "jira", "id": "HELP-7"},
        "reason": "lost phone", "verification": {"method": "callback", "verifiedBy": "agent@contoso.test", "verifiedAt": now()}});
    let r = app
        .client
        .post(format!("{}/api/users/{user}/tap", app.base))
        .bearer_auth(app.token(&["Recovery.Tap"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}

/// `mfa-recovery audit verify` as an operator runs it, with the audit key from the simulated
/// vault, and `extra` arguments: exit code and output.
pub(crate) fn audit_verify_with(app: &TestApp, extra: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let sim = &app.sim;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-recovery"))
        .args(["audit", "verify"])
        .args(extra)
        .env_clear()
        .envs([
            ("AUTH_TENANT_ID", sim.seed().tenant_id.clone()),
            ("AUTH_AUDIENCE", "api://mfa-recovery".into()),
            ("AUDIT_DIR", app.settings_value("AUDIT_DIR")),
            ("KEY_VAULT_URI", sim.key_vault_uri()),
            ("MFA_RECOVERY_SIM", sim.base_url().to_owned()),
            ("IDENTITY_ENDPOINT", sim.identity_endpoint()),
            ("IDENTITY_HEADER", sim.identity_header().to_owned()),
            ("AZURE_CLIENT_ID", sim.seed().managed_identity.client_id.clone()),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn audit_verify(app: &TestApp) -> (Option<i32>, String) {
    audit_verify_with(app, &[])
}

/// The app's chain files and anchor logs (`AUDIT_DIR`).
fn trail_files(app: &TestApp) -> (Vec<PathBuf>, Vec<PathBuf>) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    let root = PathBuf::from(app.settings_value("AUDIT_DIR"));
    let mut all = Vec::new();
    walk(&root, &mut all);
    let (anchors, chains) = all
        .into_iter()
        .partition(|p| p.strip_prefix(&root).unwrap().starts_with("anchors"));
    (chains, anchors)
}

/// A record's hash as the writer computes it: SHA-256 of its JSON with `hash` empty.
fn rehash(r: &mut AuditRecord) {
    r.hash = String::new();
    r.hash = hex::encode(Sha256::digest(serde_json::to_vec(&r).unwrap()));
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_lines(path: &Path, values: &[Value]) {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// A rogue storage administrator removes every record about `user` from the chain, renumbers
/// and rehashes the rest, and rewrites the anchor lines to match: copying each surviving line's
/// MAC, or leaving the MAC out.
fn remove_user_and_rewrite(app: &TestApp, user: &str, keep_macs: bool) {
    let (chains, anchors) = trail_files(app);
    let chain = chains
        .iter()
        .find(|c| std::fs::read_to_string(c).unwrap().contains(user))
        .unwrap();
    let mut prev = mfa_recovery::audit::GENESIS.to_owned();
    let mut kept = Vec::new();
    for v in lines(chain) {
        let mut r: AuditRecord = serde_json::from_value(v).unwrap();
        if r.target.as_ref().and_then(|t| t.upn.as_deref()) == Some(user) {
            continue;
        }
        r.seq = kept.len() as u64 + 1;
        r.prev_hash = prev.clone();
        rehash(&mut r);
        prev = r.hash.clone();
        kept.push(r);
    }
    write_lines(
        chain,
        &kept
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect::<Vec<_>>(),
    );
    let old: Vec<Value> = anchors.iter().flat_map(|a| lines(a)).collect();
    let rewritten: Vec<Value> = kept
        .iter()
        .map(|r| {
            let mut a = json!({"chain": r.chain, "seq": r.seq, "hash": r.hash});
            if keep_macs && let Some(o) = old.iter().find(|o| o["seq"] == json!(r.seq)) {
                a["kid"] = o["kid"].clone();
                a["mac"] = o["mac"].clone();
            }
            a
        })
        .collect();
    for (i, a) in anchors.iter().enumerate() {
        write_lines(a, if i == 0 { &rewritten } else { &[] });
    }
}

/// The attack of the issue: 19 records about one user removed and their anchors rewritten
/// verified (`exit=0`); now the MACs break, with the MACs copied or left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_records_removed_with_their_anchors_rewritten_fail_audit_verify() {
    for keep_macs in [true, false] {
        let app = spawn_app().await;
        pass(&app, "lee.gu@contoso.test").await;
        pass(&app, "adele.vance@contoso.test").await;
        // The notices' records are written after the answer: the trail is still.
        app.outbox().await;
        // A notice's record is written just after its outbox entry goes.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (code, text) = tokio::task::block_in_place(|| audit_verify(&app));
        assert_eq!(code, Some(0), "{text}");
        assert!(
            text.contains("signed from") && text.contains("every anchor's MAC verifies"),
            "{text}"
        );
        remove_user_and_rewrite(&app, "lee.gu@contoso.test", keep_macs);
        let (code, text) = tokio::task::block_in_place(|| audit_verify(&app));
        assert_eq!(code, Some(1), "keep_macs={keep_macs}: {text}");
        assert!(text.contains("MISMATCH") && text.contains("audit key"), "{text}");
    }
}

/// A chain made up whole ("Megan issued Isaiah a pass") with its own anchor lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabricated_chain_with_its_anchors_fails_audit_verify() {
    let app = spawn_app().await;
    pass(&app, "lee.gu@contoso.test").await;
    app.outbox().await;
    // A notice's record is written just after its outbox entry goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (chains, anchors) = trail_files(&app);
    let mut forged: AuditRecord = serde_json::from_value(lines(&chains[0]).pop().unwrap()).unwrap();
    let day = forged.chain.rsplit_once('/').unwrap().0.to_owned();
    forged.chain = format!("{day}/0123456789abcdef0123456789abcdef");
    forged.seq = 1;
    forged.prev_hash = mfa_recovery::audit::GENESIS.into();
    forged.caller.name = Some("Megan Bowen".into());
    forged.target = Some(mfa_recovery::audit::Target {
        object_id: Some(ISAIAH.into()),
        upn: Some("isaiah.langer@contoso.test".into()),
    });
    rehash(&mut forged);
    let dir = PathBuf::from(app.settings_value("AUDIT_DIR"));
    write_lines(
        &dir.join(format!("{}.jsonl", forged.chain)),
        &[serde_json::to_value(&forged).unwrap()],
    );
    let mut log = lines(&anchors[0]);
    log.push(json!({"chain": forged.chain, "seq": 1, "hash": forged.hash}));
    write_lines(&anchors[0], &log);
    let (code, text) = tokio::task::block_in_place(|| audit_verify(&app));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("without the audit key"), "{text}");
}

/// The audit key rotated: records signed with the version before still verify, by its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_signed_before_a_rotation_still_verify() {
    let app = spawn_app().await;
    pass(&app, "lee.gu@contoso.test").await;
    app.outbox().await;
    // A notice's record is written just after its outbox entry goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = app
        .client
        .post(format!("{}/sim/secrets/audit-key/rotate", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (code, text) = tokio::task::block_in_place(|| audit_verify(&app));
    assert_eq!(code, Some(0), "{text}");
}

/// A held request's record set to "approved by Isaiah" in storage (or given the seal of another
/// request's real approval): the worker refuses it with `state_tampered`, issues nothing, and
/// the SOC hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_approval_is_refused_by_the_worker_and_the_soc_is_told() {
    let app = approval_app().await;
    // A real approval, whose seal the forger will copy.
    let real = app.held_pass().await;
    let (status, body) = app.decide(ISAIAH, &real, "approve", "called back").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.wait_final(&real).await["status"], "succeeded");
    let dir = PathBuf::from(app.settings_value("REQUESTS_DIR"));
    let real_record: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{real}.json"))).unwrap()).unwrap();
    let real_decision = real_record["approval"]["decision"].clone();
    assert!(real_decision["seal"]["mac"].is_string(), "{real_decision}");
    let passes = app.passes().await.len();

    for copy_seal in [false, true] {
        let id = app.held_pass().await;
        let path = dir.join(format!("{id}.json"));
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut decision = json!({"approved": true, "at": now(), "comment": "approved",
            "by": {"via": "token", "objectId": ISAIAH, "user": true, "name": "Isaiah Langer"}});
        if copy_seal {
            decision = real_decision.clone();
        }
        record["approval"]["decision"] = decision;
        record["state"] = json!("accepted");
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        let r = app
            .invoke(
                "recovery-worker",
                &host_queue_envelope("message", &format!("{{\"requestId\":\"{id}\"}}")),
                &format!("inv-forged-{copy_seal}"),
            )
            .await;
        assert!(r.status().is_success());
        let done = app.wait_final(&id).await;
        assert_eq!(done["status"], "refused", "{done}");
        assert_eq!(done["result"]["error"]["code"], "state_tampered", "{done}");
        assert_eq!(app.passes().await.len(), passes, "no pass for a forged approval");
        let soc = app.sim.itsm().into_iter().any(|h| {
            h.path == "/callbacks/soc"
                && h.body["payload"]["type"] == "recovery.state_tampered"
                && h.body["payload"]["data"]["requestId"] == json!(id)
        });
        assert!(soc, "the SOC was told");
        let refused = app
            .audit_of(Some("tap.issue"))
            .await
            .into_iter()
            .any(|r| r["requestId"] == json!(id) && r["outcome"]["code"] == "state_tampered");
        assert!(refused, "the refusal is on the trail");
    }

    // The real approved request, put back to run again with its body changed (the pass to
    // another channel): its hold's seal no longer covers what it asks.
    let path = dir.join(format!("{real}.json"));
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["state"] = json!("accepted");
    for k in ["answered", "result", "finishedAt", "queuedAt"] {
        record[k] = Value::Null;
    }
    record["progress"] = json!({});
    record["body"]["delivery"]["channel"] = json!("sms");
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    let r = app
        .invoke(
            "recovery-worker",
            &host_queue_envelope("message", &format!("{{\"requestId\":\"{real}\"}}")),
            "inv-forged-edited",
        )
        .await;
    assert!(r.status().is_success());
    let done = app.wait_final(&real).await;
    assert_eq!(done["result"]["error"]["code"], "state_tampered", "{done}");
    assert_eq!(app.passes().await.len(), passes, "no second pass");
}

/// A held privileged request edited before anyone decides: marked not privileged (so an approver
/// without an admin role would pass), or another requester named (so the requester could approve
/// their own). The approval is refused `state_tampered` before anything is decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_edited_before_the_decision_cannot_be_approved() {
    const MEGAN: &str = "b0000007-0000-4000-8000-000000000007";
    let app = approval_app().await;
    let dir = PathBuf::from(app.settings_value("REQUESTS_DIR"));
    for edit in ["privileged", "requester"] {
        let id = app.held_pass().await;
        let path = dir.join(format!("{id}.json"));
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let who = if edit == "privileged" {
            record["approval"]["privileged"] = json!(false);
            MEGAN
        } else {
            record["caller"]["objectId"] = json!(MEGAN);
            crate::approval::AGENT
        };
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        let (status, body) = app.decide(who, &id, "approve", "looks fine").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("state_tampered")),
            "{edit}: {body}"
        );
        assert_eq!(app.request_state(&id).await["status"], "pending_approval", "{edit}");
    }
    assert!(app.passes().await.is_empty());
    let _ = ALLAN_UPN;
}

/// A pending verification edited to `verified` in storage: no pass comes of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_edited_to_verified_is_refused() {
    const AGENT: &str = "a0000000-0000-4000-8000-00000000a9e1";
    let app = spawn_app_with(&[
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    // A real one works, and carries its seal.
    let (id, code) = app.send_code(AGENT, "lee.gu@contoso.test", "email").await;
    let (status, body) = app.confirm(AGENT, &id, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dir = PathBuf::from(app.settings_value("AUDIT_DIR")).join("limits/verifications");
    let real: Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).unwrap()).unwrap();
    assert!(real["seal"]["mac"].is_string(), "{real}");

    // Another is sent and never confirmed; the forger marks it verified (with and without the
    // real one's seal).
    for copy_seal in [false, true] {
        let (forged, _) = app.send_code(AGENT, "adele.vance@contoso.test", "email").await;
        let path = dir.join(format!("{forged}.json"));
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record["status"] = json!("verified");
        record["verifiedAt"] = json!(now());
        if copy_seal {
            record["seal"] = real["seal"].clone();
        }
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        let (status, body) = app
            .tap_with(AGENT, "adele.vance@contoso.test", "sms", json!({"id": forged}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("state_tampered")),
            "{body}"
        );
        assert!(app.graph_writes().iter().all(|w| !w.contains("temporaryAccessPass")));
        let soc = app
            .sim
            .itsm()
            .into_iter()
            .any(|h| h.path == "/callbacks/soc" && h.body["payload"]["type"] == "recovery.state_tampered");
        assert!(soc, "the SOC was told");
    }
    // The real one still serves its pass.
    let (status, body) = app
        .tap_with(AGENT, "lee.gu@contoso.test", "sms", json!({"id": id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// "This is not me" blocked the user's recoveries; the block's end edited into the past in
/// storage does not lift it: the next recovery is refused `state_tampered`, not let through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_edited_to_have_ended_is_refused() {
    let app = crate::confirm::link_app(&[
        ("SECURITY_ALERT_WEBHOOK", "{sim}/callbacks/soc"),
        ("CALLBACK_SIGNING_SECRET", "callback-signing"),
    ])
    .await;
    let sent = app.send_link("email").await;
    assert_eq!(app.answer(&sent.id, &sent.secret, "not_me").await.0, StatusCode::OK);
    let dir = PathBuf::from(app.settings_value("AUDIT_DIR")).join("limits/blocks");
    let path = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let mut block: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(block["seal"]["mac"].is_string(), "{block}");
    block["until"] = json!("2020-01-01T00:00:00Z");
    std::fs::write(&path, serde_json::to_vec(&block).unwrap()).unwrap();
    let (status, body) = app.tap(&sent.id).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("state_tampered")),
        "{body}"
    );
    assert!(app.graph_writes().iter().all(|w| !w.contains("temporaryAccessPass")));
}
