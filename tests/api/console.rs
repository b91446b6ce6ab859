//! The console (`/api/console/…`) and the user summary it starts from (`GET /api/users/{user}`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Every answer of the console carries a CSP that allows no inline script, no other origin's
/// script, no framing; the page itself has no inline script or handler to need one.
#[tokio::test]
async fn every_console_answer_carries_a_strict_csp_and_the_page_needs_no_inline_script() {
    let app = spawn_app_with(&[("AUTH_CLIENT_ID", "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31")]).await;
    for path in [
        "/api/console/",
        "/api/console/app.js",
        "/api/console/app.css",
        "/api/console/msal-browser.min.js",
        "/api/console/config.json",
        "/api/console/nothing-here.js",
    ] {
        let r = app.get(path).await;
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for needle in [
            "default-src 'none'",
            "script-src 'self';",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(needle), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    let page = std::fs::read_to_string(repo_path("console/index.html")).unwrap();
    let script_tags = regex::Regex::new(r"<script(?:\s[^>]*)?>").unwrap();
    for tag in script_tags.find_iter(&page) {
        assert!(tag.as_str().contains(" src="), "an inline script: {}", tag.as_str());
    }
    assert!(
        !regex::Regex::new(r"(?i)\son[a-z]+=").unwrap().is_match(&page),
        "an inline handler"
    );
    assert!(!page.contains("style="), "an inline style");
    // `/api/console` sends the browser to the page's own folder.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/api/console", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], "/api/console/");
}

/// The page's MSAL is the npm package's own build (package.json pins its version).
#[test]
fn the_vendored_msal_is_the_npm_packages_build() {
    let vendored = std::fs::read(repo_path("console/msal-browser.min.js")).unwrap();
    let npm = std::fs::read(repo_path("node_modules/@azure/msal-browser/lib/msal-browser.min.js"))
        .expect("node_modules/@azure/msal-browser (npm ci, which scripts/test runs)");
    assert!(
        vendored == npm,
        "console/msal-browser.min.js differs from the pinned npm package"
    );
    let package: Value = serde_json::from_str(&std::fs::read_to_string(repo_path("package.json")).unwrap()).unwrap();
    let version = package["devDependencies"]["@azure/msal-browser"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&vendored[..80]).contains(&format!("v{version}")));
}

/// `config.json` names the API's registration, the tenant's authority and the scope; without the
/// client id the console says what is missing.
#[tokio::test]
async fn the_console_config_names_the_registration_and_says_what_is_missing() {
    let app = spawn_app_with(&[("AUTH_CLIENT_ID", "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31")]).await;
    let config: Value = app.get("/api/console/config.json").await.json().await.unwrap();
    assert_eq!(config["clientId"], "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31");
    assert_eq!(config["scopes"][0], "api://mfa-recovery/user_impersonation");
    // The simulated tenant is plain http: MSAL gets an https name and the real endpoints.
    let authority = config["authority"].as_str().unwrap();
    assert!(authority.starts_with("https://127.0.0.1:"), "{authority}");
    let metadata: Value = serde_json::from_str(config["authorityMetadata"].as_str().unwrap()).unwrap();
    assert!(
        metadata["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&app.sim.authority())
    );
    let bare = spawn_app().await;
    let r = bare.get("/api/console/config.json").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("AUTH_CLIENT_ID"),
        "{body}"
    );
}

/// The summary an agent sees: methods by kind with masked numbers and no secret, the channels with
/// masked addresses, the policy scope, the reset's dry run; a protected user only as "protected";
/// agents only; every look audited; a failed read refuses.
#[tokio::test]
async fn the_user_summary_is_masked_for_agents_only_audited_and_fails_closed() {
    let app = spawn_app().await;
    let get = |user: &str, roles: &[&str]| {
        app.client
            .get(format!("{}/api/users/{user}", app.base))
            .bearer_auth(app.token(roles))
            .send()
    };
    let audit_reads = || {
        app.sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/auditLogs/directoryAudits"))
            .count()
    };
    let before = audit_reads();
    let r = get("adele.vance@contoso.test", &["Recovery.Tap"]).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The directory audit log is read once for the three channels, not once per channel.
    assert_eq!(audit_reads() - before, 1);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let s: Value = r.json().await.unwrap();
    assert_eq!(s["displayName"], "Adele Vance");
    assert_eq!(s["protected"], false);
    assert_eq!(s["tapPolicy"]["inScope"], true);
    assert_eq!(s["channels"]["sms"]["available"], true);
    let text = s.to_string();
    // The seed's full numbers and addresses never appear, only masked.
    let view: Value = app
        .client
        .get(format!("{}/sim/users/adele.vance@contoso.test", app.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for m in view["methods"].as_array().unwrap() {
        for field in ["phoneNumber", "emailAddress"] {
            if let Some(value) = m[field].as_str() {
                assert!(!text.contains(value), "{value} is shown unmasked: {text}");
            }
        }
    }
    assert!(
        s["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "microsoftAuthenticator")
    );
    assert!(!s["resetPlan"]["portal"]["remove"].as_array().unwrap().is_empty());
    // Allan, an eligible Global Administrator: protected, and nothing says which role.
    let s: Value = get("allan.deyoung@contoso.test", &["Recovery.Reset"])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["protected"], true, "{s}");
    assert!(!s.to_string().contains("Global Administrator"), "{s}");
    assert!(s.get("methods").is_none() && s.get("channels").is_none(), "{s}");
    // Not an agent: refused.
    let r = get("adele.vance@contoso.test", &["Audit.Read"]).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Each look is in the trail: who looked at whom.
    let looks = app.audit_of(Some("user.lookup")).await;
    let targets: Vec<&str> = looks
        .iter()
        .filter(|r| r["outcome"]["status"] == "succeeded")
        .filter_map(|r| r["target"]["upn"].as_str())
        .collect();
    assert!(
        targets.contains(&"adele.vance@contoso.test") && targets.contains(&"allan.deyoung@contoso.test"),
        "{looks:?}"
    );
    // A read the summary needs fails: refused, not half shown. (The TAP policy, read by the
    // looks above, is a tenant fact kept 60 s; the user's methods are read by every look.)
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&serde_json::json!({"route": "/beta/users/*/authentication/methods", "status": 503, "count": 20}))
        .send()
        .await
        .unwrap();
    let r = get("lee.gu@contoso.test", &["Recovery.Tap"]).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "graph_unavailable", "{body}");
}

/// "Run now": `POST /api/sweeps` for `Audit.Read` only, audited with who asked, one at a time
/// (`409 sweep_running` while one runs, seen through `GET /api/sweeps/current`), and the history
/// then lists the run.
#[tokio::test]
async fn run_now_is_for_auditors_one_at_a_time_audited_and_lands_in_the_history() {
    let app = spawn_app().await;
    let post = |roles: &[&str]| {
        app.client
            .post(format!("{}/api/sweeps", app.base))
            .bearer_auth(app.token(roles))
            .send()
    };
    assert_eq!(post(&["Recovery.Tap"]).await.unwrap().status(), StatusCode::FORBIDDEN);
    // The registration report answers slowly (its first three pages), so the run is still going
    // when asked again.
    app.client
        .post(format!("{}/sim/faults", app.sim.base_url()))
        .json(&serde_json::json!({"route": "/*/reports/**", "latencyMs": 1500, "count": 3}))
        .send()
        .await
        .unwrap();
    let r = post(&["Audit.Read"]).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["location"], "/api/sweeps/current");
    let auditor = app.token(&["Audit.Read"]);
    let get = |path: &'static str| {
        app.client
            .get(format!("{}/api/sweeps/{path}", app.base))
            .bearer_auth(&auditor)
            .send()
    };
    let mut running = false;
    for _ in 0..150 {
        let r = get("current").await.unwrap();
        // The first checkpoint comes after the first (slow) page: ask until it says `running`
        // (the next slow pages keep the run going).
        if r.status() == StatusCode::OK && r.json::<Value>().await.unwrap()["running"] == true {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(running, "the run is in progress");
    let again = post(&["Audit.Read"]).await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sweep_running", "{body}");
    // The run paces its report reads (SWEEP_REQUESTS_PER_10S) and the first three are slow: with the demo
    // tenant's 21 users, about ten seconds on an idle machine. Wait up to 30.
    let mut finished = false;
    for _ in 0..300 {
        let p: Value = get("current").await.unwrap().json().await.unwrap();
        if p["running"] == false {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(finished, "the run finished");
    let history: Value = get("history").await.unwrap().json().await.unwrap();
    assert_eq!(history["value"].as_array().unwrap().len(), 1, "{history}");
    // Right after a run, another is refused (the reports API's allowance is the tenant's).
    let soon = post(&["Audit.Read"]).await.unwrap();
    assert_eq!(soon.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(soon.headers().contains_key("retry-after"));
    let body: Value = soon.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sweep_too_soon", "{body}");
    assert_eq!(history["value"][0]["trigger"], "api");
    let started: Vec<Value> = app
        .audit_of(Some("sweep.run"))
        .await
        .into_iter()
        .filter(|r| r["phase"] == "intent")
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["caller"]["via"], "token");
}

/// A browser never gets a pass: with TAP_RETURN_TO_CALLER on, a token the console got (issued to
/// the API's own registration, AUTH_CLIENT_ID) is answered without it; another client still gets
/// it, as that setting documents.
#[tokio::test]
async fn the_console_never_gets_a_pass_even_when_passes_are_returned_to_callers() {
    const CLIENT: &str = "0d5f3a2e-6a41-4c55-8a57-2b8c1f0e9d31";
    let app = spawn_app_with(&[("AUTH_CLIENT_ID", CLIENT), ("TAP_RETURN_TO_CALLER", "true")]).await;
    let body = serde_json::json!({
        "delivery": {"channel": "sms"},
        "ticket": {"system": "servicenow", "id": "INC0088001"},
        "reason": "lost phone",
        "verification": {"method": "manager callback", "verifiedBy": "agent@contoso.test",
            "verifiedAt": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap()},
    });
    let tap = |app_id: &str, user: &str| {
        let token = app.sim.issue_token(&mfa_recovery_sim::TokenRequest {
            roles: vec!["Recovery.Tap".into()],
            app_id: Some(app_id.to_owned()),
            ..Default::default()
        });
        app.client
            .post(format!("{}/api/users/{user}/tap", app.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let from_console: Value = tap(CLIENT, "adele.vance@contoso.test")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(from_console["delivery"]["channel"], "sms", "{from_console}");
    assert!(from_console.get("temporaryAccessPass").is_none(), "{from_console}");
    let other: Value = tap("7a1d0b9e-3c4f-4e8a-9b2d-5f6e7a8b9c0d", "lee.gu@contoso.test")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        other["temporaryAccessPass"].is_string(),
        "another client still gets it: {other}"
    );
}

/// Look-ups are limited per agent (USER_LOOKUPS_PER_CALLER_PER_HOUR), so a stolen session
/// cannot list the tenant; a failed look-up records what was asked.
#[tokio::test]
async fn look_ups_are_limited_per_agent_and_a_failed_one_records_what_was_asked() {
    let app = spawn_app_with(&[("USER_LOOKUPS_PER_CALLER_PER_HOUR", "2")]).await;
    let token = app.token(&["Recovery.Tap"]);
    let get = |user: &str| {
        app.client
            .get(format!("{}/api/users/{user}", app.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get("adele.vance@contoso.test").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("nobody.here@contoso.test").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let third = get("lee.gu@contoso.test").await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let looks = app.audit_of(Some("user.lookup")).await;
    assert!(
        looks
            .iter()
            .any(|r| r["details"]["requested"] == "nobody.here@contoso.test"),
        "{looks:?}"
    );
}

/// `GET /api/users?search=`: a partial name finds candidates, with what tells them apart and
/// contact details masked; counted in the look-up limit; audited as `user.search`.
#[tokio::test]
async fn a_partial_name_finds_candidates_masked_limited_and_audited() {
    let app = spawn_app_with(&[("USER_LOOKUPS_PER_CALLER_PER_HOUR", "3")]).await;
    let token = app.token(&["Recovery.Tap"]);
    let search = |q: &str| {
        app.client
            .get(format!("{}/api/users", app.base))
            .query(&[("search", q)])
            .bearer_auth(&token)
            .send()
    };
    let r = search("adele").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let found = body["value"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0]["userPrincipalName"], "adele.vance@contoso.test");
    assert_eq!(found[0]["mail"], "a***e@contoso.test", "{body}");
    assert!(found[0]["mobilePhone"].as_str().unwrap().contains('*'), "{body}");
    // A first name shared by nobody else, a surname prefix, a mail prefix.
    let body: Value = search("Gu").await.unwrap().json().await.unwrap();
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["userPrincipalName"] == "lee.gu@contoso.test"),
        "{body}"
    );
    // Too short: refused before any look-up is counted.
    let r = search("a").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Each user a search shows is a look-up: two searches of one user each have used two of the
    // three; a search showing two (Alex, Allan) is over the limit.
    let r = search("al").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Only agents who may recover search.
    let r = app
        .client
        .get(format!("{}/api/users?search=adele", app.base))
        .bearer_auth(app.token(&["Audit.Read"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let records = app.audit_of(Some("user.search")).await;
    assert!(
        records
            .iter()
            .any(|r| r["details"]["search"] == "adele" && r["details"]["found"] == 1),
        "{records:?}"
    );
}
