//! Caller authentication: tokens minted by the simulator's issuer, and forged ones.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use mfa_recovery_sim::{Seed, Simulator, TokenRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const TAP: &str = "/api/users/alex.wilber@contoso.test/tap";

fn request(roles: &[&str]) -> TokenRequest {
    TokenRequest {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    }
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut r = app.client.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post_tap(app: &TestApp, token: Option<&str>) -> (StatusCode, String) {
    call(app, reqwest::Method::POST, TAP, token).await
}

fn forge_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2])
}

#[tokio::test]
async fn every_route_but_health_refuses_a_call_without_credentials() {
    let app = spawn_app().await;
    for (method, path) in [
        ("POST", TAP),
        ("POST", "/api/users/alex.wilber@contoso.test/mfa/reset"),
        ("GET", "/api/audit"),
        ("POST", "/api/requests"),
        ("GET", "/api/requests/7d3c2b1a-0000-4000-8000-000000000001"),
    ] {
        let (status, _) = call(
            &app,
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            path,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(app.get("/api/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_valid_token_with_the_role_is_accepted_in_v1_and_v2_forms() {
    let app = spawn_app().await;
    let v2 = app.sim.issue_token(&request(&["Recovery.Tap"]));
    let v1 = app.sim.issue_token(&TokenRequest {
        version: Some(1),
        ..request(&["Recovery.Tap"])
    });
    for token in [v2, v1] {
        // Past authentication, the empty body is the caller's next problem.
        assert_eq!(post_tap(&app, Some(&token)).await.0, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn forged_and_unfit_tokens_are_refused_with_one_body() {
    let app = spawn_app().await;
    let good = app.sim.issue_token(&request(&["Recovery.Tap"]));
    let other_tenant_sim = Simulator::start(Seed::demo(), "127.0.0.1:0").await.unwrap();
    let header_none = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = good.split('.').nth(1).unwrap();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::from_slice::<Value>(&B64.decode(payload).unwrap()).unwrap(),
        &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            forge_payload(&good, |c| c["roles"] = json!(["Recovery.Tap", "Audit.Read"])),
        ),
        (
            "signed by another issuer's key",
            other_tenant_sim.issue_token(&request(&["Recovery.Tap"])),
        ),
        (
            "wrong audience",
            app.sim.issue_token(&TokenRequest {
                audience: Some("api://something-else".into()),
                ..request(&["Recovery.Tap"])
            }),
        ),
        (
            "wrong tenant",
            app.sim.issue_token(&TokenRequest {
                tenant_id: Some("00000000-0000-4000-8000-000000000009".into()),
                ..request(&["Recovery.Tap"])
            }),
        ),
        (
            "expired beyond the skew",
            app.sim.issue_token(&TokenRequest {
                expires_in: Some(-300),
                ..request(&["Recovery.Tap"])
            }),
        ),
        (
            "not yet valid",
            app.sim.issue_token(&TokenRequest {
                not_before: Some(600),
                ..request(&["Recovery.Tap"])
            }),
        ),
        ("alg none", format!("{header_none}.{payload}.")),
        ("HMAC-signed", hs256),
        ("garbage", "not-a-jwt".into()),
    ];
    let mut bodies = Vec::new();
    for (why, token) in &cases {
        let (status, body) = post_tap(&app, Some(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        bodies.push(body);
    }
    let (status, missing) = post_tap(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    bodies.push(missing);
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every 401 says the same: {bodies:#?}"
    );
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_token_within_the_clock_skew_is_accepted() {
    let app = spawn_app().await;
    let just_expired = app.sim.issue_token(&TokenRequest {
        expires_in: Some(-30),
        ..request(&["Recovery.Tap"])
    });
    assert_eq!(post_tap(&app, Some(&just_expired)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_caller_without_the_role_is_forbidden_with_one_body() {
    let app = spawn_app().await;
    let no_role = app.sim.issue_token(&request(&[]));
    let wrong_role = app.sim.issue_token(&request(&["Recovery.Reset", "Audit.Read"]));
    let (s1, b1) = post_tap(&app, Some(&no_role)).await;
    let (s2, b2) = post_tap(&app, Some(&wrong_role)).await;
    assert_eq!((s1, s2), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN));
    assert_eq!(b1, b2);
    assert_eq!(
        serde_json::from_str::<Value>(&b1).unwrap()["error"]["code"],
        "forbidden"
    );
    // Each function asks for its own role.
    let auditor = app.sim.issue_token(&request(&["Audit.Read"]));
    assert_eq!(
        call(&app, reqwest::Method::GET, "/api/audit", Some(&auditor)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, reqwest::Method::POST, "/api/requests", Some(&auditor))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Past authentication, an empty body is the requester's mistake to fix.
    let requester = app.sim.issue_token(&request(&["Recovery.Request"]));
    assert_eq!(
        call(&app, reqwest::Method::POST, "/api/requests", Some(&requester))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn keys_rotated_by_the_issuer_are_fetched_again() {
    let app = spawn_app().await;
    let before = app.sim.issue_token(&request(&["Recovery.Tap"]));
    assert_eq!(post_tap(&app, Some(&before)).await.0, StatusCode::BAD_REQUEST);
    let rotate = app
        .client
        .post(format!("{}/sim/keys/rotate", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(rotate.status().is_success());
    // The cache refetches at most once a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = app.sim.issue_token(&request(&["Recovery.Tap"]));
    assert_eq!(post_tap(&app, Some(&after)).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        post_tap(&app, Some(&before)).await.0,
        StatusCode::BAD_REQUEST,
        "old keys stay published"
    );
    let fetches: Value = app
        .client
        .get(format!("{}/sim/requests", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_calls = fetches["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/discovery/v2.0/keys"))
        .count();
    assert_eq!(jwks_calls, 2, "one fetch at start, one after the rotation");
}

#[tokio::test]
async fn the_client_id_is_an_audience_too_and_only_allowed_client_apps_get_in() {
    let app = spawn_app_with(&[
        ("AUTH_CLIENT_ID", "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31"),
        ("AUTH_ALLOWED_CLIENT_APPS", "7a1d0b9e-3c4f-4e8a-9b2d-5f6e7a8b9c0d"),
    ])
    .await;
    // A v2 token carries the API's client id as its audience.
    let by_client_id = app.sim.issue_token(&TokenRequest {
        audience: Some("0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31".into()),
        ..request(&["Recovery.Tap"])
    });
    let (status, body) = post_tap(&app, Some(&by_client_id)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "authenticated, then the empty body is refused: {body}"
    );
    // A client application outside the allow-list is refused, whatever roles its token holds.
    let other_app = app.sim.issue_token(&TokenRequest {
        app_id: Some("11111111-2222-4333-8444-555555555555".into()),
        ..request(&["Recovery.Tap"])
    });
    assert_eq!(post_tap(&app, Some(&other_app)).await.0, StatusCode::UNAUTHORIZED);
    // Another audience is refused.
    let other_audience = app.sim.issue_token(&TokenRequest {
        audience: Some("api://something-else".into()),
        ..request(&["Recovery.Tap"])
    });
    assert_eq!(post_tap(&app, Some(&other_audience)).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_delegated_token_must_carry_the_apis_scope() {
    let app = spawn_app().await;
    let user = |scope: Option<&str>| {
        app.sim.issue_token(&TokenRequest {
            upn: Some("agent@contoso.test".into()),
            scope: scope.map(str::to_owned),
            ..request(&["Recovery.Tap"])
        })
    };
    assert_eq!(
        post_tap(&app, Some(&user(None))).await.0,
        StatusCode::BAD_REQUEST,
        "user_impersonation"
    );
    assert_eq!(
        post_tap(&app, Some(&user(Some("")))).await.0,
        StatusCode::UNAUTHORIZED,
        "no scp"
    );
    assert_eq!(
        post_tap(&app, Some(&user(Some("User.Read")))).await.0,
        StatusCode::UNAUTHORIZED,
        "another API's scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_fetch_for_a_forged_key_id_does_not_hold_up_valid_tokens() {
    let app = spawn_app().await;
    let valid = app.token(&["Recovery.Tap"]);
    assert_eq!(
        post_tap(&app, Some(&valid)).await.0,
        StatusCode::BAD_REQUEST,
        "keys fetched"
    );
    // The issuer becomes slow; a token naming an unknown key id makes the app fetch again.
    let tenant = app.sim.seed().tenant_id.clone();
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&json!({"route": format!("/{tenant}/discovery/v2.0/keys"), "latencyMs": 3000, "count": 10}))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let parts: Vec<&str> = valid.split('.').collect();
    let mut header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    header["kid"] = json!("forged-key-id");
    let forged = format!("{}.{}.{}", B64.encode(header.to_string()), parts[1], parts[2]);
    let slow = {
        let app_base = app.base.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{app_base}{TAP}"))
                .bearer_auth(forged)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert_eq!(post_tap(&app, Some(&valid)).await.0, StatusCode::BAD_REQUEST);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "a valid token waited {:?} for another request's key fetch",
        started.elapsed()
    );
    assert_eq!(slow.await.unwrap(), StatusCode::UNAUTHORIZED);
}
