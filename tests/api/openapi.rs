//! `api/openapi.json`, the OpenAPI document of the whole HTTP API (the fuzzer's input, and what
//! integrators read), held against the router: every route is documented with its method, and
//! nothing is documented that the router does not serve. `scripts/fuzz-api` then drives the app
//! with it (schemathesis).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::repo_path;

#[test]
fn the_openapi_document_lists_exactly_the_routes_the_router_serves() {
    // The router's own table (the router is built from it).
    let served: BTreeSet<(String, String)> = mfa_recovery::host::routes::endpoints()
        .iter()
        .map(|e| (e.method.as_str().to_lowercase(), e.path.to_owned()))
        // The console's static files are a page, not the API (docs/console.md).
        .filter(|(_, path)| !path.starts_with("/api/console"))
        .collect();
    assert!(served.len() >= 8, "{served:?}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(repo_path("api/openapi.json")).unwrap()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    assert_eq!(documented, served);
    // Every refusal the app gives is an error body with a code, and every protected operation
    // documents 401 and 403.
    for (method, path) in &documented {
        let op = &doc["paths"][path][method];
        let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        // The liveness probe and the confirmation link's page and answer are anonymous (the
        // link's secret is the proof).
        if path != "/api/health" && path != "/api/confirm/{id}" {
            for needed in ["401", "403"] {
                assert!(codes.iter().any(|c| *c == needed), "{method} {path} lacks {needed}");
            }
        }
    }
}

/// Every documented error code is named in both API documents (the Error schema's `code`), so a
/// flow author or a client generator sees the codes a call can answer.
#[test]
fn every_error_code_is_named_in_the_openapi_document_and_the_connector() {
    let openapi = std::fs::read_to_string(repo_path("api/openapi.json")).unwrap();
    let connector = std::fs::read_to_string(repo_path("connector/apiDefinition.swagger.json")).unwrap();
    for code in mfa_recovery::vocab::ErrorCode::all() {
        let code = code.as_str();
        assert!(openapi.contains(code), "api/openapi.json does not name {code}");
        assert!(connector.contains(code), "the connector does not name {code}");
    }
}
