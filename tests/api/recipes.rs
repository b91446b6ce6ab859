//! The documented ServiceNow and Jira recipes under the shipped default
//! (`TAP_REQUIRE_VERIFICATION=service`): the ticket asks the service to verify the user with a
//! confirmation link (`verificationLink`), the request waits `awaiting_confirmation`, the test
//! plays the user (the link from the outbox, the page's answer), and the ticket gets its note:
//! one pass and "succeeded", or "this is not me" and nothing done.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;
use crate::intake::WRITE_BACK;

const SENDERS: &str =
    r#"[{"name": "jira", "scheme": "jira", "secrets": ["webhook-jira"], "roles": ["Recovery.Request"]}]"#;

async fn shipped_app() -> TestApp {
    let mut settings: Vec<(&str, &str)> = WRITE_BACK.to_vec();
    settings.extend([
        ("TAP_REQUIRE_VERIFICATION", "service"),
        ("CONSOLE_URL", "https://func-test.azurewebsites.net/api/console/"),
        ("WEBHOOK_SENDERS", SENDERS),
    ]);
    spawn_app_with(&settings).await
}

/// The user's side: the newest link in the outbox, opened and answered as the page does.
async fn user_answers(app: &TestApp, to: &str, decision: &str) {
    let re = regex::Regex::new(r"/api/confirm/([0-9a-f-]{36})#([A-Za-z0-9_-]{43})").unwrap();
    let message = app
        .sim
        .outbox()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t.contains(to)) && re.is_match(&m.body))
        .unwrap_or_else(|| panic!("no link to {to}"));
    let c = re.captures(&message.body).unwrap();
    for d in ["open", decision] {
        let r = app
            .client
            .post(format!("{}/api/confirm/{}", app.base, &c[1]))
            .json(&json!({"secret": &c[2], "decision": d}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{d}");
    }
}

/// The business rule of docs/servicenow.md, as its JavaScript builds the body for an incident
/// whose agent chose "verify by a link to the user's email" (fields left empty send "").
fn servicenow_rule(sys_id: &str, number: &str, user: &str) -> Value {
    json!({
        "sys_id": sys_id, "number": number,
        "u_affected_user": user, "u_recovery_action": "tap", "u_delivery_channel": "sms",
        "short_description": "lost phone",
        "u_verification_method": "", "u_verified_by": "", "u_verified_at": "",
        "u_verification_id": "", "u_verification_link": "email",
        "assigned_to": "",
    })
}

#[tokio::test]
async fn the_servicenow_recipe_works_under_the_shipped_default() {
    let app = shipped_app().await;
    // Confirmed by the user: one pass by SMS, the incident's work note says so.
    let (status, accepted) = app
        .submit(&servicenow_rule(
            "9d385017c611228701d22104cc95c401",
            "INC0050001",
            "adele.vance@contoso.test",
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["status"], "awaiting_confirmation");
    user_answers(&app, "adele.vance@personal.example", "confirm").await;
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(
        (done["status"].as_str(), done["writeBack"]["state"].as_str()),
        (Some("succeeded"), Some("done")),
        "{done}"
    );
    assert_eq!(app.passes().await.len(), 1);
    let note = app
        .sim
        .itsm()
        .into_iter()
        .find(|i| i.path.ends_with("c611228701d22104cc95c401"))
        .unwrap();
    let text = note.body["work_notes"].as_str().unwrap();
    assert!(text.contains("succeeded") && text.contains("valid until"), "{text}");
    // "This is not me": nothing done, the incident says so.
    let (_, accepted) = app
        .submit(&servicenow_rule(
            "9d385017c611228701d22104cc95c402",
            "INC0050002",
            "alex.wilber@contoso.test",
        ))
        .await;
    user_answers(&app, "alex.wilber@personal.example", "not_me").await;
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "refused", "{done}");
    let note = app
        .sim
        .itsm()
        .into_iter()
        .find(|i| i.path.ends_with("c611228701d22104cc95c402"))
        .unwrap();
    let text = note.body["work_notes"].as_str().unwrap();
    assert!(
        text.contains("Refused, nothing was changed") && text.contains("recovery_blocked"),
        "{text}"
    );
    assert!(text.contains("this is not me"), "{text}");
    assert_eq!(app.passes().await.len(), 1);
}

#[tokio::test]
async fn the_jira_recipe_signed_as_jira_signs_works_under_the_shipped_default() {
    let app = shipped_app().await;
    let body =
        json!({"issue": {"key": "HELP-501", "self": "https://contoso.atlassian.net/rest/api/2/issue/10501", "fields": {
            "summary": "lost phone", "customfield_10050": "adele.vance@contoso.test",
            "customfield_10051": {"value": "tap"}, "customfield_10052": {"value": "sms"},
            "customfield_10059": {"value": "email"},
        }}})
        .to_string();
    let secret = app
        .sim
        .secret("webhook-jira")
        .expect("the Jira webhook secret in Key Vault");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let r = app
        .client
        .post(format!("{}/api/requests", app.base))
        .header("content-type", "application/json")
        .header("x-atlassian-webhook-identifier", "jira-delivery-501")
        .header("x-hub-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted["status"], "awaiting_confirmation", "{accepted}");
    user_answers(&app, "adele.vance@personal.example", "confirm").await;
    let done = app.wait_final(accepted["requestId"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let comment = app.sim.itsm().into_iter().find(|i| i.system == "jira").unwrap();
    assert_eq!(comment.path, "/rest/servicedeskapi/request/HELP-501/comment");
    assert!(
        comment.body["body"]
            .as_str()
            .unwrap()
            .contains("Temporary Access Pass issued")
    );
    assert_eq!(app.passes().await.len(), 1);
}

/// The flow `connector/flows/pass-verified-by-link.json` (checked against the connector by
/// `scripts/check-flows.py`) run against the API as Power Automate would: each connector action
/// becomes the connector's request (its path and method, the body built from `body/…`
/// parameters, the trigger's values and earlier answers put in), and the Until loop asks until the
/// request is final. The test plays the user in between.
#[tokio::test]
async fn the_power_automate_flow_runs_against_the_api_under_the_shipped_default() {
    let app = shipped_app().await;
    let flow: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("connector/flows/pass-verified-by-link.json")).unwrap(),
    )
    .unwrap();
    let connector: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("connector/apiDefinition.swagger.json")).unwrap())
            .unwrap();
    let trigger = json!({"user": "adele.vance@contoso.test", "ticket": "FLOW-0001"});
    let actions = &flow["properties"]["definition"]["actions"];
    let mut answers: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    let token = app.token(&["Recovery.Request"]);
    // An expression of the flow, evaluated as far as this flow uses them.
    let value_of = |text: &str, answers: &std::collections::HashMap<String, Value>| -> Value {
        let trig = regex::Regex::new(r"^@triggerBody\(\)\['(\w+)'\]$").unwrap();
        let body = regex::Regex::new(r"^@body\('(\w+)'\)\?\['(\w+)'\]$").unwrap();
        if let Some(c) = trig.captures(text) {
            return trigger[&c[1]].clone();
        }
        if let Some(c) = body.captures(text) {
            return answers[&c[1]][&c[2]].clone();
        }
        json!(text)
    };
    let call = |name: String, action: Value, answers: std::collections::HashMap<String, Value>| {
        let app = &app;
        let connector = &connector;
        let token = token.clone();
        async move {
            let op_id = action["inputs"]["host"]["operationId"].as_str().unwrap().to_owned();
            let (path, method) = connector["paths"]
                .as_object()
                .unwrap()
                .iter()
                .flat_map(|(p, ops)| ops.as_object().unwrap().iter().map(move |(m, o)| (p, m, o)))
                .find(|(_, _, o)| o["operationId"] == op_id.as_str())
                .map(|(p, m, _)| (p.clone(), m.clone()))
                .unwrap();
            let mut url_path = path.clone();
            let mut body = json!({});
            for (key, raw) in action["inputs"]["parameters"].as_object().unwrap() {
                let v = value_of(raw.as_str().unwrap(), &answers);
                if let Some(rest) = key.strip_prefix("body/") {
                    let mut at = &mut body;
                    let parts: Vec<&str> = rest.split('/').collect();
                    for part in &parts[..parts.len() - 1] {
                        at = at.as_object_mut().unwrap().entry(*part).or_insert(json!({}));
                    }
                    at[parts[parts.len() - 1]] = v;
                } else {
                    url_path = url_path.replace(&format!("{{{key}}}"), v.as_str().unwrap());
                }
            }
            let mut r = app
                .client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    format!("{}{url_path}", app.base),
                )
                .bearer_auth(token);
            if method == "post" {
                r = r.json(&body);
            }
            let r = r.send().await.unwrap();
            assert!(r.status().is_success(), "{name}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let submit = "Submit_a_recovery_request".to_owned();
    let answer = call(submit.clone(), actions[&submit].clone(), answers.clone()).await;
    assert_eq!(answer["status"], "awaiting_confirmation", "{answer}");
    answers.insert(submit, answer);
    user_answers(&app, "adele.vance@personal.example", "confirm").await;
    let until = &actions["Until_the_request_is_final"];
    let waiting: Vec<String> = regex::Regex::new(r"'(\w+)'")
        .unwrap()
        .captures_iter(
            until["expression"]
                .as_str()
                .unwrap()
                .split("createArray(")
                .nth(1)
                .unwrap()
                .split(')')
                .next()
                .unwrap(),
        )
        .map(|c| c[1].to_owned())
        .collect();
    assert!(waiting.contains(&"awaiting_confirmation".to_owned()));
    let get = "Get_recovery_request_status".to_owned();
    let mut last = Value::Null;
    for _ in 0..100 {
        last = call(get.clone(), until["actions"][&get].clone(), answers.clone()).await;
        if !waiting.iter().any(|w| last["status"] == w.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(app.passes().await.len(), 1);
}
