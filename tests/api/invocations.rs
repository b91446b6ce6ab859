//! Queue and timer invocations with the verbatim real-host captures and the documented forms.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn assert_well_formed_completion(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert!(body["Outputs"].is_object(), "{body}");
    assert!(body["Logs"].is_array(), "{body}");
    assert!(body.get("ReturnValue").is_some(), "{body}");
    body
}

#[tokio::test]
async fn the_real_host_queue_capture_is_completed_and_the_handler_stays_healthy() {
    let app = spawn_app().await;
    // The capture's message is the text `aaaaa`: never a recovery request, so it is completed
    // (not retried five times) with a log line saying why.
    let r = app
        .invoke(
            "recovery-worker",
            &fixture("queue-trigger.request.json"),
            "0b3f2a9c-1111-4c4d-8e8f-000000000001",
        )
        .await;
    let body = assert_well_formed_completion(r).await;
    let log = body["Logs"][0].as_str().unwrap();
    assert!(
        log.contains("discarded message a0004923-f050-417a-9742-6d7c7b984134"),
        "the Id is decoded: {log}"
    );
    assert!(log.contains("not valid JSON"), "{log}");
    assert!(!log.contains("aaaaa"), "the payload is not echoed: {log}");
    assert_eq!(app.get("/api/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_documented_queue_form_is_completed_too() {
    let app = spawn_app().await;
    // `{ message: "Message sent" }` (unquoted key) is not JSON.
    let r = app
        .invoke(
            "recovery-poison",
            &fixture("queue-trigger.request.docs.json"),
            "0b3f2a9c-1111-4c4d-8e8f-000000000002",
        )
        .await;
    let body = assert_well_formed_completion(r).await;
    assert!(
        body["Logs"][0]
            .as_str()
            .unwrap()
            .contains("800ae4b3-bdd2-4c08-badd-f08e5a34b865")
    );
}

#[tokio::test]
async fn a_recovery_request_is_decoded_from_either_form_and_reaches_the_worker() {
    let app = spawn_app().await;
    let message = r#"{"requestId":"7d3c2b1a-0000-4000-8000-000000000001"}"#;
    // Real host: the message JSON-encoded again inside the envelope.
    let real = host_queue_envelope("message", message);
    // Documented form: the message as is, DequeueCount a number.
    let tidy = json!({"Data": {"message": message}, "Metadata": {"DequeueCount": 2, "Id": "800ae4b3-bdd2-4c08-badd-f08e5a34b865"}}).to_string();
    for envelope in [real, tidy] {
        let r = app
            .invoke("recovery-worker", &envelope, "0b3f2a9c-1111-4c4d-8e8f-000000000003")
            .await;
        // It reaches the worker, which finds no such request and completes the message.
        let body = assert_well_formed_completion(r).await;
        assert!(
            body["Logs"][0].as_str().unwrap().contains("no request 7d3c2b1a"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn messages_that_are_json_but_not_requests_are_completed() {
    let app = spawn_app().await;
    for message in [r#"{"requestId":"not-a-uuid"}"#, r#"{"other":1}"#, "[]", "42"] {
        let r = app
            .invoke(
                "recovery-worker",
                &host_queue_envelope("message", message),
                "0b3f2a9c-1111-4c4d-8e8f-000000000004",
            )
            .await;
        let body = assert_well_formed_completion(r).await;
        assert!(
            body["Logs"][0].as_str().unwrap().contains("not a recovery request"),
            "{message}: {body}"
        );
    }
}

#[tokio::test]
async fn the_real_host_timer_captures_reach_the_sweep() {
    let app = spawn_app().await;
    for name in ["timer-trigger.request.json", "timer-trigger.request.monitored.json"] {
        let r = app
            .invoke(
                "compliance-sweep",
                &fixture(name),
                "0b3f2a9c-1111-4c4d-8e8f-000000000005",
            )
            .await;
        // The first runs the sweep; the second finds it recent enough.
        let body = assert_well_formed_completion(r).await;
        let log = body["Logs"][0].as_str().unwrap();
        assert!(
            log.contains("finished") || log.contains("recent enough"),
            "{name}: {log}"
        );
    }
    let broken = json!({"Data": {"timer": "garbage"}, "Metadata": {}}).to_string();
    let r = app
        .invoke("compliance-sweep", &broken, "0b3f2a9c-1111-4c4d-8e8f-000000000006")
        .await;
    assert_well_formed_completion(r).await;
    assert_eq!(app.get("/api/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_is_not_an_envelope_fails_the_invocation() {
    let app = spawn_app().await;
    let r = app
        .invoke(
            "recovery-worker",
            "this is not json",
            "0b3f2a9c-1111-4c4d-8e8f-000000000007",
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "bad_request");
}

#[tokio::test]
async fn the_invocation_id_comes_back_on_every_response() {
    let app = spawn_app().await;
    let r = app
        .invoke(
            "recovery-worker",
            &fixture("queue-trigger.request.json"),
            "0b3f2a9c-1111-4c4d-8e8f-000000000008",
        )
        .await;
    assert_eq!(r.headers()["x-invocation-id"], "0b3f2a9c-1111-4c4d-8e8f-000000000008");
    // An id that could forge log lines is replaced by a fresh one.
    let r = app
        .client
        .get(format!("{}/api/health", app.base))
        .header("x-azure-functions-invocationid", "abc def")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-invocation-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

#[tokio::test]
async fn the_dev_admin_api_runs_queue_and_timer_functions_like_the_host() {
    let app = spawn_app().await;
    let admin = |name: &str| format!("{}/admin/functions/{name}", app.base);
    let r = app
        .client
        .post(admin("recovery-worker"))
        .json(&json!({"input": "not a request"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 200);
    assert!(body["response"]["Logs"][0].as_str().unwrap().contains("not valid JSON"));
    let r = app
        .client
        .post(admin("recovery-worker"))
        .json(&json!({"input": r#"{"requestId":"7d3c2b1a-0000-4000-8000-000000000001"}"#}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 200, "{body}");
    let r = app
        .client
        .post(admin("compliance-sweep"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 200, "{body}");
    let r = app
        .client
        .post(admin("tap"))
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(admin("recovery-worker"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a queue function needs its message"
    );
    let r = app.client.post(admin("nope")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
