//! host.json and functions/*/function.json held against the router: every HTTP route a
//! function.json declares is served, every queue and timer function has an invocation handler,
//! and host.json is a valid custom-handler configuration.

use std::collections::BTreeSet;

use mfa_recovery::host::functions::{FUNCTIONS, Trigger};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn function_folders() -> BTreeSet<String> {
    std::fs::read_dir(repo_path("functions"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("function.json").is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

fn function_json(name: &str) -> Value {
    read_json(&format!("functions/{name}/function.json"))
}

#[test]
fn host_json_is_a_valid_custom_handler_configuration() {
    let host = read_json("host.json");
    assert_eq!(host["version"], "2.0");
    let handler = &host["customHandler"];
    assert_eq!(
        handler["description"]["defaultExecutablePath"], "mfa-recovery",
        "the binary's name"
    );
    assert!(
        handler["description"]["arguments"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "no arguments: the binary serves by default"
    );
    assert_eq!(handler["enableForwardingHttpRequest"], true);
    assert!(handler.get("enableProxyingHttpRequest").is_none(), "one HTTP mode only");
    assert!(
        host.get("httpWorker").is_none(),
        "the deprecated section name is not used"
    );
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    assert_eq!(
        host["extensions"]["http"]["routePrefix"], "api",
        "routes are served under /api"
    );
    let queues = &host["extensions"]["queues"];
    let max = queues["maxDequeueCount"].as_u64().expect("maxDequeueCount is a number");
    assert!((2..=10).contains(&max), "maxDequeueCount {max}");
    assert_eq!(
        queues["messageEncoding"], "none",
        "the intake writes unencoded JSON text (docs/architecture.md)"
    );
    assert!(queues["batchSize"].as_u64().is_some_and(|b| (1..=32).contains(&b)));
    // The Cargo binary the host starts is the one host.json names.
    let cargo = std::fs::read_to_string(repo_path("Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"mfa-recovery\"\npath = \"src/main.rs\""));
}

#[test]
fn every_function_folder_is_in_the_catalog_and_the_other_way_round() {
    let folders = function_folders();
    let catalog: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_owned()).collect();
    assert_eq!(folders, catalog);
    let expected: BTreeSet<String> = [
        "tap",
        "reset",
        "audit",
        "requests",
        "recovery-worker",
        "recovery-poison",
        "compliance-sweep",
        "health",
        // Beyond DESIGN.md's table: issue #7 asks for `GET /api/sweeps/latest`.
        "sweeps",
        // Issue "Prove who is asking": verifications the service makes and checks.
        "verifications",
        "verification-confirm",
        // The same issue: a second approver.
        "request-approve",
        "request-deny",
        // Issue "The helpdesk console": the page and the user summary it starts from.
        "user",
        "console",
        // Issue "A console that is safe by default": finding a user by name.
        "users",
        "sweep-run",
        "approvals",
        // Issue "… a `doctor` for real tenants": the report, to Audit.Read holders.
        "doctor",
        // Issue "A recovery in four round trips": notices after the answer, from the outbox.
        "notice-worker",
        // Issue "The user confirms…": a verification's status, the link's page, lifting a block.
        "verification",
        "confirm",
        "recovery-block-lift",
        // Issue "An outside witness": the trail's copy in Log Analytics.
        "audit-export",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        catalog, expected,
        "the names in DESIGN.md's table, and the ones issues added"
    );
}

#[test]
fn each_function_json_declares_what_the_catalog_says() {
    for spec in FUNCTIONS {
        let fj = function_json(spec.name);
        let bindings = fj["bindings"].as_array().unwrap();
        let inputs: Vec<&Value> = bindings.iter().filter(|b| b["direction"] == "in").collect();
        assert_eq!(inputs.len(), 1, "{}: one trigger", spec.name);
        let trigger = inputs[0];
        assert_eq!(trigger["name"], spec.binding, "{}: binding name", spec.name);
        match spec.trigger {
            Trigger::Http { methods, route } => {
                // Forwarding applies only to exactly one httpTrigger in and one http out.
                assert_eq!(bindings.len(), 2, "{}", spec.name);
                assert_eq!(trigger["type"], "httpTrigger");
                assert!(bindings.iter().any(|b| b["type"] == "http" && b["direction"] == "out"));
                assert_eq!(trigger["route"], route, "{}", spec.name);
                assert_eq!(
                    trigger["authLevel"], "anonymous",
                    "{}: the handler authenticates callers",
                    spec.name
                );
                let declared: BTreeSet<String> = trigger["methods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_uppercase())
                    .collect();
                let catalog: BTreeSet<String> = methods.iter().map(|m| (*m).to_owned()).collect();
                assert_eq!(declared, catalog, "{}", spec.name);
            }
            Trigger::Queue { queue } => {
                assert_eq!(trigger["type"], "queueTrigger");
                assert_eq!(trigger["queueName"], queue);
                assert_eq!(trigger["connection"], "AzureWebJobsStorage");
                assert_eq!(bindings.len(), 1, "{}: no output bindings", spec.name);
            }
            Trigger::Timer { schedule } => {
                assert_eq!(trigger["type"], "timerTrigger");
                assert_eq!(trigger["schedule"], schedule);
                let expected = if spec.name == "audit-export" {
                    "0 */1 * * * *"
                } else {
                    "%SWEEP_SCHEDULE%"
                };
                assert_eq!(trigger["schedule"], expected);
                assert_eq!(trigger["runOnStartup"], false);
            }
        }
    }
    assert_eq!(
        function_json("recovery-worker")["bindings"][0]["queueName"],
        "recovery-requests"
    );
    assert_eq!(
        function_json("recovery-poison")["bindings"][0]["queueName"],
        "recovery-requests-poison"
    );
    assert_eq!(
        function_json("notice-worker")["bindings"][0]["queueName"],
        "recovery-notices"
    );
}

/// The router paths a Functions route template stands for: `{x?}` with and without the segment,
/// a catch-all `{*path}` also without it (with and without the trailing slash).
fn router_paths(route: &str) -> BTreeSet<String> {
    let mut paths = vec![String::from("/api")];
    for segment in route.split('/') {
        let optional = segment.ends_with("?}") || segment.starts_with("{*");
        let segment = segment.replace("?}", "}");
        let mut next: Vec<String> = paths.iter().map(|p| format!("{p}/{segment}")).collect();
        if optional {
            next.extend(paths.iter().cloned());
            next.extend(
                paths
                    .iter()
                    .map(|p| format!("{p}/"))
                    .filter(|_| segment.starts_with("{*")),
            );
        }
        paths = next;
    }
    paths.into_iter().collect()
}

/// The router's table and the catalog agree: each endpoint belongs to an HTTP function whose
/// function.json declares its method and whose route stands for its path, and each declared
/// method of each HTTP function has an endpoint.
#[test]
fn the_router_is_built_from_the_functions_routes_and_methods() {
    let endpoints = mfa_recovery::host::routes::endpoints();
    for e in &endpoints {
        let spec = FUNCTIONS
            .iter()
            .find(|f| f.name == e.function)
            .unwrap_or_else(|| panic!("{} {}: no function {}", e.method, e.path, e.function));
        let Trigger::Http { methods, route } = spec.trigger else {
            panic!("{}: not an HTTP function", e.function)
        };
        assert!(
            methods.contains(&e.method.as_str()),
            "{} {}: {methods:?}",
            e.method,
            e.path
        );
        assert!(
            router_paths(route).contains(e.path),
            "{} {}: not what {route} stands for ({:?})",
            e.method,
            e.path,
            router_paths(route)
        );
    }
    for spec in FUNCTIONS {
        if let Trigger::Http { methods, .. } = spec.trigger {
            for m in methods {
                assert!(
                    endpoints
                        .iter()
                        .any(|e| e.function == spec.name && e.method.as_str() == *m),
                    "{} {m}: declared, not served",
                    spec.name
                );
            }
        }
    }
    assert_eq!(
        router_paths("requests/{id?}"),
        ["/api/requests", "/api/requests/{id}"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}

/// Concrete paths for a Functions route template (`{x}` filled, `{x?}` with and without).
fn concrete_paths(route: &str) -> Vec<String> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut optional = false;
    for segment in route.split('/') {
        if segment.starts_with("{*") {
            // A catch-all (`console/{*path}`): a file under it, and the route without it.
            optional = true;
            with.push("app.js".to_owned());
        } else if segment.starts_with('{') && segment.ends_with("?}") {
            optional = true;
            with.push("b0000001-0000-4000-8000-000000000001".to_owned());
        } else if segment.starts_with('{') {
            with.push("adele.vance@contoso.test".to_owned());
            without.push("adele.vance@contoso.test".to_owned());
        } else {
            with.push(segment.to_owned());
            without.push(segment.to_owned());
        }
    }
    let mut out = vec![format!("/api/{}", with.join("/"))];
    if optional {
        out.push(format!("/api/{}", without.join("/")));
    }
    out
}

/// Every concrete path of every function.json route is routed (never 404), and every declared
/// method is served on at least one of them. With an optional segment (`requests/{id?}`) the host
/// forwards both methods to both paths; the combinations the design leaves out (POST with an id,
/// GET without) answer 405 with a JSON error.
#[tokio::test]
async fn every_http_route_in_a_function_json_is_served() {
    let app = spawn_app().await;
    let mut checked = 0;
    for name in function_folders() {
        let fj = function_json(&name);
        let trigger = &fj["bindings"][0];
        if trigger["type"] != "httpTrigger" {
            continue;
        }
        for method in trigger["methods"].as_array().unwrap() {
            let method = reqwest::Method::from_bytes(method.as_str().unwrap().to_uppercase().as_bytes()).unwrap();
            let mut served_somewhere = false;
            for path in concrete_paths(trigger["route"].as_str().unwrap()) {
                let r = app
                    .client
                    .request(method.clone(), format!("{}{path}", app.base))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let html_or_script = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.starts_with("text/"));
                if html_or_script || status.is_redirection() {
                    // The console's files (and its redirect to `/api/console/`).
                    assert_ne!(status, StatusCode::NOT_FOUND, "{name}: {method} {path}");
                    served_somewhere = true;
                    checked += 1;
                    continue;
                }
                let body: Value = r.json().await.expect("every answer is JSON");
                assert_ne!(
                    body["error"]["code"], "not_found",
                    "{name}: {method} {path} answered {status} {body}"
                );
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    assert_eq!(body["error"]["code"], "method_not_allowed");
                } else {
                    served_somewhere = true;
                }
                checked += 1;
            }
            assert!(served_somewhere, "{name}: {method} is served on no path of its route");
        }
    }
    assert!(checked >= 8, "checked {checked} routes");
}

#[tokio::test]
async fn every_queue_and_timer_function_has_an_invocation_handler() {
    let app = spawn_app().await;
    for spec in FUNCTIONS {
        let envelope = match spec.trigger {
            Trigger::Http { .. } => continue,
            Trigger::Queue { .. } => {
                host_queue_envelope(spec.binding, r#"{"requestId":"7d3c2b1a-0000-4000-8000-000000000001"}"#)
            }
            Trigger::Timer { .. } => fixture("timer-trigger.request.json"),
        };
        let r = app
            .invoke(spec.name, &envelope, "3f1b6c2e-8f55-4d0e-9a51-0c7e9d1b2a30")
            .await;
        assert_ne!(r.status(), StatusCode::NOT_FOUND, "{}", spec.name);
        assert_ne!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{}", spec.name);
    }
    // HTTP functions are forwarded, never invoked with an envelope.
    let r = app
        .invoke(
            "health",
            &fixture("http-envelope.request.json"),
            "3f1b6c2e-8f55-4d0e-9a51-0c7e9d1b2a31",
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .invoke(
            "no-such-function",
            &fixture("timer-trigger.request.json"),
            "3f1b6c2e-8f55-4d0e-9a51-0c7e9d1b2a32",
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_readiness_probe_and_health_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    let r = app.get("/api/health").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let r = app.get("/api/nothing-here").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    let r = app
        .client
        .delete(format!("{}/api/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "method_not_allowed");
}
