//! The Power Automate custom connector (`connector/apiDefinition.swagger.json`) against the
//! served API: every operation is a route the app serves, and every body field the connector
//! offers is one the app accepts. (`scripts/test` validates the file as OpenAPI 2.0.)

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::*;

fn definition() -> Value {
    read_json("connector/apiDefinition.swagger.json")
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["definitions"][r.trim_start_matches("#/definitions/")],
        None => schema,
    }
}

/// An example of `schema` from its `example`s: the required properties, or all of them.
fn example(doc: &Value, schema: &Value, all: bool) -> Value {
    let schema = resolve(doc, schema);
    if schema["format"] == "date-time" {
        return json!(crate::intake::now_rfc3339());
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            if all || required.contains(&name.as_str()) {
                out.insert(name.clone(), example(doc, prop, all));
            }
        }
    }
    Value::Object(out)
}

/// A body schema with its `$ref` followed.
fn schema_of(doc: &Value, schema: &Value) -> Value {
    resolve(doc, schema).clone()
}

fn operations(doc: &Value) -> Vec<(String, Method, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((
                path.clone(),
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                op.clone(),
            ));
        }
    }
    out
}

#[test]
fn every_operation_is_named_and_summarized_for_the_designer() {
    let doc = definition();
    assert_eq!(doc["swagger"], "2.0", "custom connectors take OpenAPI 2.0 only");
    assert_eq!(doc["securityDefinitions"]["oauth2-auth"]["flow"], "accessCode");
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}"));
        assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        assert!(op["summary"].is_string() && op["x-ms-summary"].is_string(), "{id}");
        for p in op["parameters"].as_array().unwrap() {
            assert!(p["in"] == "body" || p["x-ms-summary"].is_string(), "{id}: {p}");
        }
    }
}

#[tokio::test]
async fn each_operation_is_served_and_each_body_field_accepted() {
    let doc = definition();
    // Many requests for one user: lift the daily limit for the test.
    let app = spawn_app_with(&[
        ("TAP_MAX_PER_TARGET_PER_DAY", "100"),
        ("TAP_MAX_PER_CALLER_PER_HOUR", "1000"),
    ])
    .await;
    let token = app.token(&ALL_ROLES);
    // A user per operation, so one's removals do not undo another's address of record.
    let user_for = |id: &str| match id {
        "RequireMfaReregistration" => "grady.archie@contoso.test",
        "SubmitRecoveryRequest" => "alex.wilber@contoso.test",
        _ => "adele.vance@contoso.test",
    };
    // A verification to confirm: a code sent to the demo user, read from the simulator's outbox.
    let sent: Value = app
        .client
        .post(format!("{}/api/users/adele.vance@contoso.test/verifications", app.base))
        .bearer_auth(&token)
        .json(&json!({"channel": "email"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verification = sent["verificationId"].as_str().unwrap().to_owned();
    let code: String = app
        .sim
        .outbox()
        .last()
        .unwrap()
        .body
        .split("Your code: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let fill = |path: &str, id: &str| {
        let any = if id == "ConfirmVerificationCode" || id == "GetVerification" {
            verification.clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        path.replace("{user}", user_for(id)).replace("{id}", &any)
    };
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap();
        let body_schema = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "body")
            .map(|p| p["schema"].clone());
        let send = |body: Option<Value>| {
            let mut r = app
                .client
                .request(method.clone(), format!("{}{}", app.base, fill(&path, id)))
                .bearer_auth(&token);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send()
        };
        let Some(schema) = body_schema else {
            let r = send(None).await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["error"]["code"] != "not_found",
                "{id}: {method} {path} is not served ({status} {body})"
            );
            continue;
        };
        // The required fields alone make a request the app carries out (for the demo tenant's
        // user; a pass request also names its channel).
        let mut minimal = example(&doc, &schema, false);
        if ["ApproveRequest", "DenyRequest"].contains(&id) {
            // Served and its body accepted: an unknown request is 404, not a bad body (the
            // decisions themselves are tested in tests/api/approval.rs). A person decides: the
            // connector's sign-in is delegated.
            let person = app.sim.issue_token(&mfa_recovery_sim::TokenRequest {
                roles: ALL_ROLES.iter().map(|r| (*r).to_owned()).collect(),
                object_id: Some("a0000000-0000-4000-8000-00000000e001".into()),
                upn: Some("approver@contoso.test".into()),
                ..Default::default()
            });
            let r = app
                .client
                .request(method.clone(), format!("{}{}", app.base, fill(&path, id)))
                .bearer_auth(&person)
                .json(&minimal)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::NOT_FOUND, &json!("request_not_found")),
                "{id}: {body}"
            );
            continue;
        }
        if minimal.get("user").is_some() {
            minimal["user"] = json!(user_for(id));
        }
        if id == "SubmitRecoveryRequest" {
            minimal["delivery"] = json!({"channel": "email"});
        }
        if id == "ConfirmVerificationCode" {
            minimal["code"] = json!(code);
        }
        // This app takes the typed verification block (`attested`); `id` is tested in
        // tests/api/verification.rs.
        if minimal.get("verification").is_some() {
            let mut v = example(&doc, &schema_of(&doc, &schema)["properties"]["verification"], true);
            // (The link variant, mode and channel, is tested in tests/api/confirm.rs.)
            for other in ["id", "mode", "channel"] {
                v.as_object_mut().unwrap().remove(other);
            }
            minimal["verification"] = v;
        }
        let r = send(Some(minimal.clone())).await.unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "{id}: {minimal} -> {status} {}",
            r.text().await.unwrap()
        );
        // Each optional field is one the app knows (a refusal by a rule is fine; an unknown
        // field is not).
        let full = example(&doc, &schema, true);
        for (name, value) in full.as_object().unwrap() {
            if minimal.get(name).is_some() {
                continue;
            }
            let mut body = minimal.clone();
            body[name] = value.clone();
            if id == "SubmitRecoveryRequest" {
                // Reset fields go with a reset; every request needs a fresh ticket.
                body["ticket"]["id"] = json!(format!("INC-{name}"));
                if ["scope", "tap", "methods", "revokeSessions"].contains(&name.as_str()) {
                    body["action"] = json!(if name == "tap" { "reset+tap" } else { "reset" });
                    body.as_object_mut().unwrap().remove("delivery");
                }
            }
            if name == "methods" {
                body["scope"] = json!("methods");
                body[name] = json!(["28c10230-6103-485e-b985-444c60001490"]);
            }
            if name == "callbackUrl" {
                continue; // needs CALLBACK_ALLOWED_HOSTS; tests/api/intake.rs covers it
            }
            let r = send(Some(body.clone())).await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(
                !text.contains("unknown field") && status != StatusCode::BAD_REQUEST,
                "{id}: field {name}: {body} -> {status} {text}"
            );
        }
    }
}
