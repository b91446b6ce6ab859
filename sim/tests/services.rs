//! The simulator's other parties: the managed identity endpoint, the token issuer's metadata,
//! Key Vault, the SMS and email providers, and the `/sim/` control routes.

mod common;

use aws_lc_rs::{digest, hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use common::*;
use mfa_recovery_sim::TokenRequest;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

/// Verify an RS256 token against the JWKS the simulator publishes, as a caller-side validator would.
async fn verify_with_jwks(sim: &mfa_recovery_sim::Simulator, token: &str) -> bool {
    let tenant = &sim.seed().tenant_id;
    let jwks: Value = reqwest::get(format!("{}/{tenant}/discovery/v2.0/keys", sim.authority()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let header: Value = serde_json::from_slice(&B64URL.decode(h).unwrap()).unwrap();
    let Some(key) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
    else {
        return false;
    };
    let n = B64URL.decode(key["n"].as_str().unwrap()).unwrap();
    let e = B64URL.decode(key["e"].as_str().unwrap()).unwrap();
    signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{h}.{p}").as_bytes(),
            &B64URL.decode(s).unwrap(),
        )
        .is_ok()
}

#[tokio::test]
async fn managed_identity_endpoint_speaks_the_app_service_protocol() {
    let sim = start().await;
    let client = Client::new();
    let url = sim.identity_endpoint();
    let ok = client
        .get(&url)
        .query(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://vault.azure.net"),
            ("client_id", "5e29463d-71da-4fe0-8e69-999b57db23b0"),
        ])
        .header("x-identity-header", sim.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert!(body["expires_on"].is_string(), "expires_on is a string: {body}");
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://vault.azure.net");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "https://vault.azure.net");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{}/", sim.seed().tenant_id));
    assert!(verify_with_jwks(&sim, body["access_token"].as_str().unwrap()).await);
    // The Graph token carries the identity's application permissions.
    let graph = mi_token(&sim, "https://graph.microsoft.com").await;
    assert!(
        claims(&graph)["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("UserAuthenticationMethod.ReadWrite.All"))
    );

    let wrong_header = client
        .get(&url)
        .query(&[("api-version", "2019-08-01"), ("resource", "https://vault.azure.net")])
        .header("x-identity-header", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_header.status(), StatusCode::UNAUTHORIZED);
    let wrong_identity = client
        .get(&url)
        .query(&[
            ("api-version", "2019-08-01"),
            ("resource", "https://vault.azure.net"),
            ("client_id", "00000000-0000-0000-0000-000000000000"),
        ])
        .header("x-identity-header", sim.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_identity.status(), StatusCode::BAD_REQUEST);
    let no_version = client
        .get(&url)
        .query(&[("resource", "https://vault.azure.net")])
        .header("x-identity-header", sim.identity_header())
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn caller_tokens_carry_roles_and_verify_against_the_published_keys() {
    let sim = start().await;
    let tenant = sim.seed().tenant_id.clone();
    let r: Value = Client::new()
        .post(format!("{}/sim/token", sim.base_url()))
        .json(&json!({"roles": ["Recovery.Tap"], "appId": "11111111-2222-3333-4444-555555555555"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["aud"], "api://mfa-recovery");
    assert_eq!(c["roles"], json!(["Recovery.Tap"]));
    assert_eq!(c["azp"], "11111111-2222-3333-4444-555555555555");
    assert_eq!(c["iss"], format!("{}/{tenant}/v2.0", sim.authority()));
    assert!(verify_with_jwks(&sim, token).await);
    let v1 = sim.issue_token(&TokenRequest {
        version: Some(1),
        ..TokenRequest::default()
    });
    assert_eq!(claims(&v1)["iss"], format!("https://sts.windows.net/{tenant}/"));
    // The OpenID configuration points at the same keys.
    let oidc: Value = reqwest::get(format!(
        "{}/{tenant}/v2.0/.well-known/openid-configuration",
        sim.authority()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(oidc["issuer"], format!("{}/{tenant}/v2.0", sim.authority()));
    assert_eq!(
        oidc["jwks_uri"],
        format!("{}/{tenant}/discovery/v2.0/keys", sim.authority())
    );
    // After a key rotation, new tokens use a new kid and old tokens still verify.
    let kid_before = claims_header(token)["kid"].clone();
    let _: Value = Client::new()
        .post(format!("{}/sim/keys/rotate", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = sim.issue_token(&TokenRequest::default());
    assert_ne!(claims_header(&fresh)["kid"], kid_before);
    assert!(verify_with_jwks(&sim, token).await && verify_with_jwks(&sim, &fresh).await);
}

fn claims_header(token: &str) -> Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn key_vault_challenges_then_serves_secrets_to_the_managed_identity() {
    let sim = start().await;
    let client = Client::new();
    let url = format!("{}/secrets/acs-access-key/?api-version=2025-07-01", sim.base_url());
    let challenge = client.get(&url).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(header.contains("resource=\"https://vault.azure.net\""), "{header}");
    assert!(header.contains(&format!(
        "authorization=\"https://login.microsoftonline.com/{}\"",
        sim.seed().tenant_id
    )));
    let vault_token = mi_token(&sim, "https://vault.azure.net").await;
    let ok: Value = client
        .get(&url)
        .bearer_auth(&vault_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["value"].as_str(), sim.secret("acs-access-key").as_deref());
    assert!(
        ok["id"]
            .as_str()
            .unwrap()
            .starts_with("https://kv-mfa-recovery.vault.azure.net/secrets/acs-access-key/")
    );
    // A Graph token is not a vault token.
    let graph_token = mi_token(&sim, "https://graph.microsoft.com").await;
    assert_eq!(
        client.get(&url).bearer_auth(graph_token).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let missing = client
        .get(format!("{}/secrets/nope?api-version=2025-07-01", sim.base_url()))
        .bearer_auth(&vault_token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "SecretNotFound"
    );
}

/// A rotated secret keeps its earlier version, readable by its id, and both are listed with
/// their creation times (Get Secret, Get Secret Versions).
#[tokio::test]
async fn key_vault_keeps_rotated_versions_readable_by_id() {
    let sim = start().await;
    let client = Client::new();
    let token = mi_token(&sim, "https://vault.azure.net").await;
    let get = |path: String| {
        let (client, token, base) = (client.clone(), token.clone(), sim.base_url().to_owned());
        async move {
            let r = client
                .get(format!("{base}{path}?api-version=2025-07-01"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, first) = get("/secrets/audit-key".into()).await;
    let v1 = first["id"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert_eq!(v1.len(), 32, "{first}");
    let r = client
        .post(format!("{}/sim/secrets/audit-key/rotate", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (_, second) = get("/secrets/audit-key".into()).await;
    assert_ne!(second["value"], first["value"]);
    let (status, old) = get(format!("/secrets/audit-key/{v1}")).await;
    assert_eq!((status, &old["value"]), (StatusCode::OK, &first["value"]));
    let (status, unknown) = get("/secrets/audit-key/00000000000000000000000000000000".into()).await;
    assert_eq!(
        (status, &unknown["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("SecretNotFound"))
    );
    let (status, versions) = get("/secrets/audit-key/versions".into()).await;
    assert_eq!(status, StatusCode::OK);
    let listed = versions["value"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{versions}");
    assert!(
        listed
            .iter()
            .all(|v| v.get("value").is_none() && v["attributes"]["created"].is_i64())
    );
}

/// The Logs Ingestion API: a token for https://monitor.azure.com from the identity with
/// Monitoring Metrics Publisher, a JSON array under 1 MB, to the rule's `Custom-` stream: 204.
#[tokio::test]
async fn logs_ingestion_takes_arrays_from_the_publisher_only() {
    let sim = start().await;
    let client = Client::new();
    let url = format!(
        "{}/dataCollectionRules/dcr-00000000000000000000000000000001/streams/Custom-MfaRecoveryAudit?api-version=2023-01-01",
        sim.base_url()
    );
    let monitor = mi_token(&sim, "https://monitor.azure.com").await;
    let post = |token: Option<String>, url: String, body: Vec<u8>| {
        let client = client.clone();
        async move {
            let mut r = client.post(url).header("content-type", "application/json").body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap().status()
        }
    };
    let rows = serde_json::to_vec(&json!([{"TimeGenerated": "2026-12-07T00:00:00Z", "Kind": "record"}])).unwrap();
    assert_eq!(post(None, url.clone(), rows.clone()).await, StatusCode::UNAUTHORIZED);
    let graph = mi_token(&sim, "https://graph.microsoft.com").await;
    assert_eq!(
        post(Some(graph), url.clone(), rows.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(Some(monitor.clone()), url.clone(), rows.clone()).await,
        StatusCode::NO_CONTENT
    );
    let object = serde_json::to_vec(&json!({"Kind": "record"})).unwrap();
    assert_eq!(
        post(Some(monitor.clone()), url.clone(), object).await,
        StatusCode::BAD_REQUEST
    );
    let big = serde_json::to_vec(&json!([{"Details": "x".repeat(1024 * 1024)}])).unwrap();
    assert_eq!(
        post(Some(monitor.clone()), url.clone(), big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let other = url.replace("Custom-MfaRecoveryAudit", "Microsoft-Syslog");
    assert_eq!(
        post(Some(monitor.clone()), other, rows.clone()).await,
        StatusCode::NOT_FOUND
    );
    client
        .post(format!("{}/sim/monitoring", sim.base_url()))
        .json(&json!({"publisher": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(post(Some(monitor), url, rows).await, StatusCode::FORBIDDEN);
    let ingested: Value = client
        .get(format!("{}/sim/ingested", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ingested["value"].as_array().unwrap().len(), 1, "{ingested}");
}

#[tokio::test]
async fn key_vault_refuses_an_identity_without_the_secrets_user_role() {
    let sim = start_with(|seed| seed["managedIdentity"]["keyVaultSecretsUser"] = json!(false)).await;
    let token = mi_token(&sim, "https://vault.azure.net").await;
    let r = Client::new()
        .get(format!(
            "{}/secrets/acs-access-key?api-version=2025-07-01",
            sim.base_url()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["innererror"]["code"],
        "ForbiddenByRbac"
    );
}

/// Sign a request the way the ACS SDKs do.
fn acs_request(
    sim: &mfa_recovery_sim::Simulator,
    path_and_query: &str,
    body: &Value,
    key: &str,
) -> reqwest::RequestBuilder {
    let body = body.to_string();
    let host = sim.addr().to_string();
    let date = httpdate_now();
    let hash = B64.encode(digest::digest(&digest::SHA256, body.as_bytes()).as_ref());
    let to_sign = format!("POST\n{path_and_query}\n{date};{host};{hash}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, &B64.decode(key).unwrap());
    let signature = B64.encode(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    Client::new()
        .post(format!("{}{path_and_query}", sim.base_url()))
        .header("x-ms-date", date)
        .header("x-ms-content-sha256", hash)
        .header(
            "authorization",
            format!("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"),
        )
        .header("content-type", "application/json")
        .body(body)
}

fn httpdate_now() -> String {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc().format(&fmt).unwrap()
}

#[tokio::test]
async fn acs_sms_checks_the_hmac_signature_and_honours_repeatability() {
    let sim = start().await;
    let key = sim.secret("acs-access-key").unwrap();
    let path = "/acs/sms?api-version=2021-03-07";
    let body = json!({"from": "+18005550199", "message": "Your code", "smsRecipients": [{"to": "+14255550101", "repeatabilityRequestId": "r-1", "repeatabilityFirstSent": "Sat, 28 Nov 2026 00:00:00 GMT"}]});
    let r = acs_request(&sim, path, &body, &key).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let result: Value = r.json().await.unwrap();
    assert_eq!(result["value"][0]["successful"], true);
    assert!(result["value"][0]["messageId"].is_string());
    // The retry of the same request is not sent again.
    let again: Value = acs_request(&sim, path, &body, &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["value"][0]["messageId"], result["value"][0]["messageId"]);
    assert_eq!(sim.outbox().len(), 1);
    assert_eq!(sim.outbox()[0].to, vec!["+14255550101".to_owned()]);
    // A wrong key or a body that does not match its hash is refused.
    let wrong_key = B64.encode([7u8; 32]);
    assert_eq!(
        acs_request(&sim, path, &body, &wrong_key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let tampered =
        acs_request(&sim, path, &body, &key).body(json!({"from": "+18005550199", "message": "other"}).to_string());
    assert_eq!(tampered.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.outbox().len(), 1);
}

#[tokio::test]
async fn acs_email_is_accepted_with_an_operation_to_poll() {
    let sim = start().await;
    let key = sim.secret("acs-access-key").unwrap();
    let body = json!({"senderAddress": "DoNotReply@notify.contoso.test", "recipients": {"to": [{"address": "adele.vance@personal.example"}]},
        "content": {"subject": "Sign-in help", "plainText": "Text"}});
    let r = acs_request(&sim, "/acs/emails:send?api-version=2023-03-31", &body, &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["operation-location"].to_str().unwrap().to_owned();
    let status: Value = reqwest::get(location).await.unwrap().json().await.unwrap();
    assert_eq!(status["status"], "Succeeded");
    assert_eq!(sim.outbox()[0].subject.as_deref(), Some("Sign-in help"));
    let bad_sender = json!({"senderAddress": "ceo@contoso.test", "recipients": {"to": [{"address": "x@y.z"}]}, "content": {"subject": "s", "plainText": "t"}});
    assert_eq!(
        acs_request(&sim, "/acs/emails:send?api-version=2023-03-31", &bad_sender, &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn twilio_needs_basic_auth_and_a_valid_recipient() {
    let sim = start().await;
    let sid = "AC00000000000000000000000000000001";
    let token = sim.secret("twilio-auth-token").unwrap();
    let url = format!("{}/twilio/2010-04-01/Accounts/{sid}/Messages.json", sim.base_url());
    let client = Client::new();
    let form = [("To", "+14255550101"), ("From", "+18005550198"), ("Body", "Your code")];
    let ok = client
        .post(&url)
        .basic_auth(sid, Some(&token))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    assert!(
        ok.json::<Value>().await.unwrap()["sid"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
    assert_eq!(sim.outbox().len(), 1);
    let denied = client
        .post(&url)
        .basic_auth(sid, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(denied.json::<Value>().await.unwrap()["code"], 20003);
    let no_to = client
        .post(&url)
        .basic_auth(sid, Some(&token))
        .form(&[("From", "+18005550198"), ("Body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_to.json::<Value>().await.unwrap()["code"], 21604);
    assert_eq!(sim.outbox().len(), 1);
}

#[tokio::test]
async fn faults_throttle_then_recover_and_the_request_log_shows_them() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let r = Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&json!({"route": "/v1.0/users/*", "method": "GET", "status": 429, "retryAfter": 2, "count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let client = Client::new();
    let url = format!("{}/v1.0/users/{ALEX}", sim.graph_endpoint());
    for _ in 0..2 {
        let r = client.get(&url).bearer_auth(&g.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_graph_error(&r.json::<Value>().await.unwrap(), "TooManyRequests");
    }
    assert_eq!(
        client.get(&url).bearer_auth(&g.token).send().await.unwrap().status(),
        StatusCode::OK
    );
    let log: Value = reqwest::get(format!("{}/sim/requests", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == format!("/v1.0/users/{ALEX}"))
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![429, 429, 200]);
}

#[tokio::test]
async fn an_after_fault_lets_the_call_take_effect_but_reports_an_error() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&json!({"route": "/v1.0/users/*/authentication/temporaryAccessPassMethods", "method": "POST", "status": 504, "after": true}))
        .send()
        .await
        .unwrap();
    let (status, _) = g.create_tap(ALEX, json!({})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let (_, list) = g
        .get(&format!("/v1.0/users/{ALEX}/authentication/temporaryAccessPassMethods"))
        .await;
    assert_eq!(
        list["value"].as_array().unwrap().len(),
        1,
        "the pass exists although the client saw 504"
    );
}

#[tokio::test]
async fn latency_faults_delay_the_answer() {
    let sim = start().await;
    Client::new()
        .post(format!("{}/sim/faults", sim.base_url()))
        .json(&json!({"route": "/v1.0/**", "latencyMs": 300}))
        .send()
        .await
        .unwrap();
    let g = Graph::as_app(&sim).await;
    let started = std::time::Instant::now();
    let (status, _) = g.get(&format!("/v1.0/users/{ALEX}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn reset_restores_the_seeded_tenant_and_clears_the_outbox() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    g.delete(&format!(
        "/v1.0/users/{ALEX}/authentication/microsoftAuthenticatorMethods/0a1b2c3d-1111-4a6b-9c1d-3e0a8f2d4c22"
    ))
    .await;
    g.post(&format!("/v1.0/users/{MAILBOX}/sendMail"), json!({"message": {"subject": "s", "body": {"content": "b"}, "toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}})).await;
    assert_eq!(g.method_types(ALEX, "v1.0").await.len(), 1);
    let r = Client::new()
        .post(format!("{}/sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(g.method_types(ALEX, "v1.0").await.len(), 2);
    assert!(sim.outbox().is_empty());
    let outbox: Value = reqwest::get(format!("{}/sim/outbox", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outbox["value"], json!([]));
}

#[tokio::test]
async fn issued_passes_are_visible_to_tests_only_through_sim_taps() {
    let sim = start().await;
    let g = Graph::as_app(&sim).await;
    let (_, tap) = g.create_tap(ALEX, json!({})).await;
    let taps: Value = reqwest::get(format!("{}/sim/taps", sim.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(taps["value"][0]["temporaryAccessPass"], tap["temporaryAccessPass"]);
    assert_eq!(taps["value"][0]["userId"], ALEX);
}

/// The SPA sign-in (authorization code with PKCE) as the identity platform documents it: an
/// unregistered redirect URI is refused on the page; a request without PKCE is refused back to the
/// app; a code is redeemed once, only with its verifier, for its redirect URI; the access token
/// carries the user's app roles (directly or through a group) and the scope asked for.
#[tokio::test]
async fn spa_sign_in_needs_a_registered_redirect_and_pkce_and_a_code_is_good_once() {
    let sim = start().await;
    let tenant = sim.seed().tenant_id.clone();
    let client_id = sim.seed().api.app_id.clone();
    let redirect = "http://127.0.0.1:7071/api/console/";
    let base = format!("{}/{tenant}/oauth2/v2.0", sim.authority());
    let no_redirects = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = B64URL.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
    let params = |challenge: &str| {
        vec![
            ("client_id", client_id.clone()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", redirect.to_owned()),
            (
                "scope",
                "api://mfa-recovery/user_impersonation openid profile offline_access".to_owned(),
            ),
            ("state", "s1".to_owned()),
            ("nonce", "n1".to_owned()),
            ("code_challenge", challenge.to_owned()),
            ("code_challenge_method", "S256".to_owned()),
            ("response_mode", "fragment".to_owned()),
            ("client_info", "1".to_owned()),
        ]
    };
    // Not registered yet: refused on the page (AADSTS50011), never sent to the URI.
    let r = no_redirects
        .get(format!("{base}/authorize"))
        .query(&params(&challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    sim.register_spa_redirect(redirect);
    let page = no_redirects
        .get(format!("{base}/authorize"))
        .query(&params(&challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Debra Berger"));
    // No PKCE: refused back to the app.
    let r = no_redirects
        .post(format!("{base}/authorize"))
        .form(
            &[
                params("").as_slice(),
                &[("user", "debra.berger@contoso.test".to_owned())],
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(redirect) && location.contains("AADSTS9002325"),
        "{location}"
    );
    // Debra signs in: a code and the state come back in the fragment.
    let debra = "b0000019-0000-4000-8000-000000000019";
    let r = no_redirects
        .post(format!("{base}/authorize"))
        .form(&[params(&challenge).as_slice(), &[("user", debra.to_owned())]].concat())
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let fragment: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.split_once('#').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(fragment["state"], "s1");
    let code = fragment["code"].clone();
    let redeem = |verifier: &str, code: &str| {
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", client_id.clone()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("code_verifier", verifier.to_owned()),
            (
                "scope",
                "api://mfa-recovery/user_impersonation openid profile offline_access".to_owned(),
            ),
        ];
        Client::new()
            .post(format!("{base}/token"))
            .header("origin", "http://127.0.0.1:7071")
            .form(&form)
            .send()
    };
    // Redeemed without an Origin (not from a browser): refused, as Entra refuses a SPA's code.
    let r = Client::new()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"].as_str().unwrap().starts_with("AADSTS9002327"),
        "{body}"
    );
    // The wrong verifier: refused, and the code is spent.
    let r = redeem("another-verifier-another-verifier-another-verifier", &code)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"].as_str().unwrap().starts_with("AADSTS501481"),
        "{body}"
    );
    let r = redeem(verifier, &code).await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "a code is good once: {body}");
    // A new code, redeemed with its verifier, cross-origin from the registered origin.
    let r = no_redirects
        .post(format!("{base}/authorize"))
        .form(&[params(&challenge).as_slice(), &[("user", debra.to_owned())]].concat())
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let code: String = url::form_urlencoded::parse(location.split_once('#').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let r = redeem(verifier, &code).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://127.0.0.1:7071");
    let body: Value = r.json().await.unwrap();
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], client_id.as_str());
    assert_eq!(access["scp"], "user_impersonation");
    assert_eq!(access["oid"], debra);
    assert_eq!(access["roles"], json!(["Recovery.Tap", "Recovery.Reset"]));
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n1");
    assert!(verify_with_jwks(&sim, body["access_token"].as_str().unwrap()).await);
    // Megan holds no app role on the API, which requires an assignment: no code for her.
    let r = no_redirects
        .post(format!("{base}/authorize"))
        .form(
            &[
                params(&challenge).as_slice(),
                &[("user", "megan.bowen@contoso.test".to_owned())],
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.contains("AADSTS50105") && !location.contains("code="),
        "{location}"
    );
}

/// sendMail through Exchange RBAC for Applications: the demo identity holds no Entra Mail.Send,
/// only "Application Mail.Send" scoped to the service mailbox: it sends as that mailbox, not as
/// anyone else (403 ErrorAccessDenied).
#[tokio::test]
async fn the_identity_sends_only_as_the_mailbox_its_exchange_scope_holds() {
    let sim = mfa_recovery_sim::Simulator::start(mfa_recovery_sim::Seed::demo(), "127.0.0.1:0")
        .await
        .unwrap();
    assert!(
        !sim.seed()
            .managed_identity
            .graph_permissions
            .iter()
            .any(|p| p == "Mail.Send")
    );
    let token = sim.issue_token(&mfa_recovery_sim::TokenRequest {
        audience: Some("https://graph.microsoft.com".into()),
        roles: sim.seed().managed_identity.graph_permissions.clone(),
        app_id: Some(sim.seed().managed_identity.client_id.clone()),
        ..Default::default()
    });
    let mail = serde_json::json!({"message": {"subject": "s", "body": {"contentType": "Text", "content": "t"},
        "toRecipients": [{"emailAddress": {"address": "adele.vance@contoso.test"}}]}, "saveToSentItems": false});
    let client = reqwest::Client::new();
    let send = |from: &str| {
        client
            .post(format!("{}/v1.0/users/{from}/sendMail", sim.base_url()))
            .bearer_auth(&token)
            .json(&mail)
            .send()
    };
    assert_eq!(send("mfa-recovery@contoso.test").await.unwrap().status(), 202);
    let denied = send("megan.bowen@contoso.test").await.unwrap();
    assert_eq!(denied.status(), 403);
    let e: serde_json::Value = denied.json().await.unwrap();
    assert_eq!(e["error"]["code"], "ErrorAccessDenied");
}
